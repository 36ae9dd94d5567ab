//! The gateway under test as a child process (the binary built by cargo), its `/health` as the
//! schedule needs it, and samples of its resident memory and open descriptors from `/proc`.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde_json::Value;

/// Settings the gateway runs with besides its backends, its address and `ATTEMPT_TIMEOUT_MS`:
/// fast probes and circuit recovery, and one attempt per node (3 retries on 4 nodes).
pub const ENV: [(&str, &str); 6] = [
    ("HEALTH_CHECK_INTERVAL_MS", "500"),
    ("REQUEST_TIMEOUT_MS", "15000"),
    ("MAX_RETRIES", "3"),
    ("CIRCUIT_COOLDOWN_MS", "1000"),
    ("INTEGRITY_CHECK_INTERVAL_MS", "30000"),
    ("LOG_LEVEL", "warn"),
];

/// A plain HTTP/1.1 client.
pub type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// A new keep-alive client.
pub fn http_client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

/// One reading of the gateway process.
#[derive(Clone, Copy, Debug)]
pub struct Sample {
    /// Seconds since the load started.
    pub at_s: f64,
    /// Resident set size, KiB (`VmRSS`).
    pub rss_kb: u64,
    /// Open file descriptors (`/proc/PID/fd`).
    pub fds: u64,
    /// Threads.
    pub threads: u64,
}

/// The gateway process, killed on drop.
pub struct Gateway {
    /// `http://127.0.0.1:PORT`.
    pub url: String,
    /// Where its log (stdout and stderr) goes.
    pub log: PathBuf,
    child: Child,
    client: HttpClient,
}

impl Gateway {
    /// Starts `bin serve` in front of `backends` on a free loopback port, with `ENV` and
    /// `ATTEMPT_TIMEOUT_MS=attempt_ms`.
    ///
    /// # Panics
    /// The binary cannot be started.
    pub fn spawn(bin: &Path, backends: &str, attempt_ms: u64) -> Gateway {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = std::env::temp_dir();
        let log = dir.join(format!("sentinel-chaos-{}-{port}.log", std::process::id()));
        let out = std::fs::File::create(&log).expect("gateway log file");
        let err = out.try_clone().expect("gateway log file");
        let child = Command::new(bin)
            .arg("serve")
            // No `.env` of the working directory leaks into the run.
            .current_dir(&dir)
            .env("SENTINEL_BACKENDS", backends)
            .env("PROXY_LISTEN", format!("127.0.0.1:{port}"))
            .envs(ENV)
            .env("ATTEMPT_TIMEOUT_MS", attempt_ms.to_string())
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bin.display()));
        Gateway { url: format!("http://127.0.0.1:{port}"), log, child, client: http_client() }
    }

    /// Process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// `GET path` as JSON, `None` on any failure.
    async fn get_json(&self, path: &str) -> Option<Value> {
        let req = http::Request::get(format!("{}{path}", self.url)).body(Full::new(Bytes::new())).ok()?;
        let resp = tokio::time::timeout(Duration::from_secs(5), self.client.request(req)).await.ok()?.ok()?;
        let body = resp.into_body().collect().await.ok()?.to_bytes();
        serde_json::from_slice(&body).ok()
    }

    /// Names of the backends the gateway routes to now.
    pub async fn routable(&self) -> Option<Vec<String>> {
        let doc = self.get_json("/health").await?;
        let backends = doc["backends"].as_array()?;
        let names = backends.iter().filter(|b| b["routable"] == true).filter_map(|b| b["name"].as_str());
        Some(names.map(str::to_owned).collect())
    }

    /// Polls `/health` until every one of `names` is routable or `patience` passes.
    pub async fn await_routable(&self, names: &[String], patience: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + patience;
        loop {
            if let Some(up) = self.routable().await {
                if names.iter().all(|n| up.contains(n)) {
                    return true;
                }
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Reads the memory, descriptors and threads of process `pid`.
    pub fn sample_pid(pid: u32, at_s: f64) -> Option<Sample> {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |key: &str| {
            let line = status.lines().find(|l| l.starts_with(key))?;
            line[key.len()..].split_whitespace().next()?.parse::<u64>().ok()
        };
        let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).ok()?.count() as u64;
        Some(Sample { at_s, rss_kb: field("VmRSS:")?, fds, threads: field("Threads:")? })
    }

    /// The `totals` object of `/health`.
    pub async fn totals(&self) -> Option<Value> {
        Some(self.get_json("/health").await?["totals"].clone())
    }

    /// Whether the process is still running.
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
