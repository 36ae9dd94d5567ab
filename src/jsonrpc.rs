//! JSON-RPC 2.0 envelopes: parsing client bodies into calls, encoding calls for a node, and
//! decoding a node's answers. Ids and params stay raw JSON (`Box<RawValue>`) so the client's id
//! is echoed byte for byte (numbers, strings, null) and params are never re-serialised.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

/// One parsed request item. `id` is `None` when the client sent no id key at all.
#[derive(Debug)]
pub struct Call {
    /// The client's id, raw.
    pub id: Option<Box<RawValue>>,
    /// Method name as sent (`aztec_x` or `node_x` or anything else).
    pub method: String,
    /// Params, raw (`None` = absent, which the node treats as `[]`).
    pub params: Option<Box<RawValue>>,
}

/// One item of a client body: a call, or an item that is not a valid request.
#[derive(Debug)]
pub enum Item {
    /// A well-formed call.
    Call(Call),
    /// Not a request object; answered with -32600 and this id (or null).
    Invalid {
        /// Id if one could be read.
        id: Option<Box<RawValue>>,
        /// Why it is invalid.
        reason: String,
    },
}

/// A client body: one request or a batch.
#[derive(Debug)]
pub enum Body {
    /// `{...}`
    Single(Item),
    /// `[...]`, at least one item.
    Batch(Vec<Item>),
}

/// Why a body could not be read at all.
#[derive(Debug, PartialEq, Eq)]
pub enum BodyError {
    /// Not JSON (-32700).
    Parse(String),
    /// JSON, but not an object or a non-empty array (-32600).
    Invalid(String),
}

/// Keeps an explicit `null` id (absent key → `None`, `null` → `Some("null")`).
fn present<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<&'de RawValue>, D::Error> {
    <&RawValue>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RawCall<'a> {
    #[serde(borrow, default, deserialize_with = "present")]
    id: Option<&'a RawValue>,
    #[serde(borrow, default)]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    params: Option<&'a RawValue>,
}

/// Parses a client body.
///
/// # Errors
/// [`BodyError::Parse`] for malformed JSON, [`BodyError::Invalid`] for an empty batch or a
/// scalar body.
pub fn parse_body(bytes: &[u8]) -> Result<Body, BodyError> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_slice(bytes).map_err(|e| BodyError::Parse(e.to_string()))?;
            if items.is_empty() {
                return Err(BodyError::Invalid("empty batch".into()));
            }
            Ok(Body::Batch(items.into_iter().map(parse_item).collect()))
        }
        Some(b'{') => {
            // One pass for the common case; the slow path tells malformed JSON from a bad call.
            if let Ok(call) = serde_json::from_slice::<RawCall<'_>>(bytes) {
                return Ok(Body::Single(item_of(call)));
            }
            let raw: &RawValue = serde_json::from_slice(bytes).map_err(|e| BodyError::Parse(e.to_string()))?;
            Ok(Body::Single(parse_item(raw)))
        }
        Some(_) => match serde_json::from_slice::<&RawValue>(bytes) {
            Ok(_) => Err(BodyError::Invalid("body is not an object or array".into())),
            Err(e) => Err(BodyError::Parse(e.to_string())),
        },
        None => Err(BodyError::Invalid("empty body".into())),
    }
}

fn parse_item(raw: &RawValue) -> Item {
    match serde_json::from_str::<RawCall<'_>>(raw.get()) {
        Ok(call) => item_of(call),
        Err(_) => diagnose(raw),
    }
}

/// The members of a JSON object in order, duplicates kept (a map would keep only one).
struct Members<'a>(Vec<(Cow<'a, str>, &'a RawValue)>);

