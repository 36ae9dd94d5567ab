//! Configuration: environment variables (the Go prototype's names), an optional `.env`, and an
//! optional TOML file with the same keys in snake_case.
//!
//! Loading is two-phase, as in linkerd's `parse_config`: every source is first flattened into a
//! `key -> string` map ([`Sources`]), then [`Config::from_sources`] validates every key and
//! reports **all** problems at once ([`ConfigError`]), each naming the variable, its value and
//! what is allowed. Precedence: environment over TOML file over defaults.
//!
//! Every key is declared once, in [`KEYS`] (`keys.rs`: name, default, doc, parse, show); the
//! loader, `--print-config`, `sentinel-proxy config --list` ([`list`]) and the README check
//! below are all driven by that table. `sources.rs` holds phase one and the per-key reader,
//! `backends.rs` the backend list and URL redaction.

mod backends;
mod keys;
mod sources;

use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;

use crate::integrity::IntegrityParams;

pub use backends::{redact_str, redact_url, BackendConfig, SecretUrl};
pub use keys::{Key, KEYS};
use sources::Reader;
pub use sources::Sources;

/// Methods denied unless `DENY_METHODS` says otherwise (docs/aztec-api.md#never-public).
pub const DEFAULT_DENY: &str = "*Admin_*,*Debug_*,prover_*,provingJobSource_*,bot_*,p2p_*";

/// Log output format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// The validated configuration. Built only through [`Config::from_sources`] or
/// [`Config::for_tests`].
#[derive(Clone, Debug)]
pub struct Config {
    /// Address the gateway listens on.
    pub listen: SocketAddr,
    /// `tracing` filter directive (debug, info, warn, error).
    pub log_level: String,
    /// Log line format.
    pub log_format: LogFormat,
    /// The nodes behind the gateway (may be empty only in demo mode).
    pub backends: Vec<BackendConfig>,
    /// Whole-request deadline, retries included.
    pub request_timeout: Duration,
    /// Deadline of one attempt on one node.
    pub attempt_timeout: Duration,
    /// Readiness and tip probe interval.
    pub health_interval: Duration,
    /// Sentinel history analysis interval.
    pub integrity_interval: Duration,
    /// Integrity analysis parameters.
    pub integrity: IntegrityParams,
    /// Whether `SLOTS_PER_EPOCH` / `EXPECTED_VALIDATORS` were set (else auto-detected).
    pub epoch_params_explicit: (bool, bool),
    /// Blocks behind the corroborated tip before a node is quarantined.
    pub max_block_lag: u64,
    /// Extra attempts on other nodes for retryable failures.
    pub max_retries: u32,
    /// Consecutive failures that open a node's circuit.
    pub circuit_failures: u32,
    /// Time an open circuit waits before a half-open probe.
    pub circuit_cooldown: Duration,
    /// In-memory cache budget in bytes.
    pub cache_max_bytes: u64,
    /// Longest life of a cached volatile answer.
    pub cache_volatile: Duration,
    /// Redis shared by replicas (cache tier, rate limits, analysis lease); redacted when shown.
    pub redis_url: Option<SecretUrl>,
    /// CA certificates (PEM) a `rediss://` server is verified with instead of the public roots.
    pub redis_ca_file: Option<std::path::PathBuf>,
    /// Per-client requests per second (0 = off).
    pub rate_limit_rps: u32,
    /// Per-client burst.
    pub rate_limit_burst: u32,
    /// IPv6 clients are limited per network of this prefix length (one host commonly holds a
    /// whole /64); IPv4 clients per address.
    pub rate_limit_ipv6_prefix: u8,
    /// Requests served at once before the gateway answers 429.
    pub max_concurrent_requests: usize,
    /// Open client connections before new ones are shed (closed at once).
    pub max_connections: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// Largest node answer read for a client request (`MAX_RESPONSE_BYTES`).
    pub max_response_bytes: usize,
    /// Node answer bytes buffered at once over all requests (`MAX_BUFFERED_BYTES`).
    pub max_buffered_bytes: usize,
    /// JSON-RPC batch size limit.
    pub max_batch: usize,
    /// Allowed method globs (empty = the public method table).
    pub allow_methods: Vec<String>,
    /// Denied method globs (deny wins).
    pub deny_methods: Vec<String>,
    /// Validators whose duties `/validators` reports (lowercase, `0x` + 40 hex, no duplicates).
    pub watch_validators: Vec<String>,
    /// Bearer token for `/health` details and `/dashboard`.
    pub admin_token: Option<String>,
    /// Rollup version every node must report.
    pub expected_rollup_version: Option<u64>,
    /// Largest validator-stats answer read.
    pub max_stats_bytes: usize,
    /// Time in-flight requests get to finish at shutdown.
    pub shutdown_grace: Duration,
    /// Serving threads (thread-per-core); `WORKER_THREADS=0` means one per core.
    pub worker_threads: usize,
}

