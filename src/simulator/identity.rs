//! Network identity of a simulated node: the `x-aztec-*` response headers, L1 contract
//! addresses and `getNodeInfo`.
//!
//! The header values are built once per node (`IdentityHeaders::new`) and cloned per response
//! (a `HeaderValue` clone is a reference-count bump). Only a `rollup_version` fault makes the
//! node build the two rollup-dependent values per response.

use http::header::{HeaderMap, HeaderName, HeaderValue};

use super::config::SimConfig;
use super::encode::{hash2, write_address, write_address_raw, write_small_field, write_str, write_u64};

const L1_CHAIN_ID: HeaderName = HeaderName::from_static("x-aztec-l1chainid");
const ROLLUP_VERSION: HeaderName = HeaderName::from_static("x-aztec-rollupversion");
const ROLLUP_ADDRESS: HeaderName = HeaderName::from_static("x-aztec-l1rollupaddress");
const PACKAGE_VERSION: HeaderName = HeaderName::from_static("x-aztec-packageversion");
const PROTOCOL_HASH: HeaderName = HeaderName::from_static("x-aztec-l2protocolcontractshash");
const VK_TREE_ROOT: HeaderName = HeaderName::from_static("x-aztec-l2circuitsvktreeroot");

/// L1 contracts reported by `getNodeInfo` / `getL1ContractAddresses`, in the order of the
/// node's `L1ContractAddressesSchema`, each with the number its address is derived from. Rollup
/// is 0 (the `x-aztec-l1RollupAddress` header uses it); the numbers of the first eight never
/// change, so their addresses stay the same as the list grows. The first eleven are required
/// by the official client's schema; the rest are optional there and set on a real network.
const L1_CONTRACTS: [(&str, u64); 16] = [
    ("rollupAddress", 0),
    ("registryAddress", 1),
    ("inboxAddress", 2),
    ("outboxAddress", 3),
    ("feeJuiceAddress", 4),
    ("stakingAssetAddress", 5),
    ("feeJuicePortalAddress", 6),
    ("coinIssuerAddress", 8),
    ("rewardDistributorAddress", 9),
    ("governanceProposerAddress", 10),
    ("governanceAddress", 7),
    ("slashFactoryAddress", 11),
    ("feeAssetHandlerAddress", 12),
    ("stakingAssetHandlerAddress", 13),
    ("zkPassportVerifierAddress", 14),
    ("gseAddress", 15),
];

/// Appends the quoted address of L1 contract `which` (0 = rollup) of a rollup version.
fn write_l1_address(out: &mut Vec<u8>, l1_chain_id: u64, rollup_version: u64, which: u64) {
    write_address(out, hash2(l1_chain_id, 0x11 + which), rollup_version);
}

fn header(text: &[u8]) -> HeaderValue {
    HeaderValue::from_bytes(text).unwrap_or(HeaderValue::from_static("invalid"))
}

fn rollup_address_header(l1_chain_id: u64, rollup_version: u64) -> HeaderValue {
    let mut out = Vec::with_capacity(42);
    write_address_raw(&mut out, hash2(l1_chain_id, 0x11), rollup_version);
    header(&out)
}

/// Precomputed `x-aztec-*` headers of one node.
#[derive(Clone, Debug)]
pub(crate) struct IdentityHeaders {
    l1_chain_id: u64,
    chain_id: HeaderValue,
    rollup_version: HeaderValue,
    rollup_address: HeaderValue,
    package: HeaderValue,
    protocol_hash: HeaderValue,
    vk_root: HeaderValue,
}

impl IdentityHeaders {
    /// Builds the headers of a config.
    pub(crate) fn new(cfg: &SimConfig) -> Self {
        let mut hash = Vec::new();
        write_small_field(&mut hash, hash2(cfg.rollup_version, 0x21));
        let mut vk = Vec::new();
        write_small_field(&mut vk, hash2(cfg.rollup_version, 0x22));
        IdentityHeaders {
            l1_chain_id: cfg.l1_chain_id,
            chain_id: HeaderValue::from(cfg.l1_chain_id),
            rollup_version: HeaderValue::from(cfg.rollup_version),
            rollup_address: rollup_address_header(cfg.l1_chain_id, cfg.rollup_version),
            package: HeaderValue::from_static(cfg.version.package_version()),
            // Strip the quotes `write_small_field` adds.
            protocol_hash: header(&hash[1..hash.len() - 1]),
            vk_root: header(&vk[1..vk.len() - 1]),
        }
    }

