//! Plain-HTTP/1.1 exchanges with `http://` nodes, without a client framework: one write of the
//! request (head and body together), the answer's head scanned for what the gateway reads
//! ([`parse_head`]), its body read by `Content-Length`, chunked framing (chunk sizes by
//! `httparse`) or until close, straight into the budgeted buffer.
//!
//! Connections are pooled per thread and node address (a worker's requests and their upstream
//! connections live on the same thread: no lock, no connection task, no channel). The pool keeps
//! the most recently used connection on top and drops connections idle for [`POOL_IDLE`]
//! whenever it is touched, so it never hands out a socket the node is about to close, and
//! peeks at a connection before reusing it: one the node closed (FIN or reset) or wrote to
//! unasked is dropped. A request, once written, is never sent again here: a node that reads it
//! and closes without answering may have acted on it (a `sendTx`), and whether another node
//! gets it is the dispatcher's call (reads yes, writes no), as with hyper's client.
//!
//! `https://` nodes (TLS, HTTP/2 by ALPN) go through hyper's client instead.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::pin::Pin;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::header::{HeaderName, HeaderValue};
use http::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::{AnswerBudget, Buffer, ForwardError, NodeHeaders, Reply, POOL_IDLE};
use crate::deadline::Deadline;
use crate::upstream::Backend;

/// Idle connections kept per node and thread (as hyper's `pool_max_idle_per_host` did).
const MAX_IDLE: usize = 1024;

/// Largest answer head read (status line and headers).
const MAX_HEAD: usize = 64 << 10;

/// Headers parsed per answer head; a node sending more is not answering JSON-RPC.
const MAX_HEADERS: usize = 64;

/// Largest request buffer an idle connection keeps for its next request.
const KEEP_REQUEST: usize = 16 << 10;

/// How long a new connection may take (as the hyper client's connect timeout).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One open connection to a node, with the bytes read past the last answer (none, normally).
struct Conn {
    stream: TcpStream,
    read: BytesMut,
    /// The attempt deadline's timer, armed once and moved on only when it fires early
    /// ([`Deadline`]): a request on a reused connection registers no timer of its own.
    timer: Option<Pin<Box<Sleep>>>,
    /// The last answer's `x-aztec-*` lines (`name:value\n`), a buffer kept for the next.
    aztec: Vec<u8>,
    /// The request being sent, a buffer kept for the next.
    out: Vec<u8>,
}

impl Conn {
    fn new(stream: TcpStream) -> Conn {
        // Room for a node's usual `x-aztec-*` set (the simulated node's six lines are ~330 bytes).
        Conn {
            stream,
            read: BytesMut::with_capacity(8 << 10),
            timer: None,
            aztec: Vec::with_capacity(512),
            out: Vec::new(),
        }
    }
}

struct Idle {
    conn: Conn,
    since: Instant,
}

/// The idle connections of one thread to one node, and what that node's answers last carried.
struct Node {
    /// `host:port`.
    addr: String,
    /// Most recently used last.
    idle: VecDeque<Idle>,
    /// The raw `x-aztec-*` lines of the node's last answer and their parsed form: a node sends
    /// the same ones with every answer, so they are parsed (and allocated) once.
    aztec: (Vec<u8>, NodeHeaders),
}

thread_local! {
    /// This thread's nodes (a handful: searched in order).
    static POOL: RefCell<Vec<Node>> = const { RefCell::new(Vec::new()) };
}

/// Runs `f` on this thread's entry for `addr` (made when missing).
fn with_node<R>(addr: &str, f: impl FnOnce(&mut Node) -> R) -> R {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let i = match pool.iter().position(|n| n.addr == addr) {
            Some(i) => i,
            None => {
                pool.push(Node { addr: addr.to_owned(), idle: VecDeque::new(), aztec: Default::default() });
                pool.len() - 1
            }
        };
        f(&mut pool[i])
    })
}

/// The most recently used idle connection to `addr` that is not too old at `now` and still
/// open, if any.
fn checkout(addr: &str, now: Instant) -> Option<Conn> {
    with_node(addr, |node| {
        let idle = &mut node.idle;
        while let Some(top) = idle.pop_back() {
            if now.duration_since(top.since) >= POOL_IDLE {
                idle.clear(); // the rest is older still
            } else if quiet(&top.conn.stream) {
                expire(idle, now);
                return Some(top.conn);
            }
        }
        None
    })
}

