//! Pure backend choice: route filter → preference tier → power-of-two-choices on
//! cost = EWMA latency × (in-flight + 1) ÷ integrity weight. Reads only the snapshot and the
//! backends' atomics, so it holds under concurrency without a lock (tower `p2c`, docs/architecture.md#routing).

use rand::Rng;

use crate::compat::{self, Generation, Outbound};
use crate::integrity::{IntegrityStatus, NodeKind};
use crate::upstream::{BackendView, Snapshot};

/// Which surface the request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// `/`: any routable node.
    Any,
    /// `/archiver`: archivers of integrity perfect/good only.
    Archiver,
    /// `/pruned`: pruned nodes, archivers as fallback.
    Pruned,
}

impl Route {
    /// Label for metrics and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Route::Any => "root",
            Route::Archiver => "archiver",
            Route::Pruned => "pruned",
        }
    }
}

/// Extra constraints of one request.
#[derive(Clone, Debug, Default)]
pub struct Needs {
    /// Backends already tried for this request (failover goes elsewhere).
    pub exclude: Vec<usize>,
    /// Preferred backend (read-your-writes), used when routable.
    pub sticky: Option<usize>,
    /// Explicit historical block the node must still hold in world state.
    pub block: Option<u64>,
}

/// The chosen backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pick {
    /// Index into `snapshot.backends`.
    pub index: usize,
    /// `/pruned` fell back to an archiver.
    pub fallback: bool,
}

/// Integrity tier: 0 verified, 1 not analysed yet, 2 bad.
fn tier(v: &BackendView) -> u8 {
    match v.integrity.verdict.status {
        IntegrityStatus::Perfect | IntegrityStatus::Good => 0,
        IntegrityStatus::Unknown | IntegrityStatus::SentinelOff => 1,
        IntegrityStatus::Bad => 2,
    }
}

/// Preference: a node of the caller's generation first (when the answer's shape depends on
/// it), then the integrity tier.
fn preference(v: &BackendView, prefer: Option<Generation>) -> (bool, u8) {
    (prefer.is_some_and(|g| !g.fits(v.backend.api_major())), tier(v))
}

/// The generation whose shapes the group's answers must have, if any call depends on it.
fn preferred_generation(calls: &[Outbound]) -> Option<Generation> {
    calls.iter().find(|c| c.info().is_some_and(|i| i.by_generation)).and_then(|c| Generation::of_client(&c.method))
}

fn eligible(v: &BackendView, needs: &Needs, calls: &[Outbound]) -> bool {
    v.routable()
        && !needs.exclude.contains(&v.backend.index)
        && needs.block.is_none_or(|b| v.health.oldest_historic.is_none_or(|oldest| oldest <= b))
        && calls.iter().all(|c| compat::serves(&v.backend, c))
}

/// Chooses a backend for `calls`, or `None` when no node that serves them is routable for
/// this route.
pub fn pick(snapshot: &Snapshot, route: Route, needs: &Needs, calls: &[Outbound]) -> Option<Pick> {
    if let Some(i) = needs.sticky {
        if let Some(v) = snapshot.backends.get(i).filter(|v| eligible(v, needs, calls)) {
            return Some(Pick { index: v.backend.index, fallback: false });
        }
    }
    let prefer = preferred_generation(calls);
    let candidates = |want: &dyn Fn(&BackendView) -> bool| -> Vec<&BackendView> {
        snapshot.backends.iter().filter(|v| want(v) && eligible(v, needs, calls)).collect()
    };
    let best = |all: &[&BackendView]| best(all, prefer);
    let archiver_ok = |v: &BackendView| v.is_archiver() && tier(v) == 0;
    match route {
        Route::Any => best(&candidates(&|_| true)).map(|index| Pick { index, fallback: false }),
        Route::Archiver => best(&candidates(&archiver_ok)).map(|index| Pick { index, fallback: false }),
        Route::Pruned => {
            let pruned = candidates(&|v| !v.is_archiver() && v.integrity.verdict.kind == NodeKind::Pruned);
            match best(&pruned) {
                Some(index) => Some(Pick { index, fallback: false }),
                None => {
                    best(&candidates(&|v| v.is_archiver() && tier(v) < 2)).map(|index| Pick { index, fallback: true })
                }
            }
        }
    }
}

