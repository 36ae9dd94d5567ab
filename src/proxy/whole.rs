//! Answers to a whole request before its items are served: rejections (with the request's
//! id where it has one) and the request's weight for the limits.

use super::*;

/// A whole-request rejection, counted.
pub fn reject(app: &AppState, err: &ProxyError) -> RpcResponse {
    app.metrics.rejected.get_or_create(&ReasonLabel { reason: err.label() }).inc();
    RpcResponse::error(err)
}

/// A whole-request rejection of a parsed body, counted. A single request is answered with its
/// own id (no `id` key when it had none, as the node does); a batch gets one error object with
/// `id: null`, as the node answers a batch it refuses whole (and as an oversized batch is
/// answered), rather than one error per item.
pub fn reject_parsed(app: &AppState, body: &Result<Body, BodyError>, err: &ProxyError) -> RpcResponse {
    let id = match body {
        Ok(Body::Single(Item::Call(c))) => c.id.as_deref(),
        Ok(Body::Single(Item::Invalid { id, .. })) => Some(id.as_deref().unwrap_or(null_id())),
        Ok(Body::Batch(_)) | Err(_) => Some(null_id()),
    };
    let mut resp = reject(app, err);
    resp.body.clear();
    jsonrpc::encode_answer(&mut resp.body, id, &err.to_outcome());
    resp
}

/// What a parsed body weighs against the client's rate limit and `MAX_CONCURRENT_REQUESTS`:
/// the sum of its calls' [`methods::cost`] (an invalid item, or a body that is not JSON-RPC,
/// weighs 1).
pub fn weight(body: &Result<Body, BodyError>) -> u32 {
    let item = |i: &Item| match i {
        Item::Call(c) => methods::cost(&c.method),
        Item::Invalid { .. } => 1,
    };
    match body {
        Ok(Body::Single(i)) => item(i),
        Ok(Body::Batch(items)) => items.iter().map(item).fold(0u32, u32::saturating_add).max(1),
        Err(_) => 1,
    }
}
