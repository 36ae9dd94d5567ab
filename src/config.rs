//! Configuration: environment variables (the Go prototype's names), an optional `.env`, and an
//! optional TOML file with the same keys in snake_case.
//!
//! Loading is two-phase, as in linkerd's `parse_config`: every source is first flattened into a
//! `key -> string` map ([`Sources`]), then [`Config::from_sources`] validates every key and
//! reports **all** problems at once ([`ConfigError`]), each naming the variable, its value and
//! what is allowed. Precedence: environment over TOML file over defaults.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;
use std::time::Duration;

use ipnet::IpNet;
use url::Url;

use crate::integrity::IntegrityParams;

/// Every key the gateway understands, as (ENV_NAME, default shown in `--print-config`).
pub const KEYS: &[(&str, &str)] = &[
    ("PROXY_PORT", "8080"),
    ("PROXY_LISTEN", ""),
    ("LOG_LEVEL", "info"),
    ("LOG_FORMAT", "pretty"),
    ("SENTINEL_BACKENDS", ""),
    ("REQUEST_TIMEOUT_MS", "30000"),
    ("ATTEMPT_TIMEOUT_MS", "10000"),
    ("HEALTH_CHECK_INTERVAL_MS", "30000"),
    ("INTEGRITY_CHECK_INTERVAL_MS", "60000"),
    ("INTEGRITY_CHECK_EPOCHS", "10"),
    ("INTEGRITY_SCORE_THRESHOLD", "95"),
    ("SLOTS_PER_EPOCH", "32"),
    ("EXPECTED_VALIDATORS", "24"),
    ("ARCHIVER_THRESHOLD_EPOCHS", "100"),
    ("MAX_BLOCK_LAG", "2"),
    ("MAX_RETRIES", "2"),
    ("CIRCUIT_FAILURES", "5"),
    ("CIRCUIT_COOLDOWN_MS", "10000"),
    ("CACHE_MAX_BYTES", "67108864"),
    ("CACHE_VOLATILE_MS", "1000"),
    ("REDIS_URL", ""),
    ("RATE_LIMIT_RPS", "0"),
    ("RATE_LIMIT_BURST", ""),
    ("MAX_CONCURRENT_REQUESTS", "10000"),
    ("TRUSTED_PROXIES", ""),
    ("MAX_BODY_BYTES", "10485760"),
    ("MAX_BATCH", "100"),
    ("ALLOW_METHODS", ""),
    ("DENY_METHODS", ""),
    ("ADMIN_TOKEN", ""),
    ("EXPECTED_ROLLUP_VERSION", ""),
    ("MAX_STATS_BYTES", "268435456"),
    ("SHUTDOWN_GRACE_MS", "10000"),
    ("WORKER_THREADS", "0"),
];

/// Methods denied unless `DENY_METHODS` says otherwise (docs/aztec-api.md#never-public).
pub const DEFAULT_DENY: &str = "*Admin_*,*Debug_*,prover_*,provingJobSource_*,bot_*,p2p_*";

/// One upstream node as configured.
#[derive(Clone, Debug)]
pub struct BackendConfig {
    /// Display name (`name=url`), else `host:port` of the URL.
    pub name: String,
    /// Full URL, possibly with credentials; never shown without [`redact_url`].
    pub url: Url,
}

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
    /// Shared cache / rate-limit tier.
    pub redis_url: Option<Url>,
    /// Per-client requests per second (0 = off).
    pub rate_limit_rps: u32,
    /// Per-client burst.
    pub rate_limit_burst: u32,
    /// Requests served at once before the gateway answers 429.
    pub max_concurrent_requests: usize,
    /// Proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: Vec<IpNet>,
    /// Request body limit.
    pub max_body_bytes: usize,
    /// JSON-RPC batch size limit.
    pub max_batch: usize,
    /// Allowed method globs (empty = the public method table).
    pub allow_methods: Vec<String>,
    /// Denied method globs (deny wins).
    pub deny_methods: Vec<String>,
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

