//! The one method table: every public Aztec node method (docs/aztec-api.md#method-classes, #renames) by its
//! name without namespace, with its class. The allow list, retry policy, stickiness, cache,
//! coalescing and metrics labels all read this table; there is no second list.

use std::sync::OnceLock;

use foldhash::HashMap;

use globset::{Glob, GlobSet, GlobSetBuilder};

/// Method class (docs/aztec-api.md#method-classes).
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

/// Whether and how an answer may be cached (the cache's `policy` applies it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keep {
    /// Never cached.
    Never,
    /// A tip or block number: `CACHE_VOLATILE_MS`, when called without params.
    Tip,
    /// The same on every node of the network (constants, ids, addresses): one minute.
    Network,
    /// Anchored to its first param, a block number: kept once that block is finalized.
    Anchored,
    /// A block look-up: as `Anchored`, or by hash/tag once the block returned is finalized.
    Block,
    /// `getBlocks(from, limit)`: kept once the whole range is finalized.
    Range,
    /// A receipt: kept once its status is `finalized`.
    OnceFinal,
    /// Content-addressed: kept for good once found.
    Forever,
}

/// One row of the table.
#[derive(Clone, Copy, Debug)]
pub struct MethodInfo {
    /// Name without namespace, e.g. `getBlock`.
    pub name: &'static str,
    /// Class.
    pub class: Class,
    /// Oldest node API major version that serves the method.
    pub since: u8,
    /// Newest node API major version that serves the method (`u8::MAX`: still served).
    pub until: u8,
    /// The answer's shape differs between API generations (`node_*` clients of v4 and older,
    /// `aztec_*` clients of v5 and newer), so it is served by a node of the caller's
    /// generation when one is routable, and cached per generation.
    pub by_generation: bool,
    /// How the answer may be cached.
    pub keep: Keep,
    /// The first param is a block whose world state the answer needs (pruned nodes drop it,
    /// see `getWorldStateSyncStatus.oldestHistoricBlockNumber`).
    pub world_state: bool,
    /// What one call weighs against the client's rate limit and `MAX_CONCURRENT_REQUESTS`
    /// (README, "Request weights"): 1 for a plain read, more for what costs the node more.
    /// Written in the table as `[n]` after the class; by default 10 for heavy simulations, 5
    /// for world-state reads (witnesses, storage), else 1.
    pub cost: u32,
    /// A look-up of a transaction by hash, which goes to the node that accepted the tx through
    /// us until its receipt is mined (read-your-writes: the tx is pending on that node only).
    pub follows_send: bool,
}

impl MethodInfo {
    /// The same answer from every node, so identical in-flight calls may share one node call:
    /// anything but node-local state, heavy simulations and writes.
    pub fn is_shareable(&self) -> bool {
        matches!(self.class, Class::Immutable | Class::ImmutableOnceFound | Class::Volatile | Class::Static)
    }

    /// Safe to retry on another node and to coalesce: anything but a write.
    pub fn is_read(&self) -> bool {
        self.class != Class::Write
    }

    /// Whether a node of API major version `major` serves the method under its own name.
    pub fn served_by(&self, major: u8) -> bool {
        (self.since..=self.until).contains(&major)
    }
}

macro_rules! table {
    ($($name:literal => $class:ident $(($keep:ident))? $([$cost:literal])? $(, $lo:literal ..= $hi:literal)? $(, $flag:ident)*;)*) => {
        /// Every known public method.
        pub const METHODS: &[MethodInfo] = &[
            $(MethodInfo {
                name: $name,
                class: Class::$class,
                since: table!(@lo $($lo)?),
                until: table!(@hi $($hi)?),
                by_generation: table!(@gen $($flag)*),
                keep: table!(@keep $class $($keep)?),
                world_state: table!(@ws $($flag)*),
                cost: table!(@cost [$($cost)?] $class $($flag)*),
                follows_send: table!(@fs $($flag)*),
            },)*
        ];
    };
    (@lo $lo:literal) => { $lo };
    (@lo) => { 0 };
    (@hi $hi:literal) => { $hi };
    (@hi) => { u8::MAX };
    (@gen by_generation $($rest:ident)*) => { true };
    (@gen $other:ident $($rest:ident)*) => { table!(@gen $($rest)*) };
    (@gen) => { false };
    (@ws world_state $($rest:ident)*) => { true };
    (@ws $other:ident $($rest:ident)*) => { table!(@ws $($rest)*) };
    (@ws) => { false };
    (@fs follows_send $($rest:ident)*) => { true };
    (@fs $other:ident $($rest:ident)*) => { table!(@fs $($rest)*) };
    (@fs) => { false };
    (@cost [$cost:literal] $($rest:ident)*) => { $cost };
    (@cost [] Heavy $($flag:ident)*) => { 10 };
    (@cost [] $class:ident $($flag:ident)*) => { if table!(@ws $($flag)*) { 5 } else { 1 } };
    (@keep $class:ident $keep:ident) => { Keep::$keep };
    (@keep Immutable) => { Keep::Anchored };
    (@keep $class:ident) => { Keep::Never };
}

