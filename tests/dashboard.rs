//! `/dashboard` in a real browser: headless Chromium (`/usr/bin/chromium`, or `$CHROMIUM`)
//! loads the page from a gateway in front of simulated nodes, and the tests read the rendered
//! DOM while the page polls `/health` by itself: every node appears with its status, a node made
//! to lag turns unroutable on the open page within a few seconds, and the `ADMIN_TOKEN` prompt
//! works. One test saves screenshots (laptop and phone) to `target/artifacts/`; only with
//! `UPDATE_SCREENSHOT=1` (`make screenshot`) does it also replace the tracked
//! `docs/dashboard.png`, so a test run leaves the working tree clean.
//!
//! The browser is driven over the DevTools protocol on `--remote-debugging-pipe` (two FIFOs,
//! NUL-separated JSON), so no WebDriver, no extra crate and no TCP port is involved. The tests
//! run on a multi-threaded runtime: the gateway and the nodes live on its worker threads, and
//! the test body may block on the browser.

mod support;

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::{Duration, Instant};

use sentinel_proxy::simulator::{ApiVersion, Faults, SimConfig, SimNode};
use serde_json::{json, Value};
use support::{get, node, post, rpc, TestProxy};

/// One browser at a time: the CI machine has two cores.
static BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A headless Chromium with one page, driven over the DevTools pipe.
struct Browser {
    child: Child,
    to_browser: std::fs::File,
    from_browser: Receiver<Value>,
    next_id: u64,
    session: Option<String>,
    dir: PathBuf,
}

impl Browser {
    /// Starts Chromium and opens `url` in a `width`×`height` viewport (a phone when narrow).
    fn open(url: &str, width: u32, height: u32) -> Browser {
        let exe = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".to_owned());
        assert!(
            Path::new(&exe).exists(),
            "the dashboard tests need a real Chromium at {exe}: install it with \
             `apt-get install -y chromium` (Debian/Ubuntu; CI does this) or set CHROMIUM=/path"
        );
        let dir = scratch_dir();
        let (to_path, from_path) = (dir.join("to-browser"), dir.join("from-browser"));
        for fifo in [&to_path, &from_path] {
            let ok = Command::new("mkfifo").arg(fifo).status().is_ok_and(|s| s.success());
            assert!(ok, "mkfifo {} failed", fifo.display());
        }
        let stderr = std::fs::File::create(dir.join("chromium.log")).unwrap();
        // `sh` opens the FIFOs read-write (never blocks) as fds 3 and 4, then becomes Chromium.
        let child = Command::new("sh")
            .arg("-c")
            .arg(r#"exec 3<>"$1" 4<>"$2"; shift 2; exec "$@""#)
            .arg("sh")
            .arg(&to_path)
            .arg(&from_path)
            .arg(&exe)
            .args(["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"])
            .args(["--no-first-run", "--disable-background-networking", "--hide-scrollbars"])
            .args(["--disable-component-update", "--disable-sync", "--mute-audio"])
            .arg(format!("--user-data-dir={}", dir.join("profile").display()))
            .arg("--remote-debugging-pipe")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {exe}: {e}"));
        let rw = |p: &Path| std::fs::OpenOptions::new().read(true).write(true).open(p);
        let to_browser = rw(&to_path).unwrap();
        let from_browser = spawn_reader(rw(&from_path).unwrap());
        let mut b = Browser { child, to_browser, from_browser, next_id: 0, session: None, dir };
        let target = b.call("Target.createTarget", json!({"url": "about:blank"}));
        let attach = json!({"targetId": target["targetId"], "flatten": true});
        let session = b.call("Target.attachToTarget", attach)["sessionId"].clone();
        b.session = Some(session.as_str().unwrap().to_owned());
        b.resize(width, height);
        let nav = b.call("Page.navigate", json!({ "url": url }));
        assert!(nav.get("errorText").is_none(), "navigation failed: {nav}");
        b
    }

    /// Sets the viewport; below 800 px wide it is a 2× touch phone.
    fn resize(&mut self, width: u32, height: u32) {
        let phone = width < 800;
        self.call(
            "Emulation.setDeviceMetricsOverride",
            json!({"width": width, "height": height, "deviceScaleFactor": if phone { 2 } else { 1 }, "mobile": phone}),
        );
    }

    /// Sends one command and waits for its answer (events in between are skipped).
    fn call(&mut self, method: &str, params: Value) -> Value {
        self.next_id += 1;
        let id = self.next_id;
        let mut msg = json!({"id": id, "method": method, "params": params});
        if let (Some(s), false) = (&self.session, method.starts_with("Target.")) {
            msg["sessionId"] = json!(s);
        }
        let mut bytes = msg.to_string().into_bytes();
        bytes.push(0);
        self.to_browser.write_all(&bytes).unwrap();
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let reply = self
                .from_browser
                .recv_timeout(left)
                .unwrap_or_else(|_| panic!("no answer to {method} from Chromium; its log:\n{}", self.log()));
            if reply["id"] == json!(id) {
                assert!(reply.get("error").is_none(), "{method}: {reply}");
                return reply["result"].clone();
            }
        }
    }

