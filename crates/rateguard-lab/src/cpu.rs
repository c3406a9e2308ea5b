//! CPU time per process role, from `/proc/<pid>/stat` (user + system time,
//! all threads) read by the testkit's `procstat`: snapshots at the edges of
//! a measured window, the difference divided by the requests completed in it.
//!
//! The load generator is this process, less the threads of the testkit's
//! delay proxies (named [`DELAY_THREAD`]): they emulate the network, which
//! no role pays for. A thread that exits inside a window leaves its time in
//! the process total, so it counts as the generator's (rare: the lab keeps
//! its proxies' connections open while it measures).

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rateguard_contract::Role;
use rateguard_report::CpuPerRequest;
use rateguard_testkit::procstat;
use rateguard_testkit::DELAY_THREAD;

/// The processes of every role but the generator (which is this process).
#[derive(Debug, Clone, Default)]
pub struct CpuProbe {
    pids: BTreeMap<Role, Vec<u32>>,
}

/// CPU times at one instant, µs.
#[derive(Debug, Clone)]
pub struct CpuSnapshot {
    at: Instant,
    by_role: BTreeMap<Role, u64>,
    /// This process's delay-proxy threads, by tid.
    delay_threads: BTreeMap<i32, u64>,
}

/// CPU used over a window, µs per role.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CpuUsage {
    /// The window's wall time.
    pub wall: Duration,
    /// CPU µs per role.
    pub us: BTreeMap<Role, f64>,
}

impl CpuProbe {
    /// A probe charging `pids` to their roles ([`Role::Loadgen`] entries are
    /// ignored: the generator is always this process).
    pub fn new(pids: impl IntoIterator<Item = (Role, Vec<u32>)>) -> Self {
        let mut out = Self::default();
        for (role, list) in pids {
            if role != Role::Loadgen {
                out.pids.entry(role).or_default().extend(list);
            }
        }
        out
    }

    /// The pids charged to `role`.
    pub fn pids(&self, role: Role) -> &[u32] {
        self.pids.get(&role).map_or(&[], Vec::as_slice)
    }

    /// Every role's CPU time now.
    pub fn snapshot(&self) -> CpuSnapshot {
        let mut by_role: BTreeMap<Role, u64> = self
            .pids
            .iter()
            .map(|(&role, pids)| (role, pids.iter().map(|&p| procstat::cpu_us(p)).sum()))
            .collect();
        by_role.insert(Role::Loadgen, procstat::cpu_us(std::process::id()));
        CpuSnapshot {
            at: Instant::now(),
            by_role,
            delay_threads: procstat::own_threads_cpu_us(DELAY_THREAD),
        }
    }
}

/// `pid` and its children (an nginx master and its workers).
pub fn with_children(pid: u32) -> Vec<u32> {
    procstat::with_children(&[pid])
}

impl CpuSnapshot {
    /// The CPU used from `before` to this snapshot.
    pub fn since(&self, before: &CpuSnapshot) -> CpuUsage {
        let mut us: BTreeMap<Role, f64> = self
            .by_role
            .iter()
            .map(|(&role, &now)| {
                let was = before.by_role.get(&role).copied().unwrap_or(0);
                (role, now.saturating_sub(was) as f64)
            })
            .collect();
        let delay: u64 = self
            .delay_threads
            .iter()
            .map(|(tid, &now)| {
                now.saturating_sub(before.delay_threads.get(tid).copied().unwrap_or(0))
            })
            .sum();
        if let Some(loadgen) = us.get_mut(&Role::Loadgen) {
            *loadgen = (*loadgen - delay as f64).max(0.0);
        }
        CpuUsage {
            wall: self.at.saturating_duration_since(before.at),
            us,
        }
    }
}

impl CpuUsage {
    /// µs per request by role over `requests` (`None` when there were none).
    pub fn per_request(&self, requests: u64) -> Option<CpuPerRequest> {
        if requests == 0 {
            return None;
        }
        let n = requests as f64;
        let by_role = Role::ALL
            .into_iter()
            .map(|role| {
                let us = self.us.get(&role).copied().unwrap_or(0.0);
                (role, (us / n * 100.0).round() / 100.0)
            })
            .collect();
        Some(CpuPerRequest(by_role))
    }

    /// `role`'s CPU as a share of one core over the window.
    pub fn cores(&self, role: Role) -> f64 {
        let secs = self.wall.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.us.get(&role).copied().unwrap_or(0.0) / 1e6 / secs
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_burns_cpu_as_the_load_generator() {
        let probe = CpuProbe::new([(Role::Gateway, vec![std::process::id()])]);
        let before = probe.snapshot();
        // Spin for a while: at least a few clock ticks of CPU.
        let spin_until = Instant::now() + Duration::from_millis(60);
        let mut x = 0u64;
        while Instant::now() < spin_until {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        assert_ne!(x, 1);
        let usage = probe.snapshot().since(&before);
        assert!(usage.us[&Role::Loadgen] > 0.0, "{usage:?}");
        // The same process charged as a gateway sees its time too (not
        // necessarily equal: the two reads are moments apart, and other
        // test threads run in between).
        assert!(usage.us[&Role::Gateway] > 0.0, "{usage:?}");
        let per = usage.per_request(10).unwrap();
        assert_eq!(per.get(Role::Store), 0.0);
        assert!(usage.cores(Role::Loadgen) > 0.0);
        assert!(usage.per_request(0).is_none());
    }
}
