//! `rateguard-lab`: the lab (`run`, behind `just loadtest`), the demo
//! topology kept up until Ctrl-C (`up`, behind `just demo`) and the two
//! quick checks against a running gateway (`burst URL`, `distribution URL`).

use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::builder::{PossibleValuesParser, TypedValueParser};
use clap::{Args, Parser, Subcommand};
use rateguard_contract::{OnError, StoreKind};
use rateguard_lab::demo::{self, DemoOptions};
use rateguard_lab::{check, progress, LabOptions};
use rateguard_lab_model::{Frontend, KeyMix};
use rateguard_loadtests::{Params, ScenarioId};

/// The RateGuard lab: measure every bucket store behind nginx and write an HTML report.
#[derive(Debug, Parser)]
#[command(name = "rateguard-lab", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Bring up the topology, run the scenarios for every store, write the report.
    Run(Box<RunArgs>),
    /// Bring up nginx over N gateway replicas sharing one store, print the
    /// URLs, and keep it up until Ctrl-C/SIGTERM.
    Up(UpArgs),
    /// Send N requests at once with one API key; show who allowed/throttled each.
    Burst {
        /// Gateway (or nginx) URL, e.g. http://127.0.0.1:8080/api/data
        url: String,
        /// Requests to send at once.
        #[arg(long, short = 'n', default_value_t = 50)]
        requests: usize,
        /// API key (bucket identity) to send.
        #[arg(long, default_value = "burst-check")]
        api_key: String,
    },
    /// Send N sequential requests; show which replica and backend answered.
    Distribution {
        /// Gateway (or nginx) URL.
        url: String,
        /// Requests to send one after another.
        #[arg(long, short = 'n', default_value_t = 12)]
        requests: usize,
        /// API key (bucket identity) to send.
        #[arg(long, default_value = "distribution-check")]
        api_key: String,
    },
}

