//! The label sets of the metric families: small typed structs, so every label a family takes
//! is named once and bounded by construction.

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};

/// Labels of one served request item.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RequestLabels {
    /// `root`, `archiver` or `pruned`.
    pub route: &'static str,
    /// Method from the table, or `other`.
    pub method: &'static str,
    /// `ok`, `rpc_error`, or the gateway error label.
    pub status: &'static str,
    /// Backend display name, or `none`.
    pub backend: String,
}

/// Labels of a latency observation.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct LatencyLabels {
    /// Method from the table, or `other`.
    pub method: &'static str,
    /// Backend display name.
    pub backend: String,
}

/// A backend label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BackendLabel {
    /// Backend display name.
    pub backend: String,
}

/// A failed upstream attempt: which node, and how it failed.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct UpstreamErrorLabels {
    /// Backend display name.
    pub backend: String,
    /// `connect`, `timeout`, `io`, `http_status`, `not_jsonrpc`, `too_large` or `answer_budget`.
    pub kind: &'static str,
}

/// A reason label (rejections, failures).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabel {
    /// Why.
    pub reason: &'static str,
}

/// The result of a configuration reload.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabel {
    /// `ok` (applied), `invalid` (rejected, every problem logged) or `error` (not read or not
    /// applied).
    pub result: &'static str,
}

/// Cache tier label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TierLabel {
    /// `memory` or `redis`.
    pub tier: Tier,
}

/// Cache tier.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Tier {
    /// In-process moka cache.
    Memory,
    /// Shared Redis tier.
    Redis,
}

impl Tier {
    /// The label value: `memory` or `redis` (the derive would print `Memory`).
    pub fn as_str(self) -> &'static str {
        match self {
            Tier::Memory => "memory",
            Tier::Redis => "redis",
        }
    }
}

impl EncodeLabelValue for Tier {
    fn encode(&self, encoder: &mut LabelValueEncoder<'_>) -> Result<(), std::fmt::Error> {
        std::fmt::Write::write_str(encoder, self.as_str())
    }
}

/// Labels of the integrity status state set: one series per backend and status, exactly one
/// of which is 1.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct IntegrityStatusLabels {
    /// Backend display name.
    pub backend: String,
    /// `perfect`, `good`, `bad`, `unknown` or `sentinel-off`.
    pub status: &'static str,
}

/// A watched validator label (`WATCH_VALIDATORS`, lowercase): bounded by the configuration.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidatorLabel {
    /// Validator address.
    pub validator: String,
}

/// Labels of the validator watch status state set: one series per watched validator and status.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ValidatorStatusLabels {
    /// Validator address.
    pub validator: String,
    /// `healthy`, `missing-duties` or `unknown`.
    pub status: &'static str,
}
