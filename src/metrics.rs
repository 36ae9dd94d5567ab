//! Prometheus metrics: one typed [`Metrics`] struct of `prometheus-client` handles, registered
//! once per gateway (no process-global registry, so every test gateway has its own) and passed
//! in state. Prefix `sentinel_proxy_`. Labels are bounded: backends are display names (never
//! URLs) and RPC methods come from the method table, anything else is `other`.
//!
//! Who writes what: the request path (`proxy`, `dispatch`, `server`) increments the counters and
//! observes latencies as it goes (atomics inside `prometheus-client`; the labelled request series
//! through per-thread handles, `series.rs`, so no label set is hashed per request); the
//! per-backend gauges are not kept up to date continuously but copied from the pool's current
//! snapshot when `/metrics` is scraped ([`Metrics::observe_snapshot`]), so they can never drift
//! from what `/health` shows. `docs/observability.md` lists every family.

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::metrics::info::Info;
use prometheus_client::registry::Registry;

use crate::integrity::IntegrityStatus;
use crate::methods;
use crate::upstream::{BackendView, CircuitState, Snapshot};
use crate::validators::{ValidatorReport, WatchStatus};

mod labels;
mod series;
pub use labels::*;

/// Every integrity status with its label value, in state-set order.
const INTEGRITY_STATUSES: [IntegrityStatus; 5] = [
    IntegrityStatus::Perfect,
    IntegrityStatus::Good,
    IntegrityStatus::Bad,
    IntegrityStatus::Unknown,
    IntegrityStatus::SentinelOff,
];

fn latency_histogram() -> Histogram {
    Histogram::new([0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0])
}

