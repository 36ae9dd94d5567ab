//! End-to-end tests: documents built with [`Doc`] go through parsing, windowing and scoring.

use super::testdoc::{params, Doc};
use super::*;

const S: u64 = 32;

/// Complete epochs `first..=last` with the given proposer statuses.
fn healthy(first: u64, last: u64, statuses: &[&str]) -> Doc {
    let mut doc = Doc::new();
    for epoch in first..=last {
        doc.epoch(epoch, statuses);
    }
    doc
}

fn verdict(doc: &Doc) -> Verdict {
    analyse_stats(doc.json().as_bytes(), &params()).unwrap().verdict
}

fn window(v: &Verdict) -> Vec<u64> {
    v.epochs.iter().map(|r| r.epoch).collect()
}

#[test]
fn every_version_scores_100_when_healthy() {
    let v4 = ["checkpoint-mined", "checkpoint-proposed", "checkpoint-missed", "blocks-missed"];
    #[rustfmt::skip]
    let versions: &[(&str, &[&str])] = &[
        ("v3", &["block-mined", "block-proposed", "block-missed"]),
        // The Go prototype only knew block-* names and scored such a node about 70.
        ("v4", &v4),
        ("v4, all mined", &["checkpoint-mined"]),
        ("v5", &["checkpoint-mined", "checkpoint-valid", "checkpoint-invalid", "checkpoint-unvalidated",
                 "checkpoint-missed", "blocks-missed"]),
        ("v6", &["checkpoint-mined", "checkpoint-unpublished", "checkpoint-orphaned", "checkpoint-valid",
                 "blocks-missed"]),
    ];
    for (name, statuses) in versions {
        let mut doc = healthy(99, 109, statuses);
        doc.last_processed(110 * S + 2).initial(98 * S + 5);
        let v = verdict(&doc);
        assert_eq!((v.score, v.status), (100, IntegrityStatus::Perfect), "{name}: {:?}", v.epochs);
        assert_eq!(window(&v), (100..110).collect::<Vec<_>>(), "{name}");
        assert!(v.missing_epochs.is_empty() && v.inconsistent_epochs.is_empty(), "{name}");
        assert_eq!(v.reason, None, "{name}");
        let wrapped = analyse_response(doc.response().as_bytes(), &params()).unwrap();
        assert_eq!(wrapped.verdict.score, 100, "{name} via response");
        assert_eq!(wrapped.outcomes, analyse_stats(doc.json().as_bytes(), &params()).unwrap().outcomes);
    }
}

#[test]
fn window_cuts() {
    // (name, history epochs, doc tweaks, expected window, reason fragment)
    type Row = (&'static str, (u64, u64), fn(&mut Doc), std::ops::Range<u64>, Option<&'static str>);
    #[rustfmt::skip]
    let table: &[Row] = &[
        ("full window", (99, 109), |_| {}, 100..110, None),
        // Shorter than check_epochs: still analysed (the prototype refused).
        ("history starts at 105", (105, 109), |_| {}, 106..110, Some("epochs up to 105 cut by start of history")),
        ("initialSlot in 104", (99, 109), |d| { d.initial(104 * S + 5); }, 105..110,
            Some("analysed 5 of 10 epochs: epochs up to 104 cut by initialSlot")),
        // Validator 5 holds 128 ≥ slotWindow records, the oldest in epoch 106: older ones were cut.
        ("retention cap", (99, 109), |d| { d.slot_window(120).drop_records(5, |s| s < 106 * S); }, 107..110,
            Some("epochs up to 106 cut by retention cap")),
        // Every validator holds exactly 352 = slotWindow records since epoch 99: nothing more is cut.
        ("everyone at the cap", (99, 109), |d| { d.slot_window(352); }, 100..110, None),
        ("no lastProcessedSlot", (99, 109), |d| { d.clear_last_processed(); }, 100..110, None),
        ("no lastProcessedSlot, partial tail", (99, 109), |d| {
            d.clear_last_processed();
            d.set_proposer_status(110 * S, "checkpoint-mined");
        }, 100..110, None),
        ("young chain", (0, 3), |d| { d.last_processed(4 * S); }, 1..4, Some("epochs up to 0 cut by start of history")),
        ("nothing complete yet", (99, 99), |d| { d.last_processed(100 * S + 3); }, 100..100,
            Some("analysed 0 of 10 epochs")),
    ];
    for (name, (first, last), tweak, want, reason) in table {
        let mut doc = healthy(*first, *last, &["checkpoint-mined"]);
        doc.last_processed((last + 1) * S + 2);
        tweak(&mut doc);
        let v = verdict(&doc);
        assert_eq!(window(&v), want.clone().collect::<Vec<_>>(), "{name}");
        assert_eq!(v.score, 100, "{name}: {:?}", v.epochs);
        match reason {
            Some(r) => assert!(v.reason.as_deref().unwrap_or("").contains(r), "{name}: {:?}", v.reason),
            None => assert_eq!(v.reason, None, "{name}"),
        }
    }
}

