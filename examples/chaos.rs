//! `make chaos` / `make soak`: the chaos driver of `tests/chaos/` against the release gateway,
//! for a chosen time, writing its section of RELIABILITY.md.
//!
//! `cargo run --release --example chaos -- [chaos|soak] [SECONDS] [--gateway PATH] [--out FILE]`;
//! the gateway defaults to the `sentinel-proxy` binary next to `examples/`, the file to
//! `RELIABILITY.md` of the repository. Exits 1 when a read failed, a `sendTx` was duplicated or
//! the gateway died.

#[path = "../tests/chaos/mod.rs"]
mod chaos;

use std::path::PathBuf;
use std::process::Command;

use chaos::{report, run, Settings};

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    let mode = args.first().map_or("chaos", String::as_str);
    let secs: Option<u64> = args.get(1).and_then(|s| s.parse().ok());
    let settings = match mode {
        "soak" => Settings::soak(secs.unwrap_or(600)),
        _ => Settings::chaos(secs.unwrap_or(60)),
    };
    let exe = std::env::current_exe().expect("own path");
    let default_bin = exe.parent().and_then(|d| d.parent()).map(|d| d.join("sentinel-proxy")).unwrap_or_default();
    let bin = flag("--gateway").map_or(default_bin, PathBuf::from);
    let out =
        flag("--out").map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("RELIABILITY.md"), PathBuf::from);
    eprintln!("{} run of {:?} against {}", settings.label, settings.duration, bin.display());

    let outcome = run::run(&settings, &bin).await;
    let heading = if settings.label == "soak" { "Soak (`make soak`)" } else { "Chaos (`make chaos`)" };
    let when = format!("Run {} at commit {}, release build", utc_now(), commit());
    let section = report::section(&outcome, heading, &when);
    println!("{section}");
    report::update_file(&out, &section).expect("write RELIABILITY.md");
    eprintln!("wrote {}", out.display());
    let total = outcome.total();
    if total.reads_failed > 0 || outcome.txs.duplicated > 0 || !outcome.gateway_alive {
        std::process::exit(1);
    }
}

fn shell(cmd: &str, args: &[&str]) -> String {
    Command::new(cmd)
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default()
}

fn utc_now() -> String {
    shell("date", &["-u", "+%Y-%m-%d %H:%M UTC"])
}

fn commit() -> String {
    let id = shell("git", &["rev-parse", "--short", "HEAD"]);
    let dirty = !shell("git", &["status", "--porcelain", "--untracked-files=no"]).is_empty();
    format!("`{id}`{}", if dirty { " (with local changes)" } else { "" })
}
