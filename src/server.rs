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
use axum::http::{header, HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode};
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

/// One JSON-RPC HTTP request: limits, body, then [`proxy::handle`].
async fn rpc(app: &AppState, peer: SocketAddr, route: Route, req: Request<Incoming>) -> Response {
    let request_id = request_id(req.headers());
    let span = tracing::info_span!("rpc", request_id = %request_id, route = route.as_str());
    let resp = async {
        let client = client_ip(&app.config.trusted_proxies, peer.ip(), req.headers());
        if let Err(e) = app.limiter.check(client).await {
            app.metrics.rate_limited.inc();
            return proxy::reject(app, &e);
        }
        let Ok(_permit) = app.in_flight.try_acquire() else {
            return proxy::reject(app, &ProxyError::Overloaded);
        };
        // A client that trickles its body cannot hold a worker forever. (`timeout` polls the
        // read first, so a body that came with the head never registers the timer.)
        let read = tokio::time::timeout(app.config.request_timeout, read_body(req, app.config.max_body_bytes));
        let body = match read.await {
            Ok(Ok(b)) => b,
            Ok(Err(e)) => return proxy::reject(app, &e),
            Err(_) => {
                return proxy::reject(app, &ProxyError::InvalidRequest("request body not received in time".into()))
            }
        };
        let started = std::time::Instant::now();
        let (mut resp, full) = app.answers.scope(proxy::handle(app, route, &body, &request_id)).await;
        if full && resp.status.is_server_error() {
            resp = answers_full(app);
        }
        log_outcome(&resp, started.elapsed());
        resp
    }
    .instrument(span)
    .await;
    into_http(resp, request_id)
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
fn log_outcome(resp: &RpcResponse, elapsed: Duration) {
    if !tracing::enabled!(tracing::Level::WARN) {
        return;
    }
    if !resp.status.is_server_error() && !tracing::enabled!(tracing::Level::DEBUG) {
        return;
    }
    // No node answered (the gateway rejected the request, or every attempt failed): say so
    // rather than log an empty field.
    let backend = if resp.backends.is_empty() { "none".to_owned() } else { resp.backends.join(",") };
    let ms = (elapsed.as_secs_f64() * 1e5).round() / 100.0;
    if resp.status.is_server_error() {
        let error = resp.error.as_deref().unwrap_or("");
        tracing::warn!(methods = %resp.methods, backend, status = resp.status.as_u16(), error, elapsed_ms = ms, "request failed");
    } else {
        tracing::debug!(methods = %resp.methods, backend, status = resp.status.as_u16(), cache = resp.cached, elapsed_ms = ms, "request served");
    }
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
    let mut resp = Response::new(Body::from(r.body));
    *resp.status_mut() = r.status;
    let h = resp.headers_mut();
    h.reserve(8 + r.headers.len());
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    for (k, v) in r.headers {
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

/// The client's `x-request-id` when sane (see `sane_request_id`), else a new one (16 hex
/// digits).
pub fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|s| sane_request_id(s));
    match given {
        Some(s) => s.to_owned(),
        None => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let n = rand::random::<u64>();
            (0..16).rev().map(|i| char::from(HEX[((n >> (i * 4)) & 0xf) as usize])).collect()
        }
    }
}

/// Whether a client's request id may be echoed, sent to nodes and logged: 1 to 128 characters
/// of `[A-Za-z0-9._:-]` (nothing that could break a header, a log line or a label).
fn sane_request_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

/// The client address: the peer, or the first untrusted hop of `X-Forwarded-For` (read from
/// the right) when the peer is one of the `trusted` proxies.
fn client_ip(trusted: &[IpNet], peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    xff.rsplit(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()).find(|ip| !trusted(ip)).unwrap_or(peer)
}

/// A connection that is closing (shutdown, or idle for `REQUEST_TIMEOUT_MS`) and has nothing in
/// flight is dropped after this, even if the client never answers the GOAWAY's ping.
const CLOSE_WAIT: Duration = Duration::from_millis(250);

/// Accept failures are logged at most this often (process-wide; the count in between is kept).
const ACCEPT_LOG_EVERY: Duration = Duration::from_secs(1);

/// What one connection is doing, shared by its service (every request) and its task.
#[derive(Debug)]
struct Activity {
    /// When the connection was accepted.
    opened: std::time::Instant,
    /// Requests being handled now.
    active: AtomicUsize,
    /// Milliseconds after `opened` at which the connection last became idle.
    idle_since_ms: AtomicU64,
}

impl Activity {
    fn new() -> Activity {
        Activity { opened: std::time::Instant::now(), active: AtomicUsize::new(0), idle_since_ms: AtomicU64::new(0) }
    }