    /// Evaluates a JavaScript expression in the page and returns its JSON value.
    fn eval(&mut self, expression: &str) -> Value {
        let r = self.call("Runtime.evaluate", json!({"expression": expression, "returnByValue": true}));
        assert!(r.get("exceptionDetails").is_none(), "{expression}: {r}");
        r["result"]["value"].clone()
    }

    /// Polls `expression` until it is `true`; panics with what the page shows after `patience`.
    fn wait_for(&mut self, what: &str, expression: &str, patience: Duration) -> Duration {
        let start = Instant::now();
        // The page may still be loading: an exception is "not yet", not a failure.
        let guarded =
            format!("(() => {{ try {{ return ({expression}) === true; }} catch (e) {{ return false; }} }})()");
        while start.elapsed() < patience {
            if self.eval(&guarded) == json!(true) {
                return start.elapsed();
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let text = self.eval("document.body.innerText.slice(0, 3000)");
        panic!("page never showed {what} within {patience:?}; it shows:\n{}", text.as_str().unwrap_or(""));
    }

    /// The fleet table as the page renders it: `[{node, status, reason}]`.
    fn rows(&mut self) -> Vec<Value> {
        let js = r#"[...document.querySelectorAll("tr[data-node]")].map((tr) => ({
            node: tr.dataset.node, status: tr.dataset.status,
            reason: tr.querySelector('[data-field="reason"]').textContent }))"#;
        self.eval(js).as_array().cloned().unwrap_or_default()
    }

    /// Saves a PNG of the viewport (or the whole page).
    fn screenshot(&mut self, path: &Path, full_page: bool) {
        let shot = self.call("Page.captureScreenshot", json!({"format": "png", "captureBeyondViewport": full_page}));
        let png = base64_decode(shot["data"].as_str().expect("screenshot data"));
        assert!(png.starts_with(b"\x89PNG"), "not a PNG");
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, png).unwrap();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("chromium.log")).unwrap_or_default()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.to_browser.write_all(b"{\"id\":0,\"method\":\"Browser.close\"}\0");
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = self.child.try_wait() {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Reads NUL-terminated JSON messages on a thread, so every wait can have a deadline.
fn spawn_reader(mut pipe: std::fs::File) -> Receiver<Value> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let (mut buf, mut chunk) = (Vec::new(), vec![0u8; 1 << 16]);
        while let Ok(n) = pipe.read(&mut chunk) {
            buf.extend_from_slice(&chunk[..n]);
            while let Some(end) = buf.iter().position(|&b| b == 0) {
                let msg: Vec<u8> = buf.drain(..=end).collect();
                let Ok(v) = serde_json::from_slice(&msg[..end]) else {
                    continue;
                };
                if tx.send(v).is_err() {
                    return;
                }
            }
        }
    });
    rx
}

