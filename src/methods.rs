//! The one method table: every public Aztec node method (AZTEC-RPC.md §2.1 and §2.2) by its
//! name without namespace, with its class. The allow list, retry policy, stickiness, cache,
//! coalescing and metrics labels all read this table; there is no second list.

use std::collections::HashMap;
use std::sync::OnceLock;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Method class (AZTEC-RPC.md §2 legend).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// Immutable once anchored to a finalized block or a content hash.
    Immutable,
    /// Immutable for the key once found and finalized; never cache negatives.
    ImmutableOnceFound,
    /// Volatile chain-tip or time-based data.
    Volatile,
    /// Local state of one node (mempool, p2p, sentinel).
    NodeLocal,
    /// Static per deployment or per node.
    Static,
    /// Heavy compute.
    Heavy,
    /// Write.
    Write,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// Name without namespace, e.g. `getBlock`.
    pub name: &'static str,
    /// Class.
    pub class: Class,
    /// Whether the method only exists on nodes before v5 (`node_*` only).
    pub legacy_only: bool,
}

impl MethodInfo {
    /// Safe to retry on another node and to coalesce: anything but a write.
    pub fn is_read(&self) -> bool {
        self.class != Class::Write
    }
}

macro_rules! table {
    ($($name:literal => $class:ident $(, $legacy:ident)?;)*) => {
        /// Every known public method.
        pub const METHODS: &[MethodInfo] = &[
            $(MethodInfo { name: $name, class: Class::$class, legacy_only: table!(@l $($legacy)?) },)*
        ];
    };
    (@l legacy) => { true };
    (@l) => { false };
}

table! {
    "getBlockNumber" => Volatile;
    "getCheckpointNumber" => Volatile;
    "getChainTips" => Volatile;
    "getL1Constants" => Static;
    "getSyncedL2SlotNumber" => Volatile;
    "getSyncedL2EpochNumber" => Volatile;
    "getSyncedL1Timestamp" => Volatile;
    "getWorldStateSyncStatus" => Volatile;
    "isReady" => Volatile;
    "getBlock" => Immutable;
    "getBlockData" => Immutable;
    "getBlocks" => Immutable;
    "getCheckpoint" => Immutable;
    "getCheckpoints" => Immutable;
    "getCheckpointsData" => Immutable;
    "getTxReceipt" => Volatile;
    "getTxEffect" => ImmutableOnceFound;
    "getTxByHash" => NodeLocal;
    "getTxsByHash" => NodeLocal;
    "getPendingTxs" => NodeLocal;
    "getPendingTxCount" => NodeLocal;
    "sendTx" => Write;
    "isValidTx" => Heavy;
    "simulatePublicCalls" => Heavy;
    "getPublicStorageAt" => Immutable;
    "findLeavesIndexes" => Immutable;
    "getNullifierMembershipWitness" => Immutable;
    "getLowNullifierMembershipWitness" => Immutable;
    "getPublicDataWitness" => Immutable;
    "getNoteHashMembershipWitness" => Immutable;
    "getBlockHashMembershipWitness" => Immutable;
    "getL1ToL2MessageMembershipWitness" => Immutable;
    "getL1ToL2MessageCheckpoint" => ImmutableOnceFound;
    "getL1ToL2MessageIndex" => ImmutableOnceFound;
    "getL2ToL1Messages" => Immutable;
    "getL2ToL1MembershipWitness" => ImmutableOnceFound;
    "getPrivateLogsByTags" => Volatile;
    "getPublicLogsByTags" => Volatile;
    "getContractClass" => ImmutableOnceFound;
    "getContract" => Immutable;
    "getNodeInfo" => Static;
    "getNodeVersion" => Static;
    "getVersion" => Static;
    "getChainId" => Static;
    "getL1ContractAddresses" => Static;
    "getProtocolContractAddresses" => Static;
    "getCurrentMinFees" => Volatile;
    "getMaxPriorityFees" => Volatile;
    "getPredictedMinFees" => Volatile;
    "getValidatorsStats" => NodeLocal;
    "getValidatorStats" => NodeLocal;
    "getValidatorStatsBatch" => NodeLocal;
    "getTxEffectMembershipWitness" => ImmutableOnceFound;
    "getBlockHashMembershipWitnessAtArchive" => ImmutableOnceFound;
    "getEncodedEnr" => Static;
    "getAllowedPublicSetup" => Static;
    "getPeers" => NodeLocal;
    "getCheckpointAttestationsForSlot" => NodeLocal;
    "getProposalsForSlot" => NodeLocal;
    "getL2Tips" => Volatile, legacy;
    "getProvenBlockNumber" => Volatile, legacy;
    "getCheckpointedBlockNumber" => Volatile, legacy;
    "getBlockByHash" => ImmutableOnceFound, legacy;
    "getBlockByArchive" => ImmutableOnceFound, legacy;
    "getBlockHeader" => Immutable, legacy;
    "getBlockHeaderByArchive" => ImmutableOnceFound, legacy;
    "getCheckpointedBlocks" => Immutable, legacy;
    "getCheckpointsDataForEpoch" => Immutable, legacy;
    "isL1ToL2MessageSynced" => Volatile, legacy;
    "getPublicLogs" => Volatile, legacy;
    "getContractClassLogs" => Volatile, legacy;
    "getPublicLogsByTagsFromContract" => Volatile, legacy;
    "getCurrentBaseFees" => Volatile, legacy;
}

