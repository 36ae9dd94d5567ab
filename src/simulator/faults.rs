//! Fault switches of a simulated node, changeable at run time.
//!
//! `Faults` is plain data. The node keeps the live copy in a `std::sync::Mutex` (see
//! `state::NodeState`): every request clones it once under the lock (all fields are `Copy`, so
//! that is a few word copies) and never holds the guard across an `.await`. Writers are
//! `SimNode::set_faults` / `update_faults` and `POST /control`.

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
    fn merge_rejects_unknown_fields_and_non_objects() {
        let mut f = Faults::default();
        assert!(f.merge_json(br#"{"nope":1}"#).is_err());
        assert!(f.merge_json(b"[1]").is_err());
        assert!(f.merge_json(br#"{"latency_ms":"x"}"#).is_err());
        assert_eq!(f, Faults::default());
    }
}
