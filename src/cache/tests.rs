//! Unit tests of `cache`.

use super::*;
use crate::methods::lookup;

fn raw(s: &str) -> Box<RawValue> {
    RawValue::from_string(s.to_owned()).unwrap()
}

fn rule(method: &str, params: &str, finalized: Option<u64>) -> Rule {
    policy(lookup(method).unwrap(), Some(&raw(params)), finalized, Duration::from_secs(1))
}

#[test]
fn finality_decides_immutable_caching() {
    assert_eq!(rule("aztec_getBlock", "[10]", Some(100)), Rule::For(IMMUTABLE_TTL));
    assert_eq!(rule("aztec_getBlock", "[101]", Some(100)), Rule::Never);
    assert_eq!(rule("aztec_getBlock", "[10]", None), Rule::Never, "finality unknown");
    assert_eq!(rule("aztec_getBlock", "[\"latest\"]", Some(100)), Rule::IfFinal);
    assert_eq!(rule("node_getBlocks", "[1, 50]", Some(100)), Rule::For(IMMUTABLE_TTL));
    assert_eq!(rule("node_getBlocks", "[90, 50]", Some(100)), Rule::Never);
    assert_eq!(rule("aztec_getPublicStorageAt", "[5, \"0x1\", \"0x2\"]", Some(100)), Rule::For(IMMUTABLE_TTL));
}

#[test]
fn volatile_static_and_never() {
    assert_eq!(rule("aztec_getBlockNumber", "[]", None), Rule::For(Duration::from_secs(1)));
    assert_eq!(rule("aztec_getBlockNumber", "[\"proven\"]", None), Rule::Never);
    assert_eq!(rule("aztec_getL1Constants", "[]", None), Rule::For(STATIC_TTL));
    for m in [
        "aztec_sendTx",
        "aztec_getPendingTxs",
        "aztec_getNodeInfo",
        "aztec_getValidatorsStats",
        "aztec_simulatePublicCalls",
        "aztec_isReady",
    ] {
        assert_eq!(rule(m, "[]", Some(100)), Rule::Never, "{m}");
    }
}