impl<'de> Deserialize<'de> for Members<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Members<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut members = Vec::new();
                while let Some(entry) = map.next_entry::<Cow<'de, str>, &'de RawValue>()? {
                    members.push(entry);
                }
                Ok(Members(members))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Why an item that is valid JSON is not a request, as precisely as it can be said (the slow
/// path: only items that failed the one-pass parse get here). The id is echoed when it is
/// itself valid.
fn diagnose(raw: &RawValue) -> Item {
    let invalid = |id: Option<&RawValue>, reason: String| Item::Invalid { id: id.map(RawValue::to_owned), reason };
    let Ok(Members(members)) = serde_json::from_str::<Members<'_>>(raw.get()) else {
        return invalid(None, "request is not an object".into());
    };
    let field = |name: &str| members.iter().find(|(k, _)| k == name).map(|(_, v)| *v);
    let id = field("id").filter(|i| !matches!(i.get().as_bytes()[0], b'{' | b'[' | b't' | b'f'));
    for (i, (key, _)) in members.iter().enumerate() {
        if members[..i].iter().any(|(k, _)| k == key) {
            // Which of the two ids to echo is ambiguous: none.
            let id = if key == "id" { None } else { id };
            return invalid(id, format!("duplicate key {}", serde_json::to_string(key).unwrap_or_default()));
        }
    }
    if field("id").is_some() && id.is_none() {
        return invalid(None, "id must be a number, string or null".into());
    }
    if field("method").is_some_and(|m| !m.get().starts_with('"')) {
        return invalid(id, "method must be a string".into());
    }
    invalid(id, "request is not a valid JSON-RPC object".into())
}

fn item_of(call: RawCall<'_>) -> Item {
    let id = call.id.map(RawValue::to_owned);
    if let Some(i) = &id {
        let s = i.get().as_bytes()[0];
        if matches!(s, b'{' | b'[' | b't' | b'f') {
            return Item::Invalid { id: None, reason: "id must be a number, string or null".into() };
        }
    }
    match call.method {
        Some(m) if !m.is_empty() => {
            let params = call.params.filter(|p| p.get() != "null").map(RawValue::to_owned);
            if let Some(p) = &params {
                if !p.get().starts_with('[') {
                    return Item::Invalid { id, reason: "params must be an array".into() };
                }
            }
            Item::Call(Call { id, method: m.into_owned(), params })
        }
        _ => Item::Invalid { id, reason: "missing or empty method".into() },
    }
}

/// Appends `{"jsonrpc":"2.0","id":<id>,"method":<method>,"params":<params>}` to `out`.
pub fn encode_call(out: &mut Vec<u8>, id: &str, method: &str, params: Option<&str>) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\",\"id\":");
    out.extend_from_slice(id.as_bytes());
    out.extend_from_slice(b",\"method\":");
    out.extend_from_slice(serde_json::to_string(method).unwrap_or_default().as_bytes());
    out.extend_from_slice(b",\"params\":");
    out.extend_from_slice(params.unwrap_or("[]").as_bytes());
    out.push(b'}');
}

/// The JSON-RPC code of an unknown method.
pub const METHOD_NOT_FOUND: i64 = -32601;

/// A node's answer to one call: a result (possibly absent → null) or an error object.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// `result`, raw; `None` when the node omitted it (undefined), which means null.
    Result(Option<std::sync::Arc<RawValue>>),
    /// `error`, raw object, with its code read out.
    Error {
        /// JSON-RPC error code.
        code: i64,
        /// The whole error object, raw.
        raw: std::sync::Arc<RawValue>,
    },
}

impl Outcome {
    /// A gateway-made error object.
    pub fn error(code: i64, message: &str) -> Outcome {
        let text = serde_json::json!({"code": code, "message": message}).to_string();
        Outcome::Error { code, raw: raw_arc(text) }
    }

    /// The JSON text of the result, `None` for an error (absent result reads as `null`).
    pub fn result_text(&self) -> Option<&str> {
        match self {
            Outcome::Result(Some(r)) => Some(r.get()),
            Outcome::Result(None) => Some("null"),
            Outcome::Error { .. } => None,
        }
    }
}

fn raw_arc(text: String) -> std::sync::Arc<RawValue> {
    std::sync::Arc::from(RawValue::from_string(text).expect("valid json"))
}

#[derive(Deserialize)]
struct RawAnswer<'a> {
    #[serde(borrow, default)]
    id: Option<&'a RawValue>,
    #[serde(borrow, default, deserialize_with = "present")]
    result: Option<&'a RawValue>,
    #[serde(borrow, default)]
    error: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct ErrorCode {
    code: i64,
}

/// A decoded node answer item: our id (as text) and the outcome.
#[derive(Debug)]
pub struct Answer {
    /// The id the node echoed (our internal id), as JSON text.
    pub id: Option<String>,
    /// What the node said.
    pub outcome: Outcome,
    /// The answer had neither a `result` key nor an error: an `undefined` result from a node
    /// of package version 5.1 or older, not a JSON-RPC answer from a newer one (see
    /// [`result_always_sent`]).
    pub bare: bool,
}

