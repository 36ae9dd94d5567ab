//! Unit tests of `proxy`.

use super::*;

fn pending(method: &str, write: bool, sticky: Option<usize>, block: Option<u64>) -> Pending {
    Pending {
        slot: 0,
        call: Outbound::new(method.into(), None),
        info: methods::lookup(method),
        needs: Needs { sticky, block, exclude: Vec::new() },
        write,
        rule: Rule::Never,
        key: None,
        leader: None,
    }
}

fn slot(result: Option<Result<Outcome, ProxyError>>, status: StatusCode) -> Slot {
    Slot { id: None, method: String::new(), info: None, result, backend: None, status, from_cache: false }
}

#[test]
fn plain_reads_share_a_group_and_everything_else_goes_alone() {
    let groups = group(vec![
        pending("aztec_getBlockNumber", false, None, None),
        pending("aztec_sendTx", true, None, None),
        pending("aztec_getChainTips", false, None, None),
        pending("aztec_getTxReceipt", false, Some(1), None),
        pending("aztec_getPublicStorageAt", false, None, Some(5)),
    ]);
    let names: Vec<Vec<&str>> =
        groups.iter().map(|g| g.members.iter().map(|p| p.call.method.as_str()).collect()).collect();
    assert_eq!(
        names,
        [
            vec!["aztec_getBlockNumber", "aztec_getChainTips"],
            vec!["aztec_sendTx"],
            vec!["aztec_getTxReceipt"],
            vec!["aztec_getPublicStorageAt"],
        ]
    );
}

#[test]
fn status_rules() {
    let node_error = || Some(Ok(Outcome::error(-32601, "Method not found: x")));
    let gateway_error = || Some(Err(ProxyError::NoRoute { route: "/", why: String::new() }));
    let ok = || Some(Ok(Outcome::Result(None)));
    let table = [
        (false, slot(ok(), StatusCode::OK), false, None, StatusCode::OK),
        (false, slot(node_error(), StatusCode::BAD_REQUEST), false, None, StatusCode::BAD_REQUEST),
        (false, slot(node_error(), StatusCode::OK), false, None, StatusCode::OK),
        (false, slot(gateway_error(), StatusCode::OK), true, None, StatusCode::SERVICE_UNAVAILABLE),
        (true, slot(node_error(), StatusCode::BAD_REQUEST), false, None, StatusCode::OK),
        (true, slot(gateway_error(), StatusCode::OK), true, Some(StatusCode::BAD_GATEWAY), StatusCode::BAD_GATEWAY),
        (true, slot(gateway_error(), StatusCode::OK), false, Some(StatusCode::BAD_GATEWAY), StatusCode::OK),
    ];
    for (i, (batch, first, all_failed, worst, want)) in table.into_iter().enumerate() {
        assert_eq!(http_status(batch, &first, all_failed, worst), want, "row {i}");
    }
}

#[test]
fn a_coalesced_caller_gets_the_status_its_call_gets_alone() {
    let d = Delivered {
        outcomes: vec![Outcome::Result(None), Outcome::error(-32702, "no")],
        backend: "a".into(),
        backend_index: 0,
        status: StatusCode::OK,
        headers: std::sync::Arc::from([]),
        fallback: false,
        charge: Default::default(),
    };
    assert_eq!(members_alone_status(&d, 0), StatusCode::OK);
    assert_eq!(members_alone_status(&d, 1), StatusCode::BAD_REQUEST, "a batch item's error alone is a 400");
    let single = d.one(1, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(members_alone_status(&single, 0), StatusCode::INTERNAL_SERVER_ERROR, "a lone call keeps its own");
}

#[test]
fn a_batch_answer_carries_each_node_header_once_first_value_kept() {
    use http::{HeaderName, HeaderValue};
    let h = |k: &'static str, v: &'static str| (HeaderName::from_static(k), HeaderValue::from_static(v));
    let node_a: crate::forward::NodeHeaders =
        vec![h("x-aztec-packageversion", "4.1.2"), h("x-aztec-l1chainid", "1")].into();
    let mut answer = Arc::from([]);
    add_headers(&mut answer, &node_a); // the first answer's headers, shared as they are
    assert!(Arc::ptr_eq(&answer, &node_a));
    add_headers(&mut answer, &node_a); // a second item from the same node: nothing added
    assert_eq!(answer, node_a);
    let node_b: crate::forward::NodeHeaders =
        vec![h("x-aztec-packageversion", "5.0.0"), h("x-aztec-rollupversion", "7")].into();
    add_headers(&mut answer, &node_b);
    assert_eq!(&answer[..], &[node_a[0].clone(), node_a[1].clone(), h("x-aztec-rollupversion", "7")][..]);
}
