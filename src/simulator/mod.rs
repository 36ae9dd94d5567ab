//! Simulated Aztec node: the backend of demo mode, benchmarks, chaos tests and every gateway
//! integration test.
//!
//! A simulated node speaks the real node's JSON-RPC dialect of one API generation (v3–v6:
//! namespaces, method set, shapes, `undefined` encoding, error codes and HTTP statuses, the
//! `x-aztec-*` headers), runs a clock-driven chain whose tips, hashes, committees and mined
//! slots are identical on every node sharing the same genesis and identity, and produces a
//! sentinel history (`getValidatorsStats`) shaped by a `HistoryProfile`. Faults (lag, latency,
//! HTTP errors, hangs, garbage, dropped connections, RPC errors, another rollup, forced gzip)
//! can be switched at run time through `SimNode` or the `/control` endpoint.
//!
//! Layout:
//! - `config`: `ApiVersion`, `HistoryProfile`, `SimConfig`, named profiles, `demo_fleet`;
//! - `faults`: `Faults`, the run-time switches;
//! - `node`: `SimNode`, the handle of a running node;
//! - `server`: hyper accept loop, routes (`POST /`, `GET /status`, `/control`), faults, gzip;
//! - `rpc`, `answer`, `methods`, `handlers`: envelope, batch, method table and answers;
//! - `chain`, `identity`: tips, blocks, hashes, headers and node info;
//! - `history`, `stats`: the sentinel history model and its serialization;
//! - `state`: the shared per-node state; `encode`: deterministic values and JSON writers.
//!
//! Routes besides JSON-RPC: `GET /status` (200, or 500 under `not_ready`; a JSON body from v5),
//! `GET /control` (current faults as JSON), `POST /control` (merge a partial `Faults` object:
//! fields present replace, `null` clears), `DELETE /control` (back to healthy). `/control` is
//! never affected by faults.

mod answer;
mod chain;
mod config;
mod encode;
mod faults;
mod handlers;
mod history;
mod identity;
mod methods;
mod node;
mod rpc;
mod server;
mod state;
mod stats;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::{
    demo_fleet, demo_watch_validators, ApiVersion, HistoryProfile, SimConfig, DEMO_OFFLINE_VALIDATOR,
    PROFILE_GENESIS_UNIX_MS,
};
pub use faults::{Faults, ValidatorEpochs, ValidatorRef};
pub use node::SimNode;

/// Names accepted by `SimConfig::profile`.
pub const PROFILE_NAMES: [&str; 10] =
    ["archiver", "pruned", "gapped", "corrupted", "lagging", "disabled", "v3", "v4", "v5", "v6"];

/// Accept-queue length of a simulated node's listener: Node.js's default (`server.listen`
/// backlog 511), so a burst of new connections queues as it would at a real node.
pub const BACKLOG: u32 = 511;

/// A listener on `addr` with a real node's accept queue ([`BACKLOG`]).
///
/// # Errors
/// The address cannot be bound.
pub fn bind(addr: std::net::SocketAddr) -> std::io::Result<TcpListener> {
    let socket = if addr.is_ipv4() { tokio::net::TcpSocket::new_v4()? } else { tokio::net::TcpSocket::new_v6()? };
    socket.set_reuseaddr(true)?;
    socket.bind(addr)?;
    socket.listen(BACKLOG)
}

/// Serves a simulated node on `listener` until `cancel` fires; used by `sentinel-proxy
/// simulate` and the demo. Faults can be changed through `POST /control`.
///
/// # Errors
/// The listener's local address cannot be read.
pub async fn serve(listener: TcpListener, cfg: SimConfig, cancel: CancellationToken) -> std::io::Result<()> {
    let addr = listener.local_addr()?;
    tracing::info!(name = %cfg.name, version = %cfg.version, history = %cfg.history, %addr, "simulated node serving");
    let state = Arc::new(state::NodeState::new(cfg));
    server::run(listener, state, cancel).await;
    Ok(())
}
