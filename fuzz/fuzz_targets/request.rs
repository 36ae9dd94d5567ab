//! Request parsing (`jsonrpc::parse_body`) on any client body.
//!
//! Beyond "no panic": malformed JSON and JSON that is not a request are told apart exactly;
//! every call has a scalar id, a non-empty method and array params; re-encoding the calls
//! (`jsonrpc::encode_call`) and parsing them again gives the same ids byte for byte, the same
//! methods and params; and an answer encoded for the client echoes the id byte for byte.
#![no_main]

use std::collections::HashMap;

use libfuzzer_sys::fuzz_target;
use sentinel_proxy::jsonrpc::{self, Body, BodyError, Call, Item, Outcome};
use serde_json::value::RawValue;

fuzz_target!(|data: &[u8]| {
    let is_json = serde_json::from_slice::<&RawValue>(data).is_ok();
    let (items, batch) = match jsonrpc::parse_body(data) {
        Ok(Body::Single(item)) => (vec![item], false),
        Ok(Body::Batch(items)) => (items, true),
        Err(BodyError::Parse(_)) => return assert!(!is_json, "valid JSON reported as malformed"),
        Err(BodyError::Invalid(_)) => {
            let blank = data.iter().all(u8::is_ascii_whitespace);
            return assert!(is_json || blank, "malformed JSON reported as an invalid request");
        }
    };
    assert!(is_json, "a body that is not JSON was accepted");
    assert!(!items.is_empty());
    let mut calls = Vec::new();
    for item in &items {
        match item {
            Item::Call(call) => {
                assert!(!call.method.is_empty());
                assert!(call.params.as_ref().is_none_or(|p| p.get().starts_with('[')), "params {:?}", call.params);
                check_id(call.id.as_deref());
                check_echo(call.id.as_deref());
                calls.push(call);
            }
            Item::Invalid { id, .. } => {
                check_id(id.as_deref());
                check_echo(id.as_deref());
            }
        }
    }
    if calls.is_empty() {
        return;
    }
    let again = reparse(&calls, batch);
    assert_eq!(again.len(), calls.len());
    for (before, after) in calls.iter().zip(&again) {
        let Item::Call(after) = after else { panic!("a re-encoded call is invalid: {after:?}") };
        assert_eq!(before.id.as_deref().map(RawValue::get), after.id.as_deref().map(RawValue::get));
        assert_eq!(before.method, after.method);
        // `encode_call` sends absent params as `[]`.
        let params = |c: &Call| c.params.as_deref().map_or("[]", RawValue::get).to_owned();
        assert_eq!(params(before), params(after));
    }
});

/// An id the gateway keeps is a JSON number, string or null.
fn check_id(id: Option<&RawValue>) {
    let Some(id) = id else { return };
    let value: serde_json::Value = serde_json::from_str(id.get()).expect("an id is JSON");
    assert!(value.is_number() || value.is_string() || value.is_null(), "id {}", id.get());
}

/// The answer the client gets carries its id byte for byte.
fn check_echo(id: Option<&RawValue>) {
    let mut out = Vec::new();
    jsonrpc::encode_answer(&mut out, id, &Outcome::Result(None));
    let answers = jsonrpc::decode_answers(&out).expect("an encoded answer decodes");
    assert_eq!(answers.len(), 1);
    let object: HashMap<String, Box<RawValue>> = serde_json::from_slice(&out).expect("an answer is a JSON object");
    assert_eq!(object.get("id").map(|i| i.get()), id.map(RawValue::get), "the id, byte for byte");
}

/// The calls encoded as a client would send them, parsed again.
fn reparse(calls: &[&Call], batch: bool) -> Vec<Item> {
    let mut out = Vec::new();
    if batch {
        out.push(b'[');
    }
    for (i, call) in calls.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        let params = call.params.as_deref().map(RawValue::get);
        match &call.id {
            Some(id) => jsonrpc::encode_call(&mut out, id.get(), &call.method, params),
            None => {
                // A notification: the same object without the id key.
                let mut with_id = Vec::new();
                jsonrpc::encode_call(&mut with_id, "null", &call.method, params);
                let text = String::from_utf8(with_id).expect("utf-8");
                out.extend_from_slice(text.replacen("\"id\":null,", "", 1).as_bytes());
            }
        }
    }
    if batch {
        out.push(b']');
    }
    match jsonrpc::parse_body(&out) {
        Ok(Body::Single(item)) => vec![item],
        Ok(Body::Batch(items)) => items,
        Err(e) => panic!("re-encoded calls do not parse: {e:?} in {}", String::from_utf8_lossy(&out)),
    }
}
