//! One function per group of methods: each writes its `result` value into the buffer.
//!
//! Handlers read the request's `View` and the node's immutable config; `sendTx` and the tx
//! look-ups take the mempool mutex for the duration of a map operation only.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::answer::Answer;
use super::chain::Chain;
use super::config::{ApiVersion, HistoryProfile, ARCHIVE_DEPTH_EPOCHS};
use super::encode::{fnv, hash2, write_field, write_str, write_u64, write_u64_str};
use super::history::Window;
use super::identity::{write_l1_contracts, write_node_info, write_protocol_contracts};
use super::methods::Method;
use super::rpc::{RpcError, APPLICATION_ERROR, INTERNAL_ERROR};
use super::state::{lock, NodeState, View};
use super::stats;

/// Blocks of world state a pruned node keeps (`WS_NUM_HISTORIC_CHECKPOINTS` = 64 checkpoints).
const HISTORIC_CHECKPOINTS: u64 = 64;

/// Param `i`, with an explicit `null` treated as absent.
fn opt<'a>(params: &[&'a RawValue], i: usize) -> Option<&'a RawValue> {
    params.get(i).copied().filter(|p| p.get() != "null")
}

fn required<'a>(params: &[&'a RawValue], i: usize) -> Result<&'a RawValue, RpcError> {
    opt(params, i).ok_or_else(|| RpcError::invalid_params(format!("Required ({i})")))
}

fn string_param(raw: &RawValue, i: usize) -> Result<String, RpcError> {
    serde_json::from_str(raw.get()).map_err(|_| RpcError::invalid_params(format!("Expected string ({i})")))
}

fn u64_param(raw: &RawValue, i: usize) -> Result<u64, RpcError> {
    let bad = || RpcError::invalid_params(format!("Expected number ({i})"));
    match serde_json::from_str::<u64>(raw.get()) {
        Ok(n) => Ok(n),
        Err(_) => string_param(raw, i)?.parse().map_err(|_| bad()),
    }
}

fn write_bool(out: &mut Vec<u8>, b: bool) {
    out.extend_from_slice(if b { b"true" } else { b"false" });
}

/// Answers one call of `method` (already checked against the version).
pub(crate) fn call(
    node: &NodeState,
    view: &View,
    method: Method,
    params: &[&RawValue],
    out: &mut Vec<u8>,
) -> Result<Answer, RpcError> {
    match method {
        Method::IsReady => write_bool(out, !view.faults.not_ready),
        Method::GetBlockNumber => tip_number(view, params, out)?,
        Method::GetCheckpointNumber => checkpoint_number(node, view, params, out)?,
        Method::GetProvenBlockNumber => write_u64(out, view.tips.proven),
        Method::GetCheckpointedBlockNumber => write_u64(out, view.tips.checkpointed),
        Method::GetChainTips => view.chain.write_nested_tips(out, &view.tips),
        Method::GetL2Tips if node.cfg.version == ApiVersion::V3 => {
            view.chain.write_flat_tips(out, &view.tips);
        }
        Method::GetL2Tips => view.chain.write_nested_tips(out, &view.tips),
        Method::GetWorldStateSyncStatus => world_state(node, view, out),
        Method::GetSyncedL2SlotNumber => write_u64(out, node.chain.slot_of(view.tips.proposed)),
        Method::GetSyncedL1Timestamp => {
            write_u64_str(out, node.chain.block_time_ms(view.tips.proposed) / 1000);
        }
        Method::GetBlock | Method::GetBlockByHash | Method::GetBlockHeader => {
            return block(node, view, method, params, out);
        }
        Method::GetCurrentMinFees | Method::GetCurrentBaseFees => {
            node.chain.write_fees(out, view.tips.proposed);
        }
        Method::SendTx | Method::GetTxReceipt | Method::GetTxByHash | Method::GetPendingTxCount => {
            return tx(node, method, params, out);
        }
        Method::GetValidatorsStats | Method::GetValidatorStats | Method::GetValidatorStatsBatch => {
            return sentinel(node, view, method, params, out);
        }
        _ => identity(node, view, method, out),
    }
    Ok(Answer::Value)
}

fn tip_number(view: &View, params: &[&RawValue], out: &mut Vec<u8>) -> Result<(), RpcError> {
    let n = match opt(params, 0) {
        None => view.tips.proposed,
        Some(raw) => {
            let tag = string_param(raw, 0)?;
            Chain::tag_block(&view.tips, &tag).ok_or_else(|| {
                RpcError::invalid_params(format!(
                    "Invalid enum value. Expected 'proposed' | 'checkpointed' | 'proven' | 'finalized', received '{tag}' (0)"
                ))
            })?
        }
    };
    write_u64(out, n);
    Ok(())
}

