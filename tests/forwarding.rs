//! The JSON-RPC front (docs/architecture.md#surfaces): namespaces on every node version, batches,
//! headers, and every bad input with its documented answer — after which the gateway keeps
//! serving.

mod support;

use sentinel_proxy::simulator::{ApiVersion, Faults};
use serde_json::{json, Value};
use support::{get, node, post, post_raw, rpc, TestProxy};

#[tokio::test]
async fn both_namespaces_work_against_v3_v4_v5_and_v6_nodes() {
    for version in [ApiVersion::V3, ApiVersion::V4, ApiVersion::V5, ApiVersion::V6] {
        let n = node(version).await;
        let proxy = TestProxy::start(&[&n], &[]).await;
        assert_eq!(proxy.backend(0).await["routable"], true, "{version:?}: {}", proxy.backend(0).await);
        for method in ["aztec_getBlockNumber", "node_getBlockNumber"] {
            let r = rpc(&proxy.url, method, json!([])).await;
            assert_eq!(r.status, 200, "{version:?} {method}: {:?}", r.body);
            assert_eq!(r.json()["result"], json!(n.tip()), "{version:?} {method}");
        }
    }
}

#[tokio::test]
async fn batches_keep_order_and_ids() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V4).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 0, "method": "aztec_getBlockNumber", "params": []},
        {"jsonrpc": "2.0", "id": "two", "method": "node_isReady", "params": []},
        {"jsonrpc": "2.0", "id": null, "method": "nodeAdmin_setConfig", "params": [{}]},
        {"jsonrpc": "2.0", "id": 3.5, "method": "aztec_getBlock", "params": [1]},
        {"jsonrpc": "2.0", "id": 4},
        {"jsonrpc": "2.0", "id": 5, "method": "aztec_getChainId"}
    ]);
    for _ in 0..10 {
        let r = post(&proxy.url, batch.clone()).await;
        assert_eq!(r.status, 200);
        let items = r.json();
        let ids: Vec<Value> = items.as_array().unwrap().iter().map(|i| i["id"].clone()).collect();
        assert_eq!(ids, vec![json!(0), json!("two"), Value::Null, json!(3.5), json!(4), json!(5)]);
        assert_eq!(items[0]["result"], json!(a.tip()));
        assert_eq!(items[1]["result"], json!(true));
        assert_eq!(items[2]["error"]["code"], -32601, "admin methods never reach a node");
        assert_eq!(items[3]["result"]["number"], json!(1));
        assert_eq!(items[4]["error"]["code"], -32600);
        assert!(items[5]["result"].is_number(), "aztec_* translated for the v4 node too: {}", items[5]);
    }
    assert_eq!(a.calls("setConfig") + b.calls("setConfig"), 0);
}

