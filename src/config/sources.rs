//! Phase one of loading: every source (TOML file, environment, overrides) flattened into one
//! `KEY -> string` map, [`Sources`]; and the [`Reader`] that phase two uses to turn one key's
//! string into a typed value, recording every problem instead of stopping at the first.

use std::collections::BTreeMap;
use std::time::Duration;

use super::keys::{Key, KEYS};

/// Flattened raw values: `ENV_NAME -> (value, where it came from)`.
#[derive(Clone, Debug, Default)]
pub struct Sources {
    values: BTreeMap<String, (String, &'static str)>,
    pub(super) problems: Vec<String>,
}

fn known(name: &str) -> bool {
    KEYS.iter().any(|k| k.name == name)
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
            if !known(&env) {
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
            if known(&key) {
                self.values.insert(key, (value, "environment"));
            }
        }
    }

    /// Sets one value (used by demo mode and tests).
    pub fn set(&mut self, key: &str, value: impl Into<String>) {
        self.values.insert(key.to_owned(), (value.into(), "override"));
    }

    /// The settings every test gateway starts from: `urls` as `node-0`, `node-1`, …, listening
    /// on 127.0.0.1:0, short deadlines, and monitor intervals of an hour (tests drive the
    /// monitor by hand). Tests add or override keys with [`Sources::set`].
    pub fn for_tests(urls: &[&str]) -> Sources {
        let mut src = Sources::default();
        let list: Vec<String> = urls.iter().enumerate().map(|(i, u)| format!("node-{i}={u}")).collect();
        src.set("SENTINEL_BACKENDS", list.join(","));
        for (k, v) in [
            ("PROXY_LISTEN", "127.0.0.1:0"),
            ("REQUEST_TIMEOUT_MS", "5000"),
            ("ATTEMPT_TIMEOUT_MS", "1000"),
            ("HEALTH_CHECK_INTERVAL_MS", "3600000"),
            ("INTEGRITY_CHECK_INTERVAL_MS", "3600000"),
            ("CIRCUIT_COOLDOWN_MS", "60000"),
            ("SHUTDOWN_GRACE_MS", "1000"),
        ] {
            src.set(k, v);
        }
        src
    }

    /// The value of `key` when set and not blank.
    pub(super) fn get(&self, key: &str) -> Option<&str> {
        self.values.get(key).map(|(v, _)| v.trim()).filter(|v| !v.is_empty())
    }
}

/// Reads one key at a time (the table in `keys.rs` drives it), collecting problems.
pub(super) struct Reader<'a> {
    pub(super) src: &'a Sources,
    /// Whether an empty backend list is allowed (demo mode).
    pub(super) demo: bool,
    /// The key being read.
    pub(super) key: &'static Key,
    pub(super) problems: Vec<String>,
}

impl<'a> Reader<'a> {
    /// The key's value when set, else `None` (its default applies).
    pub(super) fn value(&self) -> Option<&'a str> {
        self.src.get(self.key.name)
    }

    /// The key's value when set, else its default from the table.
    pub(super) fn value_or_default(&self) -> &'a str {
        self.value().unwrap_or(self.key.default)
    }

    /// Records a problem with this key.
    pub(super) fn problem(&mut self, what: impl Into<String>) {
        self.problems.push(what.into());
    }

    /// An integer in `min..=max`; the table's default when unset or invalid.
    pub(super) fn int(&mut self, min: u64, max: u64) -> u64 {
        let default = self.key.default.parse().unwrap_or_else(|_| {
            self.problems
                .push(format!("{}: the built-in default {:?} is not a number", self.key.name, self.key.default));
            0
        });
        self.int_or(default, min, max)
    }

    /// An integer in `min..=max`; `default` when unset or invalid.
    pub(super) fn int_or(&mut self, default: u64, min: u64, max: u64) -> u64 {
        let name = self.key.name;
        let allowed = format!("an integer from {min} to {max}");
        let v = match self.value() {
            None => return default,
            Some(v) => v.parse().unwrap_or_else(|_| {
                self.problems.push(format!("{name}={v:?}: expected {allowed}"));
                default
            }),
        };
        if !(min..=max).contains(&v) {
            self.problems.push(format!("{name}={v}: expected {allowed}"));
            return default;
        }
        v
    }

    /// Milliseconds from `min` to one day.
    pub(super) fn millis(&mut self, min: u64) -> Duration {
        Duration::from_millis(self.int(min, 86_400_000))
    }

    /// A comma-separated list (the default when unset).
    pub(super) fn list(&self) -> Vec<String> {
        super::backends::split_list(self.value_or_default())
    }
}