table! {
    "getBlockNumber" => Volatile(Tip);
    "getCheckpointNumber" => Volatile(Tip), 4..=255;
    "getChainTips" => Volatile(Tip), 5..=255, by_generation;
    "getL1Constants" => Static(Network), 5..=255;
    "getSyncedL2SlotNumber" => Volatile, 5..=255;
    "getSyncedL2EpochNumber" => Volatile, 5..=255;
    "getSyncedL1Timestamp" => Volatile, 5..=255;
    "getWorldStateSyncStatus" => Volatile;
    "isReady" => Volatile;
    "getBlock" => Immutable(Block), by_generation;
    "getBlockData" => Immutable(Block), 5..=255;
    "getBlocks" => Immutable(Range)[10], by_generation;
    "getCheckpoint" => Immutable, 5..=255;
    "getCheckpoints" => Immutable[10], by_generation;
    "getCheckpointsData" => Immutable[10], 5..=255;
    "getTxReceipt" => Volatile(OnceFinal), by_generation, follows_send;
    "getTxEffect" => ImmutableOnceFound;
    "getTxByHash" => NodeLocal, follows_send;
    "getTxsByHash" => NodeLocal;
    "getPendingTxs" => NodeLocal;
    "getPendingTxCount" => NodeLocal;
    "sendTx" => Write;
    "isValidTx" => Heavy;
    "simulatePublicCalls" => Heavy;
    "getPublicStorageAt" => Immutable, world_state;
    "findLeavesIndexes" => Immutable, world_state;
    "getNullifierMembershipWitness" => Immutable, world_state;
    "getLowNullifierMembershipWitness" => Immutable, world_state;
    "getPublicDataWitness" => Immutable, world_state;
    "getNoteHashMembershipWitness" => Immutable, world_state;
    "getBlockHashMembershipWitness" => Immutable, world_state;
    "getL1ToL2MessageMembershipWitness" => Immutable, world_state;
    "getL1ToL2MessageCheckpoint" => ImmutableOnceFound, 0..=5;
    "getL1ToL2MessageIndex" => ImmutableOnceFound, 6..=255;
    "getL2ToL1Messages" => Immutable;
    "getL2ToL1MembershipWitness" => ImmutableOnceFound[5], 5..=255;
    "getPrivateLogsByTags" => Volatile[5];
    "getPublicLogsByTags" => Volatile[5], 5..=255;
    "getContractClass" => ImmutableOnceFound(Forever);
    "getContract" => Immutable;
    "getNodeInfo" => Static;
    "getNodeVersion" => Static;
    "getVersion" => Static(Network);
    "getChainId" => Static(Network);
    "getL1ContractAddresses" => Static(Network);
    "getProtocolContractAddresses" => Static(Network);
    "getCurrentMinFees" => Volatile, 4..=255;
    "getMaxPriorityFees" => Volatile, 4..=255;
    "getPredictedMinFees" => Volatile, 5..=255;
    "getValidatorsStats" => NodeLocal[20], by_generation;
    "getValidatorStats" => NodeLocal, by_generation;
    "getValidatorStatsBatch" => NodeLocal[5], 6..=255;
    "getTxEffectMembershipWitness" => ImmutableOnceFound[5], 6..=255;
    "getBlockHashMembershipWitnessAtArchive" => ImmutableOnceFound[5], 6..=255;
    "getEncodedEnr" => Static;
    "getAllowedPublicSetup" => Static;
    "getPeers" => NodeLocal, 5..=255;
    "getCheckpointAttestationsForSlot" => NodeLocal, 5..=255;
    "getProposalsForSlot" => NodeLocal, 5..=255;
    "getL2Tips" => Volatile(Tip), 0..=4, by_generation;
    "getProvenBlockNumber" => Volatile(Tip), 0..=4;
    "getCheckpointedBlockNumber" => Volatile(Tip), 4..=4;
    "getBlockByHash" => ImmutableOnceFound, 0..=4, by_generation;
    "getBlockByArchive" => ImmutableOnceFound, 0..=4, by_generation;
    "getBlockHeader" => Immutable(Block), 0..=4;
    "getBlockHeaderByArchive" => ImmutableOnceFound, 0..=4;
    "getCheckpointedBlocks" => Immutable[10], 0..=4;
    "getCheckpointsDataForEpoch" => Immutable[10], 0..=4;
    "isL1ToL2MessageSynced" => Volatile, 0..=4;
    "getPublicLogs" => Volatile[5], 0..=4;
    "getContractClassLogs" => Volatile[5], 0..=4;
    "getPublicLogsByTagsFromContract" => Volatile[5], 0..=4;
    "getCurrentBaseFees" => Volatile, 0..=3;
}

