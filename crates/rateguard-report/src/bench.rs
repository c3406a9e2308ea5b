//! Criterion's results as one table: `just bench` writes
//! `target/criterion/summary.html` with it, and the lab report links it.
//!
//! Criterion keeps each benchmark's latest run in
//! `<criterion dir>/<id...>/new/{benchmark.json, estimates.json}`; this module
//! reads those (no criterion dependency) and renders them.

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::files::ReportError;
use crate::render::esc;

/// The summary's file name inside the criterion directory.
pub const BENCH_SUMMARY_FILE: &str = "summary.html";

/// One benchmark's latest estimate, in nanoseconds per iteration.
#[derive(Debug, Clone, PartialEq)]
pub struct BenchResult {
    /// Criterion's full id, e.g. `memory_store/hot_key`.
    pub id: String,
    /// Mean time per iteration.
    pub mean_ns: f64,
    /// Lower bound of the mean's 95 % confidence interval.
    pub lower_ns: f64,
    /// Upper bound of the mean's 95 % confidence interval.
    pub upper_ns: f64,
    /// Median time per iteration.
    pub median_ns: f64,
}

#[derive(Deserialize)]
struct Benchmark {
    full_id: String,
}

#[derive(Deserialize)]
struct Estimates {
    mean: Estimate,
    median: Estimate,
}

#[derive(Deserialize)]
struct Estimate {
    point_estimate: f64,
    confidence_interval: Interval,
}

#[derive(Deserialize)]
struct Interval {
    lower_bound: f64,
    upper_bound: f64,
}

/// Every benchmark under `criterion_dir`, sorted by id.
pub fn collect(criterion_dir: &Path) -> Result<Vec<BenchResult>, ReportError> {
    let mut out = Vec::new();
    visit(criterion_dir, &mut out)?;
    out.sort_by(|a, b| a.id.cmp(&b.id));
    Ok(out)
}

fn visit(dir: &Path, out: &mut Vec<BenchResult>) -> Result<(), ReportError> {
    let entries = fs::read_dir(dir).map_err(|source| io_err(dir, source))?;
    for entry in entries {
        let path = entry.map_err(|source| io_err(dir, source))?.path();
        if !path.is_dir() {
            continue;
        }
        if path.file_name().is_some_and(|n| n == "new") && path.join("estimates.json").exists() {
            out.push(read_one(&path)?);
        } else if path
            .file_name()
            .is_none_or(|n| n != "base" && n != "change")
        {
            visit(&path, out)?;
        }
    }
    Ok(())
}

fn read_one(new_dir: &Path) -> Result<BenchResult, ReportError> {
    let bench: Benchmark = read_json(&new_dir.join("benchmark.json"))?;
    let est: Estimates = read_json(&new_dir.join("estimates.json"))?;
    Ok(BenchResult {
        id: bench.full_id,
        mean_ns: est.mean.point_estimate,
        lower_ns: est.mean.confidence_interval.lower_bound,
        upper_ns: est.mean.confidence_interval.upper_bound,
        median_ns: est.median.point_estimate,
    })
}

fn read_json<T: for<'de> Deserialize<'de>>(path: &Path) -> Result<T, ReportError> {
    let text = fs::read_to_string(path).map_err(|source| io_err(path, source))?;
    serde_json::from_str(&text).map_err(|source| ReportError::Json {
        path: path.to_owned(),
        source,
    })
}

