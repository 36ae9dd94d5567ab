//! Unit tests of `validators`.

use super::*;
use Duty::{AttestationMissed as AM, AttestationSent as AS, ProposalMined as PM, ProposalMissed as PX};

const S: u64 = 10;

/// A node covering `covered` epochs with validator 0's `records` (present unless `None`).
fn node(covered: &[u64], records: Option<&[(u64, Duty)]>) -> WatchedDuties {
    WatchedDuties {
        sentinel_off: false,
        covered: covered.to_vec(),
        gaps: Vec::new(),
        present: vec![records.is_some()],
        records: vec![records.unwrap_or(&[]).to_vec()],
    }
}

fn one(nodes: &[WatchedDuties]) -> ValidatorEntry {
    let named: Vec<(String, &WatchedDuties)> = nodes.iter().enumerate().map(|(i, d)| (format!("n{i}"), d)).collect();
    let refs: Vec<(&str, &WatchedDuties)> = named.iter().map(|(n, d)| (n.as_str(), *d)).collect();
    judge(&["0xv".to_owned()], &refs, S, Some(1)).validators.remove(0)
}

fn states(e: &ValidatorEntry) -> Vec<(u64, EpochState)> {
    e.epochs.iter().map(|c| (c.epoch, c.state)).collect()
}

#[test]
fn table() {
    use EpochState::{Disputed as D, Idle as I, Missed as M, Ok as K, Uncovered as U};
    let all = [1, 2, 3, 4];
    let healthy: &[(u64, Duty)] = &[(10, AS), (11, PM), (30, AS), (41, AS)];
    let offline: &[(u64, Duty)] = &[(10, AS), (21, AM), (31, PX), (32, AM), (41, AM)];
    let blind: &[(u64, Duty)] = &[(10, AS), (11, PM), (41, AS)];
    // (case, nodes, status, states, streak, missed attestations, missed proposals, last duty slot)
    #[allow(clippy::type_complexity)]
    let cases: Vec<(&str, Vec<WatchedDuties>, WatchStatus, Vec<(u64, EpochState)>, u64, u64, u64, Option<u64>)> = vec![
        (
            "healthy, two nodes agree",
            vec![node(&all, Some(healthy)), node(&all, Some(healthy))],
            WatchStatus::Healthy,
            vec![(1, K), (2, I), (3, K), (4, K)],
            0,
            0,
            0,
            Some(41),
        ),
        (
            "offline from epoch 2, streak 3",
            vec![node(&all, Some(offline)), node(&all, Some(offline))],
            WatchStatus::MissingDuties,
            vec![(1, K), (2, M), (3, M), (4, M)],
            3,
            3,
            1,
            Some(10),
        ),
        (
            "one node blind for epoch 3: disputed, not missed",
            vec![node(&all, Some(healthy)), node(&all, Some(blind))],
            WatchStatus::Healthy,
            vec![(1, K), (2, I), (3, D), (4, K)],
            0,
            0,
            0,
            Some(41),
        ),
        (
            "a node's gap never counts",
            vec![node(&all, Some(offline)), node(&[1, 2, 4], Some(&[(10, AS), (21, AM), (41, AM)]))],
            WatchStatus::MissingDuties,
            vec![(1, K), (2, M), (3, M), (4, M)],
            3,
            3,
            1,
            Some(10),
        ),
        (
            "nodes disagree on a miss",
            vec![node(&all, Some(offline)), node(&all, Some(&[(10, AS), (21, AS), (31, PX), (32, AM), (41, AM)]))],
            WatchStatus::MissingDuties,
            vec![(1, K), (2, D), (3, M), (4, M)],
            2,
            2,
            1,
            Some(10),
        ),
        (
            "a success ends the streak; idle and disputed epochs do not",
            vec![
                node(&[1, 2, 3, 4, 5], Some(&[(10, AM), (21, AS), (41, AM), (51, AM)])),
                node(&[1, 2, 3, 4, 5], Some(&[(10, AM), (21, AS), (41, AS), (51, AM)])),
            ],
            WatchStatus::MissingDuties,
            vec![(1, M), (2, K), (3, I), (4, D), (5, M)],
            1,
            2,
            0,
            Some(21),
        ),
        (
            "unseen address",
            vec![node(&all, None), node(&all, None)],
            WatchStatus::Unknown,
            vec![(1, I), (2, I), (3, I), (4, I)],
            0,
            0,
            0,
            None,
        ),
        ("no node analysed", vec![], WatchStatus::Unknown, vec![], 0, 0, 0, None),
        (
            "uncovered epochs",
            vec![WatchedDuties { gaps: vec![2], ..node(&[1], Some(&[(10, AS)])) }, node(&[3], Some(&[]))],
            WatchStatus::Healthy,
            vec![(1, K), (2, U), (3, I)],
            0,
            0,
            0,
            Some(10),
        ),
    ];
    for (case, nodes, status, want_states, streak, ma, mp, last) in cases {
        let e = one(&nodes);
        assert_eq!(e.status, status, "{case}");
        assert_eq!(states(&e), want_states, "{case}");
        assert_eq!(e.missed_streak_epochs, streak, "{case}");
        assert_eq!((e.counts.missed_attestations, e.counts.missed_proposals), (ma, mp), "{case}");
        assert_eq!(e.last_duty_slot, last, "{case}");
        let disputed: Vec<u64> = want_states.iter().filter(|(_, s)| *s == D).map(|(e, _)| *e).collect();
        assert_eq!(e.disputed_epochs, disputed, "{case}");
    }
}

