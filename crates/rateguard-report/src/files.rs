//! Reading and writing a run's files: `summary.json`, `report.html`, and
//! the `latest` symlink.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::model::Summary;

/// File name of a run's summary inside its directory.
pub const SUMMARY_FILE: &str = "summary.json";
/// File name of a run's report inside its directory.
pub const REPORT_FILE: &str = "report.html";
/// Name of the symlink under the results root that points at the newest run.
pub const LATEST_LINK: &str = "latest";

/// Why a results file could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: io::Error,
    },
    /// A results file (a summary, a criterion estimate) is not valid JSON of
    /// the expected shape.
    #[error("{path}: not valid JSON of the expected shape: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: serde_json::Error,
    },
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> ReportError + '_ {
    move |source| ReportError::Io {
        path: path.to_owned(),
        source,
    }
}

impl Summary {
    /// Writes `dir/summary.json` (pretty-printed), creating `dir` if needed;
    /// returns the file's path.
    pub fn write(&self, dir: &Path) -> Result<PathBuf, ReportError> {
        fs::create_dir_all(dir).map_err(io_err(dir))?;
        let path = dir.join(SUMMARY_FILE);
        let json = serde_json::to_string_pretty(self).map_err(|source| ReportError::Json {
            path: path.clone(),
            source,
        })?;
        fs::write(&path, json + "\n").map_err(io_err(&path))?;
        Ok(path)
    }

    /// Reads a summary from `path` (a `summary.json` file).
    pub fn read(path: &Path) -> Result<Summary, ReportError> {
        let text = fs::read_to_string(path).map_err(io_err(path))?;
        serde_json::from_str(&text).map_err(|source| ReportError::Json {
            path: path.to_owned(),
            source,
        })
    }
}

/// Writes `results_root/<run_id>/summary.json` and `report.html`, then points
/// `results_root/latest` at that run (a relative symlink, replaced
/// atomically). Returns the path of `report.html`.
pub fn write_report(results_root: &Path, summary: &Summary) -> Result<PathBuf, ReportError> {
    let run_dir = results_root.join(&summary.run_id);
    summary.write(&run_dir)?;
    let report = run_dir.join(REPORT_FILE);
    fs::write(&report, crate::render(summary)).map_err(io_err(&report))?;
    update_latest(results_root, &summary.run_id)?;
    Ok(report)
}

/// Renders the summary at `summary_path` again into `report.html` beside it
/// (e.g. after the renderer changed); returns the report's path.
pub fn rerender(summary_path: &Path) -> Result<PathBuf, ReportError> {
    let summary = Summary::read(summary_path)?;
    let report = summary_path
        .parent()
        .unwrap_or_else(|| Path::new("."))
        .join(REPORT_FILE);
    fs::write(&report, crate::render(&summary)).map_err(io_err(&report))?;
    Ok(report)
}

/// Points `results_root/latest` at `run_id` by renaming a fresh symlink over it.
fn update_latest(results_root: &Path, run_id: &str) -> Result<(), ReportError> {
    let link = results_root.join(LATEST_LINK);
    let tmp = results_root.join(format!(".{LATEST_LINK}.{}", std::process::id()));
    let _ = fs::remove_file(&tmp);
    symlink_dir(Path::new(run_id), &tmp).map_err(io_err(&tmp))?;
    fs::rename(&tmp, &link).map_err(io_err(&link))
}

#[cfg(unix)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::unix::fs::symlink(target, link)
}

#[cfg(windows)]
fn symlink_dir(target: &Path, link: &Path) -> io::Result<()> {
    std::os::windows::fs::symlink_dir(target, link)
}
