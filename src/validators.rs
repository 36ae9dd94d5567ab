//! Validator watch (README "Validator watch"): the duties of the operator's own validators
//! (`WATCH_VALIDATORS`), judged across every node's sentinel.
//!
//! Each node only knows what its own sentinel saw, and a node with a gap in its history would
//! report misses that did not happen. So the monitor hands [`judge`] every node's
//! [`WatchedDuties`] (read by `integrity` from the `getValidatorsStats` document it already
//! fetched for the integrity check, over the same window) after each integrity pass, and
//! publishes the [`ValidatorReport`] in the shared [`ValidatorWatch`]. Pure apart from that
//! store: no I/O.
//!
//! Rules, per watched validator and window epoch:
//! - the nodes that **cover** the epoch are those with records of any validator in it; gaps
//!   (epochs a node has no records for) and nodes with the sentinel off cover nothing;
//! - when every covering node has the same duty records for the validator (slot by slot, each
//!   record reduced to sent / missed attestation, produced / missed proposal), the epoch is
//!   **agreed**: its misses and successes count;
//! - when they differ, the epoch is **disputed**: listed, counted neither as a miss nor as a
//!   success (one node's blind spot for a validator shows up here, never as a miss);
//! - the **missed streak** counts, from the newest epoch back, the agreed epochs with at least
//!   one missed duty, up to the newest agreed epoch in which every duty succeeded; epochs
//!   without a duty for the validator (not in the committee), uncovered and disputed epochs
//!   neither extend nor end it.
//!
//! A node's `getValidatorStatsBatch` (v6) would send fewer bytes for a few addresses, but the
//! gateway already reads the full `getValidatorsStats` for the integrity check; reading the
//! watched validators from that same document costs no request and keeps both judgements on
//! the same window.

use std::collections::BTreeMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use serde::Serialize;

use crate::integrity::{Duty, WatchedDuties};

/// Overall state of one watched validator.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum WatchStatus {
    /// Seen by some node, and no agreed missed duty in the window.
    Healthy,
    /// At least one agreed missed duty in the window.
    MissingDuties,
    /// No node has the validator in its sentinel stats (or no node was analysed yet).
    Unknown,
}

impl WatchStatus {
    /// Every status, in metric state-set order.
    pub const ALL: [WatchStatus; 3] = [WatchStatus::Healthy, WatchStatus::MissingDuties, WatchStatus::Unknown];

    /// The status as shown in `/validators` and metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            WatchStatus::Healthy => "healthy",
            WatchStatus::MissingDuties => "missing-duties",
            WatchStatus::Unknown => "unknown",
        }
    }
}

/// What the fleet says about one validator in one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum EpochState {
    /// Agreed, with duties, none missed.
    Ok,
    /// Agreed, at least one duty missed.
    Missed,
    /// The covering nodes disagree about the validator.
    Disputed,
    /// Agreed that the validator had no duty (not in the committee).
    Idle,
    /// No node covers the epoch.
    Uncovered,
}

/// One epoch of one validator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct EpochCell {
    /// Epoch number.
    pub epoch: u64,
    /// The fleet's judgement.
    pub state: EpochState,
    /// Agreed duties in the epoch (0 unless `ok` or `missed`).
    pub duties: u64,
    /// Agreed missed duties in the epoch (0 unless `missed`).
    pub missed: u64,
}

/// Duty counts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct DutyCounts {
    /// `attestation-sent` records.
    pub attestations_sent: u64,
    /// `attestation-missed` records.
    pub missed_attestations: u64,
    /// Proposer records of the produced family (mined, proposed, valid, unpublished, orphaned).
    pub proposals_mined: u64,
    /// Proposer records of the missed family (missed, blocks-missed, invalid, unvalidated).
    pub missed_proposals: u64,
}

