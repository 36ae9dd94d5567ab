//! Turns a parsed request into a response body: envelope per item, batch framing, HTTP status.
//!
//! Pure and synchronous: it reads one `View` (clock, faults, and the sentinel history when an
//! item needs it, prepared beforehand by the server) and writes into one buffer. The only
//! shared state it touches is the mempool mutex, for `sendTx` and the tx look-ups.

use serde_json::value::RawValue;

use super::config::ApiVersion;
use super::handlers;
use super::methods::{resolve, Method};
use super::rpc::{close_with_error, error_body, open, params_list, Item, Parsed, RpcError, INTERNAL_ERROR};
use super::state::{NodeState, View};

/// What a handler produced after `"result":`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Answer {
    /// A JSON value was written.
    Value,
    /// `undefined`: `"result":null` on v5+, no `result` key before (docs/aztec-api.md#envelope).
    Undefined,
}

/// Whether some item of the request needs the sentinel history.
pub(crate) fn needs_history(parsed: &Parsed<'_>, version: ApiVersion) -> bool {
    let item_needs = |item: &Item<'_>| match &item.call {
        Ok((name, _)) => resolve(name, version).is_some_and(Method::needs_history),
        Err(_) => false,
    };
    match parsed {
        Parsed::Single(item) => item_needs(item),
        Parsed::Batch(items) => items.iter().any(item_needs),
        Parsed::Fail(_) => false,
    }
}

/// The HTTP status and body answering `parsed`.
pub(crate) fn answer(node: &NodeState, view: &View, parsed: &Parsed<'_>) -> (u16, Vec<u8>) {
    match parsed {
        Parsed::Fail(err) => (400, error_body(err)),
        Parsed::Single(item) => {
            let mut out = Vec::with_capacity(128);
            let status = answer_item(node, view, item, &mut out).unwrap_or(200);
            (status, out)
        }
        Parsed::Batch(items) => {
            let mut out = Vec::with_capacity(64 + 96 * items.len());
            out.push(b'[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(b',');
                }
                answer_item(node, view, item, &mut out);
            }
            out.push(b']');
            (200, out)
        }
    }
}

/// Appends the answer to one item; returns the HTTP status it would have alone if it failed.
fn answer_item(node: &NodeState, view: &View, item: &Item<'_>, out: &mut Vec<u8>) -> Option<u16> {
    open(out, item.jsonrpc, item.id);
    let mark = out.len();
    out.extend_from_slice(b",\"result\":");
    let result = match &item.call {
        Ok((name, params)) => dispatch(node, view, name, *params, out),
        Err(e) => Err(e.clone()),
    };
    match result {
        Ok(Answer::Value) => {}
        Ok(Answer::Undefined) if node.cfg.version <= ApiVersion::V4 => out.truncate(mark),
        Ok(Answer::Undefined) => out.extend_from_slice(b"null"),
        Err(err) => {
            out.truncate(mark);
            close_with_error(out, &err);
            return Some(err.http_status());
        }
    }
    out.push(b'}');
    None
}

fn fault_error(code: i64) -> RpcError {
    let message = match code {
        -32700 => "Parse error",
        -32600 => "Invalid Request",
        -32601 => "Method not found",
        INTERNAL_ERROR => "Internal error",
        _ => "Simulated fault",
    };
    RpcError::new(code, message)
}

fn dispatch(
    node: &NodeState,
    view: &View,
    name: &str,
    params: Option<&RawValue>,
    out: &mut Vec<u8>,
) -> Result<Answer, RpcError> {
    if let Some(code) = view.faults.rpc_error {
        return Err(fault_error(code));
    }
    let version = node.cfg.version;
    let method = resolve(name, version).ok_or_else(|| RpcError::method_not_found(name))?;
    let params = params_list(params)?;
    let max = method.max_params(version);
    if params.len() > max {
        return Err(RpcError::invalid_params(format!("Array must contain at most {max} element(s) (params)")));
    }
    handlers::call(node, view, method, &params, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::config::SimConfig;
    use crate::simulator::rpc::parse;

    fn run(version: ApiVersion, body: &str) -> (u16, serde_json::Value) {
        let node = NodeState::new(SimConfig::for_tests(version));
        let view = node.view();
        let (status, out) = answer(&node, &view, &parse(body.as_bytes()));
        (status, serde_json::from_slice(&out).unwrap())
    }

    #[test]
    fn single_and_batch() {
        let (s, v) = run(ApiVersion::V5, r#"{"jsonrpc":"2.0","id":"a","method":"aztec_getBlockNumber"}"#);
        assert_eq!((s, v["id"].as_str(), v["result"].as_u64()), (200, Some("a"), Some(20_000)));
        let (s, v) = run(ApiVersion::V5, r#"{"id":1,"method":"aztec_nope"}"#);
        assert_eq!((s, v["error"]["code"].as_i64()), (400, Some(-32601)));
        let (s, v) = run(
            ApiVersion::V4,
            r#"[{"id":0,"method":"node_getBlockNumber"},{"id":null,"method":"aztec_getBlockNumber"},{"method":"node_isReady"}]"#,
        );
        assert_eq!(s, 200);
        assert_eq!(v[0]["result"], 20_000);
        assert_eq!(v[1]["error"]["code"], -32601);
        assert!(v[1]["id"].is_null() && v[1].get("id").is_some());
        assert!(v[2].get("id").is_none());
        assert_eq!(v[2]["result"], true);
    }

    #[test]
    fn undefined_results_by_version() {
        let body = r#"{"id":1,"method":"node_getBlock","params":[999999]}"#;
        let (_, v4) = run(ApiVersion::V4, body);
        assert!(v4.get("result").is_none() && v4.get("error").is_none());
        let (_, v5) = run(ApiVersion::V5, body);
        assert!(v5["result"].is_null() && v5.get("result").is_some());
    }
}
