//! The Redis connection that replicas share, used by the cache's second tier and by the
//! shared rate limits. Connecting happens in the background (start-up never waits for Redis,
//! and an outage at start is retried with back-off); once connected, the connection manager
//! reconnects by itself. Callers fail open when [`Shared::conn`] is `None` or a command fails,
//! and count the failure in `sentinel_proxy_redis_errors_total`.

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
    /// Starts connecting to `url` in the background (needs a Tokio runtime).
    pub fn connect(url: &str, metrics: Arc<Metrics>) -> Arc<Shared> {
        let shared = Arc::new(Shared { conn: ArcSwapOption::empty() });
        tokio::spawn(connect_loop(Arc::clone(&shared), url.to_owned(), metrics));
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

/// Connects, retrying with back-off until it works.
async fn connect_loop(shared: Arc<Shared>, url: String, metrics: Arc<Metrics>) {
    let mut delay = Duration::from_millis(100);
    loop {
        let attempt = async {
            let client = redis::Client::open(url.as_str())?;
            let cfg = redis::aio::ConnectionManagerConfig::new()
                .set_connection_timeout(Duration::from_secs(1))
                .set_response_timeout(Duration::from_secs(1))
                .set_number_of_retries(1);
            ConnectionManager::new_with_config(client, cfg).await
        };
        match attempt.await {
            Ok(conn) => {
                tracing::info!("redis connected: cache tier 2 and shared rate limits are on");
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