/// Whether an idle connection is open with nothing to read. End of stream (the node closed
/// it), a reset, or bytes nobody asked for all mean it is not usable. No system call unless the
/// reactor saw the socket become readable since a read drained it (tokio clears readiness when
/// a read comes back short): then a peek tells a close from a readiness left over.
fn quiet(stream: &TcpStream) -> bool {
    let mut byte = [std::mem::MaybeUninit::<u8>::uninit()];
    let peeked = stream.try_io(tokio::io::Interest::READABLE, || socket2::SockRef::from(stream).peek(&mut byte));
    matches!(peeked, Err(e) if e.kind() == std::io::ErrorKind::WouldBlock)
}

/// Puts a connection that ended an exchange cleanly back in the pool.
fn checkin(addr: &str, conn: Conn) {
    with_node(addr, |node| {
        let (idle, now) = (&mut node.idle, Instant::now());
        expire(idle, now);
        if idle.len() >= MAX_IDLE {
            idle.pop_front();
        }
        idle.push_back(Idle { conn, since: now });
    });
}

/// Drops the connections idle for [`POOL_IDLE`] or longer (the oldest are at the front).
fn expire(idle: &mut VecDeque<Idle>, now: Instant) {
    while idle.front().is_some_and(|c| now.duration_since(c.since) >= POOL_IDLE) {
        idle.pop_front();
    }
}

/// Drops every idle connection of this thread that is too old to be used (a node no longer
/// configured, or traffic that stopped, would otherwise keep them open). Run by each worker
/// every [`POOL_IDLE`].
pub fn expire_idle() {
    POOL.with(|p| {
        let mut pool = p.borrow_mut();
        let now = Instant::now();
        pool.retain_mut(|node| {
            expire(&mut node.idle, now);
            !node.idle.is_empty()
        });
    });
}

