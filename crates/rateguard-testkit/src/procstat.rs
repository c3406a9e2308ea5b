//! What `/proc` says about processes, read through `procfs`: CPU time
//! (utime + stime, every thread), context switches and resident memory.
//! The one reader the lab (CPU per role) and `just perf` (CPU and context
//! switches per request, RSS) share.
//!
//! A process that is gone reads as zero, so a sample taken while a server
//! exits never fails; callers compare samples of the same pids.

use std::collections::BTreeMap;

use procfs::process::{Process, Task};

/// Counters of a set of processes at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ProcSample {
    /// utime + stime, µs.
    pub cpu_us: u64,
    /// Voluntary context switches of every thread (a thread waiting for
    /// work: the wake-ups a request costs, whatever else runs).
    pub voluntary_switches: u64,
    /// Involuntary ones (preempted: the machine is busy).
    pub involuntary_switches: u64,
}

impl ProcSample {
    /// The counters of exactly `pids` (see [`with_children`] for a tree), summed.
    pub fn of(pids: &[u32]) -> Self {
        let mut sample = Self::default();
        for &pid in pids {
            let Some(process) = process(pid) else {
                continue;
            };
            sample.cpu_us += process.stat().map_or(0, |s| ticks_to_us(s.utime + s.stime));
            for task in process.tasks().into_iter().flatten().flatten() {
                let (voluntary, involuntary) = switches(&task);
                sample.voluntary_switches += voluntary;
                sample.involuntary_switches += involuntary;
            }
        }
        sample
    }

    /// What happened between `self` and `later`.
    pub fn until(self, later: Self) -> Self {
        Self {
            cpu_us: later.cpu_us.saturating_sub(self.cpu_us),
            voluntary_switches: later
                .voluntary_switches
                .saturating_sub(self.voluntary_switches),
            involuntary_switches: later
                .involuntary_switches
                .saturating_sub(self.involuntary_switches),
        }
    }

    /// Voluntary and involuntary together.
    pub fn context_switches(&self) -> u64 {
        self.voluntary_switches + self.involuntary_switches
    }
}

/// utime + stime of `pid` (every thread, exited ones included), µs; 0 when it is gone.
pub fn cpu_us(pid: u32) -> u64 {
    process(pid)
        .and_then(|p| p.stat().ok())
        .map_or(0, |s| ticks_to_us(s.utime + s.stime))
}

/// CPU µs of each of this process's live threads named `comm`, by thread id.
pub fn own_threads_cpu_us(comm: &str) -> BTreeMap<i32, u64> {
    Process::myself()
        .and_then(|p| p.tasks())
        .into_iter()
        .flatten()
        .filter_map(|task| {
            let stat = task.ok()?.stat().ok()?;
            (stat.comm == comm).then(|| (stat.pid, ticks_to_us(stat.utime + stat.stime)))
        })
        .collect()
}

/// The pids whose parent is `parent` (e.g. an nginx master's workers).
pub fn children_of(parent: u32) -> Vec<u32> {
    let Ok(all) = procfs::process::all_processes() else {
        return Vec::new();
    };
    all.filter_map(|p| {
        let stat = p.ok()?.stat().ok()?;
        let pid = u32::try_from(stat.pid).ok()?;
        (u32::try_from(stat.ppid).ok() == Some(parent)).then_some(pid)
    })
    .collect()
}

/// `pids` and their children.
pub fn with_children(pids: &[u32]) -> Vec<u32> {
    let mut all = pids.to_vec();
    for &pid in pids {
        all.extend(children_of(pid));
    }
    all
}

/// Resident memory of exactly `pids`, summed, KiB (`VmRSS`).
pub fn rss_kib(pids: &[u32]) -> u64 {
    pids.iter()
        .filter_map(|&pid| process(pid)?.status().ok()?.vmrss)
        .sum()
}

fn process(pid: u32) -> Option<Process> {
    Process::new(i32::try_from(pid).ok()?).ok()
}

fn switches(task: &Task) -> (u64, u64) {
    task.status().map_or((0, 0), |s| {
        (
            s.voluntary_ctxt_switches.unwrap_or(0),
            s.nonvoluntary_ctxt_switches.unwrap_or(0),
        )
    })
}

fn ticks_to_us(ticks: u64) -> u64 {
    ticks.saturating_mul(1_000_000) / procfs::ticks_per_second().max(1)
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use super::*;

    #[test]
    fn this_process_is_read_with_its_cpu_memory_and_switches() {
        let me = std::process::id();
        let before = ProcSample::of(&[me]);
        let spin_until = Instant::now() + Duration::from_millis(60);
        let mut x = 0u64;
        while Instant::now() < spin_until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        std::thread::sleep(Duration::from_millis(1));
        let used = before.until(ProcSample::of(&[me]));
        assert!(used.cpu_us > 0, "{used:?}");
        assert!(used.voluntary_switches > 0, "slept: {used:?}");
        assert!(cpu_us(me) >= used.cpu_us);
        assert!(rss_kib(&[me]) > 0);
        assert_eq!(with_children(&[me])[0], me);
    }

    #[test]
    fn a_child_is_found_and_a_gone_process_reads_as_zero() {
        let mut child = crate::ChildGuard::new(
            std::process::Command::new("sleep")
                .arg("30")
                .spawn()
                .unwrap(),
        );
        let pid = child.pid();
        assert!(children_of(std::process::id()).contains(&pid));
        child.kill().unwrap();
        assert_eq!(ProcSample::of(&[pid]), ProcSample::default());
        assert_eq!((cpu_us(pid), rss_kib(&[pid])), (0, 0));
    }
}
