//! The backend pool. [`Backend`] is a node's identity plus live counters (written by the request
//! path with atomics); [`Snapshot`] is the monitor's view of every backend's health and
//! integrity, published whole through one `ArcSwap` ([`Pool`]) so a request reads one
//! consistent view without a lock (pingora `Backends`, docs/style.md#hot-path-state). Only the monitor publishes.

pub mod circuit;
mod members;
pub mod reason;
pub mod stats;

use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;
use url::Url;

use crate::config::{redact_url, BackendConfig, Config};
use crate::integrity::{IntegrityStatus, NodeKind, Verdict};
use crate::methods::MethodInfo;
pub use circuit::{Circuit, CircuitState};
pub use members::Membership;
pub use reason::Unroutable;
pub use stats::Stats;

/// Which public namespace a backend answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Namespace {
    /// Not learned yet: send the client's name as is.
    Unknown,
    /// `aztec_*` works (v5+; `node_*` is an alias there).
    Aztec,
    /// Only `node_*` (v4 and older).
    Node,
}

/// A node: identity plus live counters. Lives as long as the process; snapshots share it.
/// `Debug` shows its URL redacted, never its credentials.
pub struct Backend {
    /// Position in the configured list (stable id).
    pub index: usize,
    /// Display name; the only name shown in headers, logs and metrics.
    pub name: Arc<str>,
    /// Full URL (may carry credentials): used only to send requests.
    pub url: Url,
    /// Parsed target for the HTTP client.
    pub uri: http::Uri,
    /// `host:port` of the URL: where plain-HTTP connections go, and their `Host` header.
    pub address: String,
    /// Redacted URL for `/health` and the dashboard.
    pub shown_url: String,
    /// Live request statistics (shared with this node's next `Backend` after a reload).
    pub stats: Arc<Stats>,
    /// Circuit breaker (shared likewise).
    pub circuit: Arc<Circuit>,
    /// What was learned about the node (shared likewise).
    learned: Arc<Learned>,
}

/// What the gateway learned about a node: kept across a configuration reload for an unchanged
/// URL, like the counters and the circuit.
#[derive(Debug, Default)]
struct Learned {
    /// Learned namespace (`Namespace` as u8), written by the monitor's probe only.
    namespace: AtomicU8,
    /// API major version from `x-aztec-packageVersion` (0: not known), written by the monitor.
    major: AtomicU8,
    /// Methods (bit = [`MethodInfo::id`]) the node answered `-32601` for since its last
    /// restart or upgrade.
    lacking: [AtomicU64; 2],
}

impl std::fmt::Debug for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Backend")
            .field("index", &self.index)
            .field("name", &self.name)
            .field("url", &self.shown_url)
            .field("stats", &self.stats)
            .field("circuit", &self.circuit)
            .finish_non_exhaustive()
    }
}

impl Backend {
    /// A backend from its configuration.
    pub fn new(index: usize, cfg: &BackendConfig, config: &Config) -> Backend {
        Backend {
            index,
            name: cfg.name.as_str().into(),
            uri: cfg.url.as_str().parse().expect("validated url is a valid uri"),
            address: format!(
                "{}:{}",
                cfg.url.host_str().unwrap_or_default(),
                cfg.url.port_or_known_default().unwrap_or(80)
            ),
            shown_url: redact_url(&cfg.url),
            url: cfg.url.clone(),
            stats: Arc::default(),
            circuit: Arc::new(Circuit::new(config.circuit_failures, config.circuit_cooldown)),
            learned: Arc::default(),
        }
    }

    /// The same node after a configuration reload, at position `index` under `cfg`'s name: it
    /// shares `self`'s counters, circuit (with the new limits) and learned facts, so requests
    /// still in flight on the old view count where the new one reads.
    pub fn carried(&self, index: usize, cfg: &BackendConfig, config: &Config) -> Backend {
        self.circuit.set_limits(config.circuit_failures, config.circuit_cooldown);
        Backend {
            index,
            name: cfg.name.as_str().into(),
            stats: Arc::clone(&self.stats),
            circuit: Arc::clone(&self.circuit),
            learned: Arc::clone(&self.learned),
            ..Backend::new(index, cfg, config)
        }
    }

