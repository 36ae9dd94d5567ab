//! Graceful shutdown: on cancel (SIGTERM/SIGINT in `main`) the gateway stops accepting and
//! lets in-flight requests finish within the grace period.

mod support;

use std::time::Duration;

use sentinel_proxy::config::Config;
use sentinel_proxy::gateway;
use sentinel_proxy::simulator::{ApiVersion, Faults};
use serde_json::json;
use support::{eventually, get, node, rpc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn in_flight_requests_finish_after_shutdown_begins() {
    let a = node(ApiVersion::V5).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let cancel = CancellationToken::new();
    let server = tokio::spawn(gateway::run(Config::for_tests(&[&a.url]), listener, cancel.clone()));
    assert!(eventually(Duration::from_secs(5), || async { get(&format!("{url}/ready")).await.status == 200 }).await);

    a.set_faults(Faults { latency_ms: 500, ..Faults::default() });
    let in_flight = tokio::spawn({
        let url = url.clone();
        async move { rpc(&url, "aztec_getCurrentMinFees", json!([])).await }
    });
    assert!(eventually(Duration::from_secs(5), || async { a.calls("getCurrentMinFees") == 1 }).await);
    cancel.cancel();
    let r = in_flight.await.unwrap();
    assert_eq!(r.status, 200, "the in-flight request was answered");
    assert!(r.json()["result"].is_object());
    tokio::time::timeout(Duration::from_secs(5), server).await.expect("server stops").unwrap().unwrap();
    assert!(tokio::net::TcpStream::connect(url.trim_start_matches("http://")).await.is_err(), "no longer accepting");
}
