//! Shared state of one simulated node: config, live faults, counters, mempool, history cache.
//!
//! One `Arc<NodeState>` is shared by the accept loop, every connection task and the `SimNode`
//! handle. Writers: request tasks (counters, mempool, history cache) and whoever changes the
//! faults (`SimNode`, `POST /control`). Counters of known methods are atomics, so the hot path
//! takes no lock for them; faults, the mempool, unknown-method counters and the history cache
//! sit behind small `std::sync::Mutex`es whose guards never live across an `.await`.

use crate::clock::unix_ms;
use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use bytes::Bytes;

use super::chain::{Chain, Tips};
use super::config::{HistoryProfile, SimConfig};
use super::faults::Faults;
use super::history::{DutyFaults, Model, Spec, Window};
use super::identity::IdentityHeaders;
use super::methods::Method;
use super::stats;

/// Most pending transactions a node remembers (oldest are forgotten first).
const POOL_CAP: usize = 10_000;

/// Locks a mutex, ignoring poisoning (the data is always left consistent).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Transactions accepted by `sendTx`, keyed by lowercase hash.
#[derive(Debug, Default)]
pub(crate) struct TxPool {
    txs: HashMap<String, Box<str>>,
    order: VecDeque<String>,
}

impl TxPool {
    /// Remembers a transaction (JSON as sent) under its hash.
    pub(crate) fn insert(&mut self, hash: &str, tx: &str) {
        let key = hash.to_ascii_lowercase();
        if self.txs.insert(key.clone(), tx.into()).is_none() {
            self.order.push_back(key);
        }
        while self.order.len() > POOL_CAP {
            if let Some(old) = self.order.pop_front() {
                self.txs.remove(&old);
            }
        }
    }

    /// The transaction with this hash, if pending here.
    pub(crate) fn get(&self, hash: &str) -> Option<&str> {
        self.txs.get(&hash.to_ascii_lowercase()).map(|tx| &**tx)
    }

    /// Number of pending transactions.
    pub(crate) fn len(&self) -> usize {
        self.txs.len()
    }
}

/// What a built history depends on besides the chain: window, profile and duty faults.
type HistoryKey = (Window, HistoryProfile, DutyFaults);

/// A built sentinel history and its serialized `ValidatorsStats`.
#[derive(Debug)]
pub(crate) struct History {
    key: HistoryKey,
    pub(crate) model: Model,
    pub(crate) json: Bytes,
}

/// What one HTTP request sees: the tips at one clock reading and one copy of the faults.
#[derive(Debug)]
pub(crate) struct View {
    /// The node's tip (lag and prune applied).
    pub(crate) tips: Tips,
    /// The chain as this request sees it (on another branch under the `fork_from` fault).
    pub(crate) chain: Chain,
    pub(crate) faults: Faults,
    /// Present when some item of the request needs the sentinel history.
    pub(crate) history: Option<Arc<History>>,
}

/// Everything one simulated node shares between its tasks.
#[derive(Debug)]
pub(crate) struct NodeState {
    pub(crate) cfg: SimConfig,
    pub(crate) chain: Chain,
    pub(crate) headers: IdentityHeaders,
    faults: Mutex<Faults>,
    requests: AtomicU64,
    calls: Vec<AtomicU64>,
    other_calls: Mutex<HashMap<String, u64>>,
    /// Every `sendTx` hash received and how often, faults or not (duplicate detection).
    tx_arrivals: Mutex<HashMap<String, u32>>,
    pub(crate) pool: Mutex<TxPool>,
    history: Mutex<Option<Arc<History>>>,
    /// Client connections open now.
    pub(crate) connections: std::sync::atomic::AtomicUsize,
    /// Asks every connection to close once it has nothing in flight.
    pub(crate) close_idle: tokio::sync::Notify,
}

impl NodeState {
    /// State of a freshly started node.
    pub(crate) fn new(cfg: SimConfig) -> Self {
        let cfg = cfg.normalized();
        NodeState {
            chain: Chain::new(&cfg),
            headers: IdentityHeaders::new(&cfg),
            faults: Mutex::new(cfg.faults.clone()),
            requests: AtomicU64::new(0),
            calls: (0..Method::ALL.len()).map(|_| AtomicU64::new(0)).collect(),
            other_calls: Mutex::new(HashMap::new()),
            tx_arrivals: Mutex::new(HashMap::new()),
            connections: std::sync::atomic::AtomicUsize::new(0),
            close_idle: tokio::sync::Notify::new(),
            pool: Mutex::new(TxPool::default()),
            history: Mutex::new(None),
            cfg,
        }
    }