    /// Adds every identity header; `rollup_override` is the `rollup_version` fault.
    pub(crate) fn apply(&self, map: &mut HeaderMap, rollup_override: Option<u64>) {
        map.insert(L1_CHAIN_ID, self.chain_id.clone());
        match rollup_override {
            Some(v) => {
                map.insert(ROLLUP_VERSION, HeaderValue::from(v));
                map.insert(ROLLUP_ADDRESS, rollup_address_header(self.l1_chain_id, v));
            }
            None => {
                map.insert(ROLLUP_VERSION, self.rollup_version.clone());
                map.insert(ROLLUP_ADDRESS, self.rollup_address.clone());
            }
        }
        map.insert(PACKAGE_VERSION, self.package.clone());
        map.insert(PROTOCOL_HASH, self.protocol_hash.clone());
        map.insert(VK_TREE_ROOT, self.vk_root.clone());
    }
}

/// Appends the `l1ContractAddresses` object.
pub(crate) fn write_l1_contracts(out: &mut Vec<u8>, l1_chain_id: u64, rollup_version: u64) {
    out.push(b'{');
    for (i, (name, which)) in L1_CONTRACTS.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_l1_address(out, l1_chain_id, rollup_version, *which);
    }
    out.push(b'}');
}

/// Appends the `protocolContractAddresses` object (small canonical addresses, as on a real
/// network).
pub(crate) fn write_protocol_contracts(out: &mut Vec<u8>) {
    let entries = [("classRegistry", 3), ("feeJuice", 5), ("instanceRegistry", 2), ("multiCallEntrypoint", 4)];
    out.push(b'{');
    for (i, (name, n)) in entries.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        write_small_field(out, *n);
    }
    out.push(b'}');
}

/// Appends the `getNodeInfo` object.
pub(crate) fn write_node_info(out: &mut Vec<u8>, cfg: &SimConfig, rollup_version: u64) {
    out.extend_from_slice(b"{\"nodeVersion\":");
    write_str(out, cfg.version.package_version());
    out.extend_from_slice(b",\"l1ChainId\":");
    write_u64(out, cfg.l1_chain_id);
    out.extend_from_slice(b",\"rollupVersion\":");
    write_u64(out, rollup_version);
    out.extend_from_slice(b",\"enr\":");
    write_str(out, &format!("enr:-sim-{}", cfg.name));
    out.extend_from_slice(b",\"l1ContractAddresses\":");
    write_l1_contracts(out, cfg.l1_chain_id, rollup_version);
    out.extend_from_slice(b",\"protocolContractAddresses\":");
    write_protocol_contracts(out);
    out.extend_from_slice(b",\"realProofs\":true}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulator::config::ApiVersion;

    #[test]
    fn headers_and_node_info_agree_on_rollup_address() {
        let cfg = SimConfig::for_tests(ApiVersion::V5);
        let mut map = HeaderMap::new();
        IdentityHeaders::new(&cfg).apply(&mut map, None);
        assert_eq!(map["x-aztec-packageversion"], "5.2.0");
        assert_eq!(map["x-aztec-rollupversion"], cfg.rollup_version.to_string().as_str());
        let mut out = Vec::new();
        write_node_info(&mut out, &cfg, cfg.rollup_version);
        let info: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(info["l1ContractAddresses"]["rollupAddress"], map["x-aztec-l1rollupaddress"].to_str().unwrap());
        IdentityHeaders::new(&cfg).apply(&mut map, Some(7));
        assert_eq!(map["x-aztec-rollupversion"], "7");
        assert_ne!(info["l1ContractAddresses"]["rollupAddress"], map["x-aztec-l1rollupaddress"].to_str().unwrap());
    }

    #[test]
    fn l1_contracts_are_complete_and_distinct() {
        let mut out = Vec::new();
        write_l1_contracts(&mut out, 11_155_111, 1);
        let map: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out).unwrap();
        // Required by the official v4 client (`L1ContractAddressesSchema`).
        for name in [
            "rollupAddress",
            "registryAddress",
            "inboxAddress",
            "outboxAddress",
            "feeJuiceAddress",
            "stakingAssetAddress",
            "feeJuicePortalAddress",
            "coinIssuerAddress",
            "rewardDistributorAddress",
            "governanceProposerAddress",
            "governanceAddress",
        ] {
            assert!(map.contains_key(name), "{name} missing");
        }
        let addresses: std::collections::BTreeSet<&str> = map.values().map(|v| v.as_str().unwrap()).collect();
        assert_eq!(addresses.len(), L1_CONTRACTS.len(), "every contract has its own address");
        assert!(addresses.iter().all(|a| a.len() == 42 && a.starts_with("0x")));
    }
}
