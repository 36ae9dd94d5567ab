//! HTTP side of the simulated node: accept loop, per-connection kill switch, routing, faults,
//! gzip and identity headers.
//!
//! Built on hyper directly (`hyper_util::server::conn::auto`, HTTP/1.1 keep-alive and h2c) for
//! the lowest overhead per request. Every connection runs under a child of the node's
//! `CancellationToken`: cancelling the root (`SimNode::stop`) drops the listener and every open
//! connection at once, like a crashed process, and a `drop_connection` fault cancels just its
//! own connection. Faults are read once per request from `NodeState`; no lock is held across
//! an `.await`.

use std::convert::Infallible;
use std::io::{Read as _, Write as _};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use flate2::Compression;
use http::header::{ACCEPT_ENCODING, CONTENT_ENCODING, CONTENT_TYPE};
use http::{HeaderMap, HeaderValue, Method as HttpMethod, Request, Response, StatusCode};
use http_body_util::{BodyExt as _, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use serde_json::value::RawValue;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tracing::Instrument as _;

use super::answer::{answer, needs_history};
use super::config::ApiVersion;
use super::faults::Faults;
use super::handlers::tx_hash;
use super::rpc::{self, error_body, Parsed, RpcError, INTERNAL_ERROR};
use super::state::NodeState;

/// Largest request body accepted (what Aztec's public nodes run with).
const MAX_BODY: usize = 10 << 20;
/// Bodies larger than this are gzipped when the client accepts gzip.
const GZIP_MIN: usize = 1024;
/// What the `garbage` fault answers.
const GARBAGE: &[u8] = b"\x00\x01<html>simulated garbage, not JSON{{";

type Builder = auto::Builder<TokioExecutor>;

/// Serves `listener` until `cancel` fires, then drops the listener and every connection.
pub(crate) async fn run(listener: TcpListener, node: Arc<NodeState>, cancel: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder.http1().timer(TokioTimer::new()).keep_alive(true);
    builder.http2().timer(TokioTimer::new());
    let builder = Arc::new(builder);
    loop {
        let accepted = tokio::select! {
            biased;
            () = cancel.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _)) => {
                let span = tracing::debug_span!("simnode", name = %node.cfg.name);
                let conn = serve_conn(Arc::clone(&builder), stream, Arc::clone(&node), cancel.child_token());
                tokio::spawn(conn.instrument(span));
            }
            Err(err) => {
                // Out of file descriptors and the like: back off briefly instead of spinning.
                tracing::debug!(%err, "simulated node: accept failed");
                tokio::select! {
                    () = cancel.cancelled() => break,
                    () = tokio::time::sleep(Duration::from_millis(5)) => {}
                }
            }
        }
    }
}

/// Serves one connection until it ends or `cancel` fires (which closes the socket at once).
async fn serve_conn(builder: Arc<Builder>, stream: TcpStream, node: Arc<NodeState>, cancel: CancellationToken) {
    // Benchmarks measure latency: never let Nagle hold back a small answer.
    let _ = stream.set_nodelay(true);
    let conn_cancel = cancel.clone();
    let counted = Arc::clone(&node);
    let service = service_fn(move |req| {
        let node = Arc::clone(&node);
        let conn_cancel = conn_cancel.clone();
        async move { Ok::<_, Infallible>(route(&node, &conn_cancel, req).await) }
    });
    counted.connections.fetch_add(1, Ordering::Relaxed);
    let close_idle = counted.close_idle.notified();
    let conn = builder.serve_connection(TokioIo::new(stream), service);
    tokio::pin!(conn, close_idle);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => break,
            () = cancel.cancelled() => break,
            () = &mut close_idle, if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
        }
    }
    counted.connections.fetch_sub(1, Ordering::Relaxed);
}

/// A response before headers and compression are applied.
struct Reply {
    status: u16,
    body: Bytes,
    content_type: Option<&'static str>,
}

