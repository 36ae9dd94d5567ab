//! The performance layer (docs/architecture.md#cache-coalescing-affinity): coalescing, the
//! finality-aware cache with a real Redis shared by replicas, short-lived tips, and hedging; and
//! rate limits shared through Redis.

mod support;

use std::time::Duration;

use sentinel_proxy::simulator::{ApiVersion, Faults, SimNode};
use serde_json::{json, Value};
use support::{eventually, node, post, rpc, RedisServer, TestProxy};

#[tokio::test]
async fn fifty_concurrent_identical_reads_reach_the_node_once_or_twice() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("CACHE_VOLATILE_MS", "0")]).await;
    a.set_faults(Faults { latency_ms: 300, ..Faults::default() });
    let reads = (0..50)
        .map(|i| post(&proxy.url, json!({"jsonrpc": "2.0", "id": i, "method": "aztec_getChainTips", "params": []})));
    let replies = futures::future::join_all(reads).await;
    for (i, r) in replies.iter().enumerate() {
        assert_eq!(r.status, 200);
        assert_eq!(r.json()["id"], json!(i), "every waiter gets its own id");
        assert!(r.json()["result"]["proposed"]["number"].is_u64());
    }
    assert!(a.calls("getChainTips") <= 2, "coalesced: {} calls", a.calls("getChainTips"));
    assert!(proxy.health().await["totals"]["coalesced"].as_u64().unwrap() >= 48);
}

#[tokio::test]
async fn coalesced_callers_get_the_status_their_call_gets_alone() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("CACHE_VOLATILE_MS", "0")]).await;
    a.set_faults(Faults { latency_ms: 300, rpc_error: Some(-32702), ..Faults::default() });
    // One caller sends the call inside a batch (the node answers the batch 200), the others
    // alone: each alone must get the 400 a node's error answer to a single call gets.
    let batch = post(&proxy.url, json!([{"jsonrpc": "2.0", "id": 0, "method": "aztec_getChainTips", "params": []}]));
    let alone = (1..30)
        .map(|i| post(&proxy.url, json!({"jsonrpc": "2.0", "id": i, "method": "aztec_getChainTips", "params": []})));
    let (batch, alone) = futures::join!(batch, futures::future::join_all(alone));
    assert_eq!(batch.status, 200);
    for r in &alone {
        assert_eq!(r.json()["error"]["code"], -32702);
        assert_eq!(r.status, 400, "{}", r.json());
    }
    assert!(a.calls("getChainTips") <= 2, "coalesced: {} calls", a.calls("getChainTips"));
}

#[tokio::test]
async fn a_finalized_block_is_fetched_once_for_twenty_reads() {
    let a = node(ApiVersion::V6).await;
    let proxy = TestProxy::start(&[&a], &[]).await;
    for _ in 0..20 {
        let r = rpc(&proxy.url, "aztec_getBlock", json!([5])).await;
        assert_eq!(r.json()["result"]["number"], 5);
    }
    assert_eq!(a.calls("getBlock"), 1);
    let r = rpc(&proxy.url, "aztec_getBlock", json!([5])).await;
    assert_eq!(r.header("x-sentinel-cache").as_deref(), Some("hit"));
    assert!(r.header("x-aztec-rollupversion").is_some(), "cached answers replay the node's headers");
    assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-0"));
    // A v4 caller's block has another shape: kept apart, fetched once for its generation too.
    for _ in 0..5 {
        rpc(&proxy.url, "node_getBlock", json!([5])).await;
    }
    assert_eq!(a.calls("getBlock"), 2, "one fetch per API generation");
    // Answers the same in every generation share one entry across namespaces.
    rpc(&proxy.url, "aztec_getL1Constants", json!([])).await;
    let r = rpc(&proxy.url, "node_getL1Constants", json!([])).await;
    assert_eq!(r.header("x-sentinel-cache").as_deref(), Some("hit"), "namespaces share entries");
}

#[tokio::test]
async fn unfinalized_blocks_and_null_results_are_not_cached() {
    let a = node(ApiVersion::V6).await;
    let proxy = TestProxy::start(&[&a], &[]).await;
    let tip = a.tip();
    for _ in 0..3 {
        rpc(&proxy.url, "aztec_getBlock", json!([tip])).await;
        let r = rpc(&proxy.url, "aztec_getBlock", json!([tip + 1000])).await;
        assert_eq!(r.json()["result"], Value::Null);
    }
    assert_eq!(a.calls("getBlock"), 6, "the tip block is above finalized; null is never cached");
}

