//! The chaos driver shared by the CI test (`tests/chaos.rs`) and `make chaos` / `make soak`
//! (`examples/chaos.rs`): a fleet of simulated nodes, the release or debug gateway binary as a
//! child process in front of them, about 200 keep-alive clients of mixed reads and `sendTx`,
//! and a schedule that kills, hangs, garbles, lags and re-rolls nodes while one node always
//! stays healthy.
//!
//! Layout: `fleet` (the nodes, their restarts and the `sendTx` arrivals of every incarnation),
//! `schedule` (the phases), `gateway` (the child process and its RSS and descriptor samples),
//! `clients` (the load and its per-phase figures), `run` (one whole run), `report` (the
//! `RELIABILITY.md` sections).
#![allow(dead_code, unreachable_pub)]

pub mod clients;
pub mod fleet;
pub mod gateway;
pub mod report;
pub mod run;
pub mod schedule;

use std::time::Duration;

/// What one chaos run does.
#[derive(Clone, Debug)]
pub struct Settings {
    /// `chaos`, `soak` or `ci`: names the run and its section of `RELIABILITY.md`.
    pub label: String,
    /// Concurrent keep-alive clients.
    pub clients: usize,
    /// Length of the run under load.
    pub duration: Duration,
    /// Length of one phase of the schedule.
    pub phase: Duration,
    /// Pause of a client between two requests, uniform in this range (milliseconds).
    pub think_ms: (u64, u64),
    /// The gateway's `ATTEMPT_TIMEOUT_MS`.
    pub attempt_ms: u64,
    /// Interval between two RSS / descriptor samples of the gateway.
    pub sample_every: Duration,
}

impl Settings {
    /// The short run of `cargo test`: 200 clients, 8 phases of 3 s. A debug build on two
    /// cores that other builds share: a lighter load, and attempts long enough for a healthy
    /// but starved node.
    pub fn ci() -> Settings {
        Settings {
            label: "ci".into(),
            clients: 200,
            duration: Duration::from_secs(24),
            phase: Duration::from_secs(3),
            think_ms: (500, 1500),
            attempt_ms: 1_500,
            sample_every: Duration::from_secs(2),
        }
    }

    /// `make chaos`: 200 clients for `secs` seconds, one schedule cycle (8 phases) per minute.
    pub fn chaos(secs: u64) -> Settings {
        Settings {
            label: "chaos".into(),
            clients: 200,
            duration: Duration::from_secs(secs),
            phase: Duration::from_millis(7_500),
            think_ms: (50, 150),
            attempt_ms: 1_000,
            sample_every: Duration::from_secs(5),
        }
    }

    /// `make soak`: like chaos, for `secs` seconds (10 minutes by default), sampled every 10 s.
    pub fn soak(secs: u64) -> Settings {
        Settings { label: "soak".into(), sample_every: Duration::from_secs(10), ..Settings::chaos(secs) }
    }

    /// Number of phases the run goes through.
    pub fn phases(&self) -> usize {
        (self.duration.as_millis() / self.phase.as_millis().max(1)).max(1) as usize
    }
}
