//! Fork detection: nodes that agree on heights but not on hashes.
//!
//! Every probe reads a node's tips, each with its block hash (and, from v4, its checkpoint
//! number and hash), plus the world state's latest block hash. These are the node's
//! *commitments*: "at block (or checkpoint) N, the hash is H". [`judge`] compares them across
//! nodes at equal heights, using each node's commitments from this probe and, where a node did
//! not report that height now, from its previous probe (so nodes a few blocks apart still meet).
//!
//! The rule: a node whose hash at some height disagrees with a **strict majority** of the nodes
//! reporting that height is *forked* and unroutable until it agrees again; its fork point is
//! the lowest such height. With no strict majority (two nodes that disagree), nobody is
//! quarantined: the node is *disputed*, shown and logged. A disagreement at or below a
//! finalized height is the most severe case and is flagged as such. Pure functions only; the
//! monitor applies them.

use std::collections::HashMap;
use std::fmt;

use serde::Serialize;

/// What a height numbers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Chain {
    /// An L2 block number.
    Block,
    /// A checkpoint number.
    Checkpoint,
}

impl Chain {
    /// `block` or `checkpoint`.
    pub fn as_str(self) -> &'static str {
        match self {
            Chain::Block => "block",
            Chain::Checkpoint => "checkpoint",
        }
    }
}

/// One reported hash at one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitment {
    /// Block or checkpoint.
    pub chain: Chain,
    /// Its number.
    pub height: u64,
    /// Its hash (lower-cased).
    pub hash: String,
    /// Reported as the node's finalized tip.
    pub finalized: bool,
}

/// How one node's hashes compare with its peers'.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ForkState {
    /// Block or checkpoint.
    pub chain: Chain,
    /// The lowest height where the node disagrees.
    pub height: u64,
    /// The node's hash there.
    pub hash: String,
    /// The strict majority's hash there (`None`: no strict majority, the node is disputed).
    pub majority: Option<String>,
    /// The disagreement is at or below a finalized height.
    pub finalized: bool,
}

impl ForkState {
    /// Quarantined: outvoted by a strict majority.
    pub fn forked(&self) -> bool {
        self.majority.is_some()
    }
}

impl fmt::Display for ForkState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let severity = if self.finalized { "finalized " } else { "" };
        match &self.majority {
            Some(m) => write!(
                f,
                "forked at {severity}{} {} (hash {}, majority {})",
                self.chain.as_str(),
                self.height,
                short(&self.hash),
                short(m)
            ),
            None => write!(
                f,
                "disputed at {severity}{} {} (hash {}, no strict majority)",
                self.chain.as_str(),
                self.height,
                short(&self.hash)
            ),
        }
    }
}

/// A hash shortened for messages: `0x1234…abcd`.
fn short(hash: &str) -> String {
    if hash.len() <= 14 {
        return hash.to_owned();
    }
    format!("{}…{}", &hash[..6], &hash[hash.len() - 4..])
}

/// Each voter's hash per (chain, height): current commitments first, previous ones where the
/// node reported nothing at that height now.
fn ballots<'a>(
    current: &'a [Option<Vec<Commitment>>],
    previous: &'a [Vec<Commitment>],
) -> HashMap<(Chain, u64), Vec<&'a str>> {
    let mut votes: HashMap<(Chain, u64), Vec<&'a str>> = HashMap::new();
    for (i, now) in current.iter().enumerate() {
        let Some(now) = now else { continue };
        let mut mine: HashMap<(Chain, u64), &'a str> = HashMap::new();
        for c in previous.get(i).into_iter().flatten().chain(now) {
            mine.insert((c.chain, c.height), c.hash.as_str());
        }
        for (key, hash) in mine {
            votes.entry(key).or_default().push(hash);
        }
    }
    votes
}

/// The strict majority's hash among `votes`, if any.
fn majority<'a>(votes: &[&'a str]) -> Option<&'a str> {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for v in votes {
        *counts.entry(v).or_default() += 1;
    }
    counts.into_iter().find(|&(_, n)| n * 2 > votes.len()).map(|(h, _)| h)
}

