//! Cross-node consensus on proposer outcomes (docs/integrity.md#consensus).
//!
//! Whether a slot's block/checkpoint was produced is meant to agree across nodes, unlike
//! attestations, which depend on each node's p2p view and are never compared. For every slot
//! that at least two nodes have an outcome for in their analysed windows, the strict majority
//! wins; each node in the minority gets a dispute on that slot's epoch, and its verdict is
//! recomputed by [`Analysis::rescore`]. A tie changes nothing.
//!
//! The function is idempotent: disputes from a previous call are dropped first, so the monitor
//! may run it over the same analyses every round.

use std::collections::BTreeMap;

use super::score::Dispute;
use super::verdict::Analysis;
use super::IntegrityParams;

/// Cross-node consensus: for slots covered by ≥2 nodes' analysed windows, majority mined-ness
/// wins; each minority node's epoch containing such a slot becomes inconsistent (issue text
/// names the slot and the backends it disagreed with), and its verdict (score, status,
/// inconsistent epochs, epoch reports) is recomputed. Ties: no change. Mutates in place.
///
/// `nodes` pairs a backend name with its analysis; the names appear in the issue texts.
pub fn apply_consensus(nodes: &mut [(String, Analysis)], params: &IntegrityParams) {
    let mut changed: Vec<bool> = nodes.iter_mut().map(|(_, a)| a.clear_disputes()).collect();
    for (slot, votes) in votes(nodes) {
        let Some(majority) = majority(&votes) else {
            continue;
        };
        let winners: Vec<String> =
            votes.iter().filter(|&&(_, mined)| mined == majority).map(|&(i, _)| nodes[i].0.clone()).collect();
        for &(i, mined) in votes.iter().filter(|&&(_, mined)| mined != majority) {
            let epoch = slot / params.slots_per_epoch.max(1);
            if let Some(t) = nodes[i].1.tally_mut(epoch) {
                t.disputes.push(Dispute { slot, own: mined, majority: winners.clone() });
                changed[i] = true;
            }
        }
    }
    for ((_, analysis), changed) in nodes.iter_mut().zip(changed) {
        if changed {
            analysis.rescore(params);
        }
    }
}

/// For each slot, the `(node index, mined)` votes of the nodes that have an outcome for it.
fn votes(nodes: &[(String, Analysis)]) -> BTreeMap<u64, Vec<(usize, bool)>> {
    let mut votes: BTreeMap<u64, Vec<(usize, bool)>> = BTreeMap::new();
    for (i, (_, analysis)) in nodes.iter().enumerate() {
        for (slot, mined) in analysis.outcomes.iter() {
            votes.entry(slot).or_default().push((i, mined));
        }
    }
    votes
}

/// The strict-majority outcome among at least two votes; `None` for a tie, a single vote or
/// unanimity (nothing to dispute).
fn majority(votes: &[(usize, bool)]) -> Option<bool> {
    let mined = votes.iter().filter(|&&(_, m)| m).count();
    let missed = votes.len() - mined;
    if votes.len() < 2 || mined == missed || mined == 0 || missed == 0 {
        return None;
    }
    Some(mined > missed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::testdoc::{params, Doc};
    use crate::integrity::{analyse_stats, IntegrityStatus};

    const EPOCHS: std::ops::Range<u64> = 99..110;

    /// A healthy node over epochs 100..110; `flip` turns one slot's proposer record into a miss.
    fn node(name: &str, flip: Option<u64>) -> (String, Analysis) {
        let mut doc = Doc::new();
        for epoch in EPOCHS {
            doc.epoch(epoch, &["checkpoint-mined"]);
        }
        if let Some(slot) = flip {
            doc.set_proposer_status(slot, "checkpoint-missed");
        }
        doc.last_processed(110 * 32 + 3);
        let analysis = analyse_stats(doc.json().as_bytes(), &params()).unwrap();
        (name.to_owned(), analysis)
    }

    #[test]
    fn minority_node_epoch_becomes_inconsistent() {
        let flipped = 105 * 32 + 7;
        let mut nodes = vec![node("a", None), node("b", None), node("c", Some(flipped))];
        // Self-consistent before consensus: the flipped node still scores 100.
        assert_eq!(nodes[2].1.verdict.score, 100);
        assert_eq!(nodes[2].1.outcomes.get(flipped), Some(false));
        apply_consensus(&mut nodes, &params());
        for (_, a) in &nodes[..2] {
            assert_eq!((a.verdict.score, a.verdict.status), (100, IntegrityStatus::Perfect));
            assert!(a.verdict.inconsistent_epochs.is_empty());
        }
        let v = &nodes[2].1.verdict;
        assert_eq!(v.inconsistent_epochs, [105]);
        let report = v.epochs.iter().find(|r| r.epoch == 105).unwrap();
        // 100 − 40 − 30/32 → 59; node: mean (9 × 100 + 59) / 10 = 95.9 → 96 → good at 95.
        assert_eq!(report.score, 59);
        assert_eq!(report.issues, [format!("slot {flipped}: proposer outcome missed here, mined on a, b")]);
        assert_eq!((v.score, v.status), (96, IntegrityStatus::Good));
    }

    #[test]
    fn idempotent_and_reversible() {
        let flipped = 103 * 32;
        let mut nodes = vec![node("a", None), node("b", Some(flipped)), node("c", None)];
        apply_consensus(&mut nodes, &params());
        apply_consensus(&mut nodes, &params());
        let report = nodes[1].1.verdict.epochs.iter().find(|r| r.epoch == 103).unwrap();
        assert_eq!(report.issues.len(), 1, "{:?}", report.issues);
        assert_eq!(nodes[1].1.verdict.score, 96);
        // Without the majority the dispute disappears on the next round.
        let mut pair = vec![nodes.remove(0), nodes.remove(0)];
        apply_consensus(&mut pair, &params());
        assert_eq!(pair[1].1.verdict.score, 100);
        assert!(pair[1].1.verdict.inconsistent_epochs.is_empty());
    }

    #[test]
    fn two_nodes_disagreeing_is_a_tie() {
        let mut nodes = vec![node("a", None), node("b", Some(104 * 32 + 1))];
        apply_consensus(&mut nodes, &params());
        for (_, a) in &nodes {
            assert_eq!(a.verdict.score, 100);
            assert!(a.verdict.inconsistent_epochs.is_empty());
        }
    }

    #[test]
    fn majority_table() {
        let v = |xs: &[bool]| xs.iter().copied().enumerate().collect::<Vec<_>>();
        #[rustfmt::skip]
        let table: &[(&[bool], Option<bool>)] = &[
            (&[true], None),
            (&[true, false], None),
            (&[true, true], None),
            (&[true, true, false], Some(true)),
            (&[false, false, true], Some(false)),
            (&[true, false, true, false], None),
        ];
        for (xs, want) in table {
            assert_eq!(majority(&v(xs)), *want, "{xs:?}");
        }
    }

    #[test]
    fn unknown_nodes_do_not_vote() {
        let disabled = analyse_stats(br#"{"stats":{},"slotWindow":0}"#, &params()).unwrap();
        let mut nodes = vec![node("a", None), node("b", Some(102 * 32)), ("off".to_owned(), disabled)];
        apply_consensus(&mut nodes, &params());
        assert_eq!(nodes[1].1.verdict.score, 100);
        assert_eq!(nodes[2].1.verdict.status, IntegrityStatus::SentinelOff);
    }
}
