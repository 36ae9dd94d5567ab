//! JSON-RPC 2.0 envelope of the simulated node: parsing requests, writing answers and errors.
//!
//! Parsing borrows from the request body (`&RawValue` for ids, params and `jsonrpc`), so ids
//! are echoed byte for byte (`0`, `"a"`, `null`, …) and a plain request costs no allocation
//! beyond the response buffer. The error conventions follow the real node (docs/aztec-api.md#batches and
//! #errors): a failed single request is HTTP 400, a batch is always 200, an empty or oversized
//! batch is a single `-32600` object with HTTP 400.

use std::borrow::Cow;

use serde::{Deserialize, Deserializer};
use serde_json::value::RawValue;

use super::encode::{write_i64, write_str};

/// Largest batch accepted (`RPC_MAX_BATCH_SIZE` default).
pub(crate) const MAX_BATCH: usize = 100;

/// Parse error (`-32700`).
pub(crate) const PARSE_ERROR: i64 = -32700;
/// Invalid request (`-32600`).
pub(crate) const INVALID_REQUEST: i64 = -32600;
/// Method not found (`-32601`).
pub(crate) const METHOD_NOT_FOUND: i64 = -32601;
/// Internal error (`-32603`, v5.2+).
pub(crate) const INTERNAL_ERROR: i64 = -32603;
/// Parameter validation failed (Aztec's non-standard `-32701`).
pub(crate) const INVALID_PARAMS: i64 = -32701;
/// The handler threw (Aztec's non-standard `-32702`).
pub(crate) const APPLICATION_ERROR: i64 = -32702;

/// A JSON-RPC error object.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct RpcError {
    pub(crate) code: i64,
    pub(crate) message: Cow<'static, str>,
}

impl RpcError {
    /// An error with any code and message.
    pub(crate) fn new(code: i64, message: impl Into<Cow<'static, str>>) -> Self {
        RpcError { code, message: message.into() }
    }

    /// `-32700 Parse error: …`.
    pub(crate) fn parse(detail: &str) -> Self {
        RpcError::new(PARSE_ERROR, format!("Parse error: {detail}"))
    }

    /// `-32600 Invalid Request`.
    pub(crate) fn invalid_request() -> Self {
        RpcError::new(INVALID_REQUEST, "Invalid Request")
    }

    /// `-32601 Method not found: <method>`.
    pub(crate) fn method_not_found(method: &str) -> Self {
        RpcError::new(METHOD_NOT_FOUND, format!("Method not found: {method}"))
    }

    /// `-32701` with a Zod-like message.
    pub(crate) fn invalid_params(message: impl Into<Cow<'static, str>>) -> Self {
        RpcError::new(INVALID_PARAMS, message)
    }

    /// The HTTP status of a single (non-batch) request failing with this error.
    pub(crate) fn http_status(&self) -> u16 {
        if self.code == INTERNAL_ERROR {
            500
        } else {
            400
        }
    }
}

/// One request object of a single request or a batch.
#[derive(Debug)]
pub(crate) struct Item<'a> {
    /// `jsonrpc` as sent, echoed back; `"2.0"` when absent.
    pub(crate) jsonrpc: Option<&'a RawValue>,
    /// `id` as sent (including `null`); absent means no `id` key in the answer.
    pub(crate) id: Option<&'a RawValue>,
    /// The method name and raw params, or why the item is not a valid request.
    pub(crate) call: Result<(Cow<'a, str>, Option<&'a RawValue>), RpcError>,
}

/// A parsed request body.
#[derive(Debug)]
pub(crate) enum Parsed<'a> {
    /// One request object.
    Single(Item<'a>),
    /// A non-empty batch of at most `MAX_BATCH` items.
    Batch(Vec<Item<'a>>),
    /// The body as a whole is unacceptable (bad JSON, empty or oversized batch).
    Fail(RpcError),
}

#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    jsonrpc: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    method: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    params: Option<&'a RawValue>,
}

/// Keeps a present `null` as `Some("null")` instead of folding it into `None`.
fn present<'de, D: Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

/// Parses a request body.
pub(crate) fn parse(body: &[u8]) -> Parsed<'_> {
    let Ok(text) = std::str::from_utf8(body) else {
        return Parsed::Fail(RpcError::parse("body is not UTF-8"));
    };
    if text.trim_start().starts_with('[') {
        let raws: Vec<&RawValue> = match serde_json::from_str(text) {
            Ok(raws) => raws,
            Err(e) => return Parsed::Fail(RpcError::parse(&e.to_string())),
        };
        if raws.is_empty() {
            return Parsed::Fail(RpcError::invalid_request());
        }
        if raws.len() > MAX_BATCH {
            return Parsed::Fail(RpcError::new(
                INVALID_REQUEST,
                format!("Batch request exceeds maximum allowed size of {MAX_BATCH}"),
            ));
        }
        return Parsed::Batch(raws.iter().map(|raw| item(raw.get())).collect());
    }
    match serde_json::from_str::<Fields<'_>>(text) {
        Ok(fields) => Parsed::Single(item_from(fields)),
        Err(e) => match serde_json::from_str::<&RawValue>(text) {
            Ok(_) => Parsed::Single(invalid_item()),
            Err(_) => Parsed::Fail(RpcError::parse(&e.to_string())),
        },
    }
}

