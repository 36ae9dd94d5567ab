//! Wiring one gateway: state, monitor and HTTP server from a [`Config`], with graceful
//! shutdown (stop accepting, let in-flight requests finish within `SHUTDOWN_GRACE_MS`).

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::config::Config;
use crate::metrics::Metrics;
use crate::monitor::Monitor;
use crate::server::{self, AppState};
use crate::upstream::Pool;

/// Builds the shared state and the monitor that will publish its snapshots.
pub fn build(config: Config) -> (AppState, Monitor) {
    let config = Arc::new(config);
    let pool = Arc::new(Pool::new(&config));
    let state = AppState::new(Arc::clone(&config), Arc::clone(&pool), Arc::new(Metrics::new()));
    let monitor = Monitor::new(config, pool, state.client.clone());
    (state, monitor)
}

/// Runs monitor and server on `listener` until `cancel`; then waits at most the grace period
/// for in-flight requests.
///
/// # Errors
/// Listener I/O errors.
pub async fn run(config: Config, listener: TcpListener, cancel: CancellationToken) -> std::io::Result<()> {
    let grace = config.shutdown_grace;
    let (state, monitor) = build(config);
    let monitor_task = tokio::spawn(monitor.run(cancel.clone()).instrument(tracing::info_span!("monitor")));
    let server = server::serve(listener, server::app(state), cancel.clone());
    let mut server = std::pin::pin!(server);
    tokio::select! {
        res = &mut server => res?,
        () = cancel.cancelled() => {
            tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down: no new connections, finishing in-flight requests");
            if tokio::time::timeout(grace, &mut server).await.is_err() {
                tracing::warn!("grace period over; closing remaining connections");
            }
        }
    }
    monitor_task.abort();
    Ok(())
}
