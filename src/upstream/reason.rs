//! Why a backend is not routable, as a type: the monitor decides it, `/health`, the dashboard,
//! the 503 message and the logs show it through `Display`, and the logs compare kinds (not the
//! numbers inside) to say each change once.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::error::ProbeError;
use crate::fork::ForkState;

/// Why a backend is not routable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Unroutable {
    /// Not probed successfully yet.
    NotProbed,
    /// The last probe failed.
    ProbeFailed(ProbeError),
    /// `isReady` answered false.
    NotReady,
    /// On another rollup version than expected.
    OtherRollup {
        /// What the node reports.
        got: u64,
        /// What the fleet is on.
        expected: u64,
    },
    /// On another L1 chain than the fleet.
    OtherChain {
        /// What the node reports.
        got: u64,
        /// What the fleet is on.
        expected: u64,
    },
    /// The tips answer could not be read.
    TipsUnreadable,
    /// Tip 0: not synced.
    NotSynced,
    /// The proven tip is above the proposed tip.
    ProvenAboveProposed,
    /// Too far behind the corroborated tip.
    Lagging {
        /// Blocks behind.
        lag: u64,
        /// The corroborated tip.
        tip: u64,
        /// `MAX_BLOCK_LAG`.
        max: u64,
    },
    /// Outvoted on a block or checkpoint hash by a strict majority.
    Forked(ForkState),
    /// The circuit breaker is open.
    CircuitOpen,
}

impl Unroutable {
    /// The reason without its numbers (so a lag growing by one block is not a new reason).
    pub fn kind(&self) -> &'static str {
        match self {
            Unroutable::NotProbed => "not-probed",
            Unroutable::ProbeFailed(_) => "probe-failed",
            Unroutable::NotReady => "not-ready",
            Unroutable::OtherRollup { .. } => "other-rollup",
            Unroutable::OtherChain { .. } => "other-chain",
            Unroutable::TipsUnreadable => "tips-unreadable",
            Unroutable::NotSynced => "not-synced",
            Unroutable::ProvenAboveProposed => "proven-above-proposed",
            Unroutable::Lagging { .. } => "lagging",
            Unroutable::Forked(_) => "forked",
            Unroutable::CircuitOpen => "circuit-open",
        }
    }
}

impl fmt::Display for Unroutable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unroutable::NotProbed => f.write_str("not probed yet"),
            Unroutable::ProbeFailed(e) => write!(f, "probe failed: {e}"),
            Unroutable::NotReady => f.write_str("not ready (isReady returned false)"),
            Unroutable::OtherRollup { got, expected } => write!(f, "on rollup version {got}, expected {expected}"),
            Unroutable::OtherChain { got, expected } => write!(f, "on L1 chain {got}, expected {expected}"),
            Unroutable::TipsUnreadable => f.write_str("tips unreadable"),
            Unroutable::NotSynced => f.write_str("tip is 0 (not synced)"),
            Unroutable::ProvenAboveProposed => f.write_str("proven tip above proposed tip"),
            Unroutable::Lagging { lag, tip, max } => {
                write!(f, "lagging {lag} blocks behind tip {tip} (MAX_BLOCK_LAG {max})")
            }
            Unroutable::Forked(state) => state.fmt(f),
            Unroutable::CircuitOpen => f.write_str("circuit open after consecutive failures"),
        }
    }
}

impl Serialize for Unroutable {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_and_kind() {
        let lag = Unroutable::Lagging { lag: 10, tip: 5000, max: 2 };
        assert_eq!(lag.to_string(), "lagging 10 blocks behind tip 5000 (MAX_BLOCK_LAG 2)");
        assert_eq!(lag.kind(), Unroutable::Lagging { lag: 11, tip: 5001, max: 2 }.kind());
        assert_ne!(lag.kind(), Unroutable::NotReady.kind());
        assert_eq!(serde_json::to_string(&Unroutable::NotSynced).unwrap(), "\"tip is 0 (not synced)\"");
    }
}
