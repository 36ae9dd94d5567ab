//! Unit tests of `history`.

use super::*;
use crate::simulator::faults::Faults;
use std::collections::{BTreeMap, BTreeSet};

fn spec(profile: HistoryProfile, version: ApiVersion) -> Spec {
    let mut cfg = SimConfig::for_tests(version);
    cfg.history = profile;
    let chain = Chain::new(&cfg);
    let slot = chain.slot_of(cfg.initial_block);
    Spec { chain, version, profile, window: Window::new(&cfg, profile, slot), duties: DutyFaults::default() }
}

/// (A, M, T, V) per epoch, the quantities docs/integrity.md#epoch-score scores.
fn per_epoch(model: &Model, spe: u64) -> BTreeMap<u64, (u64, u64, u64, BTreeSet<usize>)> {
    let mut out: BTreeMap<u64, (u64, u64, u64, BTreeSet<usize>)> = BTreeMap::new();
    for (v, list) in model.entries.iter().enumerate() {
        for &(slot, status) in list {
            let e = out.entry(slot / spe).or_default();
            e.3.insert(v);
            if status.is_attestation() {
                e.2 += 1;
            } else if status.is_missed() {
                e.1 += 1;
            } else {
                e.0 += 1;
            }
        }
    }
    out
}

#[test]
fn healthy_epochs_are_consistent() {
    for version in [ApiVersion::V3, ApiVersion::V4, ApiVersion::V5, ApiVersion::V6] {
        let s = spec(HistoryProfile::Pruned, version);
        let model = Model::build(&s);
        let epochs = per_epoch(&model, 32);
        let last = s.window.last_processed / 32;
        let first = s.window.from_slot / 32;
        assert!(epochs.len() >= 24, "{}", epochs.len());
        for (&e, (a, m, t, v)) in &epochs {
            if e == first || e == last {
                continue;
            }
            assert_eq!(a + m, 32, "epoch {e}");
            assert_eq!(*t, a * 23, "epoch {e}");
            assert_eq!(v.len(), 24, "epoch {e}");
        }
    }
}

#[test]
fn mined_slots_agree_across_versions() {
    let mined = |version| {
        let model = Model::build(&spec(HistoryProfile::Pruned, version));
        let mut slots: Vec<u64> = model
            .entries
            .iter()
            .flatten()
            .filter(|(_, s)| matches!(s, Status::BlockMined | Status::CheckpointMined))
            .map(|(slot, _)| *slot)
            .collect();
        slots.sort_unstable();
        slots
    };
    assert_eq!(mined(ApiVersion::V3), mined(ApiVersion::V6));
    assert_ne!(
        mined(ApiVersion::V5),
        Model::build(&spec(HistoryProfile::Corrupted, ApiVersion::V5))
            .entries
            .iter()
            .flatten()
            .filter(|(_, s)| *s == Status::CheckpointMined)
            .map(|(slot, _)| *slot)
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect::<Vec<_>>()
    );
}

#[test]
fn only_flaky_or_offline_validators_miss_and_blind_spots_hide() {
    let base = spec(HistoryProfile::Pruned, ApiVersion::V6);
    let missed_by = |model: &Model| -> BTreeSet<usize> {
        let mut who = BTreeSet::new();
        for (v, list) in model.entries.iter().enumerate() {
            if list.iter().any(|(_, s)| s.is_missed()) {
                who.insert(v);
            }
        }
        who
    };
    let healthy = Model::build(&base);
    assert!(missed_by(&healthy).iter().all(|&v| flaky(v as u64)), "{:?}", missed_by(&healthy));
    let last = base.window.last_processed / 32;
    let faults = Faults {
        offline_validators: vec![ValidatorEpochs::from(vec![ValidatorRef::Index(0)], last - 3)],
        blind_validators: vec![ValidatorEpochs {
            validators: vec![ValidatorRef::Index(1)],
            from_epoch: last - 5,
            to_epoch: Some(last - 4),
        }],
        ..Faults::default()
    };
    let duties = DutyFaults::resolve(&faults, &base.chain);
    let model = Model::build(&Spec { duties, ..base });
    for &(slot, status) in &model.entries[0] {
        assert_eq!(status.is_missed(), slot / 32 >= last - 3, "slot {slot} {status:?}");
    }
    assert!(model.entries[0].iter().any(|(slot, _)| slot / 32 >= last - 3), "validator 0 had duties");
    assert!(model.entries[1].iter().all(|(slot, _)| !(last - 5..=last - 4).contains(&(slot / 32))));
    let before = healthy.entries[1].iter().filter(|(slot, _)| (last - 5..=last - 4).contains(&(slot / 32))).count();
    assert!(before > 0, "validator 1 had duties there");
}

#[test]
fn gapped_and_corrupted_damage_recent_epochs() {
    let s = spec(HistoryProfile::Gapped, ApiVersion::V5);
    let epochs = per_epoch(&Model::build(&s), 32);
    let last = s.window.last_processed / 32;
    let missing = (last - 10..last).filter(|e| !epochs.contains_key(e)).count();
    assert_eq!(missing, 2);

    let s = spec(HistoryProfile::Corrupted, ApiVersion::V5);
    let epochs = per_epoch(&Model::build(&s), 32);
    let bad = (last - 10..last)
        .filter(|e| {
            let (a, m, t, v) = &epochs[e];
            a + m != 32 || *t != a * 23 || v.len() != 24
        })
        .count();
    assert!(bad >= 2, "{bad}");
}