    /// The namespace learned so far.
    pub fn namespace(&self) -> Namespace {
        match self.learned.namespace.load(Ordering::Relaxed) {
            1 => Namespace::Aztec,
            2 => Namespace::Node,
            _ => Namespace::Unknown,
        }
    }

    /// Records which namespace works.
    pub fn set_namespace(&self, ns: Namespace) {
        let v = match ns {
            Namespace::Unknown => 0,
            Namespace::Aztec => 1,
            Namespace::Node => 2,
        };
        self.learned.namespace.store(v, Ordering::Relaxed);
    }

    /// The node's API major version: from its package version, else implied by its namespace
    /// (`node_*` only: 4; `aztec_*`: 5), else 0 (not known yet).
    pub fn api_major(&self) -> u8 {
        match (self.learned.major.load(Ordering::Relaxed), self.namespace()) {
            (0, Namespace::Node) => 4,
            (0, Namespace::Aztec) => 5,
            (m, _) => m,
        }
    }

    /// Records the package version the node reports. A change of version (an upgrade, or
    /// another node behind the same URL) forgets the lacked methods. (The namespace needs no
    /// forgetting: the probe re-learns it on every `-32601`.)
    pub fn set_package_version(&self, version: Option<&str>) {
        let major = version.and_then(package_major).unwrap_or(0);
        let before = self.learned.major.swap(major, Ordering::Relaxed);
        if before != 0 && before != major {
            self.forget_lacking();
        }
    }

    /// Forgets the methods learned missing (after a restart or an upgrade).
    pub fn forget_lacking(&self) {
        for word in &self.learned.lacking {
            word.store(0, Ordering::Relaxed);
        }
    }

    /// Whether the node answered `-32601` for `method` since it was last (re)learned.
    pub fn lacks(&self, method: &MethodInfo) -> bool {
        let id = method.id();
        self.learned.lacking[id / 64].load(Ordering::Relaxed) & (1 << (id % 64)) != 0
    }

    /// Remembers that the node answered `-32601` for `method`; `true` when this is news.
    pub fn mark_lacking(&self, method: &MethodInfo) -> bool {
        let id = method.id();
        let bit = 1 << (id % 64);
        self.learned.lacking[id / 64].fetch_or(bit, Ordering::Relaxed) & bit == 0
    }

    /// Names of the methods the node is known to lack (for `/health`).
    pub fn lacking_methods(&self) -> Vec<&'static str> {
        crate::methods::METHODS.iter().filter(|m| self.lacks(m)).map(|m| m.name).collect()
    }
}

/// The major version of a package version such as `4.1.2` or `v5.2.0-rc.1`.
pub fn package_major(version: &str) -> Option<u8> {
    version.trim().trim_start_matches('v').split('.').next()?.parse().ok()
}

/// Result of the latest health probe of one backend, as published by the monitor.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Health {
    /// Probed at least once successfully.
    pub known: bool,
    /// `isReady` answered true.
    pub ready: bool,
    /// Proposed tip.
    pub tip: Option<u64>,
    /// Proven tip.
    pub proven: Option<u64>,
    /// Finalized tip.
    pub finalized: Option<u64>,
    /// Oldest block whose world state the node still holds.
    pub oldest_historic: Option<u64>,
    /// Blocks behind the corroborated tip.
    pub lag: Option<u64>,
    /// Probe round-trip in ms.
    pub probe_ms: Option<f64>,
    /// Rollup version the node reports (`x-aztec-rollupVersion`).
    pub rollup_version: Option<u64>,
    /// L1 chain id the node reports.
    pub l1_chain_id: Option<u64>,
    /// Node software version (`x-aztec-packageVersion`).
    pub package_version: Option<String>,
    /// Hashes reported at the last successful probe (the next probe's reference).
    #[serde(skip)]
    pub commitments: Vec<crate::fork::Commitment>,
    /// How the node's hashes compare with its peers' (`None`: it agrees).
    pub fork: Option<crate::fork::ForkState>,
    /// Ready, in sync and on the right network (circuit not included: it changes per request).
    pub healthy: bool,
    /// Why the backend is not healthy, for operators.
    pub reason: Option<Unroutable>,
}

