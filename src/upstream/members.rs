//! Membership changes: the snapshot for a reloaded configuration ([`Snapshot::reconfigured`],
//! pure). A node is the same node when its URL is the same (credentials included): it keeps its
//! health, integrity verdict, circuit, latency statistics and learned namespace and
//! capabilities, whatever its name or position. Nodes with a new URL start unprobed; nodes no
//! longer listed leave the snapshot (requests already holding them finish on them).

use std::sync::Arc;

use super::{Backend, BackendView, Health, Integrity, Snapshot, Unroutable};
use crate::config::Config;

/// What a reload changed in the backend list (display names), for the log.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Membership {
    /// Nodes with a URL that was not configured before.
    pub added: Vec<String>,
    /// Nodes whose URL is no longer configured.
    pub removed: Vec<String>,
    /// Kept nodes with a new display name: (before, after).
    pub renamed: Vec<(String, String)>,
    /// Whether a kept node changed position (pins by position are then stale).
    pub moved: bool,
}

impl Membership {
    /// Whether the backend list is the same as before (names and order included).
    pub fn is_empty(&self) -> bool {
        self.added.is_empty() && self.removed.is_empty() && self.renamed.is_empty() && !self.moved
    }
}

impl BackendView {
    /// A node nobody has probed yet (not routable until its first successful probe).
    pub fn unprobed(backend: Backend) -> BackendView {
        BackendView {
            backend: Arc::new(backend),
            health: Health { reason: Some(Unroutable::NotProbed), ..Health::default() },
            integrity: Integrity::default(),
        }
    }
}

impl Snapshot {
    /// The snapshot for `config`'s backend list: every backend whose URL was configured before
    /// is carried over with its state (the first unused match, should a URL be listed twice);
    /// the others start unprobed.
    pub fn reconfigured(&self, config: &Config) -> (Snapshot, Membership) {
        let mut used = vec![false; self.backends.len()];
        let mut change = Membership::default();
        let backends = config
            .backends
            .iter()
            .enumerate()
            .map(|(i, cfg)| {
                let before = (0..self.backends.len()).find(|&j| !used[j] && self.backends[j].backend.url == cfg.url);
                let Some(j) = before else {
                    change.added.push(cfg.name.clone());
                    return BackendView::unprobed(Backend::new(i, cfg, config));
                };
                used[j] = true;
                let old = &self.backends[j];
                if *old.backend.name != *cfg.name {
                    change.renamed.push((old.backend.name.to_string(), cfg.name.clone()));
                }
                change.moved |= j != i;
                BackendView { backend: Arc::new(old.backend.carried(i, cfg, config)), ..old.clone() }
            })
            .collect();
        change.removed =
            self.backends.iter().zip(&used).filter(|(_, &u)| !u).map(|(v, _)| v.backend.name.to_string()).collect();
        let next = Snapshot { backends, best_tip: self.best_tip, finalized: self.finalized, reorgs: self.reorgs };
        (next, change)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::upstream::{CircuitState, Pool};

    fn config(list: &str) -> Config {
        let mut src = crate::config::Sources::for_tests(&[]);
        src.set("SENTINEL_BACKENDS", list);
        Config::from_sources(&src, true).unwrap()
    }

    #[test]
    fn same_url_keeps_its_state_whatever_its_name_or_position() {
        let before = config("a=http://10.0.0.1:1,b=http://10.0.0.2:1,c=http://10.0.0.3:1");
        let snap = Pool::new(&before).snapshot();
        snap.backends[1].backend.stats.record_latency(Duration::from_millis(7));
        snap.backends[1].backend.circuit.on_failure();
        snap.backends[1].backend.set_namespace(super::super::Namespace::Node);
        let mut after = config("bee=http://10.0.0.2:1,d=http://10.0.0.4:1,c=http://10.0.0.3:1");
        after.circuit_failures = 2;
        let (next, change) = snap.reconfigured(&after);
        let names: Vec<&str> = next.backends.iter().map(|v| &*v.backend.name).collect();
        assert_eq!(names, ["bee", "d", "c"]);
        assert!(next.backends.iter().enumerate().all(|(i, v)| v.backend.index == i), "index is the position");
        let bee = &next.backends[0].backend;
        assert!(bee.stats.ewma_us() > 0.0, "latency statistics kept");
        assert!(Arc::ptr_eq(&bee.stats, &snap.backends[1].backend.stats), "one set of counters");
        assert_eq!(bee.namespace(), super::super::Namespace::Node);
        bee.circuit.on_failure();
        assert_eq!(bee.circuit.state(), CircuitState::Open, "second failure opens with the new threshold");
        assert_eq!(next.backends[1].health.reason, Some(Unroutable::NotProbed));
        assert_eq!(
            change,
            Membership {
                added: vec!["d".into()],
                removed: vec!["a".into()],
                renamed: vec![("b".into(), "bee".into())],
                moved: true,
            }
        );
        let (_, none) = next.reconfigured(&after);
        assert!(none.is_empty(), "{none:?}");
    }
}
