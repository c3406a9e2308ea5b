//! `rateguard-report [SUMMARY_JSON]`: renders `report.html` again from a
//! run's `summary.json` (default `results/latest/summary.json`), without
//! measuring anything. Handy after changing the renderer.
//!
//! `rateguard-report bench-summary [CRITERION_DIR] [ABOUT]`: writes
//! `CRITERION_DIR/summary.html` (default `target/criterion`), one table of
//! every criterion benchmark's latest run; `just bench` runs it.

use std::fmt::Display;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Renders the lab's report again, or the criterion bench summary.
#[derive(Debug, Parser)]
#[command(
    name = "rateguard-report",
    about,
    args_conflicts_with_subcommands = true
)]
struct Cli {
    /// The run's summary.json to render report.html from (written beside it).
    #[arg(default_value = "results/latest/summary.json")]
    summary: PathBuf,
    /// Something else than re-rendering a run.
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Write CRITERION_DIR/summary.html: every criterion benchmark's latest run.
    BenchSummary {
        /// Criterion's output directory.
        #[arg(default_value = "target/criterion")]
        criterion_dir: PathBuf,
        /// A line about the machine, shown above the table.
        #[arg(default_value = "")]
        about: String,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Some(Command::BenchSummary {
            criterion_dir,
            about,
        }) => print_path(rateguard_report::bench::write_bench_summary(
            &criterion_dir,
            &about,
        )),
        None => print_path(rateguard_report::rerender(&cli.summary)),
    }
}

/// Prints the written file, or the error.
fn print_path(result: Result<PathBuf, impl Display>) -> ExitCode {
    match result {
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

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn clap_definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn a_summary_path_or_the_bench_summary_subcommand() {
        let cli = Cli::try_parse_from(["rateguard-report"]).unwrap();
        assert_eq!(cli.summary, PathBuf::from("results/latest/summary.json"));
        let cli = Cli::try_parse_from(["rateguard-report", "r/summary.json"]).unwrap();
        assert_eq!(cli.summary, PathBuf::from("r/summary.json"));
        assert!(cli.command.is_none());
        let cli =
            Cli::try_parse_from(["rateguard-report", "bench-summary", "d", "2 cores"]).unwrap();
        let Some(Command::BenchSummary {
            criterion_dir,
            about,
        }) = cli.command
        else {
            panic!("bench-summary parsed as a path");
        };
        assert_eq!(
            (criterion_dir, about.as_str()),
            (PathBuf::from("d"), "2 cores")
        );
        assert!(Cli::try_parse_from(["rateguard-report", "a.json", "b.json"]).is_err());
    }
}
