//! HTTP surfaces: the operator router ([`app`]) and [`serve`] with graceful shutdown, over the
//! gateway's shared [`AppState`] (built by `gateway::build`). `POST /`, `/archiver`, `/pruned` carry JSON-RPC; `GET /health`, `/ready`, `/live`,
//! `/metrics` and `/dashboard` are for operators.
//!
//! [`serve`] runs hyper directly: JSON-RPC posts go straight to [`rpc`] (no router, no
//! extractors, no boxed services on the hot path); every other request is handed to the axum
//! [`app`] router. Client connections get `TCP_NODELAY`, and an HTTP/1 connection that does not
//! deliver a complete request head within `REQUEST_TIMEOUT_MS` is closed (this bounds both
//! slow-header clients and idle keep-alive connections, like nginx's `client_header_timeout`).

use std::io::ErrorKind;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use std::convert::Infallible;

use axum::body::Body;
use axum::http::{header, HeaderName, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use axum::Router;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use ipnet::IpNet;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::error::ProxyError;
use crate::forward::X_REQUEST_ID;
use crate::metrics::ReasonLabel;
use crate::proxy::{self, RpcResponse};
use crate::selection::Route;
use crate::state::AppState;
use crate::status;

/// The router of the operator surfaces (JSON-RPC posts never reach it: [`serve`] answers them
/// first; any other method on a JSON-RPC path gets 405).
pub fn app(state: AppState) -> Router {
    Router::new()
        .route("/", any(not_post))
        .route("/archiver", any(not_post))
        .route("/pruned", any(not_post))
        .route("/health", get(status::health))
        .route("/ready", get(status::ready))
        .route("/live", get(status::live))
        .route("/metrics", get(status::metrics))
        .route("/validators", get(status::validators))
        .route("/dashboard", get(status::dashboard))
        .with_state(state)
}

/// The JSON-RPC route of a request, if it is a JSON-RPC post.
fn rpc_route(req: &Request<Incoming>) -> Option<Route> {
    if req.method() != Method::POST {
        return None;
    }
    match req.uri().path() {
        "/" => Some(Route::Any),
        "/archiver" => Some(Route::Archiver),
        "/pruned" => Some(Route::Pruned),
        _ => None,
    }
}

async fn not_post() -> Response {
    let mut r = (StatusCode::METHOD_NOT_ALLOWED, "JSON-RPC needs POST; see /dashboard or /health\n").into_response();
    r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("POST"));
    r
}

/// One JSON-RPC HTTP request served by hyper (the connections [`h1`] hands over): its head,
/// then [`answer`].
async fn rpc(app: &AppState, peer: SocketAddr, route: Route, req: Request<Incoming>) -> Response {
    let header = |name: &str| req.headers().get(name).map(HeaderValue::as_bytes);
    let request_id = request_id(header(X_REQUEST_ID.as_str()));
    let client = client_ip(&app.config().trusted_proxies, peer.ip(), header("x-forwarded-for"));
    let limit = app.config().max_body_bytes;
    let resp = answer(app, client, route, &request_id, read_body(req, limit)).await;
    into_http(resp, request_id)
}

