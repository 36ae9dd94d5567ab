//! A configuration reload as the monitor sees it. The monitor stays the one writer of the pool:
//! `reload` sends it the new, validated configuration ([`Reconfigure`]) and it publishes the
//! snapshot of the new backend list between two passes, so a probe that started on the old list
//! can never publish over the new one. Nodes with an unchanged URL keep their state
//! (`Snapshot::reconfigured`), and so does the monitor's memory of them (tips method, last probe
//! outcome, reminders); intervals, thresholds and the watch list change with the configuration.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::time::{interval, Interval, MissedTickBehavior};

use super::Monitor;
use crate::config::Config;
use crate::health::TipsMethod;
use crate::upstream::Membership;
use crate::validators::ValidatorReport;

/// A new configuration for the monitor.
#[derive(Debug)]
pub struct Reconfigure {
    /// The validated configuration to adopt.
    pub config: Arc<Config>,
    /// Told what changed in the backend list once the new snapshot is published.
    pub done: oneshot::Sender<Membership>,
}

/// An interval whose missed ticks are delayed, not bunched; its first tick is immediate.
pub(super) fn ticker(period: Duration) -> Interval {
    let mut tick = interval(period);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    tick
}

/// The next reconfiguration; pending forever without a channel or once it is closed.
pub(super) async fn next(reloads: &mut Option<mpsc::Receiver<Reconfigure>>) -> Reconfigure {
    if let Some(rx) = reloads {
        if let Some(r) = rx.recv().await {
            return r;
        }
    }
    *reloads = None;
    std::future::pending().await
}

impl Monitor {
    /// Takes new configurations from `reloads` between passes of [`Monitor::run`].
    pub fn with_reloads(mut self, reloads: mpsc::Receiver<Reconfigure>) -> Monitor {
        self.reloads = Some(reloads);
        self
    }

    /// Adopts `r` (see [`Monitor::reconfigure`]) and tells the reloader, then probes at once
    /// (thresholds may have changed, new nodes are unprobed) and, when nodes were added,
    /// analyses the fleet's history at once too. Changed intervals restart their ticks.
    pub(super) async fn apply(&mut self, r: Reconfigure, health: &mut Interval, integrity: &mut Interval) {
        let before = (self.config.health_interval, self.config.integrity_interval);
        let change = self.reconfigure(r.config);
        let added = !change.added.is_empty();
        let _ = r.done.send(change);
        self.run_once().await;
        if before.0 != self.config.health_interval {
            *health = ticker(self.config.health_interval);
        }
        health.reset();
        if added {
            self.check_integrity().await;
            integrity.reset();
        }
        if before.1 != self.config.integrity_interval {
            *integrity = ticker(self.config.integrity_interval);
            integrity.reset();
        }
    }

    /// Adopts `config` and publishes the snapshot of its backend list. Epoch parameters read
    /// from a node stay unless now configured; a changed watch list starts over as pending.
    pub fn reconfigure(&mut self, config: Arc<Config>) -> Membership {
        let snap = self.pool.snapshot();
        let (next, change) = snap.reconfigured(&config);
        let old_of = |i: usize| {
            let stats = &next.backends[i].backend.stats;
            snap.backends.iter().position(|v| Arc::ptr_eq(&v.backend.stats, stats))
        };
        let n = next.backends.len();
        self.tips = (0..n).map(|i| old_of(i).map_or_else(TipsMethod::default, |j| self.tips[j])).collect();
        self.down = (0..n).map(|i| old_of(i).is_some_and(|j| self.down[j])).collect();
        self.reminded = (0..n).map(|i| old_of(i).and_then(|j| self.reminded[j])).collect();
        let mut params = config.integrity.clone();
        let (slots_set, validators_set) = config.epoch_params_explicit;
        if self.detected && !slots_set {
            params.slots_per_epoch = self.params.slots_per_epoch;
        }
        if self.detected && !validators_set {
            params.expected_validators = self.params.expected_validators;
        }
        self.params = params;
        if config.watch_validators != self.config.watch_validators {
            self.validators.publish(ValidatorReport::pending(&config.watch_validators));
        }
        self.config = config;
        self.pool.publish(next);
        change
    }
}
