//! Configuration of one simulated node: API version, chain clock, sentinel history profile.
//!
//! `SimConfig` is plain data, built by `SimConfig::for_tests`, `SimConfig::profile` or
//! `demo_fleet` and then owned (read-only) by the node's state. Nodes built from configs with the
//! same genesis, timing, chain id and rollup version agree on every tip, hash, committee and
//! mined slot, which is what lets several simulated nodes form one believable network.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::chain::Chain;
use super::faults::{Faults, ValidatorEpochs, ValidatorRef};
use super::stats::write_validator_address;

/// Fixed chain clock used by named profiles (2026-01-01T00:00:00Z), so that separately started
/// `simulate` processes agree on the tips.
pub const PROFILE_GENESIS_UNIX_MS: u64 = 1_767_225_600_000;

/// History depth above which a node keeps an archive-sized sentinel window and world state.
pub(crate) const ARCHIVE_DEPTH_EPOCHS: u64 = 100;

/// Aztec node API generation, which decides method names, shapes and status strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ApiVersion {
    /// v3.x (Ignition testnet): `node_*`, flat `getL2Tips`, `block-*` statuses.
    V3,
    /// v4.x (Alpha): `node_*`, nested `getL2Tips`, `checkpoint-*` statuses.
    V4,
    /// v5.2: `aztec_*` plus `node_*` aliases, `getChainTips`, `getL1Constants`.
    V5,
    /// v6.0: v5 plus `getValidatorStatsBatch` and the unpublished/orphaned statuses.
    V6,
}

impl ApiVersion {
    /// The `x-aztec-packageVersion` this version reports, e.g. `"5.2.0"`.
    pub fn package_version(self) -> &'static str {
        match self {
            ApiVersion::V3 => "3.0.2",
            ApiVersion::V4 => "4.1.2",
            ApiVersion::V5 => "5.2.0",
            ApiVersion::V6 => "6.0.0",
        }
    }

    /// Whether this version serves the `aztec_*` namespace (v5+).
    pub fn has_aztec_namespace(self) -> bool {
        self >= ApiVersion::V5
    }
}

impl FromStr for ApiVersion {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "v3" | "3" => Ok(ApiVersion::V3),
            "v4" | "4" => Ok(ApiVersion::V4),
            "v5" | "5" => Ok(ApiVersion::V5),
            "v6" | "6" => Ok(ApiVersion::V6),
            other => Err(format!("unknown API version {other:?} (expected v3, v4, v5 or v6)")),
        }
    }
}

impl fmt::Display for ApiVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            ApiVersion::V3 => "v3",
            ApiVersion::V4 => "v4",
            ApiVersion::V5 => "v5",
            ApiVersion::V6 => "v6",
        };
        f.write_str(name)
    }
}

/// What the node's sentinel history (`getValidatorsStats`) looks like.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HistoryProfile {
    /// Deep, complete history (`history_epochs` deep, archive-sized `slotWindow`).
    Archiver,
    /// Recent, complete history: `slotWindow = history_epochs × slots_per_epoch`.
    Pruned,
    /// Like `Pruned`, but one epoch in five (absolute numbering, so two in any ten) has no
    /// records at all.
    Gapped,
    /// Inconsistent epochs (lost attestations, extra validators, missing proposer records) and
    /// flipped mined-ness on some slots, so cross-node consensus disagrees with this node.
    Corrupted,
    /// Sentinel off: `{"stats":{},"slotWindow":0}`.
    Disabled,
}

impl FromStr for HistoryProfile {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "archiver" => Ok(HistoryProfile::Archiver),
            "pruned" => Ok(HistoryProfile::Pruned),
            "gapped" => Ok(HistoryProfile::Gapped),
            "corrupted" => Ok(HistoryProfile::Corrupted),
            "disabled" => Ok(HistoryProfile::Disabled),
            other => Err(format!(
                "unknown history profile {other:?} (expected archiver, pruned, gapped, corrupted or disabled)"
            )),
        }
    }
}

impl fmt::Display for HistoryProfile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            HistoryProfile::Archiver => "archiver",
            HistoryProfile::Pruned => "pruned",
            HistoryProfile::Gapped => "gapped",
            HistoryProfile::Corrupted => "corrupted",
            HistoryProfile::Disabled => "disabled",
        };
        f.write_str(name)
    }
}

/// Everything that defines one simulated node.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// Display name (appears in the ENR and in logs).
    pub name: String,
    /// API generation served.
    pub version: ApiVersion,
    /// Shared chain clock: the wall-clock time at which the tip was `initial_block`.
    pub genesis_unix_ms: u64,
    /// Time per L2 block; 0 freezes the chain (the tip never moves), which tests use.
    pub block_ms: u64,
    /// L2 blocks per slot (one checkpoint per slot); the slot lasts `block_ms × blocks_per_slot`.
    pub blocks_per_slot: u64,
    /// Tip at genesis, so there is a long chain and history from the start.
    pub initial_block: u64,
    /// Slots per epoch (`epochDuration`).
    pub slots_per_epoch: u64,
    /// Committee members per epoch (`targetCommitteeSize`); the validator set is twice this.
    pub committee_size: u64,
    /// Shape of the sentinel history.
    pub history: HistoryProfile,
    /// Depth of sentinel history kept, in epochs.
    pub history_epochs: u64,
    /// Rollup version reported in `x-aztec-rollupVersion` and `getVersion`.
    pub rollup_version: u64,
    /// L1 chain id reported in `x-aztec-l1ChainId` and `getChainId`.
    pub l1_chain_id: u64,
    /// Faults active from the start.
    pub faults: Faults,
}

