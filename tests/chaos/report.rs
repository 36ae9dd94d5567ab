//! Figures of a run as a Markdown section of `RELIABILITY.md`, and the update of that file: a
//! run replaces only its own section (`## Chaos` or `## Soak`) and keeps every other one,
//! including `## Descriptor exhaustion`, which `make descriptors` fills.

use std::fmt::Write as _;
use std::path::Path;

use super::clients::PhaseStats;
use super::gateway::{Sample, ENV};
use super::run::Outcome;
use super::schedule::{describe, CYCLE};

/// What the file says before its sections.
const INTRO: &str = "# Reliability\n\n\
Written by the runs themselves: `make chaos` (about a minute) and `make soak` (10 minutes) run \
`examples/chaos.rs` in release mode and each rewrites its own section below; `cargo test --test \
chaos` is the short version in CI. Four simulated nodes (v5 and v6, live chain) serve a gateway \
started from its release binary; about 200 keep-alive clients send mixed idempotent reads \
(block number, blocks, chain tips, fees, receipts, batches of four) and `sendTx` with unique \
hashes, while a schedule kills, hangs, garbles, lags, slows, resets and re-rolls nodes (a \
re-roll restarts a node on the same address on the other API version with an empty mempool), \
always leaving one node healthy. Duplicate `sendTx` are counted on the nodes, by hash, over \
every incarnation of every node.\n";

/// Placeholder of the section another run writes.
const DESCRIPTORS: &str = "## Descriptor exhaustion\n\nSee `make descriptors`.\n";

/// Latency percentile `q` (0–1) of `us` in milliseconds.
pub fn percentile_ms(us: &[u32], q: f64) -> f64 {
    if us.is_empty() {
        return 0.0;
    }
    let mut v = us.to_vec();
    v.sort_unstable();
    let idx = ((v.len() as f64 * q).ceil() as usize).clamp(1, v.len()) - 1;
    f64::from(v[idx]) / 1000.0
}

/// The section of one run; `when` and `build` describe the run (date, commit, profile).
pub fn section(o: &Outcome, heading: &str, when: &str) -> String {
    let s = &o.settings;
    let mut out = format!("## {heading}\n\n");
    let mut env: Vec<String> = ENV.iter().map(|(k, v)| format!("{k}={v}")).collect();
    env.push(format!("ATTEMPT_TIMEOUT_MS={}", s.attempt_ms));
    let _ = writeln!(
        out,
        "{when}. {} clients, {:.0} s under load, phases of {:.1} s, pause {}–{} ms between requests; \
         gateway `{}`.\n",
        s.clients,
        o.elapsed.as_secs_f64(),
        s.phase.as_secs_f64(),
        s.think_ms.0,
        s.think_ms.1,
        env.join(" ")
    );
    let total = o.total();
    let p99 = percentile_ms(&total.latency_us, 0.99);
    let _ = writeln!(
        out,
        "**{} failed idempotent reads** of {} (a healthy node remained throughout), **{} duplicate \
         `sendTx`**, p50 {:.1} ms, **p99 {:.1} ms**, max {:.1} ms over {} requests ({:.0}/s).\n",
        total.reads_failed,
        total.reads_ok + total.reads_failed,
        o.txs.duplicated,
        percentile_ms(&total.latency_us, 0.5),
        p99,
        percentile_ms(&total.latency_us, 1.0),
        total.requests,
        total.requests as f64 / o.elapsed.as_secs_f64().max(0.001)
    );
    phase_table(&mut out, o);
    let t = &o.txs;
    let _ = writeln!(
        out,
        "`sendTx`: {} sent, {} accepted, {} distinct reached a node, {} reached nodes more than once \
         ({} extra arrivals). Sent but not accepted: written to a node that then hung, garbled, \
         reset or failed, and by design not sent again.\n",
        t.sent, t.accepted, t.received, t.duplicated, t.extra_arrivals
    );
    let _ = writeln!(
        out,
        "Gateway totals (`/health`): {}. Node restarts (revivals and re-rolls): {}. Gateway alive at \
         the end: {}.\n",
        o.totals, o.restarts, o.gateway_alive
    );
    process_table(&mut out, &o.samples, s.phase.as_secs_f64() * CYCLE.len() as f64);
    if !total.failures.is_empty() {
        out.push_str("First failures:\n\n");
        for f in &total.failures {
            let _ = writeln!(out, "- `{}`", f.replace('`', "'"));
        }
        out.push('\n');
    }
    out
}

