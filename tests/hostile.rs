//! Hostile clients and misbehaving nodes: the gateway's resource bounds hold. Connections that
//! send nothing, or go idle, are closed within `REQUEST_TIMEOUT_MS`; past `MAX_CONNECTIONS` new
//! connections are shed while the open ones keep being served; shutdown does not wait for idle
//! connections; node answers are bounded one by one (`MAX_RESPONSE_BYTES`) and together
//! (`MAX_BUFFERED_BYTES`), and their memory is given back.

mod support;

use std::convert::Infallible;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::StreamExt as _;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use sentinel_proxy::config::{Config, Sources};
use sentinel_proxy::simulator::{ApiVersion, SimNode};
use sentinel_proxy::state::AppState;
use sentinel_proxy::{gateway, server};
use serde_json::json;
use support::{eventually, get, get_with, node, post, rpc, TestProxy};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

/// The client preface of HTTP/2 plus an empty SETTINGS frame: after it, the connection is open
/// and idle (this client never answers a PING).
const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

fn addr(url: &str) -> &str {
    url.trim_start_matches("http://")
}

/// Reads (and discards) until the gateway closes the connection; how long that took, or `None`
/// if it was still open after `bound`.
async fn closed_within(stream: &mut TcpStream, bound: Duration) -> Option<Duration> {
    let started = Instant::now();
    let mut buf = [0u8; 4096];
    let read_to_end = async {
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        }
    };
    tokio::time::timeout(bound, read_to_end).await.ok().map(|()| started.elapsed())
}

/// An HTTP/1 connection of our own (so the test knows which connection a request uses).
async fn h1_connection(url: &str) -> hyper::client::conn::http1::SendRequest<Full<Bytes>> {
    let stream = TcpStream::connect(addr(url)).await.unwrap();
    let (send, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await.unwrap();
    tokio::spawn(conn);
    send
}

/// `GET /live` on an existing HTTP/1 connection.
async fn live_on(send: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>) -> u16 {
    let req = http::Request::get("/live").header("host", "gateway").body(Full::new(Bytes::new())).unwrap();
    let resp = send.send_request(req).await.expect("the open connection is served");
    let status = resp.status().as_u16();
    resp.into_body().collect().await.unwrap();
    status
}

#[tokio::test]
async fn a_silent_connection_is_closed_within_the_request_timeout() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &[("REQUEST_TIMEOUT_MS", "300")]).await;
    let mut silent = TcpStream::connect(addr(&p.url)).await.unwrap();
    let took = closed_within(&mut silent, Duration::from_secs(5)).await.expect("a silent connection is closed");
    assert!(took < Duration::from_millis(2000), "closed after {took:?}");
    // One byte and nothing more: the same bound (hyper's header timer alone would start late).
    let mut one_byte = TcpStream::connect(addr(&p.url)).await.unwrap();
    one_byte.write_all(b"P").await.unwrap();
    assert!(closed_within(&mut one_byte, Duration::from_secs(5)).await.is_some(), "a half-sent head is closed");
    let m = &p.state.metrics;
    assert!(eventually(Duration::from_secs(5), || async { m.open_connections.get() == 0 }).await, "gauge back to 0");
}

#[tokio::test]
async fn an_idle_http2_connection_is_closed() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &[("REQUEST_TIMEOUT_MS", "300")]).await;

    // A raw peer: preface, then silence (it never acknowledges PINGs nor GOAWAY).
    let mut raw = TcpStream::connect(addr(&p.url)).await.unwrap();
    raw.write_all(H2_PREFACE).await.unwrap();
    assert!(closed_within(&mut raw, Duration::from_secs(5)).await.is_some(), "idle raw HTTP/2 peer closed");

    // A well-behaved client that answers PINGs: one request, then idle; the gateway ends it.
    let stream = TcpStream::connect(addr(&p.url)).await.unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake::<_, _, Full<Bytes>>(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    let conn = tokio::spawn(conn);
    let req = http::Request::get(format!("{}/live", p.url)).body(Full::new(Bytes::new())).unwrap();
    assert_eq!(send.send_request(req).await.unwrap().status(), 200);
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "an idle HTTP/2 connection that answers pings is still closed (GOAWAY)");
}

