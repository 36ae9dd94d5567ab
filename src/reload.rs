//! Configuration reload without a restart. [`Reloader::reload`] reads the sources again
//! (environment and the `--config` file), validates them exactly as `--check-config` does and,
//! when they are valid, applies them: the monitor (the pool's one writer) publishes the new
//! backend list, carrying over every node whose URL is unchanged (`Snapshot::reconfigured`),
//! then the request path's [`Settings`] are replaced whole, one `ArcSwap` store. A request reads
//! its snapshot per attempt and keeps the `Backend` it sent to, so requests in flight finish on
//! the nodes they started with, removed ones included. The two swaps need not be one: the
//! backend list and the settings are independent, and every combination of old and new is a
//! valid view. An invalid configuration changes nothing; every problem is logged.
//!
//! Settings read only at start-up ([`START_ONLY`]: the listen address, Redis, the worker
//! threads…) keep their running value and are reported as needing a restart.
//!
//! Triggers ([`Reloader::run`]): SIGHUP, and the `--config` file's content, polled every
//! [`FILE_POLL`] (content, not inode or mtime, so a Kubernetes ConfigMap's symlink swap is
//! seen) and applied once it has stayed the same for one more poll (a debounce: a file being
//! written is not read half-way).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, Semaphore};
use tokio_util::sync::CancellationToken;

use crate::config::{Config, Sources};
use crate::metrics::ResultLabel;
use crate::monitor::{Monitor, Reconfigure};
use crate::state::{AppState, Settings};
use crate::upstream::Membership;

/// How often the `--config` file's content is compared with the last one seen.
pub const FILE_POLL: Duration = Duration::from_secs(1);

/// Keys read only at start-up: a change is reported as needing a restart, and the running value
/// stays in effect.
pub const START_ONLY: &[&str] = &[
    "PROXY_LISTEN",
    "LOG_FORMAT",
    "REDIS_URL",
    "REDIS_CA_FILE",
    "CACHE_MAX_BYTES",
    "RATE_LIMIT_RPS",
    "RATE_LIMIT_BURST",
    "RATE_LIMIT_IPV6_PREFIX",
    "MAX_CONNECTIONS",
    "MAX_RESPONSE_BYTES",
    "MAX_BUFFERED_BYTES",
    "SHUTDOWN_GRACE_MS",
    "WORKER_THREADS",
];

/// Reads the raw sources again; `Err` when they cannot be read (e.g. the file is missing).
pub type Loader = Box<dyn Fn() -> Result<Sources, String> + Send + Sync>;

/// Sets the log level (`LOG_LEVEL`) of the running subscriber.
pub type SetLogLevel = Box<dyn Fn(&str) -> Result<(), String> + Send + Sync>;

/// Where a reload reads its configuration from.
pub struct Source {
    /// Reads environment, file and overrides again.
    pub load: Loader,
    /// Demo mode (an empty backend list is allowed), as at start-up.
    pub demo: bool,
    /// The `--config` file whose changes trigger a reload.
    pub file: Option<PathBuf>,
    /// Changes the log level; `None` when `RUST_LOG` decides it (a change is then reported).
    pub log_level: Option<SetLogLevel>,
}

/// The result of one reload.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Valid: in effect from now on (a generation is counted only when something changed).
    Applied(Applied),
    /// Invalid: nothing changed. Every problem, as `--check-config` lists them.
    Invalid(Vec<String>),
    /// The sources could not be read or the monitor did not take them; nothing changed.
    Error(String),
}

/// What an applied reload changed.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// The generation now in effect.
    pub generation: u64,
    /// Keys whose new value is in effect.
    pub changed: Vec<&'static str>,
    /// Keys that changed but need a restart (their running value stays).
    pub needs_restart: Vec<&'static str>,
    /// Backends added, removed and renamed.
    pub membership: Membership,
}

/// Applies configuration reloads to one gateway; one reload at a time.
pub struct Reloader {
    state: AppState,
    source: Source,
    monitor: mpsc::Sender<Reconfigure>,
    one_at_a_time: tokio::sync::Mutex<()>,
    /// The `--config` file's content when the reloader was attached (what start-up read).
    file_at_start: Option<Vec<u8>>,
}

impl Reloader {
    /// A reloader for `state`, and `monitor` set to take the new configurations (it must run,
    /// [`Monitor::run`], for a reload to finish).
    pub fn attach(state: AppState, monitor: Monitor, source: Source) -> (Reloader, Monitor) {
        let (tx, rx) = mpsc::channel(1);
        let file_at_start = source.file.as_ref().and_then(|f| std::fs::read(f).ok());
        let one_at_a_time = tokio::sync::Mutex::new(());
        let reloader = Reloader { state, source, monitor: tx, one_at_a_time, file_at_start };
        (reloader, monitor.with_reloads(rx))
    }