#[test]
fn missing_epochs_cost_four_points_each() {
    let mut doc = healthy(99, 109, &["checkpoint-mined"]);
    doc.last_processed(110 * S);
    for v in 0..24 {
        doc.drop_records(v, |s| s / S == 104);
    }
    let v = verdict(&doc);
    assert_eq!(v.missing_epochs, [104]);
    assert!(v.inconsistent_epochs.is_empty());
    assert_eq!((v.score, v.status), (96, IntegrityStatus::Good));
    let r = v.epochs.iter().find(|r| r.epoch == 104).unwrap();
    assert_eq!((r.score, r.issues.clone()), (0, vec!["no records".to_owned()]));
}

#[test]
fn stale_history_is_missing_at_the_tip() {
    // The node says it processed up to epoch 110 but recorded nothing after epoch 105.
    let mut doc = healthy(99, 105, &["checkpoint-mined"]);
    doc.last_processed(110 * S + 1);
    let v = verdict(&doc);
    assert_eq!(v.missing_epochs, [106, 107, 108, 109]);
    assert_eq!((v.score, v.status), (84, IntegrityStatus::Bad));
}

#[test]
fn offline_validator_makes_every_epoch_inconsistent() {
    let mut doc = healthy(99, 109, &["checkpoint-mined"]);
    doc.last_processed(110 * S).drop_records(23, |s| s >= 100 * S);
    let v = verdict(&doc);
    // Rule 2: 30 × 1/32 (720/768); rule 3: |705 − 713| → 25 × 8 (200/768); rule 4: 20/24 (640/768).
    // 100 − 1560/768 = 97.97 → 98 in every epoch; node 98 → good.
    assert_eq!(v.inconsistent_epochs, (100..110).collect::<Vec<_>>());
    assert_eq!((v.score, v.status), (98, IntegrityStatus::Good));
    assert_eq!(
        v.epochs[0].issues,
        ["proposer records 31, expected 32", "attestations 705, expected 713", "23 validators, expected 24"]
    );
}

