//! Conformance with the official Aztec node client: `conformance/client.mjs` runs
//! `createAztecNodeClient` from `@aztec/stdlib` 4.1.2 (v4 API, `node_*` names, the node's own
//! zod schemas) against a simulated node or the gateway, calls every read method the simulator
//! serves (alone, then all together as one JSON-RPC batch) and prints a JSON report, which these
//! tests check.
//!
//! Needs Node.js (>= 20) and `conformance/node_modules`, which `make test` installs
//! through `scripts/test-deps.sh` (`npm ci`). Without them the tests fail, never skip.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use sentinel_proxy::simulator::{ApiVersion, SimConfig, SimNode};
use serde::Deserialize;
use support::TestProxy;

/// The probe, relative to the crate root.
const SCRIPT: &str = "conformance/client.mjs";

/// How long one probe run may take (it normally takes one to two seconds).
const PROBE_TIMEOUT: Duration = Duration::from_secs(90);

/// Calls a v3 node cannot pass with the v4 client: methods v3 does not have, and v3 shapes
/// (flat `getL2Tips`, blocks without checkpoint position, `block-*` sentinel statuses).
const V3_BY_DESIGN: [&str; 10] = [
    "getCheckpointedBlockNumber",
    "getCheckpointNumber",
    "getCurrentMinFees",
    "getL2Tips",
    "getBlock(number)",
    "getBlock(hash)",
    "getBlock(latest)",
    "getBlockByHash",
    "getValidatorsStats",
    "getValidatorStats",
];

/// Calls a v5+ node cannot pass with the v4 client even through a translating gateway: the
/// methods v5 removed without a replacement (`getBlockByHash`, `getBlockHeader`), blocks
/// without a body (a gateway cannot invent tx effects), and sentinel statuses the v4 enum does
/// not have. The renames (`getL2Tips` → `getChainTips`, `getProvenBlockNumber` /
/// `getCheckpointedBlockNumber` → `getBlockNumber(tag)`) are translatable and not listed.
const V5_UNTRANSLATABLE: [&str; 8] = [
    "getBlock(number)",
    "getBlock(hash)",
    "getBlock(latest)",
    "getBlockByHash",
    "getBlockHeader()",
    "getBlockHeader(number)",
    "getValidatorsStats",
    "getValidatorStats",
];

/// The renamed methods: a v5+ node answered directly fails them, a gateway bridges them.
const RENAMED_IN_V5: [&str; 3] = ["getL2Tips", "getProvenBlockNumber", "getCheckpointedBlockNumber"];

/// One call of the probe.
#[derive(Debug, Deserialize)]
struct CallResult {
    /// Label, e.g. `getBlock(hash)`.
    call: String,
    /// `single` (alone in its request) or `batch` (in one batch with all the others).
    mode: String,
    ok: bool,
    error: Option<String>,
}

/// The probe's report.
#[derive(Debug, Deserialize)]
struct Report {
    client: String,
    methods: Vec<String>,
    results: Vec<CallResult>,
    passed: usize,
    failed: usize,
    total: usize,
}

impl Report {
    /// The calls that failed, excluding labels in `expected`.
    fn unexpected_failures(&self, expected: &[&str]) -> Vec<&CallResult> {
        self.results.iter().filter(|r| !r.ok && !expected.contains(&r.call.as_str())).collect()
    }

    /// Labels of the calls that failed (in either mode).
    fn failed_calls(&self) -> BTreeSet<&str> {
        self.results.iter().filter(|r| !r.ok).map(|r| r.call.as_str()).collect()
    }

    /// Asserts that every call outside `expected` passed, listing the failures.
    fn assert_passes(&self, case: &str, expected: &[&str]) {
        let bad = self.unexpected_failures(expected);
        let list: Vec<String> =
            bad.iter().map(|r| format!("  - {} [{}]: {}", r.call, r.mode, r.error.as_deref().unwrap_or("?"))).collect();
        assert!(
            bad.is_empty(),
            "{case}: {} of {} calls of the official client ({}) failed validation:\n{}",
            bad.len(),
            self.total,
            self.client,
            list.join("\n")
        );
        eprintln!("{case}: {} of {} calls pass ({} expected failures)", self.passed, self.total, self.failed);
    }
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// Runs the probe against `url` and parses its report; panics (with a hint) when Node.js or
/// the npm packages are missing or the probe breaks.
async fn probe(url: &str) -> Report {
    let modules = root().join("conformance/node_modules/@aztec/stdlib");
    assert!(
        Path::new(&modules).is_dir(),
        "{} is missing: run ./scripts/test-deps.sh (make test does; it runs `npm ci` in conformance/)",
        modules.display()
    );
    let child = tokio::process::Command::new("node")
        .arg(SCRIPT)
        .arg(url)
        .current_dir(root())
        .env("LOG_LEVEL", "silent")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("cannot run `node` ({e}): the conformance tests need Node.js >= 20 on PATH (and npm for make test)")
        });
    let out = tokio::time::timeout(PROBE_TIMEOUT, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{SCRIPT} did not finish within {PROBE_TIMEOUT:?}"))
        .expect("node runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let line = stdout.lines().rev().find(|l| l.starts_with('{')).unwrap_or_else(|| {
        panic!("{SCRIPT} printed no report (exit {:?})\nstdout: {stdout}\nstderr: {stderr}", out.status.code())
    });
    let value: serde_json::Value =
        serde_json::from_str(line).unwrap_or_else(|e| panic!("bad report ({e}): {line}\nstderr: {stderr}"));
    if let Some(fatal) = value.get("fatal") {
        panic!("{SCRIPT} broke before reporting: {fatal}\nstderr: {stderr}");
    }
    let report: Report =
        serde_json::from_value(value).unwrap_or_else(|e| panic!("bad report ({e}): {line}\nstderr: {stderr}"));
    assert_eq!(report.passed + report.failed, report.total, "inconsistent report: {line}");
    assert_eq!(report.results.len(), report.total, "inconsistent report: {line}");
    report
}

