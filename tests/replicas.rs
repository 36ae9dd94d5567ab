//! Replicas sharing one Redis analyse each node once between them (README "Shared analysis"):
//! one replica holds a node's lease, fetches its validator stats and publishes the analysis; the
//! others adopt it. When the analyser stops another takes over; with Redis down each analyses
//! alone and counts the fallback. Real redis-server, simulated nodes, in-process gateways.

mod support;

use std::time::{Duration, Instant};

use sentinel_proxy::config::{Config, Sources};
use sentinel_proxy::gateway;
use sentinel_proxy::lease::NodeKey;
use sentinel_proxy::metrics::{Metrics, ReasonLabel};
use sentinel_proxy::simulator::{ApiVersion, SimConfig, SimNode};
use sentinel_proxy::state::AppState;
use support::{eventually, RedisServer, TestProxy};
use tokio_util::sync::CancellationToken;

const STATS: &str = "getValidatorsStats";

/// Three nodes of three API versions with small histories (8 validators, 6 epochs), so that
/// an integrity pass stays well inside the short test intervals on a busy machine.
async fn nodes() -> Vec<SimNode> {
    let mut nodes = Vec::new();
    for version in [ApiVersion::V4, ApiVersion::V5, ApiVersion::V6] {
        let cfg = SimConfig { committee_size: 8, history_epochs: 6, ..SimConfig::for_tests(version) };
        nodes.push(SimNode::start(cfg).await.expect("simulator starts"));
    }
    nodes
}

/// The analysis settings matching [`nodes`].
const ANALYSIS: [(&str, &str); 3] =
    [("SLOTS_PER_EPOCH", "32"), ("EXPECTED_VALIDATORS", "8"), ("INTEGRITY_CHECK_EPOCHS", "4")];

fn fetches(nodes: &[SimNode]) -> Vec<u64> {
    nodes.iter().map(|n| n.calls(STATS)).collect()
}

fn fallbacks(m: &Metrics, reason: &'static str) -> u64 {
    m.analysis_fallback.get_or_create(&ReasonLabel { reason }).get()
}

async fn connected(state: &AppState) {
    assert!(eventually(Duration::from_secs(10), || async { state.cache.redis_connected() }).await, "redis connects");
}

/// A replica whose monitor the test drives pass by pass.
async fn replica(nodes: &[SimNode], redis: &RedisServer) -> TestProxy {
    let refs: Vec<&SimNode> = nodes.iter().collect();
    let mut settings = ANALYSIS.to_vec();
    settings.push(("REDIS_URL", redis.url.as_str()));
    let p = TestProxy::start(&refs, &settings).await;
    connected(&p.state).await;
    p
}

