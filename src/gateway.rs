//! Wiring one gateway from a [`Config`]: the shared [`AppState`] (Redis connection, rate
//! limiter, cache, pool, metrics), the monitor that publishes the pool's snapshots and the HTTP
//! server, with graceful shutdown (stop accepting, let in-flight requests finish within
//! `SHUTDOWN_GRACE_MS`), and the log subscriber ([`log_subscriber`]).

use std::sync::Arc;
use std::time::Instant;

use arc_swap::ArcSwap;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::affinity::Sticky;
use crate::cache::Cache;
use crate::coalesce::Coalescer;
use crate::config::Config;
use crate::dispatch::HedgeBudget;
use crate::forward::AnswerBudget;
use crate::lease::Lease;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::ratelimit::RateLimiter;
use crate::reload::{self, Reloader};
use crate::server;
use crate::shared::Shared;
use crate::state::{AppState, Inner, Settings};
use crate::upstream::Pool;
use crate::validators::ValidatorWatch;

/// Builds the shared state and the monitor that will publish its snapshots. Needs a Tokio
/// runtime when `REDIS_URL` is set (the connection is made in the background).
pub fn build(config: Config) -> (AppState, Monitor) {
    let config = Arc::new(config);
    let pool = Arc::new(Pool::new(&config));
    let metrics = Arc::new(Metrics::new());
    let redis = config
        .redis_url
        .as_ref()
        .map(|url| Shared::connect(url.expose().as_str(), config.redis_ca_file.as_deref(), Arc::clone(&metrics)));
    let lease = redis.clone().map(|r| Lease::new(r, Arc::clone(&metrics)));
    let state = state(Arc::clone(&config), Arc::clone(&pool), metrics, redis);
    let monitor = Monitor::new(config, pool, crate::forward::client())
        .with_validators(Arc::clone(&state.validators))
        .with_lease(lease);
    (state, monitor)
}

/// The shared state for a configuration and pool; the cache and the limiter share one Redis
/// connection (`redis`, when `REDIS_URL` is set) with the monitor's analysis lease.
fn state(config: Arc<Config>, pool: Arc<Pool>, metrics: Arc<Metrics>, redis: Option<Arc<Shared>>) -> AppState {
    AppState::new(Inner {
        sticky: Sticky::new(),
        in_flight: Arc::new(Semaphore::new(config.max_concurrent_requests)),
        limiter: RateLimiter::new(&config, redis.clone(), Arc::clone(&metrics)),
        cache: Cache::new(&config, redis, Arc::clone(&metrics)),
        coalescer: Arc::new(Coalescer::default()),
        hedge_budget: HedgeBudget::default(),
        started: Instant::now(),
        answers: Arc::new(AnswerBudget::new(&config, metrics.buffered_answer_bytes.clone())),
        validators: Arc::new(ValidatorWatch::new(&config.watch_validators)),
        metrics,
        pool,
        settings: ArcSwap::from_pointee(Settings::new(config, 1)),
    })
}

/// Runs the monitor, and the server on `listener` with one single-threaded runtime per worker
/// thread (`WORKER_THREADS`, default one per core) until `cancel`; then waits at most the grace
/// period for in-flight requests.
///
/// Thread-per-core, like nginx's workers: every worker accepts from its own listening socket
/// (`SO_REUSEPORT`, see [`bind`]; or from the one given, shared) and serves its connections
/// start to finish on its own thread, with its own pool of connections to the nodes (`forward`
/// keeps one per thread). That avoids the cross-thread wake-ups and
/// work-stealing of a shared runtime, which cost about a fifth of the gateway's CPU per
/// request on a 2-core machine. Shared state (pool snapshot, cache, metrics) is lock-free or
/// behind tiny critical sections, so the workers never wait on each other.
///
/// # Errors
/// Listener I/O errors.
pub async fn run(config: Config, listener: TcpListener, cancel: CancellationToken) -> std::io::Result<()> {
    run_reloadable(config, listener, cancel, None).await
}

/// [`run`], and with a `reload` source, configuration reloads on SIGHUP and `--config` file
/// changes ([`Reloader::run`]).
///
/// # Errors
/// Listener I/O errors.
pub async fn run_reloadable(
    config: Config,
    listener: TcpListener,
    cancel: CancellationToken,
    reload: Option<reload::Source>,
) -> std::io::Result<()> {
    let grace = config.shutdown_grace;
    let workers = config.worker_threads;
    let (state, mut monitor) = build(config);
    if let Some(source) = reload {
        let reloader;
        (reloader, monitor) = Reloader::attach(state.clone(), monitor, source);
        let task = Arc::new(reloader).run(reload::FILE_POLL, cancel.clone());
        tokio::spawn(task.instrument(tracing::info_span!("reload")));
    }
    let monitor_task = tokio::spawn(monitor.run(cancel.clone()).instrument(tracing::info_span!("monitor")));
    let std_listener = listener.into_std()?;
    let mut done = Vec::with_capacity(workers);
    for i in 0..workers {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let listener = if i == 0 { std_listener.try_clone()? } else { worker_listener(&std_listener)? };
        let (state, cancel) = (state.clone(), cancel.clone());
        std::thread::Builder::new().name(format!("sentinel-worker-{i}")).spawn(move || {
            let _ = tx.send(serve_on_this_thread(listener, state, cancel));
        })?;
        done.push(rx);
    }
    drop(std_listener);
    let all = futures::future::join_all(done);
    let mut all = std::pin::pin!(all);
    let results = tokio::select! {
        r = &mut all => r,
        () = cancel.cancelled() => {
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections, finishing in-flight requests");
            match tokio::time::timeout(grace, &mut all).await {
                Ok(r) => r,
                Err(_) => {
                    tracing::warn!("grace period over; closing remaining connections");
                    Vec::new()
                }
            }
        }
    };
    monitor_task.abort();
    for r in results {
        r.map_err(|_| std::io::Error::other("worker thread ended without a result"))??;
    }
    Ok(())
}

