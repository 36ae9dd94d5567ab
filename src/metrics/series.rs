//! Per-thread handles to the request path's labelled series. A `Family` look-up hashes the
//! whole label set with SipHash and takes the family's lock, shared by every worker; twice per
//! request that was about 2 % of a forwarded read's instructions. Each worker thread instead
//! keeps the handles it has used, keyed by the label values (the backend by a hash of its
//! name, checked on every hit), and increments the same counters and histograms the family
//! renders. Families of the request path are never pruned, so a handle never goes stale.

use std::cell::RefCell;
use std::hash::BuildHasher;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

use super::{LatencyLabels, Metrics, RequestLabels};

/// Handles kept per thread before the cache starts over (label sets are bounded; this only
/// bounds a process that builds many `Metrics`, as the tests do).
const MAX_HANDLES: usize = 4096;

/// A process-unique id per [`Metrics`], so handles of two gateways in one process never mix.
pub(super) fn next_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

type RequestKey = (u64, &'static str, &'static str, &'static str, u64);
type LatencyKey = (u64, &'static str, u64);

#[derive(Default)]
struct Handles {
    requests: foldhash::HashMap<RequestKey, (String, Counter)>,
    latency: foldhash::HashMap<LatencyKey, (String, Histogram)>,
}

thread_local! {
    static HANDLES: RefCell<Handles> = RefCell::new(Handles::default());
}

fn name_hash(name: &str) -> u64 {
    foldhash::fast::FixedState::default().hash_one(name)
}

/// Runs `act` on the handle for `key` in `map` (its backend name checked), made by `create`
/// from the family when missing.
fn with_handle<K: std::hash::Hash + Eq, M: Clone>(
    map: &mut foldhash::HashMap<K, (String, M)>,
    key: K,
    backend: &str,
    create: impl FnOnce() -> M,
    act: impl FnOnce(&M),
) {
    if let Some((name, handle)) = map.get(&key) {
        if name == backend {
            return act(handle);
        }
    }
    let handle = create();
    act(&handle);
    if map.len() >= MAX_HANDLES {
        map.clear();
    }
    map.insert(key, (backend.to_owned(), handle));
}

impl Metrics {
    /// Counts one request item in `requests{route, method, status, backend}`.
    pub fn count_request(&self, route: &'static str, method: &'static str, status: &'static str, backend: &str) {
        let key = (self.id, route, method, status, name_hash(backend));
        HANDLES.with(|h| {
            let create = || {
                let labels = RequestLabels { route, method, status, backend: backend.to_owned() };
                self.requests.get_or_create(&labels).clone()
            };
            with_handle(&mut h.borrow_mut().requests, key, backend, create, |c| {
                c.inc();
            });
        });
    }

    /// Observes one upstream attempt's latency in `upstream_latency_seconds{method, backend}`.
    pub fn observe_latency(&self, method: &'static str, backend: &str, seconds: f64) {
        let key = (self.id, method, name_hash(backend));
        HANDLES.with(|h| {
            let create = || self.latency.get_or_create(&LatencyLabels { method, backend: backend.to_owned() }).clone();
            with_handle(&mut h.borrow_mut().latency, key, backend, create, |hist| hist.observe(seconds));
        });
    }
}
