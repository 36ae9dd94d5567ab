//! Configuration reload without a restart (issue 13): backends added and removed under load
//! without a failed request, an invalid configuration kept out, unchanged backends keeping
//! their state, start-only settings reported as needing a restart, and the triggers (a
//! ConfigMap-style file swap, SIGHUP). Real sockets, simulated nodes, the real monitor loop.

mod support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sentinel_proxy::config::{Config, Sources};
use sentinel_proxy::reload::{Outcome, Reloader, Source};
use sentinel_proxy::simulator::{ApiVersion, Faults, SimNode};
use sentinel_proxy::state::AppState;
use sentinel_proxy::{gateway, server};
use serde_json::{json, Value};
use support::{eventually, get, node, post, rpc, Captured, TempDir};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// A gateway whose monitor loop runs and whose configuration comes from `sources` (what a
/// reload reads).
struct Gateway {
    url: String,
    state: AppState,
    reloader: Arc<Reloader>,
    sources: Arc<Mutex<Sources>>,
    cancel: CancellationToken,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// `name=url` entries for `SENTINEL_BACKENDS`.
fn backends(nodes: &[(&str, &SimNode)]) -> String {
    nodes.iter().map(|(name, n)| format!("{name}={}", n.url)).collect::<Vec<_>>().join(",")
}

/// The test settings (`Sources::for_tests`, monitor intervals of an hour: the loop runs its
/// first passes at once and then only when a reload asks) with these backends and `extra`.
fn sources(nodes: &[(&str, &SimNode)], extra: &[(&str, &str)]) -> Sources {
    let mut src = Sources::for_tests(&[]);
    src.set("SENTINEL_BACKENDS", backends(nodes));
    for (k, v) in extra {
        src.set(k, *v);
    }
    src
}

impl Gateway {
    async fn start(src: Sources, file: Option<std::path::PathBuf>, load: sentinel_proxy::reload::Loader) -> Gateway {
        let config = Config::from_sources(&src, true).expect("valid test config");
        let (state, monitor) = gateway::build(config);
        let source = Source { load, demo: true, file, log_level: None };
        let (reloader, monitor) = Reloader::attach(state.clone(), monitor, source);
        let cancel = CancellationToken::new();
        tokio::spawn(monitor.run(cancel.clone()));
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(server::serve(listener, state.clone(), cancel.clone()));
        let sources = Arc::new(Mutex::new(src));
        Gateway { url, state, reloader: Arc::new(reloader), sources, cancel }
    }

    /// A gateway reloading from the in-memory `src` (tests edit it with [`Gateway::set`]).
    async fn from(src: Sources) -> Gateway {
        let shared = Arc::new(Mutex::new(src.clone()));
        let from = Arc::clone(&shared);
        let mut g = Gateway::start(src, None, Box::new(move || Ok(from.lock().unwrap().clone()))).await;
        g.sources = shared;
        g.settled().await;
        g
    }

    /// Changes what the next reload reads.
    fn set(&self, pairs: &[(&str, &str)]) {
        let mut src = self.sources.lock().unwrap();
        for (k, v) in pairs {
            src.set(k, *v);
        }
    }

    async fn health(&self) -> Value {
        get(&format!("{}/health", self.url)).await.json()
    }

    async fn metrics(&self) -> String {
        String::from_utf8(get(&format!("{}/metrics", self.url)).await.body.to_vec()).unwrap()
    }

