//! Talking JSON-RPC to one node: encode calls under the names that node answers (internal ids
//! `0..n`), send them as one body, and put the answers back in call order. The request path
//! ([`crate::dispatch`]) and the monitor's probes ([`crate::health`]) both go through here;
//! policy (failover, hedging, learning) stays with them.

use std::time::Duration;

use bytes::Bytes;

use crate::compat::{self, Outbound};
use crate::forward::{self, ForwardError, HttpClient, Reply};
use crate::jsonrpc::{self, EchoedId, Outcome};
use crate::upstream::Backend;

/// Encodes `(full method name, params JSON)` calls: one object for one call, else a batch.
pub fn encode<'a>(calls: impl ExactSizeIterator<Item = (&'a str, Option<&'a str>)>) -> Bytes {
    let n = calls.len();
    let mut out = Vec::with_capacity(64 + n * 96);
    if n != 1 {
        out.push(b'[');
    }
    for (i, (method, params)) in calls.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        jsonrpc::encode_call(&mut out, itoa::Buffer::new().format(i), method, params);
    }
    if n != 1 {
        out.push(b']');
    }
    out.into()
}

/// Encodes a client's calls for `backend`: the names and params it answers ([`compat`]).
pub fn encode_for(backend: &Backend, calls: &[Outbound]) -> Bytes {
    encode(calls.iter().map(|c| {
        let (name, params) = compat::wire_call(backend, c);
        (name, params.map(|p| p.get()))
    }))
}

/// Puts a node's answers back in call order by internal id (by position when an answer has no
/// id or a null one). An answer with any other id answers no call of ours and is dropped. A
/// lone error object answering a batch (e.g. the node's own batch limit) applies to every call.
/// `None` when some call got no answer.
pub fn match_answers(body: &[u8], n: usize) -> Option<Vec<Outcome>> {
    match_answers_from(body, n, false)
}

/// [`match_answers`] for a node that always sends `"result"` when `strict`: there an answer
/// with neither `result` nor `error` is not JSON-RPC (`None`), while older nodes omit `result`
/// for an `undefined` answer ([`jsonrpc::result_always_sent`]).
pub fn match_answers_from(body: &[u8], n: usize, strict: bool) -> Option<Vec<Outcome>> {
    let answers = jsonrpc::decode_answers(body)?;
    if strict && answers.iter().any(|a| a.bare) {
        return None;
    }
    if answers.len() == 1 && n > 1 {
        if let Outcome::Error { .. } = answers[0].outcome {
            return Some(vec![answers[0].outcome.clone(); n]);
        }
    }
    if n == 1 && answers.len() == 1 {
        // The common case, one call and its answer, without the list of slots.
        let a = answers.into_iter().next()?;
        return matches!(a.id, EchoedId::Missing | EchoedId::Position(0)).then(|| vec![a.outcome]);
    }
    let mut slots: Vec<Option<Outcome>> = vec![None; n];
    for (pos, a) in answers.into_iter().enumerate() {
        // An answer without an id (or with a null one) fills the slot at its position; an id
        // that is not one of ours (a string, a float, a number past usize) fills none.
        let idx = match a.id {
            EchoedId::Missing => pos,
            EchoedId::Position(id) => id,
            EchoedId::Foreign => continue,
        };
        if let Some(slot) = slots.get_mut(idx) {
            *slot = Some(a.outcome);
        }
    }
    slots.into_iter().collect()
}

