//! The plain-HTTP/1.1 paths on both sides of the gateway, over raw sockets: what a client sees on
//! the JSON-RPC fast path (pipelining, `Connection: close`, bodies in pieces, a connection that
//! turns to the operator surfaces), and the upstream side's pooled connections surviving a node
//! that closes them while idle.

mod support;

use std::time::Duration;

use serde_json::Value;
use support::{eventually, node, rpc, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use sentinel_proxy::simulator::ApiVersion;

fn post_head(id: u64, extra: &str) -> (String, String) {
    let body = format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"aztec_getBlockNumber"}}"#);
    let head = format!(
        "POST / HTTP/1.1\r\nhost: gw\r\ncontent-type: application/json\r\ncontent-length: {}\r\n{extra}\r\n",
        body.len()
    );
    (head, body)
}

/// Everything the gateway sends until it closes the connection (bounded, so a hang fails).
async fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("the gateway closed the connection")
        .expect("read");
    String::from_utf8(out).expect("utf-8 answers")
}

/// The JSON bodies of the first `n` HTTP/1.1 responses in `text`, in order (each framed by
/// content-length).
fn bodies(text: &str, n: usize) -> Vec<Value> {
    let mut rest = text;
    let mut out = Vec::new();
    while out.len() < n {
        let end = rest.find("\r\n\r\n").expect("another response");
        let head = &rest[..end];
        let len: usize = head
            .lines()
            .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(|v| v.trim().parse().unwrap()))
            .expect("content-length");
        let body = &rest[end + 4..end + 4 + len];
        out.push(serde_json::from_str(body).expect("json body"));
        rest = &rest[end + 4 + len..];
    }
    out
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order_then_the_connection_can_turn_to_get() {
    let n = node(ApiVersion::V4).await;
    let proxy = TestProxy::start(&[&n], &[]).await;
    let mut stream = TcpStream::connect(proxy.url.trim_start_matches("http://")).await.unwrap();
    let mut all = String::new();
    for id in [11, 12, 13] {
        let (head, body) = post_head(id, "");
        all.push_str(&head);
        all.push_str(&body);
    }
    // After the JSON-RPC posts, an operator request on the same connection (hyper serves it).
    all.push_str("GET /live HTTP/1.1\r\nhost: gw\r\nconnection: close\r\n\r\n");
    stream.write_all(all.as_bytes()).await.unwrap();
    let text = read_to_close(&mut stream).await;
    assert_eq!(text.matches("HTTP/1.1 200 OK\r\n").count(), 4, "{text}");
    let answers = bodies(&text, 3);
    let ids: Vec<&Value> = answers.iter().map(|a| &a["id"]).collect();
    assert_eq!(ids, [11, 12, 13], "answers in request order: {text}");
    assert!(answers.iter().all(|a| a["result"].is_u64()), "{text}");
}

#[tokio::test]
async fn a_body_in_pieces_is_read_whole_and_connection_close_is_honoured() {
    let n = node(ApiVersion::V4).await;
    let proxy = TestProxy::start(&[&n], &[]).await;
    let mut stream = TcpStream::connect(proxy.url.trim_start_matches("http://")).await.unwrap();
    let (head, body) = post_head(7, "x-request-id: piece-1\r\nconnection: close\r\n");
    stream.write_all(head.as_bytes()).await.unwrap();
    let (a, b) = body.split_at(10);
    stream.write_all(a.as_bytes()).await.unwrap();
    stream.flush().await.unwrap();
    stream.write_all(b.as_bytes()).await.unwrap();
    let text = read_to_close(&mut stream).await;
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    for line in
        ["connection: close", "x-request-id: piece-1", "x-sentinel-cache: miss", "content-type: application/json"]
    {
        assert!(text.contains(&format!("{line}\r\n")), "{line} missing: {text}");
    }
    assert_eq!(bodies(&text, 1)[0]["id"], 7);
}

#[tokio::test]
async fn malformed_and_unusual_requests_get_hyper_answers() {
    let n = node(ApiVersion::V4).await;
    let proxy = TestProxy::start(&[&n], &[("MAX_BODY_BYTES", "1024")]).await;
    let addr = proxy.url.trim_start_matches("http://");
    let cases: [(&str, &str); 3] = [
        // Over MAX_BODY_BYTES: 413, before the body is read.
        ("POST / HTTP/1.1\r\nhost: gw\r\ncontent-length: 5000\r\nconnection: close\r\n\r\n", "HTTP/1.1 413"),
        // A chunked body is read by hyper, and answered as JSON-RPC.
        (
            "POST / HTTP/1.1\r\nhost: gw\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n4\r\nnull\r\n0\r\n\r\n",
            "HTTP/1.1 400",
        ),
        // Not HTTP at all.
        ("HELLO\r\n\r\n", "HTTP/1.1 400"),
    ];
    for (request, status) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(request.as_bytes()).await.unwrap();
        let text = read_to_close(&mut stream).await;
        assert!(text.starts_with(status), "{request:?} → {text}");
    }
}

#[tokio::test]
async fn pooled_node_connections_closed_by_the_node_while_idle_cost_the_client_nothing() {
    let n = node(ApiVersion::V4).await;
    let proxy = TestProxy::start(&[&n], &[("CACHE_VOLATILE_MS", "0")]).await;
    for round in 0..3 {
        // Fills the gateway's pool with several connections to the node.
        let reads =
            futures::future::join_all((0..8).map(|_| rpc(&proxy.url, "aztec_getBlockNumber", Value::Array(vec![]))));
        for r in reads.await {
            assert_eq!(r.status, 200, "round {round}: {}", r.json());
        }
        // The node closes every idle keep-alive connection (as its keep-alive timeout would);
        // the gateway still holds them in its pool.
        assert!(n.open_connections() > 0);
        n.close_idle_connections();
        assert!(eventually(Duration::from_secs(5), || async { n.open_connections() == 0 }).await);
        let r = rpc(&proxy.url, "aztec_getBlockNumber", Value::Array(vec![])).await;
        assert_eq!(r.status, 200, "round {round}: a closed pooled connection failed the request: {}", r.json());
        assert!(r.json()["result"].is_u64());
    }
    let h = proxy.health().await;
    assert_eq!(h["backends"][0]["errors"], 0, "a stale pooled connection counted against the node: {h}");
}
