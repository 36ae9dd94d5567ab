//! Per-backend live counters written by the request path: in-flight, EWMA latency, a small
//! latency window for p50/p99, request and error totals. Atomics only (pingora `RoundRobin`,
//! tower `PeakEwma`); the one `Mutex` guards the latency ring and is never held across `.await`.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// Weight of a new sample in the EWMA (about the last 10 requests dominate).
const EWMA_ALPHA: f64 = 0.2;
/// Samples kept for percentiles.
const WINDOW: usize = 256;
/// How often (in samples) the cached p95 is recomputed.
const P95_EVERY: usize = 32;

/// Live request statistics of one backend.
#[derive(Debug, Default)]
pub struct Stats {
    in_flight: AtomicU32,
    /// EWMA of request latency in microseconds, stored as f64 bits.
    ewma_us: AtomicU64,
    requests: AtomicU64,
    errors: AtomicU64,
    /// Cached p95 in µs (0 = unknown), recomputed every [`P95_EVERY`] samples so the hedging
    /// check on every read does not sort the window.
    p95_us: AtomicU32,
    /// When the EWMA last moved, ms since the process-wide origin of `now_ms`.
    touched_ms: AtomicU64,
    /// Ring of recent latencies (µs) for p50/p99; tiny critical section.
    window: Mutex<Ring>,
}

#[derive(Debug, Default)]
struct Ring {
    samples: Vec<u32>,
    next: usize,
}

/// Latency figures shown in `/health`.
#[derive(Clone, Copy, Debug, Default, serde::Serialize)]
pub struct LatencySummary {
    /// EWMA in milliseconds.
    pub ewma: f64,
    /// Median of recent requests, ms.
    pub p50: f64,
    /// 99th percentile of recent requests, ms.
    pub p99: f64,
}

/// Decrements in-flight when dropped, so a cancelled request never leaks a count.
#[derive(Debug)]
pub struct InFlightGuard<'a>(&'a Stats);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Stats {
    /// Marks one request as started.
    pub fn start(&self) -> InFlightGuard<'_> {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
        self.requests.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(self)
    }

    /// Records the latency of a request that got an answer.
    pub fn record_latency(&self, d: Duration) {
        self.penalize(d);
        let us = d.as_secs_f64() * 1e6;
        let mut ring = self.window.lock().unwrap_or_else(|e| e.into_inner());
        let sample = us.min(f64::from(u32::MAX)) as u32;
        if ring.samples.len() < WINDOW {
            ring.samples.push(sample);
        } else {
            let i = ring.next;
            ring.samples[i] = sample;
        }
        ring.next = (ring.next + 1) % WINDOW;
        if ring.next.is_multiple_of(P95_EVERY) || ring.samples.len() < P95_EVERY {
            let p95 = percentile(&ring.samples, 0.95);
            drop(ring);
            self.p95_us.store(p95.unwrap_or(0), Ordering::Relaxed);
        }
    }

    /// Recent p95 latency in µs, cheap (cached); `None` before any sample.
    pub fn p95_us(&self) -> Option<u32> {
        Some(self.p95_us.load(Ordering::Relaxed)).filter(|v| *v > 0)
    }

    /// Moves the EWMA (only) towards `d`: a failed attempt, or a primary that lost to a hedge,
    /// makes the node look slower to power-of-two-choices without counting as a latency sample.
    pub fn penalize(&self, d: Duration) {
        let us = d.as_secs_f64() * 1e6;
        let old = f64::from_bits(self.ewma_us.load(Ordering::Relaxed));
        let next = if old == 0.0 { us } else { old + EWMA_ALPHA * (us - old) };
        self.ewma_us.store(next.to_bits(), Ordering::Relaxed);
        self.touch();
    }

    /// Counts a failed attempt.
    pub fn record_error(&self) {
        self.errors.fetch_add(1, Ordering::Relaxed);
    }

    /// Requests now in flight.
    pub fn in_flight(&self) -> u32 {
        self.in_flight.load(Ordering::Relaxed)
    }

    /// EWMA latency in µs (0 before the first sample).
    pub fn ewma_us(&self) -> f64 {
        f64::from_bits(self.ewma_us.load(Ordering::Relaxed))
    }

    /// The EWMA as a routing cost: it halves for every second the node went unused, so a node
    /// that was slow (or failed) once is tried again and re-measured rather than starved.
    pub fn decayed_ewma_us(&self) -> f64 {
        let idle_ms = now_ms().saturating_sub(self.touched_ms.load(Ordering::Relaxed));
        self.ewma_us() * 0.5f64.powf(idle_ms as f64 / 1000.0)
    }

    fn touch(&self) {
        self.touched_ms.store(now_ms(), Ordering::Relaxed);
    }

    /// Total attempts sent to this backend.
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::Relaxed)
    }

    /// Total failed attempts.
    pub fn errors(&self) -> u64 {
        self.errors.load(Ordering::Relaxed)
    }

    /// Recent latency percentile in µs (`q` in 0..=1), `None` without samples.
    pub fn percentile_us(&self, q: f64) -> Option<u32> {
        let samples = self.window.lock().unwrap_or_else(|e| e.into_inner()).samples.clone();
        percentile(&samples, q)
    }

    /// EWMA, p50 and p99 in milliseconds.
    pub fn latency(&self) -> LatencySummary {
        let ms = |q| self.percentile_us(q).map_or(0.0, |v| round2(f64::from(v) / 1000.0));
        LatencySummary { ewma: round2(self.ewma_us() / 1000.0), p50: ms(0.5), p99: ms(0.99) }
    }
}

fn percentile(samples: &[u32], q: f64) -> Option<u32> {
    if samples.is_empty() {
        return None;
    }
    let mut s = samples.to_vec();
    let idx = ((s.len() - 1) as f64 * q).round() as usize;
    // Only the rank is needed: a selection, not a sort.
    Some(*s.select_nth_unstable(idx).1)
}

/// Milliseconds since the first call (a process-wide monotonic origin).
fn now_ms() -> u64 {
    static ORIGIN: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    ORIGIN.get_or_init(std::time::Instant::now).elapsed().as_millis() as u64
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_guard_and_percentiles() {
        let s = Stats::default();
        {
            let _a = s.start();
            let _b = s.start();
            assert_eq!(s.in_flight(), 2);
        }
        assert_eq!(s.in_flight(), 0);
        for ms in 1..=100 {
            s.record_latency(Duration::from_millis(ms));
        }
        assert_eq!(s.percentile_us(0.5), Some(51_000));
        assert_eq!(s.percentile_us(0.99), Some(99_000));
        assert!(s.ewma_us() > 50_000.0, "EWMA follows recent samples");
    }
}
