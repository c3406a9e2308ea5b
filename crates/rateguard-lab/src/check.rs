//! `burst URL` and `distribution URL`: quick checks against any running
//! gateway (or nginx in front of several), one colour-coded line per
//! request and a summary.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anstyle::{AnsiColor, Style};
use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rateguard_loadtests::record::{replica_and_backend, API_KEY_HEADER};
use rateguard_loadtests::Outcome;

use crate::LabError;

type HttpClient = Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>;

/// One answered (or failed) request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Line {
    /// Request number, from 1.
    pub n: usize,
    /// Status code (0 for a transport error).
    pub status: u16,
    /// Classification.
    pub outcome: Outcome,
    /// `X-RateGuard-Replica`, if any.
    pub replica: Option<String>,
    /// `X-Backend`, if any.
    pub backend: Option<String>,
    /// Time to the full body.
    pub latency: Duration,
}

/// Tallies of a check.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CheckSummary {
    /// 2xx.
    pub allowed: usize,
    /// 429.
    pub throttled: usize,
    /// Anything else.
    pub errors: usize,
    /// Responses per replica.
    pub per_replica: BTreeMap<String, usize>,
    /// Responses per backend.
    pub per_backend: BTreeMap<String, usize>,
}

impl CheckSummary {
    /// The counts over `lines`.
    pub fn of(lines: &[Line]) -> Self {
        let mut summary = Self::default();
        lines.iter().for_each(|l| summary.add(l));
        summary
    }

    fn add(&mut self, l: &Line) {
        match l.outcome {
            Outcome::Allowed => self.allowed += 1,
            Outcome::Denied => self.throttled += 1,
            Outcome::Error => self.errors += 1,
        }
        if let Some(r) = &l.replica {
            *self.per_replica.entry(r.clone()).or_insert(0) += 1;
        }
        if let Some(b) = &l.backend {
            *self.per_backend.entry(b.clone()).or_insert(0) += 1;
        }
    }

    /// The summary as printed.
    pub fn render(&self) -> String {
        let mut s = format!(
            "allowed {}  throttled {}  errors {}\n",
            self.allowed, self.throttled, self.errors
        );
        for (name, map) in [
            ("replica", &self.per_replica),
            ("backend", &self.per_backend),
        ] {
            for (k, v) in map {
                s.push_str(&format!("  {name} {k:<14} {v}\n"));
            }
        }
        s
    }
}

/// Sends `requests` at once with one API key: with capacity C, exactly C
/// should be allowed across all replicas. `color`: ANSI colours on.
pub async fn burst(
    url: &str,
    requests: usize,
    api_key: &str,
    color: bool,
) -> Result<CheckSummary, LabError> {
    let client = client();
    let uri = parse(url)?;
    let mut set = tokio::task::JoinSet::new();
    for n in 1..=requests {
        let (client, uri, key) = (client.clone(), uri.clone(), api_key.to_owned());
        set.spawn(async move { send(&client, uri, &key, n).await });
    }
    let mut lines = Vec::new();
    while let Some(line) = set.join_next().await {
        lines.push(line.map_err(|e| LabError::Options(format!("request task failed: {e}")))?);
    }
    lines.sort_by_key(|l| l.n);
    Ok(print_all(&lines, color))
}

/// Sends `requests` one after another and shows who answered each.
pub async fn distribution(
    url: &str,
    requests: usize,
    api_key: &str,
    color: bool,
) -> Result<CheckSummary, LabError> {
    let lines = sequential(url, requests, api_key, |line| {
        println!("{}", paint(line, color));
    })
    .await?;
    let summary = CheckSummary::of(&lines);
    print!("{}", summary.render());
    Ok(summary)
}

/// Sends `requests` one after another with one API key, calling `each` on
/// every answer as it comes; the answers in order.
pub async fn sequential(
    url: &str,
    requests: usize,
    api_key: &str,
    mut each: impl FnMut(&Line),
) -> Result<Vec<Line>, LabError> {
    let client = client();
    let uri = parse(url)?;
    let mut lines = Vec::new();
    for n in 1..=requests {
        let line = send(&client, uri.clone(), api_key, n).await;
        each(&line);
        lines.push(line);
    }
    Ok(lines)
}

fn print_all(lines: &[Line], color: bool) -> CheckSummary {
    let mut summary = CheckSummary::default();
    for l in lines {
        println!("{}", paint(l, color));
        summary.add(l);
    }
    print!("{}", summary.render());
    summary
}

/// One line: green allowed, yellow throttled, red error (plain text when
/// `color` is off).
pub fn paint(l: &Line, color: bool) -> String {
    let (label, hue) = match l.outcome {
        Outcome::Allowed => ("ALLOWED  ", AnsiColor::Green),
        Outcome::Denied => ("THROTTLED", AnsiColor::Yellow),
        Outcome::Error => ("ERROR    ", AnsiColor::Red),
    };
    let style = if color {
        Style::new().fg_color(Some(hue.into())).bold()
    } else {
        Style::new()
    };
    format!(
        "{:>4} {style}{label}{style:#} {:>3}  replica={:<10} backend={:<12} {:>7.1} ms",
        l.n,
        l.status,
        l.replica.as_deref().unwrap_or("-"),
        l.backend.as_deref().unwrap_or("-"),
        l.latency.as_secs_f64() * 1000.0
    )
}

fn client() -> HttpClient {
    Client::builder(TokioExecutor::new()).build_http()
}

fn parse(url: &str) -> Result<http::Uri, LabError> {
    url.parse()
        .map_err(|e| LabError::Options(format!("bad URL {url:?}: {e}")))
}

async fn send(client: &HttpClient, uri: http::Uri, key: &str, n: usize) -> Line {
    let started = Instant::now();
    let mut line = Line {
        n,
        status: 0,
        outcome: Outcome::Error,
        replica: None,
        backend: None,
        latency: Duration::ZERO,
    };
    let request = http::Request::get(uri)
        .header(API_KEY_HEADER, key)
        .body(Empty::<Bytes>::new());
    if let Ok(request) = request {
        if let Ok(resp) = client.request(request).await {
            (line.replica, line.backend) = replica_and_backend(resp.headers());
            line.status = resp.status().as_u16();
            line.outcome = Outcome::from_status(line.status);
            if resp.into_body().collect().await.is_err() {
                line.outcome = Outcome::Error;
            }
        }
    }
    line.latency = started.elapsed();
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(outcome: Outcome) -> Line {
        Line {
            n: 3,
            status: 429,
            outcome,
            replica: Some("gw-2".into()),
            backend: None,
            latency: Duration::from_micros(1500),
        }
    }

    #[test]
    fn lines_are_coloured_only_when_asked() {
        let plain = paint(&line(Outcome::Denied), false);
        assert!(plain.contains("THROTTLED") && plain.contains("replica=gw-2"));
        assert!(!plain.contains('\u{1b}'), "{plain:?}");
        let coloured = paint(&line(Outcome::Denied), true);
        assert!(coloured.contains("\u{1b}[33m"), "yellow: {coloured:?}");
    }

    #[test]
    fn summary_counts_outcomes_and_answerers() {
        let mut s = CheckSummary::default();
        for o in [
            Outcome::Allowed,
            Outcome::Denied,
            Outcome::Denied,
            Outcome::Error,
        ] {
            s.add(&line(o));
        }
        assert_eq!((s.allowed, s.throttled, s.errors), (1, 2, 1));
        assert_eq!(s.per_replica.get("gw-2"), Some(&4));
        assert!(s.render().contains("throttled 2"));
    }
}
