//! Unit tests of `metrics`.

use super::*;
use crate::config::{Config, Sources};
use crate::upstream::{Health, Pool};

fn pool() -> Pool {
    let mut src = Sources::default();
    src.set("SENTINEL_BACKENDS", "alpha=http://user:secret@10.0.0.1:8080,beta=http://10.0.0.2:8080");
    Pool::new(&Config::from_sources(&src, false).expect("valid config"))
}

/// The sample line of `series` (name plus label text) in the rendered output.
fn value(text: &str, series: &str) -> Option<String> {
    text.lines().find_map(|l| l.strip_prefix(series)?.strip_prefix(' ').map(str::to_owned))
}

#[test]
fn method_labels_are_bounded_to_the_table() {
    let cases = [
        ("aztec_getBlock", "getBlock"),
        ("node_getBlock", "getBlock"),
        ("node_getL2Tips", "getL2Tips"),
        ("aztec_sendTx", "sendTx"),
        ("aztec_madeUpByAClient", "other"),
        ("eth_blockNumber", "other"),
        ("getBlock", "other"),
        ("", "other"),
        ("aztec_getBlock\"} 1\nevil", "other"),
    ];
    for (method, want) in cases {
        assert_eq!(Metrics::method_label(crate::methods::lookup(method)), want, "{method:?}");
    }
}

#[test]
fn every_family_is_registered_with_the_prefix() {
    let text = Metrics::new().render();
    for (name, kind) in [
        ("requests", "counter"),
        ("upstream_latency_seconds", "histogram"),
        ("retries", "counter"),
        ("hedges", "counter"),
        ("coalesced", "counter"),
        ("cache_hits", "counter"),
        ("cache_misses", "counter"),
        ("redis_errors", "counter"),
        ("rate_limited", "counter"),
        ("rejected", "counter"),
        ("upstream_errors", "counter"),
        ("backend_up", "gauge"),
        ("backend_routable", "gauge"),
        ("backend_tip", "gauge"),
        ("backend_lag_blocks", "gauge"),
        ("backend_integrity_score", "gauge"),
        ("backend_integrity_status", "gauge"),
        ("backend_integrity_checked_timestamp_seconds", "gauge"),
        ("backend_circuit_state", "gauge"),
        ("backend_in_flight", "gauge"),
        ("backend_forked", "gauge"),
        ("best_tip", "gauge"),
        ("open_connections", "gauge"),
        ("connections_shed", "counter"),
        ("accept_errors", "counter"),
        ("buffered_answer_bytes", "gauge"),
        ("build", "info"),
        ("start_time_seconds", "gauge"),
    ] {
        let line = format!("# TYPE sentinel_proxy_{name} {kind}");
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("sentinel_proxy_build_info{version=\""), "{text}");
}

#[test]
fn cache_tiers_are_lowercase_and_start_at_zero() {
    let m = Metrics::new();
    m.cache_hits.get_or_create(&TierLabel { tier: Tier::Memory }).inc();
    let text = m.render();
    assert_eq!(value(&text, "sentinel_proxy_cache_hits_total{tier=\"memory\"}").as_deref(), Some("1"));
    assert_eq!(value(&text, "sentinel_proxy_cache_misses_total{tier=\"redis\"}").as_deref(), Some("0"));
}

#[test]
fn gauges_of_unprobed_backends_say_unknown() {
    let m = Metrics::new();
    m.observe_snapshot(&pool().snapshot());
    let text = m.render();
    for (series, want) in [
        ("sentinel_proxy_backend_up{backend=\"alpha\"}", "0"),
        ("sentinel_proxy_backend_routable{backend=\"beta\"}", "0"),
        ("sentinel_proxy_backend_integrity_score{backend=\"alpha\"}", "-1"),
        ("sentinel_proxy_backend_integrity_status{backend=\"alpha\",status=\"unknown\"}", "1"),
        ("sentinel_proxy_backend_integrity_status{backend=\"alpha\",status=\"bad\"}", "0"),
        ("sentinel_proxy_backend_circuit_state{backend=\"beta\"}", "0"),
        ("sentinel_proxy_best_tip", "0"),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(want), "{series}");
    }
    assert!(!text.contains("10.0.0.1"), "a URL leaked into labels:\n{text}");
    assert!(!text.contains("secret"), "credentials leaked:\n{text}");
}