/// Sends an encoded body of `n` calls to `backend` and matches the answers, within `timeout`;
/// `limit` bounds the answer's bytes (`None`: the request path's own bound, see
/// [`forward::send`]).
///
/// # Errors
/// The attempt's [`ForwardError`]; [`ForwardError::NotJsonRpc`] when the answers do not match
/// the calls.
pub async fn exchange(
    client: &HttpClient,
    backend: &Backend,
    body: Bytes,
    n: usize,
    request_id: &str,
    timeout: Duration,
    limit: Option<usize>,
) -> Result<(Reply, Vec<Outcome>), ForwardError> {
    let reply = match limit {
        Some(limit) => forward::send_limited(client, backend, body, request_id, timeout, limit).await?,
        None => forward::send(client, backend, body, request_id, timeout).await?,
    };
    let version =
        reply.aztec_headers.iter().find(|(k, _)| k == "x-aztec-packageversion").and_then(|(_, v)| v.to_str().ok());
    let strict = jsonrpc::result_always_sent(backend.api_major(), version);
    // A bare answer from a node that always sends `result` is a failure to fail over from.
    let outcomes = match_answers_from(&reply.body, n, strict).ok_or(ForwardError::NotJsonRpc)?;
    Ok((reply, outcomes))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn codes(o: &[Outcome]) -> Vec<String> {
        o.iter()
            .map(|o| match o {
                Outcome::Result(r) => r.as_ref().map_or("null".to_owned(), |r| r.get().to_owned()),
                Outcome::Error { code, .. } => code.to_string(),
            })
            .collect()
    }

    #[test]
    fn one_call_is_an_object_and_several_a_batch_with_internal_ids() {
        let one = encode([("aztec_isReady", None)].into_iter());
        assert_eq!(&one[..], br#"{"jsonrpc":"2.0","id":0,"method":"aztec_isReady","params":[]}"#);
        let two = encode([("node_getBlock", Some("[1]")), ("node_isReady", None)].into_iter());
        let v: serde_json::Value = serde_json::from_slice(&two).unwrap();
        assert_eq!(v[1]["id"], 1);
        assert_eq!(v[0]["params"], serde_json::json!([1]));
    }

    #[test]
    fn answers_are_matched_by_id_then_position() {
        let table: &[(&str, usize, Option<Vec<&str>>)] = &[
            (r#"[{"id":1,"result":"b"},{"id":0,"result":"a"}]"#, 2, Some(vec!["\"a\"", "\"b\""])),
            (r#"{"id":0,"result":5}"#, 1, Some(vec!["5"])),
            (r#"[{"result":"a"},{"result":"b"}]"#, 2, Some(vec!["\"a\"", "\"b\""])),
            (r#"{"id":null,"error":{"code":-32600,"message":"too big"}}"#, 3, Some(vec!["-32600"; 3])),
            (r#"[{"id":0,"result":1}]"#, 2, None),
            (r#"[{"id":0,"result":1},{"id":7,"result":2}]"#, 2, None),
            (r#"{"id":0}"#, 1, Some(vec!["null"])),
            (r#"[{"id":0,"result":1},{"id":null,"result":2}]"#, 2, Some(vec!["1", "2"])),
            // Found by fuzz/fuzz_targets/answers.rs: ids we never sent went to the call at
            // their position.
            (r#"[{"id":0,"result":1},{"id":"x","result":2}]"#, 2, None),
            (r#"[{"id":0,"result":1},{"id":"1","result":2}]"#, 2, None),
            (r#"[{"id":0,"result":1},{"id":1.5,"result":2}]"#, 2, None),
            (r#"[{"id":0,"result":1},{"id":18446744073709551617,"result":2}]"#, 2, None),
            (r#"not json"#, 1, None),
        ];
        assert_eq!(match_answers_from(br#"{"id":0}"#, 1, true).map(|o| codes(&o)), None, "bare from a 5.2+ node");
        let null = match_answers_from(br#"{"id":0,"result":null}"#, 1, true).map(|o| codes(&o));
        assert_eq!(null, Some(vec!["null".to_owned()]), "an explicit null is an answer");
        for (body, n, want) in table {
            let got = match_answers(body.as_bytes(), *n).map(|o| codes(&o));
            let want = want.as_ref().map(|w| w.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>());
            assert_eq!(got, want, "{body}");
        }
    }
}
