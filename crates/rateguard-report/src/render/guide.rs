//! "How to read this" and the findings, computed from the run's data: no
//! conclusion here is written in advance.

use std::fmt::Write as _;

use rateguard_contract::ScenarioId;

use super::table::{failed_open_text, num, outage_facts};
use super::{esc, StoreStyle};
use crate::model::{Record, Subject, Summary};

mod round_trips;

/// A store holds a limit when its burst error is within this many percent…
const BURST_TOLERANCE_PCT: f64 = 1.0;
/// …and its sustained error within this many (arrival timing blurs the ideal).
const SUSTAINED_TOLERANCE_PCT: f64 = 5.0;

const HOW_TO_READ: &str = "<h2>How to read this report</h2>\n<ul>\n\
<li><b>429 accuracy</b> charts compare cumulative allowed responses with an ideal single token \
bucket (dashed). The question they answer: does the limit hold when requests for one client are \
spread by nginx over several gateway replicas? A line above the dashed one lets clients exceed \
their limit.</li>\n\
<li><b>Latency percentiles</b> come from the open-model throughput scenario (a fixed arrival \
rate, so a slow response does not hide the ones queued behind it). Read the right end of the \
curves for the tail your users see.</li>\n\
<li><b>Throughput</b> bars are medians over repetitions, with min–max whiskers: when whiskers of \
two stores overlap, this machine cannot tell them apart.</li>\n\
<li><b>Redis round trips and commands per request</b>: the solid bars count Lua script calls \
per request, each one trip to Redis (fewer than 1 when one call decides several requests); the \
light bars count every command Redis ran, including the script's own TIME, GET and SET, which \
cost Redis CPU but no round trip.</li>\n\
<li><b>Requests per replica / backend</b> show nginx's round-robin spread.</li>\n\
<li><b>Store outage</b> shows fail-open behaviour: while Redis is down requests are still served \
(without limits: <i>failed open</i>, counted by the gateways); the markers show when limits \
are enforced again.</li>\n\
<li>All figures come from one machine (see <i>The run</i>); compare stores within a run, not \
across machines.</li>\n</ul>\n";

/// The guide section: how to read the charts, then the findings.
pub(super) fn guide(s: &Summary, stores: &[StoreStyle]) -> String {
    let mut out = String::from(HOW_TO_READ);
    out.push_str("<h2>What this run shows</h2>\n<ul>\n");
    for line in findings(s, stores) {
        let _ = writeln!(out, "<li>{line}</li>");
    }
    out.push_str("</ul>\n");
    out
}

