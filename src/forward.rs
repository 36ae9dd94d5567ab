//! Sending one JSON-RPC body to one backend: the process-wide pooled client (keep-alive
//! HTTP/1.1, HTTP/2 over TLS by ALPN), a per-attempt timeout, gzip/deflate decoding, and the
//! classification of what went wrong ([`ForwardError`]), which decides failover.
//!
//! Node answers are read into memory whole, so they are bounded twice: each answer of a client
//! request by `MAX_RESPONSE_BYTES` (raw and decoded), and all of them together by
//! `MAX_BUFFERED_BYTES` ([`AnswerBudget`]: a semaphore of bytes, acquired as a body's buffer
//! grows). The charge travels with the answer ([`Charge`]) and is given back once the client's
//! response made from it has been written, not when the raw buffer drops. The budget applies to the
//! sends made inside [`AnswerBudget::scope`] (the server wraps every JSON-RPC request in it);
//! the monitor's own reads are bounded by their explicit limits only.

use std::cell::Cell;
use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::header::{
    HeaderMap, HeaderName, HeaderValue, ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::{Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use prometheus_client::metrics::gauge::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::config::Config;
use crate::upstream::Backend;

/// hyper's pooled client, for `https://` nodes (`http://` ones go through [`h1`]); shared
/// behind one `Arc`, so a clone per request costs one count.
pub type HttpClient = Arc<Client<HttpsConnector<HttpConnector>, Full<Bytes>>>;

/// `x-request-id`: taken from (or made for) the client, answered to it and sent to the node.
pub static X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Whether `value` may be written as a header value as it is: what `HeaderValue` accepts
/// (visible ASCII, space, tab and bytes from 0x80), so the hand-written heads (the client's
/// answer in `server::h1`, the node's request in `forward::h1`) keep what hyper's would.
pub fn header_value_ok(value: &[u8]) -> bool {
    value.iter().all(|&b| (b >= b' ' && b != 0x7f) || b == b'\t')
}

/// Largest node answer read outside [`AnswerBudget::scope`] (client requests use
/// `MAX_RESPONSE_BYTES`), so a broken node cannot exhaust memory.
pub const MAX_ANSWER_BYTES: usize = 256 << 20;

/// How long an answer waits for room in a full [`AnswerBudget`] before the request gives up.
pub const BUDGET_WAIT: Duration = Duration::from_secs(1);

mod h1;
pub use h1::expire_idle;

/// Idle keep-alive connections are dropped before the node's own 5 s keep-alive timeout
/// (docs/aztec-api.md#transport), so the gateway never reuses a socket the node is closing.
pub const POOL_IDLE: Duration = Duration::from_millis(4000);

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
    // `http1_writev(false)`: head and body leave in one write (as on the server side).
    Arc::new(
        Client::builder(TokioExecutor::new())
            .pool_idle_timeout(POOL_IDLE)
            .pool_max_idle_per_host(1024)
            .http1_writev(false)
            .build(https),
    )
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

/// A node's `x-aztec-*` headers, shared: a node sends the same set with every answer, and the
/// answer, the cache entry and the coalesced copies all hold the one parsed list.
pub type NodeHeaders = Arc<[(HeaderName, HeaderValue)]>;

/// What one backend answered (status, pass-through headers, decoded body).
#[derive(Debug)]
pub struct Reply {
    /// HTTP status of the node's answer.
    pub status: StatusCode,
    /// The node's `x-aztec-*` headers, passed to the client.
    pub aztec_headers: NodeHeaders,
    /// Decoded (gunzipped) body.
    pub body: Bytes,
    /// The budget the body holds ([`AnswerBudget`]); the body's bytes alone do not keep it.
    pub charge: Charge,
}

pub use crate::error::ForwardError;

/// The memory bound on node answers of client requests: `MAX_RESPONSE_BYTES` per answer and
/// `MAX_BUFFERED_BYTES` for all answers held at once (one per gateway, shared by its workers).
#[derive(Debug)]
pub struct AnswerBudget {
    /// Largest answer of one client request (`MAX_RESPONSE_BYTES`).
    limit: usize,
    /// Bytes that may be held at once (`MAX_BUFFERED_BYTES`).
    total: usize,
    /// One permit per byte held.
    bytes: Arc<Semaphore>,
    /// `sentinel_proxy_buffered_answer_bytes`.
    held: Gauge,
}

tokio::task_local! {
    /// The budget of the request this task serves, and whether it ran out.
    static SCOPE: (Arc<AnswerBudget>, Cell<bool>);
}

impl AnswerBudget {
    /// The budget of `config`, reported in `held` (the `buffered_answer_bytes` gauge).
    pub fn new(config: &Config, held: Gauge) -> AnswerBudget {
        let total = config.max_buffered_bytes.min(Semaphore::MAX_PERMITS);
        AnswerBudget { limit: config.max_response_bytes, total, bytes: Arc::new(Semaphore::new(total)), held }
    }

    /// Bytes of node answers held now.
    pub fn held(&self) -> usize {
        self.total - self.bytes.available_permits()
    }

    /// Runs `f` (one client request) with every [`send`] in it bounded by this budget; also says
    /// whether an answer found no room within [`BUDGET_WAIT`].
    pub async fn scope<F: std::future::Future>(self: &Arc<Self>, f: F) -> (F::Output, bool) {
        SCOPE.scope((Arc::clone(self), Cell::new(false)), async { (f.await, SCOPE.with(|(_, full)| full.get())) }).await
    }

    /// Takes `n` more bytes for `held`, waiting up to [`BUDGET_WAIT`] (within the attempt's
    /// timeout; not at all once this request found the budget full).
    async fn take(&self, n: usize, held: &mut Held) -> Result<(), ForwardError> {
        if n == 0 {
            return Ok(());
        }
        let full = || ForwardError::Budget(self.total);
        let n32 = u32::try_from(n).map_err(|_| full())?;
        // The flag is up while waiting too, so an attempt timeout that ends the wait still
        // reads as "budget full"; a request that found it full once does not wait again.
        let gave_up = SCOPE.try_with(|(_, f)| f.replace(true)).unwrap_or(false);
        let permit = match Arc::clone(&self.bytes).try_acquire_many_owned(n32) {
            Ok(p) => Some(p),
            Err(_) if gave_up => None,
            Err(_) => tokio::time::timeout(BUDGET_WAIT, Arc::clone(&self.bytes).acquire_many_owned(n32))
                .await
                .ok()
                .and_then(Result::ok),
        };
        let Some(permit) = permit else { return Err(full()) };
        let _ = SCOPE.try_with(|(_, f)| f.set(false));
        self.held.inc_by(n as i64);
        match &mut held.permit {
            Some(p) => p.merge(permit),
            None => {
                held.permit = Some(permit);
                held.gauge = Some(self.held.clone());
            }
        }
        Ok(())
    }
}

/// Budget bytes held by one answer, given back when the last clone drops: the request path
/// keeps it until the client's response has been written ([`Reply::charge`]), so the budget
/// also covers the copies an answer makes on its way to the client.
#[derive(Clone, Debug, Default)]
pub struct Charge(Option<Arc<Held>>);

impl Charge {
    /// Whether the charge holds any budget.
    pub fn is_empty(&self) -> bool {
        self.0.is_none()
    }
}

/// Budget bytes held by one buffer, given back when it drops.
#[derive(Debug, Default)]
struct Held {
    permit: Option<OwnedSemaphorePermit>,
    gauge: Option<Gauge>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let (Some(p), Some(g)) = (&self.permit, &self.gauge) {
            g.dec_by(p.num_permits() as i64);
        }
    }
}

/// A buffer growing under a byte budget (or none), frozen into [`Bytes`] that keep the budget
/// until the last reference drops.
struct Buffer<'a> {
    data: Vec<u8>,
    held: Held,
    budget: Option<&'a AnswerBudget>,
    limit: usize,
}

