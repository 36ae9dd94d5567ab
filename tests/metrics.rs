//! `/metrics` (docs/observability.md#metrics): after real traffic through the gateway, every
//! family is there with the documented labels; backends are named, never addressed; RPC method
//! labels stay inside the method table plus `other`, whatever names clients send; per-backend
//! gauges follow the fleet.

mod support;

use std::collections::BTreeMap;

use sentinel_proxy::methods::METHODS;
use sentinel_proxy::simulator::{ApiVersion, Faults};
use serde_json::{json, Value};
use support::{node, post, rpc, TestProxy};

/// One sample of the exposition: metric name, labels, value.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// A parsed scrape.
struct Scrape {
    text: String,
    samples: Vec<Sample>,
}

impl Scrape {
    /// `GET /metrics` (with an optional bearer token), checked and parsed.
    async fn take(proxy: &TestProxy, token: Option<&str>) -> Scrape {
        let (status, headers, body) = get_with(&format!("{}/metrics", proxy.url), token).await;
        assert_eq!(status, 200, "{body}");
        let ctype = headers.get("content-type").map(|v| v.to_str().unwrap().to_owned()).unwrap_or_default();
        assert!(ctype.starts_with("application/openmetrics-text"), "{ctype}");
        assert!(body.ends_with("# EOF\n"), "OpenMetrics text ends with # EOF");
        let samples = body.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).map(parse_sample).collect();
        Scrape { text: body, samples }
    }

    /// Samples named `name` whose labels include every pair of `want`.
    fn find<'a>(&'a self, name: &'a str, want: &'a [(&str, &str)]) -> impl Iterator<Item = &'a Sample> {
        self.samples.iter().filter(move |s| {
            s.name == name && want.iter().all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
        })
    }

    /// Sum of the matching samples.
    fn sum(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        self.find(name, want).map(|s| s.value).sum()
    }

    /// The one matching sample's value.
    fn one(&self, name: &str, want: &[(&str, &str)]) -> f64 {
        let found: Vec<&Sample> = self.find(name, want).collect();
        assert_eq!(found.len(), 1, "{name} {want:?}: {found:?}");
        found[0].value
    }

    /// Every value the label `key` takes across the scrape.
    fn label_values(&self, key: &str) -> Vec<&str> {
        let mut v: Vec<&str> = self.samples.iter().filter_map(|s| s.labels.get(key).map(String::as_str)).collect();
        v.sort_unstable();
        v.dedup();
        v
    }
}

/// Parses `name{k="v",...} value` (label values may hold escaped quotes).
fn parse_sample(line: &str) -> Sample {
    let (series, value) = line.rsplit_once(' ').expect("sample has a value");
    let value = value.parse().unwrap_or_else(|_| panic!("bad value: {line}"));
    let Some((name, rest)) = series.split_once('{') else {
        return Sample { name: series.to_owned(), labels: BTreeMap::new(), value };
    };
    let mut labels = BTreeMap::new();
    let mut chars = rest.strip_suffix('}').expect("labels close").chars();
    loop {
        let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
        if key.is_empty() {
            break;
        }
        assert_eq!(chars.next(), Some('"'), "{line}");
        let mut val = String::new();
        while let Some(c) = chars.next() {
            match c {
                '\\' => val.push(chars.next().unwrap_or('\\')),
                '"' => break,
                c => val.push(c),
            }
        }
        labels.insert(key.trim_start_matches(',').to_owned(), val);
        if chars.next().is_none() {
            break;
        }
    }
    Sample { name: name.to_owned(), labels, value }
}

/// GET with an optional bearer token: (status, headers, body).
async fn get_with(url: &str, token: Option<&str>) -> (u16, http::HeaderMap, String) {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let auth: Vec<(&str, &str)> = bearer.iter().map(|b| ("authorization", b.as_str())).collect();
    let r = support::get_with(url, &auth).await;
    (r.status, r.headers, String::from_utf8(r.body.to_vec()).unwrap())
}