    fn mark_idle(&self) {
        self.idle_since_ms.store(self.opened.elapsed().as_millis() as u64, Ordering::Relaxed);
    }

    /// When the connection will have been idle for `idle` (or, with a request in flight, when to
    /// look again).
    fn idle_deadline(&self, idle: Duration) -> tokio::time::Instant {
        let since = if self.active.load(Ordering::Relaxed) > 0 {
            self.opened.elapsed()
        } else {
            Duration::from_millis(self.idle_since_ms.load(Ordering::Relaxed))
        };
        tokio::time::Instant::from_std(self.opened + since + idle)
    }

    fn is_idle(&self) -> bool {
        self.active.load(Ordering::Relaxed) == 0
    }
}

/// One request in flight on a connection (the connection is idle again when it drops).
struct Busy(Arc<Activity>);

impl Busy {
    fn new(a: &Arc<Activity>) -> Busy {
        a.active.fetch_add(1, Ordering::Relaxed);
        Busy(Arc::clone(a))
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.mark_idle();
        self.0.active.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One open client connection, counted in `sentinel_proxy_open_connections` until it drops.
struct Open(prometheus_client::metrics::gauge::Gauge);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Logs a failed accept at most once per [`ACCEPT_LOG_EVERY`] over the whole process, with how
/// many failed since the last line.
fn log_accept_error(err: &std::io::Error) {
    static LAST_MS: AtomicU64 = AtomicU64::new(0);
    static SUPPRESSED: AtomicU64 = AtomicU64::new(0);
    let now = crate::clock::unix_ms();
    let last = LAST_MS.load(Ordering::Relaxed);
    let every = ACCEPT_LOG_EVERY.as_millis() as u64;
    if now.saturating_sub(last) < every
        || LAST_MS.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_err()
    {
        SUPPRESSED.fetch_add(1, Ordering::Relaxed);
        return;
    }
    let suppressed = SUPPRESSED.swap(0, Ordering::Relaxed);
    tracing::warn!(%err, suppressed, "accept failed (out of file descriptors? see MAX_CONNECTIONS); backing off 50 ms");
}

/// Serves `state` on `listener` until `cancel`, then stops accepting, closes idle connections at
/// once and lets every other connection finish its in-flight requests (the caller bounds how
/// long that may take).
///
/// Resource bounds: at most `MAX_CONNECTIONS` connections are open (past it a new one is closed
/// at once and counted); a connection must send its first byte, and HTTP/1 its whole request
/// head, within `REQUEST_TIMEOUT_MS` of being accepted; a connection with nothing in flight for
/// `REQUEST_TIMEOUT_MS` is closed (HTTP/2: GOAWAY), and HTTP/2 peers are pinged at that interval.
///
/// # Errors
/// None today: accept errors (e.g. out of file descriptors) are counted, logged at most once a
/// second and retried.
pub async fn serve(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    let router = app(state.clone());
    let idle = state.config.request_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // `writev(false)`: head and body leave in one contiguous write. JSON-RPC answers are small,
    // and on loopback this cost the kernel less than a two-piece writev (bench/: block scenario).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(idle).keep_alive(true).writev(false);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(idle)).keep_alive_timeout(idle);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    let metrics = Arc::clone(&state.metrics);
    let max = i64::try_from(state.config.max_connections).unwrap_or(i64::MAX);
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(err)
                if matches!(
                    err.kind(),
                    ErrorKind::ConnectionAborted | ErrorKind::ConnectionReset | ErrorKind::Interrupted
                ) =>
            {
                // That one connection is gone; the next accept may well succeed.
                metrics.accept_errors.inc();
                continue;
            }
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                metrics.accept_errors.inc();
                log_accept_error(&err);
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        if metrics.open_connections.inc() >= max {
            // Shed: closing at once keeps descriptors (and memory) for the connections served.
            metrics.open_connections.dec();
            metrics.connections_shed.inc();
            drop(stream);
            continue;
        }
        let open = Open(metrics.open_connections.clone());
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let (state, router, act) = (state.clone(), router.clone(), Arc::clone(&activity));
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
            let busy = Busy::new(&act);
            // JSON-RPC posts skip the router entirely (and do not even clone it).
            let target = rpc_route(&req).ok_or_else(|| router.clone());
            let state = state.clone();
            async move {
                let resp = match target {
                    Ok(route) => rpc(&state, peer, route, req).await,
                    Err(router) => {
                        use tower::ServiceExt as _;
                        let Ok(r) = router.oneshot(req.map(Body::new)).await;
                        r
                    }
                };
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        });
        let (builder, cancel) = (Arc::clone(&builder), cancel.clone());
        connections.spawn(async move {
            serve_connection(&builder, stream, service, &activity, &cancel, idle).await;
            drop(open);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// One client connection from accept to close: the first byte within `idle`, then hyper, closed
/// after `idle` without a request in flight, and at once on `cancel` when idle.
async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: tokio::net::TcpStream,
    service: S,
    activity: &Activity,
    cancel: &CancellationToken,
    idle: Duration,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    // hyper's header timer starts only once it reads, and HTTP/2 has none: a connection that
    // never sends a byte is closed here.
    let mut first = [0u8; 1];
    let arrived = tokio::select! {
        biased;
        () = cancel.cancelled() => return,
        r = tokio::time::timeout(idle, stream.peek(&mut first)) => matches!(r, Ok(Ok(n)) if n > 0),
    };
    if !arrived {
        return;
    }
    activity.mark_idle();
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn);
    // Whether the connection was asked to close (GOAWAY sent, or keep-alive off).
    let mut closing = false;
    loop {
        let wake = if closing { tokio::time::Instant::now() + CLOSE_WAIT } else { activity.idle_deadline(idle) };
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(err) = r {
                    tracing::debug!(%err, "client connection ended with an error");
                }
                return;
            }
            () = cancel.cancelled(), if !closing => {
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            () = tokio::time::sleep_until(wake) => {
                if closing && activity.is_idle() {
                    return; // the client did not close after GOAWAY: drop it
                }
                if !closing && activity.is_idle() && activity.idle_deadline(idle) <= tokio::time::Instant::now() {
                    conn.as_mut().graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_id_rules() {
        let long_ok = "a".repeat(128);
        let too_long = "a".repeat(129);
        let cases: &[(&str, bool)] = &[
            ("abc-123", true),
            ("req.1:2_3-4", true),
            ("ABCdef0189", true),
            (&long_ok, true),
            ("", false),
            (&too_long, false),
            ("has space", false),
            ("semi;colon", false),
            ("slash/", false),
            ("quote\"", false),
            ("ümlaut", false),
            ("new\nline", false),
        ];
        for (given, kept) in cases {
            assert_eq!(sane_request_id(given), *kept, "{given:?}");
            let mut h = HeaderMap::new();
            if let Ok(v) = HeaderValue::from_str(given) {
                h.insert(&X_REQUEST_ID, v);
            }
            let id = request_id(&h);
            if *kept {
                assert_eq!(&id, given);
            } else {
                assert_eq!(id.len(), 16, "{given:?} → {id}");
                assert!(id.bytes().all(|b| b.is_ascii_hexdigit()), "{id}");
            }
        }
        assert_ne!(request_id(&HeaderMap::new()), request_id(&HeaderMap::new()), "generated ids differ");
    }

    #[test]
    fn client_ip_rules() {
        let trusted: Vec<IpNet> = vec!["10.0.0.0/8".parse().unwrap(), "::1/128".parse().unwrap()];
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        // (trusted proxies, peer, X-Forwarded-For, expected client)
        let cases: &[(&[IpNet], &str, Option<&str>, &str)] = &[
            (&trusted, "203.0.113.9", None, "203.0.113.9"),
            (&trusted, "203.0.113.9", Some("198.51.100.1"), "203.0.113.9"), // untrusted peer: header ignored
            (&trusted, "10.1.2.3", None, "10.1.2.3"),
            (&trusted, "10.1.2.3", Some("198.51.100.1"), "198.51.100.1"),
            (&trusted, "10.1.2.3", Some("198.51.100.1, 10.9.9.9"), "198.51.100.1"), // trusted hops skipped
            (&trusted, "10.1.2.3", Some("1.1.1.1, 198.51.100.1"), "198.51.100.1"),  // rightmost untrusted wins
            (&trusted, "10.1.2.3", Some("garbage, 198.51.100.1 "), "198.51.100.1"),
            (&trusted, "10.1.2.3", Some("garbage"), "10.1.2.3"),
            (&trusted, "10.1.2.3", Some("10.4.4.4, 10.5.5.5"), "10.1.2.3"), // all trusted: the peer
            (&trusted, "::1", Some("2001:db8::7"), "2001:db8::7"),
            (&[], "10.1.2.3", Some("198.51.100.1"), "10.1.2.3"), // nothing trusted
        ];
        for (trusted, peer, xff, want) in cases {
            let mut h = HeaderMap::new();
            if let Some(x) = xff {
                h.insert("x-forwarded-for", HeaderValue::from_str(x).unwrap());
            }
            assert_eq!(client_ip(trusted, ip(peer), &h), ip(want), "peer {peer}, xff {xff:?}");
        }
    }
}