impl<'a> Buffer<'a> {
    fn new(budget: Option<&'a AnswerBudget>, limit: usize) -> Buffer<'a> {
        Buffer { data: Vec::new(), held: Held::default(), budget, limit }
    }

    /// Makes room for `more` bytes (exactly, or growing by doubling within `limit + 1`), taking
    /// the budget for the capacity added first.
    async fn reserve(&mut self, more: usize, exact: bool) -> Result<(), ForwardError> {
        let (len, cap) = (self.data.len(), self.data.capacity());
        if cap - len >= more {
            return Ok(());
        }
        let grown = if exact { 0 } else { (cap * 2).max(8 << 10).min(self.limit.saturating_add(1)) };
        let want = (len + more).max(grown);
        if let Some(b) = self.budget {
            b.take(want - cap, &mut self.held).await?;
        }
        self.data.reserve_exact(want - len);
        // The allocator may round up: account for what was really taken.
        if let Some(b) = self.budget {
            let extra = self.data.capacity().saturating_sub(want);
            b.take(extra, &mut self.held).await?;
        }
        Ok(())
    }

    /// The bytes, and the budget they hold (kept apart: the charge outlives the buffer).
    fn freeze(self) -> (Bytes, Charge) {
        let charge = Charge(self.held.permit.is_some().then(|| Arc::new(self.held)));
        (Bytes::from(self.data), charge)
    }
}

/// Posts `body` to `backend` and reads the whole answer within `timeout`. Inside
/// [`AnswerBudget::scope`] the answer is bounded by `MAX_RESPONSE_BYTES` and the shared budget,
/// else by [`MAX_ANSWER_BYTES`].
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
    match SCOPE.try_with(|(b, _)| Arc::clone(b)) {
        Ok(budget) => {
            let limit = budget.limit;
            post(client, backend, body, request_id, timeout, limit, Some(&budget)).await
        }
        Err(_) => post(client, backend, body, request_id, timeout, MAX_ANSWER_BYTES, None).await,
    }
}

