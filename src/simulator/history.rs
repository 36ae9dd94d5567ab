//! Sentinel history model: who proposed and attested in which slot, and with what status.
//!
//! Everything is a pure function of the chain seed and slot numbers, so every healthy node of
//! one network reports the same committee, proposer and mined-ness for a slot. A `Model` is
//! built for one `lastProcessedSlot` and profile; `state::NodeState` caches the model together
//! with its serialized JSON and rebuilds both only when the slot or the profile changes.
//!
//! Healthy shape per epoch (what docs/integrity.md#epoch-score scores 100): exactly one proposer record per slot,
//! every non-proposer committee member gets one attestation record for each slot whose proposer
//! status is in the "attested" family, and exactly `committee_size` distinct validators.
//!
//! Network noise (a proposer missing its slot, an attester missing one attestation) only ever
//! hits the *flaky* quarter of the validator set (index ≡ 3 mod 4); the others never miss a
//! duty unless the `offline_validators` fault takes them offline, so a watched validator's
//! misses in tests are exactly the ones a test caused.

use super::chain::Chain;
use super::config::{ApiVersion, HistoryProfile, SimConfig, ARCHIVE_DEPTH_EPOCHS};
use super::encode::hash3;
use super::faults::{Faults, ValidatorEpochs, ValidatorRef};
use super::stats::validator_index;

/// `slotWindow` of archive-like nodes, in epochs (the "very large" history length).
const ARCHIVE_WINDOW_EPOCHS: u64 = 10_000;

/// Seed lanes for the different per-slot decisions.
const LANE_COMMITTEE: u64 = 100;
const LANE_PROPOSER: u64 = 101;
const LANE_CLASS: u64 = 102;
const LANE_VARIANT: u64 = 103;
const LANE_ATTEST: u64 = 104;
const LANE_FLIP: u64 = 105;
const LANE_CORRUPT: u64 = 106;

/// One status a validator can have in a slot (docs/aztec-api.md#statuses), across all versions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    BlockMined,
    BlockProposed,
    BlockMissed,
    CheckpointMined,
    CheckpointProposed,
    CheckpointMissed,
    BlocksMissed,
    CheckpointValid,
    CheckpointInvalid,
    CheckpointUnpublished,
    CheckpointOrphaned,
    AttestationSent,
    AttestationMissed,
}

impl Status {
    /// The wire name.
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Status::BlockMined => "block-mined",
            Status::BlockProposed => "block-proposed",
            Status::BlockMissed => "block-missed",
            Status::CheckpointMined => "checkpoint-mined",
            Status::CheckpointProposed => "checkpoint-proposed",
            Status::CheckpointMissed => "checkpoint-missed",
            Status::BlocksMissed => "blocks-missed",
            Status::CheckpointValid => "checkpoint-valid",
            Status::CheckpointInvalid => "checkpoint-invalid",
            Status::CheckpointUnpublished => "checkpoint-unpublished",
            Status::CheckpointOrphaned => "checkpoint-orphaned",
            Status::AttestationSent => "attestation-sent",
            Status::AttestationMissed => "attestation-missed",
        }
    }

    /// Whether this is an attester record (as opposed to a proposer record).
    pub(crate) fn is_attestation(self) -> bool {
        matches!(self, Status::AttestationSent | Status::AttestationMissed)
    }

    /// Whether this record counts as missed in its category.
    pub(crate) fn is_missed(self) -> bool {
        matches!(
            self,
            Status::BlockMissed
                | Status::CheckpointMissed
                | Status::BlocksMissed
                | Status::CheckpointInvalid
                | Status::AttestationMissed
        )
    }

    /// Whether this proposer record updates `lastProposal`.
    pub(crate) fn is_proposal(self) -> bool {
        matches!(
            self,
            Status::BlockMined
                | Status::BlockProposed
                | Status::CheckpointMined
                | Status::CheckpointProposed
                | Status::CheckpointValid
        )
    }
}

/// What happened to a slot's proposal, independent of the version's vocabulary.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    /// Landed on L1 (the only thing nodes must agree on).
    Mined,
    /// Produced and attested, but not (yet) on L1.
    Attested,
    /// No valid proposal: no attestations expected.
    Missed,
}

/// The slot range a history covers and the numbers reported beside it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Window {
    pub(crate) last_processed: u64,
    pub(crate) initial_slot: u64,
    pub(crate) slot_window: u64,
    /// First slot with records: `max(initial_slot + 1, last_processed - slot_window)`.
    pub(crate) from_slot: u64,
}

