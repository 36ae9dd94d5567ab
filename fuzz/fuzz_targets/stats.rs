//! Validator-stats parsing and analysis (`integrity::analyse_*`) on any `getValidatorsStats`
//! body. The first three bytes pick the parameters (slots per epoch and committee size 1..=64,
//! 0..=15 epochs checked) so that small documents reach every rule; the rest is the body, read
//! both as a whole JSON-RPC answer and as a bare `ValidatorsStats` document.
//!
//! Beyond "no panic": scores are 0..=100 and a judged status follows from the score; the window
//! is at most the epochs asked for, ascending; a document analyses the same bare and inside a
//! JSON-RPC envelope; watching validators never changes the verdict; and a node agreeing with
//! itself (consensus over two copies of one analysis) keeps its verdict.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_proxy::integrity::{self, Analysis, IntegrityParams, IntegrityStatus};

/// Addresses the seeds use (validators 0 and 1 of the small seed, one of the simulator's) and one
/// nobody uses.
const WATCH: [&str; 4] = [
    "0x0000000000000000000000000000000000000000",
    "0x0000000000000000000000000000000000000001",
    "0x438c1ad761d0956b935ca5a789816c6c6fdc162c",
    "0xffffffffffffffffffffffffffffffffffffffff",
];

fuzz_target!(|data: &[u8]| {
    let Some((head, body)) = data.split_first_chunk::<3>() else { return };
    let params = IntegrityParams {
        slots_per_epoch: u64::from(head[0] % 64) + 1,
        expected_validators: u64::from(head[1] % 64) + 1,
        check_epochs: u64::from(head[2] % 16),
        score_threshold: 95,
        archiver_threshold_epochs: 100,
    };
    let watch: Vec<String> = WATCH.iter().map(|a| (*a).to_owned()).collect();
    if let Ok(a) = integrity::analyse_response_watching(body, &params, &watch) {
        check(&a, &params);
    }
    let Ok(bare) = integrity::analyse_stats(body, &params) else { return };
    check(&bare, &params);
    let watched = integrity::analyse_stats_watching(body, &params, &watch).expect("parsed once, parses again");
    assert_eq!(verdict(&bare), verdict(&watched), "watching changed the verdict");
    let mut envelope = br#"{"jsonrpc":"2.0","id":1,"result":"#.to_vec();
    envelope.extend_from_slice(body);
    envelope.push(b'}');
    let wrapped = integrity::analyse_response(&envelope, &params).expect("a parsed document parses in an envelope");
    assert_eq!(verdict(&bare), verdict(&wrapped), "bare and enveloped documents disagree");
    let mut twins = vec![("a".to_owned(), bare.clone()), ("b".to_owned(), bare.clone())];
    integrity::apply_consensus(&mut twins, &params);
    assert_eq!(verdict(&bare), verdict(&twins[0].1), "a node disagreed with itself");
});

fn verdict(a: &Analysis) -> String {
    serde_json::to_string(&a.verdict).expect("a verdict serialises")
}

fn check(a: &Analysis, params: &IntegrityParams) {
    let v = &a.verdict;
    assert!(v.score <= 100, "score {}", v.score);
    if v.status.judged() {
        assert_eq!(v.status, integrity::status_for(v.score, params.score_threshold));
    } else {
        assert!(matches!(v.status, IntegrityStatus::Unknown | IntegrityStatus::SentinelOff));
    }
    assert!(v.epochs.len() as u64 <= params.check_epochs, "{} epochs, {} asked", v.epochs.len(), params.check_epochs);
    assert!(v.epochs.windows(2).all(|w| w[0].epoch < w[1].epoch), "epochs out of order");
    assert!(v.epochs.iter().all(|e| e.score <= 100));
    let slots: Vec<u64> = a.outcomes.iter().map(|(s, _)| s).collect();
    assert!(slots.windows(2).all(|w| w[0] < w[1]), "slot outcomes not sorted");
}
