//! Log injection (issue 10): a control character in a client-controlled value cannot forge a
//! log line, in any log format. Its own test binary: a thread-local subscriber only sees every
//! event when no other test of the binary runs beside it (tracing caches each call site's
//! interest process-wide).

mod support;

use sentinel_proxy::gateway;
use sentinel_proxy::simulator::ApiVersion;
use serde_json::json;
use support::{node, post, Captured, TestProxy};

/// Issue 10: a newline in a method name forged a log line in the pretty format. Every value is
/// written with its control characters escaped, in both formats: each line the gateway writes
/// is one event, and the forged text stays inside its field.
#[tokio::test]
async fn a_control_character_in_a_method_name_cannot_forge_a_log_line() {
    use sentinel_proxy::config::LogFormat;
    let forged = "aztec_x\n2026-01-01T00:00:00.000000Z  WARN request failed methods=FORGED\r\x1b[2K";
    for format in [LogFormat::Pretty, LogFormat::Json] {
        let a = node(ApiVersion::V5).await;
        let p = TestProxy::start(&[&a], &[]).await;
        let logs = Captured::default();
        let filter = tracing_subscriber::EnvFilter::new("debug");
        let _guard = tracing::subscriber::set_default(gateway::log_subscriber(format, filter, false, logs.clone()));
        let single = json!({"jsonrpc": "2.0", "id": 1, "method": forged});
        assert_eq!(post(&p.url, single).await.status, 400);
        let two = json!([{"jsonrpc": "2.0", "id": 1, "method": forged}, {"jsonrpc": "2.0", "id": 2, "method": forged}]);
        assert_eq!(post(&p.url, two).await.status, 200);
        let text = logs.text();
        let served: Vec<&str> = text.lines().filter(|l| l.contains("request served")).collect();
        assert_eq!(served.len(), 2, "{format:?}: {text}");
        for line in text.lines() {
            assert!(!line.starts_with("2026-01-01"), "{format:?}: forged line {line:?}");
            assert!(!line.contains(['\r', '\x1b']), "{format:?}: raw control character in {line:?}");
            if format == LogFormat::Json {
                serde_json::from_str::<serde_json::Value>(line).expect("each line is one JSON event");
            }
        }
        assert!(served.iter().all(|l| l.contains("FORGED")), "the value is still logged, escaped: {served:?}");
    }
}