/// One row per phase of the cycle, summed over the cycles the run went through.
fn phase_table(out: &mut String, o: &Outcome) {
    out.push_str(
        "| phase | faults | runs | requests | read items ok | failed | sendTx sent / accepted | p50 ms | p99 ms | max ms | heal wait max s |\n\
         |---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|\n",
    );
    for (k, phase) in CYCLE.iter().enumerate() {
        let runs: Vec<_> = o.phases.iter().enumerate().filter(|(i, _)| i % CYCLE.len() == k).map(|(_, p)| p).collect();
        if runs.is_empty() {
            continue;
        }
        let mut st = PhaseStats::default();
        for r in &runs {
            st.merge(r.stats.clone());
        }
        let wait = runs.iter().map(|r| r.heal_wait.as_secs_f64()).fold(0.0, f64::max);
        let late = if runs.iter().all(|r| r.healed) { "" } else { " (late)" };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} | {} | {} / {} | {:.1} | {:.1} | {:.1} | {:.2}{late} |",
            phase.name,
            describe(phase),
            runs.len(),
            st.requests,
            st.reads_ok,
            st.reads_failed,
            st.txs_sent,
            st.txs_accepted,
            percentile_ms(&st.latency_us, 0.5),
            percentile_ms(&st.latency_us, 0.99),
            percentile_ms(&st.latency_us, 1.0),
            wait
        );
    }
    out.push('\n');
}

/// RSS, descriptors and threads: start, after the first cycle (warm), then every tenth of the run.
fn process_table(out: &mut String, samples: &[Sample], warm_s: f64) {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        out.push_str("No process samples.\n\n");
        return;
    };
    let warm = samples.iter().find(|s| s.at_s >= warm_s).unwrap_or(last);
    let at = |frac: f64| {
        let t = last.at_s * frac;
        samples.iter().find(|s| s.at_s >= t).unwrap_or(last)
    };
    let max_rss = samples.iter().map(|s| s.rss_kb).max().unwrap_or(0);
    let max_fds = samples.iter().map(|s| s.fds).max().unwrap_or(0);
    let _ = writeln!(
        out,
        "Gateway process, {} samples: RSS {:.1} MiB after the first cycle → {:.1} MiB at the end \
         (max {:.1}); descriptors {} → {} (max {}).\n",
        samples.len(),
        mib(warm.rss_kb),
        mib(last.rss_kb),
        mib(max_rss),
        warm.fds,
        last.fds,
        max_fds
    );
    out.push_str("| when | t s | RSS MiB | descriptors | threads |\n|---|--:|--:|--:|--:|\n");
    let mut rows = vec![("start".to_owned(), first), ("after cycle 1".to_owned(), warm)];
    rows.extend((1..=10).map(|tenth| (format!("{} %", tenth * 10), at(f64::from(tenth) / 10.0))));
    for (label, s) in rows {
        let _ = writeln!(out, "| {label} | {:.0} | {:.1} | {} | {} |", s.at_s, mib(s.rss_kb), s.fds, s.threads);
    }
    out.push('\n');
}

fn mib(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

/// Rewrites `path` with `section` in place of the section of the same heading, keeping every
/// other section and making sure the descriptor-exhaustion placeholder is there.
///
/// # Errors
/// The file cannot be written.
pub fn update_file(path: &Path, section: &str) -> std::io::Result<()> {
    let old = std::fs::read_to_string(path).unwrap_or_default();
    let heading = section.lines().next().unwrap_or_default();
    let mut sections: Vec<String> = Vec::new();
    for chunk in old.split("\n## ").skip(1) {
        sections.push(format!("## {}\n", chunk.trim_end()));
    }
    match sections.iter_mut().find(|s| s.lines().next() == Some(heading)) {
        Some(s) => *s = section.trim_end().to_owned() + "\n",
        None => sections.push(section.trim_end().to_owned() + "\n"),
    }
    if !sections.iter().any(|s| s.starts_with("## Descriptor exhaustion")) {
        sections.push(DESCRIPTORS.to_owned());
    }
    // Chaos, then soak, then everything else in the order found.
    let rank = |s: &String| {
        if s.starts_with("## Chaos") {
            0
        } else if s.starts_with("## Soak") {
            1
        } else {
            2
        }
    };
    sections.sort_by_key(rank);
    let body: Vec<String> = sections.into_iter().map(|s| s.trim_end().to_owned()).collect();
    std::fs::write(path, format!("{INTRO}\n{}\n", body.join("\n\n")))
}
