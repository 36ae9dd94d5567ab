//! Serializes a sentinel `history::Model` into the `ValidatorsStats` and
//! `SingleValidatorStats` shapes (docs/aztec-api.md#validator-stats).
//!
//! Writes straight into a byte buffer: an archiver's answer is megabytes of history records,
//! and building `serde_json::Value` trees for it would cost more than the whole simulation.

use super::chain::Chain;
use super::config::ApiVersion;
use super::encode::{hash2, write_address_raw, write_f64, write_iso_date, write_u64, write_u64_str};
use super::history::{validator_count, Model, Status};

/// Tag of validator addresses.
const TAG_VALIDATOR: u64 = 50;

/// Appends the address of validator `idx`, unquoted.
pub(crate) fn write_validator_address(out: &mut Vec<u8>, chain: &Chain, idx: u64) {
    write_address_raw(out, hash2(chain.seed, TAG_VALIDATOR), idx);
}

/// Finds the validator index of an address (case-insensitive, `0x` optional).
pub(crate) fn validator_index(chain: &Chain, address: &str) -> Option<usize> {
    let wanted = address.trim_start_matches("0x").to_ascii_lowercase();
    let mut buf = Vec::with_capacity(42);
    (0..validator_count(chain)).find_map(|i| {
        buf.clear();
        write_validator_address(&mut buf, chain, i);
        (buf[2..] == *wanted.as_bytes()).then_some(i as usize)
    })
}

/// The answer of a node whose sentinel is off.
pub(crate) const DISABLED: &[u8] = b"{\"stats\":{},\"slotWindow\":0}";