fn invalid_item<'a>() -> Item<'a> {
    Item { jsonrpc: None, id: None, call: Err(RpcError::invalid_request()) }
}

fn item(text: &str) -> Item<'_> {
    serde_json::from_str::<Fields<'_>>(text).map_or_else(|_| invalid_item(), item_from)
}

fn item_from(fields: Fields<'_>) -> Item<'_> {
    let call = match fields.method.map(method_name) {
        Some(Some(name)) if !name.is_empty() => Ok((name, fields.params)),
        _ => Err(RpcError::invalid_request()),
    };
    Item { jsonrpc: fields.jsonrpc, id: fields.id, call }
}

/// The method as a string, borrowed unless it contains escapes.
fn method_name(raw: &RawValue) -> Option<Cow<'_, str>> {
    if let Ok(s) = serde_json::from_str::<&str>(raw.get()) {
        return Some(Cow::Borrowed(s));
    }
    serde_json::from_str::<String>(raw.get()).ok().map(Cow::Owned)
}

/// Splits positional params; absent or `null` params are an empty list.
pub(crate) fn params_list(params: Option<&RawValue>) -> Result<Vec<&RawValue>, RpcError> {
    match params.map(RawValue::get) {
        None | Some("[]") | Some("null") => Ok(Vec::new()),
        Some(text) => {
            serde_json::from_str(text).map_err(|_| RpcError::invalid_params("Expected array, received object (params)"))
        }
    }
}

/// Appends `{"jsonrpc":…,"id":…` (no closing brace).
pub(crate) fn open(out: &mut Vec<u8>, jsonrpc: Option<&RawValue>, id: Option<&RawValue>) {
    out.extend_from_slice(b"{\"jsonrpc\":");
    out.extend_from_slice(jsonrpc.map_or("\"2.0\"", RawValue::get).as_bytes());
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(id.get().as_bytes());
    }
}

/// Appends `,"error":{…}}`, closing an object started by `open`.
pub(crate) fn close_with_error(out: &mut Vec<u8>, err: &RpcError) {
    out.extend_from_slice(b",\"error\":{\"code\":");
    write_i64(out, err.code);
    out.extend_from_slice(b",\"message\":");
    write_str(out, &err.message);
    out.extend_from_slice(b"}}");
}

/// A whole error answer not tied to any request item (`"id":null`).
pub(crate) fn error_body(err: &RpcError) -> Vec<u8> {
    let mut out = Vec::with_capacity(96 + err.message.len());
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":null");
    close_with_error(&mut out, err);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn single_keeps_raw_id_and_null() {
        let Parsed::Single(item) = parse(br#"{"jsonrpc":"2.0","id":null,"method":"node_isReady"}"#) else {
            panic!("not single")
        };
        assert_eq!(item.id.map(RawValue::get), Some("null"));
        let (name, params) = item.call.unwrap();
        assert_eq!(name, "node_isReady");
        assert!(params.is_none());
    }

    #[test]
    fn batch_limits_and_invalid_items() {
        assert!(matches!(parse(b"[]"), Parsed::Fail(e) if e.code == INVALID_REQUEST));
        assert!(matches!(parse(b"{"), Parsed::Fail(e) if e.code == PARSE_ERROR));
        let big = format!("[{}]", vec!["1"; MAX_BATCH + 1].join(","));
        assert!(matches!(parse(big.as_bytes()), Parsed::Fail(e) if e.code == INVALID_REQUEST));
        let Parsed::Batch(items) = parse(br#"[1,{"id":"x","method":5},{"id":2,"method":"a\u005fb"}]"#) else {
            panic!("not batch")
        };
        assert!(items[0].call.is_err());
        assert_eq!(items[1].id.map(RawValue::get), Some("\"x\""));
        assert!(items[1].call.is_err());
        assert_eq!(items[2].call.as_ref().unwrap().0, "a_b");
    }

    #[test]
    fn error_body_shape() {
        let body = error_body(&RpcError::method_not_found("x_\"y"));
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["error"]["code"], -32601);
        assert_eq!(v["error"]["message"], "Method not found: x_\"y");
        assert!(v["id"].is_null());
    }
}
