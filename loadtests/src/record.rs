//! What one request did: [`Sample`]s collected by a shared [`Recorder`]
//! while a scenario runs, analysed afterwards (see [`crate::analysis`]).

use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rateguard_contract::headers;

/// The replica (`X-RateGuard-Replica`) and backend (`X-Backend`) that
/// answered, from a response's headers.
pub fn replica_and_backend(headers: &http::HeaderMap) -> (Option<String>, Option<String>) {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    (
        header(headers::X_RATEGUARD_REPLICA),
        header(headers::X_BACKEND),
    )
}
/// The request header carrying the client's API key (its bucket identity):
/// the gateway's default `identity.api_key_header`, which the lab keeps.
pub const API_KEY_HEADER: &str = headers::DEFAULT_API_KEY;

/// How a request ended, as the limiter's user sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// A 2xx: the limiter let it through and the backend answered.
    Allowed,
    /// A 429: the limiter denied it.
    Denied,
    /// Anything else: a transport error, a timeout or another status.
    Error,
}

impl Outcome {
    /// Classifies an HTTP status.
    ///
    /// ```
    /// use rateguard_loadtests::Outcome;
    /// assert_eq!(Outcome::from_status(200), Outcome::Allowed);
    /// assert_eq!(Outcome::from_status(429), Outcome::Denied);
    /// assert_eq!(Outcome::from_status(502), Outcome::Error);
    /// ```
    pub fn from_status(status: u16) -> Self {
        match status {
            200..=299 => Self::Allowed,
            429 => Self::Denied,
            _ => Self::Error,
        }
    }
}

/// One request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Sample {
    /// When the request was due, µs since the recorder started. For the
    /// open model this is the *intended* send time, not the actual one.
    pub at_us: u64,
    /// From `at_us` to the end of the response body, µs.
    pub latency_us: u64,
    /// What happened.
    pub outcome: Outcome,
    /// Index of the client (bucket identity) that sent it.
    pub client: u32,
    /// When the request actually left, µs since the recorder started: after
    /// `at_us` when the open model's generator or connection was behind;
    /// equal to it in the closed model. The decision falls between this and
    /// [`Sample::done_us`].
    pub sent_us: u64,
    /// The replica that answered ([`Recording::replicas`] index), when the
    /// response named one.
    pub replica: Option<u16>,
}

impl Sample {
    /// When the response ended, µs since the recorder started.
    pub fn done_us(&self) -> u64 {
        self.at_us.saturating_add(self.latency_us)
    }
}

/// Collects samples from many concurrent tasks.
///
/// A mutex is enough: the critical section is one `Vec::push`, far cheaper
/// than the HTTP request around it.
#[derive(Debug)]
pub struct Recorder {
    started: Instant,
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    samples: Vec<Sample>,
    per_replica: BTreeMap<String, u64>,
    per_backend: BTreeMap<String, u64>,
    replicas: Vec<String>,
}

/// Everything a [`Recorder`] collected, ready for analysis.
#[derive(Debug, Clone, Default)]
pub struct Recording {
    /// Every request, in completion order.
    pub samples: Vec<Sample>,
    /// Responses per `X-RateGuard-Replica` value.
    pub per_replica: BTreeMap<String, u64>,
    /// Responses per `X-Backend` value.
    pub per_backend: BTreeMap<String, u64>,
    /// Wall time from the recorder's start to [`Recorder::finish`].
    pub elapsed: Duration,
    /// The replicas' names, indexed by [`Sample::replica`].
    pub replicas: Vec<String>,
}

impl Recording {
    /// `name`'s index in [`Recording::replicas`], added if new.
    pub fn replica_index(&mut self, name: &str) -> u16 {
        intern(&mut self.replicas, name)
    }

    /// The name of `sample`'s replica.
    pub fn replica_of(&self, sample: &Sample) -> Option<&str> {
        sample
            .replica
            .and_then(|i| self.replicas.get(usize::from(i)))
            .map(String::as_str)
    }

    /// Appends `part`'s samples, shifted by `offset_us` and with their
    /// replicas renumbered into this recording's table.
    pub fn append(&mut self, part: &Recording, offset_us: u64) {
        let map: Vec<u16> = part
            .replicas
            .iter()
            .map(|name| intern(&mut self.replicas, name))
            .collect();
        self.samples.extend(part.samples.iter().map(|s| Sample {
            at_us: s.at_us + offset_us,
            sent_us: s.sent_us + offset_us,
            replica: s.replica.and_then(|i| map.get(usize::from(i)).copied()),
            ..*s
        }));
        for (k, v) in &part.per_replica {
            *self.per_replica.entry(k.clone()).or_insert(0) += v;
        }
        for (k, v) in &part.per_backend {
            *self.per_backend.entry(k.clone()).or_insert(0) += v;
        }
    }
}

