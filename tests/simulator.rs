//! End-to-end tests of the simulated Aztec node over real loopback sockets, with a plain hyper
//! client: namespaces and versions, batches, every fault, sentinel history shape, gzip, the
//! control endpoint and `stop()`.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read as _;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sentinel_proxy::simulator::{demo_fleet, ApiVersion, Faults, HistoryProfile, SimConfig, SimNode, PROFILE_NAMES};
use serde_json::{json, Value};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

struct Resp {
    status: u16,
    headers: HeaderMap,
    body: Bytes,
}

impl Resp {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

async fn send(c: &HttpClient, method: Method, url: &str, body: &str, headers: &[(&str, &str)]) -> Result<Resp, String> {
    let mut req = Request::builder().method(method).uri(url).header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req.body(Full::new(Bytes::from(body.to_owned()))).unwrap();
    let resp = c.request(req).await.map_err(|e| e.to_string())?;
    let status = resp.status().as_u16();
    let headers = resp.headers().clone();
    let body = resp.into_body().collect().await.map_err(|e| e.to_string())?.to_bytes();
    Ok(Resp { status, headers, body })
}

async fn post(node: &SimNode, body: &str) -> Resp {
    send(&client(), Method::POST, &node.url, body, &[]).await.unwrap()
}

async fn call(node: &SimNode, method: &str, params: Value) -> (u16, Value) {
    let body = json!({"jsonrpc":"2.0","id":1,"method":method,"params":params}).to_string();
    let r = post(node, &body).await;
    (r.status, r.json())
}

async fn start(version: ApiVersion) -> SimNode {
    SimNode::start(SimConfig::for_tests(version)).await.unwrap()
}

#[tokio::test]
async fn v5_serves_both_namespaces_with_identity_headers() {
    let node = start(ApiVersion::V5).await;
    for m in ["aztec_getBlockNumber", "node_getBlockNumber"] {
        let (status, v) = call(&node, m, json!([])).await;
        assert_eq!(status, 200);
        assert_eq!(v["result"], 20_000);
    }
    let (_, proven) = call(&node, "aztec_getBlockNumber", json!(["proven"])).await;
    let (_, tips) = call(&node, "aztec_getChainTips", json!([])).await;
    assert_eq!(tips["result"]["proven"]["block"]["number"], proven["result"]);
    let t = &tips["result"];
    let n = |tier: &str| t[tier]["block"]["number"].as_u64().unwrap();
    assert!(t["proposed"]["number"].as_u64().unwrap() >= n("checkpointed"));
    assert!(n("checkpointed") >= n("proven") && n("proven") >= n("finalized") && n("finalized") > 0);
    let (_, l1) = call(&node, "aztec_getL1Constants", json!([])).await;
    assert_eq!(
        (l1["result"]["epochDuration"].as_u64(), l1["result"]["targetCommitteeSize"].as_u64()),
        (Some(32), Some(24))
    );
    let (status, gone) = call(&node, "aztec_getL2Tips", json!([])).await;
    assert_eq!((status, gone["error"]["code"].as_i64()), (400, Some(-32601)));
    let r = post(&node, r#"{"jsonrpc":"2.0","id":1,"method":"aztec_isReady"}"#).await;
    assert_eq!(r.headers["x-aztec-packageversion"], "5.2.0");
    assert_eq!(r.headers["x-aztec-rollupversion"], "1821665230");
    assert_eq!(r.headers["x-aztec-l1chainid"], "11155111");
    let (_, info) = call(&node, "node_getNodeInfo", json!([])).await;
    assert_eq!(
        info["result"]["l1ContractAddresses"]["rollupAddress"],
        r.headers["x-aztec-l1rollupaddress"].to_str().unwrap()
    );
}

#[tokio::test]
async fn v4_and_v3_speak_only_the_legacy_dialect() {
    let v4 = start(ApiVersion::V4).await;
    let (status, v) = call(&v4, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["message"], "Method not found: aztec_getBlockNumber");
    let (_, tips) = call(&v4, "node_getL2Tips", json!([])).await;
    assert_eq!(tips["result"]["proposed"]["number"], 20_000);
    assert!(tips["result"]["proven"]["block"]["number"].is_u64());
    let (_, proven) = call(&v4, "node_getProvenBlockNumber", json!([])).await;
    assert_eq!(proven["result"], tips["result"]["proven"]["block"]["number"]);
    for missing in ["node_getChainTips", "node_getL1Constants"] {
        assert_eq!(call(&v4, missing, json!([])).await.1["error"]["code"], -32601, "{missing}");
    }
    let v3 = start(ApiVersion::V3).await;
    let (_, flat) = call(&v3, "node_getL2Tips", json!([])).await;
    assert_eq!(flat["result"]["latest"]["number"], 20_000);
    assert!(flat["result"]["proven"]["number"].is_u64());
}

#[tokio::test]
async fn batches_keep_order_and_exact_ids() {
    let node = start(ApiVersion::V6).await;
    let body = r#"[{"jsonrpc":"2.0","id":0,"method":"aztec_getBlockNumber"},
        {"jsonrpc":"2.0","id":"a\"b","method":"node_isReady","params":[]},
        {"jsonrpc":"2.0","id":null,"method":"aztec_nope"},
        {"jsonrpc":"2.0","method":"aztec_getChainId"},
        {"jsonrpc":"2.0","id":1.50,"method":"aztec_getVersion"}, 7]"#;
    let r = post(&node, body).await;
    assert_eq!(r.status, 200);
    let text = std::str::from_utf8(&r.body).unwrap();
    assert!(text.contains(r#""id":"a\"b""#) && text.contains(r#""id":1.50"#), "{text}");
    let v = r.json();
    assert_eq!(v[0]["id"], 0);
    assert_eq!(v[0]["result"], 20_000);
    assert_eq!(v[1]["result"], true);
    assert!(v[2].get("id").is_some_and(Value::is_null));
    assert_eq!(v[2]["error"]["code"], -32601);
    assert!(v[3].get("id").is_none());
    assert_eq!(v[3]["result"], 11_155_111);
    assert_eq!(v[5]["error"]["code"], -32600);

    for (body, code) in [("[]", -32600), ("{not json", -32700)] {
        let r = post(&node, body).await;
        assert_eq!((r.status, r.json()["error"]["code"].as_i64()), (400, Some(code)), "{body}");
    }
    let big = format!("[{}]", vec![r#"{"id":1,"method":"aztec_isReady"}"#; 101].join(","));
    let r = post(&node, &big).await;
    assert_eq!(r.status, 400);
    assert!(r.json().is_object());
    assert_eq!(node.calls("getBlockNumber"), 1);
    assert_eq!(node.calls("nope"), 1);
    assert_eq!(node.requests(), 4);
}

#[tokio::test]
async fn http_faults_status_garbage_and_rpc_error() {
    let node = start(ApiVersion::V5).await;
    node.update_faults(|f| f.http_status = Some(503));
    let r = post(&node, r#"{"id":1,"method":"aztec_getBlockNumber"}"#).await;
    assert_eq!(r.status, 503);
    assert!(r.headers.contains_key("x-aztec-rollupversion"));
    assert_eq!(node.calls("getBlockNumber"), 1);

    node.set_faults(Faults { garbage: true, ..Faults::default() });
    let r = post(&node, r#"{"id":1,"method":"aztec_getBlockNumber"}"#).await;
    assert_eq!(r.status, 200);
    assert!(serde_json::from_slice::<Value>(&r.body).is_err());

    node.set_faults(Faults { rpc_error: Some(-32603), ..Faults::default() });
    let r = post(&node, r#"[{"id":1,"method":"aztec_getBlockNumber"},{"id":2,"method":"aztec_isReady"}]"#).await;
    assert_eq!(r.status, 200);
    assert!(r.json().as_array().unwrap().iter().all(|i| i["error"]["code"] == -32603));
    let (status, _) = call(&node, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(status, 500);

    node.set_faults(Faults { rollup_version: Some(42), ..Faults::default() });
    let r = post(&node, r#"{"id":1,"method":"aztec_getVersion"}"#).await;
    assert_eq!((r.headers["x-aztec-rollupversion"].to_str().unwrap(), r.json()["result"].as_u64()), ("42", Some(42)));
}

#[tokio::test]
async fn hang_drop_and_latency() {
    let node = start(ApiVersion::V5).await;
    let c = client();
    node.update_faults(|f| f.hang = true);
    let hung = tokio::time::timeout(
        Duration::from_millis(200),
        send(&c, Method::POST, &node.url, r#"{"id":1,"method":"aztec_isReady"}"#, &[]),
    )
    .await;
    assert!(hung.is_err(), "a hung node answered");
    assert_eq!(node.calls("isReady"), 1, "the request was read");

    node.set_faults(Faults { drop_connection: true, ..Faults::default() });
    let dropped = send(&client(), Method::POST, &node.url, r#"{"id":1,"method":"aztec_isReady"}"#, &[]).await;
    assert!(dropped.is_err(), "a dropping node answered");

    node.set_faults(Faults { latency_ms: 120, ..Faults::default() });
    let started = Instant::now();
    let (status, _) = call(&node, "aztec_isReady", json!([])).await;
    assert_eq!(status, 200);
    assert!(started.elapsed() >= Duration::from_millis(120));
}

#[tokio::test]
async fn not_ready_status_route_and_lag() {
    let node = start(ApiVersion::V5).await;
    let c = client();
    let status_url = format!("{}/status", node.url);
    assert_eq!(send(&c, Method::GET, &status_url, "", &[]).await.unwrap().status, 200);
    node.update_faults(|f| {
        f.not_ready = true;
        f.lag_blocks = 10;
    });
    assert_eq!(call(&node, "aztec_isReady", json!([])).await.1["result"], false);
    let s = send(&c, Method::GET, &status_url, "", &[]).await.unwrap();
    assert_eq!(s.status, 500);
    assert!(s.headers.contains_key("x-aztec-l1chainid"));
    let tip = node.tip();
    assert_eq!(tip, 20_000);
    assert_eq!(call(&node, "aztec_getBlockNumber", json!([])).await.1["result"], tip - 10);
    assert_eq!(call(&node, "aztec_getChainTips", json!([])).await.1["result"]["proposed"]["number"], tip - 10);
    let ws = call(&node, "aztec_getWorldStateSyncStatus", json!([])).await.1;
    assert_eq!(ws["result"]["latestBlockNumber"], tip - 10);
    assert_eq!(send(&c, Method::GET, &format!("{}/nope", node.url), "", &[]).await.unwrap().status, 404);
}

#[tokio::test]
async fn blocks_and_transactions() {
    let node = start(ApiVersion::V5).await;
    let (_, b) = call(&node, "aztec_getBlock", json!([1234])).await;
    assert_eq!(b["result"]["number"], 1234);
    let hash = b["result"]["hash"].clone();
    assert_eq!(call(&node, "aztec_getBlock", json!([hash])).await.1["result"]["number"], 1234);
    assert_eq!(call(&node, "aztec_getBlock", json!(["latest"])).await.1["result"]["number"], 20_000);
    let beyond = call(&node, "aztec_getBlock", json!([20_001])).await.1;
    assert!(beyond.get("result").is_some_and(Value::is_null));
    assert_eq!(call(&node, "aztec_getBlock", json!([])).await.1["error"]["code"], -32701);

    let tx = json!({"txHash": "0xabc", "data": "AAAA"});
    let (status, sent) = call(&node, "aztec_sendTx", json!([tx])).await;
    assert_eq!(status, 200);
    assert!(sent.get("result").is_some_and(Value::is_null));
    assert_eq!(call(&node, "aztec_getTxReceipt", json!(["0xabc"])).await.1["result"]["status"], "pending");
    assert_eq!(call(&node, "aztec_getTxByHash", json!(["0xabc"])).await.1["result"], tx);
    assert_eq!(call(&node, "aztec_getPendingTxCount", json!([])).await.1["result"], 1);
    let other = start(ApiVersion::V4).await;
    assert_eq!(call(&other, "node_getTxReceipt", json!(["0xabc"])).await.1["result"]["status"], "dropped");
    let (_, v4_sent) = call(&other, "node_sendTx", json!([{"data": "BBBB"}])).await;
    assert!(v4_sent.get("result").is_none() && v4_sent.get("error").is_none(), "{v4_sent}");
    assert_eq!(call(&other, "node_getPendingTxCount", json!([])).await.1["result"], 1);
}

/// Per-epoch (A, M, T, validators) over a `ValidatorsStats` answer.
type Epochs = BTreeMap<u64, (u64, u64, u64, BTreeSet<String>)>;

fn tally(stats: &Value, spe: u64) -> Epochs {
    let mut epochs = Epochs::new();
    for (addr, v) in stats["stats"].as_object().unwrap() {
        for h in v["history"].as_array().unwrap() {
            let e = epochs.entry(h["slot"].as_u64().unwrap() / spe).or_default();
            e.3.insert(addr.clone());
            match h["status"].as_str().unwrap() {
                "attestation-sent" | "attestation-missed" => e.2 += 1,
                "block-missed" | "checkpoint-missed" | "blocks-missed" | "checkpoint-invalid" => e.1 += 1,
                _ => e.0 += 1,
            }
        }
    }
    epochs
}

/// Node score (docs/integrity.md#node-score-and-status) over the last 10 complete epochs (S = 32, E = 24).
fn score(stats: &Value) -> i64 {
    let (s, e) = (32.0_f64, 24.0_f64);
    let epochs = tally(stats, 32);
    let last = stats["lastProcessedSlot"].as_u64().unwrap() / 32;
    let mut floor = stats["initialSlot"].as_u64().unwrap() / 32;
    floor = floor.max(*epochs.keys().next().unwrap());
    let window = stats["slotWindow"].as_u64().unwrap();
    for v in stats["stats"].as_object().unwrap().values() {
        let h = v["history"].as_array().unwrap();
        if h.len() as u64 >= window {
            floor = floor.max(h[0]["slot"].as_u64().unwrap() / 32);
        }
    }
    let (mut sum, mut analysed, mut missing) = (0.0, 0.0, 0);
    for epoch in (last - 10..last).filter(|ep| *ep > floor) {
        let Some((a, m, t, v)) = epochs.get(&epoch) else {
            missing += 1;
            continue;
        };
        let (a, m, t, v) = (*a as f64, *m as f64, *t as f64, v.len() as f64);
        let mut sc = 100.0;
        if v > e {
            sc -= 40.0;
        }
        sc -= 30.0 * (a + m - s).abs() / s;
        if a * (e - 1.0) > 0.0 {
            sc -= 25.0 * (t - a * (e - 1.0)).abs() / (s * e);
        }
        if m == 0.0 && v < e {
            sc -= 20.0 * (e - v) / e;
        }
        sum += (sc.max(0.0) + 0.5).floor();
        analysed += 1.0;
    }
    let mean = if analysed > 0.0 { (sum / analysed + 0.5).floor() } else { 100.0 };
    (mean as i64 - 4 * missing).clamp(0, 100)
}

async fn stats_of(history: HistoryProfile, epochs: u64, version: ApiVersion) -> Value {
    let mut cfg = SimConfig::for_tests(version);
    cfg.history = history;
    cfg.history_epochs = epochs;
    let node = SimNode::start(cfg).await.unwrap();
    let (status, v) = call(&node, "node_getValidatorsStats", json!([])).await;
    assert_eq!(status, 200);
    v["result"].clone()
}

#[tokio::test]
async fn sentinel_history_profiles_score_as_designed() {
    let pruned = stats_of(HistoryProfile::Pruned, 24, ApiVersion::V5).await;
    assert_eq!(pruned["slotWindow"], 24 * 32);
    assert_eq!(pruned["lastProcessedSlot"], 20_000 / 2 - 2);
    let epochs = tally(&pruned, 32);
    let last = pruned["lastProcessedSlot"].as_u64().unwrap() / 32;
    for ep in last - 10..last {
        let (a, m, t, v) = &epochs[&ep];
        assert_eq!((a + m, *t, v.len()), (32, a * 23, 24), "epoch {ep}");
    }
    assert_eq!(score(&pruned), 100);
    for version in [ApiVersion::V3, ApiVersion::V4, ApiVersion::V6] {
        assert_eq!(score(&stats_of(HistoryProfile::Pruned, 24, version).await), 100, "{version}");
    }
    let archiver = stats_of(HistoryProfile::Archiver, 120, ApiVersion::V6).await;
    let archiver_epochs = tally(&archiver, 32);
    let depth = archiver_epochs.keys().last().unwrap() - archiver_epochs.keys().next().unwrap() + 1;
    assert!(depth > 100, "{depth}");
    assert_eq!(score(&archiver), 100);
    assert_eq!(score(&stats_of(HistoryProfile::Gapped, 24, ApiVersion::V5).await), 92);
    let corrupted = stats_of(HistoryProfile::Corrupted, 120, ApiVersion::V5).await;
    assert!(score(&corrupted) < 95, "{}", score(&corrupted));
    // Mined-ness is deterministic across healthy nodes and disagrees on the corrupted one.
    let mined = |v: &Value| -> BTreeSet<u64> {
        v["stats"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|s| s["history"].as_array().unwrap().iter())
            .filter(|h| h["status"] == "checkpoint-mined")
            .map(|h| h["slot"].as_u64().unwrap())
            .filter(|slot| *slot > 9_300)
            .collect()
    };
    assert_eq!(mined(&pruned), mined(&archiver));
    assert_ne!(mined(&pruned), mined(&corrupted));
    let disabled = stats_of(HistoryProfile::Disabled, 0, ApiVersion::V5).await;
    assert_eq!(disabled, json!({"stats":{},"slotWindow":0}));
}

#[tokio::test]
async fn single_validator_stats_and_runtime_history_override() {
    let node = start(ApiVersion::V6).await;
    let (_, all) = call(&node, "aztec_getValidatorsStats", json!([])).await;
    let addr = all["result"]["stats"].as_object().unwrap().keys().next().unwrap().clone();
    let (_, one) = call(&node, "aztec_getValidatorStats", json!([addr])).await;
    assert_eq!(one["result"]["validator"]["address"], addr.as_str());
    assert!(one["result"]["allTimeEpochPerformance"].is_array());
    let (_, batch) =
        call(&node, "aztec_getValidatorStatsBatch", json!([[addr, "0x0000000000000000000000000000000000000001"]]))
            .await;
    assert!(batch["result"][0].is_object() && batch["result"][1].is_null());
    let (status, wide) = call(&node, "aztec_getValidatorStats", json!([addr, 0, 100_000])).await;
    assert_eq!((status, wide["error"]["code"].as_i64()), (400, Some(-32702)));
    node.update_faults(|f| f.history = Some(HistoryProfile::Disabled));
    let (_, off) = call(&node, "aztec_getValidatorsStats", json!([])).await;
    assert_eq!(off["result"], json!({"stats":{},"slotWindow":0}));
    let (_, gone) = call(&node, "aztec_getValidatorStats", json!([addr])).await;
    assert!(gone.get("result").is_some_and(Value::is_null), "{gone}");
}

#[tokio::test]
async fn gzip_when_asked_or_forced() {
    let node = start(ApiVersion::V5).await;
    let c = client();
    let body = r#"{"id":1,"method":"aztec_getValidatorsStats"}"#;
    let r = send(&c, Method::POST, &node.url, body, &[("accept-encoding", "gzip")]).await.unwrap();
    assert_eq!(r.headers["content-encoding"], "gzip");
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&r.body[..]).read_to_end(&mut plain).unwrap();
    let v: Value = serde_json::from_slice(&plain).unwrap();
    assert!(v["result"]["stats"].is_object());
    let small =
        send(&c, Method::POST, &node.url, r#"{"id":1,"method":"aztec_isReady"}"#, &[("accept-encoding", "gzip")])
            .await
            .unwrap();
    assert!(!small.headers.contains_key("content-encoding"));
    node.update_faults(|f| f.force_gzip = true);
    let forced = send(&c, Method::POST, &node.url, r#"{"id":1,"method":"aztec_isReady"}"#, &[]).await.unwrap();
    assert_eq!(forced.headers["content-encoding"], "gzip");
}

#[tokio::test]
async fn control_endpoint_merges_and_resets() {
    let node = start(ApiVersion::V5).await;
    let c = client();
    let url = format!("{}/control", node.url);
    let got = send(&c, Method::GET, &url, "", &[]).await.unwrap();
    assert_eq!(serde_json::from_slice::<Faults>(&got.body).unwrap(), Faults::default());
    assert!(got.headers.contains_key("x-aztec-packageversion"));
    let set = send(&c, Method::POST, &url, r#"{"lag_blocks":5,"http_status":500}"#, &[]).await.unwrap();
    assert_eq!(set.status, 200);
    let set = send(&c, Method::POST, &url, r#"{"latency_ms":1}"#, &[]).await.unwrap();
    assert_eq!(set.status, 200, "control must ignore the http_status fault");
    let f = node.faults();
    assert_eq!((f.lag_blocks, f.http_status, f.latency_ms), (5, Some(500), 1));
    assert_eq!(send(&c, Method::POST, &url, r#"{"bogus":1}"#, &[]).await.unwrap().status, 400);
    assert_eq!(send(&c, Method::DELETE, &url, "", &[]).await.unwrap().status, 200);
    assert_eq!(node.faults(), Faults::default());
    assert_eq!(node.requests(), 0, "control is not RPC traffic");
}

#[tokio::test]
async fn stop_kills_open_and_new_connections() {
    let node = start(ApiVersion::V5).await;
    let c = client();
    // Warm a keep-alive connection, then leave a request hanging on it.
    assert_eq!(
        send(&c, Method::POST, &node.url, r#"{"id":1,"method":"aztec_isReady"}"#, &[]).await.unwrap().status,
        200
    );
    node.update_faults(|f| f.hang = true);
    let url = node.url.clone();
    let c2 = c.clone();
    let in_flight =
        tokio::spawn(async move { send(&c2, Method::POST, &url, r#"{"id":2,"method":"aztec_isReady"}"#, &[]).await });
    while node.calls("isReady") < 2 {
        tokio::task::yield_now().await;
    }
    node.stop();
    let result = tokio::time::timeout(Duration::from_secs(2), in_flight)
        .await
        .expect("in-flight request survived stop")
        .unwrap();
    assert!(result.is_err());
    let fresh = tokio::time::timeout(Duration::from_secs(2), send(&client(), Method::POST, &node.url, "{}", &[]))
        .await
        .unwrap();
    assert!(fresh.is_err(), "a stopped node answered");
}

#[tokio::test]
async fn profiles_and_demo_fleet() {
    for name in PROFILE_NAMES {
        let cfg = SimConfig::profile(name).unwrap_or_else(|| panic!("{name}"));
        assert!(cfg.block_ms > 0, "{name}");
    }
    assert!(SimConfig::profile("nope").is_none());
    assert_eq!(SimConfig::profile("lagging").unwrap().faults.lag_blocks, 10);
    assert_eq!("v4".parse::<ApiVersion>(), Ok(ApiVersion::V4));
    assert_eq!("gapped".parse::<HistoryProfile>(), Ok(HistoryProfile::Gapped));
    assert!("v9".parse::<ApiVersion>().is_err());
    let fleet = demo_fleet(1_000);
    let names: Vec<&str> = fleet.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names, ["archiver-1", "pruned-1", "corrupted-1", "lagging-1"]);
    assert!(fleet.iter().all(|c| c.genesis_unix_ms == 1_000 && c.block_ms > 0));

    // A live chain: genesis 60 s ago at 1 s per block has moved 60 blocks.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as u64;
    let mut cfg = SimConfig::for_tests(ApiVersion::V6);
    cfg.genesis_unix_ms = now - 60_000;
    cfg.block_ms = 1_000;
    let a = SimNode::start(cfg.clone()).await.unwrap();
    let b = SimNode::start(cfg).await.unwrap();
    assert!((20_059..=20_061).contains(&a.tip()), "{}", a.tip());
    let (ta, tb) =
        (call(&a, "aztec_getChainTips", json!([])).await.1, call(&b, "aztec_getChainTips", json!([])).await.1);
    assert_eq!(ta["result"]["finalized"], tb["result"]["finalized"]);
}

/// Rough throughput of `getBlockNumber` over keep-alive HTTP/1.1 (run with
/// `cargo test --release --test simulator -- --ignored --nocapture`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "measurement, not a check"]
async fn measure_get_block_number_throughput() {
    let node = start(ApiVersion::V5).await;
    let (conns, per_conn) = (16, 5_000);
    let started = Instant::now();
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let addr = node.addr;
            tokio::spawn(async move {
                let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
                let io = hyper_util::rt::TokioIo::new(stream);
                let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
                tokio::spawn(conn);
                let body =
                    Bytes::from_static(br#"{"jsonrpc":"2.0","id":1,"method":"aztec_getBlockNumber","params":[]}"#);
                for _ in 0..per_conn {
                    let req = Request::post("/")
                        .header("host", "sim")
                        .header("content-type", "application/json")
                        .body(Full::new(body.clone()))
                        .unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    let _ = resp.into_body().collect().await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let took = started.elapsed();
    let total = conns * per_conn;
    println!("{total} requests in {took:?}: {:.0} req/s", total as f64 / took.as_secs_f64());
    assert_eq!(node.calls("getBlockNumber"), total as u64);
}