    /// Reads, validates and applies the configuration (what SIGHUP does); logs the outcome and
    /// counts it in `sentinel_proxy_config_reloads_total{result}`.
    pub async fn reload(&self) -> Outcome {
        let _one = self.one_at_a_time.lock().await;
        let outcome = self.apply().await;
        let result = match &outcome {
            Outcome::Applied(_) => "ok",
            Outcome::Invalid(_) => "invalid",
            Outcome::Error(_) => "error",
        };
        self.state.metrics.config_reloads.get_or_create(&ResultLabel { result }).inc();
        log(&outcome, self.state.config().generation);
        outcome
    }

    async fn apply(&self) -> Outcome {
        let src = match (self.source.load)() {
            Ok(src) => src,
            Err(e) => return Outcome::Error(e),
        };
        let mut next = match Config::from_sources(&src, self.source.demo) {
            Ok(c) => c,
            Err(e) => return Outcome::Invalid(e.0),
        };
        let (current, generation) = {
            let s = self.state.config();
            (Arc::clone(&s.config), s.generation)
        };
        let needs_restart = changed_keys(&current, &next).into_iter().filter(|k| START_ONLY.contains(k)).collect();
        keep_start_only(&mut next, &current);
        let changed = changed_keys(&current, &next);
        if changed.is_empty() {
            return Outcome::Applied(Applied { generation, needs_restart, ..Applied::default() });
        }
        let next = Arc::new(next);
        let (done, told) = oneshot::channel();
        let sent = self.monitor.send(Reconfigure { config: Arc::clone(&next), done }).await;
        let Some(membership) = sent.ok().and(told.await.ok()) else {
            return Outcome::Error("the monitor is not running; configuration not applied".into());
        };
        if membership.moved || !membership.removed.is_empty() {
            self.state.sticky.clear();
        }
        for gone in membership.removed.iter().chain(membership.renamed.iter().map(|(before, _)| before)) {
            self.state.metrics.forget_backend(gone);
        }
        resize(&self.state.in_flight, current.max_concurrent_requests, next.max_concurrent_requests);
        if current.log_level != next.log_level {
            self.set_log_level(&next.log_level);
        }
        self.state.settings.store(Arc::new(Settings::new(next, generation + 1)));
        Outcome::Applied(Applied { generation: generation + 1, changed, needs_restart, membership })
    }

    fn set_log_level(&self, level: &str) {
        match &self.source.log_level {
            Some(set) => {
                if let Err(error) = set(level) {
                    tracing::warn!(%error, level, "LOG_LEVEL not applied");
                }
            }
            None => tracing::warn!(level, "LOG_LEVEL changed, but RUST_LOG is set and decides what is logged"),
        }
    }

    /// Reloads on SIGHUP and when the `--config` file's content changes (polled every `poll`,
    /// applied once stable for one more poll), until `cancel`.
    pub async fn run(self: Arc<Self>, poll: Duration, cancel: CancellationToken) {
        let mut hangup = hangups();
        let file = self.source.file.clone();
        let read = |file: &Option<PathBuf>| {
            let file = file.clone();
            async move { tokio::fs::read(file?).await.ok() }
        };
        let mut seen = self.file_at_start.clone();
        let mut candidate: Option<Option<Vec<u8>>> = None;
        let mut tick = tokio::time::interval(poll);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                Some(()) = next_hangup(&mut hangup) => {
                    tracing::info!("SIGHUP: reloading the configuration");
                    seen = read(&file).await;
                    candidate = None;
                    self.reload().await;
                }
                _ = tick.tick(), if file.is_some() => {
                    let now = read(&file).await;
                    if now == seen {
                        candidate = None;
                    } else if candidate.as_ref() == Some(&now) {
                        tracing::info!("configuration file changed: reloading");
                        seen = now;
                        candidate = None;
                        self.reload().await;
                    } else {
                        candidate = Some(now);
                    }
                }
            }
        }
    }
}

#[cfg(unix)]
type Hangups = Option<tokio::signal::unix::Signal>;
#[cfg(not(unix))]
type Hangups = Option<()>;

#[cfg(unix)]
fn hangups() -> Hangups {
    match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(error) => {
            tracing::warn!(%error, "no SIGHUP handler: reload by file change only");
            None
        }
    }
}

#[cfg(not(unix))]
fn hangups() -> Hangups {
    None
}

/// The next SIGHUP; pending forever without a handler.
async fn next_hangup(h: &mut Hangups) -> Option<()> {
    #[cfg(unix)]
    if let Some(s) = h {
        return s.recv().await;
    }
    let _ = h;
    std::future::pending().await
}

