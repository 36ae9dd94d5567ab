//! Window selection and per-epoch counting (docs/integrity.md#window): turns a parsed document into an
//! [`Analysis`].
//!
//! Two passes over the parsed records: the first finds the history's shape (oldest and newest
//! slot, the retention-cap cut), which fixes the window; the second counts only the window's
//! records, by family, into one [`EpochTally`] per window epoch and records each slot's proposer
//! outcome for consensus.

use std::collections::BTreeMap;

use super::parse::{family, Family, StatsDoc};
use super::score::EpochTally;
use super::verdict::{Analysis, NodeKind, SlotOutcomes, Verdict};
use super::{IntegrityParams, IntegrityStatus};

/// Oldest and newest record slots, and the newest first-record slot among validators whose
/// history reached the retention cap (`slotWindow` entries).
struct Shape {
    oldest: u64,
    newest: u64,
    capped_first: Option<u64>,
}

/// The epochs `first..end` analysed, and what cut the window's start if anything did.
struct Window {
    first: u64,
    end: u64,
    cut: Option<(u64, &'static str)>,
}

/// Analyse a parsed document; parameters are already validated.
pub(super) fn analyse_doc(doc: &StatsDoc<'_>, params: &IntegrityParams) -> Analysis {
    if doc.slot_window == Some(0) {
        return Analysis::unjudged(IntegrityStatus::SentinelOff, "sentinel disabled (slotWindow 0)");
    }
    let Some(shape) = shape(doc) else {
        return Analysis::unjudged(IntegrityStatus::Unknown, "sentinel history is empty");
    };
    let s = params.slots_per_epoch;
    let window = window(doc, &shape, params);
    let (tallies, outcomes) = tally(doc, &window, s);
    let depth_epochs = shape.newest / s - shape.oldest / s + 1;
    let kind = if depth_epochs > params.archiver_threshold_epochs { NodeKind::Archiver } else { NodeKind::Pruned };
    let mut analysis = Analysis {
        verdict: Verdict {
            score: 0,
            status: IntegrityStatus::Unknown,
            kind,
            depth_epochs,
            missing_epochs: Vec::new(),
            inconsistent_epochs: Vec::new(),
            epochs: Vec::new(),
            reason: short_window_reason(&window, params.check_epochs),
        },
        outcomes,
        tallies,
        scored: true,
        duties: super::WatchedDuties::default(),
    };
    analysis.rescore(params);
    analysis
}

/// First pass; `None` when there is no record at all.
fn shape(doc: &StatsDoc<'_>) -> Option<Shape> {
    let cap = doc.slot_window.filter(|&w| w > 0);
    let mut shape: Option<Shape> = None;
    for v in &doc.stats.0 {
        let Some(first) = v.history.iter().map(|r| r.slot).min() else {
            continue;
        };
        let last = v.history.iter().map(|r| r.slot).max().unwrap_or(first);
        let capped = cap.is_some_and(|c| v.history.len() as u64 >= c).then_some(first);
        let sh = shape.get_or_insert(Shape { oldest: first, newest: last, capped_first: None });
        sh.oldest = sh.oldest.min(first);
        sh.newest = sh.newest.max(last);
        sh.capped_first = sh.capped_first.max(capped);
    }
    shape
}

/// The `check_epochs` epochs before the epoch of `lastProcessedSlot` (or, when the node did not
/// report it, of the highest recorded slot + 1), minus every epoch at or before the epoch of
/// `initialSlot`, of the oldest record, or of the first record of a capped validator.
fn window(doc: &StatsDoc<'_>, shape: &Shape, params: &IntegrityParams) -> Window {
    let s = params.slots_per_epoch;
    let last_slot = doc.last_processed_slot.unwrap_or(shape.newest.saturating_add(1));
    let end = last_slot / s;
    let start = end.saturating_sub(params.check_epochs);
    let cuts = [
        (doc.initial_slot.map(|x| x / s), "initialSlot"),
        (Some(shape.oldest / s), "start of history"),
        (shape.capped_first.map(|x| x / s), "retention cap (slotWindow)"),
    ];
    let cut =
        cuts.iter().filter_map(|&(epoch, why)| epoch.map(|e| (e, why))).fold(None, |best: Option<(u64, &str)>, c| {
            match best {
                Some(b) if b.0 >= c.0 => Some(b),
                _ => Some(c),
            }
        });
    let first = match cut {
        Some((e, _)) => start.max(e.saturating_add(1)),
        None => start,
    };
    Window { first: first.min(end), end, cut }
}

/// Second pass: counts per window epoch and proposer outcome per window slot.
fn tally(doc: &StatsDoc<'_>, w: &Window, s: u64) -> (Vec<EpochTally>, SlotOutcomes) {
    let mut tallies: Vec<EpochTally> = (w.first..w.end).map(EpochTally::new).collect();
    // Last validator index counted in each epoch's V: a validator's records are visited together.
    let mut last_counted = vec![usize::MAX; tallies.len()];
    let mut outcomes: BTreeMap<u64, bool> = BTreeMap::new();
    for (vi, v) in doc.stats.0.iter().enumerate() {
        for r in &v.history {
            let epoch = r.slot / s;
            if epoch < w.first || epoch >= w.end {
                continue;
            }
            // In range: fits usize because the window length does.
            let i = (epoch - w.first) as usize;
            let t = &mut tallies[i];
            if last_counted[i] != vi {
                last_counted[i] = vi;
                t.validators += 1;
            }
            match family(&r.status) {
                Family::Attested => {
                    t.attested += 1;
                    *outcomes.entry(r.slot).or_insert(false) |= mined_on_l1(&r.status);
                }
                Family::Missed => {
                    t.missed += 1;
                    outcomes.entry(r.slot).or_insert(false);
                }
                Family::Attestation => t.attestations += 1,
                Family::Other => t.other += 1,
            }
        }
    }
    (tallies, SlotOutcomes::from_sorted(outcomes.into_iter().collect()))
}

/// Whether a proposer status says the block/checkpoint landed on L1. Only this is
/// deterministic across nodes (docs/aztec-api.md#determinism): `checkpoint-valid`, `-invalid`,
/// `-unvalidated`, `-proposed` come from each node's own p2p view and re-execution, so two
/// honest nodes may differ on them; consensus compares mined vs not mined only.
fn mined_on_l1(status: &str) -> bool {
    matches!(status, "block-mined" | "checkpoint-mined")
}

/// Explains a window shorter than `check_epochs`.
fn short_window_reason(w: &Window, check_epochs: u64) -> Option<String> {
    let len = w.end - w.first;
    if len >= check_epochs {
        return None;
    }
    Some(match w.cut {
        Some((epoch, why)) if w.end.saturating_sub(check_epochs) <= epoch => {
            format!("analysed {len} of {check_epochs} epochs: epochs up to {epoch} cut by {why}")
        }
        _ => format!("analysed {len} of {check_epochs} epochs: the chain has no older epochs"),
    })
}