/// One accuracy verdict: `name: allowed A of E (exact | +x %)`.
fn accuracy_line(s: &Summary, stores: &[StoreStyle], scenario: ScenarioId) -> Option<String> {
    let parts: Vec<String> = stores
        .iter()
        .filter_map(|st| {
            let r = s.first(st.subject, scenario)?;
            let expected = r.expected_allowed?;
            let err = r.accuracy_error_pct?;
            let verdict = if r.allowed == expected {
                "exact".to_owned()
            } else {
                format!("{err:+.2} %")
            };
            Some(format!(
                "{} allowed {} of {} ({verdict})",
                esc(&st.name),
                num(r.allowed as f64, 0),
                num(expected as f64, 0)
            ))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("<b>{scenario} accuracy</b>: {}.", parts.join("; ")))
}

/// Whether `store` held its limits in this run; `None` when not measured.
fn holds_limit(s: &Summary, subject: Subject) -> Option<bool> {
    let within = |sc: ScenarioId, tol: f64| {
        s.first(subject, sc)?
            .accuracy_error_pct
            .map(|e| e.abs() <= tol)
    };
    match (
        within(ScenarioId::Burst, BURST_TOLERANCE_PCT),
        within(ScenarioId::Sustained, SUSTAINED_TOLERANCE_PCT),
    ) {
        (None, None) => None,
        (b, su) => Some(b.unwrap_or(true) && su.unwrap_or(true)),
    }
}

fn findings(s: &Summary, stores: &[StoreStyle]) -> Vec<String> {
    let mut out: Vec<String> = [ScenarioId::Burst, ScenarioId::Sustained]
        .into_iter()
        .filter_map(|sc| accuracy_line(s, stores, sc))
        .collect();

    // Throughput and tail latency, fastest first.
    let mut tp: Vec<(&StoreStyle, &Record)> = stores
        .iter()
        .filter_map(|st| Some((st, s.first(st.subject, ScenarioId::Throughput)?)))
        .collect();
    tp.sort_by(|a, b| b.1.throughput_rps.total_cmp(&a.1.throughput_rps));
    if let Some(&(_, top)) = tp.first() {
        let parts: Vec<String> = tp
            .iter()
            .map(|(st, r)| {
                let ratio = if top.throughput_rps > 0.0 {
                    r.throughput_rps / top.throughput_rps
                } else {
                    0.0
                };
                format!(
                    "{} {} rps ({ratio:.2}×), p99 {} µs",
                    esc(&st.name),
                    num(r.throughput_rps, 0),
                    num(r.latency_us.p99 as f64, 0)
                )
            })
            .collect();
        out.push(format!(
            "<b>Throughput</b> (median, relative to the fastest): {}.",
            parts.join("; ")
        ));
    }
    let steps: Vec<String> = tp
        .iter()
        .filter(|(_, r)| !r.rate_levels.is_empty())
        .map(|(st, r)| {
            let best = r
                .rate_levels
                .iter()
                .filter(|l| l.sustained)
                .map(|l| l.target_rps)
                .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
            match best {
                Some(rps) => format!("{} {} rps", esc(&st.name), num(rps, 0)),
                None => format!("{} none of the offered rates", esc(&st.name)),
            }
        })
        .collect();
    if !steps.is_empty() {
        out.push(format!(
            "<b>Highest offered rate sustained</b> (throughput steps): {}.",
            steps.join("; ")
        ));
    }
    let cmds: Vec<String> = stores
        .iter()
        .filter_map(|st| {
            let r = s.first(st.subject, ScenarioId::Throughput)?;
            let all = r.store_commands_per_request?;
            let trips = r.script_calls_per_request().map_or_else(String::new, |t| {
                format!("{t:.2} script calls (round trips), ")
            });
            Some(format!("{} {trips}{all:.2} commands in all", esc(&st.name)))
        })
        .collect();
    if !cmds.is_empty() {
        out.push(format!(
            "<b>Redis per request</b> (throughput scenario): {}.",
            cmds.join("; ")
        ));
    }
    for st in stores {
        let Some(r) = s.first(st.subject, ScenarioId::StoreOutage) else {
            continue;
        };
        let Some(f) = outage_facts(r) else { continue };
        let resumed = f.resume_after_restart_ms.map_or_else(
            || "limits were not seen enforced again within the run".to_owned(),
            |ms| format!("limits were enforced again {ms} ms after the restart"),
        );
        let failed_open = failed_open_text(r).map_or_else(String::new, |t| {
            format!(" The gateways failed open (let requests through without the store) {t}.")
        });
        out.push(format!(
            "<b>Outage, {}</b>: while the store was down, {} requests were served, {} denied and {} failed (worst slot p99 {} µs); {resumed}.{failed_open}",
            esc(&st.name), num(f.during.0 as f64, 0), num(f.during.1 as f64, 0), num(f.during.2 as f64, 0), num(f.worst_p99_us as f64, 0)
        ));
    }
    out.extend(choice(s, stores, &tp));
    if out.is_empty() {
        out.push("This run has no records to draw findings from.".to_owned());
    }
    out
}

/// The "which store to choose" lines.
fn choice(
    s: &Summary,
    stores: &[StoreStyle],
    by_throughput: &[(&StoreStyle, &Record)],
) -> Vec<String> {
    let mut out = Vec::new();
    let (holding, leaking): (Vec<&StoreStyle>, Vec<&StoreStyle>) = stores
        .iter()
        .filter(|st| holds_limit(s, st.subject).is_some())
        .partition(|st| holds_limit(s, st.subject) == Some(true));
    let rule = format!("burst within ±{BURST_TOLERANCE_PCT} % and sustained within ±{SUSTAINED_TOLERANCE_PCT} % of the ideal bucket");
    if !leaking.is_empty() {
        let names: Vec<String> = leaking.iter().map(|st| esc(&st.name)).collect();
        out.push(format!(
            "<b>Did not hold the limit across {} replicas</b> ({rule}): {}. Use such a store only where each replica may enforce its own limit.",
            s.settings.replicas, names.join(", ")
        ));
    }
    let candidates: Vec<(&StoreStyle, &Record)> = by_throughput
        .iter()
        .filter(|(st, _)| holding.iter().any(|h| h.subject == st.subject))
        .copied()
        .collect();
    let trips = round_trips::sentence(s, &holding);
    if candidates.is_empty() {
        if !holding.is_empty() {
            let names: Vec<String> = holding.iter().map(|st| esc(&st.name)).collect();
            out.push(format!(
                "<b>Held the limit</b> ({rule}): {}; no throughput figures to rank them.{}",
                names.join(", "),
                trips.map_or_else(String::new, |t| format!(" {t}"))
            ));
        }
        return out;
    }
    out.push(format!(
        "<b>Which store to choose</b>: of the stores that held the limit ({rule}), {}{}",
        rank(&candidates),
        trips.map_or_else(String::new, |t| format!(" {t}"))
    ));
    out
}

/// How much load a store carried: the highest sustained offered rate when
/// the run stepped rates, else the median throughput; with its (min, max)
/// over repetitions when known.
fn capacity(r: &Record) -> (f64, Option<(f64, f64)>) {
    if r.rate_levels.is_empty() {
        let spread = r
            .spread
            .map(|s| (s.throughput_rps.min, s.throughput_rps.max));
        return (r.throughput_rps, spread);
    }
    let best = r
        .rate_levels
        .iter()
        .filter(|l| l.sustained)
        .map(|l| l.target_rps)
        .fold(0.0, f64::max);
    (best, None)
}

/// Two figures this run cannot tell apart: within 1 %, or overlapping spreads.
fn level(a: (f64, Option<(f64, f64)>), b: (f64, Option<(f64, f64)>)) -> bool {
    let close = (a.0 - b.0).abs() <= 0.01 * a.0.abs().max(b.0.abs());
    let overlap = match (a.1, b.1) {
        (Some((a_lo, a_hi)), Some((b_lo, b_hi))) => a_lo <= b_hi && b_lo <= a_hi,
        _ => false,
    };
    close || overlap
}

/// The ranking sentence: the store(s) that carried the most load, then the
/// tail latency among those this run cannot separate.
fn rank(candidates: &[(&StoreStyle, &Record)]) -> String {
    let metric = if candidates[0].1.rate_levels.is_empty() {
        "median throughput"
    } else {
        "sustained offered rate"
    };
    type Cap = (f64, Option<(f64, f64)>);
    let mut by_cap: Vec<(&StoreStyle, &Record, Cap)> = candidates
        .iter()
        .map(|&(st, r)| (st, r, capacity(r)))
        .collect();
    by_cap.sort_by(|a, b| b.2 .0.total_cmp(&a.2 .0));
    let top = by_cap[0].2;
    let (tied, rest): (Vec<&(&StoreStyle, &Record, Cap)>, Vec<_>) =
        by_cap.iter().partition(|c| level(top, c.2));
    let names: Vec<String> = tied.iter().map(|c| esc(&c.0.name)).collect();
    let mut line = if tied.len() == 1 {
        format!(
            "{} had the highest {metric} ({} rps).",
            names[0],
            num(top.0, 0)
        )
    } else {
        format!(
            "{} were level on {metric} (about {} rps): this run cannot separate them on load.",
            names.join(", "),
            num(top.0, 0)
        )
    };
    if let Some(next) = rest.first() {
        let _ = write!(
            line,
            " Next: {} ({} rps).",
            esc(&next.0.name),
            num(next.2 .0, 0)
        );
    }
    if tied.len() > 1 {
        let mut by_p99: Vec<_> = tied.iter().map(|c| (c.0, c.1)).collect();
        by_p99.sort_by_key(|(_, r)| r.latency_us.p99);
        let (low, r) = by_p99[0];
        let p99 = |r: &Record| {
            (
                r.latency_us.p99 as f64,
                r.spread.map(|s| (s.p99_us.min, s.p99_us.max)),
            )
        };
        let separated = !level(p99(r), p99(by_p99[1].1));
        let _ = write!(
            line,
            " Among them, the lowest p99 at the reference load: {} ({} µs){}.",
            esc(&low.name),
            num(r.latency_us.p99 as f64, 0),
            if separated {
                ""
            } else {
                ", but within the spread of the next, so no clear winner"
            }
        );
    }
    line
}
