//! The simulated L2 chain: a clock-driven tip, the four tip tiers, and deterministic blocks.
//!
//! `Chain` is a small `Copy` value derived once from `SimConfig`; every method is a pure
//! function of it and a block or slot number, so nothing here needs locking. Block `n` belongs
//! to slot `n / blocks_per_slot`, and each slot is one checkpoint whose number is the slot
//! number. Hashes and archive roots encode their block number (see `encode::write_field`), so
//! any node of the same chain can resolve a hash back to its block without storing anything.

use serde_json::value::RawValue;
use serde_json::Value;

use super::config::{ApiVersion, SimConfig};
use super::encode::{decode_field, hash2, write_address, write_field, write_small_field, write_u64, write_u64_str};
use super::rpc::RpcError;

/// Tags that separate the different kinds of invented values.
const TAG_BLOCK: u64 = 1;
const TAG_ARCHIVE: u64 = 2;
const TAG_CHECKPOINT: u64 = 3;
const TAG_STATE: u64 = 4;
const TAG_COINBASE: u64 = 5;

/// The four tips of a node's view of the chain; `proposed ≥ checkpointed ≥ proven ≥ finalized`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Tips {
    pub(crate) proposed: u64,
    pub(crate) checkpointed: u64,
    pub(crate) proven: u64,
    pub(crate) finalized: u64,
}

/// Chain parameters plus the identity seed shared by all nodes of one network.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Chain {
    genesis_ms: u64,
    block_ms: u64,
    nominal_block_ms: u64,
    pub(crate) blocks_per_slot: u64,
    initial_block: u64,
    pub(crate) slots_per_epoch: u64,
    pub(crate) committee_size: u64,
    pub(crate) l1_chain_id: u64,
    pub(crate) rollup_version: u64,
    /// Seed of every invented value: chain id and rollup version, never the node's name.
    pub(crate) seed: u64,
    /// First block of another branch (the `fork_from` fault): from it on, blocks, archive roots,
    /// state roots and checkpoints hash differently at the same heights.
    fork_from: Option<u64>,
}