/// One JSON-RPC request once its head is read (both connection paths): the body from `body`,
/// limits by weight, then [`proxy::handle`].
///
/// The body is read and parsed before the rate limit is applied, so that a refusal can carry
/// the request's id and a batch can be charged per item ([`proxy::weight`]). One in-flight
/// permit is taken before reading (it bounds the bodies being read at once; refused, the id is
/// not known yet and the answer has `id: null`), the rest of the request's weight after parsing.
pub(crate) async fn answer<B>(app: &AppState, client: IpAddr, route: Route, request_id: &str, body: B) -> RpcResponse
where
    B: std::future::Future<Output = Result<bytes::Bytes, ProxyError>>,
{
    let span = tracing::info_span!("rpc", request_id = %request_id, route = route.as_str());
    async {
        let Ok(_permit) = app.in_flight.try_acquire() else {
            return proxy::reject(app, &ProxyError::Overloaded);
        };
        // A client that trickles its body cannot hold a worker forever. (`timeout` polls the
        // read first, so a body that came with the head never registers the timer.)
        let body = match tokio::time::timeout(app.config().request_timeout, body).await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return proxy::reject(app, &e),
            Err(_) => {
                return proxy::reject(app, &ProxyError::InvalidRequest("request body not received in time".into()))
            }
        };
        let parsed = crate::jsonrpc::parse_body(&body);
        drop(body);
        let weight = proxy::weight(&parsed);
        if let Err(e) = app.limiter.check(client, weight).await {
            app.metrics.rate_limited.inc();
            return proxy::reject_parsed(app, &parsed, &e);
        }
        let _rest = match admit_weight(app, weight) {
            Ok(permit) => permit,
            Err(e) => return proxy::reject_parsed(app, &parsed, &e),
        };
        let started = std::time::Instant::now();
        // Boxed: the request's routing state is kilobytes and is not copied through every
        // future that wraps it. Written into its allocation: `Box::pin` would build the whole
        // state on the stack and copy it.
        let handle = Box::into_pin(Box::write(Box::new_uninit(), proxy::handle(app, route, parsed, request_id)));
        let (mut resp, full) = app.answers.scope(handle).await;
        if full && resp.status.is_server_error() {
            resp = answers_full(app);
        }
        log_outcome(&resp, started);
        resp
    }
    .instrument(span)
    .await
}

/// In-flight permits for the weight of a request beyond the one permit it already holds.
///
/// # Errors
/// [`ProxyError::Overloaded`] when they are not free now; a clear
/// [`ProxyError::TooManyRequests`] when the request weighs more than `MAX_CONCURRENT_REQUESTS`
/// (it could never pass).
fn admit_weight(app: &AppState, weight: u32) -> Result<Option<tokio::sync::SemaphorePermit<'_>>, ProxyError> {
    if weight <= 1 {
        return Ok(None); // the permit it holds is all it needs (`MAX_CONCURRENT_REQUESTS` is at least 1)
    }
    let max = app.config().max_concurrent_requests;
    if weight as usize > max {
        let reason = format!(
            "request weighs {weight} (batch items by method cost, see README), more than MAX_CONCURRENT_REQUESTS {max}; \
             split it"
        );
        return Err(ProxyError::TooManyRequests { reason, retry_after_s: 1 });
    }
    match weight.checked_sub(1).filter(|&n| n > 0) {
        None => Ok(None),
        Some(n) => app.in_flight.try_acquire_many(n).map(Some).map_err(|_| ProxyError::Overloaded),
    }
}

/// The 503 of a request that failed because node answers held in memory reached
/// `MAX_BUFFERED_BYTES` (retry after a second; counted as `rejected{reason="answer_budget"}`).
fn answers_full(app: &AppState) -> RpcResponse {
    app.metrics.rejected.get_or_create(&ReasonLabel { reason: "answer_budget" }).inc();
    let reason = "gateway busy: node answers held in memory reached MAX_BUFFERED_BYTES".to_owned();
    let mut resp = RpcResponse::error(&ProxyError::TooManyRequests { reason, retry_after_s: 1 });
    resp.status = StatusCode::SERVICE_UNAVAILABLE;
    resp
}

/// One line per request: debug when it went well, warn when the gateway or a node failed
/// (the span adds the request id and route).
fn log_outcome(resp: &RpcResponse, started: std::time::Instant) {
    if !tracing::enabled!(tracing::Level::WARN) {
        return;
    }
    if !resp.status.is_server_error() && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // No node answered (the gateway rejected the request, or every attempt failed): say so
    // rather than log an empty field.
    let backend = if resp.backends.is_empty() { "none".to_owned() } else { resp.backends.join(",") };
    // Method names and error texts come from the client: escaped here for every log format.
    let methods = log_safe(&resp.methods);
    let ms = (started.elapsed().as_secs_f64() * 1e5).round() / 100.0;
    if resp.status.is_server_error() {
        let error = log_safe(resp.error.as_deref().unwrap_or(""));
        tracing::warn!(methods = %methods, backend, status = resp.status.as_u16(), error = %error, elapsed_ms = ms, "request failed");
    } else {
        tracing::debug!(methods = %methods, backend, status = resp.status.as_u16(), cache = resp.cached, elapsed_ms = ms, "request served");
    }
}

