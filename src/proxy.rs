//! The request path, as one straight line: parse → per-item policy → group → dispatch (with
//! failover) → answers in request order with the client's ids. A batch goes to one node as one
//! batch where its items can share a node; writes, sticky receipt look-ups and historical-state
//! reads form their own groups.

use std::sync::Arc;

use http::{HeaderName, HeaderValue, StatusCode};
use serde::Deserialize;
use serde_json::value::RawValue;
use tokio::time::Instant;

use crate::dispatch::{Delivered, Outbound};
use crate::error::ProxyError;
use crate::jsonrpc::{self, Body, BodyError, Item, Outcome};
use crate::methods::{self, MethodInfo};
use crate::metrics::{Metrics, ReasonLabel, RequestLabels};
use crate::selection::{Needs, Route};
use crate::server::AppState;

/// The gateway's answer to one HTTP request.
#[derive(Debug)]
pub struct RpcResponse {
    /// HTTP status.
    pub status: StatusCode,
    /// JSON body.
    pub body: Vec<u8>,
    /// Names of the nodes that answered (for `x-sentinel-backend`).
    pub backends: Vec<String>,
    /// The answering node's `x-aztec-*` headers.
    pub headers: Vec<(HeaderName, HeaderValue)>,
    /// `/pruned` fell back to an archiver.
    pub fallback: bool,
    /// Seconds for `Retry-After` (429).
    pub retry_after: Option<u64>,
}

impl RpcResponse {
    /// A whole-request gateway error (single error object, no id).
    pub fn error(err: &ProxyError) -> RpcResponse {
        let mut body = Vec::new();
        jsonrpc::encode_answer(&mut body, Some(null_id()), &err.to_outcome());
        let retry_after = match err {
            ProxyError::TooManyRequests { retry_after_s, .. } => Some(*retry_after_s),
            _ => None,
        };
        RpcResponse {
            status: err.status(),
            body,
            backends: Vec::new(),
            headers: Vec::new(),
            fallback: false,
            retry_after,
        }
    }
}

fn null_id() -> &'static RawValue {
    serde_json::from_str("null").expect("null is json")
}

/// One answer slot of the client's body.
struct Slot {
    id: Option<Box<RawValue>>,
    method: String,
    result: Option<Result<Outcome, ProxyError>>,
    backend: Option<String>,
}

/// A set of calls that go to one node together.
struct Group {
    slots: Vec<usize>,
    calls: Vec<Outbound>,
    needs: Needs,
    write: bool,
}

/// Serves one JSON-RPC body arriving on `route`.
pub async fn handle(app: &AppState, route: Route, body: &[u8], request_id: &str) -> RpcResponse {
    let deadline = Instant::now() + app.config.request_timeout;
    let (items, batch) = match jsonrpc::parse_body(body) {
        Ok(Body::Single(i)) => (vec![i], false),
        Ok(Body::Batch(v)) if v.len() > app.config.max_batch => {
            let msg = format!(
                "Batch request exceeds maximum allowed size of {}",
                app.config.max_batch
            );
            return reject(app, &ProxyError::InvalidRequest(msg));
        }
        Ok(Body::Batch(v)) => (v, true),
        Err(BodyError::Parse(m)) => return reject(app, &ProxyError::Parse(m)),
        Err(BodyError::Invalid(m)) => return reject(app, &ProxyError::InvalidRequest(m)),
    };
    let mut slots = Vec::with_capacity(items.len());
    let mut groups: Vec<Group> = Vec::new();
    for item in items {
        admit(app, item, &mut slots, &mut groups);
    }
    let runs = groups
        .iter()
        .map(|g| run_group(app, route, g, deadline, request_id));
    let delivered = futures::future::join_all(runs).await;
    let mut resp = RpcResponse {
        status: StatusCode::OK,
        body: Vec::new(),
        backends: Vec::new(),
        headers: Vec::new(),
        fallback: false,
        retry_after: None,
    };
    let mut node_status = StatusCode::OK;
    for (group, result) in groups.iter().zip(delivered) {
        match result {
            Ok(d) => {
                on_delivered(app, group, &d);
                node_status = d.status;
                resp.fallback |= d.fallback;
                if resp.headers.is_empty() {
                    resp.headers = d.headers;
                }
                if !resp.backends.contains(&d.backend) {
                    resp.backends.push(d.backend.clone());
                }
                for (&s, o) in group.slots.iter().zip(d.outcomes) {
                    slots[s].result = Some(Ok(o));
                    slots[s].backend = Some(d.backend.clone());
                }
            }
            Err(e) => {
                for &s in &group.slots {
                    slots[s].result = Some(Err(e.clone()));
                }
            }
        }
    }
    finish(app, route, slots, batch, node_status, resp)
}