/// The two public namespaces.
pub const NAMESPACES: [&str; 2] = ["aztec", "node"];

/// Looks a full method name (`aztec_getBlock`, `node_getBlock`) up in the table; `None` for
/// anything else.
pub fn lookup(method: &str) -> Option<&'static MethodInfo> {
    let (ns, name) = method.split_once('_')?;
    if !NAMESPACES.contains(&ns) {
        return None;
    }
    by_name().get(name).map(|&i| &METHODS[i])
}

/// Name → index, built once (the request path looks methods up several times per item).
fn by_name() -> &'static HashMap<&'static str, usize> {
    static MAP: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    MAP.get_or_init(|| METHODS.iter().enumerate().map(|(i, m)| (m.name, i)).collect())
}

/// The same method in the other public namespace (`aztec_x` ↔ `node_x`).
pub fn other_namespace(method: &str) -> Option<String> {
    match method.split_once('_')? {
        ("aztec", rest) => Some(format!("node_{rest}")),
        ("node", rest) => Some(format!("aztec_{rest}")),
        _ => None,
    }
}

/// Methods whose first param is a block and whose answer needs that block's world state, which
/// pruned nodes drop (`getWorldStateSyncStatus.oldestHistoricBlockNumber`).
pub fn reads_world_state(name: &str) -> bool {
    matches!(
        name,
        "getPublicStorageAt"
            | "findLeavesIndexes"
            | "getNullifierMembershipWitness"
            | "getLowNullifierMembershipWitness"
            | "getPublicDataWitness"
            | "getNoteHashMembershipWitness"
            | "getBlockHashMembershipWitness"
            | "getL1ToL2MessageMembershipWitness"
    )
}

/// Allow / deny decision from `ALLOW_METHODS` / `DENY_METHODS` globs. Deny wins. With no allow
/// globs, the public table in both namespaces is allowed.
#[derive(Debug)]
pub struct Policy {
    allow: Option<GlobSet>,
    deny: GlobSet,
    /// The decision for every table method in both namespaces, precomputed so the common case
    /// costs one hash look-up instead of running the globs.
    known: HashMap<String, bool>,
}

impl Policy {
    /// Builds the policy; invalid globs were rejected by config validation and are skipped.
    pub fn new(allow: &[String], deny: &[String]) -> Policy {
        let build = |globs: &[String]| {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                if let Ok(g) = Glob::new(g) {
                    b.add(g);
                }
            }
            b.build().unwrap_or_else(|_| GlobSet::empty())
        };
        let mut policy =
            Policy { allow: (!allow.is_empty()).then(|| build(allow)), deny: build(deny), known: HashMap::new() };
        let names: Vec<String> =
            NAMESPACES.iter().flat_map(|ns| METHODS.iter().map(move |m| format!("{ns}_{}", m.name))).collect();
        for name in names {
            let decision = policy.decide(&name);
            policy.known.insert(name, decision);
        }
        policy
    }

    /// Whether a client may call `method`.
    pub fn allows(&self, method: &str) -> bool {
        match self.known.get(method) {
            Some(d) => *d,
            None => self.decide(method),
        }
    }

    fn decide(&self, method: &str) -> bool {
        if self.deny.is_match(method) {
            return false;
        }
        match &self.allow {
            Some(set) => set.is_match(method),
            None => lookup(method).is_some() && !is_unsafe_legacy(method),
        }
    }
}

/// `registerContractFunctionSignatures` writes to node memory without auth on v4: never public.
fn is_unsafe_legacy(method: &str) -> bool {
    method.ends_with("_registerContractFunctionSignatures")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DEFAULT_DENY;

    fn default_policy() -> Policy {
        let deny: Vec<String> = DEFAULT_DENY.split(',').map(str::to_owned).collect();
        Policy::new(&[], &deny)
    }

    #[test]
    fn public_methods_allowed_in_both_namespaces() {
        let p = default_policy();
        for m in ["aztec_getBlockNumber", "node_getBlockNumber", "node_getL2Tips", "aztec_sendTx"] {
            assert!(p.allows(m), "{m}");
        }
    }

    #[test]
    fn admin_debug_prover_and_unknown_denied() {
        let p = default_policy();
        for m in [
            "nodeAdmin_setConfig",
            "aztecAdmin_rollbackTo",
            "aztecDebug_mineBlock",
            "prover_startProof",
            "provingJobSource_getProvingJob",
            "bot_run",
            "p2p_getPeers",
            "eth_blockNumber",
            "node_registerContractFunctionSignatures",
            "aztec_constructor",
        ] {
            assert!(!p.allows(m), "{m}");
        }
    }

    #[test]
    fn deny_wins_over_allow() {
        let p = Policy::new(&["aztec_*".into()], &["aztec_sendTx".into()]);
        assert!(p.allows("aztec_getBlock"));
        assert!(!p.allows("aztec_sendTx"));
        assert!(!p.allows("node_getBlock"));
    }

    #[test]
    fn namespace_translation() {
        assert_eq!(other_namespace("aztec_getBlock").as_deref(), Some("node_getBlock"));
        assert_eq!(other_namespace("node_isReady").as_deref(), Some("aztec_isReady"));
        assert_eq!(other_namespace("p2p_x"), None);
        assert!(lookup("aztec_sendTx").is_some_and(|m| !m.is_read()));
    }
}