/// Whether a node always sends `"result"` (`null` for nothing) — API major version 6 or newer,
/// or package version 5.2 or newer — so that an answer without it is not JSON-RPC (a failure
/// to fail over from), while older nodes omit it for `undefined` (docs/aztec-api.md#envelope).
/// `package_version` is the node's `x-aztec-packageVersion` (`5.2.0`, `v5.1.3-rc.1`).
pub fn result_always_sent(api_major: u8, package_version: Option<&str>) -> bool {
    let numbers = package_version.map(|v| {
        let mut parts = v.trim().trim_start_matches('v').split(['.', '-']).map(|p| p.parse::<u32>().ok());
        (parts.next().flatten(), parts.next().flatten())
    });
    match numbers {
        Some((Some(major), minor)) => major >= 6 || (major == 5 && minor.is_some_and(|m| m >= 2)),
        _ => api_major >= 6,
    }
}

/// Decodes a node body: one answer object, or an array of them. `None` when the body is not
/// JSON-RPC at all (garbage): that is a node failure, not an answer.
pub fn decode_answers(bytes: &[u8]) -> Option<Vec<Answer>> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace())?;
    if *first == b'[' {
        let items: Vec<RawAnswer<'_>> = serde_json::from_slice(bytes).ok()?;
        items.into_iter().map(to_answer).collect()
    } else {
        let item: RawAnswer<'_> = serde_json::from_slice(bytes).ok()?;
        Some(vec![to_answer(item)?])
    }
}

fn to_answer(a: RawAnswer<'_>) -> Option<Answer> {
    let outcome = match (a.result, a.error) {
        (_, Some(e)) if e.get() != "null" => {
            let code = serde_json::from_str::<ErrorCode>(e.get()).ok()?.code;
            Outcome::Error { code, raw: std::sync::Arc::from(e.to_owned()) }
        }
        (Some(r), _) if r.get() != "null" => Outcome::Result(Some(std::sync::Arc::from(r.to_owned()))),
        _ => Outcome::Result(None),
    };
    let bare = a.result.is_none() && matches!(outcome, Outcome::Result(_));
    Some(Answer { id: a.id.map(|i| i.get().to_owned()), outcome, bare })
}

/// Appends one answer object for the client, with the client's id (no `id` key when the client
/// sent none, as the node does).
pub fn encode_answer(out: &mut Vec<u8>, id: Option<&RawValue>, outcome: &Outcome) {
    out.extend_from_slice(b"{\"jsonrpc\":\"2.0\"");
    if let Some(id) = id {
        out.extend_from_slice(b",\"id\":");
        out.extend_from_slice(id.get().as_bytes());
    }
    match outcome {
        Outcome::Result(r) => {
            out.extend_from_slice(b",\"result\":");
            out.extend_from_slice(r.as_deref().map_or("null", RawValue::get).as_bytes());
        }
        Outcome::Error { raw, .. } => {
            out.extend_from_slice(b",\"error\":");
            out.extend_from_slice(raw.get().as_bytes());
        }
    }
    out.push(b'}');
}

/// The first positional param, raw (borrowed from `params`).
pub fn first_param(params: Option<&RawValue>) -> Option<&RawValue> {
    let p: Vec<&RawValue> = serde_json::from_str(params?.get()).ok()?;
    p.first().copied()
}