/// Applies policy to one item: an immediate error slot, or a call in a group.
fn admit(app: &AppState, item: Item, slots: &mut Vec<Slot>, groups: &mut Vec<Group>) {
    let index = slots.len();
    let call = match item {
        Item::Invalid { id, reason } => {
            let id = Some(id.unwrap_or_else(|| null_id().to_owned()));
            slots.push(Slot {
                id,
                method: String::new(),
                result: Some(Err(ProxyError::InvalidRequest(reason))),
                backend: None,
            });
            return;
        }
        Item::Call(c) => c,
    };
    let allowed = app.policy.allows(&call.method);
    let result = (!allowed).then(|| Err(ProxyError::MethodNotFound(call.method.clone())));
    slots.push(Slot {
        id: call.id,
        method: call.method.clone(),
        result,
        backend: None,
    });
    if !allowed {
        return;
    }
    let info = methods::lookup(&call.method);
    let write = info.is_none_or(|m| !m.is_read());
    let params: Option<Arc<RawValue>> = call.params.map(Arc::from);
    let needs = Needs {
        sticky: sticky_for(app, info, params.as_deref()),
        block: historic_block(info, params.as_deref()),
        exclude: Vec::new(),
    };
    let outbound = Outbound {
        method: call.method,
        params,
    };
    let plain = !write && needs.sticky.is_none() && needs.block.is_none();
    if plain {
        if let Some(g) = groups
            .iter_mut()
            .find(|g| !g.write && g.needs.sticky.is_none() && g.needs.block.is_none())
        {
            g.slots.push(index);
            g.calls.push(outbound);
            return;
        }
    }
    groups.push(Group {
        slots: vec![index],
        calls: vec![outbound],
        needs,
        write,
    });
}

async fn run_group(
    app: &AppState,
    route: Route,
    g: &Group,
    deadline: Instant,
    request_id: &str,
) -> Result<Delivered, ProxyError> {
    app.dispatcher()
        .dispatch(
            route,
            &g.calls,
            g.needs.clone(),
            g.write,
            deadline,
            request_id,
        )
        .await
}

#[derive(Deserialize)]
struct TxLike<'a> {
    #[serde(borrow, rename = "txHash")]
    tx_hash: Option<&'a str>,
}

#[derive(Deserialize)]
struct ReceiptLike<'a> {
    #[serde(borrow)]
    status: Option<&'a str>,
}

/// First param as a string (tx hash look-ups).
fn first_str(params: Option<&RawValue>) -> Option<String> {
    let p: Vec<&RawValue> = serde_json::from_str(params?.get()).ok()?;
    serde_json::from_str::<String>(p.first()?.get()).ok()
}

/// Read-your-writes: receipts and tx look-ups of a tx sent through us go to the node that took it.
fn sticky_for(
    app: &AppState,
    info: Option<&MethodInfo>,
    params: Option<&RawValue>,
) -> Option<usize> {
    let name = info?.name;
    if name != "getTxReceipt" && name != "getTxByHash" {
        return None;
    }
    app.sticky.get(&first_str(params)?.to_ascii_lowercase())
}

