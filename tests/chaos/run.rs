//! One chaos run: start the fleet and the gateway, wait until the gateway routes to every node,
//! start the clients and the sampler, walk the schedule, stop, and count.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::clients::{self, PhaseStats, Shared};
use super::fleet::Fleet;
use super::gateway::{Gateway, Sample};
use super::schedule::{self, Fault, Phase};
use super::Settings;

/// How long a phase waits for the nodes it heals to be routable again before breaking others.
const HEAL_PATIENCE: Duration = Duration::from_secs(15);

/// One phase as it happened.
#[derive(Debug)]
pub struct PhaseRecord {
    /// The phase.
    pub phase: Phase,
    /// Time until the healed nodes were routable again.
    pub heal_wait: Duration,
    /// Whether they were within `HEAL_PATIENCE`.
    pub healed: bool,
    /// What the clients saw.
    pub stats: PhaseStats,
}

/// `sendTx` accounting over the whole fleet.
#[derive(Debug, Default)]
pub struct TxCount {
    /// Calls the clients sent.
    pub sent: u64,
    /// Calls the gateway answered with a result.
    pub accepted: u64,
    /// Distinct transactions that reached some node.
    pub received: u64,
    /// Transactions that reached nodes more than once (fleet-wide, every incarnation).
    pub duplicated: u64,
    /// Arrivals beyond the first, summed.
    pub extra_arrivals: u64,
}

/// Everything a run measured.
#[derive(Debug)]
pub struct Outcome {
    /// The settings it ran with.
    pub settings: Settings,
    /// Every phase, in order.
    pub phases: Vec<PhaseRecord>,
    /// Gateway RSS / descriptor samples.
    pub samples: Vec<Sample>,
    /// `sendTx` accounting.
    pub txs: TxCount,
    /// Node restarts (revivals and re-rolls).
    pub restarts: u64,
    /// The gateway's `/health` totals at the end.
    pub totals: serde_json::Value,
    /// Whether the gateway process was still running at the end.
    pub gateway_alive: bool,
    /// Its log file.
    pub log: PathBuf,
    /// Time under load.
    pub elapsed: Duration,
}

impl Outcome {
    /// Every phase's figures merged.
    pub fn total(&self) -> PhaseStats {
        let mut all = PhaseStats::default();
        for p in &self.phases {
            all.merge(p.stats.clone());
        }
        all
    }
}

/// Runs the chaos schedule against the gateway binary `bin`.
///
/// # Panics
/// The gateway never routes to the fresh fleet within 30 s.
pub async fn run(settings: &Settings, bin: &Path) -> Outcome {
    let mut fleet = Fleet::start(4).await;
    let mut gw = Gateway::spawn(bin, &fleet.backends(), settings.attempt_ms);
    let names: Vec<String> = (0..fleet.len()).map(|i| fleet.name(i).to_owned()).collect();
    let up = gw.await_routable(&names, Duration::from_secs(30)).await;
    assert!(up, "the gateway never routed to the fleet; its log: {}", gw.log.display());

    let stop = CancellationToken::new();
    let samples = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let sampler = tokio::spawn(sample(gw.pid(), settings.sample_every, started, Arc::clone(&samples), stop.clone()));
    let shared = Shared {
        url: gw.url.clone(),
        phase: Arc::new(AtomicUsize::new(0)),
        phases: settings.phases(),
        stop: stop.clone(),
        think_ms: settings.think_ms,
    };
    let load: Vec<_> = (0..settings.clients).map(|id| tokio::spawn(clients::run(id, shared.clone()))).collect();

    let mut waits = Vec::new();
    for i in 0..settings.phases() {
        let begun = tokio::time::Instant::now();
        shared.phase.store(i, Ordering::Relaxed);
        let phase = schedule::phase(i);
        let waited = Instant::now();
        let healed = apply(&mut fleet, &gw, &phase, &names).await;
        waits.push((phase, waited.elapsed(), healed));
        tokio::time::sleep_until(begun + settings.phase).await;
    }
    stop.cancel();
    let mut per_phase = vec![PhaseStats::default(); settings.phases()];
    for handle in load {
        let stats = handle.await.expect("client task");
        for (acc, s) in per_phase.iter_mut().zip(stats) {
            acc.merge(s);
        }
    }
    let elapsed = started.elapsed();
    let _ = sampler.await;
    let phases = waits
        .into_iter()
        .zip(per_phase)
        .map(|((phase, heal_wait, healed), stats)| PhaseRecord { phase, heal_wait, healed, stats })
        .collect();
    let totals = gw.totals().await.unwrap_or_default();
    let samples = std::mem::take(&mut *samples.lock().unwrap());
    let mut outcome = Outcome {
        settings: settings.clone(),
        phases,
        samples,
        txs: TxCount::default(),
        restarts: fleet.restarts,
        totals,
        gateway_alive: gw.is_running(),
        log: gw.log.clone(),
        elapsed,
    };
    outcome.txs = count_txs(&outcome, &fleet);
    outcome
}

/// Heals the nodes the phase wants healthy, waits until the gateway routes to them, then
/// breaks the others. Returns whether the healed nodes came back in time.
async fn apply(fleet: &mut Fleet, gw: &Gateway, phase: &Phase, names: &[String]) -> bool {
    let mut healthy = Vec::new();
    for (i, fault) in phase.faults.iter().enumerate() {
        if *fault == Fault::Healthy {
            if fleet.is_up(i) {
                fleet.set_faults(i, fault.faults());
            } else {
                fleet.revive(i, fleet.version(i)).await;
            }
            healthy.push(names[i].clone());
        }
    }
    let healed = gw.await_routable(&healthy, HEAL_PATIENCE).await;
    for (i, fault) in phase.faults.iter().enumerate() {
        match fault {
            Fault::Healthy => {}
            Fault::Kill => fleet.kill(i),
            Fault::Reroll => fleet.reroll(i).await,
            other => {
                if !fleet.is_up(i) {
                    fleet.revive(i, fleet.version(i)).await;
                }
                fleet.set_faults(i, other.faults());
            }
        }
    }
    healed
}

fn count_txs(outcome: &Outcome, fleet: &Fleet) -> TxCount {
    let total = outcome.total();
    let arrivals = fleet.tx_arrivals();
    let extra: u64 = arrivals.values().map(|n| u64::from(n.saturating_sub(1))).sum();
    TxCount {
        sent: total.txs_sent,
        accepted: total.txs_accepted,
        received: arrivals.len() as u64,
        duplicated: arrivals.values().filter(|n| **n > 1).count() as u64,
        extra_arrivals: extra,
    }
}

/// Samples the gateway process every `every` until `stop`, and once more at the end.
async fn sample(pid: u32, every: Duration, started: Instant, out: Arc<Mutex<Vec<Sample>>>, stop: CancellationToken) {
    loop {
        if let Some(s) = Gateway::sample_pid(pid, started.elapsed().as_secs_f64()) {
            out.lock().unwrap().push(s);
        }
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(every) => {}
        }
    }
    if let Some(s) = Gateway::sample_pid(pid, started.elapsed().as_secs_f64()) {
        out.lock().unwrap().push(s);
    }
}