#[test]
fn gauges_follow_the_published_snapshot() {
    let pool = pool();
    let snap = pool.snapshot();
    let mut backends = snap.backends.clone();
    backends[0].health =
        Health { known: true, ready: true, tip: Some(1_000), lag: Some(0), healthy: true, ..Health::default() };
    backends[1].health = Health {
        known: true,
        ready: true,
        tip: Some(990),
        lag: Some(10),
        reason: Some(crate::upstream::Unroutable::Lagging { lag: 10, tip: 1_000, max: 2 }),
        ..Health::default()
    };
    backends[1].integrity.verdict.status = IntegrityStatus::Bad;
    backends[1].integrity.verdict.score = 62;
    backends[1].integrity.checked_at = Some(1_767_225_600);
    pool.publish(Snapshot { backends, best_tip: Some(1_000), finalized: None, reorgs: 0 });
    let m = Metrics::new();
    m.observe_snapshot(&pool.snapshot());
    let text = m.render();
    for (series, want) in [
        ("sentinel_proxy_backend_routable{backend=\"alpha\"}", "1"),
        ("sentinel_proxy_backend_routable{backend=\"beta\"}", "0"),
        ("sentinel_proxy_backend_up{backend=\"beta\"}", "1"),
        ("sentinel_proxy_backend_tip{backend=\"beta\"}", "990"),
        ("sentinel_proxy_backend_lag_blocks{backend=\"beta\"}", "10"),
        ("sentinel_proxy_backend_integrity_score{backend=\"beta\"}", "62"),
        ("sentinel_proxy_backend_integrity_status{backend=\"beta\",status=\"bad\"}", "1"),
        ("sentinel_proxy_backend_integrity_status{backend=\"beta\",status=\"unknown\"}", "0"),
        ("sentinel_proxy_backend_integrity_checked_timestamp_seconds{backend=\"beta\"}", "1767225600"),
        ("sentinel_proxy_best_tip", "1000"),
    ] {
        assert_eq!(value(&text, series).as_deref(), Some(want), "{series}");
    }
}

#[test]
fn value_mappings() {
    assert_eq!(score_value(IntegrityStatus::Unknown, 0), -1);
    assert_eq!(score_value(IntegrityStatus::Bad, 0), 0);
    assert_eq!(score_value(IntegrityStatus::Perfect, 100), 100);
    assert_eq!(circuit_value(CircuitState::Closed), 0);
    assert_eq!(circuit_value(CircuitState::Open), 1);
    assert_eq!(circuit_value(CircuitState::HalfOpen), 2);
    assert_eq!(gauge_value(u64::MAX), i64::MAX);
}

#[test]
fn request_series_of_two_gateways_on_one_thread_stay_apart() {
    let (a, b) = (Metrics::new(), Metrics::new());
    for _ in 0..3 {
        a.count_request("root", "getBlock", "ok", "alpha");
    }
    b.count_request("root", "getBlock", "ok", "alpha");
    a.count_request("root", "getBlock", "ok", "beta");
    a.observe_latency("getBlock", "alpha", 0.002);
    let series = |backend: &str| {
        format!(
            "sentinel_proxy_requests_total{{route=\"root\",method=\"getBlock\",status=\"ok\",backend=\"{backend}\"}}"
        )
    };
    let (ta, tb) = (a.render(), b.render());
    assert_eq!(value(&ta, &series("alpha")).as_deref(), Some("3"), "{ta}");
    assert_eq!(value(&ta, &series("beta")).as_deref(), Some("1"));
    assert_eq!(value(&tb, &series("alpha")).as_deref(), Some("1"), "{tb}");
    let count = "sentinel_proxy_upstream_latency_seconds_count{method=\"getBlock\",backend=\"alpha\"}";
    assert_eq!(value(&ta, count).as_deref(), Some("1"), "{ta}");
    assert_eq!(value(&tb, count), None);
}

#[test]
fn a_validator_no_longer_watched_loses_its_series() {
    let m = Metrics::new();
    let (a, b) = ("0x00000000000000000000000000000000000000aa", "0x00000000000000000000000000000000000000bb");
    m.observe_validators(&crate::validators::ValidatorReport::pending(&[a.to_owned(), b.to_owned()]));
    let text = m.render();
    assert!(text.contains(a) && text.contains(b), "both watched: {text}");
    // A reload narrowed WATCH_VALIDATORS to `a`.
    m.observe_validators(&crate::validators::ValidatorReport::pending(&[a.to_owned()]));
    let text = m.render();
    assert!(text.contains(a), "still watched: {text}");
    assert!(!text.contains(b), "no stale series for the dropped validator: {text}");
}