/// Every problem found in the configuration, reported together.
#[derive(Debug)]
pub struct ConfigError(pub Vec<String>);

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "invalid configuration ({} problem(s)):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigError {}

impl Config {
    /// Validates raw values, key by key in the order of [`KEYS`]. `demo` allows an empty
    /// backend list.
    ///
    /// # Errors
    /// Every invalid value, each with the variable, its value and what is allowed.
    pub fn from_sources(src: &Sources, demo: bool) -> Result<Config, ConfigError> {
        let mut r = Reader { src, demo, key: &KEYS[0], problems: src.problems.clone() };
        let mut cfg = Config::unset();
        for key in KEYS {
            key.parse(&mut r, &mut cfg);
        }
        if r.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(r.problems))
        }
    }

    /// What every field holds before its key is read; each is overwritten by its key's parse.
    fn unset() -> Config {
        Config {
            listen: SocketAddr::from(([0, 0, 0, 0], 0)),
            log_level: String::new(),
            log_format: LogFormat::Pretty,
            backends: Vec::new(),
            request_timeout: Duration::ZERO,
            attempt_timeout: Duration::ZERO,
            health_interval: Duration::ZERO,
            integrity_interval: Duration::ZERO,
            integrity: IntegrityParams {
                slots_per_epoch: 0,
                expected_validators: 0,
                check_epochs: 0,
                score_threshold: 0,
                archiver_threshold_epochs: 0,
            },
            epoch_params_explicit: (false, false),
            max_block_lag: 0,
            max_retries: 0,
            circuit_failures: 0,
            circuit_cooldown: Duration::ZERO,
            cache_max_bytes: 0,
            cache_volatile: Duration::ZERO,
            redis_url: None,
            redis_ca_file: None,
            rate_limit_rps: 0,
            rate_limit_burst: 0,
            rate_limit_ipv6_prefix: 64,
            max_concurrent_requests: 0,
            max_connections: 0,
            trusted_proxies: Vec::new(),
            max_body_bytes: 0,
            max_response_bytes: 0,
            max_buffered_bytes: 0,
            max_batch: 0,
            allow_methods: Vec::new(),
            deny_methods: Vec::new(),
            watch_validators: Vec::new(),
            admin_token: None,
            expected_rollup_version: None,
            max_stats_bytes: 0,
            shutdown_grace: Duration::ZERO,
            worker_threads: 0,
        }
    }

    /// A configuration for tests: [`Sources::for_tests`] (the given backends, tiny intervals,
    /// listening on 127.0.0.1:0).
    ///
    /// # Panics
    /// If the test settings stop being valid.
    pub fn for_tests(urls: &[&str]) -> Config {
        Config::from_sources(&Sources::for_tests(urls), true).expect("test config is valid")
    }

    /// The effective configuration as `KEY=value` lines, secrets redacted.
    pub fn describe(&self) -> String {
        KEYS.iter().filter_map(|k| Some(format!("{}={}\n", k.name, k.show(self)?))).collect()
    }
}

