//! `sentinel-proxy` command line: `serve` (default), `demo`, `simulate`, `config --list`.

use anyhow::Context;
use clap::{Parser, Subcommand};
use sentinel_proxy::config::{self, Config, Sources};
use sentinel_proxy::gateway;
use sentinel_proxy::reload::{SetLogLevel, Source};
use sentinel_proxy::simulator::{self, SimConfig};
use tokio_util::sync::CancellationToken;

/// mimalloc instead of glibc malloc: the request path allocates and frees small buffers on two
/// threads, where glibc spent about a tenth of the gateway's CPU (docs/perf/README.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Integrity-verifying JSON-RPC gateway and load balancer for Aztec nodes.
#[derive(Parser, Debug)]
#[command(
    version,
    about,
    after_help = "Configuration: environment variables (also read from .env, or the same keys in snake_case\n\
                  from --config FILE), e.g. SENTINEL_BACKENDS=http://node-1:8080,http://node-2:8080.\n\
                  `sentinel-proxy config --list` lists every variable with its default."
)]
struct Cli {
    /// TOML configuration file (keys are the environment variable names in snake_case).
    #[arg(long, global = true)]
    config: Option<std::path::PathBuf>,
    /// Print the effective configuration (secrets redacted) and exit.
    #[arg(long, global = true)]
    print_config: bool,
    /// Validate the configuration and exit (status 0 when valid).
    #[arg(long, global = true)]
    check_config: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run the gateway in front of SENTINEL_BACKENDS (the default).
    Serve,
    /// Run four simulated Aztec nodes and the gateway in front of them.
    Demo,
    /// Run one simulated Aztec node.
    Simulate {
        /// Listen port on --host (0 = any free port).
        #[arg(long, default_value_t = 8081)]
        port: u16,
        /// Profile: archiver, pruned, gapped, corrupted, lagging, disabled, v3, v4, v5, v6.
        #[arg(long, default_value = "archiver")]
        profile: String,
        /// Listen address (0.0.0.0 for every interface).
        #[arg(long, default_value = "127.0.0.1")]
        host: String,
        /// Override the committee size (validators per epoch; the set is twice this).
        #[arg(long)]
        committee_size: Option<u64>,
        /// Override the sentinel history depth in epochs.
        #[arg(long)]
        history_epochs: Option<u64>,
        /// Override the API version (v3, v4, v5, v6).
        #[arg(long)]
        api: Option<simulator::ApiVersion>,
    },
    /// Show the configuration keys (environment variables).
    Config {
        /// List every key with its default and a one-line description (what `config` does
        /// today, with or without this flag).
        #[arg(long)]
        list: bool,
    },
}

fn load_sources(cli: &Cli) -> anyhow::Result<Sources> {
    let _ = dotenvy::dotenv();
    read_sources(cli.config.as_deref(), &[])
}

/// The `--config` file and the environment (which wins), then `overrides` (demo mode).
fn read_sources(file: Option<&std::path::Path>, overrides: &[(String, String)]) -> anyhow::Result<Sources> {
    let mut src = Sources::default();
    if let Some(path) = file {
        let text = std::fs::read_to_string(path).with_context(|| format!("reading config file {}", path.display()))?;
        src.add_toml(&text);
    }
    src.add_env(std::env::vars());
    for (k, v) in overrides {
        src.set(k, v.clone());
    }
    Ok(src)
}

/// Where a reload reads the configuration again: the same file and environment (`.env` was
/// loaded into it at start), the same demo overrides.
fn reload_source(cli: &Cli, overrides: Vec<(String, String)>, demo: bool, log_level: Option<SetLogLevel>) -> Source {
    let file = cli.config.clone();
    let path = file.clone();
    let load = move || read_sources(path.as_deref(), &overrides).map_err(|e| format!("{e:#}"));
    Source { load: Box::new(load), demo, file, log_level }
}

/// Installs the log subscriber; returns how to change its level, unless `RUST_LOG` decides it.
fn init_tracing(config: &Config) -> Option<SetLogLevel> {
    let from_env = tracing_subscriber::EnvFilter::try_from_env("RUST_LOG").ok();
    let filter = from_env.clone().unwrap_or_else(|| gateway::log_filter(&config.log_level));
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let (subscriber, set) = gateway::reloadable_log_subscriber(config.log_format, filter, ansi, std::io::stderr);
    tracing_subscriber::util::SubscriberInitExt::init(subscriber);
    let set: SetLogLevel = Box::new(move |level| set(gateway::log_filter(level)));
    from_env.is_none().then_some(set)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async_main(cli))
}

async fn async_main(cli: Cli) -> anyhow::Result<()> {
    if let Some(Command::Config { .. }) = cli.command {
        print!("{}", config::list());
        return Ok(());
    }
    let src = load_sources(&cli)?;
    match cli.command {
        None | Some(Command::Serve) => serve(&cli, &src).await,
        Some(Command::Demo) => demo(&cli, src).await,
        Some(Command::Simulate { port, ref profile, ref host, committee_size, history_epochs, api }) => {
            let mut sim = SimConfig::profile(profile).with_context(|| {
                format!("unknown profile {profile:?}: expected archiver, pruned, gapped, corrupted, lagging, disabled, v3, v4, v5 or v6")
            })?;
            sim.committee_size = committee_size.unwrap_or(sim.committee_size);
            sim.history_epochs = history_epochs.unwrap_or(sim.history_epochs);
            sim.version = api.unwrap_or(sim.version);
            simulate(host, port, profile, sim).await
        }
        Some(Command::Config { .. }) => unreachable!("answered above"),
    }
}