impl SimConfig {
    /// A frozen, healthy node for tests: pruned history of 24 epochs, committee 24, 32 slots per
    /// epoch, 2 blocks per slot, tip 20 000.
    pub fn for_tests(version: ApiVersion) -> Self {
        SimConfig {
            name: format!("sim-{version}"),
            version,
            genesis_unix_ms: PROFILE_GENESIS_UNIX_MS,
            block_ms: 0,
            blocks_per_slot: 2,
            initial_block: 20_000,
            slots_per_epoch: 32,
            committee_size: 24,
            history: HistoryProfile::Pruned,
            history_epochs: 24,
            rollup_version: 1_821_665_230,
            l1_chain_id: 11_155_111,
            faults: Faults::default(),
        }
    }

    /// A named, live profile (`archiver`, `pruned`, `gapped`, `corrupted`, `lagging`,
    /// `disabled`, `v3`..`v6`), on the shared clock `PROFILE_GENESIS_UNIX_MS` with 3 s blocks.
    pub fn profile(name: &str) -> Option<Self> {
        let lower = name.trim().to_ascii_lowercase();
        let (version, history, epochs) = match lower.as_str() {
            "archiver" => (ApiVersion::V6, HistoryProfile::Archiver, 120),
            "pruned" => (ApiVersion::V5, HistoryProfile::Pruned, 24),
            "gapped" => (ApiVersion::V5, HistoryProfile::Gapped, 24),
            "corrupted" => (ApiVersion::V5, HistoryProfile::Corrupted, 120),
            "lagging" => (ApiVersion::V4, HistoryProfile::Pruned, 24),
            "disabled" => (ApiVersion::V5, HistoryProfile::Disabled, 0),
            other => (other.parse().ok()?, HistoryProfile::Pruned, 24),
        };
        let mut cfg = SimConfig::for_tests(version);
        cfg.name = lower.clone();
        cfg.block_ms = 3_000;
        cfg.history = history;
        cfg.history_epochs = epochs;
        if lower == "lagging" {
            cfg.faults.lag_blocks = 10;
        }
        Some(cfg)
    }

    /// Milliseconds per block used for timestamps: `block_ms`, or 6 s when the chain is frozen.
    pub(crate) fn nominal_block_ms(&self) -> u64 {
        if self.block_ms == 0 {
            6_000
        } else {
            self.block_ms
        }
    }

    /// The address of validator `idx` of this config's network (`0x` + 40 lowercase hex digits;
    /// the set holds twice `committee_size` validators). Nodes of one network share addresses.
    pub fn validator_address(&self, idx: u64) -> String {
        let mut out = Vec::with_capacity(42);
        write_validator_address(&mut out, &Chain::new(&self.clone().normalized()), idx);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The same config with every divisor forced to be at least 1.
    pub(crate) fn normalized(mut self) -> Self {
        self.blocks_per_slot = self.blocks_per_slot.max(1);
        self.slots_per_epoch = self.slots_per_epoch.max(1);
        self.committee_size = self.committee_size.clamp(1, 10_000);
        self
    }
}

/// The validator the demo network has offline (every node's `offline_validators`).
pub const DEMO_OFFLINE_VALIDATOR: u64 = 5;

/// The demo network: four nodes sharing one chain clock (3 s blocks, 2 blocks per slot).
///
/// `archiver-1` (archiver, v6), `pruned-1` (pruned, v5), `corrupted-1` (corrupted archiver, v5)
/// and `lagging-1` (pruned, v4, 10 blocks behind). Validator [`DEMO_OFFLINE_VALIDATOR`] is
/// offline on the whole network (it misses every duty); watch it with
/// [`demo_watch_validators`].
pub fn demo_fleet(genesis_unix_ms: u64) -> Vec<SimConfig> {
    let node = |name: &str, version, history, epochs, lag| {
        let mut cfg = SimConfig::for_tests(version);
        cfg.name = name.to_owned();
        cfg.genesis_unix_ms = genesis_unix_ms;
        cfg.block_ms = 3_000;
        cfg.history = history;
        cfg.history_epochs = epochs;
        cfg.faults.lag_blocks = lag;
        cfg.faults.offline_validators =
            vec![ValidatorEpochs::from(vec![ValidatorRef::Index(DEMO_OFFLINE_VALIDATOR)], 0)];
        cfg
    };
    vec![
        node("archiver-1", ApiVersion::V6, HistoryProfile::Archiver, 120, 0),
        node("pruned-1", ApiVersion::V5, HistoryProfile::Pruned, 24, 0),
        node("corrupted-1", ApiVersion::V5, HistoryProfile::Corrupted, 120, 0),
        node("lagging-1", ApiVersion::V4, HistoryProfile::Pruned, 24, 10),
    ]
}

/// `WATCH_VALIDATORS` for the demo network: two reliable validators (0 and 1), the offline one
/// and an address the network does not have.
pub fn demo_watch_validators() -> Vec<String> {
    let cfg = SimConfig::for_tests(ApiVersion::V6);
    let mut out: Vec<String> = [0, 1, DEMO_OFFLINE_VALIDATOR].iter().map(|&i| cfg.validator_address(i)).collect();
    out.push(format!("0x{}", "5e".repeat(20)));
    out
}
