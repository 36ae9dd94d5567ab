//! The scoring rules of docs/integrity.md#epoch-score, per epoch and per node.
//!
//! Arithmetic is exact: every deduction is a rational with denominator S × E (or a divisor of
//! it), so the epoch score is computed as the integer `100·S·E − Σ deductions` over `S·E`,
//! clamped at 0 and rounded half up once, with integer division. No float is involved, so a
//! score of exactly x.5 always rounds to x+1 (f64 could land on either side of .5, and
//! banker's rounding would go to even). The node score rounds the mean of the (already
//! rounded) epoch scores half up the same way.

use super::verdict::EpochReport;
use super::IntegrityParams;

/// Deduction for a window epoch whose proposer outcome the majority of nodes contradicts: the
/// data is wrong rather than incomplete, so it weighs like rule 1, plus 30/S per disputed slot
/// as for a wrong proposer record (rule 2).
const DISPUTE_POINTS: i128 = 40;

/// Record counts of one window epoch, plus consensus disputes. Filled by `tally`, scored here.
/// Serialised without the disputes, which consensus recomputes on every pass.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub(crate) struct EpochTally {
    /// Epoch number.
    pub(crate) epoch: u64,
    /// A: proposer records of the attested family.
    pub(crate) attested: u64,
    /// M: proposer records of the missed family.
    pub(crate) missed: u64,
    /// T: attestation records (sent or missed).
    pub(crate) attestations: u64,
    /// Records with an unknown status.
    pub(crate) other: u64,
    /// V: distinct validators with at least one record.
    pub(crate) validators: u64,
    /// Slots where the majority of nodes saw the other proposer outcome.
    #[serde(skip)]
    pub(crate) disputes: Vec<Dispute>,
}

/// One slot on which this node is in the minority.
#[derive(Clone, Debug)]
pub(crate) struct Dispute {
    /// The slot.
    pub(crate) slot: u64,
    /// This node's outcome (true = mined).
    pub(crate) own: bool,
    /// Backends holding the majority outcome.
    pub(crate) majority: Vec<String>,
}

/// S and E as wide integers; the denominator of every deduction is `s * e`.
struct Dims {
    s: i128,
    e: i128,
}

/// One rule: the deduction in units of 1/(S·E) and its issue text, or `None` when it does not apply.
type Rule = fn(&EpochTally, &Dims) -> Option<(i128, String)>;

/// Rules 1–4 of docs/integrity.md#epoch-score, then the consensus rule (5), in issue order.
const RULES: [Rule; 5] = [too_many_validators, proposer_records, attestations, too_few_validators, disputes];

impl EpochTally {
    /// An empty tally for `epoch`.
    pub(crate) fn new(epoch: u64) -> Self {
        Self { epoch, attested: 0, missed: 0, attestations: 0, other: 0, validators: 0, disputes: Vec::new() }
    }

    /// True when the epoch has no record at all.
    pub(crate) fn is_missing(&self) -> bool {
        self.attested + self.missed + self.attestations + self.other == 0
    }

    /// Score and issues of this epoch.
    pub(crate) fn report(&self, params: &IntegrityParams) -> EpochReport {
        if self.is_missing() {
            return EpochReport { epoch: self.epoch, score: 0, issues: vec!["no records".to_owned()] };
        }
        let dims = Dims { s: i128::from(params.slots_per_epoch), e: i128::from(params.expected_validators) };
        let den = dims.s * dims.e;
        let mut num = 100 * den;
        let mut issues = Vec::new();
        for (deduction, issue) in RULES.iter().filter_map(|rule| rule(self, &dims)) {
            num -= deduction;
            issues.push(issue);
        }
        if self.other > 0 {
            issues.push(format!("records with an unrecognised status: {}", self.other));
        }
        EpochReport { epoch: self.epoch, score: round_half_up(num.max(0), den), issues }
    }
}

/// Rule 1: 40 if V > E.
fn too_many_validators(t: &EpochTally, d: &Dims) -> Option<(i128, String)> {
    let v = i128::from(t.validators);
    (v > d.e).then(|| (40 * d.s * d.e, format!("{v} validators, expected {}", d.e)))
}

/// Rule 2: 30 × |A + M − S| / S.
fn proposer_records(t: &EpochTally, d: &Dims) -> Option<(i128, String)> {
    let records = i128::from(t.attested) + i128::from(t.missed);
    let dev = (records - d.s).abs();
    (dev > 0).then(|| (30 * dev * d.e, format!("proposer records {records}, expected {}", d.s)))
}

