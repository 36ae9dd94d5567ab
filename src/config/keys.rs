//! The one table of configuration keys, [`KEYS`]. Each entry declares a key once: its name,
//! its default, a one-line doc, how its value is parsed into [`Config`] and how the effective
//! value is shown. Loading ([`Config::from_sources`]), `--print-config`
//! ([`Config::describe`]), `sentinel-proxy config --list` ([`super::list`]) and the check
//! that the README documents every key all read this table; there is no second list.
//!
//! Entries are read in order, so a key may use one read before it (`PROXY_LISTEN` after
//! `PROXY_PORT`, `RATE_LIMIT_BURST` after `RATE_LIMIT_RPS`, `DENY_METHODS` after
//! `ALLOW_METHODS`).

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use ipnet::IpNet;

use super::backends::{ca_file, parse_backends, redact_str, redact_url, SecretUrl};
use super::sources::Reader;
use super::{Config, LogFormat, DEFAULT_DENY};

/// One configuration key.
#[derive(Debug)]
pub struct Key {
    /// Environment variable name (the TOML key is the same in snake_case).
    pub name: &'static str,
    /// The value used when the key is unset (`""`: unset means off, none or automatic, as the
    /// doc says).
    pub default: &'static str,
    /// One line for `config --list`.
    pub doc: &'static str,
    /// Reads the key into the configuration, recording problems in the reader.
    parse: fn(&mut Reader<'_>, &mut Config),
    /// The effective value for `--print-config` (secrets redacted); `None` when another key
    /// shows it.
    show: Option<fn(&Config) -> String>,
}

impl Key {
    pub(super) fn parse(&'static self, r: &mut Reader<'_>, c: &mut Config) {
        r.key = self;
        (self.parse)(r, c);
    }