/// An explicit block number as first param of a world-state method (history-aware routing).
fn historic_block(info: Option<&MethodInfo>, params: Option<&RawValue>) -> Option<u64> {
    if !methods::reads_world_state(info?.name) {
        return None;
    }
    let p: Vec<&RawValue> = serde_json::from_str(params?.get()).ok()?;
    p.first()?.get().parse().ok()
}

/// Remembers which node took a tx; forgets once its receipt is mined.
fn on_delivered(app: &AppState, g: &Group, d: &Delivered) {
    for (call, outcome) in g.calls.iter().zip(&d.outcomes) {
        let Some(info) = methods::lookup(&call.method) else {
            continue;
        };
        match (info.name, outcome) {
            ("sendTx", Outcome::Result(_)) => {
                let hash = call.params.as_deref().and_then(|p| {
                    let v: Vec<TxLike<'_>> = serde_json::from_str(p.get()).ok()?;
                    v.first()?.tx_hash.map(str::to_ascii_lowercase)
                });
                if let Some(h) = hash {
                    app.sticky.insert(h, d.backend_index);
                }
            }
            ("getTxReceipt", Outcome::Result(Some(r))) => {
                let status = serde_json::from_str::<ReceiptLike<'_>>(r.get())
                    .ok()
                    .and_then(|x| x.status.map(str::to_owned));
                if status.is_some_and(|s| s != "pending" && s != "dropped") {
                    if let Some(h) = first_str(call.params.as_deref()) {
                        app.sticky.invalidate(&h.to_ascii_lowercase());
                    }
                }
            }
            _ => {}
        }
    }
}

/// Builds the response: ordered answers, status, metrics.
fn finish(
    app: &AppState,
    route: Route,
    slots: Vec<Slot>,
    batch: bool,
    node_status: StatusCode,
    mut resp: RpcResponse,
) -> RpcResponse {
    let mut out = Vec::with_capacity(256);
    let mut worst: Option<StatusCode> = None;
    let mut all_failed = true;
    if batch {
        out.push(b'[');
    }
    for (i, slot) in slots.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let outcome = match slot.result.as_ref().expect("every slot is answered") {
            Ok(o) => {
                all_failed = false;
                o.clone()
            }
            Err(e) => {
                if e.is_server_side() {
                    worst = Some(e.status());
                } else {
                    all_failed = false;
                    worst = worst.or(Some(e.status()));
                }
                e.to_outcome()
            }
        };
        count(app, route, slot, &outcome);
        jsonrpc::encode_answer(&mut out, slot.id.as_deref(), &outcome);
    }
    if batch {
        out.push(b']');
    }
    resp.status = match (batch, &slots[0].result) {
        (false, Some(Ok(Outcome::Error { .. }))) if node_status.is_client_error() => node_status,
        (false, Some(Ok(_))) => StatusCode::OK,
        (false, Some(Err(e))) => e.status(),
        (true, _) if all_failed => worst.unwrap_or(StatusCode::OK),
        _ => StatusCode::OK,
    };
    resp.body = out;
    resp
}

fn count(app: &AppState, route: Route, slot: &Slot, outcome: &Outcome) {
    let status = match (&slot.result, outcome) {
        (Some(Err(e)), _) => e.label(),
        (_, Outcome::Error { .. }) => "rpc_error",
        _ => "ok",
    };
    app.metrics.served.inc();
    if let Some(Err(e)) = &slot.result {
        app.metrics.failed.inc();
        app.metrics
            .rejected
            .get_or_create(&ReasonLabel { reason: e.label() })
            .inc();
    }
    let labels = RequestLabels {
        route: route.as_str(),
        method: Metrics::method_label(&slot.method),
        status,
        backend: slot.backend.clone().unwrap_or_else(|| "none".to_owned()),
    };
    app.metrics.requests.get_or_create(&labels).inc();
}

/// A whole-request rejection, counted.
pub fn reject(app: &AppState, err: &ProxyError) -> RpcResponse {
    app.metrics
        .rejected
        .get_or_create(&ReasonLabel {
            reason: err.label(),
        })
        .inc();
    RpcResponse::error(err)
}