impl Window {
    /// The window of a node whose current slot is `current_slot`.
    pub(crate) fn new(cfg: &SimConfig, profile: HistoryProfile, current_slot: u64) -> Self {
        let spe = cfg.slots_per_epoch.max(1);
        let depth = cfg.history_epochs * spe;
        let archive = profile == HistoryProfile::Archiver || cfg.history_epochs > ARCHIVE_DEPTH_EPOCHS;
        // Pruned nodes have run longer than they keep: the read window, not the start, cuts them.
        let ran_for = if archive { depth } else { 2 * depth };
        let last_processed = current_slot.saturating_sub(2);
        let initial_slot = last_processed.saturating_sub(ran_for + spe / 2 + 1);
        let slot_window = if archive { ARCHIVE_WINDOW_EPOCHS * spe } else { depth };
        let from_slot = (initial_slot + 1).max(last_processed.saturating_sub(slot_window));
        Window { last_processed, initial_slot, slot_window, from_slot }
    }
}

/// The whole sentinel history of one node at one `lastProcessedSlot`.
#[derive(Debug)]
pub(crate) struct Model {
    pub(crate) window: Window,
    pub(crate) version: ApiVersion,
    /// Per validator (index into the validator set), records in ascending slot order.
    pub(crate) entries: Vec<Vec<(u64, Status)>>,
}

/// Inputs of one model build.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    pub(crate) chain: Chain,
    pub(crate) version: ApiVersion,
    pub(crate) profile: HistoryProfile,
    pub(crate) window: Window,
    pub(crate) duties: DutyFaults,
}

/// The duty faults (`offline_validators`, `blind_validators`) resolved to validator indices:
/// `(index, first epoch, last epoch)`, both ends inclusive.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct DutyFaults {
    offline: Vec<(u64, u64, u64)>,
    blind: Vec<(u64, u64, u64)>,
}

impl DutyFaults {
    /// Resolves the faults' indices and addresses on `chain` (unknown ones are ignored).
    pub(crate) fn resolve(faults: &Faults, chain: &Chain) -> DutyFaults {
        let resolve = |list: &[ValidatorEpochs]| -> Vec<(u64, u64, u64)> {
            let n = validator_count(chain);
            let mut out = Vec::new();
            for range in list {
                let to = range.to_epoch.unwrap_or(u64::MAX);
                for v in &range.validators {
                    let idx = match v {
                        ValidatorRef::Index(i) => Some(*i).filter(|&i| i < n),
                        ValidatorRef::Address(a) => validator_index(chain, a).map(|i| i as u64),
                    };
                    out.extend(idx.map(|i| (i, range.from_epoch, to)));
                }
            }
            out
        };
        DutyFaults { offline: resolve(&faults.offline_validators), blind: resolve(&faults.blind_validators) }
    }

    fn hit(list: &[(u64, u64, u64)], idx: u64, epoch: u64) -> bool {
        list.iter().any(|&(i, from, to)| i == idx && (from..=to).contains(&epoch))
    }

    /// Validator `idx` does no duty in `epoch`.
    fn offline(&self, idx: u64, epoch: u64) -> bool {
        Self::hit(&self.offline, idx, epoch)
    }

    /// This node does not record validator `idx` in `epoch`.
    fn blind(&self, idx: u64, epoch: u64) -> bool {
        Self::hit(&self.blind, idx, epoch)
    }
}

/// Whether random network noise may make validator `idx` miss a duty (one in four).
pub(crate) fn flaky(idx: u64) -> bool {
    idx % 4 == 3
}

/// Size of the validator set: twice the committee.
pub(crate) fn validator_count(chain: &Chain) -> u64 {
    chain.committee_size * 2
}

/// The committee of `epoch`, in proposer-selection order (indices into the validator set).
pub(crate) fn committee(chain: &Chain, epoch: u64) -> Vec<u64> {
    let mut keyed: Vec<(u64, u64)> =
        (0..validator_count(chain)).map(|i| (hash3(chain.seed ^ LANE_COMMITTEE, epoch, i), i)).collect();
    keyed.sort_unstable();
    keyed.truncate(chain.committee_size as usize);
    keyed.into_iter().map(|(_, i)| i).collect()
}

fn class_of(seed: u64, slot: u64) -> Class {
    match hash3(seed, LANE_CLASS, slot) % 100 {
        0..=3 => Class::Missed,
        4..=8 => Class::Attested,
        _ => Class::Mined,
    }
}

fn proposer_status(version: ApiVersion, class: Class, variant: u64) -> Status {
    match (version, class) {
        (ApiVersion::V3, Class::Mined) => Status::BlockMined,
        (ApiVersion::V3, Class::Attested) => Status::BlockProposed,
        (ApiVersion::V3, Class::Missed) => Status::BlockMissed,
        (_, Class::Mined) => Status::CheckpointMined,
        (ApiVersion::V4, Class::Attested) => Status::CheckpointProposed,
        (ApiVersion::V4, Class::Missed) => [Status::CheckpointMissed, Status::BlocksMissed][(variant % 2) as usize],
        (ApiVersion::V5, Class::Attested) => Status::CheckpointValid,
        (_, Class::Attested) => {
            [Status::CheckpointValid, Status::CheckpointUnpublished, Status::CheckpointOrphaned][(variant % 3) as usize]
        }
        (_, Class::Missed) => {
            [Status::CheckpointMissed, Status::BlocksMissed, Status::CheckpointInvalid][(variant % 3) as usize]
        }
    }
}