/// Every metric of the gateway.
pub struct Metrics {
    registry: Registry,
    /// Process-unique id (keys this gateway's per-thread series handles).
    id: u64,
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
    pub upstream_errors: Family<UpstreamErrorLabels, Counter>,
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
    /// Integrity status as a state set: 1 for the backend's current status, 0 for the others.
    pub integrity_status: Family<IntegrityStatusLabels, Gauge>,
    /// Unix seconds of the backend's last successful integrity analysis (0 never).
    pub integrity_checked: Family<BackendLabel, Gauge>,
    /// Hash agreement with the fleet: 0 agrees, 1 disagrees, 2 disagrees at a finalized height.
    pub forked: Family<BackendLabel, Gauge>,
    /// Corroborated best tip of the fleet (0 until known).
    pub best_tip: Gauge,
    /// Agreed missed attestations of a watched validator over the window.
    pub validator_missed_attestations: Family<ValidatorLabel, Gauge>,
    /// Agreed missed proposals of a watched validator over the window.
    pub validator_missed_proposals: Family<ValidatorLabel, Gauge>,
    /// Newest agreed epochs with a missed duty in a row.
    pub validator_missed_streak: Family<ValidatorLabel, Gauge>,
    /// Validator watch status as a state set: 1 for the current status.
    pub validator_status: Family<ValidatorStatusLabels, Gauge>,
    /// The addresses the validator gauges were last set for (a reload may drop some).
    watched_validators: std::sync::Mutex<Vec<String>>,
    /// Client connections open now (accepted and not yet closed).
    pub open_connections: Gauge,
    /// Connections closed at once because `MAX_CONNECTIONS` were open.
    pub connections_shed: Counter,
    /// Failed `accept` calls (e.g. out of file descriptors).
    pub accept_errors: Counter,
    /// Bytes of node answers held in memory now (bounded by `MAX_BUFFERED_BYTES`).
    pub buffered_answer_bytes: Gauge,
    /// Configuration reloads by result (`ok`, `invalid`, `error`).
    pub config_reloads: Family<ResultLabel, Counter>,
    /// Nodes this replica analyses for every replica now (leases held, `crate::lease`).
    pub analysis_leases_held: Gauge,
    /// Analyses this replica published for the others.
    pub analyses_published: Counter,
    /// Analyses this replica adopted from the replica holding the node's lease.
    pub analyses_adopted: Counter,
    /// Analyses made alone with `REDIS_URL` set, by reason (`redis`, `unpublished`, `unreadable`).
    pub analysis_fallback: Family<ReasonLabel, Counter>,
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
            integrity_status: Family::default(),
            integrity_checked: Family::default(),
            forked: Family::default(),
            best_tip: Gauge::default(),
            validator_missed_attestations: Family::default(),
            validator_missed_proposals: Family::default(),
            validator_missed_streak: Family::default(),
            validator_status: Family::default(),
            watched_validators: std::sync::Mutex::default(),
            open_connections: Gauge::default(),
            connections_shed: Counter::default(),
            accept_errors: Counter::default(),
            buffered_answer_bytes: Gauge::default(),
            config_reloads: Family::default(),
            analysis_leases_held: Gauge::default(),
            analyses_published: Counter::default(),
            analyses_adopted: Counter::default(),
            analysis_fallback: Family::default(),
            served: Counter::default(),
            failed: Counter::default(),
            registry: Registry::default(),
            id: series::next_id(),
        };
        m.register_traffic(&mut registry);
        m.register_backends(&mut registry);
        m.register_validators(&mut registry);
        m.register_resources(&mut registry);
        m.register_analysis(&mut registry);
        registry.register("build", "Gateway version", Info::new(vec![("version", env!("CARGO_PKG_VERSION"))]));
        let start = Gauge::<i64>::default();
        start.set(gauge_value(crate::clock::unix_secs()));
        registry.register("start_time_seconds", "Unix time the gateway started", start);
        // Both tiers exist from the start, so `rate()` and hit-ratio panels have a series to
        // work with before the first lookup.
        for tier in [Tier::Memory, Tier::Redis] {
            let _ = m.cache_hits.get_or_create(&TierLabel { tier });
            let _ = m.cache_misses.get_or_create(&TierLabel { tier });
        }
        for result in ["ok", "invalid", "error"] {
            let _ = m.config_reloads.get_or_create(&ResultLabel { result });
        }
        Metrics { registry, ..m }
    }

    /// Request-path families: counters and the latency histogram.
    fn register_traffic(&self, r: &mut Registry) {
        r.register(
            "requests",
            "JSON-RPC request items served, by route, method, status and backend",
            self.requests.clone(),
        );
        r.register("upstream_latency_seconds", "Upstream attempt latency by method and backend", self.latency.clone());
        let counters: [(&str, &str, &Counter); 5] = [
            ("retries", "Extra attempts after a failed one", &self.retries),
            ("hedges", "Hedged request copies sent", &self.hedges),
            ("coalesced", "Items answered by an identical in-flight request", &self.coalesced),
            ("redis_errors", "Redis failures (served from memory and nodes)", &self.redis_errors),
            ("rate_limited", "Requests refused by the rate limiter", &self.rate_limited),
        ];
        for (name, help, c) in counters {
            r.register(name, help, c.clone());
        }
        r.register("cache_hits", "Cache hits by tier", self.cache_hits.clone());
        r.register("cache_misses", "Cache misses by tier", self.cache_misses.clone());
        r.register("rejected", "Requests and items rejected by the gateway, by reason", self.rejected.clone());
        r.register("upstream_errors", "Failed upstream attempts by backend and kind", self.upstream_errors.clone());
    }

    /// Connection and memory bounds (`MAX_CONNECTIONS`, `MAX_BUFFERED_BYTES`).
    fn register_resources(&self, r: &mut Registry) {
        r.register("open_connections", "Client connections open now", self.open_connections.clone());
        r.register(
            "connections_shed",
            "Connections closed at once because MAX_CONNECTIONS were open",
            self.connections_shed.clone(),
        );
        r.register("config_reloads", "Configuration reloads by result", self.config_reloads.clone());
        r.register("accept_errors", "Failed accepts (e.g. out of file descriptors)", self.accept_errors.clone());
        r.register(
            "buffered_answer_bytes",
            "Bytes of node answers held in memory now (bounded by MAX_BUFFERED_BYTES)",
            self.buffered_answer_bytes.clone(),
        );
    }

    /// The shared analysis across replicas (`crate::lease`, README "Shared analysis").
    fn register_analysis(&self, r: &mut Registry) {
        r.register(
            "analysis_leases_held",
            "Nodes whose validator stats this replica analyses for every replica",
            self.analysis_leases_held.clone(),
        );
        r.register("analyses_published", "Analyses published for the other replicas", self.analyses_published.clone());
        r.register(
            "analyses_adopted",
            "Analyses adopted from the replica holding the lease",
            self.analyses_adopted.clone(),
        );
        r.register(
            "analysis_fallback",
            "Analyses made alone although REDIS_URL is set, by reason",
            self.analysis_fallback.clone(),
        );
        let _ = self.analysis_fallback.get_or_create(&ReasonLabel { reason: "redis" });
    }

    /// Per-backend gauges, refreshed from the snapshot on scrape.
    fn register_backends(&self, r: &mut Registry) {
        let gauges: [(&str, &str, &Family<BackendLabel, Gauge>); 9] = [
            ("backend_up", "1 when the backend answered its last probe ready", &self.up),
            ("backend_routable", "1 when the backend is routable", &self.routable),
            ("backend_tip", "Backend proposed tip (0 unknown)", &self.tip),
            ("backend_lag_blocks", "Blocks behind the corroborated tip", &self.lag),
            ("backend_integrity_score", "Integrity score 0-100 (-1 not analysed)", &self.integrity_score),
            (
                "backend_integrity_checked_timestamp_seconds",
                "Unix time of the last successful integrity analysis (0 never)",
                &self.integrity_checked,
            ),
            ("backend_circuit_state", "Circuit: 0 closed, 1 open, 2 half-open", &self.circuit),
            ("backend_in_flight", "Requests in flight", &self.in_flight),
            (
                "backend_forked",
                "Hashes vs the fleet at equal heights: 0 agree, 1 disagree, 2 disagree at a finalized height",
                &self.forked,
            ),
        ];
        for (name, help, g) in gauges {
            r.register(name, help, g.clone());
        }
        r.register(
            "backend_integrity_status",
            "Integrity status state set: 1 for the current status",
            self.integrity_status.clone(),
        );
        r.register("best_tip", "Corroborated best tip of the fleet (0 unknown)", self.best_tip.clone());
    }

    /// Validator watch gauges, refreshed from the published report on scrape.
    fn register_validators(&self, r: &mut Registry) {
        let gauges: [(&str, &str, &Family<ValidatorLabel, Gauge>); 3] = [
            (
                "validator_missed_attestations",
                "Missed attestations of a watched validator over the window, agreed by every node",
                &self.validator_missed_attestations,
            ),
            (
                "validator_missed_proposals",
                "Missed proposals of a watched validator over the window, agreed by every node",
                &self.validator_missed_proposals,
            ),
            (
                "validator_missed_streak_epochs",
                "Newest epochs in a row in which a watched validator missed an agreed duty",
                &self.validator_missed_streak,
            ),
        ];
        for (name, help, g) in gauges {
            r.register(name, help, g.clone());
        }
        r.register(
            "validator_status",
            "Validator watch state set (healthy, missing-duties, unknown): 1 for the current status",
            self.validator_status.clone(),
        );
    }

    /// Refreshes the validator watch gauges from the published report (called on scrape); an
    /// address no longer watched (a reload dropped it) loses its series, as a removed backend
    /// does ([`Metrics::forget_backend`]).
    pub fn observe_validators(&self, report: &ValidatorReport) {
        let mut watched = self.watched_validators.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        for gone in watched.iter().filter(|a| !report.validators.iter().any(|v| &v.address == *a)) {
            let l = ValidatorLabel { validator: gone.clone() };
            for family in
                [&self.validator_missed_attestations, &self.validator_missed_proposals, &self.validator_missed_streak]
            {
                family.remove(&l);
            }
            for status in WatchStatus::ALL {
                self.validator_status
                    .remove(&ValidatorStatusLabels { validator: gone.clone(), status: status.as_str() });
            }
        }
        *watched = report.validators.iter().map(|v| v.address.clone()).collect();
        for v in &report.validators {
            let l = ValidatorLabel { validator: v.address.clone() };
            self.validator_missed_attestations.get_or_create(&l).set(gauge_value(v.counts.missed_attestations));
            self.validator_missed_proposals.get_or_create(&l).set(gauge_value(v.counts.missed_proposals));
            self.validator_missed_streak.get_or_create(&l).set(gauge_value(v.missed_streak_epochs));
            for status in WatchStatus::ALL {
                let sl = ValidatorStatusLabels { validator: v.address.clone(), status: status.as_str() };
                self.validator_status.get_or_create(&sl).set(i64::from(status == v.status));
            }
        }
    }

    /// Bounded method label from a method's table row (`methods::lookup`): the table name
    /// without namespace (`aztec_getBlock` and `node_getBlock` are both `getBlock`), or `other`
    /// for anything a client invents.
    pub fn method_label(info: Option<&'static methods::MethodInfo>) -> &'static str {
        info.map_or("other", |m| m.name)
    }

    /// Refreshes the per-backend gauges from a snapshot (called on scrape).
    pub fn observe_snapshot(&self, snap: &Snapshot) {
        self.best_tip.set(gauge_value(snap.best_tip.unwrap_or(0)));
        for v in &snap.backends {
            self.observe_backend(v);
        }
    }

    fn observe_backend(&self, v: &BackendView) {
        let name = &v.backend.name;
        let l = BackendLabel { backend: name.to_string() };
        self.up.get_or_create(&l).set(i64::from(v.health.ready));
        self.routable.get_or_create(&l).set(i64::from(v.routable()));
        self.tip.get_or_create(&l).set(gauge_value(v.health.tip.unwrap_or(0)));
        self.lag.get_or_create(&l).set(gauge_value(v.health.lag.unwrap_or(0)));
        let verdict = &v.integrity.verdict;
        self.integrity_score.get_or_create(&l).set(score_value(verdict.status, verdict.score));
        self.integrity_checked.get_or_create(&l).set(gauge_value(v.integrity.checked_at.unwrap_or(0)));
        let forked = v.health.fork.as_ref().map_or(0, |f| if f.finalized { 2 } else { 1 });
        self.forked.get_or_create(&l).set(forked);
        for status in INTEGRITY_STATUSES {
            let sl = IntegrityStatusLabels { backend: name.to_string(), status: status.as_str() };
            let on = i64::from(status == verdict.status);
            self.integrity_status.get_or_create(&sl).set(on);
        }
        self.circuit.get_or_create(&l).set(circuit_value(v.backend.circuit.state()));
        self.in_flight.get_or_create(&l).set(i64::from(v.backend.stats.in_flight()));
    }

    /// Drops the per-backend gauges of a backend no longer configured (a reload removed or
    /// renamed it), so no stale series is scraped; its counters stay, as counters do.
    pub fn forget_backend(&self, name: &str) {
        let l = BackendLabel { backend: name.to_owned() };
        for family in [
            &self.up,
            &self.routable,
            &self.tip,
            &self.lag,
            &self.integrity_score,
            &self.integrity_checked,
            &self.forked,
            &self.circuit,
            &self.in_flight,
        ] {
            family.remove(&l);
        }
        for status in INTEGRITY_STATUSES {
            self.integrity_status.remove(&IntegrityStatusLabels { backend: name.to_owned(), status: status.as_str() });
        }
    }

    /// OpenMetrics text of every family.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

/// Gauge value of the integrity score: -1 while there is no verdict (a real score of 0 is a
/// very different thing from "not analysed" or "sentinel off").
fn score_value(status: IntegrityStatus, score: u8) -> i64 {
    if status.judged() {
        i64::from(score)
    } else {
        -1
    }
}

/// Gauge value of a circuit state.
fn circuit_value(state: CircuitState) -> i64 {
    match state {
        CircuitState::Closed => 0,
        CircuitState::Open => 1,
        CircuitState::HalfOpen => 2,
    }
}

/// A block number or timestamp as a gauge value (saturating; they are far below `i64::MAX`).
fn gauge_value(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests;
