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
/// [`BodyError::Parse`] for malformed JSON (invalid UTF-8 included), [`BodyError::Invalid`]
/// for an empty batch or a scalar body.
pub fn parse_body(bytes: &[u8]) -> Result<Body, BodyError> {
    // serde_json skips members it ignores without checking their UTF-8, so a body with invalid
    // bytes in an unknown member parsed as a call (fuzz/fuzz_targets/request.rs): check first.
    // Checked once here, the text is then parsed as `str`: serde_json does not check each
    // string and raw value again.
    let text = std::str::from_utf8(bytes).map_err(|e| BodyError::Parse(e.to_string()))?;
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    match first {
        Some(b'[') => {
            let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| BodyError::Parse(e.to_string()))?;
            if items.is_empty() {
                return Err(BodyError::Invalid("empty batch".into()));
            }
            Ok(Body::Batch(items.into_iter().map(parse_item).collect()))
        }
        Some(b'{') => {
            // One pass for the common case; the slow path tells malformed JSON from a bad call.
            if let Ok(call) = serde_json::from_str::<RawCall<'_>>(text) {
                return Ok(Body::Single(item_of(call)));
            }
            let raw: &RawValue = serde_json::from_str(text).map_err(|e| BodyError::Parse(e.to_string()))?;
            Ok(Body::Single(parse_item(raw)))
        }
        Some(_) => match serde_json::from_str::<&RawValue>(text) {
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
    if method.bytes().all(|b| b >= b' ' && b != b'"' && b != b'\\') {
        // The usual name needs no escaping: written as is, without a string made for it.
        out.push(b'"');
        out.extend_from_slice(method.as_bytes());
        out.push(b'"');
    } else {
        let _ = serde_json::to_writer(&mut *out, method);
    }
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

/// A decoded node answer item: our id (as a position) and the outcome.
#[derive(Debug)]
pub struct Answer {
    /// The id the node echoed (our internal id: the call's position in what we sent).
    pub id: EchoedId,
    /// What the node said.
    pub outcome: Outcome,
    /// The answer had neither a `result` key nor an error: an `undefined` result from a node
    /// of package version 5.1 or older, not a JSON-RPC answer from a newer one (see
    /// [`result_always_sent`]).
    pub bare: bool,
}

/// The id on a node's answer, read as one of ours (our calls are numbered by position).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EchoedId {
    /// No id, or `null`.
    Missing,
    /// A number that can be a position.
    Position(usize),
    /// Anything else (a string, a float, a number past `usize`): not one of ours.
    Foreign,
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
    // UTF-8 checked once for the whole body, not string by string (JSON text is UTF-8).
    let text = std::str::from_utf8(bytes).ok()?;
    if *first == b'[' {
        let items: Vec<RawAnswer<'_>> = serde_json::from_str(text).ok()?;
        items.into_iter().map(to_answer).collect()
    } else {
        let item: RawAnswer<'_> = serde_json::from_str(text).ok()?;
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
    let id = a.id.map_or(EchoedId::Missing, |i| i.get().parse().map_or(EchoedId::Foreign, EchoedId::Position));
    Some(Answer { id, outcome, bare })
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
    serde_json::from_str::<FirstParam<'_>>(params?.get()).ok()?.0
}

/// The first element of a JSON array, the rest checked and skipped (no list is built).
struct FirstParam<'a>(Option<&'a RawValue>);

impl<'de> Deserialize<'de> for FirstParam<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = FirstParam<'de>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a params array")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let first = seq.next_element::<&'de RawValue>()?;
                while seq.next_element::<serde::de::IgnoredAny>()?.is_some() {}
                Ok(FirstParam(first))
            }
        }
        d.deserialize_seq(Visit)
    }
}

/// The first positional param as a plain integer (a block number).
pub fn first_number(params: Option<&RawValue>) -> Option<u64> {
    first_param(params)?.get().parse().ok()
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod properties;
