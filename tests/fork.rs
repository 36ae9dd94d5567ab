//! Fork detection: nodes that agree on heights but not on hashes. A minority on another branch
//! is quarantined and comes back when it agrees again; two nodes that disagree are only shown;
//! a finalized disagreement is flagged as the severe case; a prune purges volatile answers.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults, SimNode};
use serde_json::{json, Value};
use support::{get, node, rpc, TestProxy};

async fn fleet(n: usize) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for _ in 0..n {
        nodes.push(node(ApiVersion::V5).await);
    }
    nodes
}

async fn proxy_over(nodes: &[SimNode], extra: &[(&str, &str)]) -> TestProxy {
    let refs: Vec<&SimNode> = nodes.iter().collect();
    TestProxy::start(&refs, extra).await
}

fn fork_from(block: u64) -> Faults {
    Faults { fork_from: Some(block), ..Faults::default() }
}

async fn metric(proxy: &TestProxy, line_start: &str) -> Option<String> {
    let text = String::from_utf8(get(&format!("{}/metrics", proxy.url)).await.body.to_vec()).unwrap();
    text.lines().find(|l| l.starts_with(line_start)).map(|l| l.rsplit(' ').next().unwrap().to_owned())
}

async fn tips(proxy: &TestProxy) -> Value {
    rpc(&proxy.url, "aztec_getChainTips", json!([])).await.json()["result"].clone()
}

#[tokio::test]
async fn a_forked_minority_is_quarantined_and_rejoins() {
    let nodes = fleet(3).await;
    let tip = nodes[0].tip();
    nodes[2].set_faults(fork_from(tip - 5));
    let mut proxy = proxy_over(&nodes, &[("CACHE_VOLATILE_MS", "0")]).await;
    let b = proxy.backend(2).await;
    assert_eq!(b["routable"], false, "{b}");
    let reason = b["reason"].as_str().unwrap();
    assert!(reason.starts_with("forked at block") && reason.contains("majority"), "{reason}");
    assert!(b["fork"]["majority"].is_string() && b["fork"]["finalized"] == false, "{b}");
    assert_eq!(proxy.backend(0).await["fork"], Value::Null);
    assert_eq!(metric(&proxy, r#"sentinel_proxy_backend_forked{backend="node-2"}"#).await.as_deref(), Some("1"));
    // No read above the fork point reaches the forked node.
    let before = nodes[2].calls("getBlock");
    for n in (tip - 4)..=tip {
        for _ in 0..4 {
            let r = rpc(&proxy.url, "aztec_getBlock", json!([n])).await;
            assert_eq!(r.status, 200);
            assert_ne!(r.header("x-sentinel-backend").as_deref(), Some("node-2"));
        }
    }
    assert_eq!(nodes[2].calls("getBlock"), before);
    // The majority's blocks are what clients see.
    let at = b["fork"]["height"].as_u64().unwrap();
    assert!(at >= tip - 5, "the disagreement is at or above the fork point: {b}");
    let block = rpc(&proxy.url, "aztec_getBlock", json!([at])).await.json();
    assert_eq!(block["result"]["hash"], b["fork"]["majority"], "{b}");

    nodes[2].set_faults(Faults::default());
    proxy.probe().await;
    let b = proxy.backend(2).await;
    assert_eq!((b["routable"].clone(), b["fork"].clone()), (json!(true), Value::Null), "{b}");
    assert_eq!(metric(&proxy, r#"sentinel_proxy_backend_forked{backend="node-2"}"#).await.as_deref(), Some("0"));
}

#[tokio::test]
async fn two_nodes_in_disagreement_are_shown_but_not_quarantined() {
    let nodes = fleet(2).await;
    nodes[1].set_faults(fork_from(nodes[1].tip() - 2));
    let proxy = proxy_over(&nodes, &[]).await;
    for i in 0..2 {
        let b = proxy.backend(i).await;
        assert_eq!(b["routable"], true, "no strict majority: {b}");
        assert!(b["fork"].is_object(), "{b}");
        assert_eq!(b["fork"]["majority"], Value::Null, "{b}");
    }
    assert_eq!(rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.status, 200);
}

#[tokio::test]
async fn a_finalized_hash_disagreement_is_the_severe_case() {
    let nodes = fleet(3).await;
    let mut proxy = proxy_over(&nodes, &[]).await;
    let finalized = tips(&proxy).await["finalized"]["block"]["number"].as_u64().unwrap();
    nodes[0].set_faults(fork_from(finalized - 3));
    proxy.probe().await;
    let b = proxy.backend(0).await;
    assert_eq!(b["routable"], false, "{b}");
    assert_eq!(b["fork"]["finalized"], true, "{b}");
    assert!(b["reason"].as_str().unwrap().starts_with("forked at finalized"), "{b}");
    assert_eq!(metric(&proxy, r#"sentinel_proxy_backend_forked{backend="node-0"}"#).await.as_deref(), Some("2"));
}

#[tokio::test]
async fn a_prune_purges_volatile_answers_but_keeps_finalized_ones() {
    let nodes = fleet(3).await;
    let mut proxy = proxy_over(&nodes, &[("CACHE_VOLATILE_MS", "600000")]).await;
    let before = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.json()["result"].as_u64().unwrap();
    let finalized = tips(&proxy).await["finalized"]["block"]["number"].as_u64().unwrap();
    let block = rpc(&proxy.url, "aztec_getBlock", json!([finalized - 1])).await.json();
    let fetched: u64 = nodes.iter().map(|n| n.calls("getBlock")).sum();
    for n in &nodes {
        n.set_faults(Faults { prune_blocks: 4, ..Faults::default() });
    }
    proxy.probe().await;
    assert_eq!(proxy.health().await["best_tip"], before - 4, "every node rolled back");
    let after = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.json()["result"].as_u64().unwrap();
    assert_eq!(after, before - 4, "the cached tip did not outlive the prune");
    assert_eq!(rpc(&proxy.url, "aztec_getBlock", json!([finalized - 1])).await.json(), block);
    assert_eq!(nodes.iter().map(|n| n.calls("getBlock")).sum::<u64>(), fetched, "finalized block still cached");
}
