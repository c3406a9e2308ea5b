//! The lab's results: the `summary.json` model and the HTML report.
//!
//! This crate knows nothing of the gateway: the lab measures and fills a
//! [`Summary`]; this crate checks it is complete ([`Summary::missing`]),
//! writes it, and renders one self-contained `report.html` (inline CSS and
//! SVG, no scripts, no external links).
//!
//! # Layout
//! - [`model`]: [`Summary`], [`Record`] and their parts; [`Spread`],
//!   [`accuracy_error_pct`], percentiles from an `hdrhistogram`.
//! - `files`: [`Summary::write`], [`Summary::read`], [`write_report`],
//!   [`rerender`] and the `results/latest` symlink.
//! - `render`: [`render`], the HTML page and its charts.
//!
//! # Example
//! ```no_run
//! use std::path::Path;
//! use rateguard_report::{write_report, Summary};
//! # fn measure() -> Summary { unimplemented!() }
//! let summary: Summary = measure();
//! assert!(summary.missing().is_empty(), "{:?}", summary.missing());
//! let report = write_report(Path::new("results"), &summary).unwrap();
//! println!("report: {}", report.display());
//! ```

pub mod bench;
pub mod model;

mod files;
mod render;

pub use files::{rerender, write_report, ReportError, LATEST_LINK, REPORT_FILE, SUMMARY_FILE};
pub use model::{
    accuracy_error_pct, is_load_scenario, median, runs_on, Admission, AdmissionRep, CpuPerRequest,
    LatencyUs, Machine, Outage, OutageRep, OutageWindow, RateLevel, Record, RecordKey,
    RecordSpread, RepetitionStats, SeriesPoint, Settings, Spread, Subject, Summary, TimelinePoint,
    Versions, CURVE_PERCENTILES, LOADGEN_BOUND_CORES,
};
pub use render::render;