    pub(super) fn show(&self, c: &Config) -> Option<String> {
        self.show.map(|f| f(c))
    }
}

fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

fn auto(v: u64, explicit: bool) -> String {
    if explicit {
        v.to_string()
    } else {
        format!("{v} (auto-detected from v5+ nodes)")
    }
}

/// Every key the gateway understands, in the order they are read and shown.
pub static KEYS: &[Key] = &[
    Key {
        name: "PROXY_PORT",
        default: "8080",
        doc: "listen port on all interfaces (PROXY_LISTEN wins)",
        parse: |r, c| c.listen = SocketAddr::from(([0, 0, 0, 0], r.int(0, 65535) as u16)),
        show: None,
    },
    Key {
        name: "PROXY_LISTEN",
        default: "",
        doc: "full listen address, e.g. 127.0.0.1:8080 (default 0.0.0.0:PROXY_PORT)",
        parse: |r, c| {
            if let Some(v) = r.value().map(str::to_owned) {
                match v.parse() {
                    Ok(a) => c.listen = a,
                    Err(_) => r.problem(format!("PROXY_LISTEN={v:?}: expected ip:port, e.g. 0.0.0.0:8080")),
                }
            }
        },
        show: Some(|c| c.listen.to_string()),
    },
    Key {
        name: "LOG_LEVEL",
        default: "info",
        doc: "debug, info, warn or error",
        parse: |r, c| {
            c.log_level = r.value_or_default().to_ascii_lowercase();
            if !["trace", "debug", "info", "warn", "error"].contains(&c.log_level.as_str()) {
                r.problem(format!("LOG_LEVEL={:?}: expected debug, info, warn or error", c.log_level));
            }
        },
        show: Some(|c| c.log_level.clone()),
    },
    Key {
        name: "LOG_FORMAT",
        default: "pretty",
        doc: "pretty, or json for one JSON object per line (stderr)",
        parse: |r, c| {
            c.log_format = match r.value_or_default() {
                "json" => LogFormat::Json,
                "pretty" | "text" => LogFormat::Pretty,
                v => {
                    let p = format!("LOG_FORMAT={v:?}: expected json or pretty");
                    r.problem(p);
                    LogFormat::Pretty
                }
            }
        },
        show: Some(|c| format!("{:?}", c.log_format).to_lowercase()),
    },
    Key {
        name: "SENTINEL_BACKENDS",
        default: "",
        doc: "required (except demo): comma-separated node URLs; name=url gives a display name",
        parse: |r, c| {
            match r.value().map(str::to_owned) {
            Some(v) => c.backends = parse_backends(&v, &mut r.problems),
            None if r.demo => {}
            None => r.problem(
                "SENTINEL_BACKENDS is not set: give comma-separated node URLs (name=url gives a display name), or run `sentinel-proxy demo`",
            ),
        }
        },
        show: Some(|c| {
            let shown: Vec<String> = c.backends.iter().map(|b| format!("{}={}", b.name, redact_url(&b.url))).collect();
            shown.join(",")
        }),
    },
    Key {
        name: "REQUEST_TIMEOUT_MS",
        default: "30000",
        doc: "whole-request deadline, retries included; also for a client to send head and body",
        parse: |r, c| c.request_timeout = r.millis(1),
        show: Some(|c| ms(c.request_timeout)),
    },
    Key {
        name: "ATTEMPT_TIMEOUT_MS",
        default: "10000",
        doc: "deadline of one attempt on one node",
        parse: |r, c| c.attempt_timeout = r.millis(1),
        show: Some(|c| ms(c.attempt_timeout)),
    },
    Key {
        name: "HEALTH_CHECK_INTERVAL_MS",
        default: "30000",
        doc: "readiness and tip probe interval",
        parse: |r, c| c.health_interval = r.millis(10),
        show: Some(|c| ms(c.health_interval)),
    },
    Key {
        name: "INTEGRITY_CHECK_INTERVAL_MS",
        default: "60000",
        doc: "sentinel history analysis interval",
        parse: |r, c| c.integrity_interval = r.millis(10),
        show: Some(|c| ms(c.integrity_interval)),
    },
    Key {
        name: "INTEGRITY_CHECK_EPOCHS",
        default: "10",
        doc: "recent complete epochs analysed",
        parse: |r, c| c.integrity.check_epochs = r.int(1, 10_000),
        show: Some(|c| c.integrity.check_epochs.to_string()),
    },
    Key {
        name: "INTEGRITY_SCORE_THRESHOLD",
        default: "95",
        doc: "integrity score below which a node is bad",
        parse: |r, c| c.integrity.score_threshold = r.int(0, 100) as u8,
        show: Some(|c| c.integrity.score_threshold.to_string()),
    },
    Key {
        name: "SLOTS_PER_EPOCH",
        default: "32",
        doc: "slots per epoch (unset: read from v5+ nodes)",
        parse: |r, c| {
            c.epoch_params_explicit.0 = r.value().is_some();
            c.integrity.slots_per_epoch = r.int(1, 10_000);
        },
        show: Some(|c| auto(c.integrity.slots_per_epoch, c.epoch_params_explicit.0)),
    },
    Key {
        name: "EXPECTED_VALIDATORS",
        default: "24",
        doc: "committee size per epoch (unset: read from v5+ nodes)",
        parse: |r, c| {
            c.epoch_params_explicit.1 = r.value().is_some();
            c.integrity.expected_validators = r.int(1, 100_000);
        },
        show: Some(|c| auto(c.integrity.expected_validators, c.epoch_params_explicit.1)),
    },
    Key {
        name: "ARCHIVER_THRESHOLD_EPOCHS",
        default: "100",
        doc: "history depth in epochs from which a node counts as archiver",
        parse: |r, c| c.integrity.archiver_threshold_epochs = r.int(1, 10_000_000),
        show: Some(|c| c.integrity.archiver_threshold_epochs.to_string()),
    },
    Key {
        name: "MAX_BLOCK_LAG",
        default: "2",
        doc: "blocks behind the corroborated tip before a node is quarantined",
        parse: |r, c| c.max_block_lag = r.int(0, 1_000_000),
        show: Some(|c| c.max_block_lag.to_string()),
    },
    Key {
        name: "MAX_RETRIES",
        default: "2",
        doc: "extra attempts on other nodes",
        parse: |r, c| c.max_retries = r.int(0, 10) as u32,
        show: Some(|c| c.max_retries.to_string()),
    },
    Key {
        name: "CIRCUIT_FAILURES",
        default: "5",
        doc: "consecutive failures that open a node's circuit",
        parse: |r, c| c.circuit_failures = r.int(1, 1_000_000) as u32,
        show: Some(|c| c.circuit_failures.to_string()),
    },
    Key {
        name: "CIRCUIT_COOLDOWN_MS",
        default: "10000",
        doc: "time an open circuit waits before one probe request",
        parse: |r, c| c.circuit_cooldown = r.millis(1),
        show: Some(|c| ms(c.circuit_cooldown)),
    },
    Key {
        name: "CACHE_MAX_BYTES",
        default: "67108864",
        doc: "in-memory cache budget in bytes (0 disables)",
        parse: |r, c| c.cache_max_bytes = r.int(0, 1 << 40),
        show: Some(|c| c.cache_max_bytes.to_string()),
    },
    Key {
        name: "CACHE_VOLATILE_MS",
        default: "1000",
        doc: "longest life of a cached tip or block number (0 disables)",
        parse: |r, c| c.cache_volatile = r.millis(0),
        show: Some(|c| ms(c.cache_volatile)),
    },
    Key {
        name: "REDIS_URL",
        default: "",
        doc: "Redis shared by replicas (cache tier 2, rate limits, one analysis per node), e.g. redis://127.0.0.1:6379/0 or rediss://:password@host:6380",
        parse: |r, c| {
            let Some(v) = r.value().map(str::to_owned) else { return };
            match SecretUrl::redis(&v) {
                Ok(u) => c.redis_url = Some(u),
                Err(why) => r.problem(format!("REDIS_URL={:?}: {why}", redact_str(&v))),
            }
        },
        show: Some(|c| c.redis_url.as_ref().map(ToString::to_string).unwrap_or_default()),
    },
    Key {
        name: "REDIS_CA_FILE",
        default: "",
        doc: "PEM file of the CA certificates a rediss:// server is verified with, instead of the public roots",
        parse: |r, c| match r.value().map(ca_file) {
            Some(Ok(path)) => c.redis_ca_file = Some(path),
            Some(Err(why)) => r.problem(format!("REDIS_CA_FILE: {why}")),
            None => {}
        },
        show: Some(|c| c.redis_ca_file.as_ref().map(|p| p.display().to_string()).unwrap_or_default()),
    },
    Key {
        name: "RATE_LIMIT_RPS",
        default: "0",
        doc: "per-client requests per second (0 = off; fleet-wide with REDIS_URL)",
        parse: |r, c| c.rate_limit_rps = r.int(0, 10_000_000) as u32,
        show: Some(|c| c.rate_limit_rps.to_string()),
    },
    Key {
        name: "RATE_LIMIT_BURST",
        default: "",
        doc: "per-client burst (unset: 2 × RATE_LIMIT_RPS; never below it)",
        parse: |r, c| {
            let burst = r.int_or(u64::from(c.rate_limit_rps) * 2, 0, 20_000_000) as u32;
            c.rate_limit_burst = burst.max(c.rate_limit_rps);
        },
        show: Some(|c| c.rate_limit_burst.to_string()),
    },
    Key {
        name: "RATE_LIMIT_IPV6_PREFIX",
        default: "64",
        doc: "IPv6 clients share one bucket per network of this prefix length (128 = per address)",
        parse: |r, c| c.rate_limit_ipv6_prefix = r.int(1, 128) as u8,
        show: Some(|c| c.rate_limit_ipv6_prefix.to_string()),
    },
    Key {
        name: "MAX_CONCURRENT_REQUESTS",
        default: "10000",
        doc: "request weight in progress before the gateway answers 429 (a batch weighs the sum of its items' costs)",
        parse: |r, c| c.max_concurrent_requests = r.int(1, 10_000_000) as usize,
        show: Some(|c| c.max_concurrent_requests.to_string()),
    },
    Key {
        name: "MAX_CONNECTIONS",
        default: "10000",
        doc: "open client connections; past it the oldest silent one, else the new one, is closed (keep below ulimit -n)",
        parse: |r, c| c.max_connections = r.int(1, 10_000_000) as usize,
        show: Some(|c| c.max_connections.to_string()),
    },
    Key {
        name: "TRUSTED_PROXIES",
        default: "",
        doc: "CIDRs whose X-Forwarded-For is believed",
        parse: |r, c| {
            for entry in r.list() {
                let parsed = entry.parse::<IpNet>().or_else(|_| entry.parse::<IpAddr>().map(IpNet::from));
                match parsed {
                    Ok(net) => c.trusted_proxies.push(net),
                    Err(_) => r.problem(format!("TRUSTED_PROXIES entry {entry:?}: expected a CIDR such as 10.0.0.0/8")),
                }
            }
        },
        show: Some(|c| c.trusted_proxies.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")),
    },
    Key {
        name: "MAX_BODY_BYTES",
        default: "10485760",
        doc: "request body limit in bytes (proofs in sendTx are large)",
        parse: |r, c| c.max_body_bytes = r.int(1024, 1 << 30) as usize,
        show: Some(|c| c.max_body_bytes.to_string()),
    },
    Key {
        name: "MAX_RESPONSE_BYTES",
        default: "67108864",
        doc: "largest node answer read for a client, in bytes (larger: next node, then 502)",
        parse: |r, c| c.max_response_bytes = r.int(1024, 1 << 34) as usize,
        show: Some(|c| c.max_response_bytes.to_string()),
    },
    Key {
        name: "MAX_BUFFERED_BYTES",
        default: "268435456",
        doc: "node answer bytes held at once over all requests (full: wait up to 1 s, then 503)",
        parse: |r, c| {
            c.max_buffered_bytes = r.int(1024, 1 << 40) as usize;
            if c.max_buffered_bytes < c.max_response_bytes {
                let p = format!(
                    "MAX_BUFFERED_BYTES={} is below MAX_RESPONSE_BYTES={}: one answer could never fit",
                    c.max_buffered_bytes, c.max_response_bytes
                );
                r.problem(p);
            }
        },
        show: Some(|c| c.max_buffered_bytes.to_string()),
    },
    Key {
        name: "MAX_BATCH",
        default: "100",
        doc: "JSON-RPC batch size limit",
        parse: |r, c| c.max_batch = r.int(1, 100_000) as usize,
        show: Some(|c| c.max_batch.to_string()),
    },
    Key {
        name: "ALLOW_METHODS",
        default: "",
        doc: "allowed method globs (unset: the public method table)",
        parse: |r, c| c.allow_methods = r.list(),
        show: Some(
            |c| {
                if c.allow_methods.is_empty() {
                    "(public method table)".into()
                } else {
                    c.allow_methods.join(",")
                }
            },
        ),
    },
    Key {
        name: "DENY_METHODS",
        default: DEFAULT_DENY,
        doc: "denied method globs; deny wins over allow",
        parse: |r, c| {
            c.deny_methods = r.list();
            for g in c.allow_methods.iter().chain(&c.deny_methods) {
                if globset::Glob::new(g).is_err() {
                    r.problem(format!("method glob {g:?}: not a valid glob"));
                }
            }
        },
        show: Some(|c| c.deny_methods.join(",")),
    },
    Key {
        name: "WATCH_VALIDATORS",
        default: "",
        doc: "comma-separated validator addresses (0x + 40 hex) whose duties GET /validators reports",
        parse: |r, c| {
            for entry in r.list() {
                if crate::validators::valid_address(&entry) {
                    let address = entry.to_ascii_lowercase();
                    if !c.watch_validators.contains(&address) {
                        c.watch_validators.push(address);
                    }
                } else {
                    r.problem(format!("WATCH_VALIDATORS entry {entry:?}: expected 0x and 40 hex digits"));
                }
            }
        },
        show: Some(|c| c.watch_validators.join(",")),
    },
    Key {
        name: "ADMIN_TOKEN",
        default: "",
        doc: "when set, /health details and /metrics need Authorization: Bearer <token>",
        parse: |r, c| c.admin_token = r.value().map(str::to_owned),
        show: Some(|c| c.admin_token.as_ref().map(|_| "<redacted>".to_owned()).unwrap_or_default()),
    },
    Key {
        name: "EXPECTED_ROLLUP_VERSION",
        default: "",
        doc: "quarantine nodes on another rollup (unset: the majority decides)",
        parse: |r, c| {
            let Some(v) = r.value().map(str::to_owned) else { return };
            match v.parse() {
                Ok(n) => c.expected_rollup_version = Some(n),
                Err(_) => r.problem(format!("EXPECTED_ROLLUP_VERSION={v:?}: expected a decimal rollup version")),
            }
        },
        show: Some(|c| c.expected_rollup_version.map(|v| v.to_string()).unwrap_or_default()),
    },
    Key {
        name: "MAX_STATS_BYTES",
        default: "268435456",
        doc: "largest validator-stats answer read, in bytes",
        parse: |r, c| c.max_stats_bytes = r.int(1024, 1 << 34) as usize,
        show: Some(|c| c.max_stats_bytes.to_string()),
    },
    Key {
        name: "SHUTDOWN_GRACE_MS",
        default: "10000",
        doc: "on SIGTERM/SIGINT: time in-flight requests get to finish",
        parse: |r, c| c.shutdown_grace = r.millis(0),
        show: Some(|c| ms(c.shutdown_grace)),
    },
    Key {
        name: "WORKER_THREADS",
        default: "0",
        doc: "serving threads, each with its own runtime and upstream pool (0 = one per core)",
        parse: |r, c| {
            c.worker_threads = match r.int(0, 1024) as usize {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            }
        },
        show: Some(|c| c.worker_threads.to_string()),
    },
];