/// Flattened raw values: `ENV_NAME -> (value, where it came from)`.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    values: BTreeMap<String, (String, &'static str)>,
    problems: Vec<String>,
}

impl Sources {
    /// Reads a TOML document (keys are the variable names in snake_case).
    pub fn add_toml(&mut self, text: &str) {
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => return self.problems.push(format!("config file: {e}")),
        };
        for (key, value) in table {
            let env = key.to_ascii_uppercase();
            if !KEYS.iter().any(|(k, _)| *k == env) {
                self.problems.push(format!("config file: unknown key `{key}`"));
                continue;
            }
            let text = match value {
                toml::Value::String(s) => s,
                toml::Value::Array(items) => items
                    .iter()
                    .map(|v| v.as_str().map_or_else(|| v.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(","),
                other => other.to_string(),
            };
            self.values.insert(env, (text, "config file"));
        }
    }

    /// Takes every known key from an environment-like iterator (environment wins over file).
    pub fn add_env(&mut self, vars: impl IntoIterator<Item = (String, String)>) {
        for (key, value) in vars {
            if KEYS.iter().any(|(k, _)| *k == key) {
                self.values.insert(key, (value, "environment"));
            }
        }
    }

    /// Sets one value (used by demo mode and tests).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_owned(), (value.into(), "override"));
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.trim()).filter(|v| !v.is_empty())
    }
}

/// Collects typed values and problems while validating.
struct Reader<'a> {
    src: &'a Sources,
    problems: Vec<String>,
}

impl Reader<'_> {
    fn parse<T: std::str::FromStr>(&mut self, key: &str, default: T, allowed: &str) -> T {
        match self.src.get(key) {
            None => default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problems.push(format!("{key}={v:?}: expected {allowed}"));
                default
            }),
        }
    }

    fn ranged(&mut self, key: &str, default: u64, min: u64, max: u64) -> u64 {
        let allowed = format!("an integer from {min} to {max}");
        let v = self.parse(key, default, &allowed);
        if !(min..=max).contains(&v) {
            self.problems.push(format!("{key}={v}: expected {allowed}"));
            return default;
        }
        v
    }

    fn millis(&mut self, key: &str, default: u64, min: u64) -> Duration {
        Duration::from_millis(self.ranged(key, default, min, 86_400_000))
    }

    fn list(&self, key: &str) -> Vec<String> {
        self.src.get(key).map_or_else(Vec::new, split_list)
    }
}

fn split_list(v: &str) -> Vec<String> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// Parses `SENTINEL_BACKENDS`: comma-separated `url` or `name=url` entries.
fn parse_backends(v: &str, problems: &mut Vec<String>) -> Vec<BackendConfig> {
    let mut out: Vec<BackendConfig> = Vec::new();
    for entry in split_list(v) {
        let (name, raw) = match entry.split_once('=') {
            Some((n, u)) if !n.contains("://") && !n.contains('/') => (Some(n.trim()), u.trim()),
            _ => (None, entry.as_str()),
        };
        let url = match Url::parse(raw) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => u,
            _ => {
                problems.push(format!(
                    "SENTINEL_BACKENDS entry {:?}: expected http(s)://host[:port][/path], optionally prefixed with name=",
                    redact_str(raw)
                ));
                continue;
            }
        };
        let name = name.map_or_else(|| default_name(&url), str::to_owned);
        if out.iter().any(|b| b.name == name) {
            problems.push(format!("SENTINEL_BACKENDS: duplicate backend name {name:?}"));
            continue;
        }
        out.push(BackendConfig { name, url });
    }
    out
}

fn default_name(url: &Url) -> String {
    let host = url.host_str().unwrap_or("backend");
    match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_owned(),
    }
}