fn validated(cli: &Cli, src: &Sources, demo: bool) -> anyhow::Result<Option<Config>> {
    let config = match Config::from_sources(src, demo) {
        Ok(c) => c,
        Err(e) => {
            eprint!("{e}");
            std::process::exit(2);
        }
    };
    if cli.print_config {
        print!("{}", config.describe());
        return Ok(None);
    }
    if cli.check_config {
        println!("configuration is valid ({} backend(s))", config.backends.len());
        return Ok(None);
    }
    Ok(Some(config))
}

async fn serve(cli: &Cli, src: &Sources) -> anyhow::Result<()> {
    let Some(config) = validated(cli, src, false)? else {
        return Ok(());
    };
    let log_level = init_tracing(&config);
    let listener = gateway::bind(config.listen).with_context(|| {
        format!("binding {} (set PROXY_PORT or PROXY_LISTEN to use another address)", config.listen)
    })?;
    tracing::info!(listen = %listener.local_addr()?, backends = config.backends.len(), "sentinel-proxy serving");
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    gateway::run_reloadable(config, listener, cancel, Some(reload_source(cli, Vec::new(), false, log_level))).await?;
    Ok(())
}

/// Starts the demo fleet, then the gateway in front of it.
async fn demo(cli: &Cli, mut src: Sources) -> anyhow::Result<()> {
    let genesis = sentinel_proxy::clock::unix_ms();
    let cancel = CancellationToken::new();
    let mut backends = Vec::new();
    for sim in simulator::demo_fleet(genesis) {
        let listener = simulator::bind(([127, 0, 0, 1], 0).into())?;
        backends.push(format!("{}=http://{}", sim.name, listener.local_addr()?));
        let c = cancel.clone();
        tokio::spawn(async move { simulator::serve(listener, sim, c).await });
    }
    let mut overrides = vec![("SENTINEL_BACKENDS".to_owned(), backends.join(","))];
    // The demo watches a few of its validators (one of them offline) unless told otherwise.
    let watch = simulator::demo_watch_validators().join(",");
    for (key, value) in [
        ("HEALTH_CHECK_INTERVAL_MS", "2000"),
        ("INTEGRITY_CHECK_INTERVAL_MS", "10000"),
        ("WATCH_VALIDATORS", watch.as_str()),
    ] {
        if std::env::var(key).is_err() {
            overrides.push((key.to_owned(), value.to_owned()));
        }
    }
    for (k, v) in &overrides {
        src.set(k, v.clone());
    }
    let Some(config) = validated(cli, &src, true)? else {
        return Ok(());
    };
    let log_level = init_tracing(&config);
    let listener = gateway::bind(config.listen)
        .with_context(|| format!("binding {} (set PROXY_PORT to use another port)", config.listen))?;
    let addr = listener.local_addr()?;
    let host = if addr.ip().is_unspecified() { "127.0.0.1".to_owned() } else { addr.ip().to_string() };
    println!("sentinel-proxy demo: 4 simulated Aztec nodes behind the gateway");
    for b in &config.backends {
        println!("  node {:<12} {}", b.name, b.url);
    }
    println!("gateway    http://{host}:{}/   (also /archiver and /pruned)", addr.port());
    println!("dashboard  http://{host}:{}/dashboard", addr.port());
    println!("health     http://{host}:{}/health", addr.port());
    println!("validators http://{host}:{}/validators   (watched: WATCH_VALIDATORS)", addr.port());
    println!(
        "try: curl -s http://{host}:{}/ -d '{{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"aztec_getBlockNumber\"}}'",
        addr.port()
    );
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    let reload = reload_source(cli, overrides, true, log_level);
    gateway::run_reloadable(config, listener, cancel, Some(reload)).await?;
    Ok(())
}

async fn simulate(host: &str, port: u16, profile: &str, mut sim: SimConfig) -> anyhow::Result<()> {
    sim.genesis_unix_ms = simulator::PROFILE_GENESIS_UNIX_MS; // separate processes share one chain clock
    let addr = tokio::net::lookup_host((host, port))
        .await
        .with_context(|| format!("resolving {host}"))?
        .next()
        .with_context(|| format!("{host} has no address"))?;
    let listener = simulator::bind(addr).with_context(|| format!("binding {host}:{port}"))?;
    println!("simulated Aztec node ({profile}) on http://{}/ — faults at /control", listener.local_addr()?);
    let cancel = CancellationToken::new();
    tokio::spawn(shutdown_on_signal(cancel.clone()));
    simulator::serve(listener, sim, cancel).await?;
    Ok(())
}

/// Cancels on SIGINT or SIGTERM.
async fn shutdown_on_signal(cancel: CancellationToken) {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).expect("signal handler");
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
    cancel.cancel();
}