fn scratch_dir() -> PathBuf {
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("chromium-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Standard base64 (what DevTools uses for screenshots).
fn base64_decode(s: &str) -> Vec<u8> {
    let val = |c: u8| match c {
        b'A'..=b'Z' => c - b'A',
        b'a'..=b'z' => c - b'a' + 26,
        b'0'..=b'9' => c - b'0' + 52,
        b'+' => 62,
        b'/' => 63,
        _ => panic!("not base64: {c}"),
    };
    let clean: Vec<u8> = s.bytes().filter(|&c| c != b'=' && !c.is_ascii_whitespace()).collect();
    let mut out = Vec::with_capacity(clean.len() * 3 / 4);
    for quad in clean.chunks(4) {
        let n = quad.iter().enumerate().fold(0u32, |acc, (i, &c)| acc | u32::from(val(c)) << (18 - 6 * i));
        out.extend_from_slice(&n.to_be_bytes()[1..quad.len()]);
    }
    out
}

fn artifacts() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR")).parent().unwrap().join("artifacts")
}

/// Whether this run should refresh the README's screenshot (`make screenshot`). Off by default:
/// an ordinary test run writes only under `target/`.
fn update_screenshot() -> bool {
    std::env::var_os("UPDATE_SCREENSHOT").is_some_and(|v| !v.is_empty() && v != "0")
}

const LIVE: &str = r#"document.getElementById("app").dataset.state === "live""#;

#[tokio::test]
async fn page_is_self_contained_and_needs_no_token() {
    let n = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&n], &[("ADMIN_TOKEN", "t0ken")]).await;
    let r = get(&format!("{}/dashboard", proxy.url)).await;
    assert_eq!(r.status, 200, "the page holds no data and is served without the token");
    assert!(r.header("content-type").unwrap().starts_with("text/html"));
    let page = String::from_utf8(r.body.to_vec()).unwrap();
    let outside = page.replace("http://www.w3.org/2000/svg", "");
    for needle in ["http://", "https://", "//cdn", "<script src", "<link rel=\"stylesheet\"", "@import"] {
        assert!(!outside.contains(needle), "the page must not load {needle:?} from anywhere");
    }
    assert!(page.contains(r#"fetch("/health""#), "polls /health by absolute path");
    assert_eq!(get(&format!("{}/health", proxy.url)).await.json().as_object().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_appears_live_and_a_lagging_node_turns_unroutable() {
    let _one = BROWSER.lock().await;
    let nodes = [node(ApiVersion::V6).await, node(ApiVersion::V5).await, node(ApiVersion::V4).await];
    let mut proxy = TestProxy::start(&[&nodes[0], &nodes[1], &nodes[2]], &[]).await;
    let mut page = Browser::open(&format!("{}/dashboard", proxy.url), 1280, 900);
    let ready = format!(
        "{LIVE} && +document.getElementById('app').dataset.updates >= 2 && \
         document.querySelectorAll('tr[data-node]').length === 3"
    );
    page.wait_for("three nodes after two updates", &ready, Duration::from_secs(8));
    let rows = page.rows();
    for (i, row) in rows.iter().enumerate() {
        assert_eq!(row["node"], format!("node-{i}"), "{rows:?}");
        assert_eq!(row["status"], "routable", "{rows:?}");
    }
    assert_eq!(page.eval("document.getElementById('status').textContent"), "healthy");
    page.eval("window.sameDocument = 'yes'");

    nodes[2].set_faults(Faults { lag_blocks: 10, ..Faults::default() });
    proxy.probe().await;
    let lagging = r#"document.querySelector('tr[data-node="node-2"]').dataset.status === "unroutable""#;
    let took = page.wait_for("node-2 unroutable", lagging, Duration::from_secs(5));
    assert!(took <= Duration::from_secs(3), "the open page updated after {took:?}");
    let rows = page.rows();
    assert!(rows[2]["reason"].as_str().unwrap().contains("lagging 10 blocks"), "{rows:?}");
    assert_eq!(rows[0]["status"], "routable");
    assert_eq!(page.eval("window.sameDocument"), "yes", "updated in place, not reloaded");
    assert_eq!(page.eval("document.getElementById('status').textContent"), "degraded");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn page_asks_for_the_admin_token_and_keeps_it_for_the_tab() {
    let _one = BROWSER.lock().await;
    let n = node(ApiVersion::V6).await;
    let proxy = TestProxy::start(&[&n], &[("ADMIN_TOKEN", "dash-s3cret")]).await;
    let mut page = Browser::open(&format!("{}/dashboard", proxy.url), 1280, 900);
    let auth = r#"document.getElementById("app").dataset.state === "auth""#;
    page.wait_for("the token prompt", auth, Duration::from_secs(8));
    assert!(page.rows().is_empty(), "no fleet data without the token");

    let submit = |token: &str| {
        format!(
            "document.getElementById('token').value = {token:?}; \
             document.getElementById('auth-form').requestSubmit(); true"
        )
    };
    page.eval(&submit("wrong"));
    let refused = "document.getElementById('auth-err').textContent.includes('not accepted')";
    page.wait_for("the refusal", refused, Duration::from_secs(5));
    page.eval(&submit("dash-s3cret"));
    let shown = format!("{LIVE} && document.querySelectorAll('tr[data-node]').length === 1");
    page.wait_for("the fleet after the token", &shown, Duration::from_secs(5));
    assert_eq!(page.rows()[0]["status"], "routable");
    let kept = page.eval("sessionStorage.getItem('sentinel-proxy.admin-token')");
    assert_eq!(kept, "dash-s3cret");
}

/// A live, varied fleet on the shared profile clock (3 s blocks), named like the demo.
async fn realistic_fleet() -> Vec<(&'static str, SimNode)> {
    let mut fleet = Vec::new();
    for (name, profile) in [
        ("archiver-1", "archiver"),
        ("pruned-1", "pruned"),
        ("corrupted-1", "corrupted"),
        ("gapped-1", "gapped"),
        ("lagging-1", "lagging"),
    ] {
        let cfg = SimConfig::profile(profile).expect("known profile");
        fleet.push((name, SimNode::start(cfg).await.expect("simulator starts")));
    }
    fleet
}

/// Client traffic with a few invalid calls, until the returned handle is aborted.
fn traffic(url: String) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let methods = ["aztec_getBlockNumber", "aztec_getChainTips", "node_getChainId", "aztec_getNodeInfo"];
        for i in 0u64.. {
            let batch: Vec<Value> =
                methods.iter().map(|m| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": []})).collect();
            post(&url, Value::Array(batch)).await;
            if i % 7 == 0 {
                rpc(&url, "aztec_noSuchMethod", json!([])).await;
            }
            tokio::time::sleep(Duration::from_millis(20 + (i * 37) % 60)).await;
        }
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn screenshot_of_a_realistic_fleet() {
    let _one = BROWSER.lock().await;
    let fleet = realistic_fleet().await;
    let backends: Vec<String> = fleet.iter().map(|(name, n)| format!("{name}={}", n.url)).collect();
    let nodes: Vec<&SimNode> = fleet.iter().map(|(_, n)| n).collect();
    let list = backends.join(",");
    let mut proxy = TestProxy::start(&nodes, &[("SENTINEL_BACKENDS", list.as_str())]).await;
    proxy.check_integrity().await;
    let load = traffic(proxy.url.clone());

    let mut page = Browser::open(&format!("{}/dashboard", proxy.url), 1440, 1000);
    page.call("Emulation.setEmulatedMedia", json!({"features": [{"name": "prefers-color-scheme", "value": "dark"}]}));
    let warm = format!("{LIVE} && +document.getElementById('app').dataset.updates >= 6");
    page.wait_for("a few live updates", &warm, Duration::from_secs(12));
    let rows = page.rows();
    assert_eq!(rows.len(), fleet.len(), "{rows:?}");
    for (row, (name, _)) in rows.iter().zip(&fleet) {
        assert_eq!(row["node"], *name);
    }
    let lagging = rows.iter().find(|r| r["node"] == "lagging-1").unwrap();
    assert_eq!(lagging["status"], "unroutable", "{rows:?}");
    // Every epoch cell carries its node, epoch and score, and a hover text (title) that starts
    // with them and lists the issues; without any analysis the map says so instead.
    let heat = page.eval(
        r#"(() => { const h = document.getElementById("heatmap");
            const cells = [...h.querySelectorAll(".cell[data-epoch]")];
            return { analysed: h.dataset.analysed === "true", cells: cells.length,
              titled: cells.every((c) => c.title.startsWith(
                `${c.dataset.node} · epoch ${c.dataset.epoch} · score ${c.dataset.score}`)),
              honest: h.textContent.includes("not analysed") }; })()"#,
    );
    if heat["analysed"] == true {
        assert!(heat["cells"].as_u64().unwrap() > 0 && heat["titled"] == true, "{heat}");
    } else {
        assert_eq!(heat["honest"], true, "no epochs, yet no 'not analysed' note: {heat}");
    }

    let shot = artifacts().join("dashboard.png");
    page.screenshot(&shot, false);
    if update_screenshot() {
        let docs = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/dashboard.png");
        std::fs::create_dir_all(docs.parent().unwrap()).unwrap();
        std::fs::copy(&shot, &docs).unwrap();
    }
    page.resize(390, 844);
    let narrow = "document.querySelector('#fleet thead').offsetParent === null";
    page.wait_for("the phone layout", narrow, Duration::from_secs(3));
    std::thread::sleep(Duration::from_millis(1200)); // one more poll redraws the heatmap narrow
    page.screenshot(&artifacts().join("dashboard-phone.png"), true);
    load.abort();
}