/// Rule 3: 25 × |T − A(E − 1)| / (S × E), only when A(E − 1) > 0.
fn attestations(t: &EpochTally, d: &Dims) -> Option<(i128, String)> {
    let expected = i128::from(t.attested) * (d.e - 1);
    let seen = i128::from(t.attestations);
    let dev = (seen - expected).abs();
    (expected > 0 && dev > 0).then(|| (25 * dev, format!("attestations {seen}, expected {expected}")))
}

/// Rule 4: 20 × (E − V) / E when M = 0 and V < E.
fn too_few_validators(t: &EpochTally, d: &Dims) -> Option<(i128, String)> {
    let v = i128::from(t.validators);
    (t.missed == 0 && v < d.e).then(|| (20 * (d.e - v) * d.s, format!("{v} validators, expected {}", d.e)))
}

/// Consensus: [`DISPUTE_POINTS`] plus 30/S per disputed slot; one issue naming every slot.
fn disputes(t: &EpochTally, d: &Dims) -> Option<(i128, String)> {
    if t.disputes.is_empty() {
        return None;
    }
    let k = i128::try_from(t.disputes.len()).unwrap_or(i128::MAX / 2);
    let text: Vec<String> = t.disputes.iter().map(dispute_text).collect();
    Some((DISPUTE_POINTS * d.s * d.e + 30 * k * d.e, text.join("; ")))
}

/// e.g. "slot 3301: proposer outcome missed here, mined on a, b".
fn dispute_text(d: &Dispute) -> String {
    let word = |mined: bool| if mined { "mined" } else { "missed" };
    format!("slot {}: proposer outcome {} here, {} on {}", d.slot, word(d.own), word(!d.own), d.majority.join(", "))
}

/// `num / den` rounded half up, for `num ≥ 0`, `den > 0`, saturating at 255.
fn round_half_up(num: i128, den: i128) -> u8 {
    u8::try_from((2 * num + den) / (2 * den)).unwrap_or(u8::MAX)
}

