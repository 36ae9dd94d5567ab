//! Configuration parsing (`Sources::add_toml`, `Sources::add_env`, `Config::from_sources`) on
//! any text: the part before the first NUL byte is a TOML file, each line after it a
//! `KEY=value` environment variable. The first byte's low bit chooses demo mode.
//!
//! Beyond "no panic": a rejected configuration names at least one problem, each on one line;
//! an accepted one prints (`--print-config`, `Config::describe`) as `KEY=value` lines that, fed
//! back as the environment, give a valid configuration that prints the same. Values that are
//! shown redacted or that are not inputs (auto-detected values, the public method table) are
//! left out of that round trip.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sentinel_proxy::config::{Config, Sources, KEYS};

fuzz_target!(|data: &[u8]| {
    let Some((&head, rest)) = data.split_first() else { return };
    let demo = head & 1 == 1;
    let text = String::from_utf8_lossy(rest);
    let (toml, env) = text.split_once('\0').unwrap_or((&text, ""));
    let mut src = Sources::default();
    src.add_toml(toml);
    src.add_env(env.lines().filter_map(|l| l.split_once('=')).map(|(k, v)| (k.to_owned(), v.to_owned())));
    let config = match Config::from_sources(&src, demo) {
        Ok(c) => c,
        Err(e) => return assert!(!e.0.is_empty(), "rejected without a problem"),
    };
    let shown = config.describe();
    let pairs: Vec<(&str, &str)> = shown.lines().filter_map(|l| l.split_once('=')).collect();
    let one_per_line = pairs.len() == shown.lines().count()
        && pairs
            .iter()
            .enumerate()
            .all(|(i, (k, _))| KEYS.iter().any(|key| key.name == *k) && pairs[..i].iter().all(|(o, _)| o != k));
    if !one_per_line {
        return; // a value with a line break (a glob, say) does not print as one line
    }
    let kept: Vec<(String, String)> =
        pairs.iter().filter(|(k, v)| input(k, v)).map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
    let mut again = Sources::default();
    again.add_env(kept.iter().cloned());
    let reloaded = match Config::from_sources(&again, true) {
        Ok(c) => c,
        Err(e) => panic!("the printed configuration is invalid: {e}\n{shown}"),
    };
    let reshown = reloaded.describe();
    let again: Vec<(String, String)> = reshown
        .lines()
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| kept.iter().any(|(o, _)| o == k))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    assert_eq!(kept, again, "printed, loaded and printed again differs:\n{shown}");
});

/// Whether a printed `KEY=value` is an input that loads back as itself.
fn input(key: &str, value: &str) -> bool {
    !value.contains("redacted")
        && !value.contains("auto-detected")
        && !(key == "ALLOW_METHODS" && value == "(public method table)")
}