impl DutyCounts {
    fn add(&mut self, duty: Duty) {
        match duty {
            Duty::AttestationSent => self.attestations_sent += 1,
            Duty::AttestationMissed => self.missed_attestations += 1,
            Duty::ProposalMined => self.proposals_mined += 1,
            Duty::ProposalMissed => self.missed_proposals += 1,
        }
    }

    fn of(records: &[(u64, Duty)]) -> DutyCounts {
        let mut c = DutyCounts::default();
        records.iter().for_each(|&(_, d)| c.add(d));
        c
    }

    fn missed(&self) -> u64 {
        self.missed_attestations + self.missed_proposals
    }
}

/// One node's own view of one validator (not judged against the others).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NodeView {
    /// The validator is in the node's sentinel stats.
    pub seen: bool,
    /// The node's sentinel is off: it says nothing.
    pub sentinel_off: bool,
    /// The node's own counts over its window.
    #[serde(flatten)]
    pub counts: DutyCounts,
    /// Window epochs the node has no records for (never counted as misses).
    pub gaps: Vec<u64>,
}

/// One watched validator in `/validators`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ValidatorEntry {
    /// Lowercase address as configured.
    pub address: String,
    /// `healthy`, `missing-duties` or `unknown`.
    pub status: WatchStatus,
    /// Agreed counts over the window.
    #[serde(flatten)]
    pub counts: DutyCounts,
    /// Newest agreed epochs with a missed duty in a row (see the module doc).
    pub missed_streak_epochs: u64,
    /// Newest slot with an agreed successful duty in the window.
    pub last_duty_slot: Option<u64>,
    /// Epochs where the covering nodes disagree about this validator.
    pub disputed_epochs: Vec<u64>,
    /// Every epoch of any node's window, ascending.
    pub epochs: Vec<EpochCell>,
    /// Each analysed node's own view, by display name.
    pub nodes: BTreeMap<String, NodeView>,
}

/// The `/validators` document.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct ValidatorReport {
    /// Unix seconds of the integrity pass this report comes from (`None` before the first).
    pub checked_at: Option<u64>,
    /// One entry per watched address, in configuration order.
    pub validators: Vec<ValidatorEntry>,
}

impl ValidatorReport {
    /// The report before any integrity pass: every watched validator `unknown`.
    pub fn pending(watch: &[String]) -> ValidatorReport {
        ValidatorReport { checked_at: None, validators: judge(watch, &[], 1, None).validators }
    }
}

/// The published report, shared by the monitor (writer) and the operator surfaces (readers).
#[derive(Debug, Default)]
pub struct ValidatorWatch {
    report: ArcSwap<ValidatorReport>,
}

impl ValidatorWatch {
    /// A store holding [`ValidatorReport::pending`] for `watch`.
    pub fn new(watch: &[String]) -> ValidatorWatch {
        ValidatorWatch { report: ArcSwap::from_pointee(ValidatorReport::pending(watch)) }
    }

    /// The current report.
    pub fn report(&self) -> Arc<ValidatorReport> {
        self.report.load_full()
    }

    /// Replaces the report (the monitor, after each integrity pass).
    pub fn publish(&self, report: ValidatorReport) {
        self.report.store(Arc::new(report));
    }
}

/// Judges every `watch`ed validator (lowercase addresses, in order) over the nodes analysed in
/// one integrity pass: `(display name, what the node saw)`. `s` is slots per epoch.
pub fn judge(watch: &[String], nodes: &[(&str, &WatchedDuties)], s: u64, checked_at: Option<u64>) -> ValidatorReport {
    let s = s.max(1);
    let mut epochs: Vec<u64> = nodes.iter().flat_map(|(_, d)| d.covered.iter().chain(&d.gaps).copied()).collect();
    epochs.sort_unstable();
    epochs.dedup();
    let validators = watch.iter().enumerate().map(|(i, address)| judge_one(i, address, nodes, &epochs, s)).collect();
    ValidatorReport { checked_at, validators }
}

