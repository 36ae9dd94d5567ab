//! Test fixtures: a gateway on 127.0.0.1:0 in front of simulated Aztec nodes (the product's own
//! simulator, driven through its fault switches), and a tiny JSON-RPC client.
#![allow(dead_code, unreachable_pub)]

use std::future::Future;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use sentinel_proxy::config::{Config, Sources};
use sentinel_proxy::gateway;
use sentinel_proxy::monitor::Monitor;
use sentinel_proxy::server;
use sentinel_proxy::simulator::{ApiVersion, SimConfig, SimNode};
use sentinel_proxy::state::AppState;
use serde_json::Value;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A simulated node for tests (frozen chain, healthy).
pub async fn node(version: ApiVersion) -> SimNode {
    SimNode::start(SimConfig::for_tests(version)).await.expect("simulator starts")
}

/// A gateway under test. The monitor loop is not running: tests call `probe()` /
/// `check_integrity()` to advance it deterministically.
pub struct TestProxy {
    pub url: String,
    pub state: AppState,
    pub monitor: Monitor,
    cancel: CancellationToken,
}

impl Drop for TestProxy {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl TestProxy {
    /// A gateway in front of `nodes` with `Sources::for_tests` plus `extra` settings.
    pub async fn start(nodes: &[&SimNode], extra: &[(&str, &str)]) -> TestProxy {
        let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
        let mut src = Sources::for_tests(&urls);
        for (k, v) in extra {
            src.set(k, *v);
        }
        let config = Config::from_sources(&src, true).expect("valid test config");
        let (state, monitor) = gateway::build(config);
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let cancel = CancellationToken::new();
        tokio::spawn(server::serve(listener, state.clone(), cancel.clone()));
        let mut proxy = TestProxy { url, state, monitor, cancel };
        proxy.probe().await;
        proxy
    }

    /// One monitor health pass.
    pub async fn probe(&mut self) {
        self.monitor.run_once().await;
    }

    /// One monitor integrity pass.
    pub async fn check_integrity(&mut self) {
        self.monitor.check_integrity().await;
    }

    /// `/health` as JSON.
    pub async fn health(&self) -> Value {
        let r = get(&format!("{}/health", self.url)).await;
        serde_json::from_slice(&r.body).unwrap()
    }

    /// The `/health` entry of backend `i`.
    pub async fn backend(&self, i: usize) -> Value {
        self.health().await["backends"][i].clone()
    }
}

/// A response as a test sees it.
pub struct Reply {
    pub status: u16,
    pub headers: http::HeaderMap,
    pub body: Bytes,
}

impl Reply {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not json ({e}): {:?}", String::from_utf8_lossy(&self.body)))
    }
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers.get(name).map(|v| v.to_str().unwrap().to_owned())
    }
}

fn client() -> Client<hyper_util::client::legacy::connect::HttpConnector, Full<Bytes>> {
    Client::builder(TokioExecutor::new()).build_http()
}

/// Sends `req` with extra `headers` and reads the whole reply.
async fn send(mut req: http::request::Builder, headers: &[(&str, &str)], body: Bytes) -> Reply {
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let resp = client().request(req.body(Full::new(body)).unwrap()).await.expect("gateway answers");
    let (parts, body) = resp.into_parts();
    Reply { status: parts.status.as_u16(), headers: parts.headers, body: body.collect().await.unwrap().to_bytes() }
}

/// POSTs a raw body.
pub async fn post_raw(url: &str, body: impl Into<Bytes>, headers: &[(&str, &str)]) -> Reply {
    send(http::Request::post(url).header("content-type", "application/json"), headers, body.into()).await
}

/// POSTs a JSON value.
pub async fn post(url: &str, body: Value) -> Reply {
    post_raw(url, body.to_string(), &[]).await
}

/// One JSON-RPC call; returns the reply.
pub async fn rpc(url: &str, method: &str, params: Value) -> Reply {
    post(url, serde_json::json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params})).await
}

/// GET.
pub async fn get(url: &str) -> Reply {
    get_with(url, &[]).await
}

/// GET with extra headers.
pub async fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    send(http::Request::get(url), headers, Bytes::new()).await
}

/// Polls `cond` until it holds or `patience` passes (for background effects only).
pub async fn eventually<F, Fut>(patience: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        if cond().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A real `redis-server` on a free loopback port, killed on drop.
pub struct RedisServer {
    pub url: String,
    pub port: u16,
    child: std::process::Child,
    _dir: TempDir,
}

/// A temporary directory removed on drop.
pub struct TempDir(pub std::path::PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        let p = std::env::temp_dir().join(format!("sentinel-{tag}-{}-{}", std::process::id(), rand_suffix()));
        std::fs::create_dir_all(&p).unwrap();
        TempDir(p)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn rand_suffix() -> u64 {
    use std::time::{SystemTime, UNIX_EPOCH};
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().subsec_nanos() as u64
}

impl RedisServer {
    /// Starts redis-server; panics with an install hint when it is missing.
    pub async fn start() -> RedisServer {
        RedisServer::start_with(&[]).await
    }

    /// Starts redis-server with `extra` arguments after the defaults (later ones win, e.g.
    /// `--port 0 --tls-port {port}` for TLS only); `{port}` stands for the chosen port.
    pub async fn start_with(extra: &[&str]) -> RedisServer {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = TempDir::new("redis");
        let extra = extra.iter().map(|a| a.replace("{port}", &port.to_string()));
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .args(extra)
            .arg("--dir")
            .arg(&dir.0)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is needed for these tests: apt-get install -y redis-server (make test installs it)");
        let server = RedisServer { url: format!("redis://127.0.0.1:{port}"), port, child, _dir: dir };
        let up = eventually(Duration::from_secs(10), || async {
            tokio::net::TcpStream::connect(("127.0.0.1", port)).await.is_ok()
        })
        .await;
        assert!(up, "redis-server did not start on port {port}");
        server
    }

    /// Kills the server (as a crash would).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Number of keys (via redis-cli-free RESP over a socket).
    pub async fn dbsize(&self) -> i64 {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut s = tokio::net::TcpStream::connect(("127.0.0.1", self.port)).await.unwrap();
        s.write_all(b"*1\r\n$6\r\nDBSIZE\r\n").await.unwrap();
        let mut buf = [0u8; 64];
        let n = s.read(&mut buf).await.unwrap();
        let text = String::from_utf8_lossy(&buf[..n]);
        text.trim().trim_start_matches(':').parse().unwrap()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Log lines written by a test's own subscriber (a `MakeWriter` sharing one buffer).
#[derive(Clone, Default)]
pub struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl Captured {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'w> tracing_subscriber::fmt::MakeWriter<'w> for Captured {
    type Writer = Captured;
    fn make_writer(&'w self) -> Captured {
        self.clone()
    }
}