/// `name`'s index in `table`, pushed if new (saturating at `u16::MAX`
/// names, far beyond any lab topology).
fn intern(table: &mut Vec<String>, name: &str) -> u16 {
    let i = table.iter().position(|n| n == name).unwrap_or_else(|| {
        table.push(name.to_owned());
        table.len() - 1
    });
    u16::try_from(i).unwrap_or(u16::MAX)
}

impl Recorder {
    /// A recorder whose clock starts now.
    pub fn new() -> Self {
        Self {
            started: Instant::now(),
            inner: Mutex::default(),
        }
    }

    /// The instant all `at_us` values are relative to.
    pub fn started(&self) -> Instant {
        self.started
    }

    /// `t` as µs since the start (0 for instants before it).
    pub fn offset_us(&self, t: Instant) -> u64 {
        micros(t.saturating_duration_since(self.started))
    }

    /// Records a request that was due at `due` and finished now.
    pub fn record(
        &self,
        due: Instant,
        outcome: Outcome,
        client: u32,
        replica: Option<&str>,
        backend: Option<&str>,
    ) {
        let latency_us = micros(due.elapsed());
        let at_us = self.offset_us(due);
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let replica_index = replica.map(|r| intern(&mut inner.replicas, r));
        inner.samples.push(Sample {
            at_us,
            latency_us,
            outcome,
            client,
            sent_us: at_us,
            replica: replica_index,
        });
        if let Some(r) = replica {
            bump(&mut inner.per_replica, r);
        }
        if let Some(b) = backend {
            bump(&mut inner.per_backend, b);
        }
    }

    /// Adds samples (and responses per replica and backend) collected
    /// elsewhere, e.g. by one open-model worker, whose [`Sample::replica`]
    /// index `per_replica` (in its order).
    pub fn extend(
        &self,
        samples: Vec<Sample>,
        per_replica: Vec<(String, u64)>,
        per_backend: Vec<(String, u64)>,
    ) {
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let map: Vec<u16> = per_replica
            .iter()
            .map(|(name, _)| intern(&mut inner.replicas, name))
            .collect();
        inner.samples.extend(samples.into_iter().map(|s| Sample {
            replica: s.replica.and_then(|i| map.get(usize::from(i)).copied()),
            ..s
        }));
        for (k, n) in per_replica {
            *inner.per_replica.entry(k).or_insert(0) += n;
        }
        for (k, n) in per_backend {
            *inner.per_backend.entry(k).or_insert(0) += n;
        }
    }

    /// Takes what was recorded so far.
    pub fn finish(&self) -> Recording {
        let elapsed = self.started.elapsed();
        let mut inner = self.inner.lock().unwrap_or_else(PoisonError::into_inner);
        let inner = std::mem::take(&mut *inner);
        Recording {
            samples: inner.samples,
            per_replica: inner.per_replica,
            per_backend: inner.per_backend,
            elapsed,
            replicas: inner.replicas,
        }
    }
}

impl Default for Recorder {
    fn default() -> Self {
        Self::new()
    }
}

fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
    match map.get_mut(key) {
        Some(n) => *n += 1,
        None => {
            map.insert(key.to_owned(), 1);
        }
    }
}

/// A duration in whole µs, saturating.
pub(crate) fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_counts_and_offsets() {
        let rec = Recorder::new();
        let due = rec.started() + Duration::from_millis(5);
        rec.record(due, Outcome::Allowed, 0, Some("gw-1"), Some("b1"));
        rec.record(due, Outcome::Denied, 1, Some("gw-1"), None);
        rec.record(due, Outcome::Error, 1, None, None);
        let r = rec.finish();
        assert_eq!(r.samples.len(), 3);
        assert!(r.samples.iter().all(|s| s.at_us == 5_000));
        assert_eq!(r.per_replica.get("gw-1"), Some(&2));
        assert_eq!(r.per_backend.get("b1"), Some(&1));
        assert_eq!(r.replica_of(&r.samples[1]), Some("gw-1"));
        assert_eq!(r.replica_of(&r.samples[2]), None);
        assert_eq!(r.samples[0].sent_us, r.samples[0].at_us);
        assert!(rec.finish().samples.is_empty(), "finish takes the samples");
    }
}