impl Config {
    /// Validates raw values. `demo` allows an empty backend list.
    ///
    /// # Errors
    /// Every invalid value, each with the variable, its value and what is allowed.
    pub fn from_sources(src: &Sources, demo: bool) -> Result<Config, ConfigError> {
        let mut r = Reader { src, problems: src.problems.clone() };
        let port = r.ranged("PROXY_PORT", 8080, 0, 65535) as u16;
        let listen = match src.get("PROXY_LISTEN") {
            Some(v) => v.parse().unwrap_or_else(|_| {
                r.problems.push(format!("PROXY_LISTEN={v:?}: expected ip:port, e.g. 0.0.0.0:8080"));
                SocketAddr::from(([0, 0, 0, 0], port))
            }),
            None => SocketAddr::from(([0, 0, 0, 0], port)),
        };
        let log_level = src.get("LOG_LEVEL").unwrap_or("info").to_ascii_lowercase();
        if !["trace", "debug", "info", "warn", "error"].contains(&log_level.as_str()) {
            r.problems.push(format!("LOG_LEVEL={log_level:?}: expected debug, info, warn or error"));
        }
        let log_format = match src.get("LOG_FORMAT").unwrap_or("pretty") {
            "json" => LogFormat::Json,
            "pretty" | "text" => LogFormat::Pretty,
            v => {
                r.problems.push(format!("LOG_FORMAT={v:?}: expected json or pretty"));
                LogFormat::Pretty
            }
        };
        let backends = match src.get("SENTINEL_BACKENDS") {
            Some(v) => parse_backends(v, &mut r.problems),
            None if demo => Vec::new(),
            None => {
                r.problems.push(
                    "SENTINEL_BACKENDS is not set: give comma-separated node URLs (name=url gives a display name), or run `sentinel-proxy demo`"
                        .to_owned(),
                );
                Vec::new()
            }
        };
        let slots_explicit = src.get("SLOTS_PER_EPOCH").is_some();
        let validators_explicit = src.get("EXPECTED_VALIDATORS").is_some();
        let integrity = IntegrityParams {
            slots_per_epoch: r.ranged("SLOTS_PER_EPOCH", 32, 1, 10_000),
            expected_validators: r.ranged("EXPECTED_VALIDATORS", 24, 1, 100_000),
            check_epochs: r.ranged("INTEGRITY_CHECK_EPOCHS", 10, 1, 10_000),
            score_threshold: r.ranged("INTEGRITY_SCORE_THRESHOLD", 95, 0, 100) as u8,
            archiver_threshold_epochs: r.ranged("ARCHIVER_THRESHOLD_EPOCHS", 100, 1, 10_000_000),
        };
        let rps = r.ranged("RATE_LIMIT_RPS", 0, 0, 10_000_000) as u32;
        let burst = r.ranged("RATE_LIMIT_BURST", u64::from(rps) * 2, 0, 20_000_000) as u32;
        let redis_url = src.get("REDIS_URL").and_then(|v| match Url::parse(v) {
            Ok(u) if matches!(u.scheme(), "redis" | "rediss" | "redis+unix") => Some(u),
            _ => {
                r.problems.push(format!("REDIS_URL={:?}: expected redis://host:port[/db]", redact_str(v)));
                None
            }
        });
        let trusted_proxies = r
            .list("TRUSTED_PROXIES")
            .into_iter()
            .filter_map(|c| {
                let parsed = c.parse::<IpNet>().or_else(|_| c.parse::<std::net::IpAddr>().map(IpNet::from));
                parsed
                    .map_err(|_| {
                        r.problems.push(format!("TRUSTED_PROXIES entry {c:?}: expected a CIDR such as 10.0.0.0/8"))
                    })
                    .ok()
            })
            .collect();
        let allow_methods = r.list("ALLOW_METHODS");
        let deny_methods = match src.get("DENY_METHODS") {
            Some(v) => split_list(v),
            None => split_list(DEFAULT_DENY),
        };
        for g in allow_methods.iter().chain(&deny_methods) {
            if globset::Glob::new(g).is_err() {
                r.problems.push(format!("method glob {g:?}: not a valid glob"));
            }
        }
        let expected_rollup_version = src.get("EXPECTED_ROLLUP_VERSION").and_then(|v| {
            v.parse()
                .map_err(|_| {
                    r.problems.push(format!("EXPECTED_ROLLUP_VERSION={v:?}: expected a decimal rollup version"))
                })
                .ok()
        });
        let cfg = Config {
            listen,
            log_level,
            log_format,
            backends,
            request_timeout: r.millis("REQUEST_TIMEOUT_MS", 30_000, 1),
            attempt_timeout: r.millis("ATTEMPT_TIMEOUT_MS", 10_000, 1),
            health_interval: r.millis("HEALTH_CHECK_INTERVAL_MS", 30_000, 10),
            integrity_interval: r.millis("INTEGRITY_CHECK_INTERVAL_MS", 60_000, 10),
            integrity,
            epoch_params_explicit: (slots_explicit, validators_explicit),
            max_block_lag: r.ranged("MAX_BLOCK_LAG", 2, 0, 1_000_000),
            max_retries: r.ranged("MAX_RETRIES", 2, 0, 10) as u32,
            circuit_failures: r.ranged("CIRCUIT_FAILURES", 5, 1, 1_000_000) as u32,
            circuit_cooldown: r.millis("CIRCUIT_COOLDOWN_MS", 10_000, 1),
            cache_max_bytes: r.ranged("CACHE_MAX_BYTES", 64 << 20, 0, 1 << 40),
            cache_volatile: r.millis("CACHE_VOLATILE_MS", 1000, 0),
            redis_url,
            rate_limit_rps: rps,
            rate_limit_burst: burst.max(rps),
            max_concurrent_requests: r.ranged("MAX_CONCURRENT_REQUESTS", 10_000, 1, 10_000_000) as usize,
            trusted_proxies,
            max_body_bytes: r.ranged("MAX_BODY_BYTES", 10 << 20, 1024, 1 << 30) as usize,
            max_batch: r.ranged("MAX_BATCH", 100, 1, 100_000) as usize,
            allow_methods,
            deny_methods,
            admin_token: src.get("ADMIN_TOKEN").map(str::to_owned),
            expected_rollup_version,
            max_stats_bytes: r.ranged("MAX_STATS_BYTES", 256 << 20, 1024, 1 << 34) as usize,
            shutdown_grace: r.millis("SHUTDOWN_GRACE_MS", 10_000, 0),
            worker_threads: match r.ranged("WORKER_THREADS", 0, 0, 1024) as usize {
                0 => std::thread::available_parallelism().map_or(1, usize::from),
                n => n,
            },
        };
        if r.problems.is_empty() {
            Ok(cfg)
        } else {
            Err(ConfigError(r.problems))
        }
    }

