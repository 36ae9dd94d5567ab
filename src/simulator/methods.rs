//! The method table of the simulated node: which names exist in which API version, and how
//! many positional params each takes (docs/aztec-api.md#renames).
//!
//! `Method` is a plain enum so per-method call counters can be an array of atomics indexed by
//! it. The answers themselves are written by `answer.rs`.

use super::config::ApiVersion;

/// Every method the simulator answers (names without namespace).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Method {
    IsReady,
    GetBlockNumber,
    GetCheckpointNumber,
    GetProvenBlockNumber,
    GetCheckpointedBlockNumber,
    GetChainTips,
    GetL2Tips,
    GetL1Constants,
    GetNodeInfo,
    GetNodeVersion,
    GetVersion,
    GetChainId,
    GetL1ContractAddresses,
    GetProtocolContractAddresses,
    GetWorldStateSyncStatus,
    GetSyncedL2SlotNumber,
    GetSyncedL1Timestamp,
    GetBlock,
    GetBlockByHash,
    GetBlockHeader,
    GetCurrentMinFees,
    GetCurrentBaseFees,
    GetPendingTxCount,
    SendTx,
    GetTxReceipt,
    GetTxByHash,
    GetValidatorsStats,
    GetValidatorStats,
    GetValidatorStatsBatch,
}

impl Method {
    /// All methods, in counter-index order.
    pub(crate) const ALL: [Method; 29] = [
        Method::IsReady,
        Method::GetBlockNumber,
        Method::GetCheckpointNumber,
        Method::GetProvenBlockNumber,
        Method::GetCheckpointedBlockNumber,
        Method::GetChainTips,
        Method::GetL2Tips,
        Method::GetL1Constants,
        Method::GetNodeInfo,
        Method::GetNodeVersion,
        Method::GetVersion,
        Method::GetChainId,
        Method::GetL1ContractAddresses,
        Method::GetProtocolContractAddresses,
        Method::GetWorldStateSyncStatus,
        Method::GetSyncedL2SlotNumber,
        Method::GetSyncedL1Timestamp,
        Method::GetBlock,
        Method::GetBlockByHash,
        Method::GetBlockHeader,
        Method::GetCurrentMinFees,
        Method::GetCurrentBaseFees,
        Method::GetPendingTxCount,
        Method::SendTx,
        Method::GetTxReceipt,
        Method::GetTxByHash,
        Method::GetValidatorsStats,
        Method::GetValidatorStats,
        Method::GetValidatorStatsBatch,
    ];

    /// Looks a method up by its name without namespace.
    pub(crate) fn from_name(name: &str) -> Option<Method> {
        Some(match name {
            "isReady" => Method::IsReady,
            "getBlockNumber" => Method::GetBlockNumber,
            "getCheckpointNumber" => Method::GetCheckpointNumber,
            "getProvenBlockNumber" => Method::GetProvenBlockNumber,
            "getCheckpointedBlockNumber" => Method::GetCheckpointedBlockNumber,
            "getChainTips" => Method::GetChainTips,
            "getL2Tips" => Method::GetL2Tips,
            "getL1Constants" => Method::GetL1Constants,
            "getNodeInfo" => Method::GetNodeInfo,
            "getNodeVersion" => Method::GetNodeVersion,
            "getVersion" => Method::GetVersion,
            "getChainId" => Method::GetChainId,
            "getL1ContractAddresses" => Method::GetL1ContractAddresses,
            "getProtocolContractAddresses" => Method::GetProtocolContractAddresses,
            "getWorldStateSyncStatus" => Method::GetWorldStateSyncStatus,
            "getSyncedL2SlotNumber" => Method::GetSyncedL2SlotNumber,
            "getSyncedL1Timestamp" => Method::GetSyncedL1Timestamp,
            "getBlock" => Method::GetBlock,
            "getBlockByHash" => Method::GetBlockByHash,
            "getBlockHeader" => Method::GetBlockHeader,
            "getCurrentMinFees" => Method::GetCurrentMinFees,
            "getCurrentBaseFees" => Method::GetCurrentBaseFees,
            "getPendingTxCount" => Method::GetPendingTxCount,
            "sendTx" => Method::SendTx,
            "getTxReceipt" => Method::GetTxReceipt,
            "getTxByHash" => Method::GetTxByHash,
            "getValidatorsStats" => Method::GetValidatorsStats,
            "getValidatorStats" => Method::GetValidatorStats,
            "getValidatorStatsBatch" => Method::GetValidatorStatsBatch,
            _ => return None,
        })
    }

