//! The accept loop and each connection's lifecycle: a deadline for the first byte and the
//! request head, idle close (HTTP/1 and HTTP/2, with pings), `MAX_CONNECTIONS` shedding (oldest
//! silent connection first, [`silent`]), rate-
//! limited accept-error logs, and a shutdown that closes idle connections at once.

use super::*;

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
/// Resource bounds: at most `MAX_CONNECTIONS` connections are open (past it the oldest connection
/// that has not sent a byte yet is closed to make room, or, when every connection has spoken,
/// the new one is closed at once; both are counted); a connection must send its first byte, and HTTP/1 its whole request
/// head, within `REQUEST_TIMEOUT_MS` of being accepted; a connection with nothing in flight for
/// `REQUEST_TIMEOUT_MS` is closed (HTTP/2: GOAWAY), and HTTP/2 peers are pinged at that interval.
///
/// # Errors
/// None today: accept errors (e.g. out of file descriptors) are counted, logged at most once a
/// second and retried.
pub async fn serve(listener: TcpListener, state: AppState, cancel: CancellationToken) -> std::io::Result<()> {
    let router = app(state.clone());
    let idle = state.config().request_timeout;
    let mut builder = auto::Builder::new(TokioExecutor::new());
    // `writev(false)`: head and body leave in one contiguous write. JSON-RPC answers are small,
    // and on loopback this cost the kernel less than a two-piece writev (bench/: block scenario).
    // No hyper `header_read_timeout`: it arms a boxed timer for every request head. A connection
    // that trickles its head has nothing in flight, so the idle deadline of `serve_connection`
    // closes it anyway (at most `CLOSE_WAIT` later).
    builder.http1().timer(TokioTimer::new()).header_read_timeout(None).keep_alive(true).writev(false);
    builder.http2().timer(TokioTimer::new()).keep_alive_interval(Some(idle)).keep_alive_timeout(idle);
    let builder = Arc::new(builder);
    let connections = TaskTracker::new();
    let metrics = Arc::clone(&state.metrics);
    let max = i64::try_from(state.config().max_connections).unwrap_or(i64::MAX);
    let silent = Arc::new(silent::Silent::default());
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
        if metrics.open_connections.get() >= max {
            // Shed the oldest silent connection, else this one: closing at once keeps
            // descriptors (and memory) for the connections served.
            metrics.connections_shed.inc();
            if !silent.evict_oldest() {
                drop(stream);
                continue;
            }
        }
        // Past the limit with a silent connection closed for this one, the count is one over
        // until that connection's task ends (at its next poll).
        metrics.open_connections.inc();
        let registration = silent.register();
        let open = Open(metrics.open_connections.clone());
        let _ = stream.set_nodelay(true);
        let activity = Arc::new(Activity::new());
        let conn_state = state.clone();
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
            let first = Conn { state: &conn_state, peer, activity: &activity, cancel: &cancel, idle };
            serve_connection(&builder, stream, service, first, registration).await;
            drop(open);
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
    Ok(())
}

/// What a connection's task knows about it.
struct Conn<'a> {
    state: &'a AppState,
    peer: SocketAddr,
    activity: &'a Activity,
    cancel: &'a CancellationToken,
    idle: Duration,
}

/// One client connection from accept to close: the first byte within `idle`, then the JSON-RPC
/// fast path ([`h1`]) and, if it hands the connection over, hyper: closed after `idle` without a
/// request in flight, and at once on `cancel` when idle.
async fn serve_connection<S>(
    builder: &auto::Builder<TokioExecutor>,
    stream: tokio::net::TcpStream,
    service: S,
    conn: Conn<'_>,
    registration: silent::Registration,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    let Conn { state, peer, activity, cancel, idle } = conn;
    // hyper's header timer starts only once it reads, and HTTP/2 has none: a connection that
    // never sends a byte is closed here.
    let mut first = [0u8; 1];
    let arrived = tokio::select! {
        biased;
        () = cancel.cancelled() => return,
        () = registration.evicted.cancelled() => return,
        r = tokio::time::timeout(idle, stream.peek(&mut first)) => matches!(r, Ok(Ok(n)) if n > 0),
    };
    drop(registration);
    if !arrived {
        return;
    }
    let Some(stream) = h1::serve(stream, state, peer, cancel, idle).await else { return };
    // Boxed: hyper's connection state is allocated only for the connections handed to it.
    Box::pin(with_hyper(builder, TokioIo::new(stream), service, activity, cancel, idle)).await;
}

/// A connection [`h1`] handed over, served by hyper from the bytes it had read.
async fn with_hyper<S>(
    builder: &auto::Builder<TokioExecutor>,
    io: TokioIo<h1::Rewind>,
    service: S,
    activity: &Activity,
    cancel: &CancellationToken,
    idle: Duration,
) where
    S: hyper::service::Service<Request<Incoming>, Response = Response, Error = Infallible> + Clone + Send + 'static,
    S::Future: Send + 'static,
{
    activity.mark_idle();
    let conn = builder.serve_connection(io, service);
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
