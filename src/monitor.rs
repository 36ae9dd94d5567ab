//! The one background writer of the pool. Every `HEALTH_CHECK_INTERVAL_MS` it probes all
//! backends in parallel, computes the corroborated tip and each node's lag, checks network
//! identity, and publishes one new [`Snapshot`]. Every `INTEGRITY_CHECK_INTERVAL_MS` it fetches
//! each ready node's validator stats (bounded by `MAX_STATS_BYTES`), analyses them off the async
//! threads, applies cross-node consensus and publishes again; with `REDIS_URL`, one replica
//! analyses each node for all of them ([`crate::lease`]). Tests call [`Monitor::run_once`]
//! and [`Monitor::check_integrity`] directly instead of waiting for the loop.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::error::CheckError;
use crate::fork::{self, Commitment};
use crate::forward::{self, HttpClient};
use crate::health::{self, Probe, ProbeError, TipsMethod};
use crate::integrity::{self, Analysis, IntegrityParams};
use crate::lease::{Checked, Lease, NodeKey};
use crate::upstream::{BackendView, Health, Integrity, Namespace, Pool, Snapshot, Unroutable};
use crate::validators::ValidatorWatch;
use crate::wire;
use changes::{log_fork_change, log_health_change, log_verdict_change};
pub use reconfigure::Reconfigure;

/// The monitor task's private state (only it touches this).
#[derive(Debug)]
pub struct Monitor {
    config: Arc<Config>,
    pool: Arc<Pool>,
    client: HttpClient,
    /// Learned tips method per backend.
    tips: Vec<TipsMethod>,
    /// Whether each backend's last probe failed (a recovery may be a restart or an upgrade).
    down: Vec<bool>,
    /// When each unroutable backend was last said to be so (a reminder every minute).
    reminded: Vec<Option<Instant>>,
    /// Integrity parameters, possibly auto-detected.
    params: IntegrityParams,
    /// Epoch parameters already read from a node.
    detected: bool,
    /// Where the validator watch report is published after each integrity pass.
    validators: Arc<ValidatorWatch>,
    /// The analyser election among replicas sharing a Redis (`None` without `REDIS_URL`).
    lease: Option<Lease>,
    /// New configurations from `reload` ([`Monitor::with_reloads`]).
    reloads: Option<tokio::sync::mpsc::Receiver<Reconfigure>>,
}

impl Monitor {
    /// A monitor over `pool`.
    pub fn new(config: Arc<Config>, pool: Arc<Pool>, client: HttpClient) -> Monitor {
        let n = pool.snapshot().backends.len();
        let params = config.integrity.clone();
        Monitor {
            config,
            pool,
            client,
            tips: vec![TipsMethod::default(); n],
            down: vec![false; n],
            reminded: vec![None; n],
            params,
            detected: false,
            validators: Arc::default(),
            lease: None,
            reloads: None,
        }
    }

    /// Shares each node's analysis with the other replicas through `lease`.
    pub fn with_lease(mut self, lease: Option<Lease>) -> Monitor {
        self.lease = lease;
        self
    }

    /// Publishes the validator watch report (`WATCH_VALIDATORS`) into `watch`, shared with
    /// the operator surfaces.
    pub fn with_validators(mut self, watch: Arc<ValidatorWatch>) -> Monitor {
        self.validators = watch;
        self
    }

    /// Runs both loops until `cancel`. The first probe and analysis happen at once.
    pub async fn run(mut self, cancel: CancellationToken) {
        let mut health_tick = reconfigure::ticker(self.config.health_interval);
        let mut integrity_tick = reconfigure::ticker(self.config.integrity_interval);
        health_tick.tick().await;
        self.run_once().await;
        loop {
            tokio::select! {
                () = cancel.cancelled() => return,
                _ = health_tick.tick() => self.run_once().await,
                _ = integrity_tick.tick() => self.check_integrity().await,
                r = reconfigure::next(&mut self.reloads) => self.apply(r, &mut health_tick, &mut integrity_tick).await,
            }
        }
    }