/// The two public namespaces.
pub const NAMESPACES: [&str; 2] = ["aztec", "node"];

/// Looks a full method name (`aztec_getBlock`, `node_getBlock`) up in the table; `None` for
/// anything else.
pub fn lookup(method: &str) -> Option<&'static MethodInfo> {
    let name = NAMESPACES.iter().find_map(|ns| method.strip_prefix(ns)?.strip_prefix('_'))?;
    by_bare_name(name)
}

/// The namespace of a full method name (`aztec` of `aztec_getBlock`), if it has one.
pub fn namespace(method: &str) -> Option<&str> {
    // A byte scan: a char searcher costs more than the short names it searches.
    method.bytes().position(|b| b == b'_').map(|i| &method[..i])
}

/// Name → index, built once (the request path looks methods up several times per item).
fn by_name() -> &'static HashMap<&'static str, usize> {
    static MAP: OnceLock<HashMap<&'static str, usize>> = OnceLock::new();
    MAP.get_or_init(|| METHODS.iter().enumerate().map(|(i, m)| (m.name, i)).collect())
}

/// Looks a method up by its name without namespace (`getBlock`).
pub fn by_bare_name(name: &str) -> Option<&'static MethodInfo> {
    by_name().get(name).map(|&i| &METHODS[i])
}

impl MethodInfo {
    /// Position in [`METHODS`] (a stable small id for per-method bit sets).
    pub fn id(&self) -> usize {
        // Rows handed out by this module are elements of METHODS: their position is their
        // offset; a copy made elsewhere is found by name.
        let offset = (self as *const MethodInfo as usize).wrapping_sub(METHODS.as_ptr() as usize);
        let i = offset / std::mem::size_of::<MethodInfo>();
        if i < METHODS.len() && std::ptr::eq(&METHODS[i], self) {
            i
        } else {
            by_name().get(self.name).copied().unwrap_or(0)
        }
    }

    /// The full name in namespace `ns` (one of [`NAMESPACES`]; anything else is taken as the
    /// first), without allocating: the names are built once.
    pub fn full_name(&self, ns: &str) -> &'static str {
        static NAMES: OnceLock<Vec<[String; 2]>> = OnceLock::new();
        let names =
            NAMES.get_or_init(|| METHODS.iter().map(|m| NAMESPACES.map(|ns| format!("{ns}_{}", m.name))).collect());
        let which = NAMESPACES.iter().position(|n| *n == ns).unwrap_or(0);
        names[self.id()][which].as_str()
    }
}

/// What a call of `method` (full name) weighs against the rate limit and the concurrency limit:
/// its table [`MethodInfo::cost`], 1 for anything not in the table (it is refused or forwarded
/// as one call).
pub fn cost(method: &str) -> u32 {
    lookup(method).map_or(1, |m| m.cost)
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
            Policy { allow: (!allow.is_empty()).then(|| build(allow)), deny: build(deny), known: HashMap::default() };
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
    fn ids_and_version_ranges() {
        assert!(lookup("aztec_sendTx").is_some_and(|m| !m.is_read()));
        assert!(METHODS.len() <= 128, "Backend keeps a 128-bit set of lacked methods");
        for (i, m) in METHODS.iter().enumerate() {
            assert_eq!(m.id(), i, "{}", m.name);
            let copy = *m;
            assert_eq!(copy.id(), i, "a copy of {} is found by name", m.name);
            assert!(m.since <= m.until, "{}", m.name);
        }
        let block = lookup("node_getBlock").unwrap();
        assert_eq!((block.full_name("aztec"), block.full_name("node")), ("aztec_getBlock", "node_getBlock"));
        assert_eq!((namespace("aztec_getBlock"), namespace("getBlock")), (Some("aztec"), None));
        assert!(lookup("eth_getBlock").is_none() && lookup("aztec_").is_none() && lookup("getBlock").is_none());
        let cost = |m: &str| super::cost(m);
        assert_eq!((cost("aztec_getBlockNumber"), cost("node_getL2Tips"), cost("eth_blockNumber")), (1, 1, 1));
        assert_eq!((cost("aztec_getPublicDataWitness"), cost("aztec_getPublicStorageAt")), (5, 5), "world state");
        assert_eq!((cost("aztec_simulatePublicCalls"), cost("aztec_getBlocks")), (10, 10));
        assert_eq!((cost("aztec_getPublicLogsByTags"), cost("node_getPublicLogs")), (5, 5), "logs");
        assert_eq!(cost("aztec_getValidatorsStats"), 20);
        let tips = by_bare_name("getL2Tips").unwrap();
        assert!(tips.served_by(4) && !tips.served_by(5) && tips.by_generation);
    }
}