/// Every key with its default and one-line doc (`sentinel-proxy config --list`).
pub fn list() -> String {
    let mut out = String::from("Environment variables (TOML file: the same keys in snake_case; environment wins):\n\n");
    for k in KEYS {
        let default = if k.default.is_empty() { "unset" } else { k.default };
        out.push_str(&format!("{:<28} {}\n{:<28} default: {default}\n", k.name, k.doc, ""));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(pairs: &[(&str, &str)]) -> Sources {
        let mut s = Sources::default();
        for (k, v) in pairs {
            s.set(k, *v);
        }
        s
    }

    #[test]
    fn missing_backends_is_a_clear_error_outside_demo() {
        let err = Config::from_sources(&Sources::default(), false).unwrap_err();
        assert!(err.to_string().contains("SENTINEL_BACKENDS is not set"));
        assert!(Config::from_sources(&Sources::default(), true).is_ok());
    }

    #[test]
    fn every_bad_value_is_reported_at_once() {
        let s = src(&[
            ("SENTINEL_BACKENDS", "a=http://x:1,ftp://nope"),
            ("MAX_BLOCK_LAG", "many"),
            ("INTEGRITY_SCORE_THRESHOLD", "101"),
            ("LOG_FORMAT", "xml"),
        ]);
        let err = Config::from_sources(&s, false).unwrap_err();
        assert_eq!(err.0.len(), 4, "{err}");
        assert!(err.0.iter().any(|p| p.starts_with("MAX_BLOCK_LAG=\"many\"")));
        assert!(err.0.iter().any(|p| p.contains("INTEGRITY_SCORE_THRESHOLD=101")));
    }

    #[test]
    fn names_defaults_and_toml() {
        let mut s = Sources::default();
        s.add_toml("sentinel_backends = [\"arch=http://10.0.0.1:8080\", \"http://u:pw@node.example:9000/?key=1\"]\nmax_block_lag = 5\n");
        s.add_env([("MAX_BLOCK_LAG".to_owned(), "3".to_owned())]);
        let c = Config::from_sources(&s, false).unwrap();
        assert_eq!(c.backends[0].name, "arch");
        assert_eq!(c.backends[1].name, "node.example:9000");
        assert_eq!(c.max_block_lag, 3, "environment wins over file");
        let shown = c.describe();
        assert!(!shown.contains("pw") && !shown.contains("key=1"), "{shown}");
    }

    #[test]
    fn unknown_toml_key_is_rejected() {
        let mut s = src(&[("SENTINEL_BACKENDS", "http://a:1")]);
        s.add_toml("max_blok_lag = 5");
        let err = Config::from_sources(&s, false).unwrap_err();
        assert!(err.to_string().contains("unknown key `max_blok_lag`"));
    }

    #[test]
    fn defaults_are_valid_and_shown() {
        let c = Config::from_sources(&Sources::default(), true).expect("every default is valid");
        assert_eq!(c.listen.port(), 8080);
        assert_eq!(c.cache_max_bytes, 64 << 20);
        assert_eq!(c.deny_methods.join(","), DEFAULT_DENY);
        let shown = c.describe();
        assert!(shown.starts_with("PROXY_LISTEN=0.0.0.0:8080\n"), "{shown}");
        assert!(shown.contains("\nSLOTS_PER_EPOCH=32 (auto-detected from v5+ nodes)\n"), "{shown}");
        assert_eq!(shown.lines().count(), KEYS.len() - 1, "every key but PROXY_PORT is shown");
    }

    #[test]
    fn burst_defaults_to_twice_the_rate_and_never_below_it() {
        // (RATE_LIMIT_RPS, RATE_LIMIT_BURST, effective burst)
        for (rps, burst, want) in [("0", None, 0), ("10", None, 20), ("10", Some("50"), 50), ("10", Some("3"), 10)] {
            let mut s = src(&[("RATE_LIMIT_RPS", rps)]);
            if let Some(b) = burst {
                s.set("RATE_LIMIT_BURST", b);
            }
            assert_eq!(Config::from_sources(&s, true).unwrap().rate_limit_burst, want, "{rps} {burst:?}");
        }
    }

    #[test]
    fn keys_are_unique_listed_and_in_the_readme() {
        let readme = include_str!("../../README.md");
        let section = &readme[readme.find("## Configuration").expect("README has a configuration section")..];
        let section = &section[..section[3..].find("\n## ").map_or(section.len(), |i| i + 3)];
        let listed = list();
        for (i, k) in KEYS.iter().enumerate() {
            assert!(KEYS[..i].iter().all(|o| o.name != k.name), "{} declared twice", k.name);
            assert!(section.contains(&format!("`{}`", k.name)), "README's configuration table lacks {}", k.name);
            assert!(listed.contains(k.name) && listed.contains(k.doc), "{}", k.name);
        }
    }

    #[test]
    fn watched_validators_are_lowercased_and_checked() {
        let a = "0xAbCdEf0000000000000000000000000000000001";
        let c =
            Config::from_sources(&src(&[("WATCH_VALIDATORS", &format!("{a}, {}", a.to_lowercase()))]), true).unwrap();
        assert_eq!(c.watch_validators, [a.to_lowercase()]);
        let mut s = Sources::default();
        s.add_toml(&format!("watch_validators = [\"{a}\", \"0x12\", \"validator-3\"]"));
        let err = Config::from_sources(&s, true).unwrap_err();
        assert_eq!(err.0.len(), 2, "{err}");
        assert!(err.0.iter().any(|p| p.contains("WATCH_VALIDATORS entry \"0x12\"")), "{err}");
    }

    #[test]
    fn redis_urls_with_tls_and_passwords_are_accepted_and_never_shown() {
        for url in
            ["rediss://default:s3cret@redis.example.com:6380/0", "redis://:s3cret@10.0.0.7:6379/2", "rediss://r.io"]
        {
            let c = Config::from_sources(&src(&[("REDIS_URL", url)]), true).unwrap_or_else(|e| panic!("{url}: {e}"));
            let redis = c.redis_url.as_ref().unwrap();
            let (shown, debug) = (c.describe(), format!("{c:?}"));
            assert!(!shown.contains("s3cret") && !debug.contains("s3cret") && !redis.to_string().contains("s3cret"));
            assert!(shown.contains(&format!("REDIS_URL={redis}\n")), "{shown}");
            assert_eq!(redis.expose().password().is_some(), url.contains("s3cret"));
            assert!(redis::Client::open(redis.expose().as_str()).is_ok(), "{url}: the client takes it (TLS built in)");
        }
        for bad in ["http://:s3cret@h:6379", "redis://:s3cret@h:6379/db0", "redis//:s3cret@h:6379"] {
            let err = Config::from_sources(&src(&[("REDIS_URL", bad)]), true).unwrap_err().to_string();
            assert!(err.contains("REDIS_URL=") && !err.contains("s3cret"), "{err}");
        }
        let err = Config::from_sources(&src(&[("REDIS_CA_FILE", "/nonexistent/ca.pem")]), true).unwrap_err();
        assert!(err.to_string().contains("REDIS_CA_FILE: \"/nonexistent/ca.pem\": "), "{err}");
    }

    #[test]
    fn unparsable_backend_is_shown_as_given_without_secrets() {
        let err = Config::from_sources(&src(&[("SENTINEL_BACKENDS", "http://u:hunter2@node-1:99999/?key=abc")]), false)
            .unwrap_err()
            .to_string();
        assert!(err.contains("node-1:99999"), "{err}");
        assert!(!err.contains("hunter2") && !err.contains("abc") && !err.contains("unparsable"), "{err}");
    }

    /// Found by the `config` fuzz target: `http:/s=1` parsed as host `s=1`, whose derived name
    /// printed as `s=1=http://s=1/`, which does not load back.
    #[test]
    fn a_backend_host_must_be_a_plain_host_name() {
        let err = Config::from_sources(&src(&[("SENTINEL_BACKENDS", "http:/s=1")]), false).unwrap_err();
        assert!(err.to_string().contains("expected http(s)://host"), "{err}");
        for ok in ["http://node-1.example_a:8080", "http://127.0.0.1:1", "http://[::1]:8080/rpc"] {
            assert!(Config::from_sources(&src(&[("SENTINEL_BACKENDS", ok)]), false).is_ok(), "{ok}");
        }
    }
}