/// `value` with control characters (and the Unicode line and paragraph separators) escaped as
/// `\n`, `\r`, `\t` or `\u{..}`, so that a client-controlled value cannot break a log line.
pub fn log_safe(value: &str) -> std::borrow::Cow<'_, str> {
    let unsafe_char = |c: char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
    if !value.chars().any(unsafe_char) {
        return std::borrow::Cow::Borrowed(value);
    }
    let mut out = String::with_capacity(value.len() + 8);
    for c in value.chars() {
        if unsafe_char(c) {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

async fn read_body(req: Request<Incoming>, limit: usize) -> Result<bytes::Bytes, ProxyError> {
    let declared = req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ProxyError::BodyTooLarge(limit));
    }
    match Limited::new(req.into_body(), limit).collect().await {
        Ok(c) => Ok(c.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(ProxyError::BodyTooLarge(limit)),
        Err(e) => Err(ProxyError::InvalidRequest(format!("could not read body: {e}"))),
    }
}

static X_SENTINEL_BACKEND: HeaderName = HeaderName::from_static("x-sentinel-backend");
static X_SENTINEL_CACHE: HeaderName = HeaderName::from_static("x-sentinel-cache");
static X_SENTINEL_FALLBACK: HeaderName = HeaderName::from_static("x-sentinel-fallback");

fn into_http(r: RpcResponse, request_id: String) -> Response {
    let mut resp = Response::new(Body::new(body::ChargedBody::new(r.body, r.charges)));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    h.reserve(8 + r.headers.len());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (k, v) in r.headers.iter().cloned() {
        h.insert(k, v);
    }
    if let Ok(v) = HeaderValue::from_maybe_shared(bytes::Bytes::from(request_id)) {
        h.insert(X_REQUEST_ID.clone(), v);
    }
    let backend = match r.backends.as_slice() {
        [] => None,
        [one] => HeaderValue::from_str(one).ok(),
        many => HeaderValue::from_str(&many.join(",")).ok(),
    };
    if let Some(v) = backend {
        h.insert(X_SENTINEL_BACKEND.clone(), v);
    }
    h.insert(X_SENTINEL_CACHE.clone(), HeaderValue::from_static(if r.cached { "hit" } else { "miss" }));
    if r.fallback {
        h.insert(X_SENTINEL_FALLBACK.clone(), HeaderValue::from_static("archiver"));
    }
    if let Some(s) = r.retry_after {
        h.insert(header::RETRY_AFTER, HeaderValue::from(s));
    }
    resp
}

/// The client's `x-request-id` (the header's value) when sane (see `sane_request_id`), else a
/// new one (16 hex digits).
pub fn request_id(given: Option<&[u8]>) -> String {
    let given = given.and_then(|v| std::str::from_utf8(v).ok()).filter(|s| sane_request_id(s));
    match given {
        Some(s) => s.to_owned(),
        None => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let n = rand::random::<u64>();
            let mut hex = [0u8; 16];
            for (i, digit) in hex.iter_mut().enumerate() {
                *digit = HEX[((n >> ((15 - i) * 4)) & 0xf) as usize];
            }
            String::from_utf8_lossy(&hex).into_owned()
        }
    }
}

/// Whether a client's request id may be echoed, sent to nodes and logged: 1 to 128 characters
/// of `[A-Za-z0-9._:-]` (nothing that could break a header, a log line or a label).
fn sane_request_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The client address: the peer, or the first untrusted hop of `X-Forwarded-For` (`xff`, the
/// header's value; read from the right) when the peer is one of the `trusted` proxies.
fn client_ip(trusted: &[IpNet], peer: IpAddr, xff: Option<&[u8]>) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let Some(xff) = xff.and_then(|v| std::str::from_utf8(v).ok()) else {
        return peer;
    };
    xff.rsplit(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()).find(|ip| !trusted(ip)).unwrap_or(peer)
}

mod body;
mod h1;
mod listen;
mod silent;
pub use listen::serve;

#[cfg(test)]
mod tests;