/// Appends the full `ValidatorsStats` object of `model`.
pub(crate) fn write_validators_stats(out: &mut Vec<u8>, model: &Model, chain: &Chain) {
    out.extend_from_slice(b"{\"stats\":{");
    let mut first = true;
    for (idx, entries) in model.entries.iter().enumerate() {
        if entries.is_empty() {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.push(b'"');
        write_validator_address(out, chain, idx as u64);
        out.extend_from_slice(b"\":");
        write_validator(out, chain, idx as u64, entries);
    }
    out.push(b'}');
    write_window(out, model);
    out.push(b'}');
}

fn write_window(out: &mut Vec<u8>, model: &Model) {
    out.extend_from_slice(b",\"lastProcessedSlot\":");
    write_u64(out, model.window.last_processed);
    out.extend_from_slice(b",\"initialSlot\":");
    write_u64(out, model.window.initial_slot);
    out.extend_from_slice(b",\"slotWindow\":");
    write_u64(out, model.window.slot_window);
}

/// Appends one `ValidatorStats` object.
fn write_validator(out: &mut Vec<u8>, chain: &Chain, idx: u64, entries: &[(u64, Status)]) {
    out.extend_from_slice(b"{\"address\":\"");
    write_validator_address(out, chain, idx);
    out.push(b'"');
    let last_proposal = entries.iter().rev().find(|(_, s)| s.is_proposal());
    if let Some(&(slot, _)) = last_proposal {
        out.extend_from_slice(b",\"lastProposal\":");
        write_when(out, chain, slot);
    }
    let last_attestation = entries.iter().rev().find(|(_, s)| *s == Status::AttestationSent);
    if let Some(&(slot, _)) = last_attestation {
        out.extend_from_slice(b",\"lastAttestation\":");
        write_when(out, chain, slot);
    }
    out.extend_from_slice(b",\"totalSlots\":");
    write_u64(out, entries.len() as u64);
    out.extend_from_slice(b",\"missedProposals\":");
    write_missed(out, entries.iter().filter(|(_, s)| !s.is_attestation()));
    out.extend_from_slice(b",\"missedAttestations\":");
    write_missed(out, entries.iter().filter(|(_, s)| s.is_attestation()));
    out.extend_from_slice(b",\"history\":[");
    for (i, &(slot, status)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        out.extend_from_slice(b"{\"slot\":");
        write_u64(out, slot);
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(status.as_str().as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.extend_from_slice(b"]}");
}

fn write_when(out: &mut Vec<u8>, chain: &Chain, slot: u64) {
    let ms = chain.slot_time_ms(slot);
    out.extend_from_slice(b"{\"timestamp\":");
    write_u64_str(out, ms / 1000);
    out.extend_from_slice(b",\"slot\":");
    write_u64(out, slot);
    out.extend_from_slice(b",\"date\":");
    write_iso_date(out, ms / 1000 * 1000);
    out.push(b'}');
}

/// Appends `{currentStreak, rate?, count, total}` over one category's records.
fn write_missed<'a>(out: &mut Vec<u8>, records: impl Iterator<Item = &'a (u64, Status)>) {
    let (mut count, mut total, mut streak) = (0u64, 0u64, 0u64);
    for (_, status) in records {
        total += 1;
        if status.is_missed() {
            count += 1;
            streak += 1;
        } else {
            streak = 0;
        }
    }
    out.extend_from_slice(b"{\"currentStreak\":");
    write_u64(out, streak);
    if total > 0 {
        out.extend_from_slice(b",\"rate\":");
        write_f64(out, count as f64 / total as f64);
    }
    out.extend_from_slice(b",\"count\":");
    write_u64(out, count);
    out.extend_from_slice(b",\"total\":");
    write_u64(out, total);
    out.push(b'}');
}

/// Appends the `SingleValidatorStats` of validator `idx` over `[from, to]`; returns `false`
/// (writing nothing) when the validator has no stored history.
pub(crate) fn write_single(out: &mut Vec<u8>, model: &Model, chain: &Chain, idx: usize, range: (u64, u64)) -> bool {
    let all = &model.entries[idx];
    if all.is_empty() {
        return false;
    }
    let in_range: Vec<(u64, Status)> =
        all.iter().copied().filter(|(slot, _)| *slot >= range.0 && *slot <= range.1).collect();
    out.extend_from_slice(b"{\"validator\":");
    write_validator(out, chain, idx as u64, &in_range);
    out.extend_from_slice(if model.version >= ApiVersion::V5 {
        b",\"allTimeEpochPerformance\":["
    } else {
        b",\"allTimeProvenPerformance\":["
    });
    write_epoch_performance(out, model, chain, all);
    out.push(b']');
    write_window(out, model);
    out.push(b'}');
    true
}

/// `{epoch, missed, total}` for every complete epoch of the validator's records.
fn write_epoch_performance(out: &mut Vec<u8>, model: &Model, chain: &Chain, all: &[(u64, Status)]) {
    let spe = chain.slots_per_epoch;
    let complete = |epoch: u64| (epoch + 1) * spe - 1 <= model.window.last_processed;
    let mut first = true;
    let mut i = 0;
    while i < all.len() {
        let epoch = all[i].0 / spe;
        let (mut missed, mut total) = (0u64, 0u64);
        while i < all.len() && all[i].0 / spe == epoch {
            total += 1;
            missed += u64::from(all[i].1.is_missed());
            i += 1;
        }
        if !complete(epoch) {
            continue;
        }
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(b"{\"epoch\":");
        write_u64(out, epoch);
        out.extend_from_slice(b",\"missed\":");
        write_u64(out, missed);
        out.extend_from_slice(b",\"total\":");
        write_u64(out, total);
        out.push(b'}');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::config::{HistoryProfile, SimConfig};
    use crate::simulator::history::{DutyFaults, Spec, Window};

    fn model(profile: HistoryProfile, epochs: u64) -> (Model, Chain) {
        let mut cfg = SimConfig::for_tests(ApiVersion::V5);
        cfg.history = profile;
        cfg.history_epochs = epochs;
        let chain = Chain::new(&cfg);
        let spec = Spec {
            chain,
            version: cfg.version,
            profile,
            window: Window::new(&cfg, profile, chain.slot_of(cfg.initial_block)),
            duties: DutyFaults::default(),
        };
        (Model::build(&spec), chain)
    }

    #[test]
    fn stats_parse_and_count() {
        let (m, chain) = model(HistoryProfile::Pruned, 24);
        let mut out = Vec::new();
        write_validators_stats(&mut out, &m, &chain);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        let stats = v["stats"].as_object().unwrap();
        assert_eq!(stats.len(), 48);
        for (addr, s) in stats {
            assert_eq!(addr.len(), 42);
            let history = s["history"].as_array().unwrap();
            assert_eq!(s["totalSlots"].as_u64().unwrap(), history.len() as u64);
            let total =
                s["missedProposals"]["total"].as_u64().unwrap() + s["missedAttestations"]["total"].as_u64().unwrap();
            assert_eq!(total, history.len() as u64);
        }
        assert_eq!(v["slotWindow"], 24 * 32);
        let idx = validator_index(&chain, stats.keys().next().unwrap()).unwrap();
        let mut single = Vec::new();
        assert!(write_single(&mut single, &m, &chain, idx, (0, u64::MAX)));
        let s: serde_json::Value = serde_json::from_slice(&single).unwrap();
        assert!(!s["allTimeEpochPerformance"].as_array().unwrap().is_empty());
    }

    #[test]
    fn archiver_generation_is_fast_enough() {
        let start = std::time::Instant::now();
        let (m, chain) = model(HistoryProfile::Archiver, 120);
        let mut out = Vec::with_capacity(8 << 20);
        write_validators_stats(&mut out, &m, &chain);
        let took = start.elapsed();
        assert!(out.len() > 1_000_000);
        // 50 ms is the release-build budget; debug builds get more slack.
        let budget = if cfg!(debug_assertions) { 2_000 } else { 50 };
        assert!(took.as_millis() < budget, "{took:?}");
    }
}
