//! `just perf`: `rateguard serve` side by side with nginx `proxy_pass` and
//! the minimal reference proxies on this machine; writes
//! `results/perf-<time>.{md,json}`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context};
use clap::Parser;
use rateguard_benches::perf::case::{self, Policy, Subject, Target};
use rateguard_benches::perf::keys::KeyMix;
use rateguard_benches::perf::limits::toml_without_defaults;
use rateguard_benches::perf::report::PerfReport;
use rateguard_benches::perf::rounds::{self, Plan};
use rateguard_benches::perf::topology::{Binaries, Topology};
use rateguard_benches::perf::wrk::{self, Load};
use rateguard_benches::perf::{idle, key_memory, Case};
use rateguard_contract::StoreKind;
use rateguard_testkit::machine;

/// Measure rateguard serve against nginx proxy_pass and two minimal
/// reference proxies with wrk, in alternating rounds.
#[derive(Debug, Parser)]
#[command(name = "rateguard-perf")]
struct Args {
    /// The rateguard binary to measure.
    #[arg(long, default_value = "target/release/rateguard")]
    rateguard: PathBuf,
    /// Another rateguard binary (e.g. built from main) measured in the same
    /// rounds, every gateway case once more: a before/after in one run.
    #[arg(long)]
    baseline: Option<PathBuf>,
    /// The minimal reference proxies (benches/refproxy).
    #[arg(long, default_value = "target/release/rateguard-refproxy")]
    refproxy: PathBuf,
    /// Cases to measure, comma-separated: ids (`redis-lua-zipf`) or groups
    /// (`all`, `floors`, `single`, `mixes`, `hot`). nginx `proxy_pass` and
    /// each gateway case's reference proxy are always added.
    #[arg(long, value_delimiter = ',', default_value = "all", value_parser = Case::select)]
    cases: Vec<Vec<Case>>,
    /// Rounds over every case (0: none, e.g. with --idle).
    #[arg(long, default_value_t = 3)]
    rounds: u32,
    /// Seconds of each measured wrk run.
    #[arg(long, default_value_t = 5)]
    seconds: u64,
    /// Seconds of the unmeasured warm-up run per case.
    #[arg(long, default_value_t = 1)]
    warmup: u64,
    /// wrk threads.
    #[arg(long, default_value_t = 2)]
    threads: u32,
    /// wrk connections.
    #[arg(long, default_value_t = 64)]
    connections: u32,
    /// Also measure RSS of the memory gateway and nginx under N idle
    /// keep-alive connections (needs `ulimit -n` above N).
    #[arg(long, default_value_t = 0)]
    idle: usize,
    /// Where to write perf-<time>.{md,json}.
    #[arg(long, default_value = "results")]
    out: PathBuf,
    /// Print this case's gateway config (TOML) and exit, with the upstream
    /// and store URLs given (for profiling one gateway by hand:
    /// benches/callgrind.sh).
    #[arg(long, value_name = "CASE")]
    print_config: Option<Case>,
    /// The upstream URL `--print-config` writes.
    #[arg(long, default_value = "http://127.0.0.1:8081")]
    upstream: String,
    /// A store URL `--print-config` writes (repeat for a cluster).
    #[arg(long)]
    store_url: Vec<String>,
}

