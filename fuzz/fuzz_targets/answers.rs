//! Node-answer parsing and matching (`jsonrpc::decode_answers`, `wire::match_answers_from`) on
//! any node body. The first byte picks how many calls were sent (1..=32) and whether the node
//! always sends `result`; the rest is the body.
//!
//! Beyond "no panic": a match gives exactly one outcome per call, and call `i` only ever gets
//! an answer that carries id `i`, an answer without an id (or with a null id) standing at
//! position `i`, or a lone error object answering the whole batch — never the answer to an id
//! that was not asked. An answer encoded for the client decodes to the same outcome.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_proxy::jsonrpc::{self, Answer, Outcome};
use sentinel_proxy::wire;
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let Some((&head, body)) = data.split_first() else { return };
    let n = usize::from(head & 0x1f) + 1;
    let strict = head & 0x20 != 0;
    let decoded = jsonrpc::decode_answers(body);
    if let Some(answers) = &decoded {
        answers.iter().for_each(check_client_encoding);
    }
    let Some(outcomes) = wire::match_answers_from(body, n, strict) else { return };
    let answers = decoded.expect("answers that matched were decoded");
    assert_eq!(outcomes.len(), n, "one outcome per call");
    assert!(!strict || answers.iter().all(|a| !a.bare), "a bare answer from a node that always sends result");
    let lone_error = answers.len() == 1 && n > 1 && matches!(answers[0].outcome, Outcome::Error { .. });
    for (slot, got) in outcomes.iter().enumerate() {
        let asked = |(pos, a): &(usize, &Answer)| match a.id.as_deref() {
            None | Some("null") => *pos == slot,
            Some(id) => serde_json::from_str::<u64>(id).is_ok_and(|id| id == slot as u64),
        };
        let from_its_call = answers.iter().enumerate().filter(asked).any(|(_, a)| same(&a.outcome, got));
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

/// What the client gets for a node's answer (`encode_answer`) decodes to the same outcome and id.
fn check_client_encoding(answer: &Answer) {
    let id = answer.id.as_deref().map(|id| RawValue::from_string(id.to_owned()).expect("a decoded id is JSON"));
    let mut out = Vec::new();
    jsonrpc::encode_answer(&mut out, id.as_deref(), &answer.outcome);
    let again = jsonrpc::decode_answers(&out).expect("an encoded answer decodes");
    assert_eq!(again.len(), 1);
    assert_eq!(again[0].id, answer.id);
    assert!(same(&again[0].outcome, &answer.outcome), "{:?} became {:?}", answer.outcome, again[0].outcome);
}
