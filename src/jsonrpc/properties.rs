//! Properties of request parsing and of matching a node's answers to the calls sent.

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
