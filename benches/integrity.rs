//! Benchmark of the integrity analysis at the scale docs/integrity.md#failures names: 1,000
//! validators × 100 epochs (S = 32, a committee of E = 48 drawn per epoch, about 150k history
//! records), parsed and analysed from one in-memory JSON document.

use std::fmt::Write;
use std::hint::black_box;

use criterion::{criterion_main, Criterion};
use sentinel_proxy::integrity::{analyse_stats, IntegrityParams, IntegrityStatus};

const VALIDATORS: usize = 1_000;
const EPOCHS: u64 = 100;
const FIRST_EPOCH: u64 = 1_000;
const S: u64 = 32;
const E: usize = 48;

/// Tiny deterministic generator (xorshift64*), so every run benches the same document.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// Per-validator histories, ascending by slot: each slot has one proposer record and, after a
/// produced checkpoint, one attestation record from each of the other 47 members.
fn histories() -> Vec<Vec<(u64, &'static str)>> {
    let mut rng = Rng(0x5eed_1234_abcd_ef01);
    let mut pool: Vec<usize> = (0..VALIDATORS).collect();
    let mut history = vec![Vec::new(); VALIDATORS];
    for epoch in FIRST_EPOCH..FIRST_EPOCH + EPOCHS {
        // Partial Fisher–Yates: the first E entries of the pool are this epoch's committee.
        for i in 0..E {
            let j = i + rng.below(VALIDATORS - i);
            pool.swap(i, j);
        }
        let committee = &pool[..E];
        for k in 0..S {
            let slot = epoch * S + k;
            let proposer = committee[k as usize % E];
            let mined = rng.below(20) != 0;
            history[proposer].push((slot, if mined { "checkpoint-mined" } else { "blocks-missed" }));
            if !mined {
                continue;
            }
            for &v in committee.iter().filter(|&&v| v != proposer) {
                let sent = rng.below(50) != 0;
                history[v].push((slot, if sent { "attestation-sent" } else { "attestation-missed" }));
            }
        }
    }
    history
}

/// The whole `ValidatorsStats` document, with the fields a real node sends besides the history.
fn document() -> (String, usize) {
    let histories = histories();
    let records = histories.iter().map(Vec::len).sum();
    let mut out = String::with_capacity(records * 48);
    out.push_str(r#"{"stats":{"#);
    for (v, history) in histories.iter().enumerate() {
        let sep = if v == 0 { "" } else { "," };
        let _ = write!(
            out,
            r#"{sep}"0x{v:040x}":{{"address":"0x{v:040x}","totalSlots":{},"missedProposals":{{"currentStreak":0,"rate":0,"count":0,"total":3}},"missedAttestations":{{"currentStreak":0,"rate":0.02,"count":2,"total":100}},"history":["#,
            history.len()
        );
        for (i, (slot, status)) in history.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            let _ = write!(out, r#"{sep}{{"slot":{slot},"status":"{status}"}}"#);
        }
        out.push_str("]}");
    }
    let first = FIRST_EPOCH * S;
    let last = (FIRST_EPOCH + EPOCHS) * S;
    let _ = write!(out, r#"}},"lastProcessedSlot":{last},"initialSlot":{},"slotWindow":{}}}"#, first - 1, EPOCHS * S);
    (out, records)
}

fn bench(c: &mut Criterion) {
    let (doc, records) = document();
    let params = IntegrityParams {
        slots_per_epoch: S,
        expected_validators: E as u64,
        check_epochs: EPOCHS,
        score_threshold: 95,
        archiver_threshold_epochs: 100,
    };
    let analysis = analyse_stats(doc.as_bytes(), &params).expect("generated document parses");
    let verdict = &analysis.verdict;
    assert_ne!(verdict.status, IntegrityStatus::Unknown);
    eprintln!(
        "document: {records} records, {:.1} MiB; window {} epochs, score {} ({:?})",
        doc.len() as f64 / (1024.0 * 1024.0),
        verdict.epochs.len(),
        verdict.score,
        verdict.status
    );
    c.bench_function("analyse_stats 1000 validators x 100 epochs", |b| {
        b.iter(|| analyse_stats(black_box(doc.as_bytes()), &params))
    });
}

/// The benchmark group (what `criterion_group!` would generate, documented).
fn benches() {
    let mut criterion = Criterion::default().configure_from_args();
    bench(&mut criterion);
}

criterion_main!(benches);
