//! A run's record (`results/perf-<time>.json`) and its Markdown
//! (`results/perf-<time>.md`, also printed).

use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};

use rateguard_report::{Machine, Spread, Versions};
use serde::{Deserialize, Serialize};

use super::idle::IdleFigures;
use super::key_memory::{KeyMemory, RssAtStart};
use super::keys::KeyMix;
use super::rounds::{CaseSummary, Plan, Run};

/// Everything a perf run measured, and where.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PerfReport {
    /// Start time, `YYYYmmdd-HHMMSS` (local).
    pub started: String,
    /// The machine.
    pub machine: Machine,
    /// Software versions (`wrk` among `other`).
    pub versions: Versions,
    /// `git rev-parse HEAD` (`-dirty` with changes).
    pub commit: String,
    /// `/proc/loadavg` before and after (other work on the machine).
    pub load_average: [String; 2],
    /// What was measured.
    pub plan: Plan,
    /// Each case over its rounds.
    pub cases: Vec<CaseSummary>,
    /// Every measured run.
    pub runs: Vec<Run>,
    /// Every target's RSS before its first request.
    #[serde(default)]
    pub rss_at_start: Vec<RssAtStart>,
    /// The memory store's RSS per live key (key-mix cases).
    #[serde(default)]
    pub key_memory: Vec<KeyMemory>,
    /// RSS under idle connections (`--idle N`), if measured.
    pub idle: Vec<IdleFigures>,
}

impl PerfReport {
    /// The Markdown: set-up, the table, what failed, memory.
    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let m = &self.machine;
        let v = &self.versions;
        let _ = writeln!(md, "# rateguard-perf {}\n", self.started);
        let _ = writeln!(
            md,
            "{} cores ({}), {}, {} GiB; {}; {}; {}; {}; commit {}.  ",
            m.cores,
            m.cpu_model,
            m.os,
            m.memory_gib,
            v.rustc,
            v.nginx,
            v.redis,
            v.other.get("wrk").map_or("wrk ?", String::as_str),
            self.commit
        );
        let p = &self.plan;
        let _ = writeln!(
            md,
            "`wrk -t{} -c{} -d{}s`, {} alternating rounds (after a {}s warm-up per case); \
             load average before / after: {} / {}.\n",
            p.load.threads,
            p.load.connections,
            p.load.duration.as_secs_f64(),
            p.rounds,
            p.warmup.as_secs_f64(),
            self.load_average[0],
            self.load_average[1],
        );
        if !self.cases.is_empty() {
            self.cases_table(&mut md);
        }
        self.failures(&mut md);
        if self
            .key_memory
            .iter()
            .any(|k| KeyMix::MIXES.contains(&k.subject.case.keys))
        {
            self.key_memory_table(&mut md);
        }
        if !self.idle.is_empty() {
            self.idle_table(&mut md);
        }
        md
    }

    fn cases_table(&self, md: &mut String) {
        md.push_str(
            "| case | req/s median (min–max) | vs nginx `proxy_pass` | reference | vs reference \
             | p50 ms | p99 ms | p99 vs nginx | CPU µs/req | store CPU µs/req \
             | ctx switches/req (voluntary) | responses ≥ 400 |\n\
             |---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
        );
        for c in &self.cases {
            let _ = writeln!(
                md,
                "| {} | {} | {} | {} | {} | {:.2} | {:.2} | {} | {} | {} | {:.3} ({:.3}) | {} |",
                c.subject,
                rps(c.rps),
                ratio(c.vs_nginx),
                c.reference.map_or("–".into(), |r| r.to_string()),
                ratio(c.vs_reference),
                c.p50_us.median / 1000.0,
                c.p99_us.median / 1000.0,
                ratio(c.p99_vs_nginx),
                us(c.cpu_us_per_req),
                c.store_cpu_us_per_req.map_or("–".into(), us),
                c.context_switches_per_req.median,
                c.voluntary_switches_per_req.median,
                over_399(c),
            );
        }
    }

    fn failures(&self, md: &mut String) {
        let failed: Vec<String> = self
            .cases
            .iter()
            .filter(|c| c.subject.case.must_allow() && !c.all_allowed)
            .map(|c| {
                format!(
                    "{} ({} ≥ 400, {} socket errors)",
                    c.subject, c.status_over_399, c.socket_errors
                )
            })
            .collect();
        if !failed.is_empty() {
            let _ = writeln!(
                md,
                "\n**Not every response was 2xx:** {}.",
                failed.join(", ")
            );
        }
    }

    fn key_memory_table(&self, md: &mut String) {
        md.push_str(
            "\n| memory store, RSS | before the first request MiB | after each run MiB, median (min–max) \
             | live keys at the end of a run | bytes per live key, net of `memory`'s growth |\n\
             |---|---:|---:|---:|---:|\n",
        );
        for k in &self.key_memory {
            let a = k.rss_after_kib;
            let _ = writeln!(
                md,
                "| {} | {:.1} | {:.1} ({:.1}–{:.1}) | {} | {} |",
                k.subject,
                k.rss_start_kib as f64 / 1024.0,
                a.median / 1024.0,
                a.min / 1024.0,
                a.max / 1024.0,
                k.live_keys.map_or("–".into(), |n| format!("{n:.0}")),
                k.bytes_per_live_key.map_or("–".into(), |b| format!(
                    "{:.0} ({:.0}–{:.0})",
                    b.median, b.min, b.max
                )),
            );
        }
    }

    fn idle_table(&self, md: &mut String) {
        md.push_str(
            "\n| idle keep-alive connections | target | RSS before MiB | RSS once answered MiB | RSS after 2 s idle MiB | KiB per idle connection |\n\
             |---:|---|---:|---:|---:|---:|\n",
        );
        for i in &self.idle {
            let _ = writeln!(
                md,
                "| {} | {} | {:.1} | {:.1} | {:.1} | {:.1} |",
                i.connections,
                i.target,
                i.rss_before_kib as f64 / 1024.0,
                i.rss_after_kib as f64 / 1024.0,
                i.rss_settled_kib as f64 / 1024.0,
                i.kib_per_connection(),
            );
        }
    }

    /// Writes `dir/perf-<started>.{json,md}`; returns the two paths.
    pub fn write(&self, dir: &Path) -> std::io::Result<[PathBuf; 2]> {
        fs::create_dir_all(dir)?;
        let json = dir.join(format!("perf-{}.json", self.started));
        let md = dir.join(format!("perf-{}.md", self.started));
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        fs::write(&json, text)?;
        fs::write(&md, self.markdown())?;
        Ok([json, md])
    }
}

fn rps(s: Spread) -> String {
    format!(
        "{:.1}k ({:.1}–{:.1}k)",
        s.median / 1e3,
        s.min / 1e3,
        s.max / 1e3
    )
}

fn us(s: Spread) -> String {
    format!("{:.1} ({:.1}–{:.1})", s.median, s.min, s.max)
}

fn ratio(r: Option<f64>) -> String {
    r.map_or("–".into(), |r| format!("{r:.2}"))
}

fn over_399(c: &CaseSummary) -> String {
    if !c.subject.case.must_allow() {
        let share = c.status_over_399 as f64 / c.requests.max(1) as f64;
        format!("{:.1} % (denied)", share * 100.0)
    } else {
        c.status_over_399.to_string()
    }
}