    /// A configuration for tests: the given backends, tiny intervals, listening on port 0.
    pub fn for_tests(urls: &[&str]) -> Config {
        let mut src = Sources::default();
        let list: Vec<String> = urls.iter().enumerate().map(|(i, u)| format!("node-{i}={u}")).collect();
        src.set("SENTINEL_BACKENDS", list.join(","));
        src.set("PROXY_LISTEN", "127.0.0.1:0");
        src.set("REQUEST_TIMEOUT_MS", "3000");
        src.set("ATTEMPT_TIMEOUT_MS", "1000");
        src.set("HEALTH_CHECK_INTERVAL_MS", "3600000");
        src.set("INTEGRITY_CHECK_INTERVAL_MS", "3600000");
        src.set("CIRCUIT_COOLDOWN_MS", "60000");
        src.set("SHUTDOWN_GRACE_MS", "1000");
        Config::from_sources(&src, true).expect("test config is valid")
    }

    /// The effective configuration as `KEY=value` lines, secrets redacted.
    pub fn describe(&self) -> String {
        let backends: Vec<String> =
            self.backends.iter().map(|b| format!("{}={}", b.name, redact_url(&b.url))).collect();
        let ms = |d: Duration| d.as_millis().to_string();
        let p = &self.integrity;
        let lines = [
            ("PROXY_LISTEN", self.listen.to_string()),
            ("LOG_LEVEL", self.log_level.clone()),
            ("LOG_FORMAT", format!("{:?}", self.log_format).to_lowercase()),
            ("SENTINEL_BACKENDS", backends.join(",")),
            ("REQUEST_TIMEOUT_MS", ms(self.request_timeout)),
            ("ATTEMPT_TIMEOUT_MS", ms(self.attempt_timeout)),
            ("HEALTH_CHECK_INTERVAL_MS", ms(self.health_interval)),
            ("INTEGRITY_CHECK_INTERVAL_MS", ms(self.integrity_interval)),
            ("INTEGRITY_CHECK_EPOCHS", p.check_epochs.to_string()),
            ("INTEGRITY_SCORE_THRESHOLD", p.score_threshold.to_string()),
            ("SLOTS_PER_EPOCH", auto(p.slots_per_epoch, self.epoch_params_explicit.0)),
            ("EXPECTED_VALIDATORS", auto(p.expected_validators, self.epoch_params_explicit.1)),
            ("ARCHIVER_THRESHOLD_EPOCHS", p.archiver_threshold_epochs.to_string()),
            ("MAX_BLOCK_LAG", self.max_block_lag.to_string()),
            ("MAX_RETRIES", self.max_retries.to_string()),
            ("CIRCUIT_FAILURES", self.circuit_failures.to_string()),
            ("CIRCUIT_COOLDOWN_MS", ms(self.circuit_cooldown)),
            ("CACHE_MAX_BYTES", self.cache_max_bytes.to_string()),
            ("CACHE_VOLATILE_MS", ms(self.cache_volatile)),
            ("REDIS_URL", self.redis_url.as_ref().map(redact_url).unwrap_or_default()),
            ("RATE_LIMIT_RPS", self.rate_limit_rps.to_string()),
            ("RATE_LIMIT_BURST", self.rate_limit_burst.to_string()),
            ("MAX_CONCURRENT_REQUESTS", self.max_concurrent_requests.to_string()),
            ("TRUSTED_PROXIES", join(&self.trusted_proxies)),
            ("MAX_BODY_BYTES", self.max_body_bytes.to_string()),
            ("MAX_BATCH", self.max_batch.to_string()),
            (
                "ALLOW_METHODS",
                if self.allow_methods.is_empty() {
                    "(public method table)".into()
                } else {
                    self.allow_methods.join(",")
                },
            ),
            ("DENY_METHODS", self.deny_methods.join(",")),
            ("ADMIN_TOKEN", self.admin_token.as_ref().map(|_| "<redacted>".to_owned()).unwrap_or_default()),
            ("EXPECTED_ROLLUP_VERSION", self.expected_rollup_version.map(|v| v.to_string()).unwrap_or_default()),
            ("MAX_STATS_BYTES", self.max_stats_bytes.to_string()),
            ("SHUTDOWN_GRACE_MS", ms(self.shutdown_grace)),
            ("WORKER_THREADS", self.worker_threads.to_string()),
        ];
        lines.iter().map(|(k, v)| format!("{k}={v}\n")).collect()
    }
}

fn auto(v: u64, explicit: bool) -> String {
    if explicit {
        v.to_string()
    } else {
        format!("{v} (auto-detected from v5+ nodes)")
    }
}

fn join(items: &[IpNet]) -> String {
    items.iter().map(ToString::to_string).collect::<Vec<_>>().join(",")
}

/// A URL safe to show: no userinfo, no query string (API keys live there), no fragment.
pub fn redact_url(url: &Url) -> String {
    let mut u = url.clone();
    let had_secret = !u.username().is_empty() || u.password().is_some() || u.query().is_some();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    let mut s = u.to_string();
    if had_secret {
        s.push_str(" (credentials redacted)");
    }
    s
}

/// Redacts a URL given as text, even when it does not parse.
pub fn redact_str(raw: &str) -> String {
    match Url::parse(raw) {
        Ok(u) => redact_url(&u),
        Err(_) => "<unparsable url>".to_owned(),
    }
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
    fn redaction_removes_userinfo_and_query() {
        let u = Url::parse("https://user:secret@rpc.example/path?apikey=abc").unwrap();
        let r = redact_url(&u);
        assert!(!r.contains("secret") && !r.contains("abc") && !r.contains("user"), "{r}");
    }
}
