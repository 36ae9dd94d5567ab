//! Probing one backend: one JSON-RPC batch `[isReady, tips, getWorldStateSyncStatus]` (a real RPC
//! call: a node in standby answers `GET /status` healthy), both tip shapes parsed (nested v4+
//! `{proposed:{number}, proven:{block:{number}}}` and flat v2/v3 `{latest:{number}}`), the
//! `x-aztec-*` identity headers read. The tips method is learned per backend
//! (`getChainTips` → `getL2Tips` → `getBlockNumber`), as is the namespace.

use std::time::Duration;

use serde_json::Value;
use tokio::time::Instant;

pub use crate::error::ProbeError;
use crate::fork::{Chain, Commitment};
use crate::forward::{ForwardError, HttpClient, Reply};
use crate::jsonrpc::Outcome;
use crate::upstream::{Backend, Namespace};
use crate::wire;

/// How a backend reports its tips.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum TipsMethod {
    /// v5+ `getChainTips`.
    #[default]
    ChainTips,
    /// v2–v4 `getL2Tips`.
    L2Tips,
    /// Only `getBlockNumber` works.
    BlockNumber,
}

impl TipsMethod {
    fn name(self) -> &'static str {
        match self {
            TipsMethod::ChainTips => "getChainTips",
            TipsMethod::L2Tips => "getL2Tips",
            TipsMethod::BlockNumber => "getBlockNumber",
        }
    }

    fn next(self) -> Option<TipsMethod> {
        match self {
            TipsMethod::ChainTips => Some(TipsMethod::L2Tips),
            TipsMethod::L2Tips => Some(TipsMethod::BlockNumber),
            TipsMethod::BlockNumber => None,
        }
    }
}

/// Chain tips of one node.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Tips {
    /// Proposed (latest) block.
    pub proposed: u64,
    /// Proven block.
    pub proven: Option<u64>,
    /// Finalized block.
    pub finalized: Option<u64>,
}

/// Result of one probe.
#[derive(Clone, Debug, Default)]
pub struct Probe {
    /// `isReady` answered true.
    pub ready: bool,
    /// Tips, when the tips call worked.
    pub tips: Option<Tips>,
    /// `oldestHistoricBlockNumber`.
    pub oldest_historic: Option<u64>,
    /// Hashes the node reports at its tips and latest world-state block (fork detection).
    pub commitments: Vec<Commitment>,
    /// `x-aztec-rollupVersion`.
    pub rollup_version: Option<u64>,
    /// `x-aztec-l1ChainId`.
    pub l1_chain_id: Option<u64>,
    /// `x-aztec-packageVersion`.
    pub package_version: Option<String>,
    /// Round trip.
    pub latency: Duration,
}

/// Sends `calls` (full method names, raw params) as one batch and returns the outcomes in order.
///
/// # Errors
/// The attempt's [`ForwardError`].
pub async fn call_batch(
    client: &HttpClient,
    backend: &Backend,
    calls: &[(String, &str)],
    timeout: Duration,
    limit: usize,
) -> Result<(Reply, Vec<Outcome>), ForwardError> {
    let body = wire::encode(calls.iter().map(|(method, params)| (method.as_str(), Some(*params))));
    wire::exchange(client, backend, body, calls.len(), "monitor", timeout, Some(limit)).await
}

/// Full method name for a backend's namespace.
pub fn full_name(backend: &Backend, name: &str) -> String {
    format!("{}_{name}", crate::compat::namespace_for(backend, "aztec"))
}

/// Probes one backend; learns its namespace and tips method on the way.
///
/// # Errors
/// Why the probe failed.
pub async fn probe(
    client: &HttpClient,
    backend: &Backend,
    tips_method: &mut TipsMethod,
    timeout: Duration,
) -> Result<Probe, ProbeError> {
    for _ in 0..4 {
        let calls = [
            (full_name(backend, "isReady"), "[]"),
            (full_name(backend, tips_method.name()), "[]"),
            (full_name(backend, "getWorldStateSyncStatus"), "[]"),
        ];
        let started = Instant::now();
        let (reply, outcomes) = call_batch(client, backend, &calls, timeout, 1 << 20).await?;
        let latency = started.elapsed();
        if is_not_found(&outcomes[0]) {
            if backend.namespace() == Namespace::Node {
                return Err(ProbeError::NoIsReady);
            }
            backend.set_namespace(Namespace::Node);
            continue;
        }
        // Learn from the name actually sent: only an `aztec_*` answer proves that namespace.
        if backend.namespace() == Namespace::Unknown && calls[0].0.starts_with("aztec_") {
            backend.set_namespace(Namespace::Aztec);
        }
        if is_not_found(&outcomes[1]) {
            *tips_method = tips_method.next().ok_or(ProbeError::NoTipsMethod)?;
            continue;
        }
        let tips = outcomes[1].result_text().and_then(|t| parse_tips(t, *tips_method));
        let mut commitments = outcomes[1].result_text().map(tip_commitments).unwrap_or_default();
        commitments.extend(outcomes[2].result_text().and_then(world_state_commitment));
        let probe = Probe {
            ready: outcomes[0].result_text().is_some_and(|t| t == "true" || t == "\"true\""),
            tips,
            oldest_historic: outcomes[2].result_text().and_then(|t| field_u64(t, "oldestHistoricBlockNumber")),
            commitments,
            rollup_version: header_u64(&reply, "x-aztec-rollupversion"),
            l1_chain_id: header_u64(&reply, "x-aztec-l1chainid"),
            package_version: header(&reply, "x-aztec-packageversion"),
            latency,
        };
        return Ok(probe);
    }
    Err(ProbeError::Unsettled)
}

