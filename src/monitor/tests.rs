//! Unit tests of `monitor`.

use super::*;

#[test]
fn corroborated_tip_ignores_one_runaway() {
    assert_eq!(corroborated_tip(vec![]), None);
    assert_eq!(corroborated_tip(vec![5, 9]), Some(9));
    assert_eq!(corroborated_tip(vec![100, 1_000_000, 99]), Some(100));
}

#[test]
fn judge_table() {
    use crate::health::Tips;
    let config = Config::for_tests(&["http://127.0.0.1:1"]);
    let max = config.max_block_lag;
    let network = Network { rollup: Some(7), chain: Some(1) };
    let good = || Probe {
        ready: true,
        tips: Some(Tips { proposed: 100, proven: Some(90), finalized: Some(80) }),
        rollup_version: Some(7),
        l1_chain_id: Some(1),
        ..Probe::default()
    };
    let with = |f: &dyn Fn(&mut Probe)| {
        let mut p = good();
        f(&mut p);
        Ok(p)
    };
    let table: Vec<(&str, Result<Probe, ProbeError>, Option<Unroutable>)> = vec![
        ("healthy", Ok(good()), None),
        ("failed", Err(ProbeError::NoTipsMethod), Some(Unroutable::ProbeFailed(ProbeError::NoTipsMethod))),
        ("not ready", with(&|p| p.ready = false), Some(Unroutable::NotReady)),
        ("rollup", with(&|p| p.rollup_version = Some(8)), Some(Unroutable::OtherRollup { got: 8, expected: 7 })),
        ("chain", with(&|p| p.l1_chain_id = Some(2)), Some(Unroutable::OtherChain { got: 2, expected: 1 })),
        ("no tips", with(&|p| p.tips = None), Some(Unroutable::TipsUnreadable)),
        (
            "tip 0",
            with(&|p| p.tips = Some(Tips { proposed: 0, proven: None, finalized: None })),
            Some(Unroutable::NotSynced),
        ),
        (
            "proven above",
            with(&|p| p.tips = Some(Tips { proposed: 100, proven: Some(101), finalized: None })),
            Some(Unroutable::ProvenAboveProposed),
        ),
        (
            "lagging",
            with(&|p| p.tips = Some(Tips { proposed: 100 - max - 1, proven: None, finalized: None })),
            Some(Unroutable::Lagging { lag: max + 1, tip: 100, max }),
        ),
        ("within lag", with(&|p| p.tips = Some(Tips { proposed: 100 - max, proven: None, finalized: None })), None),
    ];
    for (name, probe, want) in table {
        let h = judge(&config, &probe, Some(100), &network, &Health::default());
        assert_eq!(h.reason, want, "{name}");
        assert_eq!(h.healthy, want.is_none(), "{name}");
    }
}