/// `(score, status, checked_at)` of every backend, as `/health` shows them.
async fn verdicts(p: &TestProxy) -> Vec<(i64, String, i64)> {
    let h = p.health().await;
    let backends = h["backends"].as_array().unwrap().clone();
    backends
        .iter()
        .map(|b| {
            let i = &b["integrity"];
            (i["score"].as_i64().unwrap_or(-1), i["status"].to_string(), i["checked_at"].as_i64().unwrap_or(0))
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_and_three_replicas_fetch_validator_stats_once_per_interval_between_them() {
    let redis = RedisServer::start().await;
    let nodes = nodes().await;
    let mut replicas = vec![replica(&nodes, &redis).await, replica(&nodes, &redis).await];
    for round in 1..=3u64 {
        for r in &mut replicas {
            r.check_integrity().await;
        }
        assert_eq!(fetches(&nodes), vec![round; 3], "two replicas, pass {round}: one fetch per node");
    }
    replicas.push(replica(&nodes, &redis).await);
    for round in 4..=6u64 {
        for r in &mut replicas {
            r.check_integrity().await;
        }
        assert_eq!(fetches(&nodes), vec![round; 3], "three replicas, pass {round}: one fetch per node");
    }
    let first = verdicts(&replicas[0]).await;
    assert!(first.iter().all(|(score, _, at)| *score == 100 && *at > 0), "{first:?}");
    for r in &replicas[1..] {
        assert_eq!(verdicts(r).await, first, "adopted verdicts are the analyser's, with its time");
    }
    let m: Vec<&Metrics> = replicas.iter().map(|r| r.state.metrics.as_ref()).collect();
    assert_eq!(m[0].analyses_published.get(), 18, "the first replica took every node's lease");
    assert_eq!(m[0].analysis_leases_held.get(), 3);
    assert_eq!((m[1].analyses_adopted.get(), m[2].analyses_adopted.get()), (18, 9));
    assert!(m.iter().all(|m| fallbacks(m, "redis") == 0 && fallbacks(m, "unpublished") == 0));
    let text = m[1].render();
    assert!(text.contains("sentinel_proxy_analyses_adopted_total 18"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redis_down_every_replica_analyses_alone_and_counts_it() {
    let mut redis = RedisServer::start().await;
    let nodes = nodes().await;
    let mut a = replica(&nodes, &redis).await;
    let mut b = replica(&nodes, &redis).await;
    a.check_integrity().await;
    b.check_integrity().await;
    assert_eq!(fetches(&nodes), vec![1; 3]);
    redis.kill();
    a.check_integrity().await;
    b.check_integrity().await;
    assert_eq!(fetches(&nodes), vec![3; 3], "each replica fetched every node itself");
    for p in [&a, &b] {
        assert_eq!(fallbacks(&p.state.metrics, "redis"), 3, "one fallback per node");
        assert!(p.state.metrics.redis_errors.get() >= 3);
        assert_eq!(p.state.metrics.analysis_leases_held.get(), 0);
        let v = verdicts(p).await;
        assert!(v.iter().all(|(score, _, _)| *score == 100), "verdicts stay fresh: {v:?}");
        let text = p.state.metrics.render();
        assert!(text.contains("sentinel_proxy_analysis_fallback_total{reason=\"redis\"} 3"), "{text}");
    }
}

/// A replica running its own monitor loop (as in production), until `cancel`.
async fn running(nodes: &[SimNode], redis: Option<&str>, interval: Duration, cancel: &CancellationToken) -> AppState {
    let urls: Vec<&str> = nodes.iter().map(|n| n.url.as_str()).collect();
    let mut src = Sources::for_tests(&urls);
    src.set("INTEGRITY_CHECK_INTERVAL_MS", interval.as_millis().to_string());
    src.set("HEALTH_CHECK_INTERVAL_MS", "100");
    for (k, v) in ANALYSIS {
        src.set(k, v);
    }
    if let Some(url) = redis {
        src.set("REDIS_URL", url);
    }
    let (state, monitor) = gateway::build(Config::from_sources(&src, true).expect("valid config"));
    if redis.is_some() {
        connected(&state).await;
    }
    tokio::spawn(monitor.run(cancel.child_token()));
    state
}

/// Whether every backend of `state` has a verdict.
fn analysed(state: &AppState) -> bool {
    state.pool.snapshot().backends.iter().all(|v| v.integrity.checked_at.is_some())
}

/// Validator-stats fetches per node per interval with `n` replicas running their own loops,
/// measured over eight intervals once every replica has its first verdicts.
async fn measure(n: usize, redis: Option<&str>) -> f64 {
    let interval = Duration::from_millis(500);
    let nodes = nodes().await;
    let cancel = CancellationToken::new();
    let mut states = Vec::new();
    for _ in 0..n {
        states.push(running(&nodes, redis, interval, &cancel).await);
    }
    let ready = eventually(Duration::from_secs(20), || async { states.iter().all(analysed) }).await;
    assert!(ready, "every replica analysed every node");
    let (before, start) = (fetches(&nodes), Instant::now());
    // A measurement window, not a synchronisation: the loops run on their own clocks.
    tokio::time::sleep(interval * 8).await;
    let (after, elapsed) = (fetches(&nodes), start.elapsed());
    cancel.cancel();
    let intervals = elapsed.as_secs_f64() / interval.as_secs_f64();
    let per_node: Vec<f64> = before.iter().zip(&after).map(|(b, a)| (a - b) as f64 / intervals).collect();
    let worst = per_node.iter().copied().fold(0.0, f64::max);
    let counts: Vec<u64> = before.iter().zip(&after).map(|(b, a)| a - b).collect();
    eprintln!(
        "{n} replica(s), shared redis: {}: {counts:?} fetches per node in {intervals:.1} intervals = {per_node:.2?} per interval",
        redis.is_some()
    );
    worst
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fetches_per_node_per_interval_stay_one_with_1_2_and_3_replicas() {
    let redis = RedisServer::start().await;
    for n in 1..=3 {
        let rate = measure(n, Some(&redis.url)).await;
        assert!(rate <= 1.25, "{n} replicas: {rate:.2} fetches per node per interval");
    }
    // The same three replicas without a shared Redis: every one fetches every node.
    let alone = measure(3, None).await;
    assert!(alone >= 2.0, "three replicas alone: {alone:.2} fetches per node per interval");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_takes_over_when_the_analyser_stops() {
    let redis = RedisServer::start().await;
    let nodes = nodes().await;
    let interval = Duration::from_millis(500);
    let first = CancellationToken::new();
    let a = running(&nodes, Some(&redis.url), interval, &first).await;
    assert!(eventually(Duration::from_secs(10), || async { a.metrics.analysis_leases_held.get() == 3 }).await);
    let second = CancellationToken::new();
    let b = running(&nodes, Some(&redis.url), interval, &second).await;
    let adopting = eventually(Duration::from_secs(10), || async { b.metrics.analyses_adopted.get() >= 6 }).await;
    assert!(
        adopting && b.metrics.analysis_leases_held.get() == 0,
        "the second replica adopts while the first analyses"
    );
    first.cancel();
    let stopped = Instant::now();
    let took_over = eventually(Duration::from_secs(10), || async { b.metrics.analysis_leases_held.get() == 3 }).await;
    let takeover = stopped.elapsed();
    assert!(took_over, "the second replica takes every lease");
    let published = b.metrics.analyses_published.get();
    assert!(eventually(Duration::from_secs(5), || async { b.metrics.analyses_published.get() > published }).await);
    eprintln!("takeover after {} ms (interval {} ms)", takeover.as_millis(), interval.as_millis());
    // The lease lives two intervals after the last renewal; the next pass after that takes it.
    assert!(takeover <= interval * 3 + Duration::from_millis(500), "took {takeover:?}");
    assert!(takeover >= interval, "not before the lease expired: {takeover:?}");
    second.cancel();
}

/// A private CA and a certificate for 127.0.0.1 signed by it (openssl), in `dir`:
/// `(ca.pem, server.pem, server.key)`.
fn certificates(dir: &std::path::Path) -> (String, String, String) {
    let path = |name: &str| dir.join(name).to_string_lossy().into_owned();
    std::fs::write(dir.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    let steps: [&[&str]; 3] = [
        &["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=sentinel test CA"],
        &["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=127.0.0.1"],
        &["x509", "-req", "-days", "1", "-CAcreateserial"],
    ];
    let files: [Vec<String>; 3] = [
        vec!["-keyout".into(), path("ca.key"), "-out".into(), path("ca.pem")],
        vec!["-keyout".into(), path("server.key"), "-out".into(), path("server.csr")],
        vec!["-in".into(), path("server.csr"), "-CA".into(), path("ca.pem"), "-CAkey".into(), path("ca.key")]
            .into_iter()
            .chain(["-out".into(), path("server.pem"), "-extfile".into(), path("san.ext")])
            .collect(),
    ];
    for (args, files) in steps.iter().zip(&files) {
        let out = std::process::Command::new("openssl").args(*args).args(files).output().expect("openssl is installed");
        assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    (path("ca.pem"), path("server.pem"), path("server.key"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rediss_with_a_password_and_a_private_ca_is_shared_and_never_shown() {
    let dir = support::TempDir::new("redis-tls");
    let (ca, cert, key) = certificates(&dir.0);
    let tls = ["--port", "0", "--tls-port", "{port}", "--tls-cert-file", &cert, "--tls-key-file", &key];
    let mut args = tls.to_vec();
    args.extend(["--tls-ca-cert-file", &ca, "--tls-auth-clients", "no", "--requirepass", "s3cret"]);
    let redis = RedisServer::start_with(&args).await;
    let url = format!("rediss://:s3cret@127.0.0.1:{}/0", redis.port);
    let nodes = nodes().await;
    let refs: Vec<&SimNode> = nodes.iter().collect();
    let start = |settings: Vec<(&'static str, String)>| {
        let mut all: Vec<(&str, String)> = ANALYSIS.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        all.extend(settings);
        let refs = refs.clone();
        async move {
            let all: Vec<(&str, &str)> = all.iter().map(|(k, v)| (*k, v.as_str())).collect();
            TestProxy::start(&refs, &all).await
        }
    };
    let trusted = || vec![("REDIS_URL", url.clone()), ("REDIS_CA_FILE", ca.clone())];
    let (mut a, mut b) = (start(trusted()).await, start(trusted()).await);
    connected(&a.state).await;
    connected(&b.state).await;
    a.check_integrity().await;
    b.check_integrity().await;
    assert_eq!(fetches(&nodes), vec![1; 3], "the analysis is shared over TLS");
    assert_eq!(b.state.metrics.analyses_adopted.get(), 3);
    for p in [&a, &b] {
        let seen = [
            support::get(&format!("{}/health", p.url)).await.body,
            support::get(&format!("{}/metrics", p.url)).await.body,
        ];
        assert!(seen.iter().all(|body| !String::from_utf8_lossy(body).contains("s3cret")));
        let config = format!("{:?}", p.state.config().config);
        assert!(!config.contains("s3cret") && !p.state.config().describe().contains("s3cret"), "{config}");
    }
    // Without the private CA the server's certificate is refused; with a wrong password AUTH
    // is. Either way the replica never connects, and analyses alone.
    let wrong = url.replace("s3cret", "wrong");
    let mut untrusting = start(vec![("REDIS_URL", url.clone())]).await;
    let mut stranger = start(vec![("REDIS_URL", wrong), ("REDIS_CA_FILE", ca.clone())]).await;
    untrusting.check_integrity().await;
    stranger.check_integrity().await;
    for p in [&untrusting, &stranger] {
        assert!(!p.state.cache.redis_connected());
        assert_eq!(fallbacks(&p.state.metrics, "redis"), 3);
    }
    assert_eq!(fetches(&nodes), vec![3; 3]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_lost_its_lease_while_analysing_publishes_nothing() {
    let redis = RedisServer::start().await;
    let nodes = nodes().await;
    let mut a = replica(&nodes, &redis).await;
    let config = a.state.config().config.clone();
    let keys: Vec<NodeKey> = nodes
        .iter()
        .map(|n| NodeKey::new(&url::Url::parse(&n.url).unwrap(), &config.integrity, &config.watch_validators))
        .collect();
    for n in &nodes {
        n.update_faults(|f| f.latency_ms = 1500);
    }
    let pass = tokio::spawn(async move {
        a.check_integrity().await;
        a
    });
    // Every fetch is under way, so the leases are the replica's: another takes them now.
    assert!(eventually(Duration::from_secs(5), || async { fetches(&nodes) == vec![1; 3] }).await);
    let mut conn = redis::Client::open(redis.url.as_str()).unwrap().get_multiplexed_async_connection().await.unwrap();
    for k in &keys {
        let holder: Option<String> = redis::cmd("GET").arg(k.lease()).query_async(&mut conn).await.unwrap();
        assert!(holder.is_some_and(|h| !h.is_empty()), "the slow replica holds {}", k.lease());
        let () = redis::cmd("SET").arg(k.lease()).arg("intruder").query_async(&mut conn).await.unwrap();
    }
    let a = pass.await.unwrap();
    assert_eq!(a.state.metrics.analyses_published.get(), 0, "fenced: the lease value is no longer its token");
    assert_eq!(a.state.metrics.analysis_leases_held.get(), 0);
    for k in &keys {
        let result: Option<Vec<u8>> = redis::cmd("GET").arg(k.result()).query_async(&mut conn).await.unwrap();
        assert!(result.is_none(), "nothing published under {}", k.result());
    }
    let own = verdicts(&a).await;
    assert!(own.iter().all(|(score, _, _)| *score == 100), "it keeps its own analysis: {own:?}");
}
