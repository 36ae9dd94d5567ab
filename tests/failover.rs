//! No downtime: a node that fails mid-traffic costs the client nothing (failover and circuit
//! breaker, docs/architecture.md#failover), and writes are never sent twice once they reached a
//! node.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults};
use serde_json::json;
use support::{node, rpc, TestProxy};

/// Sends `n` uncacheable reads and returns how many did not get a result.
async fn failed_reads(url: &str, n: usize) -> usize {
    let mut failed = 0;
    for _ in 0..n {
        let r = rpc(url, "aztec_getCurrentMinFees", json!([])).await;
        if r.status != 200 || r.json().get("result").is_none() {
            failed += 1;
        }
    }
    failed
}

async fn zero_failed_reads_when_one_node(fault: Faults) {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[("ATTEMPT_TIMEOUT_MS", "300")]).await;
    // Make `a` the cheaper node, so it is the one tried when it breaks.
    b.set_faults(Faults { latency_ms: 20, ..Faults::default() });
    assert_eq!(failed_reads(&proxy.url, 10).await, 0);
    b.set_faults(Faults::default());
    a.set_faults(fault);
    let before = a.requests();
    assert_eq!(failed_reads(&proxy.url, 40).await, 0);
    assert!(a.requests() > before, "the faulty node was tried");
    assert!(b.calls("getCurrentMinFees") > 0);
}

#[tokio::test]
async fn zero_failed_reads_when_a_node_answers_500() {
    zero_failed_reads_when_one_node(Faults { http_status: Some(500), ..Faults::default() }).await;
}

#[tokio::test]
async fn zero_failed_reads_when_a_node_answers_garbage() {
    zero_failed_reads_when_one_node(Faults { garbage: true, ..Faults::default() }).await;
}

#[tokio::test]
async fn zero_failed_reads_when_a_node_hangs() {
    zero_failed_reads_when_one_node(Faults { hang: true, ..Faults::default() }).await;
}

#[tokio::test]
async fn zero_failed_reads_when_a_node_drops_connections() {
    zero_failed_reads_when_one_node(Faults { drop_connection: true, ..Faults::default() }).await;
}

#[tokio::test]
async fn zero_failed_reads_when_a_node_is_killed() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    b.set_faults(Faults { latency_ms: 20, ..Faults::default() });
    assert_eq!(failed_reads(&proxy.url, 10).await, 0);
    b.set_faults(Faults::default());
    a.stop();
    assert_eq!(failed_reads(&proxy.url, 40).await, 0);
    assert!(proxy.backend(0).await["errors"].as_u64().unwrap() > 0, "the dead node was tried");
}

#[tokio::test]
async fn circuit_opens_after_consecutive_failures() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("CIRCUIT_FAILURES", "3")]).await;
    a.set_faults(Faults { http_status: Some(503), ..Faults::default() });
    let before = a.requests();
    for _ in 0..3 {
        let r = rpc(&proxy.url, "aztec_getCurrentMinFees", json!([])).await;
        assert_eq!(r.status, 502, "a failing node is a bad gateway");
        assert_eq!(r.json()["error"]["code"], -32002);
    }
    let r = rpc(&proxy.url, "aztec_getCurrentMinFees", json!([])).await;
    assert_eq!(r.status, 503);
    let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("circuit open"), "{msg}");
    assert_eq!(a.requests() - before, 3, "an open circuit sends nothing");
    let h = proxy.backend(0).await;
    assert_eq!(h["circuit"], "open");
    assert_eq!(h["routable"], false);
}

#[tokio::test]
async fn send_tx_that_reached_a_node_is_sent_once() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    let boom = Faults { http_status: Some(500), ..Faults::default() };
    a.set_faults(boom.clone());
    b.set_faults(boom);
    let r = rpc(&proxy.url, "aztec_sendTx", json!([{"txHash": "0xabc", "data": "AA=="}])).await;
    assert_eq!(r.status, 502);
    assert_eq!(a.calls("sendTx") + b.calls("sendTx"), 1, "a write that reached a node is not retried");
}

#[tokio::test]
async fn send_tx_is_retried_when_it_never_reached_a_node() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    a.stop(); // still routable in the snapshot: connects are refused
    for i in 0..6 {
        let r = rpc(&proxy.url, "aztec_sendTx", json!([{"txHash": format!("0x{i:064x}"), "data": "AA=="}])).await;
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    assert_eq!(b.calls("sendTx"), 6);
}

#[tokio::test]
async fn receipts_follow_the_node_that_took_the_tx() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    let hash = format!("0x{:064x}", 42);
    let r = rpc(&proxy.url, "aztec_sendTx", json!([{"txHash": hash, "data": "AA=="}])).await;
    assert_eq!(r.status, 200);
    for _ in 0..20 {
        let r = rpc(&proxy.url, "aztec_getTxReceipt", json!([hash])).await;
        assert_eq!(r.json()["result"]["status"], "pending", "read-your-writes");
    }
}