impl Reply {
    fn json(status: u16, body: impl Into<Bytes>) -> Self {
        Reply { status, body: body.into(), content_type: Some("application/json") }
    }

    fn text(status: u16, body: impl Into<Bytes>) -> Self {
        Reply { status, body: body.into(), content_type: Some("text/plain; charset=utf-8") }
    }
}

enum Route {
    Rpc,
    Status,
    Control,
    NotAllowed,
    NotFound,
}

async fn route(node: &Arc<NodeState>, conn: &CancellationToken, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let route = match (req.method(), req.uri().path()) {
        (&HttpMethod::POST, "/") => Route::Rpc,
        (&HttpMethod::GET, "/status") => Route::Status,
        (_, "/control") => Route::Control,
        (_, "/") => Route::NotAllowed,
        _ => Route::NotFound,
    };
    let gzip_ok = accepts_gzip(req.headers());
    let reply = match route {
        Route::Rpc => rpc_route(node, conn, req).await,
        Route::Status => status_route(node, conn).await,
        Route::Control => control_route(node, req).await,
        Route::NotAllowed => Reply::text(405, "Method Not Allowed"),
        Route::NotFound => Reply::text(404, "Not Found"),
    };
    finish(node, reply, gzip_ok)
}

/// Case-insensitive substring test on a header value, without allocating.
fn mentions(value: &HeaderValue, word: &[u8]) -> bool {
    value.as_bytes().windows(word.len()).any(|w| w.eq_ignore_ascii_case(word))
}

fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(ACCEPT_ENCODING).iter().any(|v| mentions(v, b"gzip"))
}

/// Latency, hang and drop: the faults that act on time and on the connection.
async fn stall(f: &Faults, conn: &CancellationToken) {
    if f.latency_ms > 0 {
        tokio::time::sleep(Duration::from_millis(f.latency_ms)).await;
    }
    if f.drop_connection {
        conn.cancel();
    }
    if f.hang || f.drop_connection {
        // Never answer: the connection task drops this future when its token fires.
        std::future::pending::<()>().await;
    }
}

async fn rpc_route(node: &Arc<NodeState>, conn: &CancellationToken, req: Request<Incoming>) -> Reply {
    node.count_request();
    let body = match read_body(node.cfg.version, req).await {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let parsed = rpc::parse(&body);
    count_calls(node, &parsed);
    let faults = node.faults();
    stall(&faults, conn).await;
    if let Some(code) = faults.http_status {
        return Reply::text(code, format!("simulated HTTP {code}"));
    }
    if faults.garbage {
        return Reply::json(200, Bytes::from_static(GARBAGE));
    }
    let mut view = node.view_with(faults);
    if view.faults.rpc_error.is_none() && needs_history(&parsed, node.cfg.version) {
        view.history = Some(node.history(&view).await);
    }
    let (status, out) = answer(node, &view, &parsed);
    Reply::json(status, out)
}

fn count_calls(node: &NodeState, parsed: &Parsed<'_>) {
    let items = match parsed {
        Parsed::Single(item) => std::slice::from_ref(item),
        Parsed::Batch(items) => items.as_slice(),
        Parsed::Fail(_) => &[],
    };
    for item in items {
        if let Ok((name, params)) = &item.call {
            node.count_call(name);
            if name.ends_with("sendTx") {
                if let Some(hash) = params.and_then(|p| send_tx_hash(node, p)) {
                    node.count_tx(&hash);
                }
            }
        }
    }
}

/// The hash of a `sendTx`'s transaction, as the mempool would file it.
fn send_tx_hash(node: &NodeState, params: &RawValue) -> Option<String> {
    let params: Vec<&RawValue> = serde_json::from_str(params.get()).ok()?;
    tx_hash(node, params.first()?).ok()
}

/// Reads (and if needed gunzips) a JSON-RPC body, or the error reply the real node would give.
async fn read_body(version: ApiVersion, req: Request<Incoming>) -> Result<Bytes, Reply> {
    let headers = req.headers();
    let gzipped = headers.get(CONTENT_ENCODING).is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
    // Koa's body parser only reads JSON bodies; anything else arrives empty (-32600).
    let not_json = headers.get(CONTENT_TYPE).is_some_and(|v| !mentions(v, b"json"));
    let bytes = match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(err) if err.downcast_ref::<LengthLimitError>().is_some() => {
            let code = if version >= ApiVersion::V5 { INTERNAL_ERROR } else { rpc::INVALID_REQUEST };
            let err = RpcError::new(code, "request entity too large");
            return Err(Reply::json(500, error_body(&err)));
        }
        Err(_) => return Err(Reply::json(400, error_body(&RpcError::parse("body not readable")))),
    };
    if not_json {
        return Err(Reply::json(400, error_body(&RpcError::invalid_request())));
    }
    if !gzipped {
        return Ok(bytes);
    }
    let mut plain = Vec::new();
    let limit = MAX_BODY as u64 + 1;
    match GzDecoder::new(&bytes[..]).take(limit).read_to_end(&mut plain) {
        Ok(n) if n <= MAX_BODY => Ok(Bytes::from(plain)),
        _ => Err(Reply::json(400, error_body(&RpcError::parse("bad gzip body")))),
    }
}