fn is_not_found(o: &Outcome) -> bool {
    matches!(o, Outcome::Error { code: -32601, .. })
}

fn header(reply: &Reply, name: &str) -> Option<String> {
    reply.aztec_headers.iter().find(|(k, _)| k.as_str() == name).and_then(|(_, v)| v.to_str().ok()).map(str::to_owned)
}

fn header_u64(reply: &Reply, name: &str) -> Option<u64> {
    header(reply, name)?.trim().parse().ok()
}

/// A number that may be sent as a JSON number or a decimal string.
fn as_u64(v: &Value) -> Option<u64> {
    v.as_u64().or_else(|| v.as_str()?.trim().parse().ok())
}

fn field_u64(text: &str, field: &str) -> Option<u64> {
    as_u64(serde_json::from_str::<Value>(text).ok()?.get(field)?)
}

/// Block number of a tip entry: nested `{block:{number}}` or flat `{number}`.
fn tip_number(v: Option<&Value>) -> Option<u64> {
    let v = v?;
    v.get("block").and_then(|b| as_u64(b.get("number")?)).or_else(|| as_u64(v.get("number")?))
}

/// A `(number, hash)` pair as a commitment.
fn commitment(chain: Chain, v: Option<&Value>, finalized: bool) -> Option<Commitment> {
    let v = v?;
    let hash = v.get("hash")?.as_str()?.to_ascii_lowercase();
    Some(Commitment { chain, height: as_u64(v.get("number")?)?, hash, finalized })
}

/// Every hash a tips answer reports: block hashes (nested or flat shape) and checkpoint hashes.
pub fn tip_commitments(text: &str) -> Vec<Commitment> {
    let Ok(v) = serde_json::from_str::<Value>(text) else { return Vec::new() };
    let mut out = Vec::new();
    for tier in ["proposed", "latest", "checkpointed", "proven", "finalized"] {
        let Some(t) = v.get(tier) else { continue };
        let finalized = tier == "finalized";
        out.extend(commitment(Chain::Block, t.get("block").or(Some(t)), finalized));
        out.extend(commitment(Chain::Checkpoint, t.get("checkpoint"), finalized));
    }
    out
}

/// The world state's latest block and hash.
fn world_state_commitment(text: &str) -> Option<Commitment> {
    let v: Value = serde_json::from_str(text).ok()?;
    let hash = v.get("latestBlockHash")?.as_str()?.to_ascii_lowercase();
    Some(Commitment { chain: Chain::Block, height: as_u64(v.get("latestBlockNumber")?)?, hash, finalized: false })
}

/// Parses the answer of a tips method.
pub fn parse_tips(text: &str, method: TipsMethod) -> Option<Tips> {
    let v: Value = serde_json::from_str(text).ok()?;
    if method == TipsMethod::BlockNumber {
        return Some(Tips { proposed: as_u64(&v)?, proven: None, finalized: None });
    }
    let proposed = tip_number(v.get("proposed")).or_else(|| tip_number(v.get("latest")))?;
    Some(Tips { proposed, proven: tip_number(v.get("proven")), finalized: tip_number(v.get("finalized")) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_tip_shapes() {
        let nested = r#"{"proposed":{"number":2445,"hash":"0x1"},"checkpointed":{"block":{"number":2440},"checkpoint":{"number":310}},
            "proven":{"block":{"number":2200,"hash":"0x"},"checkpoint":{"number":281}},"finalized":{"block":{"number":2150},"checkpoint":{"number":275}}}"#;
        let t = parse_tips(nested, TipsMethod::ChainTips).unwrap();
        assert_eq!(t, Tips { proposed: 2445, proven: Some(2200), finalized: Some(2150) });
        let flat = r#"{"latest":{"number":"12","hash":"0x"},"proven":{"number":10},"finalized":{"number":9}}"#;
        let t = parse_tips(flat, TipsMethod::L2Tips).unwrap();
        assert_eq!(t, Tips { proposed: 12, proven: Some(10), finalized: Some(9) });
        assert_eq!(parse_tips("77", TipsMethod::BlockNumber).unwrap().proposed, 77);
        assert!(parse_tips("{}", TipsMethod::ChainTips).is_none());
    }
}