impl Chain {
    /// Derives the chain of a (normalized) config.
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        Chain {
            genesis_ms: cfg.genesis_unix_ms,
            block_ms: cfg.block_ms,
            nominal_block_ms: cfg.nominal_block_ms(),
            blocks_per_slot: cfg.blocks_per_slot.max(1),
            initial_block: cfg.initial_block,
            slots_per_epoch: cfg.slots_per_epoch.max(1),
            committee_size: cfg.committee_size.max(1),
            l1_chain_id: cfg.l1_chain_id,
            rollup_version: cfg.rollup_version,
            seed: hash2(cfg.l1_chain_id, cfg.rollup_version),
            fork_from: None,
        }
    }

    /// This chain on another branch from block `fork_from` on (`None`: the canonical one).
    pub(crate) fn on_branch(self, fork_from: Option<u64>) -> Chain {
        Chain { fork_from, ..self }
    }

    /// The tag of a value of `kind` belonging to block `n` (another one on a forked branch).
    fn tag_at(&self, kind: u64, n: u64) -> u64 {
        match self.fork_from {
            Some(f) if n >= f => hash2(self.tag(kind), 0xf0f),
            _ => self.tag(kind),
        }
    }

    /// Recovers a block number from a value of `kind` written by [`Chain::tag_at`].
    fn decode_at(&self, kind: u64, text: &str) -> Option<u64> {
        decode_field(self.tag(kind), text).filter(|&n| self.fork_from.is_none_or(|f| n < f)).or_else(|| {
            decode_field(self.tag_at(kind, u64::MAX), text).filter(|&n| self.fork_from.is_some_and(|f| n >= f))
        })
    }

    fn tag(&self, kind: u64) -> u64 {
        hash2(self.seed, kind)
    }

    /// The proposed tip at wall-clock time `now_ms` (no lag applied).
    pub(crate) fn tip_at(&self, now_ms: u64) -> u64 {
        if self.block_ms == 0 || now_ms <= self.genesis_ms {
            return self.initial_block;
        }
        self.initial_block + (now_ms - self.genesis_ms) / self.block_ms
    }

    /// The slot a block belongs to.
    pub(crate) fn slot_of(&self, block: u64) -> u64 {
        block / self.blocks_per_slot
    }

    /// All four tips for a proposed tip: checkpointed is the last block of the previous slot,
    /// proven the last block before the current epoch, finalized one epoch earlier.
    pub(crate) fn tips(&self, proposed: u64) -> Tips {
        let slot = self.slot_of(proposed);
        let epoch_blocks = self.slots_per_epoch * self.blocks_per_slot;
        let epoch = slot / self.slots_per_epoch;
        let checkpointed = (slot * self.blocks_per_slot).saturating_sub(1).min(proposed);
        let proven = (epoch * epoch_blocks).saturating_sub(1).min(checkpointed);
        let finalized = (epoch.saturating_sub(1) * epoch_blocks).saturating_sub(1).min(proven);
        Tips { proposed, checkpointed, proven, finalized }
    }

    fn time_ms(&self, blocks_from_initial: i128) -> u64 {
        let t = i128::from(self.genesis_ms) + blocks_from_initial * i128::from(self.nominal_block_ms);
        u64::try_from(t.max(0)).unwrap_or(u64::MAX)
    }

    /// Unix time (ms) of block `n`.
    pub(crate) fn block_time_ms(&self, n: u64) -> u64 {
        self.time_ms(i128::from(n) - i128::from(self.initial_block))
    }

    /// Unix time (ms) at which `slot` starts.
    pub(crate) fn slot_time_ms(&self, slot: u64) -> u64 {
        self.block_time_ms(slot * self.blocks_per_slot)
    }

    /// Slot duration in whole seconds (at least 1).
    pub(crate) fn slot_seconds(&self) -> u64 {
        (self.nominal_block_ms * self.blocks_per_slot / 1000).max(1)
    }

    /// Appends the quoted hash of block `n`.
    pub(crate) fn write_block_hash(&self, out: &mut Vec<u8>, n: u64) {
        write_field(out, self.tag_at(TAG_BLOCK, n), n);
    }

    fn write_archive(&self, out: &mut Vec<u8>, n: u64) {
        out.extend_from_slice(b"{\"root\":");
        write_field(out, self.tag_at(TAG_ARCHIVE, n), n);
        out.extend_from_slice(b",\"nextAvailableLeafIndex\":");
        write_u64(out, n + 1);
        out.push(b'}');
    }

    fn write_tree(&self, out: &mut Vec<u8>, name: &str, tree: u64, n: u64, leaves_per_block: u64) {
        out.extend_from_slice(b"\"");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"\":{\"root\":");
        write_field(out, self.tag_at(TAG_STATE + tree * 16, n), n);
        out.extend_from_slice(b",\"nextAvailableLeafIndex\":");
        write_u64(out, (n + 1) * leaves_per_block);
        out.push(b'}');
    }

    /// Appends the block header of block `n` as the node of `version` serializes its
    /// `BlockHeader`: from v4 on (checkpoints) the content commitment moved to the checkpoint
    /// header, so a block header is `lastArchive, state, spongeBlobHash, globalVariables,
    /// totalFees, totalManaUsed`; v3 headers still carry `contentCommitment`. Every hash and
    /// root is a BN254 field element, and `totalFees` / `totalManaUsed` are fields too.
    pub(crate) fn write_header(&self, out: &mut Vec<u8>, n: u64, version: ApiVersion) {
        out.extend_from_slice(b"{\"lastArchive\":");
        self.write_archive(out, n.saturating_sub(1));
        if version <= ApiVersion::V3 {
            out.extend_from_slice(b",\"contentCommitment\":{\"blobsHash\":");
            write_field(out, self.tag_at(TAG_STATE + 1, n), n);
            out.extend_from_slice(b",\"inHash\":");
            write_field(out, self.tag_at(TAG_STATE + 2, n), n);
            out.extend_from_slice(b",\"outHash\":");
            write_field(out, self.tag_at(TAG_STATE + 3, n), n);
            out.push(b'}');
        }
        out.extend_from_slice(b",\"state\":{");
        self.write_tree(out, "l1ToL2MessageTree", 1, n, 16);
        out.extend_from_slice(b",\"partial\":{");
        self.write_tree(out, "noteHashTree", 2, n, 64);
        out.push(b',');
        self.write_tree(out, "nullifierTree", 3, n, 64);
        out.push(b',');
        self.write_tree(out, "publicDataTree", 4, n, 8);
        out.extend_from_slice(b"}},\"spongeBlobHash\":");
        write_field(out, self.tag_at(TAG_STATE + 5, n), n);
        out.extend_from_slice(b",\"globalVariables\":{\"chainId\":");
        write_small_field(out, self.l1_chain_id);
        out.extend_from_slice(b",\"version\":");
        write_small_field(out, self.rollup_version);
        out.extend_from_slice(b",\"blockNumber\":");
        write_u64(out, n);
        out.extend_from_slice(b",\"slotNumber\":");
        write_small_field(out, self.slot_of(n));
        out.extend_from_slice(b",\"timestamp\":");
        write_u64_str(out, self.block_time_ms(n) / 1000);
        out.extend_from_slice(b",\"coinbase\":");
        write_address(out, self.tag(TAG_COINBASE), self.slot_of(n) % 97);
        out.extend_from_slice(b",\"feeRecipient\":");
        write_field(out, self.tag(TAG_COINBASE + 1), self.slot_of(n) % 97);
        out.extend_from_slice(b",\"gasFees\":");
        self.write_fees(out, n);
        out.extend_from_slice(b"},\"totalFees\":");
        write_small_field(out, 0);
        out.extend_from_slice(b",\"totalManaUsed\":");
        write_small_field(out, 0);
        out.push(b'}');
    }

    /// Appends `{feePerDaGas, feePerL2Gas}` for block `n`, as decimal strings.
    pub(crate) fn write_fees(&self, out: &mut Vec<u8>, n: u64) {
        out.extend_from_slice(b"{\"feePerDaGas\":\"0\",\"feePerL2Gas\":");
        write_u64_str(out, 10_000_000 + hash2(self.seed, n) % 1_000_000);
        out.push(b'}');
    }

    /// Appends block `n` in the version's `getBlock` shape.
    ///
    /// v4 is exactly what a 4.x node serializes from its `L2Block`: `archive, header, body,
    /// checkpointNumber, indexWithinCheckpoint` (no `hash` or `number`: the client derives
    /// them). v3 blocks carry `hash` and `number` and no checkpoint; v5+ blocks carry `hash`,
    /// `number` and the checkpoint position, and no body.
    pub(crate) fn write_block(&self, out: &mut Vec<u8>, n: u64, version: ApiVersion) {
        out.extend_from_slice(b"{\"archive\":");
        self.write_archive(out, n);
        out.extend_from_slice(b",\"header\":");
        self.write_header(out, n, version);
        if version <= ApiVersion::V4 {
            out.extend_from_slice(b",\"body\":{\"txEffects\":[]}");
        }
        if version != ApiVersion::V4 {
            out.extend_from_slice(b",\"hash\":");
            self.write_block_hash(out, n);
            out.extend_from_slice(b",\"number\":");
            write_u64(out, n);
        }
        if version >= ApiVersion::V4 {
            out.extend_from_slice(b",\"checkpointNumber\":");
            write_u64(out, self.slot_of(n));
            out.extend_from_slice(b",\"indexWithinCheckpoint\":");
            write_u64(out, n % self.blocks_per_slot);
        }
        out.push(b'}');
    }

    fn write_block_id(&self, out: &mut Vec<u8>, n: u64) {
        out.extend_from_slice(b"{\"number\":");
        write_u64(out, n);
        out.extend_from_slice(b",\"hash\":");
        self.write_block_hash(out, n);
        out.push(b'}');
    }

    fn write_tier(&self, out: &mut Vec<u8>, n: u64) {
        out.extend_from_slice(b"{\"block\":");
        self.write_block_id(out, n);
        out.extend_from_slice(b",\"checkpoint\":{\"number\":");
        let cp = self.slot_of(n);
        write_u64(out, cp);
        out.extend_from_slice(b",\"hash\":");
        write_field(out, self.tag_at(TAG_CHECKPOINT, (cp + 1) * self.blocks_per_slot - 1), cp);
        out.extend_from_slice(b"}}");
    }

    /// Appends the nested L2Tips shape (v4 `getL2Tips`, v5+ `getChainTips`).
    pub(crate) fn write_nested_tips(&self, out: &mut Vec<u8>, t: &Tips) {
        out.extend_from_slice(b"{\"proposed\":");
        self.write_block_id(out, t.proposed);
        out.extend_from_slice(b",\"checkpointed\":");
        self.write_tier(out, t.checkpointed);
        out.extend_from_slice(b",\"proven\":");
        self.write_tier(out, t.proven);
        out.extend_from_slice(b",\"finalized\":");
        self.write_tier(out, t.finalized);
        out.push(b'}');
    }

    /// Appends the flat v2/v3 `getL2Tips` shape `{latest, proven, finalized}`.
    pub(crate) fn write_flat_tips(&self, out: &mut Vec<u8>, t: &Tips) {
        out.extend_from_slice(b"{\"latest\":");
        self.write_block_id(out, t.proposed);
        out.extend_from_slice(b",\"proven\":");
        self.write_block_id(out, t.proven);
        out.extend_from_slice(b",\"finalized\":");
        self.write_block_id(out, t.finalized);
        out.push(b'}');
    }

    /// Resolves a tip tag (`proposed`/`latest`, `checkpointed`, `proven`, `finalized`).
    pub(crate) fn tag_block(t: &Tips, tag: &str) -> Option<u64> {
        match tag {
            "proposed" | "latest" => Some(t.proposed),
            "checkpointed" => Some(t.checkpointed),
            "proven" => Some(t.proven),
            "finalized" => Some(t.finalized),
            _ => None,
        }
    }

    /// Resolves a `BlockParameter` to a block number. `Ok(None)` is a well-formed reference to
    /// a block this chain does not have (unknown hash or archive root).
    pub(crate) fn resolve_block(&self, param: &RawValue, t: &Tips) -> Result<Option<u64>, RpcError> {
        let value: Value =
            serde_json::from_str(param.get()).map_err(|_| RpcError::invalid_params("Invalid block parameter (0)"))?;
        self.resolve_value(&value, t)
    }

    fn resolve_value(&self, value: &Value, t: &Tips) -> Result<Option<u64>, RpcError> {
        let bad = || RpcError::invalid_params("Invalid block parameter (0)");
        match value {
            Value::Number(n) => n.as_u64().map(Some).ok_or_else(bad),
            Value::String(s) => {
                if let Some(n) = Chain::tag_block(t, s) {
                    Ok(Some(n))
                } else if s.starts_with("0x") {
                    Ok(self.decode_at(TAG_BLOCK, s))
                } else {
                    s.parse().map(Some).map_err(|_| bad())
                }
            }
            Value::Object(map) => {
                if let Some(v) = map.get("number").or_else(|| map.get("hash")) {
                    self.resolve_value(v, t)
                } else if let Some(Value::String(tag)) = map.get("tag") {
                    Chain::tag_block(t, tag).map(Some).ok_or_else(bad)
                } else if let Some(Value::String(root)) = map.get("archive") {
                    Ok(self.decode_at(TAG_ARCHIVE, root))
                } else {
                    Err(bad())
                }
            }
            _ => Err(bad()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chain() -> Chain {
        Chain::new(&SimConfig::for_tests(ApiVersion::V5))
    }

    #[test]
    fn tips_are_ordered_and_positive() {
        let c = chain();
        for tip in [20_000, 20_001, 20_063, 20_064, 20_127, 999_999] {
            let t = c.tips(tip);
            assert!(t.proposed >= t.checkpointed, "{t:?}");
            assert!(t.checkpointed >= t.proven, "{t:?}");
            assert!(t.proven >= t.finalized, "{t:?}");
            assert!(t.finalized > 0, "{t:?}");
        }
    }

    #[test]
    fn hashes_resolve_back_to_blocks() {
        let c = chain();
        let t = c.tips(20_000);
        let mut out = Vec::new();
        c.write_block_hash(&mut out, 1234);
        let raw = RawValue::from_string(String::from_utf8(out).unwrap()).unwrap();
        assert_eq!(c.resolve_block(&raw, &t).unwrap(), Some(1234));
        let tag = RawValue::from_string("\"proven\"".to_owned()).unwrap();
        assert_eq!(c.resolve_block(&tag, &t).unwrap(), Some(t.proven));
        let obj = RawValue::from_string("{\"number\":7}".to_owned()).unwrap();
        assert_eq!(c.resolve_block(&obj, &t).unwrap(), Some(7));
        let bad = RawValue::from_string("true".to_owned()).unwrap();
        assert!(c.resolve_block(&bad, &t).is_err());
    }

    #[test]
    fn blocks_are_valid_json() {
        let c = chain();
        for v in [ApiVersion::V3, ApiVersion::V4, ApiVersion::V5, ApiVersion::V6] {
            let mut out = Vec::new();
            c.write_block(&mut out, 42, v);
            let block: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(block.get("number").is_some(), v != ApiVersion::V4, "{v}");
            assert_eq!(block.get("body").is_some(), v <= ApiVersion::V4, "{v}");
            assert_eq!(block["header"]["globalVariables"]["blockNumber"], 42);
            assert_eq!(block["header"].get("contentCommitment").is_some(), v == ApiVersion::V3, "{v}");
        }
        let mut out = Vec::new();
        c.write_block(&mut out, 42, ApiVersion::V4);
        let v4: serde_json::Map<String, Value> = serde_json::from_slice(&out).unwrap();
        // Key sets only (serde_json sorts keys): exactly what a 4.x node sends.
        let keys: Vec<&str> = v4.keys().map(String::as_str).collect();
        assert_eq!(keys, ["archive", "body", "checkpointNumber", "header", "indexWithinCheckpoint"]);
        let header: serde_json::Map<String, Value> = serde_json::from_value(v4["header"].clone()).unwrap();
        let keys: Vec<&str> = header.keys().map(String::as_str).collect();
        assert_eq!(keys, ["globalVariables", "lastArchive", "spongeBlobHash", "state", "totalFees", "totalManaUsed"]);
        let mut out = Vec::new();
        c.write_nested_tips(&mut out, &c.tips(20_000));
        let tips: Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(tips["proposed"]["number"], 20_000);
    }

    #[test]
    fn a_branch_hashes_differently_from_its_fork_point_and_resolves_its_own_hashes() {
        let main = chain();
        let fork = main.on_branch(Some(100));
        let hash = |c: &Chain, n: u64| {
            let mut out = Vec::new();
            c.write_block_hash(&mut out, n);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(hash(&main, 99), hash(&fork, 99), "shared history below the fork");
        assert_ne!(hash(&main, 100), hash(&fork, 100));
        let t = main.tips(20_000);
        let raw = |h: String| RawValue::from_string(h).unwrap();
        assert_eq!(fork.resolve_block(&raw(hash(&fork, 150)), &t).unwrap(), Some(150));
        assert_eq!(fork.resolve_block(&raw(hash(&fork, 50)), &t).unwrap(), Some(50));
        assert_eq!(fork.resolve_block(&raw(hash(&main, 150)), &t).unwrap(), None, "not on this branch");
        assert_eq!(main.resolve_block(&raw(hash(&fork, 150)), &t).unwrap(), None);
    }
}