async fn status_route(node: &NodeState, conn: &CancellationToken) -> Reply {
    let faults = node.faults();
    stall(&faults, conn).await;
    let healthy = !faults.not_ready;
    let status = if healthy { 200 } else { 500 };
    if node.cfg.version <= ApiVersion::V4 {
        return Reply { status, body: Bytes::new(), content_type: None };
    }
    // From v5.2 `/status` carries a JSON health document.
    let body = format!(
        "{{\"ok\":{healthy},\"components\":{{\"aztec\":{{\"healthy\":{healthy}}},\"p2p\":{{\"healthy\":true,\"enabled\":true,\"connectedPeers\":8}}}}}}"
    );
    Reply::json(status, body)
}

/// `GET` shows the faults, `POST` merges a partial Faults object, `DELETE` resets them.
async fn control_route(node: &NodeState, req: Request<Incoming>) -> Reply {
    let method = req.method().clone();
    if method == HttpMethod::POST {
        let body = match Limited::new(req.into_body(), 64 << 10).collect().await {
            Ok(c) => c.to_bytes(),
            Err(_) => return Reply::text(400, "unreadable body"),
        };
        let mut result = Ok(());
        node.update_faults(|f| result = f.merge_json(&body));
        if let Err(msg) = result {
            return Reply::text(400, msg);
        }
    } else if method == HttpMethod::DELETE {
        node.update_faults(|f| *f = Faults::default());
    } else if method != HttpMethod::GET {
        return Reply::text(405, "Method Not Allowed");
    }
    match serde_json::to_vec(&node.faults()) {
        Ok(json) => Reply::json(200, json),
        Err(_) => Reply::text(500, "faults not serializable"),
    }
}

/// Adds identity headers and content headers, and gzips when asked or forced.
fn finish(node: &NodeState, reply: Reply, gzip_ok: bool) -> Response<Full<Bytes>> {
    let faults = node.faults();
    let zip = faults.force_gzip || (gzip_ok && reply.body.len() > GZIP_MIN);
    let body = if zip { gzip(&reply.body) } else { reply.body };
    let mut resp = Response::new(Full::new(body));
    *resp.status_mut() = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let headers = resp.headers_mut();
    if let Some(ct) = reply.content_type {
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(ct));
    }
    if zip {
        headers.insert(CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    node.headers.apply(headers, faults.rollup_version);
    resp
}

fn gzip(body: &[u8]) -> Bytes {
    let mut enc = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 32), Compression::fast());
    // Writing into a Vec cannot fail.
    let _ = enc.write_all(body);
    Bytes::from(enc.finish().unwrap_or_default())
}
