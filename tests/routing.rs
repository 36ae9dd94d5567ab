//! Correct answers: lagging, unready, unknown and off-network nodes get no traffic; no
//! routable node is a 503 with a JSON-RPC error saying why.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults};
use serde_json::json;
use support::{get, node, rpc, TestProxy};

#[tokio::test]
async fn lagging_node_gets_no_traffic_and_returns_when_caught_up() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let mut proxy = TestProxy::start(&[&a, &b], &[]).await;
    b.set_faults(Faults { lag_blocks: 10, ..Faults::default() });
    proxy.probe().await;
    let h = proxy.backend(1).await;
    assert_eq!(h["routable"], false);
    assert!(h["reason"].as_str().unwrap().contains("lagging 10 blocks"), "{h}");
    let before = b.calls("getCurrentMinFees");
    for _ in 0..30 {
        assert_eq!(rpc(&proxy.url, "aztec_getCurrentMinFees", json!([])).await.status, 200);
    }
    assert_eq!(b.calls("getCurrentMinFees"), before, "no traffic to the lagging node");

    b.set_faults(Faults::default());
    proxy.probe().await;
    assert_eq!(proxy.backend(1).await["routable"], true);
    // Concurrent load: power-of-two-choices spreads in-flight requests over both nodes.
    // Distinct unfinalized blocks: neither cached nor coalesced, so every read reaches a node.
    let reads = (0..40).map(|i| rpc(&proxy.url, "aztec_getBlock", json!([a.tip() + i])));
    futures::future::join_all(reads).await;
    assert!(b.calls("getBlock") > 0, "caught-up node serves again");
}

#[tokio::test]
async fn no_routable_node_is_503_with_a_reason() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V4).await);
    let mut proxy = TestProxy::start(&[&a, &b], &[]).await;
    a.set_faults(Faults { not_ready: true, ..Faults::default() });
    b.stop();
    proxy.probe().await;
    let r = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(r.status, 503);
    let err = &r.json()["error"];
    assert_eq!(err["code"], -32001);
    let msg = err["message"].as_str().unwrap();
    assert!(msg.contains("node-0: not ready") && msg.contains("node-1: probe failed"), "{msg}");
    assert_eq!(get(&format!("{}/ready", proxy.url)).await.status, 503);
    assert_eq!(get(&format!("{}/live", proxy.url)).await.status, 200);
}

#[tokio::test]
async fn node_on_another_rollup_is_quarantined() {
    let nodes = [node(ApiVersion::V5).await, node(ApiVersion::V5).await, node(ApiVersion::V6).await];
    nodes[2].set_faults(Faults { rollup_version: Some(999), ..Faults::default() });
    let proxy = TestProxy::start(&[&nodes[0], &nodes[1], &nodes[2]], &[]).await;
    let h = proxy.backend(2).await;
    assert_eq!(h["routable"], false);
    assert!(h["reason"].as_str().unwrap().contains("rollup version 999"), "{h}");
    assert_eq!(proxy.backend(0).await["routable"], true);
}

#[tokio::test]
async fn expected_rollup_version_is_enforced() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("EXPECTED_ROLLUP_VERSION", "12345")]).await;
    let h = proxy.backend(0).await;
    assert_eq!(h["routable"], false, "{h}");
    assert!(h["reason"].as_str().unwrap().contains("expected 12345"));
}

#[tokio::test]
async fn health_document_has_every_field() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V4).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;
    let h = proxy.health().await;
    assert_eq!(h["status"], "healthy");
    for k in ["uptime_s", "totals"] {
        assert!(h.get(k).is_some(), "{k}");
    }
    for k in ["requests", "errors", "error_rate", "cache_hits", "coalesced", "retries", "rate_limited"] {
        assert!(h["totals"].get(k).is_some(), "totals.{k}");
    }
    let b = &h["backends"][1];
    for k in [
        "name",
        "url",
        "ready",
        "routable",
        "reason",
        "tip",
        "proven",
        "lag",
        "circuit",
        "kind",
        "latency_ms",
        "requests",
        "errors",
        "integrity",
    ] {
        assert!(b.get(k).is_some(), "backend.{k}");
    }
    for k in
        ["score", "status", "depth_epochs", "missing_epochs", "inconsistent_epochs", "checked_at", "error", "epochs"]
    {
        assert!(b["integrity"].get(k).is_some(), "integrity.{k}");
    }
    assert_eq!(b["integrity"]["status"], "unknown");
    assert_eq!(b["tip"], a.tip());
}