/// Backlog of each listening socket (tokio's default).
const BACKLOG: i32 = 1024;

/// The gateway's listening socket on `addr`, with `SO_REUSEPORT` so that every worker can have
/// its own ([`run`]): the kernel then spreads new connections evenly over the workers, as
/// nginx's `listen ... reuseport` does, instead of all workers racing for one accept queue.
///
/// # Errors
/// The address cannot be bound (in use, not local, no permission).
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = reuse_port_socket(addr)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    TcpListener::from_std(socket.into())
}

fn reuse_port_socket(addr: std::net::SocketAddr) -> std::io::Result<socket2::Socket> {
    let socket = socket2::Socket::new(socket2::Domain::for_address(addr), socket2::Type::STREAM, None)?;
    socket.set_reuse_address(true)?;
    socket.set_reuse_port(true)?;
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// A worker's own listening socket beside `first` (same address, `SO_REUSEPORT`); when `first`
/// was not made by [`bind`] (a caller's listener), the workers share `first` instead.
fn worker_listener(first: &std::net::TcpListener) -> std::io::Result<std::net::TcpListener> {
    let addr = first.local_addr()?;
    let own = reuse_port_socket(addr).and_then(|s| {
        s.bind(&addr.into())?;
        s.listen(BACKLOG)?;
        Ok(s)
    });
    match own {
        Ok(s) => Ok(s.into()),
        Err(_) => first.try_clone(),
    }
}

/// One worker: a current-thread runtime serving `listener` until `cancel`.
fn serve_on_this_thread(
    listener: std::net::TcpListener,
    state: AppState,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    runtime.block_on(async move {
        let listener = TcpListener::from_std(listener)?;
        // This thread's idle upstream connections are dropped once too old even when no
        // request touches their pool any more.
        let expiry = cancel.clone();
        tokio::spawn(async move {
            while tokio::time::timeout(crate::forward::POOL_IDLE, expiry.cancelled()).await.is_err() {
                crate::forward::expire_idle();
            }
        });
        server::serve(listener, state, cancel).await
    })
}

/// The log subscriber for `format`: `filter` decides what is logged, `ansi` colours the pretty
/// format, `writer` receives the lines. In the pretty format every field value is written with
/// its control characters escaped ([`server::log_safe`]), so no value (a method name, a node's error
/// text) can end a log line and forge the next; the JSON format escapes them by encoding.
pub fn log_subscriber<W>(
    format: crate::config::LogFormat,
    filter: tracing_subscriber::EnvFilter,
    ansi: bool,
    writer: W,
) -> Box<dyn tracing::Subscriber + Send + Sync>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    reloadable_log_subscriber(format, filter, ansi, writer).0
}

/// Replaces the filter of a [`reloadable_log_subscriber`].
pub type SetLogFilter = Box<dyn Fn(tracing_subscriber::EnvFilter) -> Result<(), String> + Send + Sync>;

/// [`log_subscriber`], and a function that replaces its filter while it runs (a reload of
/// `LOG_LEVEL`).
pub fn reloadable_log_subscriber<W>(
    format: crate::config::LogFormat,
    filter: tracing_subscriber::EnvFilter,
    ansi: bool,
    writer: W,
) -> (Box<dyn tracing::Subscriber + Send + Sync>, SetLogFilter)
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    let builder =
        tracing_subscriber::fmt().with_env_filter(filter).with_target(false).with_ansi(ansi).with_writer(writer);
    match format {
        crate::config::LogFormat::Json => {
            let b = builder.json().flatten_event(true).with_current_span(true).with_filter_reloading();
            let handle = b.reload_handle();
            (Box::new(b.finish()), Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())))
        }
        crate::config::LogFormat::Pretty => {
            let b = builder.fmt_fields(EscapedFields).with_filter_reloading();
            let handle = b.reload_handle();
            (Box::new(b.finish()), Box::new(move |f| handle.reload(f).map_err(|e| e.to_string())))
        }
    }
}

/// The filter for `LOG_LEVEL`: every line at `level`, except that other crates' `info` lines
/// (noise) are left out at the default level.
pub fn log_filter(level: &str) -> tracing_subscriber::EnvFilter {
    tracing_subscriber::EnvFilter::new(format!("sentinel_proxy={level},{level}").replace(",info", ",warn"))
}

/// The default field formatting with control characters escaped afterwards.
struct EscapedFields;

impl<'w> tracing_subscriber::fmt::FormatFields<'w> for EscapedFields {
    fn format_fields<R: tracing_subscriber::field::RecordFields>(
        &self,
        mut writer: tracing_subscriber::fmt::format::Writer<'w>,
        fields: R,
    ) -> std::fmt::Result {
        let mut text = String::new();
        tracing_subscriber::fmt::format::DefaultFields::new()
            .format_fields(tracing_subscriber::fmt::format::Writer::new(&mut text), fields)?;
        writer.write_str(&server::log_safe(&text))
    }
}