fn checkpoint_number(node: &NodeState, view: &View, params: &[&RawValue], out: &mut Vec<u8>) -> Result<(), RpcError> {
    let tag = opt(params, 0).map(|raw| string_param(raw, 0)).transpose()?;
    let block = match tag.as_deref() {
        None | Some("checkpointed") => view.tips.checkpointed,
        Some("proven") => view.tips.proven,
        Some("finalized") => view.tips.finalized,
        Some("proposed") if node.cfg.version <= ApiVersion::V4 => view.tips.proposed,
        Some(other) => {
            return Err(RpcError::invalid_params(format!(
                "Invalid enum value. Expected 'checkpointed' | 'proven' | 'finalized', received '{other}' (0)"
            )))
        }
    };
    write_u64(out, node.chain.slot_of(block));
    Ok(())
}

fn world_state(node: &NodeState, view: &View, out: &mut Vec<u8>) {
    let t = &view.tips;
    let profile = node.profile(&view.faults);
    let archive = profile == HistoryProfile::Archiver || node.cfg.history_epochs > ARCHIVE_DEPTH_EPOCHS;
    let oldest =
        if archive { 1 } else { t.proposed.saturating_sub(HISTORIC_CHECKPOINTS * node.chain.blocks_per_slot).max(1) };
    out.extend_from_slice(b"{\"latestBlockNumber\":");
    write_u64(out, t.proposed);
    out.extend_from_slice(b",\"latestBlockHash\":");
    view.chain.write_block_hash(out, t.proposed);
    out.extend_from_slice(b",\"finalizedBlockNumber\":");
    write_u64(out, t.finalized);
    out.extend_from_slice(b",\"oldestHistoricBlockNumber\":");
    write_u64(out, oldest);
    out.extend_from_slice(b",\"treesAreSynched\":true}");
}

fn identity(node: &NodeState, view: &View, method: Method, out: &mut Vec<u8>) {
    let cfg = &node.cfg;
    let rollup = view.faults.rollup_version.unwrap_or(cfg.rollup_version);
    match method {
        Method::GetNodeInfo => write_node_info(out, cfg, rollup),
        Method::GetNodeVersion => write_str(out, cfg.version.package_version()),
        Method::GetVersion => write_u64(out, rollup),
        Method::GetChainId => write_u64(out, cfg.l1_chain_id),
        Method::GetL1ContractAddresses => write_l1_contracts(out, cfg.l1_chain_id, rollup),
        Method::GetProtocolContractAddresses => write_protocol_contracts(out),
        _ => l1_constants(node, out),
    }
}

fn l1_constants(node: &NodeState, out: &mut Vec<u8>) {
    let chain = &node.chain;
    let genesis_s = chain.slot_time_ms(0) / 1000;
    out.extend_from_slice(b"{\"l1StartBlock\":");
    write_u64_str(out, 7_000_000 + hash2(chain.seed, 1) % 1_000_000);
    out.extend_from_slice(b",\"l1GenesisTime\":");
    write_u64_str(out, genesis_s);
    out.extend_from_slice(b",\"slotDuration\":");
    write_u64(out, chain.slot_seconds());
    out.extend_from_slice(b",\"epochDuration\":");
    write_u64(out, chain.slots_per_epoch);
    out.extend_from_slice(b",\"ethereumSlotDuration\":12,\"proofSubmissionEpochs\":1,\"targetCommitteeSize\":");
    write_u64(out, chain.committee_size);
    out.extend_from_slice(b",\"rollupManaLimit\":150000000}");
}

fn block(
    node: &NodeState,
    view: &View,
    method: Method,
    params: &[&RawValue],
    out: &mut Vec<u8>,
) -> Result<Answer, RpcError> {
    let chain = &view.chain;
    let number = match (method, opt(params, 0)) {
        (Method::GetBlockHeader, None) => Some(view.tips.proposed),
        (_, raw) => {
            let raw = raw.ok_or_else(|| RpcError::invalid_params("Required (0)"))?;
            chain.resolve_block(raw, &view.tips)?
        }
    };
    match number {
        Some(n) if n >= 1 && n <= view.tips.proposed => {
            if method == Method::GetBlockHeader {
                chain.write_header(out, n, node.cfg.version);
            } else {
                chain.write_block(out, n, node.cfg.version);
            }
            Ok(Answer::Value)
        }
        _ => Ok(Answer::Undefined),
    }
}

