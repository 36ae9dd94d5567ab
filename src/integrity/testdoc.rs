//! Test helper: builds `ValidatorsStats` documents record by record, so tests state what is
//! unusual about a history instead of embedding large JSON literals.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::parse::{family, Family};
use super::IntegrityParams;

/// S = 32, E = 24, 10 epochs, threshold 95, archiver above 100 epochs (the defaults of docs/integrity.md#parameters).
pub(super) fn params() -> IntegrityParams {
    IntegrityParams {
        slots_per_epoch: 32,
        expected_validators: 24,
        check_epochs: 10,
        score_threshold: 95,
        archiver_threshold_epochs: 100,
    }
}

/// A document under construction, with S = 32 and a committee of validators 0..24.
pub(super) struct Doc {
    s: u64,
    e: usize,
    history: BTreeMap<usize, Vec<(u64, String)>>,
    last_processed: Option<u64>,
    initial: Option<u64>,
    slot_window: u64,
    string_slots: bool,
}

impl Doc {
    /// An empty history with `slotWindow` 768.
    pub(super) fn new() -> Self {
        Self {
            s: 32,
            e: 24,
            history: BTreeMap::new(),
            last_processed: None,
            initial: None,
            slot_window: 768,
            string_slots: false,
        }
    }

    /// A complete epoch: slot k's proposer is validator k % 24 with status
    /// `statuses[k % len]`; after a produced block every other member attests (one of them
    /// "attestation-missed"), after a missed one attesters have no entry.
    pub(super) fn epoch(&mut self, epoch: u64, statuses: &[&str]) -> &mut Self {
        for k in 0..self.s {
            let slot = epoch * self.s + k;
            let status = statuses[k as usize % statuses.len()];
            self.record(self.proposer(slot), slot, status);
            self.attest(slot, status);
        }
        self
    }

    /// Replace the proposer record of `slot`, adjusting the attestations to match.
    pub(super) fn set_proposer_status(&mut self, slot: u64, status: &str) -> &mut Self {
        self.drop_where(|_, (s, _)| *s == slot);
        self.record(self.proposer(slot), slot, status);
        self.attest(slot, status);
        self
    }

    /// Remove every record of `validator` for which `pred(slot)` holds.
    pub(super) fn drop_records(&mut self, validator: usize, pred: impl Fn(u64) -> bool) -> &mut Self {
        self.drop_where(|v, (s, _)| v == validator && pred(*s));
        self
    }

    /// Add one raw record.
    pub(super) fn record(&mut self, validator: usize, slot: u64, status: &str) -> &mut Self {
        self.history.entry(validator).or_default().push((slot, status.to_owned()));
        self
    }

    /// Set `lastProcessedSlot`.
    pub(super) fn last_processed(&mut self, slot: u64) -> &mut Self {
        self.last_processed = Some(slot);
        self
    }

    /// Leave `lastProcessedSlot` out.
    pub(super) fn clear_last_processed(&mut self) -> &mut Self {
        self.last_processed = None;
        self
    }

    /// Set `initialSlot`.
    pub(super) fn initial(&mut self, slot: u64) -> &mut Self {
        self.initial = Some(slot);
        self
    }

    /// Set `slotWindow`.
    pub(super) fn slot_window(&mut self, w: u64) -> &mut Self {
        self.slot_window = w;
        self
    }

    /// Write every slot number as a decimal string.
    pub(super) fn string_slots(&mut self) -> &mut Self {
        self.string_slots = true;
        self
    }

    /// The bare `ValidatorsStats` document.
    pub(super) fn json(&self) -> String {
        let mut out = String::from(r#"{"stats":{"#);
        for (n, (v, records)) in self.history.iter().enumerate() {
            let mut records = records.clone();
            records.sort();
            let sep = if n == 0 { "" } else { "," };
            let _ = write!(
                out,
                r#"{sep}"0x{v:040x}":{{"address":"0x{v:040x}","totalSlots":{},"missedProposals":{{"currentStreak":0,"count":0,"total":0}},"history":["#,
                records.len()
            );
            for (i, (slot, status)) in records.iter().enumerate() {
                let sep = if i == 0 { "" } else { "," };
                let _ = write!(out, r#"{sep}{{"slot":{},"status":"{status}"}}"#, self.num(*slot));
            }
            out.push_str("]}");
        }
        out.push('}');
        for (key, value) in [("lastProcessedSlot", self.last_processed), ("initialSlot", self.initial)] {
            if let Some(x) = value {
                let _ = write!(out, r#","{key}":{}"#, self.num(x));
            }
        }
        let _ = write!(out, r#","slotWindow":{}}}"#, self.slot_window);
        out
    }

    /// The document wrapped in a JSON-RPC success envelope.
    pub(super) fn response(&self) -> String {
        format!(r#"{{"jsonrpc":"2.0","id":7,"result":{}}}"#, self.json())
    }

    fn proposer(&self, slot: u64) -> usize {
        (slot % self.s) as usize % self.e
    }

    fn attest(&mut self, slot: u64, status: &str) {
        if family(status) != Family::Attested {
            return;
        }
        let proposer = self.proposer(slot);
        for v in (0..self.e).filter(|&v| v != proposer) {
            let what = if v == (proposer + 1) % self.e { "attestation-missed" } else { "attestation-sent" };
            self.record(v, slot, what);
        }
    }

    fn drop_where(&mut self, pred: impl Fn(usize, &(u64, String)) -> bool) {
        for (&v, records) in &mut self.history {
            records.retain(|r| !pred(v, r));
        }
    }

    fn num(&self, x: u64) -> String {
        if self.string_slots {
            format!("\"{x}\"")
        } else {
            x.to_string()
        }
    }
}