/// The keys whose effective values differ (secrets compared, never shown).
fn changed_keys(a: &Config, b: &Config) -> Vec<&'static str> {
    let (da, db) = (a.describe(), b.describe());
    let mut keys: Vec<&'static str> = crate::config::KEYS
        .iter()
        .filter(|k| {
            let line =
                |d: &str| d.lines().find(|l| l.split_once('=').is_some_and(|(n, _)| n == k.name)).map(str::to_owned);
            line(&da) != line(&db)
        })
        .map(|k| k.name)
        .collect();
    let backends = |c: &Config| c.backends.iter().map(|b| (b.name.clone(), b.url.clone())).collect::<Vec<_>>();
    for (key, differs) in [
        ("SENTINEL_BACKENDS", backends(a) != backends(b)),
        ("ADMIN_TOKEN", a.admin_token != b.admin_token),
        ("REDIS_URL", a.redis_url != b.redis_url),
    ] {
        if differs && !keys.contains(&key) {
            keys.push(key);
        }
    }
    keys
}

/// Puts back the running values of the [`START_ONLY`] keys.
fn keep_start_only(next: &mut Config, running: &Config) {
    next.listen = running.listen;
    next.log_format = running.log_format;
    next.redis_url.clone_from(&running.redis_url);
    next.redis_ca_file.clone_from(&running.redis_ca_file);
    next.cache_max_bytes = running.cache_max_bytes;
    next.rate_limit_rps = running.rate_limit_rps;
    next.rate_limit_burst = running.rate_limit_burst;
    next.rate_limit_ipv6_prefix = running.rate_limit_ipv6_prefix;
    next.max_connections = running.max_connections;
    next.max_response_bytes = running.max_response_bytes;
    next.max_buffered_bytes = running.max_buffered_bytes;
    next.shutdown_grace = running.shutdown_grace;
    next.worker_threads = running.worker_threads;
}

/// Resizes the `MAX_CONCURRENT_REQUESTS` semaphore: more permits at once; fewer as requests
/// in flight finish (a task takes the surplus as it is released and forgets it).
fn resize(in_flight: &Arc<Semaphore>, before: usize, after: usize) {
    if after > before {
        in_flight.add_permits(after - before);
    } else if before > after {
        let n = u32::try_from(before - after).unwrap_or(u32::MAX);
        let sem = Arc::clone(in_flight);
        tokio::spawn(async move {
            if let Ok(permits) = sem.acquire_many_owned(n).await {
                permits.forget();
            }
        });
    }
}

fn log(outcome: &Outcome, generation: u64) {
    match outcome {
        Outcome::Applied(a) => {
            for key in &a.needs_restart {
                tracing::warn!(key, "configuration change needs a restart: the running value stays until then");
            }
            let m = &a.membership;
            if a.changed.is_empty() {
                tracing::info!(generation, "configuration reloaded: nothing to change");
            } else {
                tracing::info!(generation, changed = ?a.changed, added = ?m.added, removed = ?m.removed, renamed = ?m.renamed, "configuration reloaded");
            }
        }
        Outcome::Invalid(problems) => {
            let n = problems.len();
            tracing::error!(generation, problems = n, "configuration reload rejected, still running the previous one");
            for problem in problems {
                tracing::error!(%problem, "invalid configuration");
            }
        }
        Outcome::Error(error) => {
            tracing::error!(generation, %error, "configuration reload failed, still running the previous one")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Config {
        let mut src = Sources::for_tests(&["http://u:pw@10.0.0.1:1"]);
        for (k, v) in pairs {
            src.set(k, *v);
        }
        Config::from_sources(&src, true).unwrap()
    }

    #[test]
    fn changes_are_named_and_start_only_ones_kept() {
        let running = config(&[]);
        // (change, keys that differ)
        for (pairs, want) in [
            (vec![], vec![]),
            (vec![("MAX_BLOCK_LAG", "9")], vec!["MAX_BLOCK_LAG"]),
            (vec![("SENTINEL_BACKENDS", "node-0=http://u:other@10.0.0.1:1")], vec!["SENTINEL_BACKENDS"]),
            (vec![("ADMIN_TOKEN", "s3cret"), ("PROXY_LISTEN", "127.0.0.1:9")], vec!["PROXY_LISTEN", "ADMIN_TOKEN"]),
        ] {
            assert_eq!(changed_keys(&running, &config(&pairs)), want, "{pairs:?}");
        }
        let mut next = config(&[("PROXY_LISTEN", "127.0.0.1:9"), ("WORKER_THREADS", "3"), ("MAX_BATCH", "7")]);
        keep_start_only(&mut next, &running);
        assert_eq!(changed_keys(&running, &next), ["MAX_BATCH"]);
        for key in START_ONLY {
            assert!(crate::config::KEYS.iter().any(|k| k.name == *key), "{key} is a key");
        }
    }
}
