//! Progress lines on stderr: one per phase with the elapsed time, and a
//! one-line result per (store, scenario); the final table on stdout.

use std::time::Instant;

use rateguard_report::Summary;

/// Prints phase lines with the time since the run started.
#[derive(Debug)]
pub struct Progress {
    started: Instant,
    on: bool,
}

impl Progress {
    /// Starts the clock; `on = false` prints nothing.
    pub fn new(on: bool) -> Self {
        Self {
            started: Instant::now(),
            on,
        }
    }

    /// `[  12.3s] what`.
    pub fn phase(&self, what: &str) {
        if self.on {
            eprintln!("[{:>7.1}s] {what}", self.started.elapsed().as_secs_f64());
        }
    }

    /// A record's headline figures.
    pub fn result(&self, r: &rateguard_report::Record) {
        let capacity = r.capacity_rps.map_or_else(String::new, |c| {
            let bound = if r.loadgen_bound == Some(true) {
                " (loadgen-bound)"
            } else {
                ""
            };
            format!(", capacity {c:.0} req/s{bound}")
        });
        let cpu = r
            .cpu_us_per_request
            .as_ref()
            .map_or_else(String::new, |c| format!(", {:.0} CPU µs/req", c.total()));
        self.phase(&format!(
            "  -> {} {}{}: {} requests, {} allowed{}, {:.0} req/s, p50 {} µs, p99 {} µs{capacity}{cpu}",
            r.subject().name(),
            r.scenario,
            workload(r),
            r.requests,
            r.allowed,
            r.expected_allowed
                .map(|e| format!(" (ideal {e})"))
                .unwrap_or_default(),
            r.throughput_rps,
            r.latency_us.p50,
            r.latency_us.p99
        ));
    }
}

/// ` hot 1ms`: a record's key mix and store RTT, when it has them.
fn workload(r: &rateguard_report::Record) -> String {
    let mut s = String::new();
    if let Some(k) = r.keys {
        s.push_str(&format!(" {k}"));
    }
    if let Some(rtt) = r.store_rtt_ms {
        s.push_str(&format!(" {rtt}ms"));
    }
    s
}

/// Script invocations (`EVALSHA`/`EVAL`, the round trips that carry
/// decisions) per request, from the per-command calls.
pub fn script_calls_per_request(r: &rateguard_report::Record) -> Option<f64> {
    r.store_commands_per_request?;
    let calls: u64 = r
        .store_command_calls
        .iter()
        .filter(|(k, _)| k.starts_with("eval"))
        .map(|(_, v)| v)
        .sum();
    Some(calls as f64 / r.requests.max(1) as f64)
}

/// The short table printed at the end of a run.
pub fn table(summary: &Summary) -> String {
    let mut out = format!(
        "{:<16} {:<13} {:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9} {:>9} {:>9} {:>8} {:>8} {:>9}\n",
        "subject",
        "scenario",
        "workload",
        "requests",
        "allowed",
        "fail-open",
        "ideal",
        "error%",
        "req/s",
        "p50 µs",
        "p99 µs",
        "cmd/req",
        "eval/req",
        "cpu µs/req"
    );
    for r in &summary.records {
        let opt = |v: Option<String>| v.unwrap_or_else(|| "-".into());
        out.push_str(&format!(
            "{:<16} {:<13} {:<12} {:>8} {:>8} {:>9} {:>8} {:>8} {:>9.0} {:>9} {:>9} {:>8} {:>8} {:>9}\n",
            r.subject().name(),
            r.scenario,
            workload(r).trim(),
            r.requests,
            r.allowed,
            opt(r.failed_open.map(|n| n.to_string())),
            opt(r.expected_allowed.map(|e| e.to_string())),
            opt(r.accuracy_error_pct.map(|e| format!("{e:+.1}"))),
            r.throughput_rps,
            r.latency_us.p50,
            r.latency_us.p99,
            opt(r.store_commands_per_request.map(|c| format!("{c:.2}"))),
            opt(script_calls_per_request(r).map(|c| format!("{c:.2}"))),
            opt(r.cpu_us_per_request.as_ref().map(|c| format!("{:.0}", c.total()))),
        ));
        if let Some(o) = r.outage {
            out.push_str(&format!(
                "{:<30} killed at {} ms, restarted at {} ms, enforcing again at {}\n",
                "",
                o.killed_at_ms,
                o.restarted_at_ms,
                o.enforcement_resumed_at_ms
                    .map(|t| format!("{t} ms (+{} ms)", t.saturating_sub(o.restarted_at_ms)))
                    .unwrap_or_else(|| "never".into())
            ));
        }
    }
    out.push_str("\nwhich store to run (the report's verdict, per workload):\n");
    for v in summary.verdicts() {
        out.push_str(&format!("  {}\n", v.line()));
    }
    out
}