/// The records of validator `i` on one node, or none when the node lacks the entry.
fn records(d: &WatchedDuties, i: usize) -> &[(u64, Duty)] {
    d.records.get(i).map_or(&[], Vec::as_slice)
}

/// The records of one epoch in a slot-sorted list.
fn in_epoch(records: &[(u64, Duty)], epoch: u64, s: u64) -> &[(u64, Duty)] {
    let from = records.partition_point(|&(slot, _)| slot / s < epoch);
    let to = records.partition_point(|&(slot, _)| slot / s <= epoch);
    &records[from..to]
}

fn judge_one(i: usize, address: &str, nodes: &[(&str, &WatchedDuties)], epochs: &[u64], s: u64) -> ValidatorEntry {
    let mut counts = DutyCounts::default();
    let mut last_duty_slot = None;
    let mut cells = Vec::with_capacity(epochs.len());
    for &epoch in epochs {
        let mut views = nodes
            .iter()
            .filter(|(_, d)| !d.sentinel_off && d.covered.binary_search(&epoch).is_ok())
            .map(|(_, d)| in_epoch(records(d, i), epoch, s));
        let cell = match views.next() {
            None => EpochCell { epoch, state: EpochState::Uncovered, duties: 0, missed: 0 },
            Some(first) if views.all(|v| v == first) => {
                let c = DutyCounts::of(first);
                counts.add_all(&c);
                if let Some(&(slot, _)) = first.iter().rev().find(|(_, d)| !d.is_missed()) {
                    last_duty_slot = last_duty_slot.max(Some(slot));
                }
                let state = match (first.len(), c.missed()) {
                    (0, _) => EpochState::Idle,
                    (_, 0) => EpochState::Ok,
                    _ => EpochState::Missed,
                };
                EpochCell { epoch, state, duties: first.len() as u64, missed: c.missed() }
            }
            Some(_) => EpochCell { epoch, state: EpochState::Disputed, duties: 0, missed: 0 },
        };
        cells.push(cell);
    }
    let missed_streak_epochs = cells
        .iter()
        .rev()
        .filter(|c| matches!(c.state, EpochState::Ok | EpochState::Missed))
        .take_while(|c| c.state == EpochState::Missed)
        .count() as u64;
    let nodes_view: BTreeMap<String, NodeView> = nodes
        .iter()
        .map(|(name, d)| {
            let view = NodeView {
                seen: d.present.get(i).copied().unwrap_or(false),
                sentinel_off: d.sentinel_off,
                counts: DutyCounts::of(records(d, i)),
                gaps: d.gaps.clone(),
            };
            ((*name).to_owned(), view)
        })
        .collect();
    let status = if !nodes_view.values().any(|v| v.seen) {
        WatchStatus::Unknown
    } else if counts.missed() > 0 {
        WatchStatus::MissingDuties
    } else {
        WatchStatus::Healthy
    };
    ValidatorEntry {
        address: address.to_owned(),
        status,
        counts,
        missed_streak_epochs,
        last_duty_slot,
        disputed_epochs: cells.iter().filter(|c| c.state == EpochState::Disputed).map(|c| c.epoch).collect(),
        epochs: cells,
        nodes: nodes_view,
    }
}

impl DutyCounts {
    fn add_all(&mut self, o: &DutyCounts) {
        self.attestations_sent += o.attestations_sent;
        self.missed_attestations += o.missed_attestations;
        self.proposals_mined += o.proposals_mined;
        self.missed_proposals += o.missed_proposals;
    }
}

/// Whether `s` is an address `WATCH_VALIDATORS` accepts: `0x` and 40 hex digits.
pub fn valid_address(s: &str) -> bool {
    s.len() == 42 && (s.starts_with("0x") || s.starts_with("0X")) && s.as_bytes()[2..].iter().all(u8::is_ascii_hexdigit)
}

#[cfg(test)]
mod tests;
