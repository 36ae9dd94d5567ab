//! Mixed-version fleets: namespace learning that cannot flip, calls that go only to nodes that
//! serve them, renames bridged between API generations, version-sensitive answers from a node
//! of the caller's generation, and `-32601` learned per node without counting as a failure.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults, SimNode};
use serde_json::{json, Value};
use support::{node, post, rpc, TestProxy};

/// Tip caches off, so every call reaches a node.
const NO_CACHE: &[(&str, &str)] = &[("CACHE_VOLATILE_MS", "0"), ("CACHE_MAX_BYTES", "0")];

async fn fleet(versions: &[ApiVersion]) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for v in versions {
        nodes.push(node(*v).await);
    }
    nodes
}

async fn proxy_over(nodes: &[SimNode], extra: &[(&str, &str)]) -> TestProxy {
    let refs: Vec<&SimNode> = nodes.iter().collect();
    TestProxy::start(&refs, extra).await
}

/// Sends `n` calls of `method` in batches of ten; returns every item's answer.
async fn many(proxy: &TestProxy, method: &str, params: Value, n: usize) -> Vec<Value> {
    let mut answers = Vec::new();
    for round in 0..n.div_ceil(10) {
        let batch: Vec<Value> = (0..10)
            .map(|i| json!({"jsonrpc": "2.0", "id": round * 10 + i, "method": method, "params": params}))
            .collect();
        let r = post(&proxy.url, Value::Array(batch)).await;
        assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.body));
        answers.extend(r.json().as_array().unwrap().iter().cloned());
    }
    answers
}

fn errors(answers: &[Value]) -> Vec<&Value> {
    answers.iter().filter(|a| a.get("error").is_some() || a.get("result").is_none()).collect()
}

#[tokio::test]
async fn namespace_learning_cannot_flip_on_any_fleet() {
    for versions in [vec![ApiVersion::V4, ApiVersion::V4], vec![ApiVersion::V3, ApiVersion::V4, ApiVersion::V5]] {
        let nodes = fleet(&versions).await;
        let mut proxy = proxy_over(&nodes, NO_CACHE).await;
        // Rounds over the whole fleet, then over each node alone (so every version is asked).
        let alone: Vec<Option<usize>> = std::iter::once(None).chain((0..nodes.len()).map(Some)).collect();
        for only in alone {
            for (i, n) in nodes.iter().enumerate() {
                n.set_faults(Faults { not_ready: only.is_some_and(|o| o != i), ..Faults::default() });
            }
            proxy.probe().await;
            let before: Vec<u64> = nodes.iter().map(|n| n.calls("getBlockNumber")).collect();
            for method in ["aztec_getBlockNumber", "node_getBlockNumber", "aztec_getBlockNumber"] {
                let answers = many(&proxy, method, json!([]), 30).await;
                assert!(errors(&answers).is_empty(), "{versions:?} node {only:?} {method}: {:?}", errors(&answers));
            }
            if let Some(o) = only {
                assert!(nodes[o].calls("getBlockNumber") > before[o], "{versions:?}: node {o} was asked");
            }
        }
        for n in &nodes {
            n.set_faults(Faults::default());
        }
        proxy.probe().await;
        proxy.check_integrity().await;
        for i in 0..nodes.len() {
            let b = proxy.backend(i).await;
            assert_eq!(b["integrity"]["error"], Value::Null, "{versions:?}: {b}");
            assert_eq!(b["lacks_methods"], json!([]), "{versions:?}: {b}");
        }
    }
}

#[tokio::test]
async fn calls_go_only_to_nodes_that_serve_them() {
    let nodes = fleet(&[ApiVersion::V4, ApiVersion::V5]).await;
    let proxy = proxy_over(&nodes, NO_CACHE).await;
    let constants = many(&proxy, "aztec_getL1Constants", json!([]), 20).await;
    assert!(errors(&constants).is_empty(), "{:?}", errors(&constants));
    assert!(constants.iter().all(|a| a["result"]["epochDuration"].is_u64()));
    let headers = many(&proxy, "node_getBlockHeader", json!([]), 20).await;
    assert!(errors(&headers).is_empty(), "v4-only method: {:?}", errors(&headers));
    // A batch no single node serves whole is split, and each call still answered.
    let batch = json!([
        {"jsonrpc": "2.0", "id": 0, "method": "aztec_getL1Constants", "params": []},
        {"jsonrpc": "2.0", "id": 1, "method": "node_getBlockHeader", "params": []},
    ]);
    let r = post(&proxy.url, batch).await;
    let items = r.json();
    assert_eq!(r.status, 200);
    assert!(items[0]["result"]["slotDuration"].is_u64(), "{items}");
    assert!(items[1]["result"]["globalVariables"].is_object(), "{items}");
    for i in 0..2 {
        let b = proxy.backend(i).await;
        assert_eq!(b["errors"], 0, "{b}");
        assert_eq!(b["lacks_methods"], json!([]), "nothing was sent where it is not served: {b}");
    }
}

