//! Node-answer parsing and matching (`jsonrpc::decode_answers`, `wire::match_answers_from`) on
//! any node body. The first byte picks how many calls were sent (1..=32) and whether the node
//! always sends `result`; the rest is the body.
//!
//! Beyond "no panic": a match gives exactly one outcome per call, and call `i` only ever gets
//! an answer that carries id `i`, an answer without an id (or with a null id) standing at
//! position `i`, or a lone error object answering the whole batch — never the answer to an id
//! that was not asked. An answer encoded for the client decodes to the same outcome.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sentinel_proxy::jsonrpc::{self, Answer, Outcome};
use sentinel_proxy::wire;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else { return };
    let n = usize::from(head & 0x1f) + 1;
    let strict = head & 0x20 != 0;
    let decoded = jsonrpc::decode_answers(body);
    // The ids as the node wrote them (the decoded answers keep only what they mean).
    let raw_ids = decoded.as_ref().and_then(|_| raw_ids(body));
    if let (Some(answers), Some(ids)) = (&decoded, &raw_ids) {
        assert_eq!(answers.len(), ids.len());
        answers.iter().zip(ids).for_each(|(a, id)| check_client_encoding(a, id.as_deref()));
    }
    let Some(outcomes) = wire::match_answers_from(body, n, strict) else { return };
    let answers = decoded.expect("answers that matched were decoded");
    let Some(ids) = raw_ids else { return };
    assert_eq!(outcomes.len(), n, "one outcome per call");
    assert!(!strict || answers.iter().all(|a| !a.bare), "a bare answer from a node that always sends result");
    let lone_error = answers.len() == 1 && n > 1 && matches!(answers[0].outcome, Outcome::Error { .. });
    for (slot, got) in outcomes.iter().enumerate() {
        let asked = |pos: usize| match ids[pos].as_deref().map(RawValue::get) {
            None | Some("null") => pos == slot,
            Some(id) => serde_json::from_str::<u64>(id).is_ok_and(|id| id == slot as u64),
        };
        let from_its_call = answers.iter().enumerate().any(|(pos, a)| asked(pos) && same(&a.outcome, got));
        assert!(
            from_its_call || (lone_error && same(&answers[0].outcome, got)),
            "call {slot} of {n} got an answer it did not ask for: {got:?} in {}",
            String::from_utf8_lossy(body)
        );
    }
});

/// Outcomes with the same JSON text.
fn same(a: &Outcome, b: &Outcome) -> bool {
    match (a, b) {
        (Outcome::Error { code: ca, raw: ra }, Outcome::Error { code: cb, raw: rb }) => {
            ca == cb && ra.get() == rb.get()
        }
        _ => a.result_text().is_some() && a.result_text() == b.result_text(),
    }
}

/// The `id` of each answer in `body` (one answer, or a list of them), as written.
fn raw_ids(body: &[u8]) -> Option<Vec<Option<Box<RawValue>>>> {
    let items: Vec<Box<RawValue>> = match body.iter().find(|b| !b.is_ascii_whitespace()) {
        Some(b'[') => serde_json::from_slice(body).ok()?,
        _ => vec![serde_json::from_slice(body).ok()?],
    };
    items.iter().map(|item| id_of(item.get())).collect()
}

/// An answer's `id`: its member in an object; serde's derived decoding also takes a list
/// `[id, result, error]` by position, so there it is the first element.
fn id_of(item: &str) -> Option<Option<Box<RawValue>>> {
    if let Ok(mut object) = serde_json::from_str::<HashMap<String, Box<RawValue>>>(item) {
        return Some(object.remove("id"));
    }
    let list: Vec<Box<RawValue>> = serde_json::from_str(item).ok()?;
    Some(list.into_iter().next())
}

/// What the client gets for a node's answer (`encode_answer`, with the id the node wrote)
/// decodes to the same outcome and id.
fn check_client_encoding(answer: &Answer, id: Option<&RawValue>) {
    let mut out = Vec::new();
    jsonrpc::encode_answer(&mut out, id, &answer.outcome);
    let again = jsonrpc::decode_answers(&out).expect("an encoded answer decodes");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, answer.id);
    assert!(same(&again[0].outcome, &answer.outcome), "{:?} became {:?}", answer.outcome, again[0].outcome);
}
