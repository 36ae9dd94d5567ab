//! Validator watch (README "Validator watch"): `WATCH_VALIDATORS` judged across every node's
//! sentinel, against simulated nodes of every status generation (v3 `block-*`, v4/v5
//! `checkpoint-*` and `blocks-missed`, v6 unpublished/orphaned): healthy validators, an offline
//! one (its streak counted exactly), a one-node blind spot (disputed, never a miss), an address
//! no node has (unknown), a node with its sentinel off and a node with gaps.

mod support;

use std::collections::BTreeSet;

use sentinel_proxy::simulator::{
    ApiVersion, Faults, HistoryProfile, SimConfig, SimNode, ValidatorEpochs, ValidatorRef,
};
use serde_json::{json, Value};
use support::{get_with, rpc, TestProxy};

const VERSIONS: [ApiVersion; 4] = [ApiVersion::V3, ApiVersion::V4, ApiVersion::V5, ApiVersion::V6];

/// Settings so the simulator's history (S = 32, committee 24) is judged as configured.
const PARAMS: [(&str, &str); 2] = [("SLOTS_PER_EPOCH", "32"), ("EXPECTED_VALIDATORS", "24")];

/// An address the simulated network does not have.
const UNSEEN: &str = "0x5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e";

/// Validators the simulator never makes miss by chance (only index ≡ 3 mod 4 is flaky).
const RELIABLE: [u64; 3] = [0, 1, 2];

fn address(version: ApiVersion, idx: u64) -> String {
    SimConfig::for_tests(version).validator_address(idx)
}

async fn sim(version: ApiVersion, faults: Faults) -> SimNode {
    let mut cfg = SimConfig::for_tests(version);
    cfg.faults = faults;
    SimNode::start(cfg).await.unwrap()
}

/// A gateway watching `watch` in front of `nodes`, after one integrity pass.
async fn watching(nodes: &[&SimNode], watch: &[String], extra: &[(&str, &str)]) -> TestProxy {
    let list = watch.join(",");
    let mut settings: Vec<(&str, &str)> = PARAMS.to_vec();
    settings.push(("WATCH_VALIDATORS", &list));
    settings.extend_from_slice(extra);
    let mut proxy = TestProxy::start(nodes, &settings).await;
    proxy.check_integrity().await;
    proxy
}

async fn report(proxy: &TestProxy) -> Value {
    let r = get_with(&format!("{}/validators", proxy.url), &[]).await;
    assert_eq!(r.status, 200);
    r.json()
}

/// The entry of `address` in `/validators`.
async fn entry(proxy: &TestProxy, address: &str) -> Value {
    let doc = report(proxy).await;
    doc["validators"].as_array().unwrap().iter().find(|v| v["address"] == address).cloned().unwrap_or_else(|| {
        panic!("{address} not in {doc}");
    })
}

fn epochs_of(entry: &Value, state: &str) -> Vec<u64> {
    entry["epochs"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["state"] == state)
        .map(|c| c["epoch"].as_u64().unwrap())
        .collect()
}

fn window(entry: &Value) -> (u64, u64) {
    let epochs = entry["epochs"].as_array().unwrap();
    (epochs[0]["epoch"].as_u64().unwrap(), epochs.last().unwrap()["epoch"].as_u64().unwrap())
}