#[derive(Deserialize)]
struct TxHashField {
    #[serde(rename = "txHash")]
    tx_hash: Option<serde_json::Value>,
}

/// The hash a node files a transaction under: its `txHash` string, or one derived from the JSON.
pub(crate) fn tx_hash(node: &NodeState, raw: &RawValue) -> Result<String, RpcError> {
    let fields: TxHashField =
        serde_json::from_str(raw.get()).map_err(|_| RpcError::invalid_params("Expected object, received other (0)"))?;
    if let Some(serde_json::Value::String(h)) = fields.tx_hash {
        return Ok(h);
    }
    let mut out = Vec::with_capacity(68);
    write_field(&mut out, hash2(node.chain.seed, 9), fnv(raw.get().as_bytes()));
    Ok(String::from_utf8_lossy(&out[1..out.len() - 1]).into_owned())
}

fn tx(node: &NodeState, method: Method, params: &[&RawValue], out: &mut Vec<u8>) -> Result<Answer, RpcError> {
    if method == Method::GetPendingTxCount {
        write_u64(out, lock(&node.pool).len() as u64);
        return Ok(Answer::Value);
    }
    let raw = required(params, 0)?;
    if method == Method::SendTx {
        let hash = tx_hash(node, raw)?;
        lock(&node.pool).insert(&hash, raw.get());
        return Ok(Answer::Undefined);
    }
    let hash = string_param(raw, 0)?;
    let pool = lock(&node.pool);
    let pending = pool.get(&hash);
    if method == Method::GetTxByHash {
        return Ok(match pending {
            Some(tx) => {
                out.extend_from_slice(tx.as_bytes());
                Answer::Value
            }
            None => Answer::Undefined,
        });
    }
    out.extend_from_slice(b"{\"txHash\":");
    write_str(out, &hash);
    out.extend_from_slice(if pending.is_some() { b",\"status\":\"pending\"}" } else { b",\"status\":\"dropped\"}" });
    Ok(Answer::Value)
}

fn sentinel(
    node: &NodeState,
    view: &View,
    method: Method,
    params: &[&RawValue],
    out: &mut Vec<u8>,
) -> Result<Answer, RpcError> {
    let history = view.history.as_ref().ok_or_else(|| RpcError::new(INTERNAL_ERROR, "Internal error"))?;
    if method == Method::GetValidatorsStats {
        out.extend_from_slice(&history.json);
        return Ok(Answer::Value);
    }
    // A disabled sentinel stores nothing: every look-up is undefined, whatever the range.
    let range = if node.profile(&view.faults) == HistoryProfile::Disabled {
        (1, 0)
    } else {
        slot_range(params, history.model.window)?
    };
    let single = |address: &str, out: &mut Vec<u8>| {
        stats::validator_index(&node.chain, address)
            .is_some_and(|i| stats::write_single(out, &history.model, &node.chain, i, range))
    };
    if method == Method::GetValidatorStats {
        let address = string_param(required(params, 0)?, 0)?;
        return Ok(if single(&address, out) { Answer::Value } else { Answer::Undefined });
    }
    let addresses: Vec<String> =
        serde_json::from_str(required(params, 0)?.get()).map_err(|_| RpcError::invalid_params("Expected array (0)"))?;
    if addresses.len() > 100 {
        return Err(RpcError::invalid_params("Array must contain at most 100 element(s) (0)"));
    }
    out.push(b'[');
    for (i, address) in addresses.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        if !single(address, out) {
            out.extend_from_slice(b"null");
        }
    }
    out.push(b']');
    Ok(Answer::Value)
}

/// `[fromSlot, toSlot]` of a single-validator query: params 1 and 2, defaulting to the window.
fn slot_range(params: &[&RawValue], w: Window) -> Result<(u64, u64), RpcError> {
    let from = opt(params, 1).map(|p| u64_param(p, 1)).transpose()?;
    let to = opt(params, 2).map(|p| u64_param(p, 2)).transpose()?;
    let from = from.unwrap_or(w.last_processed.saturating_sub(w.slot_window));
    let to = to.unwrap_or(w.last_processed);
    if to.saturating_sub(from) > w.slot_window {
        let msg = format!("Slot range ({}) exceeds history length ({})", to - from, w.slot_window);
        return Err(RpcError::new(APPLICATION_ERROR, msg));
    }
    Ok((from, to))
}
