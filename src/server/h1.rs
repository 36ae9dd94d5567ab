//! The JSON-RPC fast path of a client connection: plain HTTP/1.1 `POST`s to a JSON-RPC path with
//! a `Content-Length` are read, answered ([`super::answer`]) and written here, without hyper's
//! per-request machinery (header maps, body channels, boxed bodies). The head is parsed by
//! `httparse`; the answer leaves in one write (head and body together).
//!
//! Anything else — another method or path, HTTP/1.0, HTTP/2, chunked or `Expect` bodies, a body
//! over `MAX_BODY_BYTES`, a head hyper would refuse — hands the connection, with every byte
//! read so far ([`Rewind`]), to hyper for the rest of its life, so the operator surfaces and
//! every corner of HTTP keep hyper's behaviour.
//!
//! Deadlines are those of the hyper path: the next request head within `REQUEST_TIMEOUT_MS` of
//! the connection becoming idle, the body within `REQUEST_TIMEOUT_MS` ([`super::answer`]), and
//! every 64 KiB of the answer written within `REQUEST_TIMEOUT_MS`. On shutdown an idle
//! connection is closed at once and a busy one after its answer (`Connection: close`).

use std::cell::RefCell;
use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::{Buf, Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio_util::sync::CancellationToken;

use super::{answer, client_ip, request_id, ProxyError, Route};
use crate::deadline::Deadline;
use crate::forward::header_value_ok;
use crate::proxy::RpcResponse;
use crate::state::AppState;

/// Largest request head read here; a bigger one goes to hyper (which refuses it).
const MAX_HEAD: usize = 16 << 10;

/// Headers parsed per request head; more go to hyper.
const MAX_HEADERS: usize = 48;

/// Bytes of an answer written per deadline (as the hyper path's body slices).
const SLICE: usize = 64 << 10;

/// Bytes reserved for an answer's head (status line, the node's `x-aztec-*` headers, ours).
const HEAD_ROOM: usize = 2 << 10;

/// A client connection with the bytes already read from it in front, for hyper.
#[derive(Debug)]
pub(super) struct Rewind {
    prefix: Bytes,
    stream: TcpStream,
}

impl AsyncRead for Rewind {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = self.prefix.len().min(buf.remaining());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Rewind {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.stream).poll_shutdown(cx)
    }
}

/// A JSON-RPC request head this path serves.
#[derive(Debug)]
struct Head {
    /// Bytes of the head.
    len: usize,
    route: Route,
    body_len: usize,
    /// The client asked to close after this request.
    close: bool,
    request_id: String,
    client: IpAddr,
}

/// What the bytes read so far hold.
#[derive(Debug)]
enum Parsed {
    Rpc(Head),
    Partial,
    /// For hyper.
    Other,
}