#[test]
fn slots_as_strings_parse_like_numbers() {
    let mut doc = healthy(99, 109, &["checkpoint-mined", "blocks-missed"]);
    doc.last_processed(110 * S + 2).initial(99 * S);
    let numeric = analyse_stats(doc.json().as_bytes(), &params()).unwrap();
    doc.string_slots();
    assert!(doc.json().contains(r#""slot":"3168""#));
    let strings = analyse_stats(doc.json().as_bytes(), &params()).unwrap();
    assert_eq!(strings.verdict.score, 100);
    assert_eq!(window(&strings.verdict), window(&numeric.verdict));
    assert_eq!(strings.outcomes, numeric.outcomes);
}

#[test]
fn unknown_status_is_counted_not_fatal() {
    let mut doc = healthy(99, 109, &["checkpoint-mined"]);
    doc.last_processed(110 * S).record(0, 105 * S + 1, "checkpoint-from-the-future");
    let v = verdict(&doc);
    assert_eq!(v.score, 100);
    let r = v.epochs.iter().find(|r| r.epoch == 105).unwrap();
    assert_eq!(r.issues, ["records with an unrecognised status: 1"]);
}

#[test]
fn unknown_verdicts() {
    #[rustfmt::skip]
    let table: &[(&str, &str)] = &[
        (r#"{"stats":{},"slotWindow":0}"#, "sentinel disabled (slotWindow 0)"),
        (r#"{"stats":{"0xa":{"history":[{"slot":5,"status":"attestation-sent"}]}},"slotWindow":"0"}"#,
            "sentinel disabled (slotWindow 0)"),
        (r#"{"stats":{},"lastProcessedSlot":3500,"slotWindow":768}"#, "sentinel history is empty"),
        (r#"{"stats":{"0xa":{"history":[]}},"slotWindow":768}"#, "sentinel history is empty"),
    ];
    for (json, reason) in table {
        let a = analyse_stats(json.as_bytes(), &params()).unwrap();
        let v = &a.verdict;
        let status = if reason.contains("disabled") { IntegrityStatus::SentinelOff } else { IntegrityStatus::Unknown };
        assert_eq!((v.status, v.kind, v.score), (status, NodeKind::Pruned, 0), "{json}");
        assert_eq!(v.reason.as_deref(), Some(*reason), "{json}");
        assert!(a.outcomes.is_empty() && v.epochs.is_empty());
    }
}

#[test]
fn archiver_when_history_spans_more_than_threshold() {
    let p = IntegrityParams { archiver_threshold_epochs: 5, ..params() };
    for (last, kind) in [(103, NodeKind::Pruned), (104, NodeKind::Archiver)] {
        let mut doc = healthy(99, last, &["checkpoint-mined"]);
        doc.last_processed((last + 1) * S);
        let v = analyse_stats(doc.json().as_bytes(), &p).unwrap().verdict;
        assert_eq!((v.kind, v.depth_epochs), (kind, last - 98));
    }
}

#[test]
fn bad_bodies_are_errors() {
    let doc = healthy(99, 101, &["checkpoint-mined"]).json();
    let truncated = &doc.as_bytes()[..doc.len() / 2];
    for body in [&b"{"[..], b"", b"null", b"<html>502</html>", truncated] {
        assert!(matches!(analyse_stats(body, &params()), Err(IntegrityError::Parse(_))));
        assert!(matches!(analyse_response(body, &params()), Err(IntegrityError::Parse(_))));
    }
    let rpc =
        br#"{"jsonrpc":"2.0","id":1,"error":{"code":-32601,"message":"Method not found: aztec_getValidatorsStats"}}"#;
    let err = analyse_response(rpc, &params()).unwrap_err();
    assert!(matches!(err, IntegrityError::RpcError { code: -32601, .. }));
    assert_eq!(err.to_string(), "node answered JSON-RPC error -32601: Method not found: aztec_getValidatorsStats");
    // A bare document is not a response.
    assert!(matches!(analyse_response(doc.as_bytes(), &params()), Err(IntegrityError::NoResult)));
}

#[test]
fn invalid_params_are_rejected() {
    let body = br#"{"stats":{},"slotWindow":768}"#;
    for p in [
        IntegrityParams { slots_per_epoch: 0, ..params() },
        IntegrityParams { expected_validators: 0, ..params() },
        IntegrityParams { check_epochs: 1 << 40, ..params() },
    ] {
        assert!(matches!(analyse_stats(body, &p), Err(IntegrityError::InvalidParams(_))), "{p:?}");
    }
}

#[test]
fn status_thresholds() {
    let table = [
        (100, 95, IntegrityStatus::Perfect),
        (99, 95, IntegrityStatus::Good),
        (95, 95, IntegrityStatus::Good),
        (94, 95, IntegrityStatus::Bad),
        (0, 0, IntegrityStatus::Good),
        (100, 101, IntegrityStatus::Perfect),
    ];
    for (score, threshold, want) in table {
        assert_eq!(status_for(score, threshold), want, "{score} vs {threshold}");
    }
}

#[test]
fn verdict_serialises_for_health() {
    let mut doc = healthy(99, 109, &["checkpoint-mined"]);
    doc.last_processed(110 * S);
    let json = serde_json::to_string(&verdict(&doc)).unwrap();
    for part in [
        r#""score":100"#,
        r#""status":"perfect""#,
        r#""kind":"pruned""#,
        r#""depth_epochs":11"#,
        r#""missing_epochs":[]"#,
        r#""epochs":[{"epoch":100,"score":100,"issues":[]}"#,
        r#""reason":null"#,
    ] {
        assert!(json.contains(part), "{part} not in {json}");
    }
}

#[test]
fn as_str_names_match_the_health_document() {
    for kind in [NodeKind::Archiver, NodeKind::Pruned] {
        assert_eq!(serde_json::to_value(kind).unwrap(), kind.as_str());
    }
    use IntegrityStatus::*;
    for status in [Perfect, Good, Bad, Unknown, SentinelOff] {
        assert_eq!(serde_json::to_value(status).unwrap(), status.as_str());
    }
}

/// An analysis another replica published (JSON through Redis) goes through consensus exactly as
/// the one made here: same outcomes, same tallies, same verdict after a dispute.
#[test]
fn a_published_analysis_takes_part_in_consensus_like_its_original() {
    let good = healthy(99, 109, &["checkpoint-mined"]);
    let mut odd = healthy(99, 109, &["checkpoint-mined"]);
    odd.set_proposer_status(105 * S + 3, "checkpoint-missed");
    let analyse = |d: &Doc| analyse_stats(d.json().as_bytes(), &params()).unwrap();
    let through_json = |a: &Analysis| -> Analysis { serde_json::from_slice(&serde_json::to_vec(a).unwrap()).unwrap() };
    let original: Vec<(String, Analysis)> =
        vec![("a".into(), analyse(&good)), ("b".into(), analyse(&good)), ("c".into(), analyse(&odd))];
    let mut local = original.clone();
    let mut adopted: Vec<(String, Analysis)> = original.iter().map(|(n, a)| (n.clone(), through_json(a))).collect();
    apply_consensus(&mut local, &params());
    apply_consensus(&mut adopted, &params());
    for ((_, l), (_, r)) in local.iter().zip(&adopted) {
        assert_eq!(l.outcomes, r.outcomes);
        assert_eq!(serde_json::to_value(&l.verdict).unwrap(), serde_json::to_value(&r.verdict).unwrap());
    }
    assert!(adopted[2].1.verdict.inconsistent_epochs.contains(&105), "{:?}", adopted[2].1.verdict);
}
