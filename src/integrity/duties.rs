//! The validator watch's reading of one node's document (README "Validator watch"): the
//! records of the watched validators over the same window the integrity analysis used, taken
//! from the document already parsed for it (no second fetch, no second parse).
//!
//! Cross-node judging lives in `crate::validators`; this only says what one node saw.

use serde::{Deserialize, Serialize};

use super::parse::{family, Family, StatsDoc};
use super::verdict::Analysis;
use super::IntegrityStatus;

/// What one history record says about a watched validator's duty.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Duty {
    /// `attestation-sent`.
    AttestationSent,
    /// `attestation-missed`.
    AttestationMissed,
    /// A proposer record of the produced family (docs/integrity.md#status-families):
    /// `block-mined`, `block-proposed`, `checkpoint-mined`, `checkpoint-proposed`,
    /// `checkpoint-valid`, `checkpoint-unpublished`, `checkpoint-orphaned`.
    ProposalMined,
    /// A proposer record of the missed family: `block-missed`, `checkpoint-missed`,
    /// `blocks-missed`, `checkpoint-invalid`, `checkpoint-unvalidated`.
    ProposalMissed,
}

impl Duty {
    /// The duty of a status string; `None` for a status of no known family.
    pub fn of(status: &str) -> Option<Duty> {
        match family(status) {
            Family::Attested => Some(Duty::ProposalMined),
            Family::Missed => Some(Duty::ProposalMissed),
            Family::Attestation if status == "attestation-missed" => Some(Duty::AttestationMissed),
            Family::Attestation => Some(Duty::AttestationSent),
            Family::Other => None,
        }
    }

    /// Whether the duty was missed.
    pub fn is_missed(self) -> bool {
        matches!(self, Duty::AttestationMissed | Duty::ProposalMissed)
    }
}

/// One node's view of the watched validators over its analysed window.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WatchedDuties {
    /// The node's sentinel is off (`{"stats":{},"slotWindow":0}`): it covers nothing.
    pub sentinel_off: bool,
    /// Window epochs with at least one record of any validator, ascending: the epochs this node
    /// can speak about.
    pub covered: Vec<u64>,
    /// Window epochs without any record (the node's gaps), ascending.
    pub gaps: Vec<u64>,
    /// Per watched validator (watch-list order): whether its address is in the node's `stats`.
    pub present: Vec<bool>,
    /// Per watched validator (watch-list order): its `(slot, duty)` records inside the window,
    /// ascending by slot.
    pub records: Vec<Vec<(u64, Duty)>>,
}