    /// One health pass: probe every backend, publish.
    pub async fn run_once(&mut self) {
        let snap = self.pool.snapshot();
        let timeout =
            self.config.attempt_timeout.min(self.config.health_interval.max(std::time::Duration::from_secs(1)));
        let client = &self.client;
        let probes = snap.backends.iter().zip(self.tips.iter_mut()).map(|(v, tips)| {
            let backend = Arc::clone(&v.backend);
            async move { health::probe(client, &backend, tips, timeout).await }
        });
        let results: Vec<Result<Probe, ProbeError>> = join_all(probes).await;
        for ((v, r), down) in snap.backends.iter().zip(&results).zip(self.down.iter_mut()) {
            if let Ok(p) = r {
                // What a node lacks is learned again after a restart or an upgrade.
                if *down {
                    v.backend.forget_lacking();
                }
                v.backend.set_package_version(p.package_version.as_deref());
            }
            *down = r.is_err();
        }
        let next = assess(&self.config, &snap, &results);
        self.remind_unroutable(&next);
        self.pool.publish(next);
    }

    /// A backend that stays unroutable is logged again every [`REMIND_EVERY`] (the change itself
    /// is logged when it happens), so a dead node never goes quiet in the logs.
    fn remind_unroutable(&mut self, next: &Snapshot) {
        let now = Instant::now();
        for (v, reminded) in next.backends.iter().zip(self.reminded.iter_mut()) {
            match (&v.health.reason, *reminded) {
                (None, _) => *reminded = None,
                (Some(_), None) => *reminded = Some(now),
                (Some(reason), Some(at)) if now.duration_since(at) >= REMIND_EVERY => {
                    tracing::warn!(backend = %v.backend.name, %reason, "backend still unroutable");
                    *reminded = Some(now);
                }
                _ => {}
            }
        }
    }

    /// One integrity pass over every ready backend, then consensus, then publish.
    pub async fn check_integrity(&mut self) {
        self.detect_epoch_params().await;
        let snap = self.pool.snapshot();
        let fetches = snap.backends.iter().map(|v| self.analyse_one(v));
        let results: Vec<Option<Checked>> = join_all(fetches).await;
        let mut good: Vec<(String, Analysis)> = Vec::new();
        let mut slot_of: Vec<Option<(usize, u64)>> = vec![None; results.len()];
        let mut errors: Vec<Option<CheckError>> = vec![None; results.len()];
        for (i, r) in results.into_iter().enumerate() {
            match r {
                Some(Checked { result: Ok(a), at }) => {
                    slot_of[i] = Some((good.len(), at));
                    good.push((snap.backends[i].backend.name.to_string(), a));
                }
                Some(Checked { result: Err(e), .. }) => errors[i] = Some(e),
                None => {}
            }
        }
        integrity::apply_consensus(&mut good, &self.params);
        let now = crate::clock::unix_secs();
        self.publish_validators(&good, now);
        let backends = snap
            .backends
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let mut integrity = v.integrity.clone();
                if let Some((j, at)) = slot_of[i] {
                    integrity = Integrity { verdict: good[j].1.verdict.clone(), checked_at: Some(at), error: None };
                } else if let Some(e) = errors[i].take() {
                    integrity.error = Some(e);
                }
                log_verdict_change(v, &integrity);
                BackendView { integrity, ..v.clone() }
            })
            .collect();
        self.pool.publish(Snapshot {
            backends,
            best_tip: snap.best_tip,
            finalized: snap.finalized,
            reorgs: snap.reorgs,
        });
    }

    /// Judges the watched validators over this pass's analyses and publishes the report.
    fn publish_validators(&self, analysed: &[(String, Analysis)], now: u64) {
        let watch = &self.config.watch_validators;
        if watch.is_empty() {
            return;
        }
        let nodes: Vec<(&str, &integrity::WatchedDuties)> =
            analysed.iter().map(|(name, a)| (name.as_str(), &a.duties)).collect();
        let report = crate::validators::judge(watch, &nodes, self.params.slots_per_epoch, Some(now));
        self.validators.publish(report);
    }

    /// One backend's check: adopted from the replica holding its lease, else fetched and
    /// analysed here; `None` when it is not ready (not checked, and its lease not renewed).
    async fn analyse_one(&self, v: &BackendView) -> Option<Checked> {
        if !v.health.ready {
            return None;
        }
        let analyse = self.fetch_and_analyse(v);
        Some(match &self.lease {
            Some(lease) => {
                let key = NodeKey::new(&v.backend.url, &self.params, &self.config.watch_validators);
                lease.check(&key, self.config.integrity_interval * 2, analyse).await
            }
            None => Checked::now(analyse.await),
        })
    }

    /// Fetches and analyses one backend's stats.
    async fn fetch_and_analyse(&self, v: &BackendView) -> Result<Analysis, CheckError> {
        let method = health::full_name(&v.backend, "getValidatorsStats");
        let request = wire::encode(std::iter::once((method.as_str(), None)));
        let (timeout, limit) = (self.config.request_timeout, self.config.max_stats_bytes);
        // The whole body goes to the analysis (it parses the document in one pass).
        let fetched = forward::send_limited(&self.client, &v.backend, request, "integrity", timeout, limit).await;
        let body = match fetched {
            Ok(reply) => reply.body,
            Err(e) => return Err(CheckError::Fetch(e)),
        };
        let (params, watch) = (self.params.clone(), self.config.watch_validators.clone());
        let analysed =
            tokio::task::spawn_blocking(move || integrity::analyse_response_watching(&body, &params, &watch)).await;
        match analysed {
            Ok(Ok(a)) => Ok(a),
            Ok(Err(e)) => Err(CheckError::Analysis(e)),
            Err(e) => Err(CheckError::Task(e.to_string())),
        }
    }

    /// Reads `epochDuration` / `targetCommitteeSize` from a v5+ node unless configured.
    async fn detect_epoch_params(&mut self) {
        let (slots_set, validators_set) = self.config.epoch_params_explicit;
        if self.detected || (slots_set && validators_set) {
            return;
        }
        let snap = self.pool.snapshot();
        let Some(v) = snap.backends.iter().find(|v| v.health.ready && v.backend.namespace() == Namespace::Aztec) else {
            return;
        };
        let calls = [("aztec_getL1Constants".to_owned(), "[]")];
        let Ok((_, outcomes)) =
            health::call_batch(&self.client, &v.backend, &calls, self.config.attempt_timeout, 1 << 20).await
        else {
            return;
        };
        let Some(text) = outcomes[0].result_text() else {
            return;
        };
        let Ok(c) = serde_json::from_str::<serde_json::Value>(text) else {
            return;
        };
        if let (false, Some(s)) = (slots_set, c.get("epochDuration").and_then(serde_json::Value::as_u64)) {
            self.params.slots_per_epoch = s.max(1);
        }
        if let (false, Some(e)) = (validators_set, c.get("targetCommitteeSize").and_then(serde_json::Value::as_u64)) {
            self.params.expected_validators = e.max(1);
        }
        self.detected = true;
        tracing::info!(slots_per_epoch = self.params.slots_per_epoch, expected_validators = self.params.expected_validators, backend = %v.backend.name, "epoch parameters detected");
    }
}