#[derive(Debug, Args)]
struct UpArgs {
    /// The store every replica uses.
    #[arg(long, default_value_t = StoreKind::RedisLua, value_parser = value_of::<StoreKind>(&StoreKind::IDS))]
    store: StoreKind,
    /// Gateway replicas behind nginx.
    #[arg(long, default_value_t = 3)]
    replicas: u32,
    /// Mock backends behind the gateways.
    #[arg(long, default_value_t = 2)]
    backends: u32,
    /// nginx's public port on 127.0.0.1 (0: any free port).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// A gateway config (TOML) to use instead of the generated one; the lab
    /// still fills in listen ports, upstream and store kind/urls.
    #[arg(long)]
    config: Option<PathBuf>,
    /// On a store error: allow (fail open) or deny (fail closed). Default:
    /// the config file's, else allow.
    #[arg(long, value_parser = value_of::<OnError>(&OnError::IDS))]
    on_error: Option<OnError>,
    /// The generated config's store timeout, ms.
    #[arg(long, default_value_t = 50)]
    store_timeout_ms: u64,
    /// The `rateguard` binary (default: next to this one).
    #[arg(long, env = "RATEGUARD_BIN")]
    gateway_bin: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Gateway replicas behind nginx.
    #[arg(long, default_value_t = 3, env = "LAB_REPLICAS")]
    replicas: u32,
    /// Mock backends behind the gateways.
    #[arg(long, default_value_t = 2, env = "LAB_BACKENDS")]
    backends: u32,
    /// Stores to measure (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        env = "LAB_STORES",
        default_values_t = StoreKind::ALL,
        value_parser = value_of::<StoreKind>(&StoreKind::IDS)
    )]
    stores: Vec<StoreKind>,
    /// Scenarios to run (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        env = "LAB_SCENARIOS",
        default_values_t = ScenarioId::ALL,
        value_parser = value_of::<ScenarioId>(&ScenarioId::IDS)
    )]
    scenarios: Vec<ScenarioId>,
    /// Reference frontends measured after the stores (comma-separated).
    #[arg(
        long,
        value_delimiter = ',',
        env = "LAB_REFERENCES",
        default_values_t = Frontend::references().collect::<Vec<_>>(),
        value_parser = value_of::<Frontend>(&["none", "nginx-limit-req"])
    )]
    references: Vec<Frontend>,
    /// Skip the `rls` frontend (every store behind `rateguard rls`, driven
    /// over gRPC; capacity only, at the first store RTT and key mix).
    #[arg(long, env = "LAB_NO_RLS")]
    no_rls: bool,
    /// Round trips added between the gateways and Redis, ms (comma-separated):
    /// throughput and capacity run at each, the accuracy scenarios at the first.
    #[arg(long, value_delimiter = ',', env = "LAB_STORE_RTT_MS", default_values_t = [0.0, 1.0])]
    store_rtt_ms: Vec<f64>,
    /// Key mixes of throughput and capacity (comma-separated): hot (one key),
    /// zipf (s = 1.1 over 10 000 keys), uniform (100 000 keys).
    /// [default: hot,zipf; with --tiny: zipf]
    #[arg(
        long,
        value_delimiter = ',',
        env = "LAB_KEYS",
        value_parser = value_of::<KeyMix>(&KeyMix::IDS)
    )]
    keys: Option<Vec<KeyMix>>,
    /// capacity: the p99 latency bound of the SLO, ms (with ≥ 99 % 2xx).
    #[arg(long, env = "LAB_SLO_P99_MS")]
    slo_p99_ms: Option<f64>,
    /// Runs of each scenario per store (min/median/max over these).
    /// [default: 3; with --tiny: 1]
    #[arg(long, env = "LAB_REPETITIONS")]
    repetitions: Option<u32>,
    /// Runs of store-outage per store and on_error mode (at most --repetitions).
    #[arg(long, default_value_t = 2, env = "LAB_OUTAGE_REPETITIONS")]
    outage_repetitions: u32,
    /// Duration of the sustained scenario, seconds.
    #[arg(long, env = "LAB_DURATION")]
    duration: Option<u64>,
    /// Throughput scenario arrival rates, req/s (comma-separated) instead of
    /// 25/50/75 % of the slowest store's capacity.
    #[arg(long, value_delimiter = ',', env = "LAB_RATES")]
    rates: Option<Vec<u32>>,
    /// How long each throughput rate runs, ms.
    #[arg(long, env = "LAB_RATE_STEP_MS")]
    rate_step_ms: Option<u64>,
    /// store-outage phases in seconds: before the kill, down, after the restart.
    #[arg(long, value_delimiter = ',', env = "LAB_OUTAGE")]
    outage: Option<Vec<u64>>,
    /// store-outage: the gateways' on_error modes (comma-separated), each
    /// run on every Redis store (with --tiny: one per store, in turn).
    #[arg(
        long,
        value_delimiter = ',',
        env = "LAB_ON_ERROR",
        default_values_t = OnError::ALL,
        value_parser = value_of::<OnError>(&OnError::IDS)
    )]
    on_error: Vec<OnError>,
    /// A tiny run (seconds per scenario) to check the setup.
    #[arg(long)]
    tiny: bool,
    /// Where `<run-id>/` and `latest` go.
    #[arg(long, default_value = "results", env = "LAB_RESULTS")]
    results: PathBuf,
    /// Run id (default: the UTC start time).
    #[arg(long)]
    run_id: Option<String>,
    /// The `rateguard` binary (default: next to this one).
    #[arg(long, env = "RATEGUARD_BIN")]
    gateway_bin: Option<PathBuf>,
    /// Criterion summary to link from the report [default:
    /// target/criterion/summary.html when `just bench` has written it].
    #[arg(long)]
    bench_summary: Option<String>,
    /// The gateways' store timeout, ms (past it a decision fails open).
    #[arg(long, default_value_t = 50, env = "LAB_STORE_TIMEOUT_MS")]
    store_timeout_ms: u64,
    /// No progress lines.
    #[arg(long, short = 'q')]
    quiet: bool,
    /// Print the plan (each deployment and the steps measured on it) and
    /// exit without starting anything.
    #[arg(long)]
    plan: bool,
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the tokio runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => run(*args).await,
            Command::Up(args) => up(args).await,
            Command::Burst {
                url,
                requests,
                api_key,
            } => {
                check::burst(&url, requests, &api_key, color()).await?;
                Ok(())
            }
            Command::Distribution {
                url,
                requests,
                api_key,
            } => {
                check::distribution(&url, requests, &api_key, color()).await?;
                Ok(())
            }
        }
    })
}

/// A flag value that is one of `ids` (listed in `--help` and in errors),
/// parsed into its contract type.
fn value_of<T>(ids: &'static [&'static str]) -> impl TypedValueParser<Value = T>
where
    T: std::str::FromStr + Clone + Send + Sync + 'static,
    T::Err: std::fmt::Debug,
{
    PossibleValuesParser::new(ids).map(|id| id.parse::<T>().expect("a listed id parses"))
}

/// Colours on a terminal, unless `NO_COLOR` is set.
fn color() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

