//! The load: keep-alive clients, each a loop of one request at a time (mixed idempotent reads,
//! batches and `sendTx` with a unique hash) and a random pause, recording per phase what
//! succeeded, what failed and how long each request took.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng as _};
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use super::gateway::{http_client, HttpClient};

/// Failure messages kept per phase (the first ones), for the report.
const KEEP_FAILURES: usize = 5;
/// A client gives up on one request after this long (well past the gateway's own deadline).
const CLIENT_TIMEOUT: Duration = Duration::from_secs(20);

/// What the clients saw during one phase.
#[derive(Clone, Debug, Default)]
pub struct PhaseStats {
    /// HTTP requests sent.
    pub requests: u64,
    /// Idempotent read items answered with a result.
    pub reads_ok: u64,
    /// Idempotent read items not answered with a result.
    pub reads_failed: u64,
    /// `sendTx` calls sent.
    pub txs_sent: u64,
    /// `sendTx` calls the gateway answered with a result.
    pub txs_accepted: u64,
    /// Round-trip time of every request, microseconds.
    pub latency_us: Vec<u32>,
    /// The first failures, described.
    pub failures: Vec<String>,
}

impl PhaseStats {
    /// Adds `other` into `self`.
    pub fn merge(&mut self, other: PhaseStats) {
        self.requests += other.requests;
        self.reads_ok += other.reads_ok;
        self.reads_failed += other.reads_failed;
        self.txs_sent += other.txs_sent;
        self.txs_accepted += other.txs_accepted;
        self.latency_us.extend(other.latency_us);
        let room = KEEP_FAILURES.saturating_sub(self.failures.len());
        self.failures.extend(other.failures.into_iter().take(room));
    }

    fn fail(&mut self, what: String) {
        if self.failures.len() < KEEP_FAILURES {
            self.failures.push(what);
        }
    }
}

/// What a client shares with the run: the gateway, the current phase and the stop signal.
#[derive(Clone)]
pub struct Shared {
    /// Gateway URL.
    pub url: String,
    /// Index of the phase in force.
    pub phase: Arc<AtomicUsize>,
    /// Number of phases of the run.
    pub phases: usize,
    /// Ends the load.
    pub stop: CancellationToken,
    /// Pause between requests, milliseconds (uniform).
    pub think_ms: (u64, u64),
}

/// One request of the mix.
enum Call {
    /// Idempotent reads (one or a batch).
    Read { body: String, items: usize, label: &'static str },
    /// A `sendTx`.
    Send { body: String },
}

struct Client {
    id: usize,
    rng: StdRng,
    http: HttpClient,
    seq: u64,
    tip: u64,
    last_tx: Option<String>,
}

/// Runs client `id` until `shared.stop`; returns its figures per phase.
pub async fn run(id: usize, shared: Shared) -> Vec<PhaseStats> {
    let mut stats = vec![PhaseStats::default(); shared.phases];
    let mut c =
        Client { id, rng: StdRng::seed_from_u64(id as u64), http: http_client(), seq: 0, tip: 20_000, last_tx: None };
    while !shared.stop.is_cancelled() {
        let phase = shared.phase.load(Ordering::Relaxed).min(shared.phases - 1);
        let call = c.next_call();
        c.send(&shared.url, call, &mut stats[phase]).await;
        let pause = Duration::from_millis(c.rng.gen_range(shared.think_ms.0..=shared.think_ms.1));
        tokio::select! {
            () = shared.stop.cancelled() => break,
            () = tokio::time::sleep(pause) => {}
        }
    }
    stats
}

fn rpc(id: u64, method: &str, params: Value) -> Value {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params})
}