#[tokio::test]
async fn past_max_connections_silent_ones_make_room_and_new_ones_are_shed_when_all_speak() {
    const MAX: usize = 4;
    let a = node(ApiVersion::V5).await;
    let max = MAX.to_string();
    let p = TestProxy::start(&[&a], &[("MAX_CONNECTIONS", &max), ("REQUEST_TIMEOUT_MS", "10000")]).await;
    let m = &p.state.metrics;
    let mut served = h1_connection(&p.url).await;
    assert_eq!(live_on(&mut served).await, 200);
    let mut silent = Vec::new();
    for _ in 1..MAX {
        silent.push(TcpStream::connect(addr(&p.url)).await.unwrap());
    }
    assert!(
        eventually(Duration::from_secs(5), || async { m.open_connections.get() == MAX as i64 }).await,
        "{MAX} connections held, gauge {}",
        m.open_connections.get()
    );

    // Full of silent connections: a new client still gets in, and the oldest silent one goes.
    let r = rpc(&p.url, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(r.status, 200, "a normal client is served while silent connections fill MAX_CONNECTIONS");
    let took = closed_within(&mut silent[0], Duration::from_secs(5)).await.expect("the oldest silent one is closed");
    assert!(took < Duration::from_secs(2), "closed at once, not at the first-byte deadline: {took:?}");
    assert_eq!(m.connections_shed.get(), 1, "the evicted silent connection is counted");
    assert_eq!(live_on(&mut served).await, 200, "a connection that spoke is never evicted");

    // Every open connection has spoken: now a new one is shed at once.
    drop(silent);
    assert!(eventually(Duration::from_secs(5), || async { m.open_connections.get() == 1 }).await);
    let mut speakers = vec![served];
    for _ in 1..MAX {
        let mut c = h1_connection(&p.url).await;
        assert_eq!(live_on(&mut c).await, 200);
        speakers.push(c);
    }
    assert_eq!(m.open_connections.get(), MAX as i64);
    let shed_before = m.connections_shed.get();
    let mut extra = TcpStream::connect(addr(&p.url)).await.unwrap();
    let took = closed_within(&mut extra, Duration::from_secs(5)).await.expect("connection N+1 is closed");
    assert!(took < Duration::from_secs(2), "shed at once, not after a timeout: {took:?}");
    assert_eq!(m.connections_shed.get(), shed_before + 1);
    for c in &mut speakers {
        assert_eq!(live_on(c).await, 200, "the connections that spoke are still served");
    }
    let text = m.render();
    assert!(text.contains("sentinel_proxy_connections_shed_total"), "{text}");
}

#[tokio::test]
async fn shutdown_does_not_wait_for_idle_connections() {
    let a = node(ApiVersion::V5).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let mut config = Config::for_tests(&[&a.url]);
    config.shutdown_grace = Duration::from_secs(20);
    config.request_timeout = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    let server = tokio::spawn(gateway::run(config, listener, cancel.clone()));
    assert!(eventually(Duration::from_secs(5), || async { get(&format!("{url}/ready")).await.status == 200 }).await);

    // Idle keep-alive HTTP/1, half-open (nothing sent) and idle HTTP/2 (never acks a PING).
    let mut keep_alive = h1_connection(&url).await;
    assert_eq!(live_on(&mut keep_alive).await, 200);
    let mut half_open = TcpStream::connect(addr(&url)).await.unwrap();
    let mut h2 = TcpStream::connect(addr(&url)).await.unwrap();
    h2.write_all(H2_PREFACE).await.unwrap();
    let mut settings = [0u8; 9];
    h2.read_exact(&mut settings).await.unwrap(); // the gateway's SETTINGS: the connection is served

    let started = Instant::now();
    cancel.cancel();
    tokio::time::timeout(Duration::from_secs(5), server)
        .await
        .expect("shutdown completes well before the 20 s grace period")
        .unwrap()
        .unwrap();
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
    assert!(closed_within(&mut half_open, Duration::from_secs(1)).await.is_some());
    assert!(closed_within(&mut h2, Duration::from_secs(1)).await.is_some());
}

/// A misbehaving node: it serves everything through a simulated node, except `getPendingTxs`,
/// which it answers with a JSON-RPC result of `size` bytes; with `hold`, it sends the head and
/// the first MiB, then waits for `release` before the rest.
struct HostileNode {
    url: String,
    size: Arc<AtomicUsize>,
    chunked: Arc<AtomicBool>,
    hold: Arc<AtomicBool>,
    release: tokio::sync::watch::Sender<bool>,
    big_calls: Arc<AtomicUsize>,
    _sim: SimNode,
}

impl HostileNode {
    async fn start() -> HostileNode {
        let sim = node(ApiVersion::V5).await;
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (release, released) = tokio::sync::watch::channel(false);
        let n = HostileNode {
            url,
            size: Arc::new(AtomicUsize::new(1 << 20)),
            chunked: Arc::new(AtomicBool::new(false)),
            hold: Arc::new(AtomicBool::new(false)),
            release,
            big_calls: Arc::new(AtomicUsize::new(0)),
            _sim: sim,
        };
        let upstream = n._sim.url.clone();
        let (size, chunked, hold, calls) =
            (Arc::clone(&n.size), Arc::clone(&n.chunked), Arc::clone(&n.hold), Arc::clone(&n.big_calls));
        tokio::spawn(async move {
            let client: Client<HttpConnector, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
            loop {
                let Ok((stream, _)) = listener.accept().await else { return };
                let (client, upstream, released) = (client.clone(), upstream.clone(), released.clone());
                let (size, chunked, hold, calls) =
                    (Arc::clone(&size), Arc::clone(&chunked), Arc::clone(&hold), Arc::clone(&calls));
                let service = hyper::service::service_fn(move |req: http::Request<Incoming>| {
                    let (client, upstream, mut released) = (client.clone(), upstream.clone(), released.clone());
                    let (size, chunked, hold, calls) =
                        (Arc::clone(&size), Arc::clone(&chunked), Arc::clone(&hold), Arc::clone(&calls));
                    async move {
                        let (parts, body) = req.into_parts();
                        let body = body.collect().await.unwrap().to_bytes();
                        if !String::from_utf8_lossy(&body).contains("getPendingTxs") {
                            let mut fwd = http::Request::post(&upstream).body(Full::new(body)).unwrap();
                            *fwd.headers_mut() = parts.headers;
                            fwd.headers_mut().remove(http::header::HOST);
                            let resp = client.request(fwd).await.unwrap();
                            let (parts, body) = resp.into_parts();
                            let body = body.collect().await.unwrap().to_bytes();
                            return Ok::<_, Infallible>(http::Response::from_parts(parts, Full::new(body).boxed()));
                        }
                        calls.fetch_add(1, Ordering::SeqCst);
                        let answer = big_answer(size.load(Ordering::SeqCst));
                        let total = answer.len();
                        let (first, rest) = answer.split_at(total.min(1 << 20));
                        let (first, rest) = (Bytes::copy_from_slice(first), Bytes::copy_from_slice(rest));
                        let held = hold.load(Ordering::SeqCst);
                        let frames = futures::stream::once(async move { Ok(Frame::data(first)) }).chain(
                            futures::stream::once(async move {
                                if held {
                                    let _ = released.wait_for(|r| *r).await;
                                }
                                Ok(Frame::data(rest))
                            }),
                        );
                        let mut resp = http::Response::new(BodyExt::boxed(StreamBody::new(frames)));
                        resp.headers_mut().insert("content-type", "application/json".parse().unwrap());
                        if !chunked.load(Ordering::SeqCst) {
                            resp.headers_mut().insert("content-length", total.into());
                        }
                        Ok(resp)
                    }
                });
                tokio::spawn(async move {
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        n
    }
}

const ANSWER_HEAD: &[u8] = br#"{"jsonrpc":"2.0","id":0,"result":""#;
const ANSWER_TAIL: &[u8] = br#""}"#;

/// A JSON-RPC answer (internal id 0) of exactly `size` bytes.
fn big_answer(size: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(size);
    out.extend_from_slice(ANSWER_HEAD);
    out.resize(size - ANSWER_TAIL.len(), b'a');
    out.extend_from_slice(ANSWER_TAIL);
    out
}

/// Length of the result string in [`big_answer`]`(size)`.
fn result_len(size: usize) -> usize {
    size - ANSWER_HEAD.len() - ANSWER_TAIL.len()
}

/// A gateway in front of arbitrary node URLs (`TestProxy` takes simulated nodes only).
struct Gateway {
    url: String,
    state: AppState,
    cancel: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Gateway {
    async fn start(urls: &[&str], extra: &[(&str, &str)]) -> Gateway {
        let mut src = Sources::for_tests(urls);
        for (k, v) in extra {
            src.set(k, *v);
        }
        let (state, mut monitor) = gateway::build(Config::from_sources(&src, true).expect("valid test config"));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        tokio::spawn(server::serve(listener, state.clone(), cancel.clone()));
        monitor.run_once().await;
        Gateway { url, state, cancel }
    }
}

#[tokio::test]
async fn an_answer_over_max_response_bytes_is_a_clear_502() {
    let hostile = HostileNode::start().await;
    let p = Gateway::start(&[&hostile.url], &[("MAX_RESPONSE_BYTES", "1048576")]).await;
    hostile.size.store(512 << 10, Ordering::SeqCst);
    let ok = rpc(&p.url, "aztec_getPendingTxs", json!([1])).await;
    assert_eq!(ok.status, 200, "{:?}", String::from_utf8_lossy(&ok.body[..200.min(ok.body.len())]));
    assert_eq!(ok.json()["result"].as_str().unwrap().len(), result_len(512 << 10));

    for chunked in [false, true] {
        hostile.chunked.store(chunked, Ordering::SeqCst);
        hostile.size.store(3 << 20, Ordering::SeqCst);
        let r = rpc(&p.url, "aztec_getPendingTxs", json!([2])).await;
        assert_eq!(r.status, 502, "chunked {chunked}");
        let msg = r.json()["error"]["message"].as_str().unwrap().to_owned();
        assert!(msg.contains("answer larger than 1048576 bytes"), "chunked {chunked}: {msg}");
    }
    // What the client asked for is not the node's fault: no error, no open circuit.
    let node = &p.state.pool.snapshot().backends[0].backend;
    assert_eq!(node.stats.errors(), 0, "an oversized answer is not held against the node");
    assert_eq!(node.circuit.state(), sentinel_proxy::upstream::CircuitState::Closed);
    let answers = &p.state.answers;
    assert_eq!(answers.held(), 0, "every answer buffer was given back");
    assert_eq!(p.state.metrics.buffered_answer_bytes.get(), 0);
}

#[tokio::test]
async fn past_the_buffer_budget_a_request_waits_then_gets_503_and_memory_is_given_back() {
    let hostile = HostileNode::start().await;
    let settings =
        [("MAX_RESPONSE_BYTES", "3145728"), ("MAX_BUFFERED_BYTES", "4194304"), ("ATTEMPT_TIMEOUT_MS", "5000")];
    let p = Gateway::start(&[&hostile.url], &settings).await;
    hostile.size.store(3 << 20, Ordering::SeqCst);
    hostile.hold.store(true, Ordering::SeqCst);

    // The first answer takes 3 MiB of the 4 MiB budget and stalls half-way.
    let first = tokio::spawn({
        let url = p.url.clone();
        async move { rpc(&url, "aztec_getPendingTxs", json!([1])).await }
    });
    let m = &p.state.metrics;
    assert!(
        eventually(Duration::from_secs(10), || async { m.buffered_answer_bytes.get() >= 3 << 20 }).await,
        "the first answer holds its bytes"
    );

    // The second finds no room: it waits about a second, then gets a clear 503.
    let started = Instant::now();
    let second = rpc(&p.url, "aztec_getPendingTxs", json!([2])).await;
    let waited = started.elapsed();
    assert_eq!(second.status, 503, "{}", String::from_utf8_lossy(&second.body));
    assert_eq!(second.header("retry-after").as_deref(), Some("1"));
    let msg = second.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("MAX_BUFFERED_BYTES"), "{msg}");
    assert!(waited >= Duration::from_millis(900) && waited < Duration::from_secs(5), "waited {waited:?}");
    assert!(m.render().contains("sentinel_proxy_rejected_total{reason=\"answer_budget\"} 1"));

    // The first completes once the node goes on; then every byte is given back.
    hostile.release.send(true).unwrap();
    let first = first.await.unwrap();
    assert_eq!(first.status, 200);
    assert_eq!(first.json()["result"].as_str().unwrap().len(), result_len(3 << 20));
    assert!(eventually(Duration::from_secs(5), || async { p.state.answers.held() == 0 }).await);
    assert_eq!(m.buffered_answer_bytes.get(), 0);

    // A burst of answers that fit in turn: all served, and nothing is kept afterwards.
    hostile.size.store(1 << 20, Ordering::SeqCst);
    let burst: Vec<_> = (0..6)
        .map(|i| {
            let url = p.url.clone();
            tokio::spawn(async move { rpc(&url, "aztec_getPendingTxs", json!([10 + i])).await.status })
        })
        .collect();
    for b in burst {
        assert_eq!(b.await.unwrap(), 200);
    }
    assert_eq!(p.state.answers.held(), 0, "no answer buffer outlives its request");
    assert_eq!(m.buffered_answer_bytes.get(), 0);
    assert!(hostile.big_calls.load(Ordering::SeqCst) >= 8);
}

/// An answer's share of `MAX_BUFFERED_BYTES` is held until the client's response made from it
/// has been written, not only while the node's raw bytes are parsed: a client that reads its big
/// answer slowly keeps the bytes counted, so the budget bounds what is really in memory.
#[tokio::test]
async fn an_answer_holds_its_budget_until_the_client_has_read_it() {
    let hostile = HostileNode::start().await;
    let settings = [("MAX_RESPONSE_BYTES", "33554432"), ("MAX_BUFFERED_BYTES", "67108864")];
    let p = Gateway::start(&[&hostile.url], &settings).await;
    hostile.size.store(16 << 20, Ordering::SeqCst);

    let mut slow = TcpStream::connect(addr(&p.url)).await.unwrap();
    let body = json!({"jsonrpc": "2.0", "id": 1, "method": "aztec_getPendingTxs", "params": [1]}).to_string();
    let head = format!(
        "POST / HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(format!("{head}{body}").as_bytes()).await.unwrap();
    // The response has started: the node's raw answer is parsed and dropped by now.
    let mut first = [0u8; 12];
    slow.read_exact(&mut first).await.unwrap();
    assert_eq!(&first, b"HTTP/1.1 200");
    let held = p.state.answers.held();
    assert!(held >= 16 << 20, "a response being written still holds its answer's bytes (held {held})");

    let mut rest = Vec::new();
    let mut buf = vec![0u8; 1 << 20];
    while !rest.ends_with(b"}") {
        let n = slow.read(&mut buf).await.unwrap();
        assert!(n > 0, "the whole answer arrives");
        rest.extend_from_slice(&buf[..n]);
    }
    assert!(rest.len() > 16 << 20);
    assert!(
        eventually(Duration::from_secs(5), || async { p.state.answers.held() == 0 }).await,
        "given back once written"
    );
    assert_eq!(p.state.metrics.buffered_answer_bytes.get(), 0);
}

/// RFC 9110 §11.1: the authentication scheme is case-insensitive, so `bearer`, `BEARER` and
/// `Bearer` all carry the admin token; a wrong token or another scheme is still refused.
#[tokio::test]
async fn the_bearer_scheme_is_case_insensitive() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &[("ADMIN_TOKEN", "s3cret")]).await;
    let url = format!("{}/metrics", p.url);
    for ok in ["Bearer s3cret", "bearer s3cret", "BEARER s3cret", "bEaReR  s3cret"] {
        assert_eq!(get_with(&url, &[("authorization", ok)]).await.status, 200, "{ok}");
    }
    for refused in ["bearer nope", "Basic s3cret", "bearers3cret", "s3cret"] {
        assert_eq!(get_with(&url, &[("authorization", refused)]).await.status, 401, "{refused}");
    }
}

/// POSTs `body` as the client `ip` (the gateway trusts 127.0.0.1's `X-Forwarded-For`).
async fn post_as(url: &str, ip: &str, body: serde_json::Value) -> support::Reply {
    support::post_raw(url, body.to_string(), &[("x-forwarded-for", ip)]).await
}

/// A batch of `n` calls of `method` with ids `0..n`.
fn batch(method: &str, n: usize) -> serde_json::Value {
    (0..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": method, "params": []})).collect()
}

const LIMITED: [(&str, &str); 3] =
    [("RATE_LIMIT_RPS", "1"), ("RATE_LIMIT_BURST", "10"), ("TRUSTED_PROXIES", "127.0.0.1/32")];

/// Issue 10: ten 100-item batches passed a 5 req/s limit. Each item now takes tokens by its
/// method's cost (tips 1, witnesses 5, ...), and a batch heavier than the whole burst gets a
/// clear 429 at once instead of waiting for tokens it can never have.
#[tokio::test]
async fn a_batch_is_charged_per_item_by_method_cost() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &LIMITED).await;

    let full = post_as(&p.url, "198.51.100.1", batch("aztec_getBlockNumber", 10)).await;
    assert_eq!(full.status, 200, "10 tips weigh 10: the whole burst");
    assert_eq!(full.json().as_array().unwrap().len(), 10);
    let next = post_as(&p.url, "198.51.100.1", batch("aztec_getBlockNumber", 1)).await;
    assert_eq!(next.status, 429, "the burst is spent: {}", String::from_utf8_lossy(&next.body));
    assert_eq!(next.json()["error"]["code"], -32005);

    let heavy = post_as(&p.url, "198.51.100.2", batch("aztec_getBlockNumber", 11)).await;
    assert_eq!(heavy.status, 429);
    let msg = heavy.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("request weighs 11") && msg.contains("RATE_LIMIT_BURST 10"), "{msg}");

    // Three witnesses (5 each) weigh more than ten tips.
    let witnesses = post_as(&p.url, "198.51.100.3", batch("aztec_getPublicDataWitness", 3)).await;
    let msg = witnesses.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("request weighs 15"), "{msg}");
    let two = post_as(&p.url, "198.51.100.4", batch("aztec_getPublicDataWitness", 2)).await;
    assert_eq!(two.status, 200, "two witnesses weigh 10");
    assert_eq!(post_as(&p.url, "198.51.100.4", batch("aztec_getBlockNumber", 1)).await.status, 429);
}

/// `MAX_CONCURRENT_REQUESTS` counts what is in progress by weight too: with one call held at the
/// node, a 5-item batch finds 4 of 5 permits and is refused, a 4-item batch is served, and a
/// batch heavier than the whole limit is told so.
#[tokio::test]
async fn max_concurrent_requests_counts_batch_items() {
    let hostile = HostileNode::start().await;
    let p = Gateway::start(&[&hostile.url], &[("MAX_CONCURRENT_REQUESTS", "5"), ("ATTEMPT_TIMEOUT_MS", "5000")]).await;
    let over = post(&p.url, batch("aztec_getBlockNumber", 6)).await;
    assert_eq!(over.status, 429);
    let msg = over.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("MAX_CONCURRENT_REQUESTS 5"), "{msg}");

    hostile.size.store(2 << 20, Ordering::SeqCst);
    hostile.hold.store(true, Ordering::SeqCst);
    let held = tokio::spawn({
        let url = p.url.clone();
        async move { rpc(&url, "aztec_getPendingTxs", json!([1])).await }
    });
    let permits = &p.state.in_flight;
    assert!(eventually(Duration::from_secs(10), || async { permits.available_permits() == 4 }).await);
    let five = post(&p.url, batch("aztec_getBlockNumber", 5)).await;
    assert_eq!(five.status, 429, "5 items need 5 permits, 4 are free");
    assert_eq!(five.json()["error"]["code"], -32005);
    assert_eq!(post(&p.url, batch("aztec_getBlockNumber", 4)).await.status, 200);
    hostile.release.send(true).unwrap();
    assert_eq!(held.await.unwrap().status, 200);
    assert_eq!(permits.available_permits(), 5, "every permit is given back");
}

/// Issue 10: one host with a /64 got a full burst per address. IPv6 clients now share one
/// bucket per `RATE_LIMIT_IPV6_PREFIX` network (default 64).
#[tokio::test]
async fn ipv6_clients_share_a_bucket_per_prefix() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &LIMITED).await;
    let tips = || batch("aztec_getBlockNumber", 5);
    assert_eq!(post_as(&p.url, "2001:db8::1", tips()).await.status, 200);
    assert_eq!(post_as(&p.url, "2001:db8::2", tips()).await.status, 200);
    let third = post_as(&p.url, "2001:db8::ffff:3", tips()).await;
    assert_eq!(third.status, 429, "the same /64 shares one burst of 10");
    let msg = third.json()["error"]["message"].as_str().unwrap().to_owned();
    assert!(msg.contains("2001:db8::/64"), "{msg}");
    assert_eq!(post_as(&p.url, "2001:db8:0:1::1", tips()).await.status, 200, "another /64 has its own");

    let per_address = [LIMITED[0], LIMITED[1], LIMITED[2], ("RATE_LIMIT_IPV6_PREFIX", "128")];
    let q = TestProxy::start(&[&a], &per_address).await;
    assert_eq!(post_as(&q.url, "2001:db8::1", batch("aztec_getBlockNumber", 10)).await.status, 200);
    assert_eq!(post_as(&q.url, "2001:db8::2", batch("aztec_getBlockNumber", 10)).await.status, 200, "/128");
}

/// Issue 10: a 429 said `"id": null`. A single request is refused with its own id; a batch with
/// one error object and `id: null`, as a node answers a batch it refuses whole.
#[tokio::test]
async fn a_refused_request_keeps_its_id() {
    let a = node(ApiVersion::V5).await;
    let p = TestProxy::start(&[&a], &LIMITED).await;
    let client = "198.51.100.9";
    assert_eq!(post_as(&p.url, client, batch("aztec_getBlockNumber", 10)).await.status, 200);
    for id in [json!("req-7"), json!(42), json!(null)] {
        let r = post_as(&p.url, client, json!({"jsonrpc": "2.0", "id": id, "method": "aztec_getBlockNumber"})).await;
        assert_eq!(r.status, 429);
        let body = r.json();
        assert_eq!(body["id"], id, "{body}");
        assert_eq!(body["error"]["code"], -32005);
    }
    let r = post_as(&p.url, client, batch("aztec_getBlockNumber", 2)).await;
    assert_eq!(r.status, 429);
    let body = r.json();
    assert!(body.is_object() && body["id"].is_null() && body["error"]["code"] == -32005, "{body}");
}