/// The watched validators' records in `doc`, over the window of `analysis` (built from the same
/// document). `watch` holds lowercase addresses; document addresses match case-insensitively.
pub(super) fn extract(doc: &StatsDoc<'_>, analysis: &Analysis, watch: &[String], s: u64) -> WatchedDuties {
    let mut out = WatchedDuties {
        sentinel_off: analysis.verdict.status == IntegrityStatus::SentinelOff,
        covered: analysis.tallies.iter().filter(|t| !t.is_missing()).map(|t| t.epoch).collect(),
        gaps: analysis.tallies.iter().filter(|t| t.is_missing()).map(|t| t.epoch).collect(),
        present: vec![false; watch.len()],
        records: vec![Vec::new(); watch.len()],
    };
    let (Some(first), Some(last)) = (analysis.tallies.first(), analysis.tallies.last()) else {
        // No window (sentinel off or empty history): presence is all there is to tell.
        for v in &doc.stats.0 {
            if let Some(i) = watch.iter().position(|w| w.eq_ignore_ascii_case(&v.address)) {
                out.present[i] = true;
            }
        }
        return out;
    };
    let (first, end) = (first.epoch, last.epoch + 1);
    for v in &doc.stats.0 {
        let Some(i) = watch.iter().position(|w| w.eq_ignore_ascii_case(&v.address)) else {
            continue;
        };
        out.present[i] = true;
        let records = &mut out.records[i];
        for r in &v.history {
            let epoch = r.slot / s;
            if epoch < first || epoch >= end {
                continue;
            }
            if let Some(duty) = Duty::of(&r.status) {
                records.push((r.slot, duty));
            }
        }
        records.sort_unstable();
        records.dedup();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::testdoc::params;
    use crate::integrity::{analyse_stats_watching, IntegrityParams};

    fn small() -> IntegrityParams {
        IntegrityParams { slots_per_epoch: 4, expected_validators: 2, check_epochs: 3, ..params() }
    }

    #[test]
    fn statuses_of_every_generation_map_to_duties() {
        let table = [
            ("block-mined", Some(Duty::ProposalMined)),
            ("block-proposed", Some(Duty::ProposalMined)),
            ("block-missed", Some(Duty::ProposalMissed)),
            ("checkpoint-mined", Some(Duty::ProposalMined)),
            ("checkpoint-proposed", Some(Duty::ProposalMined)),
            ("checkpoint-missed", Some(Duty::ProposalMissed)),
            ("blocks-missed", Some(Duty::ProposalMissed)),
            ("checkpoint-valid", Some(Duty::ProposalMined)),
            ("checkpoint-invalid", Some(Duty::ProposalMissed)),
            ("checkpoint-unvalidated", Some(Duty::ProposalMissed)),
            ("checkpoint-unpublished", Some(Duty::ProposalMined)),
            ("checkpoint-orphaned", Some(Duty::ProposalMined)),
            ("attestation-sent", Some(Duty::AttestationSent)),
            ("attestation-missed", Some(Duty::AttestationMissed)),
            ("checkpoint-from-the-future", None),
        ];
        for (status, want) in table {
            assert_eq!(Duty::of(status), want, "{status}");
        }
    }

    #[test]
    fn window_records_of_watched_addresses_only() {
        // S = 4; lastProcessedSlot 20 → epoch 5 in progress, window epochs 2..5 (3 epochs),
        // epoch 3 has no record at all (a gap).
        let doc = br#"{"stats":{
            "0xAAaa000000000000000000000000000000000001":{"history":[
                {"slot":4,"status":"attestation-missed"},{"slot":8,"status":"attestation-sent"},
                {"slot":9,"status":"checkpoint-missed"},{"slot":17,"status":"checkpoint-valid"},
                {"slot":18,"status":"something-new"},{"slot":21,"status":"attestation-missed"}]},
            "0xbbbb000000000000000000000000000000000002":{"history":[
                {"slot":4,"status":"checkpoint-mined"},{"slot":8,"status":"checkpoint-mined"},
                {"slot":16,"status":"checkpoint-mined"}]}},
            "lastProcessedSlot":20,"initialSlot":0,"slotWindow":1000}"#;
        let watch = ["0xaaaa000000000000000000000000000000000001".to_owned(), "0x00".to_owned()];
        let a = analyse_stats_watching(doc, &small(), &watch).unwrap();
        let d = &a.duties;
        assert!(!d.sentinel_off);
        assert_eq!((d.covered.as_slice(), d.gaps.as_slice()), (&[2, 4][..], &[3][..]));
        assert_eq!(d.present, [true, false]);
        assert_eq!(d.records[0], [(8, Duty::AttestationSent), (9, Duty::ProposalMissed), (17, Duty::ProposalMined)]);
        assert!(d.records[1].is_empty());
    }

    #[test]
    fn sentinel_off_covers_nothing() {
        let a = analyse_stats_watching(br#"{"stats":{},"slotWindow":0}"#, &small(), &["0xab".to_owned()]).unwrap();
        assert!(a.duties.sentinel_off);
        assert!(a.duties.covered.is_empty() && a.duties.records[0].is_empty());
        assert_eq!(a.duties.present, [false]);
    }
}
