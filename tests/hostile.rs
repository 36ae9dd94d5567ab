//! Hostile clients and misbehaving nodes: the gateway's resource bounds hold. Connections that
//! send nothing, or go idle, are closed within `REQUEST_TIMEOUT_MS`; past `MAX_CONNECTIONS` new
//! connections are shed while the open ones keep being served; shutdown does not wait for idle
//! connections; node answers are bounded one by one (`MAX_RESPONSE_BYTES`) and together
//! (`MAX_BUFFERED_BYTES`), and their memory is given back.

mod support;

use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use sentinel_proxy::config::Config;
use sentinel_proxy::gateway;
use sentinel_proxy::simulator::ApiVersion;
use serde_json::json;
use support::{eventually, get, node, rpc, TestProxy};
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
async fn past_max_connections_new_ones_are_shed_and_open_ones_still_served() {
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

    let mut extra = TcpStream::connect(addr(&p.url)).await.unwrap();
    let took = closed_within(&mut extra, Duration::from_secs(5)).await.expect("connection N+1 is closed");
    assert!(took < Duration::from_secs(2), "shed at once, not after a timeout: {took:?}");
    assert_eq!(m.connections_shed.get(), 1);
    assert_eq!(live_on(&mut served).await, 200, "an existing connection is still served");
    assert_eq!(m.open_connections.get(), MAX as i64);

    // Room again once one closes.
    drop(silent.pop());
    assert!(eventually(Duration::from_secs(5), || async { m.open_connections.get() == MAX as i64 - 1 }).await);
    let r = rpc(&p.url, "aztec_getBlockNumber", json!([])).await;
    assert_eq!(r.status, 200);
    let text = m.render();
    assert!(text.contains("sentinel_proxy_connections_shed_total 1"), "{text}");
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
