//! RSS growth per live key of the memory store, from the key-mix runs.
//!
//! Each memory gateway's RSS is read before its first request and right
//! after each measured run. The key mixes' quota keeps every bucket a run
//! touched for 10 s after its last request ([`KEEPS_KEYS_LIVE`]), longer
//! than a run, so at the end of a run the store holds at least a bucket for
//! every key the run sent: for the uniform mix, all [`KEYS`] once every
//! `wrk` thread has walked its share. The single-key `memory` case (two
//! keys) is the control: its growth is what traffic costs without keys
//! (connections, buffers, allocator slack), subtracted before dividing.
//!
//! [`KEEPS_KEYS_LIVE`]: super::limits::KEEPS_KEYS_LIVE
//! [`KEYS`]: super::keys::KEYS

use rateguard_contract::StoreKind;
use rateguard_report::Spread;
use rateguard_testkit::procstat;
use serde::{Deserialize, Serialize};

use super::case::{Case, Policy, Subject, Target};
use super::keys::KeyMix;
use super::rounds::Run;
use super::topology::Topology;

/// A subject's resident memory before its first request.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct RssAtStart {
    /// The case (and build).
    #[serde(flatten)]
    pub subject: Subject,
    /// `VmRSS` of its processes, KiB.
    pub kib: u64,
}

/// Every subject's RSS now (call before the warm-up).
pub fn at_start(topology: &Topology, subjects: &[Subject]) -> Vec<RssAtStart> {
    subjects
        .iter()
        .map(|&subject| RssAtStart {
            subject,
            kib: procstat::rss_kib(&topology.target_pids(subject)),
        })
        .collect()
}

/// What one memory-store case's keys cost in resident memory.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct KeyMemory {
    /// The case (and build).
    #[serde(flatten)]
    pub subject: Subject,
    /// RSS before its first request, KiB.
    pub rss_start_kib: u64,
    /// RSS right after each measured run, KiB.
    pub rss_after_kib: Spread,
    /// Keys the store held at the end of a run (median over runs), when known.
    pub live_keys: Option<f64>,
    /// (growth − the control's growth) / live keys, bytes, over runs.
    pub bytes_per_live_key: Option<Spread>,
}

/// The memory-store allow cases (the control and the key mixes) that ran.
pub fn summarize(runs: &[Run], at_start: &[RssAtStart]) -> Vec<KeyMemory> {
    let growth = |run: &Run| {
        let start = at_start.iter().find(|s| s.subject == run.subject);
        run.rss_kib as f64 - start.map_or(f64::NAN, |s| s.kib as f64)
    };
    let mut out = Vec::new();
    for start in at_start {
        let subject = start.subject;
        if subject.case.target != Target::Gateway(StoreKind::Memory, Policy::Allow) {
            continue;
        }
        let mine: Vec<&Run> = runs.iter().filter(|r| r.subject == subject).collect();
        let control = Subject {
            case: Case::gateway(StoreKind::Memory, Policy::Allow, KeyMix::PerThread),
            ..subject
        };
        let control_growth = Spread::of(
            &runs
                .iter()
                .filter(|r| r.subject == control)
                .map(growth)
                .collect::<Vec<_>>(),
        )
        .map(|s| s.median);
        let per_run_keys: Vec<Option<u64>> = mine
            .iter()
            .map(|r| subject.case.keys.keys_sent(&r.wrk.sent))
            .collect();
        let per_key: Vec<f64> = mine
            .iter()
            .zip(&per_run_keys)
            .filter_map(|(r, keys)| {
                let extra = growth(r) - control_growth?;
                Some(extra * 1024.0 / (*keys)? as f64)
            })
            .collect();
        let known: Vec<f64> = per_run_keys.iter().flatten().map(|&k| k as f64).collect();
        out.push(KeyMemory {
            subject,
            rss_start_kib: start.kib,
            rss_after_kib: Spread::of(&mine.iter().map(|r| r.rss_kib as f64).collect::<Vec<_>>())
                .unwrap_or_default(),
            live_keys: Spread::of(&known).map(|s| s.median),
            bytes_per_live_key: (subject != control).then(|| Spread::of(&per_key)).flatten(),
        });
    }
    out
}