/// Every family docs/observability.md#metrics lists, with its OpenMetrics type.
const FAMILIES: [(&str, &str); 20] = [
    ("requests", "counter"),
    ("upstream_latency_seconds", "histogram"),
    ("retries", "counter"),
    ("hedges", "counter"),
    ("coalesced", "counter"),
    ("cache_hits", "counter"),
    ("cache_misses", "counter"),
    ("rate_limited", "counter"),
    ("rejected", "counter"),
    ("upstream_errors", "counter"),
    ("backend_up", "gauge"),
    ("backend_routable", "gauge"),
    ("backend_tip", "gauge"),
    ("backend_lag_blocks", "gauge"),
    ("backend_integrity_score", "gauge"),
    ("backend_integrity_status", "gauge"),
    ("backend_circuit_state", "gauge"),
    ("backend_in_flight", "gauge"),
    ("best_tip", "gauge"),
    ("build", "info"),
];

#[tokio::test]
async fn scrape_after_traffic_has_every_family_with_bounded_labels() {
    let (a, b) = (node(ApiVersion::V5).await, node(ApiVersion::V4).await);
    let proxy = TestProxy::start(&[&a, &b], &[]).await;
    for _ in 0..20 {
        let r = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;
        assert_eq!(r.status, 200);
    }
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "node_getChainId", "params": []},
        {"jsonrpc": "2.0", "id": 2, "method": "aztec_isReady", "params": []}
    ]);
    assert_eq!(post(&format!("{}/pruned", proxy.url), batch).await.status, 200);
    rpc(&proxy.url, "aztec_inventedByTheClient", json!([])).await;

    let m = Scrape::take(&proxy, None).await;
    for (name, kind) in FAMILIES {
        let line = format!("# TYPE sentinel_proxy_{name} {kind}\n");
        assert!(m.text.contains(&line), "missing {line:?}");
    }
    let ok = [("route", "root"), ("method", "getBlockNumber"), ("status", "ok")];
    assert_eq!(m.sum("sentinel_proxy_requests_total", &ok), 20.0);
    assert_eq!(m.sum("sentinel_proxy_requests_total", &[("route", "pruned")]), 2.0);
    for s in m.find("sentinel_proxy_requests_total", &[]) {
        for key in ["route", "method", "status", "backend"] {
            assert!(s.labels.contains_key(key), "{s:?} lacks {key}");
        }
    }
    let latency = [("method", "getBlockNumber")];
    assert!(m.sum("sentinel_proxy_upstream_latency_seconds_count", &latency) >= 1.0);
    assert!(m.find("sentinel_proxy_upstream_latency_seconds_bucket", &latency).any(|s| s
        .labels
        .get("le")
        .map(String::as_str)
        == Some("+Inf")));

    // Backends are display names, never addresses.
    let backends = m.label_values("backend");
    assert!(backends.iter().all(|b| ["node-0", "node-1", "none"].contains(b)), "{backends:?}");
    for n in [&a, &b] {
        assert!(!m.text.contains(&n.addr.to_string()), "URL of {} leaked", n.url);
    }
    for (name, want) in [
        ("backend_up", 1.0),
        ("backend_routable", 1.0),
        ("backend_tip", 20_000.0),
        ("backend_lag_blocks", 0.0),
        ("backend_circuit_state", 0.0),
        ("backend_in_flight", 0.0),
    ] {
        for backend in ["node-0", "node-1"] {
            let got = m.one(&format!("sentinel_proxy_{name}"), &[("backend", backend)]);
            assert_eq!(got, want, "{name} {backend}");
        }
    }
    let score = m.one("sentinel_proxy_backend_integrity_score", &[("backend", "node-0")]);
    assert!((-1.0..=100.0).contains(&score), "{score}");
    let states = m.sum("sentinel_proxy_backend_integrity_status", &[("backend", "node-1")]);
    assert_eq!(states, 1.0, "exactly one integrity status is set");
    assert_eq!(m.one("sentinel_proxy_best_tip", &[]), 20_000.0);
    for tier in ["memory", "redis"] {
        m.one("sentinel_proxy_cache_hits_total", &[("tier", tier)]);
        m.one("sentinel_proxy_cache_misses_total", &[("tier", tier)]);
    }
}