/// How often a backend that stays unroutable is logged again.
const REMIND_EVERY: Duration = Duration::from_secs(60);

/// The corroborated tip: the second-highest when three or more nodes report, else the highest,
/// so one node running ahead (or lying) cannot quarantine the others.
pub fn corroborated_tip(mut tips: Vec<u64>) -> Option<u64> {
    tips.sort_unstable_by(|a, b| b.cmp(a));
    match tips.len() {
        0 => None,
        1 | 2 => Some(tips[0]),
        _ => Some(tips[1]),
    }
}

/// The network every node must be on: the configured rollup version (else the most common one
/// among ready nodes) and the most common L1 chain id.
#[derive(Clone, Copy, Debug, Default)]
struct Network {
    rollup: Option<u64>,
    chain: Option<u64>,
}

impl Network {
    fn of(config: &Config, probes: &[Result<Probe, ProbeError>]) -> Network {
        Network {
            rollup: config.expected_rollup_version.or_else(|| majority(probes, |p| p.rollup_version)),
            chain: majority(probes, |p| p.l1_chain_id),
        }
    }

    /// Why a node is on another network, if it is.
    fn mismatch(&self, p: &Probe) -> Option<Unroutable> {
        match ((self.rollup, p.rollup_version), (self.chain, p.l1_chain_id)) {
            ((Some(expected), Some(got)), _) if expected != got => Some(Unroutable::OtherRollup { got, expected }),
            (_, (Some(expected), Some(got))) if expected != got => Some(Unroutable::OtherChain { got, expected }),
            _ => None,
        }
    }
}

