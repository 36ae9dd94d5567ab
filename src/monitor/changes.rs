//! The monitor's log lines for state changes (routability, forks, integrity verdicts): each
//! change is logged once, when it happens, not at every pass.

use crate::integrity::IntegrityStatus;
use crate::upstream::{BackendView, Health, Integrity, Unroutable};

pub(super) fn log_fork_change(prev: &BackendView, next: &Health) {
    let name = &prev.backend.name;
    match &next.fork {
        Some(f) if f.finalized => {
            tracing::error!(backend = %name, state = %f, "hash disagreement at a finalized height")
        }
        Some(f) => tracing::warn!(backend = %name, state = %f, "hash disagreement"),
        None => tracing::info!(backend = %name, "hashes agree with the fleet again"),
    }
}

pub(super) fn log_health_change(prev: &BackendView, next: &Health) {
    let name = &prev.backend.name;
    let reason = next.reason.as_ref().map(ToString::to_string).unwrap_or_default();
    match (prev.health.healthy, next.healthy) {
        (true, false) => tracing::warn!(backend = %name, %reason, "backend became unroutable"),
        (false, true) => tracing::info!(backend = %name, tip = next.tip, "backend became routable"),
        // A lag growing by one block is not a new reason: log when the kind changes.
        (false, false)
            if prev.health.reason.as_ref().map(Unroutable::kind) != next.reason.as_ref().map(Unroutable::kind) =>
        {
            tracing::warn!(backend = %name, %reason, "backend not routable");
        }
        _ => {}
    }
}

pub(super) fn log_verdict_change(prev: &BackendView, next: &Integrity) {
    let (a, b) = (&prev.integrity.verdict, &next.verdict);
    if a.status != b.status || a.kind != b.kind {
        let level_bad = b.status == IntegrityStatus::Bad;
        if level_bad {
            tracing::warn!(backend = %prev.backend.name, score = b.score, status = ?b.status, kind = ?b.kind, inconsistent = ?b.inconsistent_epochs, missing = ?b.missing_epochs, "integrity verdict changed");
        } else {
            tracing::info!(backend = %prev.backend.name, score = b.score, status = ?b.status, kind = ?b.kind, "integrity verdict changed");
        }
    }
    if let Some(error) = next.error.as_ref().filter(|&e| prev.integrity.error.as_ref() != Some(e)) {
        tracing::warn!(backend = %prev.backend.name, %error, "integrity check failed");
    }
}