#[tokio::test]
async fn client_chosen_method_names_never_become_labels() {
    let n = node(ApiVersion::V6).await;
    let proxy = TestProxy::start(&[&n], &[]).await;
    let invented: Vec<String> = (0..40)
        .map(|i| match i % 4 {
            0 => format!("aztec_getBlock{i}"),
            1 => format!("node_x{i}\"}} 1\nsentinel_proxy_fake 1"),
            2 => format!("eth_blockNumber{i}"),
            _ => format!("custom.method/{i}"),
        })
        .collect();
    let batch: Vec<Value> = invented
        .iter()
        .enumerate()
        .map(|(i, m)| json!({"jsonrpc": "2.0", "id": i, "method": m, "params": []}))
        .collect();
    post(&proxy.url, Value::Array(batch)).await;
    rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;

    let m = Scrape::take(&proxy, None).await;
    let known: Vec<&str> = METHODS.iter().map(|m| m.name).chain(["other"]).collect();
    for method in m.label_values("method") {
        assert!(known.contains(&method), "method label {method:?} is not bounded");
    }
    for name in &invented {
        assert!(!m.text.contains(name.as_str()), "{name:?} became part of the exposition");
    }
    assert!(!m.text.contains("sentinel_proxy_fake"));
    let other: Vec<&Sample> = m.find("sentinel_proxy_requests_total", &[("method", "other")]).collect();
    assert_eq!(other.len(), 1, "one series for every invented name: {other:?}");
    assert_eq!(other[0].value, 40.0);
    assert_eq!(other[0].labels["backend"], "none", "never reached a node");
    assert_eq!(other[0].labels["status"], "method_not_found");
    assert!(m.one("sentinel_proxy_rejected_total", &[("reason", "method_not_found")]) >= 40.0);
}

#[tokio::test]
async fn backend_gauges_follow_lag_and_failures() {
    let nodes = [node(ApiVersion::V5).await, node(ApiVersion::V5).await, node(ApiVersion::V6).await];
    let mut proxy = TestProxy::start(&[&nodes[0], &nodes[1], &nodes[2]], &[]).await;
    nodes[2].set_faults(Faults { lag_blocks: 10, ..Faults::default() });
    proxy.probe().await;
    let m = Scrape::take(&proxy, None).await;
    let lagging = [("backend", "node-2")];
    assert_eq!(m.one("sentinel_proxy_backend_routable", &lagging), 0.0);
    assert_eq!(m.one("sentinel_proxy_backend_up", &lagging), 1.0);
    assert_eq!(m.one("sentinel_proxy_backend_lag_blocks", &lagging), 10.0);
    assert_eq!(m.one("sentinel_proxy_backend_tip", &lagging), 19_990.0);
    assert_eq!(m.one("sentinel_proxy_backend_routable", &[("backend", "node-0")]), 1.0);

    // Both remaining nodes answer 500: every attempt fails, the gateway retries on the other
    // one, and the failures are counted per backend.
    for n in &nodes[..2] {
        n.set_faults(Faults { http_status: Some(500), ..Faults::default() });
    }
    for _ in 0..2 {
        let r = rpc(&proxy.url, "aztec_getBlockNumber", json!([])).await;
        assert!(r.status >= 500, "{}", r.status);
    }
    let m = Scrape::take(&proxy, None).await;
    assert!(m.one("sentinel_proxy_retries_total", &[]) >= 1.0);
    let errors = m.sum("sentinel_proxy_upstream_errors_total", &[("backend", "node-0")])
        + m.sum("sentinel_proxy_upstream_errors_total", &[("backend", "node-1")]);
    assert!(errors >= 3.0, "{errors}");
    let failed = [("method", "getBlockNumber"), ("status", "upstream_failure")];
    assert_eq!(m.sum("sentinel_proxy_requests_total", &failed), 2.0);
}

#[tokio::test]
async fn metrics_need_the_admin_token_when_one_is_set() {
    let n = node(ApiVersion::V5).await;
    let proxy = TestProxy::start(&[&n], &[("ADMIN_TOKEN", "s3cret-token")]).await;
    let url = format!("{}/metrics", proxy.url);
    let (status, headers, _) = get_with(&url, None).await;
    assert_eq!(status, 401);
    assert_eq!(headers.get("www-authenticate").unwrap(), "Bearer");
    assert_eq!(get_with(&url, Some("wrong")).await.0, 401);
    let m = Scrape::take(&proxy, Some("s3cret-token")).await;
    assert_eq!(m.one("sentinel_proxy_backend_up", &[("backend", "node-0")]), 1.0);
}