    /// Waits until every backend is routable and analysed (integrity `perfect`).
    async fn settled(&self) {
        let ok = eventually(Duration::from_secs(10), || async {
            let h = self.health().await;
            h["backends"]
                .as_array()
                .unwrap()
                .iter()
                .all(|b| b["routable"] == true && b["integrity"]["status"] == "perfect")
        })
        .await;
        assert!(ok, "fleet never settled: {}", self.health().await);
    }
}

fn applied(outcome: Outcome) -> sentinel_proxy::reload::Applied {
    match outcome {
        Outcome::Applied(a) => a,
        other => panic!("reload not applied: {other:?}"),
    }
}

/// One uncacheable read; the answering backend, or `None` when it failed.
async fn read(url: &str) -> Option<String> {
    let r = rpc(url, "aztec_getCurrentMinFees", json!([])).await;
    (r.status == 200 && r.json().get("result").is_some()).then(|| r.header("x-sentinel-backend")).flatten()
}

/// Clients reading in a loop until stopped: (when sent, who answered; `None` = failed).
type Log = Arc<Mutex<Vec<(Instant, Option<String>)>>>;

fn load(url: &str, clients: usize, stop: &Arc<AtomicBool>) -> (Log, Vec<tokio::task::JoinHandle<()>>) {
    let log: Log = Arc::default();
    let tasks = (0..clients)
        .map(|_| {
            let (url, stop, log) = (url.to_owned(), Arc::clone(stop), Arc::clone(&log));
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let who = read(&url).await;
                    log.lock().unwrap().push((sent, who));
                }
            })
        })
        .collect();
    (log, tasks)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backends_added_and_removed_under_load_without_a_failed_request() {
    let (a, b, c) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let g = Gateway::from(sources(&[("a", &a), ("b", &b)], &[("CACHE_MAX_BYTES", "0")])).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (log, clients) = load(&g.url, 4, &stop);

    g.set(&[("SENTINEL_BACKENDS", &backends(&[("a", &a), ("b", &b), ("c", &c)]))]);
    let added = applied(g.reloader.reload().await);
    assert_eq!(added.membership.added, ["c"]);
    assert_eq!(added.changed, ["SENTINEL_BACKENDS"]);
    let c_serves = eventually(Duration::from_secs(10), || async {
        log.lock().unwrap().iter().any(|(_, who)| who.as_deref() == Some("c"))
    })
    .await;
    assert!(c_serves, "the added node never served: {}", g.health().await);

    assert!(g.metrics().await.contains("sentinel_proxy_backend_up{backend=\"a\"} 1"));
    g.set(&[("SENTINEL_BACKENDS", &backends(&[("b", &b), ("c", &c)]))]);
    let removed = applied(g.reloader.reload().await);
    let removed_at = Instant::now();
    assert_eq!(removed.membership.removed, ["a"]);
    let more = eventually(Duration::from_secs(10), || async {
        log.lock().unwrap().iter().filter(|(sent, _)| *sent > removed_at).count() >= 50
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for t in clients {
        t.await.unwrap();
    }
    assert!(more, "the load went on after the removal");

    let log = std::mem::take(&mut *log.lock().unwrap());
    let failed = log.iter().filter(|(_, who)| who.is_none()).count();
    assert_eq!(failed, 0, "{failed} of {} requests failed", log.len());
    let late_a = log.iter().filter(|(sent, who)| *sent > removed_at && who.as_deref() == Some("a")).count();
    assert_eq!(late_a, 0, "requests sent after the removal reached the removed node");
    let h = g.health().await;
    let names: Vec<&str> = h["backends"].as_array().unwrap().iter().map(|b| b["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["b", "c"]);
    assert_eq!(h["config"]["generation"], 3);
    let m = g.metrics().await;
    assert!(m.contains("sentinel_proxy_config_reloads_total{result=\"ok\"} 2"), "{m}");
    assert!(m.contains("sentinel_proxy_backend_up{backend=\"c\"} 1"), "{m}");
    assert!(!m.contains("sentinel_proxy_backend_up{backend=\"a\"}"), "a removed node's gauges are gone: {m}");
}

#[tokio::test]
async fn an_invalid_configuration_is_kept_out_and_every_problem_logged() {
    let a = node(ApiVersion::V5).await;
    let g = Gateway::from(sources(&[("a", &a)], &[("MAX_BATCH", "5")])).await;
    let logs = Captured::default();
    let filter = tracing_subscriber::EnvFilter::new("info");
    let subscriber = gateway::log_subscriber(sentinel_proxy::config::LogFormat::Pretty, filter, false, logs.clone());
    let _guard = tracing::subscriber::set_default(subscriber);

    let bad = [
        ("SENTINEL_BACKENDS", "a=http://u:hunter2@127.0.0.1:1,ftp://nope"),
        ("MAX_BATCH", "1"),
        ("MAX_BLOCK_LAG", "many"),
    ];
    g.set(&bad);
    let Outcome::Invalid(problems) = g.reloader.reload().await else { panic!("an invalid configuration was applied") };
    let expected = Config::from_sources(&g.sources.lock().unwrap(), true).unwrap_err().0;
    assert_eq!(problems, expected, "the problems --check-config lists");
    assert_eq!(problems.len(), 2, "{problems:?}");

    let text = logs.text();
    for p in &problems {
        assert!(text.contains(p.as_str()), "problem {p:?} not logged: {text}");
    }
    assert!(!text.contains("hunter2"), "a secret was logged: {text}");
    // The previous configuration still serves: its backend and its batch limit.
    assert_eq!(read(&g.url).await.as_deref(), Some("a"));
    let batch: Vec<Value> =
        (0..3).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "aztec_getBlockNumber"})).collect();
    let r = post(&g.url, Value::Array(batch)).await;
    assert_eq!(r.status, 200, "MAX_BATCH 1 was not applied");
    let h = g.health().await;
    assert_eq!(h["config"]["generation"], 1);
    assert!(h["config"]["loaded_at"].as_u64().unwrap() > 0);
    let m = g.metrics().await;
    assert!(m.contains("sentinel_proxy_config_reloads_total{result=\"invalid\"} 1"), "{m}");
    assert!(m.contains("sentinel_proxy_config_reloads_total{result=\"ok\"} 0"), "{m}");
}

#[tokio::test]
async fn an_unchanged_backend_keeps_its_state_when_renamed_and_moved() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V5).await);
    let extra = [("CIRCUIT_FAILURES", "1"), ("CACHE_MAX_BYTES", "0")];
    let g = Gateway::from(sources(&[("a", &a), ("b", &b)], &extra)).await;
    // Traffic on both (latency statistics).
    for _ in 0..20 {
        assert!(read(&g.url).await.is_some());
    }
    // `b` answers -32601 for a call: the gateway learns that it lacks it.
    b.set_faults(Faults { rpc_error: Some(-32601), ..Faults::default() });
    // `a` is made slow meanwhile, so the node choice (which prefers the faster node) sends reads
    // to `b` soon even on a loaded machine; they go four at a time, and the choice also weighs
    // requests in flight. Each read `b` refuses is served by `a`.
    a.set_faults(Faults { latency_ms: 200, ..Faults::default() });
    let learned = eventually(Duration::from_secs(30), || async {
        let reads = futures::future::join_all((0..4).map(|_| read(&g.url))).await;
        assert!(reads.iter().all(Option::is_some), "a -32601 is served by the other node");
        g.health().await["backends"][1]["lacks_methods"] == json!(["getCurrentMinFees"])
    })
    .await;
    assert!(learned);
    a.set_faults(Faults::default());
    // Then `b` fails once: its circuit opens. (`a` fails too, so that a read reaches `b` whatever
    // the node choice prefers; `a` leaves below.)
    b.set_faults(Faults { http_status: Some(500), ..Faults::default() });
    a.set_faults(Faults { http_status: Some(500), ..Faults::default() });
    let opened = eventually(Duration::from_secs(10), || async {
        // (Not getCurrentMinFees: `b` lacks it now, so it gets none.)
        rpc(&g.url, "aztec_getBlockNumber", json!([])).await;
        g.health().await["backends"][1]["circuit"] == "open"
    })
    .await;
    assert!(opened);
    b.set_faults(Faults::default());
    a.set_faults(Faults::default());
    let before = g.health().await["backends"][1].clone();
    assert!(before["requests"].as_u64().unwrap() > 0);

    // `a` leaves, `b` is renamed and moves to the front, a threshold changes.
    g.set(&[("SENTINEL_BACKENDS", &backends(&[("bee", &b)])), ("MAX_BLOCK_LAG", "7")]);
    let done = applied(g.reloader.reload().await);
    assert_eq!(done.membership.renamed, [("b".to_owned(), "bee".to_owned())]);
    assert_eq!(done.membership.removed, ["a"]);
    let after = g.health().await["backends"][0].clone();
    assert_eq!(after["name"], "bee");
    assert_eq!(after["circuit"], "open", "circuit kept");
    assert_eq!(after["requests"], before["requests"], "counters kept");
    assert_eq!(after["errors"], before["errors"]);
    assert_eq!(after["latency_ms"]["ewma"], before["latency_ms"]["ewma"], "latency statistics kept");
    assert_eq!(after["integrity"]["status"], "perfect", "integrity verdict kept");
    assert_eq!(after["integrity"]["checked_at"], before["integrity"]["checked_at"], "not analysed again");
    assert_eq!(after["api_major"], before["api_major"], "learned version kept");
    assert_eq!(after["lacks_methods"], json!(["getCurrentMinFees"]), "learned capabilities kept");
    assert_eq!(g.state.config().max_block_lag, 7);
}

