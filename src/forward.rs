//! Sending one JSON-RPC body to one backend: the process-wide pooled client (keep-alive
//! HTTP/1.1, HTTP/2 over TLS by ALPN), a per-attempt timeout, gzip/deflate decoding, and the
//! classification of what went wrong ([`ForwardError`]), which decides failover.

use std::io::Read;
use std::time::Duration;

use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use crate::upstream::Backend;

/// The one HTTP client of the process (cloning shares the pool).
pub type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// `x-request-id`: taken from (or made for) the client, answered to it and sent to the node.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Largest node answer read (bounded so a broken node cannot exhaust memory).
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// Idle keep-alive connections are dropped before the node's own 5 s keep-alive timeout
/// (docs/aztec-api.md#transport), so the gateway never reuses a socket the node is closing.
const POOL_IDLE: Duration = Duration::from_millis(4000);

/// Builds the pooled client, tuned for many concurrent connections per node.
pub fn client() -> HttpClient {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(5)));
    http.set_keepalive(Some(Duration::from_secs(30)));
    let https = hyper_rustls::HttpsConnectorBuilder::new()
        .with_webpki_roots()
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    Client::builder(TokioExecutor::new()).pool_idle_timeout(POOL_IDLE).pool_max_idle_per_host(1024).build(https)
}

thread_local! {
    /// One pooled client per thread: with thread-per-core workers, a request and its upstream
    /// connection live on the same thread (no cross-thread hand-off per request).
    static LOCAL: HttpClient = client();
}

/// This thread's pooled client (cheap clone of a shared handle).
pub fn local_client() -> HttpClient {
    LOCAL.with(Clone::clone)
}

/// What one backend answered (status, pass-through headers, decoded body).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status of the node's answer.
    pub status: StatusCode,
    /// The node's `x-aztec-*` headers, passed to the client.
    pub aztec_headers: Vec<(HeaderName, HeaderValue)>,
    /// Decoded (gunzipped) body.
    pub body: Bytes,
}

/// Why an attempt failed.
#[derive(Debug, thiserror::Error)]
pub enum ForwardError {
    /// The request never reached the node (connect refused, DNS, TLS): safe to retry writes.
    #[error("connect failed: {0}")]
    Connect(String),
    /// No answer within the attempt timeout.
    #[error("timed out after {0:?}")]
    Timeout(Duration),
    /// The connection failed after the request was sent.
    #[error("connection error: {0}")]
    Io(String),
    /// HTTP 5xx (or a non-JSON-RPC 4xx such as a standby node's 404).
    #[error("HTTP {0}")]
    Status(u16),
    /// The answer is larger than allowed.
    #[error("answer larger than {0} bytes")]
    TooLarge(usize),
    /// 2xx/4xx but the body is not JSON-RPC.
    #[error("answer is not JSON-RPC")]
    NotJsonRpc,
}

impl ForwardError {
    /// Whether the request may have reached the node (writes are not retried then).
    pub fn reached_node(&self) -> bool {
        !matches!(self, ForwardError::Connect(_))
    }

    /// Short label for metrics and logs.
    pub fn kind(&self) -> &'static str {
        match self {
            ForwardError::Connect(_) => "connect",
            ForwardError::Timeout(_) => "timeout",
            ForwardError::Io(_) => "io",
            ForwardError::Status(_) => "http_status",
            ForwardError::NotJsonRpc => "not_jsonrpc",
            ForwardError::TooLarge(_) => "too_large",
        }
    }
}

/// Posts `body` to `backend` and reads the whole answer within `timeout`.
///
/// # Errors
/// A [`ForwardError`] saying how the attempt failed.
pub async fn send(
    client: &HttpClient,
    backend: &Backend,
    body: Bytes,
    request_id: &str,
    timeout: Duration,
) -> Result<Reply, ForwardError> {
    send_limited(client, backend, body, request_id, timeout, MAX_ANSWER_BYTES).await
}

/// [`send`] with an explicit bound on the answer size (validator stats use `MAX_STATS_BYTES`).
///
/// # Errors
/// A [`ForwardError`]; an answer over `limit` is [`ForwardError::TooLarge`].
pub async fn send_limited(
    client: &HttpClient,
    backend: &Backend,
    body: Bytes,
    request_id: &str,
    timeout: Duration,
    limit: usize,
) -> Result<Reply, ForwardError> {
    let mut req = Request::builder()
        .method(Method::POST)
        .uri(backend.uri.clone())
        .header(CONTENT_TYPE, "application/json")
        .header(ACCEPT_ENCODING, "gzip, deflate");
    if let Ok(v) = HeaderValue::from_str(request_id) {
        req = req.header(X_REQUEST_ID.clone(), v);
    }
    let req = req.body(Full::new(body)).map_err(|e| ForwardError::Connect(e.to_string()))?;
    match tokio::time::timeout(timeout, exchange(client, req, limit)).await {
        Ok(r) => r,
        Err(_) => Err(ForwardError::Timeout(timeout)),
    }
}

async fn exchange(client: &HttpClient, req: Request<Full<Bytes>>, limit: usize) -> Result<Reply, ForwardError> {
    let resp = client.request(req).await.map_err(|e| {
        if e.is_connect() {
            ForwardError::Connect(error_chain(&e))
        } else {
            ForwardError::Io(error_chain(&e))
        }
    })?;
    let (parts, body) = resp.into_parts();
    let raw = match Limited::new(body, limit).collect().await {
        Ok(c) => c.to_bytes(),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => return Err(ForwardError::TooLarge(limit)),
        Err(e) => return Err(ForwardError::Io(e.to_string())),
    };
    if parts.status.is_server_error() {
        return Err(ForwardError::Status(parts.status.as_u16()));
    }
    let body = decode(&parts.headers, raw, limit)?;
    Ok(Reply { status: parts.status, aztec_headers: aztec_headers(&parts.headers), body })
}

/// Undoes `Content-Encoding: gzip|deflate` (the node uses koa-compress).
fn decode(headers: &HeaderMap, raw: Bytes, limit: usize) -> Result<Bytes, ForwardError> {
    let enc = headers.get(CONTENT_ENCODING).and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut out = Vec::new();
    let res = match enc.trim() {
        "" | "identity" => return Ok(raw),
        "gzip" | "x-gzip" => flate2::read::GzDecoder::new(&raw[..]).take(limit as u64 + 1).read_to_end(&mut out),
        "deflate" => flate2::read::ZlibDecoder::new(&raw[..]).take(limit as u64 + 1).read_to_end(&mut out),
        _ => return Err(ForwardError::NotJsonRpc),
    };
    res.map_err(|_| ForwardError::NotJsonRpc)?;
    if out.len() > limit {
        return Err(ForwardError::TooLarge(limit));
    }
    Ok(Bytes::from(out))
}

/// The `x-aztec-*` headers of an answer.
pub fn aztec_headers(headers: &HeaderMap) -> Vec<(HeaderName, HeaderValue)> {
    headers.iter().filter(|(k, _)| k.as_str().starts_with("x-aztec-")).map(|(k, v)| (k.clone(), v.clone())).collect()
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        s.push_str(": ");
        s.push_str(&c.to_string());
        cur = c.source();
    }
    s
}