fn main() -> anyhow::Result<()> {
    let mut args = Args::parse();
    if let Some(case) = args.print_config {
        let config = case
            .gateway_config(&args.upstream, &args.store_url)
            .with_context(|| format!("{case} runs no gateway"))?;
        print!("{}", toml_without_defaults(&config));
        return Ok(());
    }
    // Absolute: the testkit starts each gateway in a temp dir of its own.
    args.rateguard = std::fs::canonicalize(&args.rateguard).with_context(|| {
        format!(
            "{} not found; build it first: cargo build --release -p rateguard",
            args.rateguard.display()
        )
    })?;
    if let Some(baseline) = &args.baseline {
        let found = std::fs::canonicalize(baseline);
        args.baseline = Some(found.with_context(|| format!("{} not found", baseline.display()))?);
    }
    let selected: Vec<Case> = args.cases.concat();
    let started = chrono::Local::now().format("%Y%m%d-%H%M%S").to_string();
    let plan = Plan {
        cases: if args.rounds == 0 {
            Vec::new()
        } else {
            case::with_floors(&selected)
        },
        rounds: args.rounds,
        load: Load {
            threads: args.threads,
            connections: args.connections,
            duration: Duration::from_secs(args.seconds),
        },
        warmup: Duration::from_secs(args.warmup),
    };
    let memory = Case::gateway(StoreKind::Memory, Policy::Allow, KeyMix::PerThread);
    let idle_cases = [memory, Case::NGINX_PROXY];
    let mut running = plan.cases.clone();
    if args.idle > 0 {
        for case in idle_cases {
            if !running.contains(&case) {
                running.push(case);
            }
        }
    }
    if running
        .iter()
        .any(|c| matches!(c.target, Target::Reference(_)))
    {
        args.refproxy = std::fs::canonicalize(&args.refproxy).with_context(|| {
            format!(
                "{} not found; build it first: cargo build --release -p rateguard-refproxy",
                args.refproxy.display()
            )
        })?;
    }
    let mut versions = machine::versions();
    versions.other.insert("wrk".into(), wrk::version());
    let load_before = load_average();
    eprintln!("Starting {} ...", list(&running));
    let binaries = Binaries {
        rateguard: &args.rateguard,
        baseline: args.baseline.as_deref(),
        refproxy: &args.refproxy,
    };
    let topology = Topology::start(binaries, &running).context("starting the processes")?;
    let scripts = tempfile::tempdir()?;
    let script = scripts.path().join("rateguard-perf.lua");
    std::fs::write(&script, wrk::SCRIPT)?;
    let rss_at_start = key_memory::at_start(&topology, &topology.subjects(&plan.cases));
    let runs = rounds::run(&topology, &script, &plan, |run| {
        eprintln!(
            "round {} {:<38} {:>9.0} req/s  p99 {:>6.2} ms  {:>5.1} CPU µs/req  {:.3} cs/req ({:.3} voluntary)",
            run.round,
            run.subject.to_string(),
            run.wrk.rps(),
            run.wrk.p99_us as f64 / 1000.0,
            run.cpu_us_per_req,
            run.context_switches_per_req,
            run.voluntary_switches_per_req,
        );
    })?;
    let mut idle_figures = Vec::new();
    if args.idle > 0 {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        for case in idle_cases {
            let subject = Subject::current(case);
            let addr = topology.addr(subject).context("idle target not running")?;
            let figures = rt.block_on(idle::measure(
                &case.to_string(),
                addr,
                &topology.target_pids(subject),
                args.idle,
            ))?;
            eprintln!(
                "idle {case}: {:.1} KiB per connection",
                figures.kib_per_connection()
            );
            idle_figures.push(figures);
        }
    }
    drop(topology);
    let report = PerfReport {
        started,
        machine: machine::machine(),
        versions,
        commit: machine::git_commit(),
        load_average: [load_before, load_average()],
        cases: rounds::summarize(&runs),
        key_memory: key_memory::summarize(&runs, &rss_at_start),
        rss_at_start,
        plan,
        runs,
        idle: idle_figures,
    };
    let [json, md] = report.write(&args.out)?;
    println!("{}", report.markdown());
    eprintln!("Wrote {} and {}.", md.display(), json.display());
    if report
        .cases
        .iter()
        .any(|c| c.subject.case.must_allow() && !c.all_allowed)
    {
        bail!("an allow case had responses of 400 or more, or socket errors");
    }
    Ok(())
}

fn list(cases: &[Case]) -> String {
    cases
        .iter()
        .map(Case::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .unwrap_or_default()
        .split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}