/// Integrity as published: the latest verdict plus the latest failure, with timestamps.
#[derive(Clone, Debug, Serialize)]
pub struct Integrity {
    /// Latest verdict (status `unknown` before the first successful analysis).
    pub verdict: Verdict,
    /// Unix seconds of the last successful analysis.
    pub checked_at: Option<u64>,
    /// Why the last fetch or analysis failed, else `None`.
    pub error: Option<crate::error::CheckError>,
}

impl Default for Integrity {
    fn default() -> Self {
        Integrity {
            verdict: Verdict {
                score: 0,
                status: IntegrityStatus::Unknown,
                kind: NodeKind::Pruned,
                depth_epochs: 0,
                missing_epochs: Vec::new(),
                inconsistent_epochs: Vec::new(),
                epochs: Vec::new(),
                reason: Some("not analysed yet".into()),
            },
            checked_at: None,
            error: None,
        }
    }
}

/// One backend as one request sees it.
#[derive(Clone, Debug)]
pub struct BackendView {
    /// Identity and live counters.
    pub backend: Arc<Backend>,
    /// Latest probe result.
    pub health: Health,
    /// Latest integrity state.
    pub integrity: Integrity,
}

impl BackendView {
    /// Healthy and the circuit lets traffic through now.
    pub fn routable(&self) -> bool {
        self.health.healthy && self.backend.circuit.may_pass()
    }

    /// Why not routable (health reason, or the open circuit).
    pub fn reason(&self) -> Option<Unroutable> {
        if !self.health.healthy {
            return self.health.reason.clone();
        }
        (!self.backend.circuit.may_pass()).then_some(Unroutable::CircuitOpen)
    }

    /// Whether the integrity verdict says archiver.
    pub fn is_archiver(&self) -> bool {
        self.integrity.verdict.kind == NodeKind::Archiver && self.integrity.verdict.status.judged()
    }
}

/// Every backend's state, immutable once published.
#[derive(Debug)]
pub struct Snapshot {
    /// In configuration order.
    pub backends: Vec<BackendView>,
    /// Corroborated best tip.
    pub best_tip: Option<u64>,
    /// Highest finalized block any healthy node reports.
    pub finalized: Option<u64>,
    /// Counts detected prunes and forks (the corroborated tip moved back, or a node's fork
    /// state changed): volatile cached answers older than the latest count are dropped.
    pub reorgs: u64,
}

/// The shared pool: one `ArcSwap` of the current snapshot.
#[derive(Debug)]
pub struct Pool {
    current: ArcSwap<Snapshot>,
}

impl Pool {
    /// A pool whose backends all start unknown (not routable until probed).
    pub fn new(config: &Config) -> Pool {
        let backends = config
            .backends
            .iter()
            .enumerate()
            .map(|(i, b)| BackendView::unprobed(Backend::new(i, b, config)))
            .collect();
        Pool { current: ArcSwap::from_pointee(Snapshot { backends, best_tip: None, finalized: None, reorgs: 0 }) }
    }

    /// The current snapshot (one refcount bump).
    pub fn snapshot(&self) -> Arc<Snapshot> {
        self.current.load_full()
    }

    /// Replaces the snapshot. Only the monitor calls this.
    pub fn publish(&self, next: Snapshot) {
        self.current.store(Arc::new(next));
    }
}
