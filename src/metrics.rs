//! Prometheus metrics: one typed [`Metrics`] struct of `prometheus-client` handles, registered
//! once per gateway (no process-global registry, so every test gateway has its own) and passed
//! in state. Prefix `sentinel_proxy_`. Labels are bounded: backends are display names (never
//! URLs) and RPC methods come from the method table, anything else is `other`.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

use crate::methods;
use crate::upstream::{CircuitState, Snapshot};

/// Labels of one served request item.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `root`, `archiver` or `pruned`.
    pub route: &'static str,
    /// Method from the table, or `other`.
    pub method: String,
    /// `ok`, `rpc_error`, or the gateway error label.
    pub status: &'static str,
    /// Backend display name, or `none`.
    pub backend: String,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Method from the table, or `other`.
    pub method: String,
    /// Backend display name.
    pub backend: String,
}

/// A backend label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    /// Backend display name.
    pub backend: String,
}

/// A reason label (rejections, failures).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// Cache tier label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// `memory` or `redis`.
    pub tier: Tier,
}

/// Cache tier.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq, EncodeLabelValue)]
pub enum Tier {
    /// In-process moka cache.
    Memory,
    /// Shared Redis tier.
    Redis,
}

fn latency_histogram() -> Histogram {
    Histogram::new([
        0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Request items served.
    pub requests: Family<RequestLabels, Counter>,
    /// Upstream attempt latency by method and backend (seconds).
    pub latency: Family<LatencyLabels, Histogram, fn() -> Histogram>,
    /// Retries (extra attempts after a failure).
    pub retries: Counter,
    /// Hedged copies sent.
    pub hedges: Counter,
    /// Items answered by joining an identical in-flight request.
    pub coalesced: Counter,
    /// Cache hits by tier.
    pub cache_hits: Family<TierLabel, Counter>,
    /// Cache misses by tier.
    pub cache_misses: Family<TierLabel, Counter>,
    /// Redis errors (the gateway fails open).
    pub redis_errors: Counter,
    /// Requests refused by the rate limiter.
    pub rate_limited: Counter,
    /// Requests rejected by the gateway, by reason.
    pub rejected: Family<ReasonLabel, Counter>,
    /// Failed upstream attempts by backend.
    pub upstream_errors: Family<BackendLabel, Counter>,
    /// 1 when the backend answered its last probe ready.
    pub up: Family<BackendLabel, Gauge>,
    /// 1 when the backend is routable.
    pub routable: Family<BackendLabel, Gauge>,
    /// Proposed tip per backend.
    pub tip: Family<BackendLabel, Gauge>,
    /// Blocks behind the corroborated tip.
    pub lag: Family<BackendLabel, Gauge>,
    /// Integrity score 0..100 (-1 unknown).
    pub integrity_score: Family<BackendLabel, Gauge>,
    /// Circuit state: 0 closed, 1 open, 2 half-open.
    pub circuit: Family<BackendLabel, Gauge>,
    /// Requests in flight per backend.
    pub in_flight: Family<BackendLabel, Gauge>,
    /// Request items served (for `/health` totals; not registered, `requests` carries labels).
    pub served: Counter,
    /// Request items answered with a gateway error (for `/health` totals).
    pub failed: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Metrics {
    /// Registers every family in a fresh registry.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("sentinel_proxy");
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency_histogram),
            retries: Counter::default(),
            hedges: Counter::default(),
            coalesced: Counter::default(),
            cache_hits: Family::default(),
            cache_misses: Family::default(),
            redis_errors: Counter::default(),
            rate_limited: Counter::default(),
            rejected: Family::default(),
            upstream_errors: Family::default(),
            up: Family::default(),
            routable: Family::default(),
            tip: Family::default(),
            lag: Family::default(),
            integrity_score: Family::default(),
            circuit: Family::default(),
            in_flight: Family::default(),
            served: Counter::default(),
            failed: Counter::default(),
            registry: Registry::default(),
        };
        let r = &mut registry;
        r.register(
            "requests",
            "JSON-RPC request items served",
            m.requests.clone(),
        );
        r.register(
            "upstream_latency_seconds",
            "Upstream attempt latency",
            m.latency.clone(),
        );
        r.register(
            "retries",
            "Extra attempts after a failed one",
            m.retries.clone(),
        );
        r.register("hedges", "Hedged request copies sent", m.hedges.clone());
        r.register(
            "coalesced",
            "Items answered by an identical in-flight request",
            m.coalesced.clone(),
        );
        r.register("cache_hits", "Cache hits by tier", m.cache_hits.clone());
        r.register(
            "cache_misses",
            "Cache misses by tier",
            m.cache_misses.clone(),
        );
        r.register(
            "redis_errors",
            "Redis failures (served from memory and nodes)",
            m.redis_errors.clone(),
        );
        r.register(
            "rate_limited",
            "Requests refused by the rate limiter",
            m.rate_limited.clone(),
        );
        r.register(
            "rejected",
            "Requests rejected by the gateway, by reason",
            m.rejected.clone(),
        );
        r.register(
            "upstream_errors",
            "Failed upstream attempts",
            m.upstream_errors.clone(),
        );
        r.register(
            "backend_up",
            "Backend answered its last probe ready",
            m.up.clone(),
        );
        r.register(
            "backend_routable",
            "Backend is routable",
            m.routable.clone(),
        );
        r.register("backend_tip", "Backend proposed tip", m.tip.clone());
        r.register(
            "backend_lag_blocks",
            "Blocks behind the corroborated tip",
            m.lag.clone(),
        );
        r.register(
            "backend_integrity_score",
            "Integrity score (-1 unknown)",
            m.integrity_score.clone(),
        );
        r.register(
            "backend_circuit_state",
            "Circuit: 0 closed, 1 open, 2 half-open",
            m.circuit.clone(),
        );
        r.register(
            "backend_in_flight",
            "Requests in flight",
            m.in_flight.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Bounded method label.
    pub fn method_label(method: &str) -> String {
        match methods::index_of(method) {
            Some(i) => methods::METHODS[i].name.to_owned(),
            None => "other".to_owned(),
        }
    }

    /// Refreshes the per-backend gauges from a snapshot (called on scrape).
    pub fn observe_snapshot(&self, snap: &Snapshot) {
        for v in &snap.backends {
            let l = BackendLabel {
                backend: v.backend.name.clone(),
            };
            self.up.get_or_create(&l).set(i64::from(v.health.ready));
            self.routable.get_or_create(&l).set(i64::from(v.routable()));
            self.tip
                .get_or_create(&l)
                .set(v.health.tip.unwrap_or(0) as i64);
            self.lag
                .get_or_create(&l)
                .set(v.health.lag.unwrap_or(0) as i64);
            let score = match v.integrity.verdict.status {
                crate::integrity::IntegrityStatus::Unknown => -1,
                _ => i64::from(v.integrity.verdict.score),
            };
            self.integrity_score.get_or_create(&l).set(score);
            let c = match v.backend.circuit.state() {
                CircuitState::Closed => 0,
                CircuitState::Open => 1,
                CircuitState::HalfOpen => 2,
            };
            self.circuit.get_or_create(&l).set(c);
            self.in_flight
                .get_or_create(&l)
                .set(i64::from(v.backend.stats.in_flight()));
        }
    }

    /// OpenMetrics text of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
