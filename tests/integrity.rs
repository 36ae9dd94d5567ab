//! Correct answers for history: the integrity engine (docs/integrity.md) in the loop — verdicts in
//! `/health`, `/archiver` and `/pruned` routing by kind and status, failures kept visible.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults, HistoryProfile, SimConfig, SimNode};
use serde_json::{json, Value};
use support::{post_raw, rpc, TestProxy};

async fn sim(history: HistoryProfile, epochs: u64) -> SimNode {
    let mut cfg = SimConfig::for_tests(ApiVersion::V6);
    cfg.history = history;
    cfg.history_epochs = epochs;
    SimNode::start(cfg).await.unwrap()
}

/// Settings so the simulator's history (S = 32, committee 24) is judged as configured.
const PARAMS: [(&str, &str); 2] = [("SLOTS_PER_EPOCH", "32"), ("EXPECTED_VALIDATORS", "24")];

async fn send_many(url: &str, n: usize) -> Vec<Value> {
    let mut out = Vec::new();
    for _ in 0..n {
        let r = rpc(url, "aztec_getCurrentMinFees", json!([])).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        out.push(r.json());
    }
    out
}

#[tokio::test]
async fn corrupted_archiver_turns_bad_and_archiver_route_stops_using_it() {
    let nodes = [
        sim(HistoryProfile::Archiver, 120).await,
        sim(HistoryProfile::Archiver, 120).await,
        sim(HistoryProfile::Archiver, 120).await,
    ];
    let mut proxy = TestProxy::start(&[&nodes[0], &nodes[1], &nodes[2]], &PARAMS).await;
    proxy.check_integrity().await;
    for i in 0..3 {
        let b = proxy.backend(i).await;
        assert_eq!(b["integrity"]["status"], "perfect", "{}", b["integrity"]);
        assert_eq!(b["kind"], "archiver");
    }
    nodes[2].update_faults(|f| f.history = Some(HistoryProfile::Corrupted));
    let mut intervals = 0;
    while proxy.backend(2).await["integrity"]["status"] != "bad" {
        intervals += 1;
        assert!(intervals <= 2, "bad within two intervals: {}", proxy.backend(2).await["integrity"]);
        proxy.check_integrity().await;
    }
    let b = proxy.backend(2).await;
    assert!(!b["integrity"]["inconsistent_epochs"].as_array().unwrap().is_empty());
    let issues: Vec<String> = b["integrity"]["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|e| e["issues"].as_array().unwrap().iter().map(|i| i.as_str().unwrap().to_owned()))
        .collect();
    assert!(!issues.is_empty(), "issues are listed per epoch");
    let before = nodes[2].calls("getCurrentMinFees");
    let archiver = format!("{}/archiver", proxy.url);
    send_many(&archiver, 30).await;
    assert_eq!(nodes[2].calls("getCurrentMinFees"), before, "/archiver never uses a bad node");
    assert!(nodes[0].calls("getCurrentMinFees") + nodes[1].calls("getCurrentMinFees") >= 30);
}

#[tokio::test]
async fn gapped_node_lists_its_missing_epochs() {
    let n = sim(HistoryProfile::Gapped, 24).await;
    let mut proxy = TestProxy::start(&[&n], &PARAMS).await;
    proxy.check_integrity().await;
    let i = proxy.backend(0).await["integrity"].clone();
    let missing = i["missing_epochs"].as_array().unwrap();
    assert!(!missing.is_empty(), "{i}");
    assert!(i["score"].as_u64().unwrap() < 100);
    let reported: Vec<&Value> =
        i["epochs"].as_array().unwrap().iter().filter(|e| missing.contains(&e["epoch"])).collect();
    assert_eq!(reported.len(), missing.len(), "each missing epoch has its report");
}

#[tokio::test]
async fn pruned_node_is_never_reached_through_archiver_and_pruned_falls_back() {
    let pruned = sim(HistoryProfile::Pruned, 24).await;
    let archiver = sim(HistoryProfile::Archiver, 120).await;
    let mut proxy = TestProxy::start(&[&pruned, &archiver], &PARAMS).await;
    proxy.check_integrity().await;
    assert_eq!(proxy.backend(0).await["kind"], "pruned");
    assert_eq!(proxy.backend(1).await["kind"], "archiver");
    send_many(&format!("{}/archiver", proxy.url), 20).await;
    assert_eq!(pruned.calls("getCurrentMinFees"), 0, "a pruned node is never reached through /archiver");

    let body = r#"{"jsonrpc":"2.0","id":1,"method":"aztec_getCurrentMinFees"}"#;
    let r = post_raw(&format!("{}/pruned", proxy.url), body, &[]).await;
    assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-0"));
    assert_eq!(r.header("x-sentinel-fallback"), None);

    pruned.set_faults(Faults { not_ready: true, ..Faults::default() });
    proxy.probe().await;
    let r = post_raw(&format!("{}/pruned", proxy.url), body, &[]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-1"));
    assert_eq!(r.header("x-sentinel-fallback").as_deref(), Some("archiver"));
}

#[tokio::test]
async fn archiver_route_with_no_archiver_is_503_saying_why() {
    let pruned = sim(HistoryProfile::Pruned, 24).await;
    let mut proxy = TestProxy::start(&[&pruned], &PARAMS).await;
    proxy.check_integrity().await;
    let r = rpc(&format!("{}/archiver", proxy.url), "aztec_getCurrentMinFees", json!([])).await;
    assert_eq!(r.status, 503);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("archiver") && msg.contains("node-0: pruned perfect"), "{msg}");
}

#[tokio::test]
async fn failed_stats_fetch_keeps_a_reason_and_the_gateway_serving() {
    let n = sim(HistoryProfile::Archiver, 120).await;
    let mut proxy = TestProxy::start(&[&n], &[("MAX_STATS_BYTES", "2048"), PARAMS[0], PARAMS[1]]).await;
    proxy.check_integrity().await;
    let i = proxy.backend(0).await["integrity"].clone();
    assert_eq!(i["status"], "unknown");
    assert!(i["error"].as_str().unwrap().contains("larger than 2048 bytes"), "{i}");
    send_many(&proxy.url, 5).await;
}

#[tokio::test]
async fn last_good_verdict_stays_visible_when_a_check_fails() {
    let n = sim(HistoryProfile::Archiver, 120).await;
    let mut proxy = TestProxy::start(&[&n], &PARAMS).await;
    proxy.check_integrity().await;
    let checked_at = proxy.backend(0).await["integrity"]["checked_at"].clone();
    assert!(checked_at.is_u64());
    n.set_faults(Faults { rpc_error: Some(-32603), ..Faults::default() });
    proxy.check_integrity().await;
    let i = proxy.backend(0).await["integrity"].clone();
    assert_eq!(i["status"], "perfect", "last good verdict kept: {i}");
    assert_eq!(i["checked_at"], checked_at, "with its age");
    assert!(i["error"].as_str().unwrap().contains("validator stats failed: HTTP 500"), "{i}");
}

#[tokio::test]
async fn disabled_sentinel_is_its_own_state_not_bad() {
    let n = sim(HistoryProfile::Disabled, 0).await;
    let mut proxy = TestProxy::start(&[&n], &PARAMS).await;
    proxy.check_integrity().await;
    let b = proxy.backend(0).await;
    let i = &b["integrity"];
    assert_eq!(i["status"], "sentinel-off", "{i}");
    assert!(i["reason"].as_str().unwrap().contains("disabled"), "{i}");
    assert_eq!(i["error"], serde_json::Value::Null, "not a failed check: {i}");
    assert_eq!(b["routable"], true, "cannot be judged, so not quarantined: {b}");
    let metrics = String::from_utf8(support::get(&format!("{}/metrics", proxy.url)).await.body.to_vec()).unwrap();
    assert!(
        metrics.contains(r#"sentinel_proxy_backend_integrity_status{backend="node-0",status="sentinel-off"} 1"#),
        "{metrics}"
    );
    assert!(metrics.contains(r#"sentinel_proxy_backend_integrity_score{backend="node-0"} -1"#), "{metrics}");
    send_many(&proxy.url, 3).await;
}

#[tokio::test]
async fn epoch_parameters_are_detected_from_v5_nodes() {
    let mut cfg = SimConfig::for_tests(ApiVersion::V6);
    cfg.committee_size = 16;
    cfg.slots_per_epoch = 8;
    cfg.history = HistoryProfile::Archiver;
    cfg.history_epochs = 120;
    let n = SimNode::start(cfg).await.unwrap();
    let mut proxy = TestProxy::start(&[&n], &[]).await;
    proxy.check_integrity().await;
    let i = proxy.backend(0).await["integrity"].clone();
    assert_eq!(i["status"], "perfect", "judged with S = 8, E = 16 read from getL1Constants: {i}");
}