#[tokio::test]
async fn every_bad_input_gets_its_documented_answer() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("MAX_BODY_BYTES", "4096"), ("MAX_BATCH", "3")]).await;
    let url = &proxy.url;
    let cases: Vec<(&str, Vec<u8>, u16, Option<i64>)> = vec![
        ("malformed json", b"{\"jsonrpc\":".to_vec(), 400, Some(-32700)),
        ("not json at all", b"hello".to_vec(), 400, Some(-32700)),
        ("empty batch", b"[]".to_vec(), 400, Some(-32600)),
        ("scalar body", b"17".to_vec(), 400, Some(-32600)),
        ("empty body", b"".to_vec(), 400, Some(-32600)),
        ("missing method", br#"{"jsonrpc":"2.0","id":1}"#.to_vec(), 400, Some(-32600)),
        ("params not array", br#"{"jsonrpc":"2.0","id":1,"method":"aztec_getBlock","params":{"a":1}}"#.to_vec(), 400, Some(-32600)),
        ("unknown method", br#"{"jsonrpc":"2.0","id":1,"method":"eth_blockNumber"}"#.to_vec(), 400, Some(-32601)),
        ("admin method", br#"{"jsonrpc":"2.0","id":1,"method":"aztecAdmin_rollbackTo","params":[1]}"#.to_vec(), 400, Some(-32601)),
        ("debug method", br#"{"jsonrpc":"2.0","id":1,"method":"aztecDebug_mineBlock"}"#.to_vec(), 400, Some(-32601)),
        ("p2p method", br#"{"jsonrpc":"2.0","id":1,"method":"p2p_getPeers"}"#.to_vec(), 400, Some(-32601)),
        ("batch too large", serde_json::to_vec(&json!([{"id":1,"method":"aztec_isReady"},{"id":2,"method":"aztec_isReady"},{"id":3,"method":"aztec_isReady"},{"id":4,"method":"aztec_isReady"}])).unwrap(), 400, Some(-32600)),
        ("oversized body", vec![b' '; 10_000], 413, Some(-32600)),
    ];
    for (name, body, status, code) in cases {
        let r = post_raw(url, body, &[]).await;
        assert_eq!(r.status, status, "{name}: {:?}", r.body);
        if let Some(code) = code {
            assert_eq!(r.json()["error"]["code"], code, "{name}");
        }
        assert!(r.header("x-request-id").is_some(), "{name}");
    }
    assert_eq!(get(url).await.status, 405);
    assert_eq!(get(&format!("{url}/archiver")).await.status, 405, "every JSON-RPC path wants POST");
    assert_eq!(post_raw(&format!("{url}/nope"), "{}", &[]).await.status, 404, "unknown paths are 404");
    assert_eq!(a.requests(), 1, "none of these reached the node (only the probe did)");
    let r = rpc(url, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(r.status, 200, "still serving");
}

#[tokio::test]
async fn node_errors_pass_through_with_their_status() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[]).await;
    // The node rejects the params: its own -32701 / HTTP 400 reaches the client.
    let r = rpc(&proxy.url, "aztec_getBlockNumber", json!(["not-a-tag"])).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["error"]["code"], -32701, "{}", r.json());
    assert!(r.json()["error"]["message"].as_str().unwrap().contains("not-a-tag"), "{}", r.json());
    a.set_faults(Faults { rpc_error: Some(-32702), ..Faults::default() });
    let r = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(r.json()["error"]["code"], -32702, "JSON-RPC errors are answers, not failures");
}

#[tokio::test]
async fn headers_name_the_node_and_keep_the_request_id() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V6).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    let body = r#"{"jsonrpc":"2.0","id":1,"method":"aztec_getBlockNumber"}"#;
    let r = post_raw(&proxy.url, body, &[("x-request-id", "abc-123")]).await;
    assert_eq!(r.header("x-request-id").as_deref(), Some("abc-123"));
    let backend = r.header("x-sentinel-backend").unwrap();
    assert!(backend == "node-0" || backend == "node-1", "{backend}");
    assert!(r.header("x-aztec-rollupversion").is_some(), "x-aztec-* passed through");
    let r = post_raw(&proxy.url, body, &[("x-request-id", "bad id with spaces")]).await;
    let id = r.header("x-request-id").unwrap();
    assert!(!id.contains(' ') && id.len() >= 16, "insane ids are replaced: {id}");
}

#[tokio::test]
async fn gzip_answers_from_nodes_are_decoded() {
    let a = node(ApiVersion::V5).await;
    a.set_faults(Faults { force_gzip: true, ..Faults::default() });
    let proxy = TestProxy::start(&[&a], &[]).await;
    assert_eq!(proxy.backend(0).await["routable"], true);
    let r = rpc(&proxy.url, "aztec_getBlock", json!([3])).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.json()["result"]["number"], 3);
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("RATE_LIMIT_RPS", "1"), ("RATE_LIMIT_BURST", "2")]).await;
    let statuses: Vec<u16> = futures::future::join_all((0..5).map(|_| rpc(&proxy.url, "aztec_isReady", json!([]))))
        .await
        .iter()
        .map(|r| r.status)
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 2, "{statuses:?}");
    let r = rpc(&proxy.url, "aztec_isReady", json!([])).await;
    assert_eq!(r.status, 429);
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(r.json()["error"]["code"], -32005);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_body_gets_an_answer_not_a_hung_connection() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("REQUEST_TIMEOUT_MS", "300")]).await;
    let mut s = tokio::net::TcpStream::connect(proxy.url.trim_start_matches("http://")).await.unwrap();
    s.write_all(
        b"POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{\"jsonrpc\"",
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 4096];
    let n = tokio::time::timeout(std::time::Duration::from_secs(5), s.read(&mut buf)).await.expect("answered").unwrap();
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("not received in time"), "{text}");
    assert_eq!(rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.status, 200, "still serving");
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_head_is_disconnected() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let a = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&a], &[("REQUEST_TIMEOUT_MS", "300")]).await;
    let addr = proxy.url.trim_start_matches("http://").to_owned();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    slow.write_all(b"POST / HTTP/1.1\r\nhost: x\r\ncontent-").await.unwrap();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(std::time::Duration::from_secs(5), slow.read(&mut buf)).await;
    let n = read.expect("the gateway closed the connection instead of holding it").unwrap_or(0);
    // hyper may write a 408 before closing; either way the connection ends.
    let text = String::from_utf8_lossy(&buf[..n]);
    assert!(n == 0 || text.starts_with("HTTP/1.1 408"), "{text}");
    assert_eq!(rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await.status, 200, "still serving");
}
