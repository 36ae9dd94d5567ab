//! Result types of an analysis: the serialisable [`Verdict`] shown in `/health` and the
//! [`Analysis`] that also keeps what consensus needs (per-slot outcomes, per-epoch tallies).
//!
//! An `Analysis` is a plain value owned by the monitor; [`Analysis::rescore`] is the only place
//! that derives the verdict's scores from the tallies, so the first analysis and the
//! post-consensus recomputation can never disagree on the rules.

use serde::{Deserialize, Serialize};

use super::score::{self, EpochTally};
use super::{status_for, IntegrityParams};

/// Integrity status of a node (docs/integrity.md#node-score-and-status).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IntegrityStatus {
    /// Node score 100.
    Perfect,
    /// Node score at or above the threshold.
    Good,
    /// Node score below the threshold.
    Bad,
    /// Not analysed (yet), or no history at all.
    Unknown,
    /// The node's sentinel is disabled (`{"stats":{},"slotWindow":0}`): nothing to judge. Not
    /// a fault, and not `bad`: such a node serves like one not analysed yet.
    #[serde(rename = "sentinel-off")]
    SentinelOff,
}

impl IntegrityStatus {
    /// The status as shown in `/health`, labels and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            IntegrityStatus::Perfect => "perfect",
            IntegrityStatus::Good => "good",
            IntegrityStatus::Bad => "bad",
            IntegrityStatus::Unknown => "unknown",
            IntegrityStatus::SentinelOff => "sentinel-off",
        }
    }

    /// Whether a verdict was reached (perfect, good or bad).
    pub fn judged(self) -> bool {
        matches!(self, IntegrityStatus::Perfect | IntegrityStatus::Good | IntegrityStatus::Bad)
    }
}

/// History depth class of a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NodeKind {
    /// History spans more than `archiver_threshold_epochs` epochs.
    Archiver,
    /// Recent history only.
    Pruned,
}

impl NodeKind {
    /// `archiver` or `pruned`, as shown in `/health` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Archiver => "archiver",
            NodeKind::Pruned => "pruned",
        }
    }
}

/// Score and findings of one epoch of the window.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct EpochReport {
    /// Epoch number.
    pub epoch: u64,
    /// Epoch score 0..=100; 0 for a missing epoch (one with no records, issue "no records").
    pub score: u8,
    /// Human-readable findings, e.g. "proposer records 30, expected 32".
    pub issues: Vec<String>,
}

/// Integrity verdict on one node, as published in `/health`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Verdict {
    /// Node score 0..=100 (0 when the status is `unknown`).
    pub score: u8,
    /// Status derived from the score.
    pub status: IntegrityStatus,
    /// Archiver or pruned.
    pub kind: NodeKind,
    /// History depth in epochs: newest − oldest record epoch + 1 (0 without records).
    pub depth_epochs: u64,
    /// Window epochs without any record.
    pub missing_epochs: Vec<u64>,
    /// Window epochs scoring below 100 (rules or cross-node consensus).
    pub inconsistent_epochs: Vec<u64>,
    /// One report per window epoch, ascending.
    pub epochs: Vec<EpochReport>,
    /// Why the verdict is `unknown`, or why the window is shorter than asked.
    pub reason: Option<String>,
}

/// Per-slot proposer outcome seen by one node (true = mined/produced family, false = missed
/// family), over the analysed window; used for consensus. A slot with both kinds of proposer
/// record counts as mined. Sorted by slot.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlotOutcomes(Vec<(u64, bool)>);

impl SlotOutcomes {
    /// Build from `(slot, mined)` pairs sorted by slot with no duplicates.
    pub(super) fn from_sorted(pairs: Vec<(u64, bool)>) -> Self {
        Self(pairs)
    }

    /// The outcome of `slot`, if this node has a proposer record for it in its window.
    pub fn get(&self, slot: u64) -> Option<bool> {
        let i = self.0.binary_search_by_key(&slot, |&(s, _)| s).ok()?;
        Some(self.0[i].1)
    }

    /// All `(slot, mined)` pairs, ascending by slot.
    pub fn iter(&self) -> impl Iterator<Item = (u64, bool)> + '_ {
        self.0.iter().copied()
    }

    /// Number of slots with an outcome.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// True when no slot of the window has a proposer record.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

/// A node's analysis: its verdict plus what cross-node consensus needs. Serialisable so that
/// one replica can publish it for the others (`crate::lease`), before consensus.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Analysis {
    /// The verdict; recomputed by [`crate::integrity::apply_consensus`].
    pub verdict: Verdict,
    /// Proposer outcomes per slot of the window.
    pub outcomes: SlotOutcomes,
    /// Counts per window epoch, ascending and contiguous; empty when `unknown`.
    pub(super) tallies: Vec<EpochTally>,
    /// False for an `unknown` verdict, which [`Analysis::rescore`] must leave alone.
    pub(super) scored: bool,
    /// The watched validators' records over the window (empty without a watch list).
    pub duties: super::WatchedDuties,
}

impl Analysis {
    /// An unjudged verdict (`unknown` or `sentinel-off`) with a reason.
    pub(super) fn unjudged(status: IntegrityStatus, reason: &str) -> Self {
        Self {
            verdict: Verdict {
                score: 0,
                status,
                kind: NodeKind::Pruned,
                depth_epochs: 0,
                missing_epochs: Vec::new(),
                inconsistent_epochs: Vec::new(),
                epochs: Vec::new(),
                reason: Some(reason.to_owned()),
            },
            outcomes: SlotOutcomes::default(),
            tallies: Vec::new(),
            scored: false,
            duties: super::WatchedDuties::default(),
        }
    }

    /// Recompute score, status, missing/inconsistent epochs and reports from the tallies.
    /// Kind, depth and reason are left as they are. No-op on an `unknown` verdict.
    pub(super) fn rescore(&mut self, params: &IntegrityParams) {
        if !self.scored {
            return;
        }
        let v = &mut self.verdict;
        v.epochs = self.tallies.iter().map(|t| t.report(params)).collect();
        v.missing_epochs = self.tallies.iter().filter(|t| t.is_missing()).map(|t| t.epoch).collect();
        v.inconsistent_epochs = self
            .tallies
            .iter()
            .zip(&v.epochs)
            .filter(|(t, r)| !t.is_missing() && r.score < 100)
            .map(|(t, _)| t.epoch)
            .collect();
        v.score = score::node_score(&self.tallies, &v.epochs);
        v.status = status_for(v.score, params.score_threshold);
    }

    /// Mutable tally of `epoch`, if it is in the window.
    pub(super) fn tally_mut(&mut self, epoch: u64) -> Option<&mut EpochTally> {
        let first = self.tallies.first()?.epoch;
        let i = usize::try_from(epoch.checked_sub(first)?).ok()?;
        self.tallies.get_mut(i)
    }

    /// Drop all consensus disputes; true when there were any.
    pub(super) fn clear_disputes(&mut self) -> bool {
        let mut any = false;
        for t in &mut self.tallies {
            any |= !t.disputes.is_empty();
            t.disputes.clear();
        }
        any
    }
}