fn io_err(path: &Path, source: std::io::Error) -> ReportError {
    ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

/// A duration in the unit that reads best: ns, µs or ms.
pub fn fmt_ns(ns: f64) -> String {
    if ns >= 1e6 {
        format!("{:.2} ms", ns / 1e6)
    } else if ns >= 1e3 {
        format!("{:.2} µs", ns / 1e3)
    } else {
        format!("{ns:.2} ns")
    }
}

/// A self-contained HTML page with one row per benchmark; `about` (the
/// machine, how it was run) is printed above the table.
pub fn render_bench_summary(results: &[BenchResult], about: &str) -> String {
    let mut out = String::from(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>RateGuard criterion benches</title>\
         <style>body{font-family:sans-serif;max-width:60em;margin:2em auto}\
         table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.3em .6em}\
         td{text-align:right}td.l,th.l{text-align:left}</style></head><body>\n\
         <h1>RateGuard criterion benches</h1>\n",
    );
    let _ = writeln!(out, "<p>{}</p>", esc(about));
    out.push_str(
        "<table>\n<tr><th class=\"l\">benchmark</th><th>mean</th>\
         <th>95 % interval of the mean</th><th>median</th></tr>\n",
    );
    for r in results {
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{} – {}</td><td>{}</td></tr>",
            esc(&r.id),
            fmt_ns(r.mean_ns),
            fmt_ns(r.lower_ns),
            fmt_ns(r.upper_ns),
            fmt_ns(r.median_ns)
        );
    }
    out.push_str("</table>\n<p>Time per iteration (one decision unless the name says otherwise), from each benchmark's latest run.</p>\n</body></html>\n");
    out
}

/// Collects `criterion_dir` and writes [`BENCH_SUMMARY_FILE`] into it.
pub fn write_bench_summary(criterion_dir: &Path, about: &str) -> Result<PathBuf, ReportError> {
    let results = collect(criterion_dir)?;
    let path = criterion_dir.join(BENCH_SUMMARY_FILE);
    fs::write(&path, render_bench_summary(&results, about))
        .map_err(|source| io_err(&path, source))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write_bench(root: &Path, id: &str, mean: f64) {
        let dir = root.join(id).join("new");
        fs::create_dir_all(&dir).unwrap();
        fs::write(
            dir.join("benchmark.json"),
            format!(r#"{{"full_id":"{id}"}}"#),
        )
        .unwrap();
        let est = |v: f64| {
            format!(
                r#"{{"point_estimate":{v},"confidence_interval":{{"lower_bound":{},"upper_bound":{}}}}}"#,
                v - 1.0,
                v + 1.0
            )
        };
        fs::write(
            dir.join("estimates.json"),
            format!(r#"{{"mean":{},"median":{}}}"#, est(mean), est(mean - 0.5)),
        )
        .unwrap();
    }

    #[test]
    fn collects_every_latest_run_and_skips_baselines() {
        let root = tempfile::tempdir().unwrap();
        write_bench(root.path(), "core/acquire", 4.0);
        write_bench(root.path(), "memory_store/hot_key", 1500.0);
        // A saved baseline must not be counted as another benchmark.
        let base = root.path().join("core/acquire/base");
        fs::create_dir_all(&base).unwrap();
        fs::copy(
            root.path().join("core/acquire/new/estimates.json"),
            base.join("estimates.json"),
        )
        .unwrap();

        let results = collect(root.path()).unwrap();
        let ids: Vec<_> = results.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["core/acquire", "memory_store/hot_key"]);
        assert_eq!(results[1].mean_ns, 1500.0);
        assert_eq!(results[1].lower_ns, 1499.0);
        assert_eq!(results[1].median_ns, 1499.5);

        let path = write_bench_summary(root.path(), "2 cores <test>").unwrap();
        let html = fs::read_to_string(path).unwrap();
        assert!(html.contains("<td class=\"l\">memory_store/hot_key</td><td>1.50 µs</td>"));
        assert!(
            html.contains("2 cores &lt;test&gt;"),
            "about text is escaped"
        );
    }

    #[test]
    fn a_broken_estimates_file_names_its_path() {
        let root = tempfile::tempdir().unwrap();
        write_bench(root.path(), "core/acquire", 4.0);
        fs::write(root.path().join("core/acquire/new/estimates.json"), "{").unwrap();
        let err = collect(root.path()).unwrap_err().to_string();
        assert!(err.contains("core/acquire/new/estimates.json"), "{err}");
    }

    #[test]
    fn durations_pick_a_readable_unit() {
        assert_eq!(fmt_ns(4.349), "4.35 ns");
        assert_eq!(fmt_ns(91_194.0), "91.19 µs");
        assert_eq!(fmt_ns(2_500_000.0), "2.50 ms");
    }
}