/// The request in `out`: head and body in one buffer (one write, one segment on loopback).
fn encode_request(out: &mut Vec<u8>, backend: &Backend, host: &str, body: &[u8], request_id: &str) {
    let target = backend.uri.path_and_query().map_or("/", |p| p.as_str());
    out.clear();
    out.reserve(192 + target.len() + host.len() + request_id.len() + body.len());
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\ncontent-type: application/json\r\naccept-encoding: gzip, deflate\r\n");
    if super::header_value_ok(request_id.as_bytes()) {
        out.extend_from_slice(b"x-request-id: ");
        out.extend_from_slice(request_id.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"content-length: ");
    out.extend_from_slice(itoa::Buffer::new().format(body.len()).as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
}

/// Posts `body` to the `http://` node `backend` and reads the whole answer, all within
/// `timeout` ([`ForwardError::Timeout`] past it).
pub(super) async fn exchange(
    backend: &Backend,
    body: &[u8],
    request_id: &str,
    limit: usize,
    budget: Option<&AnswerBudget>,
    timeout: Duration,
) -> Result<Reply, ForwardError> {
    let now = Instant::now();
    let at = now + timeout;
    let addr = backend.address.as_str();
    let mut conn = match checkout(addr, now) {
        Some(conn) => conn,
        None => match tokio::time::timeout_at(at, connect(addr)).await {
            Ok(conn) => conn?,
            Err(_) => return Err(ForwardError::Timeout(timeout)),
        },
    };
    let mut timer = conn.timer.take().unwrap_or_else(|| Box::pin(tokio::time::sleep_until(at)));
    let mut request = std::mem::take(&mut conn.out);
    encode_request(&mut request, backend, addr, body, request_id);
    let answered = {
        let attempt = std::pin::pin!(attempt(&mut conn, addr, &request, limit, budget));
        Deadline::new(attempt, &mut timer, at).await
    };
    if request.capacity() <= KEEP_REQUEST {
        conn.out = request; // a big batch's buffer is not kept by an idle connection
    }
    let (reply, reusable) = answered.ok_or(ForwardError::Timeout(timeout))??;
    if reusable {
        conn.timer = Some(timer);
        checkin(addr, conn);
    }
    Ok(reply)
}

async fn connect(addr: &str) -> Result<Conn, ForwardError> {
    let stream = match tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(addr)).await {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => return Err(ForwardError::Connect(format!("tcp connect error: {e}"))),
        Err(_) => return Err(ForwardError::Connect(format!("tcp connect timed out after {CONNECT_TIMEOUT:?}"))),
    };
    let _ = stream.set_nodelay(true);
    let keepalive = socket2::TcpKeepalive::new().with_time(Duration::from_secs(30));
    let _ = socket2::SockRef::from(&stream).set_tcp_keepalive(&keepalive);
    Ok(Conn::new(stream))
}

/// What the answer's head says about its body.
enum Framing {
    Length(usize),
    Chunked,
    UntilClose,
}

/// The fields of an answer head the gateway uses.
struct Head {
    status: StatusCode,
    framing: Framing,
    keep_alive: bool,
    encoding: Option<HeaderValue>,
    len: usize,
}

/// One request and its answer on `conn`; also whether the connection may be used again.
async fn attempt(
    conn: &mut Conn,
    addr: &str,
    request: &[u8],
    limit: usize,
    budget: Option<&AnswerBudget>,
) -> Result<(Reply, bool), ForwardError> {
    conn.read.clear();
    conn.stream.write_all(request).await.map_err(|e| io(&e))?;
    let head = loop {
        if let Some(head) = parse_head(&conn.read, &mut conn.aztec)? {
            conn.read.advance(head.len);
            if head.status.is_informational() {
                continue; // 100 Continue and friends: the real answer follows
            }
            break head;
        }
        if conn.read.len() >= MAX_HEAD {
            return Err(ForwardError::Io("answer head too large".into()));
        }
        conn.read.reserve(4 << 10);
        match conn.stream.read_buf(&mut conn.read).await {
            Ok(0) if conn.read.is_empty() => return Err(ForwardError::Io("closed without an answer".into())),
            Ok(0) => return Err(ForwardError::Io("connection closed inside the answer head".into())),
            Ok(_) => {}
            Err(e) => return Err(io(&e)),
        }
    };
    if head.status.is_server_error() {
        return Err(ForwardError::Status(head.status.as_u16()));
    }
    let mut buf = Buffer::new(budget, limit);
    let mut reusable = head.keep_alive;
    match head.framing {
        Framing::Length(n) => {
            if n > limit {
                return Err(ForwardError::TooLarge(limit));
            }
            buf.reserve(n, true).await?;
            let have = conn.read.len().min(n);
            buf.data.extend_from_slice(&conn.read[..have]);
            conn.read.advance(have);
            while buf.data.len() < n {
                // Exactly the rest: the spare capacity is `n - len`, so nothing past the answer.
                let want = n - buf.data.len();
                match (&mut conn.stream).take(want as u64).read_buf(&mut buf.data).await {
                    Ok(0) => return Err(ForwardError::Io("connection closed inside the answer body".into())),
                    Ok(_) => {}
                    Err(e) => return Err(io(&e)),
                }
            }
        }
        Framing::Chunked => read_chunked(conn, &mut buf, limit).await?,
        Framing::UntilClose => {
            reusable = false;
            buf.reserve(conn.read.len(), false).await?;
            buf.data.extend_from_slice(&conn.read);
            conn.read.clear();
            loop {
                if buf.data.len() > limit {
                    return Err(ForwardError::TooLarge(limit));
                }
                buf.reserve(8 << 10, false).await?;
                match conn.stream.read_buf(&mut buf.data).await {
                    Ok(0) => break,
                    Ok(_) => {}
                    Err(e) => return Err(io(&e)),
                }
            }
        }
    }
    if buf.data.len() > limit {
        return Err(ForwardError::TooLarge(limit));
    }
    // Bytes past the answer mean the node and the gateway disagree on framing.
    reusable &= conn.read.is_empty();
    let (body, charge) = super::decode_with(head.encoding.as_ref(), buf.freeze(), limit, budget).await?;
    let aztec_headers = aztec_headers(addr, &conn.aztec);
    Ok((Reply { status: head.status, aztec_headers, body, charge }, reusable))
}

/// The `x-aztec-*` headers of `raw` (the answer's header lines as they came), parsed once per
/// change per node.
fn aztec_headers(addr: &str, raw: &[u8]) -> NodeHeaders {
    with_node(addr, |node| {
        if node.aztec.0 != raw {
            let parsed = raw
                .split(|&b| b == b'\n')
                .filter_map(|line| {
                    let colon = line.iter().position(|&b| b == b':')?;
                    let name = HeaderName::from_bytes(&line[..colon]).ok()?;
                    Some((name, HeaderValue::from_bytes(line[colon + 1..].trim_ascii()).ok()?))
                })
                .collect();
            node.aztec = (raw.to_vec(), parsed);
        }
        std::sync::Arc::clone(&node.aztec.1)
    })
}

/// The answer head at the start of `read`, once it is complete; its `x-aztec-*` lines go to
/// `aztec` (parsed by [`aztec_headers`]).
///
/// A scan, not a full parse: the status line is checked whole, each header line is split at
/// its first colon, and only the values the gateway reads are checked (`Content-Length`
/// digits, the framing and connection tokens; `x-aztec-*` names and values when they are
/// parsed, by `http`'s rules). The headers the gateway drops (`Date`, `Content-Type`,
/// `Keep-Alive`, …) are skipped unread: validating them byte by byte was a ninth of the
/// gateway's instructions per forwarded read. Folded lines and lines without a colon are
/// errors, as in httparse.
fn parse_head(read: &[u8], aztec: &mut Vec<u8>) -> Result<Option<Head>, ForwardError> {
    let bad = |what: &str| ForwardError::Io(format!("invalid HTTP answer: {what}"));
    let Some(end) = memchr::memchr(b'\n', read) else {
        // Incomplete: garbage is told apart as soon as it differs from a status line.
        let n = read.len().min(7);
        return if read[..n] == b"HTTP/1."[..n] { Ok(None) } else { Err(bad("not an HTTP/1 status line")) };
    };
    let (minor, status) = status_line(trim_cr(&read[..end])).ok_or_else(|| bad("invalid status line"))?;
    let mut keep_alive = minor == 1;
    let (mut length, mut chunked, mut encoding) = (None, false, None);
    aztec.clear();
    let mut at = end + 1;
    let mut count = 0;
    let len = loop {
        let Some(n) = memchr::memchr(b'\n', &read[at..]) else { return Ok(None) };
        let start = at;
        let line = trim_cr(&read[at..at + n]);
        at += n + 1;
        if line.is_empty() {
            break at;
        }
        count += 1;
        if count > MAX_HEADERS {
            return Err(bad("too many headers"));
        }
        let colon = memchr::memchr(b':', line).ok_or_else(|| bad("header line without a colon"))?;
        let (name, value) = (&line[..colon], line[colon + 1..].trim_ascii());
        if name.is_empty() || name[0].is_ascii_whitespace() || name[name.len() - 1].is_ascii_whitespace() {
            return Err(bad("folded header line or invalid header name"));
        }
        if name.eq_ignore_ascii_case(b"content-length") {
            let n =
                value.iter().all(u8::is_ascii_digit).then(|| std::str::from_utf8(value).ok()?.parse::<usize>().ok());
            match (n.flatten(), length) {
                (Some(n), None) => length = Some(n),
                (Some(n), Some(m)) if n == m => {}
                _ => return Err(ForwardError::Io("invalid Content-Length in the answer".into())),
            }
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            let last = value.rsplit(|&b| b == b',').next().unwrap_or_default();
            chunked = last.trim_ascii().eq_ignore_ascii_case(b"chunked");
            if !chunked {
                keep_alive = false; // framed by close
            }
        } else if name.eq_ignore_ascii_case(b"connection") {
            for token in value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && minor == 0 {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case(b"content-encoding") {
            encoding = HeaderValue::from_bytes(value).ok();
        } else if name.len() > 8 && name[..8].eq_ignore_ascii_case(b"x-aztec-") {
            aztec.extend_from_slice(&read[start..at]); // the raw line, end of line included
        }
    };
    let framing = if status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED {
        Framing::Length(0)
    } else if chunked {
        Framing::Chunked
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        // Neither a length nor chunked: only the close can end it.
        keep_alive = false;
        Framing::UntilClose
    };
    Ok(Some(Head { status, framing, keep_alive, encoding, len }))
}

/// `HTTP/1.x NNN reason`: the minor version and the status.
fn status_line(line: &[u8]) -> Option<(u8, StatusCode)> {
    let rest = line.strip_prefix(b"HTTP/1.")?;
    let (&minor, rest) = rest.split_first()?;
    let code = rest.strip_prefix(b" ")?.get(..3)?;
    let reason = &rest[4..];
    if !matches!(minor, b'0' | b'1') || !(reason.is_empty() || reason[0] == b' ') {
        return None;
    }
    if reason.iter().any(|&b| b.is_ascii_control() && b != b'\t') {
        return None;
    }
    Some((minor - b'0', StatusCode::from_bytes(code).ok()?))
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Reads a chunked body into `buf` (trailers are read and ignored).
async fn read_chunked(conn: &mut Conn, buf: &mut Buffer<'_>, limit: usize) -> Result<(), ForwardError> {
    loop {
        let (used, size) = loop {
            match httparse::parse_chunk_size(&conn.read) {
                Ok(httparse::Status::Complete(r)) => break r,
                Ok(httparse::Status::Partial) => fill(conn, "chunk size").await?,
                Err(_) => return Err(ForwardError::Io("invalid chunk size in the answer".into())),
            }
        };
        conn.read.advance(used);
        let size = usize::try_from(size).map_err(|_| ForwardError::TooLarge(limit))?;
        if size == 0 {
            // Trailer fields, then an empty line.
            loop {
                match conn.read.windows(2).position(|w| w == b"\r\n") {
                    Some(0) => {
                        conn.read.advance(2);
                        return Ok(());
                    }
                    Some(i) => conn.read.advance(i + 2),
                    None if conn.read.len() > MAX_HEAD => {
                        return Err(ForwardError::Io("answer trailers too large".into()))
                    }
                    None => fill(conn, "trailers").await?,
                }
            }
        }
        if buf.data.len().saturating_add(size) > limit {
            return Err(ForwardError::TooLarge(limit));
        }
        buf.reserve(size, false).await?;
        let mut left = size;
        while left > 0 {
            if conn.read.is_empty() {
                fill(conn, "chunk").await?;
            }
            let n = conn.read.len().min(left);
            buf.data.extend_from_slice(&conn.read[..n]);
            conn.read.advance(n);
            left -= n;
        }
        while conn.read.len() < 2 {
            fill(conn, "chunk end").await?;
        }
        if &conn.read[..2] != b"\r\n" {
            return Err(ForwardError::Io("invalid chunk end in the answer".into()));
        }
        conn.read.advance(2);
    }
}

/// Reads more of the answer into the connection's buffer.
async fn fill(conn: &mut Conn, what: &str) -> Result<(), ForwardError> {
    conn.read.reserve(8 << 10);
    match conn.stream.read_buf(&mut conn.read).await {
        Ok(0) => Err(ForwardError::Io(format!("connection closed inside the answer ({what})"))),
        Ok(_) => Ok(()),
        Err(e) => Err(io(&e)),
    }
}

fn io(e: &std::io::Error) -> ForwardError {
    ForwardError::Io(format!("connection error: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_say_how_the_body_ends() {
        let mut lines = Vec::new();
        let h =
            parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\nx-aztec-packageVersion: 4.1.2\r\n\r\n{}", &mut lines)
                .unwrap()
                .unwrap();
        assert!(matches!(h.framing, Framing::Length(12)) && h.keep_alive);
        assert_eq!(aztec_headers("test:1", &lines).len(), 1);
        let mut parse = |head: &[u8]| parse_head(head, &mut lines);
        let h = parse(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n").unwrap().unwrap();
        assert!(matches!(h.framing, Framing::Chunked) && !h.keep_alive);
        let h = parse(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert!(matches!(h.framing, Framing::UntilClose) && !h.keep_alive);
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n").is_err());
        assert!(parse(b"HTTP/1.1 200 OK\r\nContent-").unwrap().is_none());
        assert!(parse(b"garbage\r\n\r\n").is_err());
        assert!(lines.is_empty(), "each head's lines replace the last's");
    }

    #[test]
    fn the_head_scan_agrees_with_httparse_and_refuses_what_it_refuses() {
        let ok: &[&[u8]] = &[
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-aztec-packageversion: 6.0.0\r\ncontent-length: 38\r\ndate: Thu, 03 Dec 2026 05:12:41 GMT\r\n\r\n",
            b"HTTP/1.1 404 Not Found\ncontent-length:0\n\n",
            b"HTTP/1.0 200\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\n{}",
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: gzip, chunked\r\nX-Aztec-L1ChainId:  31337 \r\n\r\n",
        ];
        for (i, head) in ok.iter().enumerate() {
            let mut headers = [httparse::EMPTY_HEADER; 16];
            let mut theirs = httparse::Response::new(&mut headers);
            let Ok(httparse::Status::Complete(len)) = theirs.parse(head) else { panic!("httparse refused {head:?}") };
            let mut lines = Vec::new();
            let ours = parse_head(head, &mut lines).unwrap().unwrap();
            assert_eq!((ours.len, ours.status.as_u16()), (len, theirs.code.unwrap()), "{head:?}");
            let want: Vec<(String, &[u8])> = theirs
                .headers
                .iter()
                .filter(|h| h.name.len() > 8 && h.name[..8].eq_ignore_ascii_case("x-aztec-"))
                .map(|h| (h.name.to_ascii_lowercase(), h.value))
                .collect();
            let passed = aztec_headers(&format!("scan:{i}"), &lines);
            let got: Vec<(String, &[u8])> = passed.iter().map(|(k, v)| (k.as_str().to_owned(), v.as_bytes())).collect();
            assert_eq!(got, want, "{head:?}");
        }
        let refused: &[&[u8]] = &[
            b"HTTP/2 200 OK\r\n\r\n",
            b"HTTP/1.1 20 OK\r\n\r\n",
            b"HTTP/1.1 200OK\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nno colon here\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length : 5\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nx-a: 1\r\n folded\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: +5\r\n\r\n",
            b"<html>",
        ];
        for head in refused {
            assert!(parse_head(head, &mut Vec::new()).is_err(), "{head:?} was accepted");
        }
        assert!(parse_head(b"HTTP/1.", &mut Vec::new()).unwrap().is_none(), "a head still arriving");
    }

    /// A node on a real socket that answers every request with `raw` (then closes when told).
    async fn node_answering(raw: &'static [u8], close: bool) -> String {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            s.write_all(raw).await.unwrap();
            if !close {
                let _ = s.read(&mut buf).await; // keep the connection until the client drops it
            }
        });
        addr
    }

    #[tokio::test]
    async fn chunked_and_close_delimited_answers_are_read_whole() {
        let cases: [(&'static [u8], bool, bool); 3] = [
            (
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\n{\"a\":\r\n3\r\n 1}\r\n0\r\nx-t: 1\r\n\r\n",
                false,
                true,
            ),
            (b"HTTP/1.0 200 OK\r\n\r\n{\"a\": 1}", true, false),
            (b"HTTP/1.1 200 OK\r\ncontent-length: 8\r\n\r\n{\"a\": 1}", false, true),
        ];
        for (raw, close, reusable) in cases {
            let addr = node_answering(raw, close).await;
            let mut conn = Conn::new(TcpStream::connect(&addr).await.unwrap());
            let request = b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n";
            match attempt(&mut conn, &addr, request, 1 << 20, None).await {
                Ok((reply, reuse)) => {
                    assert_eq!(&reply.body[..], b"{\"a\": 1}", "{}", String::from_utf8_lossy(raw));
                    assert_eq!(reuse, reusable, "{}", String::from_utf8_lossy(raw));
                }
                Err(_) => panic!("{} was not read", String::from_utf8_lossy(raw)),
            }
        }
    }

    #[tokio::test]
    async fn a_truncated_answer_is_an_error_not_a_short_body() {
        let addr = node_answering(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"a\"", true).await;
        let mut conn = Conn::new(TcpStream::connect(&addr).await.unwrap());
        let r = attempt(&mut conn, &addr, b"POST / HTTP/1.1\r\ncontent-length: 0\r\n\r\n", 1 << 20, None).await;
        assert!(matches!(r, Err(ForwardError::Io(_))));
    }

    /// A node whose connections each answer `answers` requests and then read one more and close
    /// without answering; it counts the requests that arrived.
    async fn node_reading_then_closing(answers: usize) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
        use std::sync::atomic::{AtomicUsize, Ordering};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let arrived = std::sync::Arc::new(AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&arrived);
        tokio::spawn(async move {
            loop {
                let (mut s, _) = listener.accept().await.unwrap();
                let count = std::sync::Arc::clone(&count);
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    for served in 0.. {
                        if s.read(&mut buf).await.unwrap_or(0) == 0 {
                            return;
                        }
                        count.fetch_add(1, Ordering::SeqCst);
                        if served == answers {
                            return; // read, and closed without a word
                        }
                        let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
                        s.write_all(answer).await.unwrap();
                    }
                });
            }
        });
        (addr, arrived)
    }

    const SECOND: Duration = Duration::from_secs(1);

    #[tokio::test]
    async fn a_reused_connection_keeps_each_requests_own_deadline() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        tokio::spawn(async move {
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await.unwrap();
            let _ = s.read(&mut buf).await;
            std::future::pending::<()>().await; // the second request is never answered
        });
        let node = backend(&addr);
        // The first request arms the connection's timer 50 ms out; the second, on the same
        // connection, must not time out when that old timer fires, only at its own 300 ms.
        assert!(exchange(&node, b"{}", "r1", 1 << 20, None, Duration::from_millis(50)).await.is_ok());
        let started = tokio::time::Instant::now();
        let second = exchange(&node, b"{}", "r2", 1 << 20, None, Duration::from_millis(300)).await;
        assert!(matches!(second, Err(ForwardError::Timeout(_))), "{second:?}");
        assert!(started.elapsed() >= Duration::from_millis(300), "timed out after {:?}", started.elapsed());
    }

    fn backend(addr: &str) -> Backend {
        let config = crate::config::Config::for_tests(&[&format!("http://{addr}")]);
        Backend::new(0, &config.backends[0], &config)
    }

    #[tokio::test]
    async fn a_request_the_node_read_is_never_sent_again() {
        use std::sync::atomic::Ordering;
        let (addr, arrived) = node_reading_then_closing(1).await;
        let node = backend(&addr);
        assert!(exchange(&node, b"{}", "r1", 1 << 20, None, SECOND).await.is_ok());
        // The pooled connection is open and quiet, so it is reused; the node reads the request
        // and closes: that is an error for the dispatcher, not a second copy on a new connection.
        let second = exchange(&node, b"{}", "r2", 1 << 20, None, SECOND).await;
        assert!(matches!(second, Err(ForwardError::Io(_))), "{second:?}");
        assert_eq!(arrived.load(Ordering::SeqCst), 2, "the second request reached the node twice");
    }

    #[tokio::test]
    async fn a_connection_the_node_closed_while_idle_is_not_reused() {
        use std::sync::atomic::Ordering;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let served = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let count = std::sync::Arc::clone(&served);
        let (closed_tx, closed_rx) = tokio::sync::oneshot::channel();
        tokio::spawn(async move {
            // The first connection answers once and is closed by the node while idle.
            let (mut s, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = s.read(&mut buf).await;
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await.unwrap();
            drop(s);
            closed_tx.send(()).unwrap();
            let (mut s, _) = listener.accept().await.unwrap();
            let _ = s.read(&mut buf).await;
            count.fetch_add(1, Ordering::SeqCst);
            s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 4\r\n\r\n[{}]").await.unwrap();
            let _ = s.read(&mut buf).await;
        });
        let node = backend(&addr);
        assert!(exchange(&node, b"{}", "r1", 1 << 20, None, SECOND).await.is_ok());
        closed_rx.await.unwrap();
        // The node's FIN is in the socket by the time its close returned (loopback); the
        // reactor notes it on its next turn, which a yield waits for.
        tokio::task::yield_now().await;
        let reply = exchange(&node, b"{}", "r2", 1 << 20, None, SECOND).await.expect("answered on a new connection");
        assert_eq!(&reply.body[..], b"[{}]");
        assert_eq!(served.load(Ordering::SeqCst), 1);
    }
}
