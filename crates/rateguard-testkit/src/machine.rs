//! Facts a measurement records about where it ran: the machine, the
//! versions of the servers this crate starts (through the same binaries and
//! overrides), the git commit. The lab and `just perf` both call these.

use std::path::Path;
use std::process::Command;

use rateguard_report::{Machine, Versions};

use crate::nginx;
use crate::redis::REDIS_SERVER;

/// Cores, CPU model, OS and memory of this machine.
pub fn machine() -> Machine {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu_model = cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, v)| v.trim().to_owned())
        .unwrap_or_else(|| "unknown".to_owned());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    let distro = std::fs::read_to_string("/etc/os-release")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("PRETTY_NAME="))
        .map(|v| v.trim_matches('"').to_owned())
        .unwrap_or_default();
    let mem_kib: f64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    Machine {
        cores: std::thread::available_parallelism().map_or(0, |n| n.get() as u32),
        cpu_model,
        os: format!("Linux {} ({distro})", kernel.trim()),
        memory_gib: (mem_kib / 1024.0 / 1024.0 * 10.0).round() / 10.0,
    }
}

/// Versions of RateGuard, rustc, redis-server and nginx (the binaries this
/// crate would start); callers add their load generator to `other`.
pub fn versions() -> Versions {
    Versions {
        rateguard: env!("CARGO_PKG_VERSION").to_owned(),
        rustc: first_line(Path::new("rustc"), &["--version"]),
        redis: first_line(&REDIS_SERVER.path(), &["--version"]),
        nginx: first_line(&nginx::program(), &["-v"]),
        ..Versions::default()
    }
}

/// `git rev-parse HEAD`, with `-dirty` when tracked files have changes.
pub fn git_commit() -> String {
    let head = first_line(Path::new("git"), &["rev-parse", "HEAD"]);
    let dirty = Command::new("git")
        .args(["status", "--porcelain", "--untracked-files=no"])
        .output()
        .map(|o| !o.stdout.is_empty())
        .unwrap_or(false);
    if dirty {
        format!("{head}-dirty")
    } else {
        head
    }
}

/// The first line a program prints (stdout, else stderr), or `unknown`.
pub fn first_line(program: &Path, args: &[&str]) -> String {
    Command::new(program)
        .args(args)
        .output()
        .ok()
        .and_then(|o| {
            let text = if o.stdout.is_empty() {
                o.stderr
            } else {
                o.stdout
            };
            String::from_utf8(text).ok()
        })
        .and_then(|t| t.lines().next().map(|l| l.trim().to_owned()))
        .filter(|l| !l.is_empty())
        .unwrap_or_else(|| "unknown".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_and_the_servers_are_named() {
        let m = machine();
        assert!(m.cores >= 1 && m.memory_gib > 0.0, "{m:?}");
        assert!(m.os.starts_with("Linux "), "{m:?}");
        let v = versions();
        assert!(v.rustc.starts_with("rustc "), "{v:?}");
        assert_eq!(
            first_line(Path::new("no-such-program-here"), &[]),
            "unknown"
        );
    }
}
