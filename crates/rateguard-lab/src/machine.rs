//! Facts about the run: the testkit's probes (shared with `just perf`),
//! with the lab's load generator among the versions.

use rateguard_report::Versions;
pub use rateguard_testkit::machine::{git_commit, machine};

/// Versions of RateGuard, rustc, redis, nginx and goose.
pub fn versions() -> Versions {
    let mut v = rateguard_testkit::machine::versions();
    v.other.insert("goose".into(), "0.19".into());
    v
}