#[tokio::test]
async fn a_new_listen_address_needs_a_restart_and_the_rest_applies() {
    let a = node(ApiVersion::V5).await;
    let g = Gateway::from(sources(&[("a", &a)], &[])).await;
    let limits = [("MAX_BATCH", "1"), ("MAX_CONCURRENT_REQUESTS", "3")];
    g.set(&[("PROXY_LISTEN", "127.0.0.1:1"), ("WORKER_THREADS", "7"), limits[0], limits[1]]);
    let done = applied(g.reloader.reload().await);
    assert_eq!(done.needs_restart, ["PROXY_LISTEN", "WORKER_THREADS"]);
    assert_eq!(done.changed, ["MAX_CONCURRENT_REQUESTS", "MAX_BATCH"]);
    let shrunk = eventually(Duration::from_secs(5), || async { g.state.in_flight.available_permits() == 3 }).await;
    assert!(shrunk, "MAX_CONCURRENT_REQUESTS 3: {} permits", g.state.in_flight.available_permits());
    assert_eq!(done.generation, 2);
    let live = g.state.config();
    assert_eq!(live.listen.port(), 0, "the running address is what the settings say");
    assert_eq!(live.max_batch, 1);
    drop(live);
    let two: Vec<Value> =
        (0..2).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": "aztec_getBlockNumber"})).collect();
    assert_eq!(post(&g.url, Value::Array(two)).await.status, 400, "MAX_BATCH 1 is in effect");
    // Asked again, the restart is still needed; nothing else changes.
    let again = applied(g.reloader.reload().await);
    assert_eq!((again.needs_restart.len(), again.changed.len(), again.generation), (2, 0, 2));
}

