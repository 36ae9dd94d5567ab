//! `SimNode`: a running simulated node and the handle tests and the demo use to drive it.
//!
//! The handle owns the root `CancellationToken` of the node's server task and shares its
//! `NodeState`. Dropping the handle stops the node, so a test cannot leak a server.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use super::config::SimConfig;
use super::faults::Faults;
use super::server;
use super::state::NodeState;

/// A simulated Aztec node serving on a loopback port.
#[derive(Debug)]
pub struct SimNode {
    /// Address the node listens on.
    pub addr: SocketAddr,
    /// `http://<addr>`, ready to be used as a backend URL.
    pub url: String,
    state: Arc<NodeState>,
    cancel: CancellationToken,
}

impl SimNode {
    /// Binds `127.0.0.1:0` and starts serving.
    ///
    /// # Errors
    /// Binding the listener failed.
    pub async fn start(cfg: SimConfig) -> std::io::Result<SimNode> {
        let listener = super::bind(SocketAddr::from(([127, 0, 0, 1], 0)))?;
        Ok(SimNode::start_on(listener, cfg).await)
    }

    /// Starts serving on an already bound listener (so the address is known before any request).
    pub async fn start_on(listener: TcpListener, cfg: SimConfig) -> SimNode {
        let addr = listener.local_addr().unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)));
        let state = Arc::new(NodeState::new(cfg));
        let cancel = CancellationToken::new();
        tokio::spawn(server::run(listener, Arc::clone(&state), cancel.clone()));
        SimNode { addr, url: format!("http://{addr}"), state, cancel }
    }

    /// The node's configuration (as normalized at start).
    pub fn config(&self) -> &SimConfig {
        &self.state.cfg
    }

    /// Replaces all faults.
    pub fn set_faults(&self, f: Faults) {
        self.state.update_faults(|cur| *cur = f);
    }

    /// A copy of the current faults.
    pub fn faults(&self) -> Faults {
        self.state.faults()
    }

    /// Changes some faults in place, e.g. `node.update_faults(|f| f.hang = true)`.
    pub fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        self.state.update_faults(f);
    }

    /// HTTP POSTs received on the RPC route (`POST /`), whatever their fate.
    pub fn requests(&self) -> u64 {
        self.state.requests()
    }

    /// JSON-RPC items received for `method`, named without namespace (e.g. `"getBlockNumber"`),
    /// counted even when a fault or the version makes the node refuse them.
    pub fn calls(&self, method: &str) -> u64 {
        self.state.calls(method)
    }

    /// Every `sendTx` hash this node received (lowercase) and how many times, counted on
    /// arrival whatever the faults do with it: more than one arrival fleet-wide is a duplicate.
    pub fn tx_arrivals(&self) -> std::collections::HashMap<String, u32> {
        self.state.tx_arrivals()
    }

    /// The current proposed tip, ignoring the `lag_blocks` fault.
    pub fn tip(&self) -> u64 {
        self.state.tip()
    }

    /// Closes every client connection that has nothing in flight (as a node does when its
    /// keep-alive timeout passes); busy ones close after their answer.
    pub fn close_idle_connections(&self) {
        self.state.close_idle.notify_waiters();
    }

    /// Client connections open now.
    pub fn open_connections(&self) -> usize {
        self.state.connections.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Kills the node: stops listening and drops every open connection immediately, like a
    /// crashed process. Idempotent.
    pub fn stop(&self) {
        self.cancel.cancel();
    }

    /// Whether `stop` was called (or the handle is being dropped).
    pub fn is_stopped(&self) -> bool {
        self.cancel.is_cancelled()
    }
}

impl Drop for SimNode {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