async fn run(args: RunArgs) -> anyhow::Result<()> {
    let print_plan = args.plan;
    let opts = options(args)?;
    if print_plan {
        print!("{}", rateguard_lab::planned(&opts)?);
        return Ok(());
    }
    // Ctrl-C: installed before goose's own handler (which then stands
    // down), so it is ours that fires; dropping the lab future below drops
    // every process guard, which kills each child by pid.
    let interrupted = Arc::new(tokio::sync::Notify::new());
    let notify = interrupted.clone();
    ctrlc::set_handler(move || notify.notify_one()).context("installing the Ctrl-C handler")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let outcome = tokio::select! {
        r = rateguard_lab::run(&opts) => r?,
        _ = interrupted.notified() => bail!("interrupted: every lab process was stopped"),
        _ = term.recv() => bail!("terminated: every lab process was stopped"),
    };
    print!("{}", progress::table(&outcome.summary));
    let missing = outcome.summary.missing();
    if !missing.is_empty() {
        eprintln!("summary is incomplete: {}", missing.join("; "));
    }
    println!("report: {}", outcome.report.display());
    Ok(())
}

async fn up(a: UpArgs) -> anyhow::Result<()> {
    let mut opts = DemoOptions::new(gateway_bin(a.gateway_bin)?);
    opts.store = a.store;
    opts.replicas = a.replicas;
    opts.backends = a.backends;
    opts.port = a.port;
    opts.config = a.config;
    opts.on_error = a.on_error;
    opts.store_timeout_ms = a.store_timeout_ms.max(1);
    // Installed before anything starts, so a signal during start-up stops
    // the demo as soon as it is up (and every process with it).
    let interrupted = Arc::new(tokio::sync::Notify::new());
    let notify = interrupted.clone();
    ctrlc::set_handler(move || notify.notify_one()).context("installing the Ctrl-C handler")?;
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .context("installing the SIGTERM handler")?;
    let shutdown = async move {
        tokio::select! {
            _ = interrupted.notified() => {}
            _ = term.recv() => {}
        }
    };
    demo::up(&opts, shutdown, |d| print!("{}", d.banner())).await?;
    println!("stopped: every process was stopped by pid");
    Ok(())
}

/// `explicit`, else `rateguard` next to this binary.
fn gateway_bin(explicit: Option<PathBuf>) -> anyhow::Result<PathBuf> {
    match explicit {
        Some(p) => Ok(p),
        None => Ok(std::env::current_exe()
            .context("locating this binary")?
            .with_file_name("rateguard")),
    }
}

fn options(a: RunArgs) -> anyhow::Result<LabOptions> {
    let mut o = LabOptions::new(gateway_bin(a.gateway_bin)?);
    o.replicas = a.replicas;
    o.backends = a.backends;
    o.stores = a.stores;
    o.references = a.references;
    o.rls = !a.no_rls;
    o.scenarios = a.scenarios;
    o.store_rtts_ms = a.store_rtt_ms;
    o.keys = a.keys.unwrap_or_else(|| {
        if a.tiny {
            vec![KeyMix::Zipf]
        } else {
            vec![KeyMix::Hot, KeyMix::Zipf]
        }
    });
    o.repetitions = a.repetitions.unwrap_or(if a.tiny { 1 } else { 3 });
    o.outage_repetitions = a.outage_repetitions;
    o.on_error = a.on_error;
    o.one_mode_per_store = a.tiny;
    o.results_dir = a.results;
    o.run_id = a.run_id;
    o.bench_summary = a.bench_summary.or_else(|| {
        std::fs::canonicalize("target/criterion/summary.html")
            .ok()
            .map(|p| p.display().to_string())
    });
    o.verbose = !a.quiet;
    o.store_timeout_ms = a.store_timeout_ms.max(1);
    o.params = if a.tiny {
        Params::tiny()
    } else {
        Params::default()
    };
    if let Some(d) = a.duration {
        o.params.sustained_secs = d.max(1);
    }
    if let Some(r) = a.rates {
        o.params.throughput_rates = r;
        o.throughput_from_capacity = false;
    }
    if let Some(ms) = a.slo_p99_ms {
        if !(ms > 0.0 && ms.is_finite()) {
            bail!("--slo-p99-ms must be a positive number of ms (got {ms})");
        }
        o.params.slo.p99 = Duration::from_secs_f64(ms / 1e3);
    }
    if let Some(ms) = a.rate_step_ms {
        o.params.throughput_step = Duration::from_millis(ms.max(100));
    }
    if let Some(p) = a.outage {
        if p.len() != 3 {
            bail!("--outage needs three seconds values: before,down,after (got {p:?})");
        }
        o.params.outage_phases_secs = [p[0].max(1), p[1].max(1), p[2].max(1)];
    }
    o.validate()?;
    Ok(o)
}