    /// Whether `version` serves this method.
    pub(crate) fn available(self, version: ApiVersion) -> bool {
        use ApiVersion::{V3, V4, V5, V6};
        match self {
            Method::GetProvenBlockNumber | Method::GetL2Tips | Method::GetBlockHeader | Method::GetBlockByHash => {
                version <= V4
            }
            Method::GetCheckpointedBlockNumber => version == V4,
            Method::GetCheckpointNumber | Method::GetCurrentMinFees => version >= V4,
            Method::GetCurrentBaseFees => version == V3,
            Method::GetChainTips
            | Method::GetL1Constants
            | Method::GetSyncedL2SlotNumber
            | Method::GetSyncedL1Timestamp => version >= V5,
            Method::GetValidatorStatsBatch => version == V6,
            _ => matches!(version, V3 | V4 | V5 | V6),
        }
    }

    /// Most positional params accepted (more is a `-32701`, as Zod's tuple check).
    pub(crate) fn max_params(self, version: ApiVersion) -> usize {
        match self {
            // Before v5 `getBlockNumber` took no tip argument.
            Method::GetBlockNumber if version <= ApiVersion::V4 => 0,
            Method::GetBlockNumber
            | Method::GetCheckpointNumber
            | Method::GetBlockByHash
            | Method::GetBlockHeader
            | Method::SendTx => 1,
            Method::GetBlock | Method::GetTxReceipt | Method::GetTxByHash => 2,
            Method::GetValidatorStats | Method::GetValidatorStatsBatch => 3,
            _ => 0,
        }
    }

    /// Whether answering needs the sentinel history.
    pub(crate) fn needs_history(self) -> bool {
        matches!(self, Method::GetValidatorsStats | Method::GetValidatorStats | Method::GetValidatorStatsBatch)
    }
}

/// Resolves a full method name (`aztec_x` / `node_x`) for `version`, or `None` when the node
/// would answer `-32601`.
pub(crate) fn resolve(full_name: &str, version: ApiVersion) -> Option<Method> {
    let (namespace, name) = full_name.split_once('_')?;
    let namespace_ok = namespace == "node" || (namespace == "aztec" && version.has_aztec_namespace());
    if !namespace_ok {
        return None;
    }
    Method::from_name(name).filter(|m| m.available(version))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_is_consistent() {
        for (i, m) in Method::ALL.iter().enumerate() {
            assert_eq!(*m as usize, i);
            let name = format!("{m:?}");
            let lower = format!("{}{}", name[..1].to_lowercase(), &name[1..]);
            assert_eq!(Method::from_name(&lower), Some(*m), "{lower}");
        }
    }

    #[test]
    fn namespaces_and_versions() {
        use ApiVersion::*;
        assert_eq!(resolve("aztec_getChainTips", V5), Some(Method::GetChainTips));
        assert_eq!(resolve("node_getChainTips", V5), Some(Method::GetChainTips));
        assert_eq!(resolve("aztec_getBlockNumber", V4), None);
        assert_eq!(resolve("node_getChainTips", V4), None);
        assert_eq!(resolve("node_getL2Tips", V4), Some(Method::GetL2Tips));
        assert_eq!(resolve("node_getL2Tips", V5), None);
        assert_eq!(resolve("node_getProvenBlockNumber", V6), None);
        assert_eq!(resolve("node_getL1Constants", V4), None);
        assert_eq!(resolve("p2p_getPendingTxCount", V6), None);
        assert_eq!(resolve("getBlockNumber", V6), None);
    }
}
