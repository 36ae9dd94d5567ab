//! The Redis connection that replicas share, used by the cache's second tier, the shared rate
//! limits and the analysis lease (`crate::lease`); `rediss://` speaks TLS. Connecting happens in the background (start-up never waits for Redis,
//! and an outage at start is retried with back-off); once connected, the connection manager
//! reconnects by itself. Callers fail open when [`Shared::conn`] is `None` or a command fails,
//! and count the failure in `sentinel_proxy_redis_errors_total`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use redis::aio::ConnectionManager;

use crate::metrics::Metrics;

/// Prefix of every key the gateway writes, so one Redis can serve other tools too.
pub const KEY_PREFIX: &str = "sentinel-proxy:v1:";

/// A Redis connection shared by the replicas' cache and rate limits.
pub struct Shared {
    conn: ArcSwapOption<ConnectionManager>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Shared(connected: {})", self.connected())
    }
}

impl Shared {
    /// Starts connecting to `url` in the background (needs a Tokio runtime); a `rediss://`
    /// server is verified with the CA certificates in `ca_file` (PEM) when given, else with
    /// the public roots.
    pub fn connect(url: &str, ca_file: Option<&Path>, metrics: Arc<Metrics>) -> Arc<Shared> {
        let shared = Arc::new(Shared { conn: ArcSwapOption::empty() });
        let target = Target { url: url.to_owned(), ca_file: ca_file.map(Path::to_path_buf) };
        tokio::spawn(connect_loop(Arc::clone(&shared), target, metrics));
        shared
    }

    /// A handle on the connection (cheap clone), or `None` while not connected yet.
    pub fn conn(&self) -> Option<ConnectionManager> {
        self.conn.load_full().map(|c| (*c).clone())
    }

    /// Whether the first connection has been made (the manager reconnects by itself later).
    pub fn connected(&self) -> bool {
        self.conn.load().is_some()
    }
}

/// Where to connect (the URL carries the password: never shown).
struct Target {
    url: String,
    ca_file: Option<PathBuf>,
}

impl Target {
    /// A client for the target: TLS verified with the CA file when one is set.
    fn client(&self) -> redis::RedisResult<redis::Client> {
        match &self.ca_file {
            Some(path) if self.url.starts_with("rediss:") => {
                let root_cert = Some(std::fs::read(path)?);
                redis::Client::build_with_tls(self.url.as_str(), redis::TlsCertificates { client_tls: None, root_cert })
            }
            _ => redis::Client::open(self.url.as_str()),
        }
    }
}

/// Connects, retrying with back-off until it works.
async fn connect_loop(shared: Arc<Shared>, target: Target, metrics: Arc<Metrics>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let client = target.client()?;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(Duration::from_secs(1))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client, cfg).await
        };
        match attempt.await {
            Ok(conn) => {
                tracing::info!("redis connected: cache tier 2, shared rate limits and shared analysis are on");
                shared.conn.store(Some(Arc::new(conn)));
                return;
            }
            Err(e) => {
                metrics.redis_errors.inc();
                tracing::warn!(error = %e, "redis unavailable; serving from memory and nodes, retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}