/// Serves `stream` until it closes, or returns it (with what was read) for hyper.
pub(super) async fn serve(
    mut stream: TcpStream,
    app: &AppState,
    peer: SocketAddr,
    cancel: &CancellationToken,
    idle: Duration,
) -> Option<Rewind> {
    let mut buf = BytesMut::new();
    let mut out = Vec::new();
    let mut cancelled = std::pin::pin!(cancel.cancelled());
    // The idle deadline's timer, armed once per connection ([`Deadline`]): a busy connection
    // registers no timer per request.
    let mut idle_timer: Option<Pin<Box<tokio::time::Sleep>>> = None;
    loop {
        // The whole head must arrive within `idle` of the connection becoming idle.
        let deadline = tokio::time::Instant::now() + idle;
        let head = loop {
            match parse(&buf, app, peer.ip()) {
                Parsed::Rpc(head) => break head,
                Parsed::Partial if buf.len() < MAX_HEAD => {}
                _ => return Some(Rewind { prefix: buf.freeze(), stream }),
            }
            if buf.is_empty() {
                // Idle: wait for the next request holding no buffer (an idle keep-alive
                // connection costs its socket and this task only, as in nginx); the buffers
                // go to this thread's spares for whichever connection reads next.
                spare::put(std::mem::take(&mut buf), std::mem::take(&mut out));
                let timer = idle_timer.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
                {
                    let readable = std::pin::pin!(stream.readable());
                    tokio::select! {
                        biased;
                        r = Deadline::new(readable, timer, deadline) => if !matches!(r, Some(Ok(()))) { return None },
                        () = &mut cancelled => return None,
                    }
                }
                (buf, out) = spare::take();
                // One read through `poll_read` (polled once): a short read also tells tokio the
                // socket is drained, so the next idle wait sleeps in epoll instead of first
                // reading into `EAGAIN` (`try_read_buf` kept the readiness until then).
                if let Some(Ok(0) | Err(_)) = futures::FutureExt::now_or_never(stream.read_buf(&mut buf)) {
                    return None;
                }
                continue;
            }
            buf.reserve(4 << 10);
            match tokio::time::timeout_at(deadline, stream.read_buf(&mut buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return None, // closed, failed, or too slow
            }
        };
        buf.advance(head.len);
        let body_len = head.body_len;
        let body = async {
            while buf.len() < body_len {
                buf.reserve(body_len - buf.len());
                match stream.read_buf(&mut buf).await {
                    Ok(0) => {
                        return Err(ProxyError::InvalidRequest("connection closed inside the request body".into()))
                    }
                    Ok(_) => {}
                    Err(e) => return Err(ProxyError::InvalidRequest(format!("could not read body: {e}"))),
                }
            }
            Ok(buf.split_to(body_len).freeze())
        };
        // Boxed: the request's state lives only while it is served, not in every connection.
        let resp = Box::pin(answer(app, head.client, head.route, &head.request_id, body)).await;
        let close = head.close || cancel.is_cancelled();
        out.clear();
        // Room for the head (its node headers included) and a body written with it: growing
        // the buffer afterwards would copy the body once more.
        out.reserve(HEAD_ROOM + resp.body.len().min(SLICE));
        encode_head(&mut out, &resp, &head.request_id, close);
        if write(&mut stream, &mut out, resp, idle).await.is_err() || close {
            let _ = stream.shutdown().await;
            return None;
        }
    }
}

/// Writes the head in `out` and the body after it: together when small, else in [`SLICE`]s,
/// each within `idle`. The answer's budget charges are given back once it is written.
async fn write(stream: &mut TcpStream, out: &mut Vec<u8>, resp: RpcResponse, idle: Duration) -> std::io::Result<()> {
    let timed_out = || std::io::Error::from(std::io::ErrorKind::TimedOut);
    let RpcResponse { body, charges, .. } = resp;
    if out.len() + body.len() <= SLICE {
        out.extend_from_slice(&body);
        tokio::time::timeout(idle, stream.write_all(out)).await.map_err(|_| timed_out())??;
    } else {
        tokio::time::timeout(idle, stream.write_all(out)).await.map_err(|_| timed_out())??;
        for slice in body.chunks(SLICE) {
            tokio::time::timeout(idle, stream.write_all(slice)).await.map_err(|_| timed_out())??;
        }
    }
    drop(charges);
    Ok(())
}

/// Reads the request head at the start of `buf`.
fn parse(buf: &[u8], app: &AppState, peer: IpAddr) -> Parsed {
    if buf.is_empty() {
        return Parsed::Partial;
    }
    // Left uninitialised: httparse writes the ones it parses.
    let mut headers = [const { std::mem::MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut headers) {
        Ok(httparse::Status::Complete(n)) => n,
        Ok(httparse::Status::Partial) => return Parsed::Partial,
        Err(_) => return Parsed::Other,
    };
    if req.method != Some("POST") || req.version != Some(1) {
        return Parsed::Other;
    }
    let path = req.path.unwrap_or_default();
    let route = match path.split_once('?').map_or(path, |(p, _)| p) {
        "/" => Route::Any,
        "/archiver" => Route::Archiver,
        "/pruned" => Route::Pruned,
        _ => return Parsed::Other,
    };
    let (mut body_len, mut close, mut id, mut xff) = (None, false, None, None);
    for h in req.headers.iter() {
        let name = h.name.as_bytes();
        if name.eq_ignore_ascii_case(b"content-length") {
            let n = std::str::from_utf8(h.value).ok().and_then(|v| v.parse::<usize>().ok());
            match (n, body_len) {
                (Some(n), None) => body_len = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Parsed::Other,
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            close |= h.value.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"close"));
        } else if name.eq_ignore_ascii_case(b"x-request-id") {
            id.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff.get_or_insert(h.value);
        } else if name.eq_ignore_ascii_case(b"transfer-encoding")
            || name.eq_ignore_ascii_case(b"expect")
            || name.eq_ignore_ascii_case(b"upgrade")
        {
            return Parsed::Other;
        }
    }
    let config = app.config();
    let Some(body_len) = body_len.filter(|&n| n <= config.max_body_bytes) else {
        return Parsed::Other;
    };
    let client = client_ip(&config.trusted_proxies, peer, xff);
    Parsed::Rpc(Head { len, route, body_len, close, request_id: request_id(id), client })
}

/// The answer's status line and headers (the same as the hyper path's, see `into_http`).
fn encode_head(out: &mut Vec<u8>, r: &RpcResponse, request_id: &str, close: bool) {
    let status = r.status;
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(status.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(status.canonical_reason().unwrap_or("").as_bytes());
    out.extend_from_slice(b"\r\n");
    out.extend_from_slice(b"content-type: application/json\r\n");
    node_lines::write(out, &r.headers);
    header(out, b"x-request-id", request_id.as_bytes());
    match r.backends.as_slice() {
        [] => {}
        [one] if header_value_ok(one.as_bytes()) => header(out, b"x-sentinel-backend", one.as_bytes()),
        [_] => {}
        many => {
            let joined = many.join(",");
            if header_value_ok(joined.as_bytes()) {
                header(out, b"x-sentinel-backend", joined.as_bytes());
            }
        }
    }
    header(out, b"x-sentinel-cache", if r.cached { b"hit" } else { b"miss" });
    if r.fallback {
        header(out, b"x-sentinel-fallback", b"archiver");
    }
    if let Some(s) = r.retry_after {
        let _ = write!(out, "retry-after: {s}\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    header(out, b"content-length", itoa::Buffer::new().format(r.body.len()).as_bytes());
    DATE.with(|d| {
        let mut d = d.borrow_mut();
        let now = SystemTime::now();
        let secs = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        if d.0 != secs {
            *d = (secs, httpdate::fmt_http_date(now));
        }
        header(out, b"date", d.1.as_bytes());
    });
    out.extend_from_slice(b"\r\n");
}

/// This thread's spare connection buffers: a connection going idle leaves its read and answer
/// buffers here, and the next one to read takes them back (most recently used first, so still
/// in cache), instead of freeing and allocating 6 KiB per request. At most [`spare::KEEP`]
/// pairs are kept per thread (1.5 MiB), so idle connections still hold no buffers.
mod spare {
    use std::cell::RefCell;

    use bytes::BytesMut;

    /// Buffer pairs kept per thread.
    pub(super) const KEEP: usize = 256;

    /// Bytes a taken read buffer has room for.
    const READ: usize = 4 << 10;

    thread_local! {
        static SPARE: RefCell<Vec<(BytesMut, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps an idle connection's buffers (emptied) for the next reader.
    pub(super) fn put(mut read: BytesMut, mut out: Vec<u8>) {
        if read.capacity() == 0 && out.capacity() == 0 {
            return;
        }
        read.clear();
        out.clear();
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < KEEP {
                spare.push((read, out));
            }
        });
    }

    /// A read buffer with room for a request head, and an answer buffer.
    pub(super) fn take() -> (BytesMut, Vec<u8>) {
        let (mut read, out) = SPARE.with_borrow_mut(Vec::pop).unwrap_or_default();
        read.reserve(READ);
        (read, out)
    }
}

/// The node's `x-aztec-*` headers as answer-head lines, encoded once per header list: a node's
/// list is shared by its answers ([`crate::forward::NodeHeaders`]), so this thread keeps the
/// lines of the last few lists, found by pointer, and writes them with one copy.
mod node_lines {
    use std::cell::RefCell;
    use std::sync::Arc;

    use crate::forward::NodeHeaders;

    /// Lists kept per thread (one per node answering through it, as a rule).
    const KEEP: usize = 8;

    thread_local! {
        static LINES: RefCell<Vec<(NodeHeaders, Vec<u8>)>> = const { RefCell::new(Vec::new()) };
    }

    /// Writes the lines of `headers` to `out`.
    pub(super) fn write(out: &mut Vec<u8>, headers: &NodeHeaders) {
        if headers.is_empty() {
            return;
        }
        LINES.with_borrow_mut(|kept| {
            if let Some((_, lines)) = kept.iter().find(|(h, _)| Arc::ptr_eq(h, headers)) {
                out.extend_from_slice(lines);
                return;
            }
            let mut lines = Vec::new();
            for (k, v) in headers.iter() {
                super::header(&mut lines, k.as_str().as_bytes(), v.as_bytes());
            }
            out.extend_from_slice(&lines);
            // A list nobody else holds (a batch's merged headers) is not seen again.
            if Arc::strong_count(headers) > 1 {
                if kept.len() == KEEP {
                    kept.remove(0);
                }
                kept.push((Arc::clone(headers), lines));
            }
        });
    }
}

thread_local! {
    /// This second's `Date` value (formatted once a second per thread, as hyper does).
    static DATE: RefCell<(u64, String)> = const { RefCell::new((u64::MAX, String::new())) };
}

fn header(out: &mut Vec<u8>, name: &[u8], value: &[u8]) {
    out.extend_from_slice(name);
    out.extend_from_slice(b": ");
    out.extend_from_slice(value);
    out.extend_from_slice(b"\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answer_heads_carry_what_the_hyper_path_sends() {
        let mut r = RpcResponse::error(&ProxyError::Overloaded);
        r.backends = smallvec::smallvec!["a".into(), "b".into()];
        let mut out = Vec::new();
        encode_head(&mut out, &r, "req-1", true);
        let text = String::from_utf8(out).unwrap();
        assert!(text.starts_with(&format!("HTTP/1.1 {} ", r.status.as_str())), "{text}");
        for line in ["x-request-id: req-1", "x-sentinel-backend: a,b", "retry-after: 1", "connection: close"] {
            assert!(text.contains(&format!("{line}\r\n")), "{line} missing in {text}");
        }
        assert!(text.contains(&format!("content-length: {}\r\n", r.body.len())), "{text}");
        assert!(text.ends_with("\r\n\r\n"), "{text}");
        assert!(!header_value_ok(b"bad\r\nname") && header_value_ok(b"node-1 (eu)"));
        // The hyper path's rule, byte by byte: a node name gets the header on both paths or none.
        for b in 0..=u8::MAX {
            assert_eq!(header_value_ok(&[b]), http::HeaderValue::from_bytes(&[b]).is_ok(), "byte {b:#x}");
        }
        assert_eq!(header_value_ok("nœud-1".as_bytes()), http::HeaderValue::from_str("nœud-1").is_ok());
    }
}
