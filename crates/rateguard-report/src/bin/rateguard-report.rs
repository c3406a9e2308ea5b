//! `rateguard-report [SUMMARY_JSON]`: renders `report.html` again from a
//! run's `summary.json` (default `results/latest/summary.json`), without
//! measuring anything. Handy after changing the renderer.
//!
//! `rateguard-report bench-summary [CRITERION_DIR] [ABOUT]`: writes
//! `CRITERION_DIR/summary.html` (default `target/criterion`), one table of
//! every criterion benchmark's latest run; `just bench` runs it.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    if std::env::args().nth(1).as_deref() == Some("bench-summary") {
        return bench_summary();
    }
    let mut args = std::env::args_os().skip(1);
    let path = args.next().map_or_else(
        || PathBuf::from("results/latest/summary.json"),
        PathBuf::from,
    );
    if path == *"--help" || path == *"-h" || args.next().is_some() {
        eprintln!("usage: rateguard-report [SUMMARY_JSON]  (default results/latest/summary.json)");
        return ExitCode::from(2);
    }
    match rateguard_report::rerender(&path) {
        Ok(report) => {
            println!("{}", report.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn bench_summary() -> ExitCode {
    let mut args = std::env::args().skip(2);
    let dir = PathBuf::from(args.next().unwrap_or_else(|| "target/criterion".into()));
    let about = args.next().unwrap_or_default();
    match rateguard_report::bench::write_bench_summary(&dir, &about) {
        Ok(path) => {
            println!("{}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