/// A simulated node like `support::node`, with two epochs of sentinel history instead of 24:
/// the official client validates `getValidatorsStats` record by record, which takes it about
/// 1.7 s for 24 epochs and a few tens of milliseconds for two. The shapes are the same.
async fn node(version: ApiVersion) -> SimNode {
    let mut cfg = SimConfig::for_tests(version);
    cfg.history_epochs = 2;
    SimNode::start(cfg).await.expect("simulator starts")
}

/// Simulated nodes of the given versions.
async fn fleet(versions: &[ApiVersion]) -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for v in versions {
        nodes.push(node(*v).await);
    }
    nodes
}

/// The official client's report through a gateway (default settings) over a fleet of
/// `versions`.
async fn through_gateway(versions: &[ApiVersion]) -> Report {
    let nodes = fleet(versions).await;
    let refs: Vec<&SimNode> = nodes.iter().collect();
    let proxy = TestProxy::start(&refs, &[]).await;
    probe(&proxy.url).await
}

#[tokio::test]
async fn the_official_client_accepts_every_answer_of_a_simulated_v4_node() {
    let n = node(ApiVersion::V4).await;
    let report = probe(&n.url).await;
    report.assert_passes("direct v4", &[]);
    assert_eq!(report.passed, report.total);
    // Every listed method is exercised, in both modes.
    for method in &report.methods {
        let modes: BTreeSet<&str> = report
            .results
            .iter()
            .filter(|r| r.call == *method || r.call.starts_with(&format!("{method}(")))
            .map(|r| r.mode.as_str())
            .collect();
        assert_eq!(modes, BTreeSet::from(["batch", "single"]), "{method}");
    }
    assert!(report.methods.len() >= 22, "{:?}", report.methods);
}

#[tokio::test]
async fn other_generations_pass_every_call_they_share_with_the_v4_client() {
    let v5_direct = [&V5_UNTRANSLATABLE[..], &RENAMED_IN_V5[..]].concat();
    for (version, by_design) in
        [(ApiVersion::V3, &V3_BY_DESIGN[..]), (ApiVersion::V5, &v5_direct[..]), (ApiVersion::V6, &v5_direct[..])]
    {
        let n = node(version).await;
        let report = probe(&n.url).await;
        report.assert_passes(&format!("direct {version}"), by_design);
    }
}

#[tokio::test]
async fn the_official_client_accepts_the_gateway_over_a_v4_fleet() {
    let report = through_gateway(&[ApiVersion::V4, ApiVersion::V4, ApiVersion::V4]).await;
    report.assert_passes("gateway over v4 x3", &[]);
    assert_eq!(report.passed, report.total);
}

/// A rolling upgrade: `node_*` calls whose answer shape differs between generations (blocks,
/// tips, validator stats) must reach the v4 node, never the v3, v5 or v6 ones.
#[tokio::test]
async fn the_official_client_accepts_the_gateway_over_a_mixed_fleet() {
    let report = through_gateway(&[ApiVersion::V3, ApiVersion::V4, ApiVersion::V5, ApiVersion::V6]).await;
    report.assert_passes("gateway over v3+v4+v5+v6", &[]);
    assert_eq!(report.passed, report.total);
}

#[tokio::test]
async fn the_official_client_gets_every_translatable_call_through_the_gateway_over_a_v6_fleet() {
    let report = through_gateway(&[ApiVersion::V6, ApiVersion::V6]).await;
    report.assert_passes("gateway over v6 x2", &V5_UNTRANSLATABLE);
    eprintln!("gateway over v6 x2: failing calls {:?}", report.failed_calls());
}
