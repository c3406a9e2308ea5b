//! What `/proc` says about a process tree: CPU time (utime + stime),
//! context switches (voluntary + involuntary, every thread) and RSS.
//!
//! A tree is a pid and its direct children: nginx's master and its workers;
//! `rateguard serve` and redis-server are one process each.

use std::fs;
use std::process::Command;
use std::sync::OnceLock;

/// Counters of a process tree at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Sample {
    /// utime + stime, seconds.
    pub cpu_s: f64,
    /// Context switches of every thread, voluntary and involuntary.
    pub context_switches: u64,
    /// The voluntary ones (a thread waiting for work: the wake-ups a
    /// request costs, whatever else runs on the machine).
    pub voluntary_switches: u64,
}

impl Sample {
    /// The counters of `pids` and their children, summed.
    pub fn of(pids: &[u32]) -> Self {
        let ticks = clock_ticks();
        let mut sample = Self::default();
        for pid in tree(pids) {
            sample.cpu_s += cpu_ticks(pid) as f64 / ticks;
            let (voluntary, involuntary) = context_switches(pid);
            sample.context_switches += voluntary + involuntary;
            sample.voluntary_switches += voluntary;
        }
        sample
    }

    /// What happened between `self` and `later`.
    pub fn until(self, later: Self) -> Self {
        Self {
            cpu_s: later.cpu_s - self.cpu_s,
            context_switches: later.context_switches.saturating_sub(self.context_switches),
            voluntary_switches: later
                .voluntary_switches
                .saturating_sub(self.voluntary_switches),
        }
    }
}

/// Resident memory of `pids` and their children, KiB (`VmRSS`).
pub fn rss_kib(pids: &[u32]) -> u64 {
    tree(pids)
        .into_iter()
        .map(|pid| status_field(pid, "VmRSS:"))
        .sum()
}

/// `pids` and every process whose parent is one of them.
fn tree(pids: &[u32]) -> Vec<u32> {
    let mut all = pids.to_vec();
    let Ok(entries) = fs::read_dir("/proc") else {
        return all;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|n| n.parse().ok()) else {
            continue;
        };
        if stat_fields(pid)
            .and_then(|f| f.get(1).and_then(|p| p.parse::<u32>().ok()))
            .is_some_and(|ppid| pids.contains(&ppid))
        {
            all.push(pid);
        }
    }
    all
}

/// The fields of `/proc/<pid>/stat` after `(comm)`: state, ppid, ...
fn stat_fields(pid: u32) -> Option<Vec<String>> {
    split_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

fn split_stat(text: &str) -> Option<Vec<String>> {
    // comm may hold spaces and parentheses; it ends at the last ')'.
    let rest = &text[text.rfind(')')? + 1..];
    Some(rest.split_whitespace().map(str::to_owned).collect())
}

/// utime + stime of `pid` (every thread), in clock ticks.
fn cpu_ticks(pid: u32) -> u64 {
    stat_fields(pid).map_or(0, |f| ticks_of(&f))
}

/// Fields 14 and 15 of stat(5) (index 0 here is field 3).
fn ticks_of(fields: &[String]) -> u64 {
    let at = |i: usize| {
        fields
            .get(i)
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    at(11) + at(12)
}

/// (voluntary, involuntary) context switches of every thread of `pid`.
fn context_switches(pid: u32) -> (u64, u64) {
    let Ok(tasks) = fs::read_dir(format!("/proc/{pid}/task")) else {
        return (0, 0);
    };
    tasks.flatten().fold((0, 0), |(v, i), task| {
        let status = fs::read_to_string(task.path().join("status")).unwrap_or_default();
        (
            v + field(&status, "voluntary_ctxt_switches:"),
            i + field(&status, "nonvoluntary_ctxt_switches:"),
        )
    })
}

fn status_field(pid: u32, name: &str) -> u64 {
    field(
        &fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default(),
        name,
    )
}

/// The first number after `name` at the start of a line of `text`.
fn field(text: &str, name: &str) -> u64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux).
fn clock_ticks() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
            .unwrap_or(100.0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_and_status_lines_are_read_by_field() {
        let line = "42 (a (b) c) S 1 42 42 0 -1 4194560 1 0 0 0 7 3 0 0 20 0 1 0 9 1 1";
        let fields = split_stat(line).unwrap();
        assert_eq!(fields[1], "1", "ppid");
        assert_eq!(ticks_of(&fields), 10);
        let status = "Name:\tx\nvoluntary_ctxt_switches:\t42\nnonvoluntary_ctxt_switches:\t8\n";
        assert_eq!(field(status, "voluntary_ctxt_switches:"), 42);
        assert_eq!(field(status, "nonvoluntary_ctxt_switches:"), 8);
    }

    #[test]
    fn this_process_is_found_with_its_memory_and_switches() {
        let me = std::process::id();
        assert!(rss_kib(&[me]) > 0);
        assert!(Sample::of(&[me]).context_switches > 0);
    }
}