/// [`send`] with an explicit bound on the answer size (validator stats use `MAX_STATS_BYTES`)
/// and no shared budget (the monitor's reads are few and bounded one by one).
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
    post(client, backend, body, request_id, timeout, limit, None).await
}

async fn post(
    client: &HttpClient,
    backend: &Backend,
    body: Bytes,
    request_id: &str,
    timeout: Duration,
    limit: usize,
    budget: Option<&AnswerBudget>,
) -> Result<Reply, ForwardError> {
    if backend.uri.scheme() == Some(&http::uri::Scheme::HTTP) {
        // Keeps its own deadline (a timer per connection, not one per request).
        return h1::exchange(backend, &body, request_id, limit, budget, timeout).await;
    }
    let sent = async move {
        let mut req = Request::builder()
            .method(Method::POST)
            .uri(backend.uri.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(ACCEPT_ENCODING, HeaderValue::from_static("gzip, deflate"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            req = req.header(X_REQUEST_ID.clone(), v);
        }
        let req = req.body(Full::new(body)).map_err(|e| ForwardError::Connect(e.to_string()))?;
        exchange(client, req, limit, budget).await
    };
    match tokio::time::timeout(timeout, sent).await {
        Ok(r) => r,
        Err(_) => Err(ForwardError::Timeout(timeout)),
    }
}

async fn exchange(
    client: &HttpClient,
    req: Request<Full<Bytes>>,
    limit: usize,
    budget: Option<&AnswerBudget>,
) -> Result<Reply, ForwardError> {
    let resp = client.request(req).await.map_err(|e| {
        if e.is_connect() {
            ForwardError::Connect(error_chain(&e))
        } else {
            ForwardError::Io(error_chain(&e))
        }
    })?;
    let (parts, mut body) = resp.into_parts();
    if parts.status.is_server_error() {
        return Err(ForwardError::Status(parts.status.as_u16()));
    }
    let declared = parts.headers.get(CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ForwardError::TooLarge(limit));
    }
    let mut buf = Buffer::new(budget, limit);
    if let Some(n) = declared {
        buf.reserve(n, true).await?;
    }
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| ForwardError::Io(error_chain(&e)))?;
        let Ok(data) = frame.into_data() else { continue };
        if buf.data.len() + data.len() > limit {
            return Err(ForwardError::TooLarge(limit));
        }
        buf.reserve(data.len(), false).await?;
        buf.data.extend_from_slice(&data);
    }
    let (body, charge) = decode_with(parts.headers.get(CONTENT_ENCODING), buf.freeze(), limit, budget).await?;
    Ok(Reply { status: parts.status, aztec_headers: aztec_headers(&parts.headers), body, charge })
}

/// Undoes `Content-Encoding: gzip|deflate` (the node uses koa-compress), within `limit` and the
/// budget (the decoded buffer takes its own bytes; the raw one is given back when dropped).
async fn decode_with(
    encoding: Option<&HeaderValue>,
    (raw, raw_charge): (Bytes, Charge),
    limit: usize,
    budget: Option<&AnswerBudget>,
) -> Result<(Bytes, Charge), ForwardError> {
    let enc = encoding.and_then(|v| v.to_str().ok()).unwrap_or("");
    let mut decoder: Box<dyn Read + Send + '_> = match enc.trim() {
        "" | "identity" => return Ok((raw, raw_charge)),
        "gzip" | "x-gzip" => Box::new(flate2::read::GzDecoder::new(&raw[..])),
        "deflate" => Box::new(flate2::read::ZlibDecoder::new(&raw[..])),
        _ => return Err(ForwardError::NotJsonRpc),
    };
    let mut out = Buffer::new(budget, limit);
    loop {
        out.reserve((64 << 10).min(limit + 1 - out.data.len()).max(1), false).await?;
        let spare = out.data.capacity() - out.data.len();
        let n = (&mut decoder).take(spare as u64).read_to_end(&mut out.data).map_err(|_| ForwardError::NotJsonRpc)?;
        if out.data.len() > limit {
            return Err(ForwardError::TooLarge(limit));
        }
        if n < spare {
            break;
        }
    }
    drop(decoder);
    drop(raw_charge);
    Ok(out.freeze())
}

/// The `x-aztec-*` headers of an answer, copied out of the answer's read buffer (hyper's header
/// values share it, so a cached clone would keep the whole buffer alive).
pub fn aztec_headers(headers: &HeaderMap) -> NodeHeaders {
    headers
        .iter()
        .filter(|(k, _)| k.as_str().starts_with("x-aztec-"))
        .filter_map(|(k, v)| Some((k.clone(), HeaderValue::from_bytes(v.as_bytes()).ok()?)))
        .collect()
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