#[tokio::test]
async fn a_new_tip_is_visible_within_one_cache_lifetime() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("CACHE_VOLATILE_MS", "300")]).await;
    let tip = a.tip();
    assert_eq!(rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.json()["result"], tip);
    a.set_faults(Faults { lag_blocks: 1, ..Faults::default() }); // the node's answer changes
    assert_eq!(rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.json()["result"], tip, "cached");
    let started = tokio::time::Instant::now();
    let seen = eventually(Duration::from_secs(2), || async {
        rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.json()["result"] == json!(tip - 1)
    })
    .await;
    assert!(seen);
    assert!(started.elapsed() < Duration::from_millis(600), "visible after {:?}", started.elapsed());
}

/// Warm-up for hedging: waves of ten concurrent, distinct (so neither cached nor coalesced)
/// reads, which power-of-two-choices spreads over both nodes by in-flight count, until each
/// node has the request history a hedge needs (sequential reads would all go to the faster
/// node); at most `waves` waves.
async fn warm_up(proxy: &TestProxy, a: &SimNode, b: &SimNode, waves: u64) {
    let tip = a.tip();
    for wave in 0..waves {
        let reads = (0..10).map(|i| rpc(&proxy.url, "aztec_getBlock", json!([tip + 1 + wave * 10 + i])));
        futures::future::join_all(reads).await;
        if a.calls("getBlock") >= 30 && b.calls("getBlock") >= 30 {
            break;
        }
    }
    assert!(a.calls("getBlock") >= 30 && b.calls("getBlock") >= 30, "both nodes warmed up");
}

#[tokio::test]
async fn hedging_rescues_reads_when_one_node_is_slow() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[("ATTEMPT_TIMEOUT_MS", "3000")]).await;
    warm_up(&proxy, &a, &b, 40).await;
    a.set_faults(Faults { latency_ms: 1500, ..Faults::default() });
    for _ in 0..5 {
        let started = tokio::time::Instant::now();
        let r = rpc(&proxy.url, "aztec_getCurrentMinFees", json!([])).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-1"));
        assert!(started.elapsed() < Duration::from_millis(1000), "no read waited for the slow node");
    }
    let h = proxy.health().await;
    assert_eq!(h["backends"][0]["errors"], 0, "hedge losers are not node errors");
}

#[tokio::test]
async fn a_hedge_answered_method_not_found_does_not_beat_the_slower_node() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let proxy = TestProxy::start(&[&a, &b], &[("ATTEMPT_TIMEOUT_MS", "3000")]).await;
    // Warm-up with `b` a little slower, so that afterwards `a` is the first choice.
    b.set_faults(Faults { latency_ms: 3, ..Faults::default() });
    warm_up(&proxy, &a, &b, 60).await;
    // `a` turns slow (a hedge goes to `b`), and `b` answers -32601 for everything, at once.
    a.set_faults(Faults { latency_ms: 300, ..Faults::default() });
    b.set_faults(Faults { rpc_error: Some(-32601), ..Faults::default() });
    let r = rpc(&proxy.url, "aztec_getCurrentMinFees", json!([])).await;
    assert_eq!(r.status, 200, "the hedge's -32601 was taken over the slower node's answer: {}", r.json());
    assert!(r.json().get("result").is_some(), "{}", r.json());
    assert_eq!(r.header("x-sentinel-backend").as_deref(), Some("node-0"));
}