/// `(slot, status)` records of `address` in a node's own `getValidatorsStats` answer.
async fn history(node: &SimNode, address: &str) -> Vec<(u64, String)> {
    let doc = rpc(&node.url, "node_getValidatorsStats", json!([])).await.json();
    let Some(v) = doc["result"]["stats"].get(address) else {
        return Vec::new();
    };
    v["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["slot"].as_u64().unwrap(), r["status"].as_str().unwrap().to_owned()))
        .collect()
}

/// The epoch the simulated nodes are in (their `lastProcessedSlot`'s).
async fn current_epoch(node: &SimNode) -> u64 {
    let doc = rpc(&node.url, "node_getValidatorsStats", json!([])).await.json();
    doc["result"]["lastProcessedSlot"].as_u64().unwrap() / 32
}

fn offline(idx: u64, from_epoch: u64) -> Faults {
    Faults {
        offline_validators: vec![ValidatorEpochs::from(vec![ValidatorRef::Index(idx)], from_epoch)],
        ..Faults::default()
    }
}

#[tokio::test]
async fn reliable_validators_are_healthy_on_every_generation() {
    for version in VERSIONS {
        let (a, b) = (sim(version, Faults::default()).await, sim(version, Faults::default()).await);
        let watch: Vec<String> = RELIABLE.iter().map(|&i| address(version, i)).collect();
        let proxy = watching(&[&a, &b], &watch, &[]).await;
        // The integrity pass's own fetch is the only one (no second fetch for the watch).
        assert_eq!(a.calls("getValidatorsStats"), 1, "{version}");
        let doc = report(&proxy).await;
        assert_eq!(doc["validators"].as_array().unwrap().len(), 3, "{version}");
        for addr in &watch {
            let e = entry(&proxy, addr).await;
            assert_eq!(e["status"], "healthy", "{version}: {e}");
            assert_eq!((e["missed_attestations"].as_u64(), e["missed_proposals"].as_u64()), (Some(0), Some(0)));
            assert_eq!(e["missed_streak_epochs"], 0);
            assert_eq!(e["disputed_epochs"], json!([]), "{version}");
            assert!(e["attestations_sent"].as_u64().unwrap() > 0, "{version}: {e}");
            let (first, last) = window(&e);
            assert_eq!(last - first + 1, 10, "the integrity window: {version}");
            assert!(epochs_of(&e, "ok").len() >= 2, "{version}: {e}");
            let last_slot = e["last_duty_slot"].as_u64().unwrap();
            assert!(last_slot / 32 <= last && last_slot / 32 >= first, "{version}");
            let duty_slot = history(&a, addr).await.into_iter().filter(|(s, _)| s / 32 <= last).map(|(s, _)| s).max();
            assert_eq!(Some(last_slot), duty_slot, "{version}");
            for name in ["node-0", "node-1"] {
                assert_eq!(e["nodes"][name]["seen"], true, "{version}");
                assert_eq!(e["nodes"][name]["missed_attestations"], 0, "{version}");
            }
        }
    }
}

#[tokio::test]
async fn offline_validator_streak_is_counted_exactly_on_every_generation() {
    for version in VERSIONS {
        let probe = sim(version, Faults::default()).await;
        let now = current_epoch(&probe).await;
        let from = now - 4;
        let faults = offline(0, from);
        let (a, b) = (sim(version, faults.clone()).await, sim(version, faults).await);
        let addr = address(version, 0);
        let proxy = watching(&[&a, &b], std::slice::from_ref(&addr), &[]).await;
        let e = entry(&proxy, &addr).await;
        assert_eq!(e["status"], "missing-duties", "{version}: {e}");
        let (first, last) = window(&e);
        assert_eq!(last, now - 1, "{version}");
        // Expected from the node's own history: every epoch from `from` in which validator 0
        // had a duty is a missed epoch; the newest duty epoch before it was a success.
        let records: Vec<(u64, String)> =
            history(&a, &addr).await.into_iter().filter(|(s, _)| (first..=last).contains(&(s / 32))).collect();
        let duty_epochs: BTreeSet<u64> = records.iter().map(|(s, _)| s / 32).filter(|&ep| ep >= from).collect();
        assert!(!duty_epochs.is_empty(), "{version}: validator 0 sits on a committee after epoch {from}");
        assert_eq!(e["missed_streak_epochs"].as_u64().unwrap(), duty_epochs.len() as u64, "{version}: {e}");
        assert_eq!(epochs_of(&e, "missed"), duty_epochs.iter().copied().collect::<Vec<_>>(), "{version}");
        let missed_att = records.iter().filter(|(_, st)| st == "attestation-missed").count() as u64;
        let missed_prop = records
            .iter()
            .filter(|(_, st)| {
                ["block-missed", "checkpoint-missed", "blocks-missed", "checkpoint-invalid", "checkpoint-unvalidated"]
                    .contains(&st.as_str())
            })
            .count() as u64;
        assert_eq!(e["missed_attestations"].as_u64().unwrap(), missed_att, "{version}");
        assert_eq!(e["missed_proposals"].as_u64().unwrap(), missed_prop, "{version}");
        assert!(missed_att > 0, "{version}");
        let last_ok =
            records.iter().filter(|(s, st)| s / 32 < from && !st.contains("missed") && st != "checkpoint-invalid");
        assert_eq!(e["last_duty_slot"].as_u64(), last_ok.map(|(s, _)| *s).max(), "{version}");
        assert_eq!(e["disputed_epochs"], json!([]));

        // A reliable validator next to it is untouched.
        let other = address(version, 1);
        let proxy = watching(&[&a, &b], std::slice::from_ref(&other), &[]).await;
        assert_eq!(entry(&proxy, &other).await["status"], "healthy", "{version}");
    }
}

#[tokio::test]
async fn one_node_blind_spot_is_disputed_not_missed() {
    for version in VERSIONS {
        let probe = sim(version, Faults::default()).await;
        let now = current_epoch(&probe).await;
        let addr = address(version, 1);
        let blind = Faults {
            blind_validators: vec![ValidatorEpochs {
                validators: vec![ValidatorRef::Address(addr.to_uppercase().replacen("0X", "0x", 1))],
                from_epoch: now - 6,
                to_epoch: Some(now - 2),
            }],
            ..Faults::default()
        };
        let (a, b, c) =
            (sim(version, Faults::default()).await, sim(version, Faults::default()).await, sim(version, blind).await);
        let proxy = watching(&[&a, &b, &c], std::slice::from_ref(&addr), &[]).await;
        let e = entry(&proxy, &addr).await;
        assert_eq!(e["status"], "healthy", "not flagged: {version}: {e}");
        assert_eq!(e["missed_attestations"], 0);
        let duty_epochs: BTreeSet<u64> = history(&a, &addr)
            .await
            .iter()
            .map(|(s, _)| s / 32)
            .filter(|ep| (now - 6..=now - 2).contains(ep))
            .collect();
        assert!(!duty_epochs.is_empty(), "{version}");
        let disputed: Vec<u64> = e["disputed_epochs"].as_array().unwrap().iter().map(|x| x.as_u64().unwrap()).collect();
        assert_eq!(disputed, duty_epochs.into_iter().collect::<Vec<_>>(), "{version}: {e}");
        assert_eq!(epochs_of(&e, "disputed"), disputed);
        assert_eq!(e["nodes"]["node-2"]["seen"], true, "seen outside the blind spot");
        assert_eq!(e["nodes"]["node-2"]["missed_attestations"], 0, "a blind spot is not a miss on its own node either");
    }
}

#[tokio::test]
async fn unseen_address_is_unknown_and_sentinel_off_never_counts() {
    for version in VERSIONS {
        let now = current_epoch(&sim(version, Faults::default()).await).await;
        let faults = offline(2, now - 6);
        let on = sim(version, faults.clone()).await;
        let off = sim(version, Faults { history: Some(HistoryProfile::Disabled), ..faults }).await;
        let watch = [UNSEEN.to_owned(), address(version, 2), address(version, 0)];
        let proxy = watching(&[&on, &off], &watch, &[]).await;
        let unseen = entry(&proxy, UNSEEN).await;
        assert_eq!(unseen["status"], "unknown", "{version}");
        assert_eq!(unseen["nodes"]["node-0"]["seen"], false);
        assert_eq!(unseen["last_duty_slot"], Value::Null);

        let missing = entry(&proxy, &watch[1]).await;
        assert_eq!(missing["status"], "missing-duties", "{version}: {missing}");
        assert!(missing["missed_streak_epochs"].as_u64().unwrap() >= 1);
        assert_eq!(missing["disputed_epochs"], json!([]), "the sentinel-off node disputes nothing");
        let off_view = &missing["nodes"]["node-1"];
        assert_eq!((off_view["sentinel_off"].as_bool(), off_view["seen"].as_bool()), (Some(true), Some(false)));
        assert_eq!(entry(&proxy, &watch[2]).await["status"], "healthy", "{version}");
    }
    // Only a sentinel-off node: nothing is known.
    let off = sim(ApiVersion::V6, Faults { history: Some(HistoryProfile::Disabled), ..Faults::default() }).await;
    let addr = address(ApiVersion::V6, 0);
    let proxy = watching(&[&off], std::slice::from_ref(&addr), &[]).await;
    let e = entry(&proxy, &addr).await;
    assert_eq!((e["status"].as_str(), e["epochs"].as_array().unwrap().len()), (Some("unknown"), 0));
}

#[tokio::test]
async fn gaps_neither_miss_nor_dispute() {
    for version in [ApiVersion::V4, ApiVersion::V6] {
        let a = sim(version, Faults::default()).await;
        let gapped = sim(version, Faults { history: Some(HistoryProfile::Gapped), ..Faults::default() }).await;
        let watch: Vec<String> = RELIABLE.iter().map(|&i| address(version, i)).collect();
        let proxy = watching(&[&a, &gapped], &watch, &[]).await;
        for addr in &watch {
            let e = entry(&proxy, addr).await;
            assert_eq!(e["status"], "healthy", "{version}: {e}");
            assert_eq!(e["disputed_epochs"], json!([]), "{version}");
            let gaps = e["nodes"]["node-1"]["gaps"].as_array().unwrap().len();
            assert_eq!(gaps, 2, "two gap epochs in ten: {version}");
        }
    }
}

#[tokio::test]
async fn validators_needs_the_admin_token_and_feeds_metrics() {
    let now = current_epoch(&sim(ApiVersion::V5, Faults::default()).await).await;
    let node = sim(ApiVersion::V5, offline(0, now - 6)).await;
    let (sick, fine) = (address(ApiVersion::V5, 0), address(ApiVersion::V5, 1));
    let watch = [sick.to_uppercase().replacen("0X", "0x", 1), fine.clone(), UNSEEN.to_owned()];
    let proxy = watching(&[&node], &watch, &[("ADMIN_TOKEN", "s3cret")]).await;
    let url = format!("{}/validators", proxy.url);
    assert_eq!(get_with(&url, &[]).await.status, 401);
    assert_eq!(get_with(&url, &[("authorization", "Bearer nope")]).await.status, 401);
    let r = get_with(&url, &[("authorization", "Bearer s3cret")]).await;
    assert_eq!(r.status, 200);
    let doc = r.json();
    assert_eq!(doc["validators"][0]["address"], sick, "addresses are lowercased");
    let streak = doc["validators"][0]["missed_streak_epochs"].as_u64().unwrap();
    assert!(streak >= 1, "{doc}");

    let m = get_with(&format!("{}/metrics", proxy.url), &[("authorization", "Bearer s3cret")]).await;
    let text = String::from_utf8(m.body.to_vec()).unwrap();
    for line in [
        format!("sentinel_proxy_validator_status{{validator=\"{sick}\",status=\"missing-duties\"}} 1"),
        format!("sentinel_proxy_validator_status{{validator=\"{sick}\",status=\"healthy\"}} 0"),
        format!("sentinel_proxy_validator_status{{validator=\"{fine}\",status=\"healthy\"}} 1"),
        format!("sentinel_proxy_validator_status{{validator=\"{UNSEEN}\",status=\"unknown\"}} 1"),
        format!("sentinel_proxy_validator_missed_streak_epochs{{validator=\"{sick}\"}} {streak}"),
        format!("sentinel_proxy_validator_missed_proposals{{validator=\"{fine}\"}} 0"),
        format!("sentinel_proxy_validator_missed_attestations{{validator=\"{fine}\"}} 0"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn before_the_first_pass_every_watched_validator_is_unknown() {
    let node = sim(ApiVersion::V6, Faults::default()).await;
    let addr = address(ApiVersion::V6, 0);
    let mut settings: Vec<(&str, &str)> = PARAMS.to_vec();
    settings.push(("WATCH_VALIDATORS", &addr));
    let proxy = TestProxy::start(&[&node], &settings).await;
    let doc = report(&proxy).await;
    assert_eq!(doc["checked_at"], Value::Null);
    assert_eq!(doc["validators"][0]["status"], "unknown");
    assert_eq!(node.calls("getValidatorsStats"), 0);
}

#[test]
fn readme_demo_command_watches_the_demo_validators() {
    let readme = include_str!("../README.md");
    let watch = sentinel_proxy::simulator::demo_watch_validators();
    let offline = address(ApiVersion::V6, sentinel_proxy::simulator::DEMO_OFFLINE_VALIDATOR);
    assert_eq!(watch[2], offline);
    let line = format!("WATCH_VALIDATORS={}", watch.join(","));
    assert!(readme.contains(&line), "README's demo command should read {line}");
}
