//! Micro-benchmark of the gateway's request path without sockets: parse a client body, route
//! it (policy row, node choice), encode it for the node, then read the node's answer and write
//! the client's answer with the client's id. Each stage is timed alone and the whole chain
//! together, for one call and for a 10-item batch, so a regression shows in `cargo bench`
//! before it shows in `make bench` (docs/perf/README.md).

use std::hint::black_box;
use std::sync::Arc;

use criterion::{criterion_main, Criterion};
use sentinel_proxy::compat::Outbound;
use sentinel_proxy::config::Config;
use sentinel_proxy::jsonrpc::{self, Body, Item};
use sentinel_proxy::selection::{self, Needs, Route};
use sentinel_proxy::upstream::{Pool, Snapshot};
use sentinel_proxy::wire;

const SINGLE: &[u8] = br#"{"jsonrpc":"2.0","id":1,"method":"aztec_getBlock","params":[1000000123]}"#;
const SINGLE_ANSWER: &[u8] = br#"{"jsonrpc":"2.0","id":0,"result":null}"#;

/// Ten mixed reads, as in `bench/bodies/batch.json`.
fn batch() -> (Vec<u8>, Vec<u8>) {
    let methods = ["aztec_getBlockNumber", "aztec_getBlock", "aztec_getChainTips", "aztec_isReady", "aztec_getBlock"];
    let items: Vec<String> = (0..10)
        .map(|i| {
            let m = methods[i % methods.len()];
            let params = if m == "aztec_getBlock" { format!("[{}]", i + 1) } else { "[]".to_owned() };
            format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"{m}","params":{params}}}"#)
        })
        .collect();
    let answers: Vec<String> = (0..10)
        .map(|i| format!(r#"{{"jsonrpc":"2.0","id":{i},"result":{{"number":{i},"hash":"0x{i:064x}"}}}}"#))
        .collect();
    (format!("[{}]", items.join(",")).into_bytes(), format!("[{}]", answers.join(",")).into_bytes())
}

/// Three healthy nodes, as the monitor would publish them.
fn snapshot() -> Snapshot {
    let pool = Pool::new(&Config::for_tests(&["http://127.0.0.1:1", "http://127.0.0.1:2", "http://127.0.0.1:3"]));
    let mut backends = pool.snapshot().backends.clone();
    for v in &mut backends {
        v.health.healthy = true;
        v.health.known = true;
        v.health.reason = None;
    }
    Snapshot { backends, best_tip: Some(100), finalized: Some(90), reorgs: 0 }
}

/// The client's calls of a parsed body, and their ids.
fn calls(body: Body) -> (Vec<Outbound>, Vec<Option<Box<serde_json::value::RawValue>>>) {
    let items = match body {
        Body::Single(i) => vec![i],
        Body::Batch(v) => v,
    };
    items
        .into_iter()
        .filter_map(|i| match i {
            Item::Call(c) => Some((Outbound::new(c.method, c.params.map(Arc::from)), c.id)),
            Item::Invalid { .. } => None,
        })
        .unzip()
}

/// One request through every stage: parse → route → encode → match the node's answer → encode
/// the client's answer.
fn through(snapshot: &Snapshot, body: &[u8], answer: &[u8]) -> usize {
    let (calls, ids) = calls(jsonrpc::parse_body(body).expect("valid body"));
    let pick = selection::pick(snapshot, Route::Any, &Needs::default(), &calls).expect("a node serves it");
    let wire_body = wire::encode_for(&snapshot.backends[pick.index].backend, &calls);
    let outcomes = wire::match_answers(answer, calls.len()).expect("answers match");
    let mut out = Vec::with_capacity(answer.len() + 64);
    for (id, o) in ids.iter().zip(&outcomes) {
        jsonrpc::encode_answer(&mut out, id.as_deref(), o);
    }
    wire_body.len() + out.len()
}

fn benches() {
    let mut c = Criterion::default().configure_from_args();
    let snap = snapshot();
    let (batch_body, batch_answer) = batch();
    let mut g = c.benchmark_group("request_path");
    g.bench_function("parse single", |b| b.iter(|| jsonrpc::parse_body(black_box(SINGLE))));
    g.bench_function("parse batch10", |b| b.iter(|| jsonrpc::parse_body(black_box(&batch_body))));
    let (single_calls, _) = calls(jsonrpc::parse_body(SINGLE).expect("valid"));
    g.bench_function("route single", |b| {
        b.iter(|| selection::pick(black_box(&snap), Route::Any, &Needs::default(), &single_calls))
    });
    let backend = Arc::clone(&snap.backends[0].backend);
    g.bench_function("encode single", |b| b.iter(|| wire::encode_for(&backend, black_box(&single_calls))));
    g.bench_function("match answer single", |b| b.iter(|| wire::match_answers(black_box(SINGLE_ANSWER), 1)));
    g.bench_function("match answers batch10", |b| b.iter(|| wire::match_answers(black_box(&batch_answer), 10)));
    g.bench_function("whole single", |b| b.iter(|| through(&snap, black_box(SINGLE), SINGLE_ANSWER)));
    g.bench_function("whole batch10", |b| b.iter(|| through(&snap, black_box(&batch_body), &batch_answer)));
    g.finish();
    c.final_summary();
}

criterion_main!(benches);
