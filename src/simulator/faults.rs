//! Fault switches of a simulated node, changeable at run time.
//!
//! `Faults` is plain data. The node keeps the live copy in a `std::sync::Mutex` (see
//! `state::NodeState`): every request clones it once under the lock (a few words, plus the two
//! validator lists, which are usually empty) and never holds the guard across an `.await`.
//! Writers are `SimNode::set_faults` / `update_faults` and `POST /control`.

use serde::{Deserialize, Serialize};

use super::config::HistoryProfile;

/// Misbehaviours a simulated node can be told to show. `Default` is a healthy node.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Faults {
    /// `isReady` answers `false` and `GET /status` answers 500.
    pub not_ready: bool,
    /// Report the tip this many blocks behind (every tip method, and the sentinel, agree).
    pub lag_blocks: u64,
    /// Delay every answer (RPC and `/status`) by this many milliseconds.
    pub latency_ms: u64,
    /// Answer every RPC POST with this HTTP status and a short text body.
    pub http_status: Option<u16>,
    /// Read the request, then never answer (until the node is stopped).
    pub hang: bool,
    /// Answer 200 with a body that is not JSON.
    pub garbage: bool,
    /// Close the connection without any response.
    pub drop_connection: bool,
    /// Answer every JSON-RPC item with an error of this code.
    pub rpc_error: Option<i64>,
    /// Report this rollup version (headers, `getVersion`, `getNodeInfo`) instead of the configured one.
    pub rollup_version: Option<u64>,
    /// Override the sentinel history profile.
    pub history: Option<HistoryProfile>,
    /// Gzip every response body, whatever the request's `Accept-Encoding`.
    pub force_gzip: bool,
    /// Follow another branch from this block on: blocks, archive and state roots, and the
    /// checkpoints that hold them hash differently at the same heights (tips and blocks).
    pub fork_from: Option<u64>,
    /// An L2 prune rolled this node back this many blocks: its tips go back, and the blocks
    /// above them are gone. Set it on every node for a network-wide prune.
    pub prune_blocks: u64,
    /// Validators that do none of their duties in the given epochs: as proposer their slot is
    /// missed (no block, no attestations), as attester they record `attestation-missed`. The
    /// validators' real-world absence, so set the same list on every node of the network.
    pub offline_validators: Vec<ValidatorEpochs>,
    /// A blind spot of this node's sentinel: its history lacks every entry of these validators
    /// in the given epochs (other nodes still see them).
    pub blind_validators: Vec<ValidatorEpochs>,
}

/// Some validators over an epoch range (both ends inclusive), for the duty faults.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ValidatorEpochs {
    /// The validators, by index into the validator set (0 up to twice the committee size) or by
    /// address (case-insensitive); an address the network does not have is ignored.
    pub validators: Vec<ValidatorRef>,
    /// First epoch affected.
    pub from_epoch: u64,
    /// Last epoch affected; `None` (the default): every epoch from `from_epoch` on.
    pub to_epoch: Option<u64>,
}

impl ValidatorEpochs {
    /// These validators from `from_epoch` on, for good.
    pub fn from(validators: Vec<ValidatorRef>, from_epoch: u64) -> Self {
        ValidatorEpochs { validators, from_epoch, to_epoch: None }
    }
}

/// One validator of the simulated network: `3` or `"0xab…"` in JSON.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ValidatorRef {
    /// Index into the validator set.
    Index(u64),
    /// Address.
    Address(String),
}

impl Faults {
    /// Applies a partial JSON object: fields present replace the current values (`null` clears an
    /// optional field), fields absent stay as they are.
    ///
    /// # Errors
    /// The body is not a JSON object, a field is unknown, or a value has the wrong type.
    pub fn merge_json(&mut self, body: &[u8]) -> Result<(), String> {
        let patch: serde_json::Map<String, serde_json::Value> =
            serde_json::from_slice(body).map_err(|e| format!("expected a JSON object: {e}"))?;
        let Ok(serde_json::Value::Object(mut current)) = serde_json::to_value(&*self) else {
            return Err("faults are not serializable".to_owned());
        };
        for (key, value) in patch {
            current.insert(key, value);
        }
        *self =
            serde_json::from_value(serde_json::Value::Object(current)).map_err(|e| format!("invalid faults: {e}"))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_replaces_only_present_fields() {
        let mut f = Faults { latency_ms: 5, hang: true, ..Faults::default() };
        f.merge_json(br#"{"hang":false,"http_status":503,"history":"gapped"}"#).unwrap();
        assert_eq!(f.latency_ms, 5);
        assert!(!f.hang);
        assert_eq!(f.http_status, Some(503));
        assert_eq!(f.history, Some(HistoryProfile::Gapped));
        f.merge_json(br#"{"http_status":null}"#).unwrap();
        assert_eq!(f.http_status, None);
    }

    #[test]
    fn duty_faults_take_indices_or_addresses() {
        let mut f = Faults::default();
        f.merge_json(
            br#"{"offline_validators":[{"validators":[3,"0xAB"],"from_epoch":10,"to_epoch":12}],
            "blind_validators":[{"validators":[1]}]}"#,
        )
        .unwrap();
        let off = &f.offline_validators[0];
        assert_eq!(off.validators, [ValidatorRef::Index(3), ValidatorRef::Address("0xAB".to_owned())]);
        assert_eq!((off.from_epoch, off.to_epoch), (10, Some(12)));
        assert_eq!((f.blind_validators[0].from_epoch, f.blind_validators[0].to_epoch), (0, None));
        assert!(f.merge_json(br#"{"offline_validators":[{"validators":[1],"epochs":3}]}"#).is_err());
    }

    #[test]
    fn merge_rejects_unknown_fields_and_non_objects() {
        let mut f = Faults::default();
        assert!(f.merge_json(br#"{"nope":1}"#).is_err());
        assert!(f.merge_json(b"[1]").is_err());
        assert!(f.merge_json(br#"{"latency_ms":"x"}"#).is_err());
        assert_eq!(f, Faults::default());
    }
}