/// Node score: round-half-up(mean of the analysed epochs' scores) − 4 × missing epochs, clamped
/// to 0..=100; the mean is 100 when no window epoch had records. `reports` pairs with `tallies`.
pub(crate) fn node_score(tallies: &[EpochTally], reports: &[EpochReport]) -> u8 {
    let (mut sum, mut analysed, mut missing) = (0i128, 0i128, 0i128);
    for (t, r) in tallies.iter().zip(reports) {
        if t.is_missing() {
            missing += 1;
        } else {
            sum += i128::from(r.score);
            analysed += 1;
        }
    }
    let mean = if analysed == 0 { 100 } else { i128::from(round_half_up(sum, analysed)) };
    u8::try_from((mean - 4 * missing).clamp(0, 100)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::integrity::testdoc::params;

    /// (A, M, T, V) → tally of epoch 200.
    fn tally(a: u64, m: u64, t: u64, v: u64) -> EpochTally {
        EpochTally { attested: a, missed: m, attestations: t, validators: v, ..EpochTally::new(200) }
    }

    fn with(s: u64, e: u64) -> IntegrityParams {
        IntegrityParams { slots_per_epoch: s, expected_validators: e, ..params() }
    }

    /// (case, (A, M, T, V), expected score, expected issues)
    type Row = (&'static str, (u64, u64, u64, u64), u8, &'static [&'static str]);

    #[test]
    fn epoch_rules_table() {
        // S = 32, E = 24: a full epoch has A + M = 32 and T = A × 23 (736 when A = 32).
        #[rustfmt::skip]
        let table: &[Row] = &[
            ("healthy", (32, 0, 736, 24), 100, &[]),
            ("missed proposer, silent attesters", (31, 1, 713, 24), 100, &[]),
            // 100 − 40 = 60
            ("rule 1 alone", (32, 0, 736, 25), 60, &["25 validators, expected 24"]),
            // 30 × 2/32 = 1.875 → 98.125 → 98 (T = 30 × 23 keeps rule 3 silent)
            ("rule 2 alone, too few", (30, 0, 690, 24), 98, &["proposer records 30, expected 32"]),
            // 30 × 1/32 = 0.9375 → 99.0625 → 99 (T = 33 × 23)
            ("rule 2 alone, too many", (32, 1, 736, 24), 99, &["proposer records 33, expected 32"]),
            // 25 × 36/768 = 1.171875 → 98.828125 → 99
            ("rule 3 alone", (32, 0, 700, 24), 99, &["attestations 700, expected 736"]),
            // 25 × 384/768 = 12.5 → 87.5 → 88 (half up)
            ("rule 3, exact half", (32, 0, 352, 24), 88, &["attestations 352, expected 736"]),
            // 20 × 1/24 = 0.8333 → 99.1667 → 99
            ("rule 4 alone", (32, 0, 736, 23), 99, &["23 validators, expected 24"]),
            // 20 × 12/24 = 10 → 90
            ("rule 4, half the committee", (32, 0, 736, 12), 90, &["12 validators, expected 24"]),
            ("rule 4 off when M > 0", (31, 1, 713, 23), 100, &[]),
            ("rule 3 off when A = 0", (0, 32, 0, 24), 100, &[]),
            // rule 2: 30 × 32/32 = 30 → 70; rule 3 off (A = 0)
            ("no proposer records", (0, 0, 50, 24), 70, &["proposer records 0, expected 32"]),
            // 40 + 1.875 + 25 × 90/768 (2.9296875) = 44.8046875 → 55.1953125 → 55
            ("rules 1+2+3", (30, 0, 600, 25), 55,
                &["25 validators, expected 24", "proposer records 30, expected 32", "attestations 600, expected 690"]),
            // 1.875 + 25 × 10/768 (0.32552) + 20 × 2/24 (1.66667) = 3.8672 → 96.1328 → 96
            ("rules 2+3+4", (30, 0, 680, 22), 96,
                &["proposer records 30, expected 32", "attestations 680, expected 690", "22 validators, expected 24"]),
            // 40 + 30 + 25 × 1472/768 (47.92) → below 0 → 0
            ("clamped at zero", (64, 0, 0, 30), 0,
                &["30 validators, expected 24", "proposer records 64, expected 32", "attestations 0, expected 1472"]),
        ];
        for (name, (a, m, t, v), want, issues) in table {
            let r = tally(*a, *m, *t, *v).report(&params());
            assert_eq!(r.score, *want, "{name}");
            assert_eq!(r.issues, *issues, "{name}");
        }
    }

    #[test]
    fn rounding_half_up_edges() {
        // S = 4, E = 2: rule 2 with one record short costs 30/4 = 7.5 → 92.5 → 93 (even rounding: 92).
        assert_eq!(tally(3, 0, 3, 2).report(&with(4, 2)).score, 93);
        // S = 8, E = 2: 30/8 = 3.75 → 96.25 → 96.
        assert_eq!(tally(7, 0, 7, 2).report(&with(8, 2)).score, 96);
        // S = 4, E = 1: rule 3 never applies (A × 0 = 0); rule 2 with 3 missing → 100 − 22.5 → 78.
        assert_eq!(tally(1, 0, 0, 1).report(&with(4, 1)).score, 78);
        for (num, den, want) in [(0, 1, 0), (1, 2, 1), (3, 2, 2), (5, 2, 3), (149, 100, 1), (150, 100, 2)] {
            assert_eq!(round_half_up(num, den), want, "{num}/{den}");
        }
    }

    #[test]
    fn unknown_statuses_are_reported_not_scored() {
        let t = EpochTally { other: 3, ..tally(32, 0, 736, 24) };
        let r = t.report(&params());
        assert_eq!((r.score, r.issues), (100, vec!["records with an unrecognised status: 3".to_owned()]));
    }

    #[test]
    fn missing_epoch_report() {
        let r = EpochTally::new(7).report(&params());
        assert_eq!((r.epoch, r.score, r.issues), (7, 0, vec!["no records".to_owned()]));
    }

    #[test]
    fn disputes_deduct_and_name_backends() {
        let mut t = tally(32, 0, 736, 24);
        t.disputes.push(Dispute { slot: 6410, own: false, majority: vec!["a".into(), "b".into()] });
        let r = t.report(&params());
        // 100 − 40 − 30 × 1/32 = 59.0625 → 59
        assert_eq!(r.score, 59);
        assert_eq!(r.issues, ["slot 6410: proposer outcome missed here, mined on a, b"]);
    }

    #[test]
    fn node_score_table() {
        // (epoch scores, None = missing) → node score
        #[rustfmt::skip]
        let table: &[(&[Option<u8>], u8)] = &[
            (&[], 100),
            (&[None], 96),
            (&[Some(100), Some(99)], 100),      // mean 99.5 → 100
            (&[Some(100), Some(98)], 99),       // 99
            (&[Some(100), Some(97)], 99),       // 98.5 → 99
            (&[Some(100), None, Some(90)], 91), // 95 − 4
            (&[None; 30], 0),                   // 100 − 120 → 0
            (&[Some(0), Some(1)], 1),           // 0.5 → 1
        ];
        for (scores, want) in table {
            let tallies: Vec<EpochTally> =
                scores.iter().map(|s| if s.is_some() { tally(1, 0, 0, 1) } else { EpochTally::new(1) }).collect();
            let reports: Vec<EpochReport> =
                scores.iter().map(|s| EpochReport { epoch: 1, score: s.unwrap_or(0), issues: Vec::new() }).collect();
            assert_eq!(node_score(&tallies, &reports), *want, "{scores:?}");
        }
    }
}
