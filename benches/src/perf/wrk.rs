//! One `wrk` run against a target, its figures read from the JSON line
//! that `wrk.lua`'s `done()` hook prints.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::keys::KeyMix;
use super::limits::PATH;
use super::PerfError;

/// The script, written next to the run's other temp files.
pub const SCRIPT: &str = include_str!("wrk.lua");

const MARKER: &str = "RATEGUARD_PERF_JSON ";

/// How `wrk` loads a target.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Load {
    /// `wrk -t`: load-generator threads.
    pub threads: u32,
    /// `wrk -c`: open connections in all.
    pub connections: u32,
    /// `wrk -d`, whole seconds (at least 1).
    pub duration: Duration,
}

/// What `done()` reports for one run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WrkFigures {
    /// Responses completed.
    pub requests: u64,
    /// Length of the run, µs.
    pub duration_us: u64,
    /// Median latency, µs.
    pub p50_us: u64,
    /// 99th percentile latency, µs.
    pub p99_us: u64,
    /// Connections that could not be opened.
    pub connect_errors: u64,
    /// Socket read errors.
    pub read_errors: u64,
    /// Socket write errors.
    pub write_errors: u64,
    /// Requests over `wrk --timeout`.
    pub timeouts: u64,
    /// Responses with a status of 400 or more.
    pub status_over_399: u64,
    /// Requests each `wrk` thread sent, for the key mixes (empty otherwise).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent: Vec<u64>,
}

impl WrkFigures {
    /// Requests per second.
    pub fn rps(&self) -> f64 {
        self.requests as f64 / (self.duration_us.max(1) as f64 / 1e6)
    }

    /// Socket errors and timeouts of every kind.
    pub fn socket_errors(&self) -> u64 {
        self.connect_errors + self.read_errors + self.write_errors + self.timeouts
    }
}

/// Runs `wrk` (script at `script`) against `http://addr/api/data`, its
/// requests spread over API keys as `keys` says.
pub fn run(
    script: &Path,
    addr: SocketAddr,
    load: Load,
    keys: KeyMix,
) -> Result<WrkFigures, PerfError> {
    let output = Command::new("wrk")
        .arg(format!("-t{}", load.threads))
        .arg(format!("-c{}", load.connections))
        // wrk takes whole seconds.
        .arg(format!("-d{}s", load.duration.as_secs().max(1)))
        .args(["--timeout", "5s", "-s"])
        .arg(script)
        .arg(format!("http://{addr}{PATH}"))
        .arg("--")
        .args(keys.script_args(load.threads))
        .output()
        .map_err(|e| {
            PerfError::Wrk(format!(
                "cannot run wrk ({e}); install it: apt-get install wrk"
            ))
        })?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(PerfError::Wrk(format!(
            "exited with {}: {}{}",
            output.status,
            stdout.trim(),
            String::from_utf8_lossy(&output.stderr).trim()
        )));
    }
    parse(&stdout)
}

/// The figures in `wrk`'s output.
pub fn parse(stdout: &str) -> Result<WrkFigures, PerfError> {
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix(MARKER))
        .ok_or_else(|| PerfError::Wrk(format!("no {MARKER:?} line in: {}", stdout.trim())))?;
    serde_json::from_str(line).map_err(|e| PerfError::Wrk(format!("{e}: {line}")))
}

/// `wrk -v`'s first line (`wrk 4.1.0 [epoll] ...`), or `unknown`.
pub fn version() -> String {
    Command::new("wrk")
        .arg("-v")
        .output()
        .ok()
        .and_then(|o| {
            let text = [o.stdout, o.stderr].concat();
            let text = String::from_utf8_lossy(&text);
            let line = text.lines().next()?;
            // "wrk 4.1.0 [epoll] Copyright (C) ..." → "wrk 4.1.0 [epoll]"
            Some(
                line.split(" Copyright")
                    .next()
                    .unwrap_or(line)
                    .trim()
                    .to_owned(),
            )
        })
        .unwrap_or_else(|| "unknown".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_done_line_is_found_among_wrks_own_output() {
        let out = "Running 1s test @ http://127.0.0.1:1/api/data\n  2 threads\n\
            RATEGUARD_PERF_JSON {\"requests\":1000,\"duration_us\":500000,\"p50_us\":900,\
            \"p99_us\":3000,\"connect_errors\":0,\"read_errors\":0,\"write_errors\":0,\
            \"timeouts\":0,\"status_over_399\":7,\"sent\":[600,400]}\n";
        let f = parse(out).unwrap();
        assert_eq!(f.rps(), 2000.0);
        assert_eq!(
            (f.p99_us, f.status_over_399, f.socket_errors()),
            (3000, 7, 0)
        );
        assert_eq!(f.sent, [600, 400]);
        assert!(parse("Running 1s test").is_err());
    }

    #[test]
    fn the_script_knows_the_hot_key_and_every_mix() {
        assert!(SCRIPT.contains(&format!("\"{}\"", super::super::keys::HOT_KEY)));
        for keys in [
            KeyMix::PerThread,
            KeyMix::Hot,
            KeyMix::Zipf,
            KeyMix::Uniform,
        ] {
            let mix = &keys.script_args(2)[0];
            assert!(
                SCRIPT.contains(&format!("\"{mix}\"")) || keys == KeyMix::PerThread,
                "{mix}"
            );
        }
    }
}