/// The first positional param as a plain integer (a block number).
pub fn first_number(params: Option<&RawValue>) -> Option<u64> {
    first_param(params)?.get().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn calls(body: &str) -> Vec<Item> {
        match parse_body(body.as_bytes()).unwrap() {
            Body::Single(i) => vec![i],
            Body::Batch(v) => v,
        }
    }

    #[test]
    fn first_param_reads_only_the_first_element() {
        let raw = |s: &str| RawValue::from_string(s.to_owned()).unwrap();
        assert_eq!(first_number(Some(&raw(r#"[7, {"a": [1, 2]}, "x"]"#))), Some(7));
        assert_eq!(first_param(Some(&raw(r#"[{"txHash": "0x1"}]"#))).map(RawValue::get), Some(r#"{"txHash": "0x1"}"#));
        assert_eq!(first_number(Some(&raw(r#"["latest"]"#))), None);
        assert!(first_param(Some(&raw("[]"))).is_none());
        assert!(first_param(Some(&raw(r#"{"a": 1}"#))).is_none(), "params must be positional");
        assert!(first_param(None).is_none());
    }

    #[test]
    fn ids_are_kept_raw() {
        let items = calls(r#"[{"id":0,"method":"a"},{"id":"x","method":"b"},{"id":null,"method":"c"},{"method":"d"}]"#);
        let ids: Vec<Option<String>> = items
            .iter()
            .map(|i| match i {
                Item::Call(c) => c.id.as_ref().map(|r| r.get().to_owned()),
                Item::Invalid { .. } => panic!("valid"),
            })
            .collect();
        assert_eq!(ids, [Some("0".into()), Some("\"x\"".into()), Some("null".into()), None]);
    }

    #[test]
    fn bad_bodies() {
        assert!(matches!(parse_body(b"{nope"), Err(BodyError::Parse(_))));
        assert!(matches!(parse_body(b"[]"), Err(BodyError::Invalid(_))));
        assert!(matches!(parse_body(b"42"), Err(BodyError::Invalid(_))));
        assert!(matches!(parse_body(b""), Err(BodyError::Invalid(_))));
        let items = calls(r#"[1, {"id":2}, {"id":3,"method":"m","params":{"a":1}}]"#);
        assert!(items.iter().all(|i| matches!(i, Item::Invalid { .. })));
    }

    #[test]
    fn newer_nodes_always_send_a_result() {
        let table: &[(u8, Option<&str>, bool)] = &[
            (5, Some("5.1.3"), false),
            (5, Some("v5.1.0-rc.2"), false),
            (5, Some("5.2.0"), true),
            (5, Some("v5.10.1"), true),
            (6, Some("6.0.0"), true),
            (4, Some("4.9.0"), false),
            (6, None, true),
            (5, None, false),
            (0, None, false),
            (6, Some("nightly"), true),
        ];
        for (api, version, want) in table {
            assert_eq!(result_always_sent(*api, *version), *want, "{api} {version:?}");
        }
    }

    /// The reason and the echoed id of an invalid single request.
    fn invalid(body: &str) -> (String, Option<String>) {
        match parse_body(body.as_bytes()) {
            Ok(Body::Single(Item::Invalid { id, reason })) => (reason, id.map(|i| i.get().to_owned())),
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn invalid_requests_say_precisely_why() {
        let table: &[(&str, &str, Option<&str>)] = &[
            (r#"{"id":1,"id":2,"method":"m"}"#, r#"duplicate key "id""#, None),
            (r#"{"id":7,"method":"a","method":"b"}"#, r#"duplicate key "method""#, Some("7")),
            (r#"{"id":"x","method":42}"#, "method must be a string", Some("\"x\"")),
            (r#"{"id":3,"method":null}"#, "missing or empty method", Some("3")),
            (r#"{"id":3,"method":["m"]}"#, "method must be a string", Some("3")),
            (r#"{"id":true,"method":"m"}"#, "id must be a number, string or null", None),
            (r#"{"id":4,"method":"m","params":{"a":1}}"#, "params must be an array", Some("4")),
            (r#"{"id":5}"#, "missing or empty method", Some("5")),
        ];
        for (body, reason, id) in table {
            let (got, got_id) = invalid(body);
            assert_eq!((got.as_str(), got_id.as_deref()), (*reason, *id), "{body}");
        }
        let items = calls(r#"[1, {"id":9,"id":9,"method":"m"}]"#);
        assert!(matches!(&items[0], Item::Invalid { reason, .. } if reason == "request is not an object"));
        assert!(matches!(&items[1], Item::Invalid { reason, .. } if reason == r#"duplicate key "id""#));
        assert!(matches!(parse_body(br#"{"id":1,"method":"m""#), Err(BodyError::Parse(_))), "malformed: -32700");
    }

    #[test]
    fn answers_decode_and_encode() {
        let a = decode_answers(
            br#"[{"jsonrpc":"2.0","id":1,"result":5},{"id":0,"error":{"code":-32601,"message":"x"}},{"id":2}]"#,
        )
        .unwrap();
        assert_eq!(a.len(), 3);
        assert!(matches!(a[1].outcome, Outcome::Error { code: -32601, .. }));
        assert_eq!(a[2].outcome.result_text(), Some("null"));
        assert!(decode_answers(b"<html>").is_none());
        let bare: Vec<bool> = a.iter().map(|a| a.bare).collect();
        assert_eq!(bare, [false, false, true], "only the answer without result nor error is bare");
        let null = decode_answers(br#"{"id":0,"result":null}"#).unwrap();
        assert!(!null[0].bare && null[0].outcome.result_text() == Some("null"));
        assert!(decode_answers(br#"{"id":0,"error":null}"#).unwrap()[0].bare);
        let mut out = Vec::new();
        let id = RawValue::from_string("\"abc\"".into()).unwrap();
        encode_answer(&mut out, Some(&id), &a[0].outcome);
        assert_eq!(out, br#"{"jsonrpc":"2.0","id":"abc","result":5}"#);
    }
}

/// Properties of request parsing and of matching a node's answers to the calls sent.
#[cfg(test)]
mod properties {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{json, Value};

    /// JSON-RPC ids a client may send: integers, strings (any text) and null.
    fn any_id() -> impl Strategy<Value = Value> {
        prop_oneof![any::<i64>().prop_map(Value::from), any::<String>().prop_map(Value::from), Just(Value::Null)]
    }

    /// Bytes that look like JSON often enough to reach every branch of the parser.
    fn jsonish() -> impl Strategy<Value = Vec<u8>> {
        prop_oneof![
            proptest::collection::vec(any::<u8>(), 0..128),
            r#"[\[\]{}":, 0-9a-z\\\n.eE+-]{0,64}"#.prop_map(String::into_bytes),
            (any_id(), "[a-z_]{0,12}").prop_map(|(id, m)| {
                // Valid requests with one key repeated or retyped.
                format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"{m}","id":{id},"method":{id}}}"#).into_bytes()
            }),
        ]
    }

    proptest! {
        /// Any byte string: no panic, and either a body or a -32700 (malformed JSON) / -32600
        /// (JSON that is not a request) error; JSON is never reported as malformed.
        #[test]
        fn parse_body_never_panics_and_classifies_errors(bytes in jsonish()) {
            let is_json = serde_json::from_slice::<&RawValue>(&bytes).is_ok();
            match parse_body(&bytes) {
                Ok(Body::Batch(items)) => prop_assert!(!items.is_empty()),
                Ok(Body::Single(_)) | Err(BodyError::Invalid(_)) => {}
                Err(BodyError::Parse(_)) => prop_assert!(!is_json, "valid JSON reported as -32700"),
            }
        }

        /// Any valid JSON-RPC request, alone or in a batch, comes out as a call with the same
        /// id, and the answer echoes that id.
        #[test]
        fn a_valid_request_round_trips_its_id(
            ids in proptest::collection::vec(any_id(), 1..8),
            method in "(aztec|node)_[a-zA-Z]{1,20}",
            batch in any::<bool>(),
        ) {
            let request = |id: &Value| json!({"jsonrpc": "2.0", "id": id, "method": method, "params": [1]});
            let body = if batch {
                Value::Array(ids.iter().map(request).collect())
            } else {
                request(&ids[0])
            };
            let items = match parse_body(body.to_string().as_bytes()).expect("valid") {
                Body::Single(i) => vec![i],
                Body::Batch(v) => v,
            };
            prop_assert_eq!(items.len(), if batch { ids.len() } else { 1 });
            for (item, want) in items.iter().zip(&ids) {
                let Item::Call(call) = item else { return Err(TestCaseError::fail(format!("{item:?}"))) };
                let raw = call.id.as_deref().expect("an id");
                prop_assert_eq!(&serde_json::from_str::<Value>(raw.get()).unwrap(), want);
                prop_assert_eq!(&call.method, &method);
                let mut out = Vec::new();
                encode_answer(&mut out, Some(raw), &Outcome::Result(None));
                prop_assert_eq!(&serde_json::from_slice::<Value>(&out).unwrap()["id"], want);
            }
        }

        /// However a node orders its answers, each goes back to the call with its internal id.
        #[test]
        fn answers_in_any_order_map_back_to_their_calls(
            order in (1usize..24).prop_flat_map(|n| Just((0..n).collect::<Vec<_>>()).prop_shuffle()),
        ) {
            let n = order.len();
            let answers: Vec<Value> = order.iter().map(|&i| json!({"jsonrpc": "2.0", "id": i, "result": i * 10})).collect();
            let body = if n == 1 { answers[0].to_string() } else { Value::Array(answers).to_string() };
            let outcomes = crate::wire::match_answers(body.as_bytes(), n).expect("every call answered");
            let results: Vec<String> = outcomes.iter().map(|o| o.result_text().unwrap_or("error").to_owned()).collect();
            let want: Vec<String> = (0..n).map(|i| (i * 10).to_string()).collect();
            prop_assert_eq!(results, want);
        }
    }
}
