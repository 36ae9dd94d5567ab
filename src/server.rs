//! HTTP surfaces: [`AppState`], the operator router ([`app`]) and [`serve`] with graceful
//! shutdown. `POST /`, `/archiver`, `/pruned` carry JSON-RPC; `GET /health`, `/ready`, `/live`,
//! `/metrics` and `/dashboard` are for operators.
//!
//! [`serve`] runs hyper directly: JSON-RPC posts go straight to [`rpc`] (no router, no
//! extractors, no boxed services on the hot path); every other request is handed to the axum
//! [`app`] router. Client connections get `TCP_NODELAY`, and an HTTP/1 connection that does not
//! deliver a complete request head within `REQUEST_TIMEOUT_MS` is closed (this bounds both
//! slow-header clients and idle keep-alive connections, like nginx's `client_header_timeout`).

use std::net::{IpAddr, SocketAddr};
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
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::cache::Cache;
use crate::coalesce::Coalescer;
use crate::config::Config;
use crate::dispatch::{Dispatcher, HedgeBudget};
use crate::error::ProxyError;
use crate::forward::{self, X_REQUEST_ID};
use crate::methods::Policy;
use crate::metrics::Metrics;
use crate::proxy::{self, RpcResponse};
use crate::ratelimit::RateLimiter;
use crate::selection::Route;
use crate::shared::Shared;
use crate::status;
use crate::upstream::Pool;

/// Shared state of one gateway; cheap to clone.
#[derive(Clone, Debug)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
#[derive(Debug)]
pub struct Inner {
    /// Validated configuration.
    pub config: Arc<Config>,
    /// Backend pool (read per request, published by the monitor).
    pub pool: Arc<Pool>,
    /// Method allow / deny policy.
    pub policy: Policy,
    /// Metrics registry and handles.
    pub metrics: Arc<Metrics>,
    /// Read-your-writes pins: tx hash → backend index (bounded, expiring).
    pub sticky: moka::sync::Cache<String, usize>,
    /// Requests served at once (overload → 429).
    pub in_flight: Arc<Semaphore>,
    /// Per-client rate limiter.
    pub limiter: RateLimiter,
    /// Answer cache (memory + Redis).
    pub cache: Cache,
    /// In-flight identical reads.
    pub coalescer: Arc<Coalescer>,
    /// Hedge accounting (≤ 10 % extra reads).
    pub hedge_budget: HedgeBudget,
    /// When the gateway started.
    pub started: std::time::Instant,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

impl AppState {
    /// Builds the state for a configuration and pool.
    pub fn new(config: Arc<Config>, pool: Arc<Pool>, metrics: Arc<Metrics>) -> AppState {
        let policy = Policy::new(&config.allow_methods, &config.deny_methods);
        let redis = config.redis_url.as_ref().map(|url| Shared::connect(url.as_str(), Arc::clone(&metrics)));
        AppState(Arc::new(Inner {
            policy,
            sticky: moka::sync::Cache::builder().max_capacity(100_000).time_to_live(Duration::from_secs(1800)).build(),
            in_flight: Arc::new(Semaphore::new(config.max_concurrent_requests)),
            limiter: RateLimiter::new(&config, redis.clone(), Arc::clone(&metrics)),
            cache: Cache::new(&config, redis, Arc::clone(&metrics)),
            coalescer: Arc::new(Coalescer::default()),
            hedge_budget: HedgeBudget::default(),
            started: std::time::Instant::now(),
            metrics,
            pool,
            config,
        }))
    }

    /// The failover dispatcher over this state.
    pub fn dispatcher(&self) -> Dispatcher<'_> {
        Dispatcher {
            pool: &self.pool,
            client: forward::local_client(),
            metrics: &self.metrics,
            max_retries: self.config.max_retries,
            attempt_timeout: self.config.attempt_timeout,
            request_timeout: self.config.request_timeout,
            budget: &self.hedge_budget,
        }
    }
}

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
        let client = client_ip(app, peer.ip(), req.headers());
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
        let resp = proxy::handle(app, route, &body, &request_id).await;
        log_outcome(&resp, started.elapsed());
        resp
    }
    .instrument(span)
    .await;
    into_http(resp, request_id)
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
    let backend = resp.backends.join(",");
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

/// The client's `x-request-id` when sane (≤ 128 chars of `[A-Za-z0-9._:-]`), else a new one.
pub fn request_id(headers: &HeaderMap) -> String {
    let given = headers.get(&X_REQUEST_ID).and_then(|v| v.to_str().ok()).filter(|s| {
        !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
    });
    match given {
        Some(s) => s.to_owned(),
        None => {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            let n = rand::random::<u64>();
            (0..16).rev().map(|i| char::from(HEX[((n >> (i * 4)) & 0xf) as usize])).collect()
        }
    }
}

/// The client address: the peer, or the first untrusted hop of `X-Forwarded-For` when the peer
/// is a trusted proxy.
fn client_ip(app: &AppState, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
    let trusted = |ip: &IpAddr| app.config.trusted_proxies.iter().any(|n| n.contains(ip));
    if !trusted(&peer) {
        return peer;
    }
    let Some(xff) = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()) else {
        return peer;
    };
    xff.rsplit(',').filter_map(|s| s.trim().parse::<IpAddr>().ok()).find(|ip| !trusted(ip)).unwrap_or(peer)
}

/// Serves `state` on `listener` until `cancel`, then stops accepting and lets every open
/// connection finish its in-flight requests (the caller bounds how long that may take).
///
/// # Errors
/// None today: accept errors (e.g. out of file descriptors) are logged and retried.
pub async fn serve(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    let router = app(state.clone());
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // `writev(false)`: head and body leave in one contiguous write. JSON-RPC answers are small,
    // and on loopback this cost the kernel less than a two-piece writev (bench/: block scenario).
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(state.config.request_timeout)
        .keep_alive(true)
        .writev(false);
    builder.http2().timer(TokioTimer::new());
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                tracing::warn!(%err, "accept failed; retrying in 50 ms");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(50)) => continue,
                }
            }
        };
        let _ = stream.set_nodelay(true);
        let (state, router) = (state.clone(), router.clone());
        let service = hyper::service::service_fn(move |req: Request<Incoming>| {
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
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service).into_owned());
        tokio::spawn(async move {
            if let Err(err) = conn.await {
                tracing::debug!(%err, "client connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    Ok(())
}
