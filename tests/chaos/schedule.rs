//! The chaos schedule: a cycle of phases, each a fault per node, that always leaves at least
//! one node healthy. Nodes healed by a phase are back in rotation (routable at the gateway)
//! before the phase breaks the others, so a healthy node remains at every instant.

use sentinel_proxy::simulator::Faults;

/// What a phase does to one node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// Healthy (revived first if it was killed).
    Healthy,
    /// Process killed: connections reset, port closed.
    Kill,
    /// Reads requests and never answers.
    Hang,
    /// Answers 200 with a body that is not JSON.
    Garble,
    /// Reports its tip 20 blocks behind the chain.
    Lag,
    /// Answers after 400 ms.
    Slow,
    /// Closes connections without an answer.
    Reset,
    /// Answers HTTP 503.
    Unavailable,
    /// Restarts as a new incarnation on the other API version (empty mempool, new version
    /// headers), then serves healthily.
    Reroll,
}

impl Fault {
    /// Short name for the report.
    pub fn name(self) -> &'static str {
        match self {
            Fault::Healthy => "ok",
            Fault::Kill => "kill",
            Fault::Hang => "hang",
            Fault::Garble => "garble",
            Fault::Lag => "lag 20",
            Fault::Slow => "slow 400ms",
            Fault::Reset => "drop conn",
            Fault::Unavailable => "503",
            Fault::Reroll => "re-roll",
        }
    }

    /// The simulator faults of a running node in this state.
    pub fn faults(self) -> Faults {
        let mut f = Faults::default();
        match self {
            Fault::Hang => f.hang = true,
            Fault::Garble => f.garbage = true,
            Fault::Lag => f.lag_blocks = 20,
            Fault::Slow => f.latency_ms = 400,
            Fault::Reset => f.drop_connection = true,
            Fault::Unavailable => f.http_status = Some(503),
            Fault::Healthy | Fault::Kill | Fault::Reroll => {}
        }
        f
    }

    /// Whether the node serves correctly in this state (after a re-roll it does).
    pub fn is_healthy(self) -> bool {
        matches!(self, Fault::Healthy | Fault::Reroll)
    }
}

/// One phase: a name and a fault per node (four nodes).
#[derive(Clone, Copy, Debug)]
pub struct Phase {
    /// What the phase is about.
    pub name: &'static str,
    /// The fault of each node.
    pub faults: [Fault; 4],
}

use Fault::{Garble, Hang, Healthy, Kill, Lag, Reroll, Reset, Slow, Unavailable};

/// The cycle of phases, repeated for as long as the run lasts.
pub const CYCLE: [Phase; 8] = [
    Phase { name: "steady", faults: [Healthy, Healthy, Healthy, Healthy] },
    Phase { name: "kill", faults: [Kill, Healthy, Healthy, Healthy] },
    Phase { name: "hang", faults: [Healthy, Hang, Healthy, Healthy] },
    Phase { name: "garble + lag", faults: [Healthy, Healthy, Garble, Lag] },
    Phase { name: "slow + drop + 503", faults: [Slow, Reset, Unavailable, Healthy] },
    Phase { name: "re-roll + kill", faults: [Kill, Healthy, Healthy, Reroll] },
    Phase { name: "one node left", faults: [Hang, Garble, Healthy, Kill] },
    Phase { name: "recover", faults: [Healthy, Healthy, Healthy, Healthy] },
];

/// Phase `i` of a run.
pub fn phase(i: usize) -> Phase {
    CYCLE[i % CYCLE.len()]
}

/// Faulty nodes of a phase, e.g. `n0 kill, n3 re-roll` (`-` when none).
pub fn describe(p: &Phase) -> String {
    let parts: Vec<String> = p
        .faults
        .iter()
        .enumerate()
        .filter(|(_, f)| **f != Healthy)
        .map(|(i, f)| format!("n{i} {}", f.name()))
        .collect();
    if parts.is_empty() {
        "-".into()
    } else {
        parts.join(", ")
    }
}

#[test]
fn every_phase_leaves_a_healthy_node() {
    for p in CYCLE {
        assert!(p.faults.contains(&Healthy), "{}", p.name);
    }
}