/// P2C within the best non-empty preference tier.
fn best(all: &[&BackendView], prefer: Option<Generation>) -> Option<usize> {
    let top = all.iter().map(|v| preference(v, prefer)).min()?;
    let tier = || all.iter().copied().filter(move |v| preference(v, prefer) == top);
    let chosen = match tier().count() {
        1 => tier().next()?,
        n => {
            let (a, b) = pair(n, &mut rand::thread_rng());
            let (x, y) = (tier().nth(a)?, tier().nth(b)?);
            if cost(x) <= cost(y) {
                x
            } else {
                y
            }
        }
    };
    Some(chosen.backend.index)
}

/// Two distinct indices below `n` (at least 2), uniformly: the two choices of P2C.
fn pair(n: usize, rng: &mut impl Rng) -> (usize, usize) {
    let a = rng.gen_range(0..n);
    let mut b = rng.gen_range(0..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

/// Load-aware cost; a node never measured counts as fast (1 ms) so it gets tried.
fn cost(v: &BackendView) -> f64 {
    let ewma = v.backend.stats.decayed_ewma_us();
    let latency = if ewma > 0.0 { ewma } else { 1000.0 };
    let weight = match v.integrity.verdict.status {
        IntegrityStatus::Unknown | IntegrityStatus::SentinelOff => 1.0,
        _ => f64::from(v.integrity.verdict.score.max(5)) / 100.0,
    };
    latency * f64::from(v.backend.stats.in_flight() + 1) / weight
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::upstream::Pool;
    use std::time::Duration;

    fn snapshot(n: usize, setup: impl Fn(usize, &mut BackendView)) -> Snapshot {
        let urls: Vec<String> = (0..n).map(|i| format!("http://127.0.0.1:{}", 10_000 + i)).collect();
        let refs: Vec<&str> = urls.iter().map(String::as_str).collect();
        let pool = Pool::new(&Config::for_tests(&refs));
        let snap = pool.snapshot();
        let mut backends = snap.backends.clone();
        for (i, v) in backends.iter_mut().enumerate() {
            v.health.healthy = true;
            v.health.known = true;
            setup(i, v);
        }
        Snapshot { backends, best_tip: Some(100), finalized: None, reorgs: 0 }
    }

    fn verdict(v: &mut BackendView, status: IntegrityStatus, kind: NodeKind, score: u8) {
        v.integrity.verdict.status = status;
        v.integrity.verdict.kind = kind;
        v.integrity.verdict.score = score;
    }

    #[test]
    fn unhealthy_and_excluded_are_never_picked() {
        let s = snapshot(3, |i, v| v.health.healthy = i == 2);
        for _ in 0..50 {
            assert_eq!(pick(&s, Route::Any, &Needs::default(), &[]).unwrap().index, 2);
        }
        let needs = Needs { exclude: vec![2], ..Needs::default() };
        assert_eq!(pick(&s, Route::Any, &needs, &[]), None);
    }

    #[test]
    fn tiers_prefer_verified_then_unknown_then_bad() {
        let s = snapshot(3, |i, v| match i {
            0 => verdict(v, IntegrityStatus::Bad, NodeKind::Pruned, 50),
            1 => {}
            _ => verdict(v, IntegrityStatus::Good, NodeKind::Pruned, 97),
        });
        assert_eq!(pick(&s, Route::Any, &Needs::default(), &[]).unwrap().index, 2);
        let needs = Needs { exclude: vec![2], ..Needs::default() };
        assert_eq!(pick(&s, Route::Any, &needs, &[]).unwrap().index, 1);
        let needs = Needs { exclude: vec![1, 2], ..Needs::default() };
        assert_eq!(pick(&s, Route::Any, &needs, &[]).unwrap().index, 0, "bad serves last");
    }

    #[test]
    fn archiver_route_only_verified_archivers() {
        let s = snapshot(3, |i, v| match i {
            0 => verdict(v, IntegrityStatus::Bad, NodeKind::Archiver, 40),
            1 => verdict(v, IntegrityStatus::Perfect, NodeKind::Pruned, 100),
            _ => verdict(v, IntegrityStatus::Perfect, NodeKind::Archiver, 100),
        });
        assert_eq!(pick(&s, Route::Archiver, &Needs::default(), &[]).unwrap().index, 2);
        let needs = Needs { exclude: vec![2], ..Needs::default() };
        assert_eq!(pick(&s, Route::Archiver, &needs, &[]), None, "never a bad archiver");
    }

    #[test]
    fn pruned_route_falls_back_to_archiver() {
        let s = snapshot(2, |i, v| match i {
            0 => verdict(v, IntegrityStatus::Perfect, NodeKind::Pruned, 100),
            _ => verdict(v, IntegrityStatus::Perfect, NodeKind::Archiver, 100),
        });
        assert_eq!(pick(&s, Route::Pruned, &Needs::default(), &[]), Some(Pick { index: 0, fallback: false }));
        let needs = Needs { exclude: vec![0], ..Needs::default() };
        assert_eq!(pick(&s, Route::Pruned, &needs, &[]), Some(Pick { index: 1, fallback: true }));
    }

    #[test]
    fn p2c_prefers_the_faster_node() {
        let s = snapshot(2, |_, _| {});
        s.backends[0].backend.stats.record_latency(Duration::from_millis(50));
        s.backends[1].backend.stats.record_latency(Duration::from_millis(1));
        for _ in 0..20 {
            assert_eq!(pick(&s, Route::Any, &Needs::default(), &[]).unwrap().index, 1);
        }
    }

    #[test]
    fn history_and_stickiness() {
        let s = snapshot(2, |i, v| v.health.oldest_historic = Some(if i == 0 { 1 } else { 900 }));
        let needs = Needs { block: Some(10), ..Needs::default() };
        for _ in 0..20 {
            assert_eq!(pick(&s, Route::Any, &needs, &[]).unwrap().index, 0);
        }
        let needs = Needs { sticky: Some(1), ..Needs::default() };
        assert_eq!(pick(&s, Route::Any, &needs, &[]).unwrap().index, 1);
    }

    #[test]
    fn only_nodes_that_serve_the_calls_and_the_callers_generation_first() {
        let s = snapshot(2, |i, v| v.backend.set_package_version(Some(if i == 0 { "4.1.2" } else { "v6.0.0" })));
        let calls = |m: &str| vec![Outbound::new(m.into(), None)];
        let to = |m: &str| pick(&s, Route::Any, &Needs::default(), &calls(m)).map(|p| p.index);
        for _ in 0..20 {
            assert_eq!(to("aztec_getL1Constants"), Some(1), "v5+ only");
            assert_eq!(to("node_getBlockHeader"), Some(0), "v4 only");
            assert_eq!(to("node_getValidatorsStats"), Some(0), "v4 caller, v4 shapes");
            assert_eq!(to("aztec_getValidatorsStats"), Some(1), "v5+ caller, v5+ shapes");
        }
        let mixed = [calls("aztec_getL1Constants"), calls("node_getBlockHeader")].concat();
        assert_eq!(pick(&s, Route::Any, &Needs::default(), &mixed), None, "no node serves both");
        s.backends[1].backend.mark_lacking(crate::methods::by_bare_name("getL1Constants").unwrap());
        assert_eq!(to("aztec_getL1Constants"), None, "learned -32601");
        assert!(to("aztec_getBlockNumber").is_some());
    }

    #[test]
    fn pairs_are_two_distinct_indices_covering_every_node() {
        use rand::SeedableRng;
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for n in 2..6 {
            let mut seen = vec![0u32; n];
            for _ in 0..2_000 {
                let (a, b) = pair(n, &mut rng);
                assert!(a != b && a < n && b < n, "{n}: {a} {b}");
                seen[a] += 1;
                seen[b] += 1;
            }
            assert!(seen.iter().all(|&c| c > 2_000 * 2 / n as u32 / 2), "{n}: roughly uniform {seen:?}");
        }
    }
}
