//! Per-backend circuit breaker (closed → open → half-open → closed), written by the request path
//! with atomics. `CIRCUIT_FAILURES` consecutive failures open it; after the cooldown exactly one
//! request is let through (the half-open probe, claimed by compare-and-swap); its success closes
//! the circuit, its failure re-opens it for another cooldown.

use std::sync::atomic::{AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// Circuit state as shown in `/health` and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum CircuitState {
    /// Traffic flows.
    Closed,
    /// Failing; no traffic until the cooldown ends.
    Open,
    /// One probe request is in flight.
    HalfOpen,
}

const CLOSED: u8 = 0;
const OPEN: u8 = 1;
const HALF_OPEN: u8 = 2;

/// The breaker of one backend.
#[derive(Debug)]
pub struct Circuit {
    state: AtomicU8,
    failures: AtomicU32,
    /// When the open state ends, in ms since `origin`.
    open_until_ms: AtomicU64,
    origin: Instant,
    /// Consecutive failures that open it (`CIRCUIT_FAILURES`; changes on a reload).
    threshold: AtomicU32,
    /// Cooldown in ms (`CIRCUIT_COOLDOWN_MS`; changes on a reload).
    cooldown_ms: AtomicU64,
}

impl Circuit {
    /// A closed breaker.
    pub fn new(threshold: u32, cooldown: Duration) -> Circuit {
        Circuit {
            state: AtomicU8::new(CLOSED),
            failures: AtomicU32::new(0),
            open_until_ms: AtomicU64::new(0),
            origin: Instant::now(),
            threshold: AtomicU32::new(threshold.max(1)),
            cooldown_ms: AtomicU64::new(cooldown.as_millis() as u64),
        }
    }

    /// Sets new limits (a configuration reload); the state and the failure count stay.
    pub fn set_limits(&self, threshold: u32, cooldown: Duration) {
        self.threshold.store(threshold.max(1), Ordering::Release);
        self.cooldown_ms.store(cooldown.as_millis() as u64, Ordering::Release);
    }

    fn now_ms(&self) -> u64 {
        self.origin.elapsed().as_millis() as u64
    }

    /// Current state (an open circuit whose cooldown ended reads as half-open-ready = open
    /// until a request claims the probe).
    pub fn state(&self) -> CircuitState {
        match self.state.load(Ordering::Acquire) {
            CLOSED => CircuitState::Closed,
            OPEN => CircuitState::Open,
            _ => CircuitState::HalfOpen,
        }
    }

    /// Whether a request may be sent now without claiming anything (selection filter).
    pub fn may_pass(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN => self.now_ms() >= self.open_until_ms.load(Ordering::Acquire),
            _ => false,
        }
    }

    /// Claims the right to send: always for a closed circuit; for an open circuit past its
    /// cooldown, only the one caller that wins the switch to half-open.
    pub fn try_acquire(&self) -> bool {
        match self.state.load(Ordering::Acquire) {
            CLOSED => true,
            OPEN if self.now_ms() >= self.open_until_ms.load(Ordering::Acquire) => {
                self.state.compare_exchange(OPEN, HALF_OPEN, Ordering::AcqRel, Ordering::Acquire).is_ok()
            }
            _ => false,
        }
    }

    /// Records a success: closes the circuit.
    pub fn on_success(&self) {
        self.failures.store(0, Ordering::Release);
        self.state.store(CLOSED, Ordering::Release);
    }

    /// Records a failure; returns true when this failure opened the circuit.
    pub fn on_failure(&self) -> bool {
        let n = self.failures.fetch_add(1, Ordering::AcqRel) + 1;
        let state = self.state.load(Ordering::Acquire);
        if state == HALF_OPEN || (state == CLOSED && n >= self.threshold.load(Ordering::Acquire)) {
            let until = self.now_ms() + self.cooldown_ms.load(Ordering::Acquire);
            self.open_until_ms.store(until, Ordering::Release);
            self.state.store(OPEN, Ordering::Release);
            return true;
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn opens_after_threshold_then_half_opens_once() {
        let c = Circuit::new(3, Duration::from_secs(10));
        assert!(!c.on_failure());
        assert!(!c.on_failure());
        assert!(c.on_failure(), "third consecutive failure opens");
        assert_eq!(c.state(), CircuitState::Open);
        assert!(!c.try_acquire());
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(c.may_pass());
        assert!(c.try_acquire(), "first caller gets the probe");
        assert!(!c.try_acquire(), "only one probe at a time");
        assert!(c.on_failure(), "failed probe re-opens");
        tokio::time::advance(Duration::from_secs(11)).await;
        assert!(c.try_acquire());
        c.on_success();
        assert_eq!(c.state(), CircuitState::Closed);
    }

    #[test]
    fn success_resets_the_count() {
        let c = Circuit::new(2, Duration::from_secs(1));
        c.on_failure();
        c.on_success();
        assert!(!c.on_failure());
        assert_eq!(c.state(), CircuitState::Closed);
    }
}