/// A Kubernetes ConfigMap mount: `config.toml -> ..data/config.toml`, `..data -> ..v1`; an
/// update writes `..v2` and swaps the `..data` link.
fn configmap(dir: &std::path::Path, version: u32, text: &str) {
    let v = dir.join(format!("..v{version}"));
    std::fs::create_dir_all(&v).unwrap();
    std::fs::write(v.join("config.toml"), text).unwrap();
    let tmp = dir.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..v{version}"), &tmp).unwrap();
    std::fs::rename(&tmp, dir.join("..data")).unwrap();
    let link = dir.join("config.toml");
    if !link.exists() {
        std::os::unix::fs::symlink("..data/config.toml", link).unwrap();
    }
}

#[tokio::test]
async fn a_configmap_update_and_sighup_reload() {
    let a = node(ApiVersion::V5).await;
    let dir = TempDir::new("reload");
    let toml = |batch: u32| format!("sentinel_backends = [\"a={}\"]\nmax_batch = {batch}\n", a.url);
    configmap(&dir.0, 1, &toml(50));
    let file = dir.0.join("config.toml");
    let mut src = Sources::for_tests(&[]);
    src.add_toml(&std::fs::read_to_string(&file).unwrap());
    let path = file.clone();
    let load = Box::new(move || {
        let mut s = Sources::for_tests(&[]);
        s.add_toml(&std::fs::read_to_string(&path).map_err(|e| e.to_string())?);
        Ok(s)
    });
    let g = Gateway::start(src, Some(file), load).await;
    g.settled().await;
    tokio::spawn(Arc::clone(&g.reloader).run(Duration::from_millis(50), g.cancel.clone()));

    configmap(&dir.0, 2, &toml(1));
    let reloaded =
        eventually(Duration::from_secs(10), || async { g.health().await["config"]["generation"] == 2 }).await;
    assert!(reloaded, "the file change was not applied: {}", g.metrics().await);
    assert_eq!(g.state.config().max_batch, 1);

    // SIGHUP (the handler is installed: the watcher runs): a reload with nothing to change.
    let kill = std::process::Command::new("kill").args(["-HUP", &std::process::id().to_string()]).status();
    assert!(kill.unwrap().success());
    let counted = eventually(Duration::from_secs(10), || async {
        g.metrics().await.contains("sentinel_proxy_config_reloads_total{result=\"ok\"} 2")
    })
    .await;
    assert!(counted, "SIGHUP did not reload: {}", g.metrics().await);
    assert_eq!(g.health().await["config"]["generation"], 2, "nothing changed, no new generation");
}
