//! Unit tests of `jsonrpc`.

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
    // Found by the request fuzz target: invalid UTF-8 in an ignored member was accepted.
    let not_utf8 = b"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"aztec_getBlockNumber\",\"x\":\"\xff\"}";
    assert!(matches!(parse_body(not_utf8), Err(BodyError::Parse(_))));
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

#[test]
fn a_method_name_is_escaped_only_when_it_must_be() {
    let encoded = |method: &str| {
        let mut out = Vec::new();
        encode_call(&mut out, "0", method, None);
        let v: serde_json::Value = serde_json::from_slice(&out).expect("valid JSON");
        (String::from_utf8(out).unwrap(), v["method"].as_str().unwrap().to_owned())
    };
    let (text, method) = encoded("aztec_getBlock");
    assert!(text.contains(r#""method":"aztec_getBlock""#), "{text}");
    assert_eq!(method, "aztec_getBlock");
    for odd in ["a\"b", "a\\b", "tab\there", "nl\n", "ünï"] {
        assert_eq!(encoded(odd).1, odd, "round trip of {odd:?}");
    }
}