/// How a corrupted node damages one epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Damage {
    None,
    LostAttestations,
    ExtraValidators,
    MissingProposers,
}

fn damage(profile: HistoryProfile, epoch: u64) -> Damage {
    // One epoch in three, cycling through the kinds: any ten consecutive epochs hold three or
    // four damaged epochs of all three kinds.
    if profile != HistoryProfile::Corrupted || epoch % 3 != 1 {
        return Damage::None;
    }
    match (epoch / 3) % 3 {
        0 => Damage::LostAttestations,
        1 => Damage::ExtraValidators,
        _ => Damage::MissingProposers,
    }
}

/// Whether a gapped node has no records at all for `epoch` (one epoch in five, so two in any
/// ten consecutive epochs).
pub(crate) fn is_gap(profile: HistoryProfile, epoch: u64) -> bool {
    profile == HistoryProfile::Gapped && epoch % 5 == 3
}

impl Model {
    /// Builds the history described by `spec`.
    pub(crate) fn build(spec: &Spec) -> Model {
        let chain = &spec.chain;
        let w = spec.window;
        let n = validator_count(chain) as usize;
        let mut entries: Vec<Vec<(u64, Status)>> = vec![Vec::new(); n];
        if spec.profile != HistoryProfile::Disabled && w.last_processed >= w.from_slot {
            let slots = w.last_processed - w.from_slot + 1;
            let per_validator = (slots as usize / 2 + 8).min(1 << 20);
            entries.iter_mut().for_each(|e| e.reserve(per_validator));
            let mut epoch_committee: Option<(u64, Vec<u64>)> = None;
            for slot in w.from_slot..=w.last_processed {
                let epoch = slot / chain.slots_per_epoch;
                if is_gap(spec.profile, epoch) {
                    continue;
                }
                if epoch_committee.as_ref().map(|(e, _)| *e) != Some(epoch) {
                    epoch_committee = Some((epoch, committee(chain, epoch)));
                }
                let members = epoch_committee.as_ref().map_or(&[][..], |(_, c)| c.as_slice());
                record_slot(spec, slot, epoch, members, &mut entries);
            }
        }
        if !spec.duties.blind.is_empty() {
            let spe = chain.slots_per_epoch;
            for (idx, list) in entries.iter_mut().enumerate() {
                list.retain(|&(slot, _)| !spec.duties.blind(idx as u64, slot / spe));
            }
        }
        for list in &mut entries {
            // Retention: the store keeps each validator's last `slot_window` entries.
            let keep = usize::try_from(w.slot_window).unwrap_or(usize::MAX);
            if list.len() > keep {
                list.drain(..list.len() - keep);
            }
        }
        Model { window: w, version: spec.version, entries }
    }
}

/// Appends the records of one slot.
fn record_slot(spec: &Spec, slot: u64, epoch: u64, members: &[u64], entries: &mut [Vec<(u64, Status)>]) {
    let seed = spec.chain.seed;
    let corrupted = spec.profile == HistoryProfile::Corrupted;
    let damage = damage(spec.profile, epoch);
    let proposer = members[(hash3(seed, LANE_PROPOSER, slot) % members.len() as u64) as usize];
    let mut class = class_of(seed, slot);
    if class == Class::Missed && !flaky(proposer) {
        class = Class::Mined;
    }
    if spec.duties.offline(proposer, epoch) {
        class = Class::Missed;
    }
    if corrupted && hash3(seed, LANE_FLIP, slot).is_multiple_of(8) {
        class = match class {
            Class::Mined => Class::Attested,
            Class::Attested => Class::Mined,
            Class::Missed => Class::Missed,
        };
    }
    let status = proposer_status(spec.version, class, hash3(seed, LANE_VARIANT, slot));
    let drop_proposer = damage == Damage::MissingProposers && hash3(seed, LANE_CORRUPT, slot).is_multiple_of(4);
    if !drop_proposer {
        entries[proposer as usize].push((slot, status));
    }
    if class == Class::Missed {
        return;
    }
    for &m in members.iter().filter(|&&m| m != proposer) {
        let roll = hash3(seed ^ LANE_ATTEST, slot, m);
        if damage == Damage::LostAttestations && roll.is_multiple_of(2) {
            continue;
        }
        let missed = (flaky(m) && roll % 40 == 7) || spec.duties.offline(m, epoch);
        let att = if missed { Status::AttestationMissed } else { Status::AttestationSent };
        entries[m as usize].push((slot, att));
    }
    if damage == Damage::ExtraValidators {
        let outsiders = (0..entries.len() as u64).filter(|i| !members.contains(i)).take(3);
        for v in outsiders {
            entries[v as usize].push((slot, Status::AttestationSent));
        }
    }
}

#[cfg(test)]
mod tests;