#[tokio::test]
async fn renames_bridge_generations_both_ways() {
    // A v4 client over a v5/v6 fleet.
    let current = fleet(&[ApiVersion::V5, ApiVersion::V6]).await;
    let proxy = proxy_over(&current, NO_CACHE).await;
    let tips = rpc(&proxy.url, "node_getL2Tips", json!([])).await.json();
    let chain_tips = rpc(&proxy.url, "aztec_getChainTips", json!([])).await.json();
    assert_eq!(tips["result"], chain_tips["result"], "getL2Tips answered through getChainTips");
    assert!(tips["result"]["proven"]["block"]["number"].is_u64(), "{tips}");
    let proven = rpc(&proxy.url, "node_getProvenBlockNumber", json!([])).await.json();
    assert_eq!(proven["result"], tips["result"]["proven"]["block"]["number"], "{proven}");
    let checkpointed = rpc(&proxy.url, "node_getCheckpointedBlockNumber", json!([])).await.json();
    assert_eq!(checkpointed["result"], tips["result"]["checkpointed"]["block"]["number"], "{checkpointed}");

    // A v5 client over a v4 fleet.
    let legacy = fleet(&[ApiVersion::V4, ApiVersion::V4]).await;
    let proxy = proxy_over(&legacy, NO_CACHE).await;
    let tips = rpc(&proxy.url, "aztec_getChainTips", json!([])).await.json();
    assert!(tips["result"]["finalized"]["block"]["number"].is_u64(), "{tips}");
    for (tag, tier) in [("proven", "proven"), ("checkpointed", "checkpointed")] {
        let n = rpc(&proxy.url, "aztec_getBlockNumber", json!([tag])).await.json();
        assert_eq!(n["result"], tips["result"][tier]["block"]["number"], "{tag}: {n}");
    }
    let n = rpc(&proxy.url, "aztec_getBlockNumber", json!(["proposed"])).await.json();
    assert_eq!(n["result"], tips["result"]["proposed"]["number"], "{n}");
    // A method v4 never had: the answer a v4 node gives, -32601, once.
    let r = rpc(&proxy.url, "aztec_getL1Constants", json!([])).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32601, "{}", r.json());
    assert_eq!(legacy[0].calls("getL1Constants") + legacy[1].calls("getL1Constants"), 0);
}

#[tokio::test]
async fn version_sensitive_answers_come_from_the_callers_generation() {
    let nodes = fleet(&[ApiVersion::V4, ApiVersion::V6]).await;
    let mut proxy = proxy_over(&nodes, NO_CACHE).await;
    for (method, want) in [("node_getValidatorsStats", "node-0"), ("aztec_getValidatorsStats", "node-1")] {
        for _ in 0..10 {
            let r = rpc(&proxy.url, method, json!([])).await;
            assert_eq!(r.status, 200);
            assert_eq!(r.header("x-sentinel-backend").as_deref(), Some(want), "{method}");
        }
    }
    // Blocks too, and the cache keeps the generations apart.
    let block = nodes[0].tip() - 5;
    let v4 = rpc(&proxy.url, "node_getBlock", json!([block])).await;
    let v6 = rpc(&proxy.url, "aztec_getBlock", json!([block])).await;
    assert_eq!(v4.header("x-sentinel-backend").as_deref(), Some("node-0"));
    assert_eq!(v6.header("x-sentinel-backend").as_deref(), Some("node-1"));
    // Without a node of its generation, a caller is still served.
    nodes[0].set_faults(Faults { not_ready: true, ..Faults::default() });
    proxy.probe().await;
    let r = rpc(&proxy.url, "node_getValidatorsStats", json!([])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-1"));
}

#[tokio::test]
async fn a_method_no_node_has_is_one_minus_32601_learned_per_node_and_not_a_failure() {
    let nodes = fleet(&[ApiVersion::V5, ApiVersion::V6]).await;
    let mut proxy = proxy_over(&nodes, NO_CACHE).await;
    // The simulator does not implement this v5+ method: every node answers -32601.
    let method = "aztec_getProposalsForSlot";
    for _ in 0..3 {
        let r = rpc(&proxy.url, method, json!([5])).await;
        assert_eq!(r.status, 400);
        let err = &r.json()["error"];
        assert_eq!(err["code"], -32601, "{err}");
        assert_eq!(err["message"], format!("Method not found: {method}"));
    }
    for i in 0..2 {
        let b = proxy.backend(i).await;
        assert_eq!(b["lacks_methods"], json!(["getProposalsForSlot"]), "{b}");
        assert_eq!(b["errors"], 0, "a -32601 is not a node failure: {b}");
        assert_eq!(b["circuit"], "closed", "{b}");
        assert_eq!(b["routable"], true, "{b}");
    }
    // A restart (the node was unreachable, then came back) forgets what it lacked.
    nodes[0].set_faults(Faults { drop_connection: true, ..Faults::default() });
    proxy.probe().await;
    nodes[0].set_faults(Faults::default());
    proxy.probe().await;
    assert_eq!(proxy.backend(0).await["lacks_methods"], json!([]));
    assert_eq!(proxy.backend(1).await["lacks_methods"], json!(["getProposalsForSlot"]));
}