/// Judges every node. `current[i]` is node `i`'s commitments from this probe (`None`: it did
/// not answer, or is on another network, and neither votes nor is judged); `previous[i]` those
/// from its last probe; `finalized` the fleet's finalized block. A node is judged only on what
/// it reports now, so one that rejoins the majority's branch is cleared at once.
pub fn judge(
    current: &[Option<Vec<Commitment>>],
    previous: &[Vec<Commitment>],
    finalized: Option<u64>,
) -> Vec<Option<ForkState>> {
    let votes = ballots(current, previous);
    current
        .iter()
        .map(|now| {
            let mut worst: Option<ForkState> = None;
            for c in now.iter().flatten() {
                let Some(votes) = votes.get(&(c.chain, c.height)) else { continue };
                if votes.iter().all(|v| *v == c.hash) {
                    continue;
                }
                let majority = majority(votes);
                if majority == Some(c.hash.as_str()) {
                    continue;
                }
                let state = ForkState {
                    chain: c.chain,
                    height: c.height,
                    hash: c.hash.clone(),
                    majority: majority.map(str::to_owned),
                    finalized: c.finalized || (c.chain == Chain::Block && finalized.is_some_and(|f| c.height <= f)),
                };
                // Forked beats disputed; then block heights before checkpoints; then the lowest.
                let rank = |s: &ForkState| (!s.forked(), s.chain == Chain::Checkpoint, s.height);
                if worst.as_ref().is_none_or(|w| rank(&state) < rank(w)) {
                    worst = Some(state);
                }
            }
            worst
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(height: u64, hash: &str) -> Commitment {
        Commitment { chain: Chain::Block, height, hash: hash.into(), finalized: false }
    }

    #[test]
    fn a_minority_is_forked_at_its_lowest_disagreement() {
        let now = vec![
            Some(vec![b(994, "a"), b(996, "x"), b(999, "y")]),
            Some(vec![b(994, "a"), b(996, "b"), b(999, "c")]),
            Some(vec![b(994, "a"), b(996, "b"), b(999, "c")]),
        ];
        let states = judge(&now, &[], None);
        let s = states[0].as_ref().expect("node 0 forked");
        assert_eq!((s.height, s.majority.as_deref(), s.forked()), (996, Some("b"), true));
        assert_eq!(s.to_string(), "forked at block 996 (hash x, majority b)");
        assert_eq!(states[1], None);
        assert_eq!(states[2], None);
    }

    #[test]
    fn two_nodes_that_disagree_are_disputed_not_forked() {
        let now = vec![Some(vec![b(10, "a")]), Some(vec![b(10, "b")])];
        let states = judge(&now, &[], None);
        for s in &states {
            let s = s.as_ref().unwrap();
            assert!(!s.forked());
            assert!(s.to_string().starts_with("disputed at block 10"), "{s}");
        }
    }

    #[test]
    fn previous_probes_let_nodes_at_other_heights_meet() {
        // Node 2 lags: it reports 995 now, which the others reported on their last probe.
        let now = vec![Some(vec![b(997, "p")]), Some(vec![b(997, "p")]), Some(vec![b(995, "z")])];
        let previous = vec![vec![b(995, "k")], vec![b(995, "k")], vec![]];
        let states = judge(&now, &previous, Some(1000));
        let s = states[2].as_ref().unwrap();
        assert_eq!((s.height, s.majority.as_deref(), s.finalized), (995, Some("k"), true));
        assert!(s.to_string().starts_with("forked at finalized block 995"), "{s}");
        assert_eq!(states[0], None);
    }

    #[test]
    fn rejoining_clears_at_once_and_silent_nodes_do_not_vote() {
        // Node 0 was forked at 995 last time; now it reports the majority's hashes.
        let previous = vec![vec![b(995, "z")], vec![b(995, "k")], vec![b(995, "k")]];
        let now = vec![Some(vec![b(996, "m")]), Some(vec![b(996, "m")]), None];
        let states = judge(&now, &previous, None);
        assert!(states.iter().all(Option::is_none), "{states:?}");
    }

    #[test]
    fn checkpoint_hashes_count_too() {
        let cp = |hash: &str| Commitment { chain: Chain::Checkpoint, height: 31, hash: hash.into(), finalized: true };
        let now = vec![Some(vec![cp("a")]), Some(vec![cp("b")]), Some(vec![cp("b")])];
        let s = judge(&now, &[], None)[0].clone().unwrap();
        assert_eq!(s.to_string(), "forked at finalized checkpoint 31 (hash a, majority b)");
    }
}