/// The most common value among ready nodes (ties: the smaller value, deterministic).
fn majority(probes: &[Result<Probe, ProbeError>], field: impl Fn(&Probe) -> Option<u64>) -> Option<u64> {
    let mut counts: HashMap<u64, usize> = HashMap::new();
    for v in probes.iter().flatten().filter(|p| p.ready).filter_map(&field) {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().max_by_key(|&(v, n)| (n, std::cmp::Reverse(v))).map(|(v, _)| v)
}

/// Turns probe results into the next snapshot (pure).
pub fn assess(config: &Config, prev: &Snapshot, probes: &[Result<Probe, ProbeError>]) -> Snapshot {
    let network = Network::of(config, probes);
    let on_network = |p: &Probe| network.mismatch(p).is_none();
    let tips: Vec<u64> = probes
        .iter()
        .flatten()
        .filter(|p| p.ready && on_network(p))
        .filter_map(|p| p.tips.map(|t| t.proposed))
        .collect();
    let best = corroborated_tip(tips);
    let finalized = probes.iter().flatten().filter_map(|p| p.tips?.finalized).max();
    let current: Vec<Option<Vec<Commitment>>> = probes
        .iter()
        .map(|p| p.as_ref().ok().filter(|p| p.ready && on_network(p)).map(|p| p.commitments.clone()))
        .collect();
    let previous: Vec<Vec<Commitment>> = prev.backends.iter().map(|v| v.health.commitments.clone()).collect();
    let forks = fork::judge(&current, &previous, finalized);
    let mut reorged = best.zip(prev.best_tip).is_some_and(|(now, before)| now < before);
    if reorged {
        tracing::warn!(
            tip = best,
            before = prev.best_tip,
            "corroborated tip moved back (prune or reorg); volatile cache purged"
        );
    }
    let backends = prev
        .backends
        .iter()
        .zip(probes)
        .zip(forks)
        .map(|((v, p), fork)| {
            let mut health = judge(config, p, best, &network, &v.health);
            if let Some(f) = fork.as_ref().filter(|f| f.forked() && health.healthy) {
                health.healthy = false;
                health.reason = Some(Unroutable::Forked(f.clone()));
            }
            health.fork = fork;
            if health.fork != v.health.fork {
                reorged = true;
                log_fork_change(v, &health);
            }
            log_health_change(v, &health);
            BackendView { health, ..v.clone() }
        })
        .collect();
    Snapshot { backends, best_tip: best, finalized, reorgs: prev.reorgs + u64::from(reorged) }
}

/// Health of one backend from its probe.
fn judge(
    config: &Config,
    probe: &Result<Probe, ProbeError>,
    best: Option<u64>,
    network: &Network,
    prev: &Health,
) -> Health {
    let p = match probe {
        Ok(p) => p,
        Err(e) => return Health { reason: Some(Unroutable::ProbeFailed(e.clone())), ..prev.clone_identity() },
    };
    let tip = p.tips.map(|t| t.proposed);
    let lag = match (best, tip) {
        (Some(b), Some(t)) => Some(b.saturating_sub(t)),
        _ => None,
    };
    let reason = if !p.ready { Some(Unroutable::NotReady) } else { network.mismatch(p) };
    let reason = reason.or_else(|| match (p.tips, lag) {
        (None, _) => Some(Unroutable::TipsUnreadable),
        (Some(t), _) if t.proposed == 0 => Some(Unroutable::NotSynced),
        (Some(t), _) if t.proven.is_some_and(|pr| pr > t.proposed) => Some(Unroutable::ProvenAboveProposed),
        (_, Some(lag)) if lag > config.max_block_lag => {
            Some(Unroutable::Lagging { lag, tip: best.unwrap_or(0), max: config.max_block_lag })
        }
        _ => None,
    });
    Health {
        known: true,
        ready: p.ready,
        tip,
        proven: p.tips.and_then(|t| t.proven),
        finalized: p.tips.and_then(|t| t.finalized),
        oldest_historic: p.oldest_historic,
        lag,
        probe_ms: Some((p.latency.as_secs_f64() * 100_000.0).round() / 100.0),
        rollup_version: p.rollup_version,
        l1_chain_id: p.l1_chain_id,
        package_version: p.package_version.clone(),
        commitments: p.commitments.clone(),
        fork: None,
        healthy: reason.is_none(),
        reason,
    }
}

impl Health {
    /// A failed probe keeps what we knew about the node's identity but is not healthy.
    fn clone_identity(&self) -> Health {
        Health {
            known: self.known,
            rollup_version: self.rollup_version,
            l1_chain_id: self.l1_chain_id,
            package_version: self.package_version.clone(),
            tip: self.tip,
            ..Health::default()
        }
    }
}

mod changes;
mod reconfigure;
#[cfg(test)]
mod tests;