#[test]
fn results_must_prove_finality_and_never_be_null() {
    assert_eq!(admits(Rule::For(STATIC_TTL), "null", None), None);
    assert_eq!(admits(Rule::IfFinal, r#"{"txHash":"0x1","status":"finalized"}"#, None), Some(IMMUTABLE_TTL));
    assert_eq!(admits(Rule::IfFinal, r#"{"txHash":"0x1","status":"proven"}"#, Some(10)), None);
    assert_eq!(admits(Rule::IfFinal, r#"{"number":7,"hash":"0x"}"#, Some(10)), Some(IMMUTABLE_TTL));
    assert_eq!(admits(Rule::IfFinal, r#"{"number":11}"#, Some(10)), None);
}

#[test]
fn an_entry_weighs_at_least_its_heap_footprint() {
    // A finalized v5 block as the simulator serves it, with the node's three headers,
    // built as `proxy` builds it (result parsed out of the node's answer, headers cloned).
    let tx = r#"{"txHash":"0x2b1f4c5e6a7d8e9f0a1b2c3d4e5f60718293a4b5c6d7e8f90a1b2c3d4e5f6071","txEffect":{"revertCode":0,"transactionFee":"0x0000000000000000000000000000000000000000000000000000000000c0ffee","noteHashes":["0x1111111111111111111111111111111111111111111111111111111111111111"],"nullifiers":["0x2222222222222222222222222222222222222222222222222222222222222222"],"l2ToL1Msgs":[],"publicDataWrites":[],"privateLogs":[],"publicLogs":[],"contractClassLogs":[]}}"#;
    let txs = [tx; 4].join(",");
    let result = format!(
        r#"{{"number":12345,"hash":"0x0f1e2d3c4b5a69788796a5b4c3d2e1f00f1e2d3c4b5a69788796a5b4c3d2e1f0","checkpointNumber":6172,"header":{{"lastArchive":{{"root":"0x05","nextAvailableLeafIndex":12345}},"globalVariables":{{"blockNumber":12345,"slotNumber":"0x181c","timestamp":"0x6800f000","coinbase":"0x0000000000000000000000000000000000000000","feeRecipient":"0x00","gasFees":{{"feePerDaGas":"0x00","feePerL2Gas":"0x0c"}}}},"totalFees":"0x00","totalManaUsed":"0x00"}},"body":{{"txEffects":[{txs}]}}}}"#
    );
    let node_body = format!(r#"{{"jsonrpc":"2.0","id":0,"result":{result}}}"#);
    #[derive(Deserialize)]
    struct Answer {
        result: Box<RawValue>,
    }
    let parsed: Answer = serde_json::from_str(&node_body).unwrap();
    let result: Arc<RawValue> = Arc::from(parsed.result);
    let from_node: Vec<(HeaderName, HeaderValue)> = [
        ("x-aztec-packageversion", "5.0.0"),
        ("x-aztec-rollupversion", "1714840162"),
        ("x-aztec-l1chainid", "11155111"),
    ]
    .into_iter()
    .map(|(k, v)| (HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_bytes(v.as_bytes()).unwrap()))
    .collect();
    let headers: crate::forward::NodeHeaders = from_node.clone().into();
    // Stored as the proxy stores it (`key(..).to_string()`).
    let k = key("aztec_getBlock", lookup("aztec_getBlock").unwrap(), Some(&raw("[12345]"))).to_string();
    let entry = Entry { result, headers, backend: "archiver-1".into(), ttl: IMMUTABLE_TTL, volatile: false };
    assert_eq!(from_node.len(), entry.headers.len(), "the reply keeps its own headers");

    // The footprint, allocation by allocation (no allocator or moka overhead counted here
    // except moka's measured 309 bytes per entry).
    let word = std::mem::size_of::<usize>();
    let footprint = k.capacity()
        + (2 * word + std::mem::size_of::<Entry>())
        + (2 * word + entry.result.get().len())
        + (2 * word + entry.headers.len() * std::mem::size_of::<(HeaderName, HeaderValue)>())
        + entry.headers.iter().map(|(n, v)| n.as_str().len() + v.len() + 2 * 24).sum::<usize>()
        + (2 * word + entry.backend.len())
        + 309;
    let weight = weigh(k.capacity(), &entry) as usize;
    assert!(weight >= footprint, "weight {weight} < footprint {footprint}");
    assert!(
        weight <= footprint * 2,
        "weight {weight} far above footprint {footprint}: the cache would hold too little"
    );
    let old = k.len() + entry.result.get().len() + 64;
    assert!(old < footprint, "the old weigher ({old}) undercounted ({footprint})");

    // A tiny answer (a block number) is dominated by fixed costs, which the old weigher missed.
    let small = Entry { result: Arc::from(raw("12345")), headers: Arc::from([]), backend: "n".into(), ..entry };
    assert!(weigh(16, &small) as usize >= 16 + 2 * word + std::mem::size_of::<Entry>() + 2 * word + 5 + 1 + 309);
}

#[test]
fn keys_ignore_whitespace_but_not_string_content_nor_generation() {
    let k = |m: &str, p: &str| key(m, lookup(m).unwrap(), Some(&raw(p)));
    let a = k("aztec_getContract", "[ 1, {\"a\": \"x y\"} ]");
    assert_eq!(a, k("node_getContract", "[1,{\"a\":\"x y\"}]"), "same shape in every generation");
    assert_eq!(&*a, "getContract:[1,{\"a\":\"x y\"}]");
    assert_ne!(a, k("node_getContract", "[1,{\"a\":\"x  y\"}]"));
    let v5 = k("aztec_getBlock", "[1]");
    assert_eq!(&*v5, "aztec/getBlock:[1]");
    assert_ne!(v5, k("node_getBlock", "[1]"), "v4 and v5 blocks differ in shape");
}