#[test]
fn sentinel_off_node_says_nothing() {
    let off =
        WatchedDuties { sentinel_off: true, present: vec![false], records: vec![Vec::new()], ..Default::default() };
    let e = one(&[off.clone(), node(&[1, 2], Some(&[(10, AS), (21, AM)]))]);
    assert_eq!(e.status, WatchStatus::MissingDuties);
    assert_eq!(e.missed_streak_epochs, 1);
    assert!(e.nodes["n0"].sentinel_off && !e.nodes["n0"].seen);
    let e = one(&[off]);
    assert_eq!((e.status, e.epochs.len()), (WatchStatus::Unknown, 0));
}

#[test]
fn node_views_keep_their_own_counts() {
    let e = one(&[node(&[1, 2], Some(&[(10, AS), (21, AM)])), node(&[1, 2], Some(&[(10, AS), (21, AS)]))]);
    assert_eq!(e.nodes["n0"].counts.missed_attestations, 1);
    assert_eq!(e.nodes["n1"].counts.attestations_sent, 2);
    assert_eq!((e.counts.attestations_sent, e.counts.missed_attestations), (1, 0));
    assert_eq!(e.disputed_epochs, [2]);
}

#[test]
fn report_serialises_the_documented_fields() {
    let n = node(&[1], Some(&[(10, AS)]));
    let r = judge(&["0xv".to_owned()], &[("a", &n)], S, Some(7));
    let v = serde_json::to_value(&r).unwrap();
    let e = &v["validators"][0];
    for key in [
        "address",
        "status",
        "missed_attestations",
        "missed_proposals",
        "missed_streak_epochs",
        "last_duty_slot",
        "disputed_epochs",
        "nodes",
    ] {
        assert!(e.get(key).is_some(), "{key} in {e}");
    }
    assert_eq!(e["nodes"]["a"]["seen"], true);
    assert_eq!(e["epochs"][0]["state"], "ok");
    assert_eq!(ValidatorReport::pending(&["0xv".to_owned()]).validators[0].status, WatchStatus::Unknown);
}

#[test]
fn addresses() {
    assert!(valid_address("0x00000000000000000000000000000000000000aB"));
    for bad in [
        "",
        "0x",
        "00000000000000000000000000000000000000000a",
        "0x0000000000000000000000000000000000000g0a",
        "0x000000000000000000000000000000000000000",
    ] {
        assert!(!valid_address(bad), "{bad}");
    }
}
