//! `rateguard-report [SUMMARY_JSON]`: renders `report.html` again from a
//! run's `summary.json` (default `results/latest/summary.json`), without
//! measuring anything. Handy after changing the renderer.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
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