impl Client {
    fn next_call(&mut self) -> Call {
        self.seq += 1;
        let id = self.seq;
        let back = self.rng.gen_range(0..200);
        let block = self.tip.saturating_sub(back).max(1);
        let read = |method: &str, params: Value, label| Call::Read {
            body: rpc(id, method, params).to_string(),
            items: 1,
            label,
        };
        match self.rng.gen_range(0..100) {
            0..=24 => read("aztec_getBlockNumber", json!([]), "getBlockNumber"),
            25..=44 => read("aztec_getBlock", json!([block]), "getBlock"),
            45..=59 => read("aztec_getChainTips", json!([]), "getChainTips"),
            60..=69 => read("aztec_getCurrentMinFees", json!([]), "getCurrentMinFees"),
            70..=79 => {
                let batch = json!([
                    rpc(1, "aztec_getBlockNumber", json!([])),
                    rpc(2, "aztec_getBlock", json!([block])),
                    rpc(3, "aztec_getCurrentMinFees", json!([])),
                    rpc(4, "aztec_getChainTips", json!([])),
                ]);
                Call::Read { body: batch.to_string(), items: 4, label: "batch" }
            }
            80..=91 => {
                let hash = format!("0x{:08x}{:056x}", self.id, id);
                let body = rpc(id, "aztec_sendTx", json!([{"txHash": hash, "data": "AA=="}])).to_string();
                self.last_tx = Some(hash);
                Call::Send { body }
            }
            _ => match self.last_tx.clone() {
                Some(hash) => read("aztec_getTxReceipt", json!([hash]), "getTxReceipt"),
                None => read("aztec_getBlockNumber", json!([]), "getBlockNumber"),
            },
        }
    }

    async fn send(&mut self, url: &str, call: Call, stats: &mut PhaseStats) {
        let body = match &call {
            Call::Read { body, .. } | Call::Send { body } => body.clone(),
        };
        let started = Instant::now();
        let outcome = self.post(url, body).await;
        stats.requests += 1;
        stats.latency_us.push(started.elapsed().as_micros().min(u32::MAX as u128) as u32);
        match call {
            Call::Read { items, label, .. } => match outcome.and_then(|(s, v)| judge(s, &v, items)) {
                Ok(answers) => {
                    stats.reads_ok += items as u64;
                    if let Some(n) = answers.iter().find_map(|a| a["result"].as_u64()).filter(|n| *n > 1_000) {
                        self.tip = self.tip.max(n);
                    }
                }
                Err(why) => {
                    stats.reads_failed += items as u64;
                    stats.fail(format!("{label}: {why}"));
                }
            },
            Call::Send { .. } => {
                stats.txs_sent += 1;
                if outcome.and_then(|(s, v)| judge(s, &v, 1)).is_ok() {
                    stats.txs_accepted += 1;
                }
            }
        }
    }

    /// POSTs `body`; the status and the parsed answer, or why there is none.
    async fn post(&self, url: &str, body: String) -> Result<(u16, Value), String> {
        let req = http::Request::post(url)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body)))
            .map_err(|e| e.to_string())?;
        let resp = match tokio::time::timeout(CLIENT_TIMEOUT, self.http.request(req)).await {
            Err(_) => return Err("no answer within 20 s".into()),
            Ok(Err(e)) => return Err(format!("transport: {e}")),
            Ok(Ok(resp)) => resp,
        };
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        let value = serde_json::from_slice(&bytes).map_err(|_| {
            format!("HTTP {status}, not JSON: {}", String::from_utf8_lossy(&bytes[..bytes.len().min(120)]))
        })?;
        Ok((status, value))
    }
}

/// The answers of a request of `items` calls, when every one of them has a result.
fn judge(status: u16, v: &Value, items: usize) -> Result<Vec<Value>, String> {
    let answers = match v {
        Value::Array(a) if items > 1 && a.len() == items => a.clone(),
        Value::Object(_) if items == 1 => vec![v.clone()],
        _ => return Err(format!("HTTP {status}: unexpected shape {}", short(v))),
    };
    if status != 200 {
        return Err(format!("HTTP {status}: {}", short(v)));
    }
    match answers.iter().find(|a| a.get("result").is_none() || a.get("error").is_some()) {
        Some(bad) => Err(format!("HTTP {status}: {}", short(bad))),
        None => Ok(answers),
    }
}

fn short(v: &Value) -> String {
    let s = v.to_string();
    s.chars().take(160).collect()
}