#[tokio::test]
async fn replicas_share_the_redis_tier_and_survive_its_death() {
    let mut redis = RedisServer::start().await;
    let a = node(ApiVersion::V6).await;
    let settings = [("REDIS_URL", redis.url.as_str())];
    let (replica_a, replica_b) = two_replicas(&a, &settings).await;

    assert_eq!(rpc(&replica_a.url, "aztec_getBlock", json!([7])).await.json()["result"]["number"], 7);
    assert!(eventually(Duration::from_secs(5), || async { redis.dbsize().await >= 1 }).await, "written to redis");
    let r = rpc(&replica_b.url, "aztec_getBlock", json!([7])).await;
    assert_eq!(r.json()["result"]["number"], 7);
    assert_eq!(r.header("x-sentinel-cache").as_deref(), Some("hit"));
    assert!(r.header("x-aztec-rollupversion").is_some(), "headers survive the trip through redis");
    assert_eq!(a.calls("getBlock"), 1, "replica B answered without touching a node");

    redis.kill();
    for n in 10..20 {
        let r = rpc(&replica_b.url, "aztec_getBlock", json!([n])).await;
        assert_eq!(r.status, 200, "redis down: fail open");
        assert_eq!(r.json()["result"]["number"], n);
    }
    assert!(redis_errors(&replica_b).await >= 1.0, "redis failures are counted");
}

/// Two gateways in front of `node` with `settings` (which name a Redis), once both have
/// connected to it.
async fn two_replicas(node: &SimNode, settings: &[(&str, &str)]) -> (TestProxy, TestProxy) {
    let replica_a = TestProxy::start(&[node], settings).await;
    let replica_b = TestProxy::start(&[node], settings).await;
    let connected = eventually(Duration::from_secs(10), || async {
        replica_a.state.cache.redis_connected() && replica_b.state.cache.redis_connected()
    })
    .await;
    assert!(connected, "both replicas connect to redis");
    (replica_a, replica_b)
}

/// `sentinel_proxy_redis_errors_total` as `proxy` reports it.
async fn redis_errors(proxy: &TestProxy) -> f64 {
    let metrics = support::get(&format!("{}/metrics", proxy.url)).await;
    let text = String::from_utf8_lossy(&metrics.body).to_string();
    text.lines()
        .find(|l| l.starts_with("sentinel_proxy_redis_errors_total"))
        .and_then(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `n` reads of the block number on `url` as client `ip` (the gateway trusts 127.0.0.1 as a
/// proxy in this test, so `X-Forwarded-For` names the client).
async fn reads_as(url: &str, ip: &str, n: usize) -> Vec<support::Reply> {
    let mut out = Vec::new();
    for i in 0..n {
        let body = format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"aztec_getBlockNumber","params":[]}}"#);
        out.push(support::post_raw(url, body, &[("x-forwarded-for", ip)]).await);
    }
    out
}

/// How many of `replies` were allowed.
fn allowed(replies: &[support::Reply]) -> usize {
    replies.iter().filter(|r| r.status == 200).count()
}

#[tokio::test]
async fn replicas_share_rate_limits_through_redis_and_fall_back_to_their_own() {
    let mut redis = RedisServer::start().await;
    let a = node(ApiVersion::V6).await;
    let settings = [
        ("REDIS_URL", redis.url.as_str()),
        ("RATE_LIMIT_RPS", "1"),
        ("RATE_LIMIT_BURST", "5"),
        ("TRUSTED_PROXIES", "127.0.0.1/32"),
    ];
    let (replica_a, replica_b) = two_replicas(&a, &settings).await;

    let started = std::time::Instant::now();
    assert_eq!(allowed(&reads_as(&replica_a.url, "198.51.100.1", 5).await), 5, "the burst is allowed");
    let on_b = reads_as(&replica_b.url, "198.51.100.1", 5).await;
    // Alone, replica B's own bucket would allow all 5. Shared, only the tokens refilled since
    // the burst began (1 per second) are left.
    let refilled = started.elapsed().as_secs() as usize + 1;
    assert!(allowed(&on_b) <= refilled, "B allowed {} of 5 after A spent the burst", allowed(&on_b));
    let refused = on_b.iter().find(|r| r.status == 429).expect("B refuses");
    assert!(refused.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(refused.json()["error"]["code"], -32005);
    assert_eq!(allowed(&reads_as(&replica_b.url, "198.51.100.2", 5).await), 5, "buckets are per client");

    redis.kill();
    assert_eq!(
        allowed(&reads_as(&replica_b.url, "198.51.100.3", 5).await),
        5,
        "redis down: each replica falls back to its own bucket"
    );
    assert_eq!(reads_as(&replica_b.url, "198.51.100.3", 1).await[0].status, 429, "which still limits");
    assert!(redis_errors(&replica_b).await >= 1.0, "redis failures are counted");
}