    /// A copy of the current faults.
    pub(crate) fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    /// Changes the faults in place.
    pub(crate) fn update_faults(&self, f: impl FnOnce(&mut Faults)) {
        f(&mut lock(&self.faults));
    }

    /// Counts one RPC POST.
    pub(crate) fn count_request(&self) {
        self.requests.fetch_add(1, Ordering::Relaxed);
    }

    /// RPC POSTs received so far.
    pub(crate) fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Counts one JSON-RPC item by its method name without namespace.
    pub(crate) fn count_call(&self, full_name: &str) {
        let name = full_name.split_once('_').map_or(full_name, |(_, m)| m);
        match Method::from_name(name) {
            Some(m) => {
                self.calls[m as usize].fetch_add(1, Ordering::Relaxed);
            }
            None => *lock(&self.other_calls).entry(name.to_owned()).or_default() += 1,
        }
    }

    /// JSON-RPC items received for `method` (name without namespace).
    pub(crate) fn calls(&self, method: &str) -> u64 {
        match Method::from_name(method) {
            Some(m) => self.calls[m as usize].load(Ordering::Relaxed),
            None => lock(&self.other_calls).get(method).copied().unwrap_or(0),
        }
    }

    /// Counts one arrival of the `sendTx` with this hash (lowercase).
    pub(crate) fn count_tx(&self, hash: &str) {
        *lock(&self.tx_arrivals).entry(hash.to_ascii_lowercase()).or_default() += 1;
    }

    /// Every `sendTx` hash received so far and how many times.
    pub(crate) fn tx_arrivals(&self) -> HashMap<String, u32> {
        lock(&self.tx_arrivals).clone()
    }

    /// The proposed tip right now, ignoring lag.
    pub(crate) fn tip(&self) -> u64 {
        self.chain.tip_at(unix_ms())
    }

    /// Takes the per-request snapshot (clock, lag-adjusted tips, current faults).
    #[cfg(test)]
    pub(crate) fn view(&self) -> View {
        self.view_with(self.faults())
    }

    /// Takes the per-request snapshot under already-read faults.
    pub(crate) fn view_with(&self, faults: Faults) -> View {
        let tip = self.chain.tip_at(unix_ms()).saturating_sub(faults.lag_blocks + faults.prune_blocks);
        let chain = self.chain.on_branch(faults.fork_from);
        View { tips: self.chain.tips(tip), chain, faults, history: None }
    }

    /// The sentinel history profile in force under these faults.
    pub(crate) fn profile(&self, faults: &Faults) -> HistoryProfile {
        faults.history.unwrap_or(self.cfg.history)
    }

    /// The sentinel history for this view, from the cache or freshly built on a blocking
    /// thread (an archiver's history takes tens of milliseconds to build).
    pub(crate) async fn history(self: &Arc<Self>, view: &View) -> Arc<History> {
        let profile = self.profile(&view.faults);
        let current_slot = self.chain.slot_of(view.tips.proposed);
        let duties = DutyFaults::resolve(&view.faults, &self.chain);
        let key = (Window::new(&self.cfg, profile, current_slot), profile, duties);
        if let Some(h) = lock(&self.history).as_ref().filter(|h| h.key == key) {
            return Arc::clone(h);
        }
        let spec = Spec { chain: self.chain, version: self.cfg.version, profile, window: key.0, duties: key.2.clone() };
        let (spec2, key2) = (spec.clone(), key.clone());
        let built = match tokio::task::spawn_blocking(move || build(spec2, key2)).await {
            Ok(h) => Arc::new(h),
            Err(_) => Arc::new(build(spec, key)),
        };
        *lock(&self.history) = Some(Arc::clone(&built));
        built
    }
}

fn build(spec: Spec, key: HistoryKey) -> History {
    let model = Model::build(&spec);
    let json = if spec.profile == HistoryProfile::Disabled {
        Bytes::from_static(stats::DISABLED)
    } else {
        let records: usize = model.entries.iter().map(Vec::len).sum();
        let mut out = Vec::with_capacity(records * 44 + model.entries.len() * 400 + 128);
        stats::write_validators_stats(&mut out, &model, &spec.chain);
        Bytes::from(out)
    };
    History { key, model, json }
}
