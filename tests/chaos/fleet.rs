//! The simulated fleet under chaos: nodes that can be killed, revived on the same address and
//! re-rolled (restarted as a new incarnation on another API version, with an empty mempool),
//! and the `sendTx` arrivals of every incarnation, so duplicates are counted fleet-wide.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use sentinel_proxy::simulator::{ApiVersion, Faults, SimConfig, SimNode};
use tokio::net::TcpListener;

/// Time per block of the fleet's live chain.
const BLOCK_MS: u64 = 2_000;

/// One address of the fleet and whatever node serves it now.
struct Slot {
    name: String,
    addr: SocketAddr,
    version: ApiVersion,
    node: Option<SimNode>,
    /// `sendTx` arrivals of the incarnations already stopped.
    past_arrivals: HashMap<String, u32>,
}

/// The nodes behind the gateway.
pub struct Fleet {
    genesis_ms: u64,
    slots: Vec<Slot>,
    /// Incarnations started after the first (revivals and re-rolls).
    pub restarts: u64,
}

impl Fleet {
    /// Starts `n` healthy nodes on one live chain, alternating v5 and v6.
    pub async fn start(n: usize) -> Fleet {
        let genesis_ms = sentinel_proxy::clock::unix_ms();
        let mut slots = Vec::new();
        for i in 0..n {
            let version = if i % 2 == 0 { ApiVersion::V5 } else { ApiVersion::V6 };
            let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind a node");
            let addr = listener.local_addr().unwrap();
            let name = format!("n{i}");
            let node = SimNode::start_on(listener, config(&name, version, genesis_ms)).await;
            slots.push(Slot { name, addr, version, node: Some(node), past_arrivals: HashMap::new() });
        }
        Fleet { genesis_ms, slots, restarts: 0 }
    }

    /// `name=url` pairs for `SENTINEL_BACKENDS`.
    pub fn backends(&self) -> String {
        let pairs: Vec<String> = self.slots.iter().map(|s| format!("{}=http://{}", s.name, s.addr)).collect();
        pairs.join(",")
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.slots.len()
    }

    /// Display name of node `i`.
    pub fn name(&self, i: usize) -> &str {
        &self.slots[i].name
    }

    /// API version node `i` serves now.
    pub fn version(&self, i: usize) -> ApiVersion {
        self.slots[i].version
    }

    /// Whether node `i` is running.
    pub fn is_up(&self, i: usize) -> bool {
        self.slots[i].node.is_some()
    }

    /// Replaces node `i`'s faults (a no-op while it is down).
    pub fn set_faults(&self, i: usize, f: Faults) {
        if let Some(node) = &self.slots[i].node {
            node.set_faults(f);
        }
    }

    /// Kills node `i` like a crashed process (every connection dropped at once).
    pub fn kill(&mut self, i: usize) {
        let slot = &mut self.slots[i];
        if let Some(node) = slot.node.take() {
            node.stop();
            for (hash, n) in node.tx_arrivals() {
                *slot.past_arrivals.entry(hash).or_default() += n;
            }
        }
    }

    /// Starts node `i` again on its address, healthy, on `version`.
    ///
    /// # Panics
    /// The address cannot be bound again within 10 s.
    pub async fn revive(&mut self, i: usize, version: ApiVersion) {
        self.kill(i);
        let (addr, genesis) = (self.slots[i].addr, self.genesis_ms);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        // The stopped node's listener closes on its own task; retry until the port is free.
        let listener = loop {
            match TcpListener::bind(addr).await {
                Ok(l) => break l,
                Err(e) if tokio::time::Instant::now() < deadline => {
                    tracing::debug!(%e, "rebinding {addr}");
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!("cannot bind {addr} again: {e}"),
            }
        };
        let slot = &mut self.slots[i];
        slot.version = version;
        slot.node = Some(SimNode::start_on(listener, config(&slot.name, version, genesis)).await);
        self.restarts += 1;
    }

    /// Re-rolls node `i`: a restart as a new incarnation on the other API version (v5 ↔ v6).
    pub async fn reroll(&mut self, i: usize) {
        let next = if self.slots[i].version == ApiVersion::V5 { ApiVersion::V6 } else { ApiVersion::V5 };
        self.revive(i, next).await;
    }

    /// Every `sendTx` hash the fleet received, with its arrivals summed over nodes and
    /// incarnations.
    pub fn tx_arrivals(&self) -> HashMap<String, u32> {
        let mut all: HashMap<String, u32> = HashMap::new();
        for slot in &self.slots {
            let live = slot.node.as_ref().map(SimNode::tx_arrivals).unwrap_or_default();
            for (hash, n) in slot.past_arrivals.iter().map(|(h, n)| (h.clone(), *n)).chain(live) {
                *all.entry(hash).or_default() += n;
            }
        }
        all
    }
}

fn config(name: &str, version: ApiVersion, genesis_ms: u64) -> SimConfig {
    let mut cfg = SimConfig::for_tests(version);
    cfg.name = name.to_owned();
    cfg.genesis_unix_ms = genesis_ms;
    cfg.block_ms = BLOCK_MS;
    cfg
}
