//! "How to read this" and the findings, computed from the run's data: no
//! conclusion here is written in advance.

use std::fmt::Write as _;

use super::table::{num, outage_facts};
use super::{esc, StoreStyle};
use crate::model::{Record, Summary};

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
<li><b>Redis commands per request</b> is the store's cost per decision on the Redis side.</li>\n\
<li><b>Requests per replica / backend</b> show nginx's round-robin spread.</li>\n\
<li><b>Store outage</b> shows fail-open behaviour: while Redis is down requests are still served \
(without limits); the markers show when limits are enforced again.</li>\n\
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

fn rec<'a>(s: &'a Summary, store: &str, scenario: &str) -> Option<&'a Record> {
    s.record(store, scenario)
}

/// One accuracy verdict: `name: allowed A of E (exact | +x %)`.
fn accuracy_line(s: &Summary, stores: &[StoreStyle], scenario: &str) -> Option<String> {
    let parts: Vec<String> = stores
        .iter()
        .filter_map(|st| {
            let r = rec(s, &st.name, scenario)?;
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
fn holds_limit(s: &Summary, store: &str) -> Option<bool> {
    let within = |sc: &str, tol: f64| {
        rec(s, store, sc)?
            .accuracy_error_pct
            .map(|e| e.abs() <= tol)
    };
    match (
        within("burst", BURST_TOLERANCE_PCT),
        within("sustained", SUSTAINED_TOLERANCE_PCT),
    ) {
        (None, None) => None,
        (b, su) => Some(b.unwrap_or(true) && su.unwrap_or(true)),
    }
}

fn findings(s: &Summary, stores: &[StoreStyle]) -> Vec<String> {
    let mut out: Vec<String> = ["burst", "sustained"]
        .iter()
        .filter_map(|sc| accuracy_line(s, stores, sc))
        .collect();

    // Throughput and tail latency, fastest first.
    let mut tp: Vec<(&StoreStyle, &Record)> = stores
        .iter()
        .filter_map(|st| Some((st, rec(s, &st.name, "throughput")?)))
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
            let v = rec(s, &st.name, "throughput")?.store_commands_per_request?;
            Some(format!("{} {v:.2}", esc(&st.name)))
        })
        .collect();
    if !cmds.is_empty() {
        out.push(format!(
            "<b>Redis commands per request</b> (throughput scenario): {}.",
            cmds.join("; ")
        ));
    }
    for st in stores {
        let Some(r) = rec(s, &st.name, "store-outage") else {
            continue;
        };
        let Some(f) = outage_facts(r) else { continue };
        let resumed = f.resume_after_restart_ms.map_or_else(
            || "limits were not seen enforced again within the run".to_owned(),
            |ms| format!("limits were enforced again {ms} ms after the restart"),
        );
        out.push(format!(
            "<b>Outage, {}</b>: while the store was down, {} requests were served, {} denied and {} failed (worst slot p99 {} µs); {resumed}.",
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
        .filter(|st| holds_limit(s, &st.name).is_some())
        .partition(|st| holds_limit(s, &st.name) == Some(true));
    let rule = format!("burst within ±{BURST_TOLERANCE_PCT} % and sustained within ±{SUSTAINED_TOLERANCE_PCT} % of the ideal bucket");
    if !leaking.is_empty() {
        let names: Vec<String> = leaking.iter().map(|st| esc(&st.name)).collect();
        out.push(format!(
            "<b>Did not hold the limit across {} replicas</b> ({rule}): {}. Use such a store only where each replica may enforce its own limit.",
            s.settings.replicas, names.join(", ")
        ));
    }
    let best: Vec<&(&StoreStyle, &Record)> = by_throughput
        .iter()
        .filter(|(st, _)| holding.iter().any(|h| h.name == st.name))
        .collect();
    match best.as_slice() {
        [] if holding.is_empty() => {}
        [] => out.push(format!(
            "<b>Held the limit</b> ({rule}): {}; no throughput figures to rank them.",
            holding
                .iter()
                .map(|st| esc(&st.name))
                .collect::<Vec<_>>()
                .join(", ")
        )),
        [(first, r1), rest @ ..] => {
            let mut line = format!(
                "<b>Which store to choose</b>: of the stores that held the limit ({rule}), {} had the highest median throughput ({} rps).",
                esc(&first.name), num(r1.throughput_rps, 0)
            );
            if let Some((second, r2)) = rest.first() {
                let overlap = match (r1.spread, r2.spread) {
                    (Some(a), Some(b)) => a.throughput_rps.min <= b.throughput_rps.max,
                    _ => false,
                };
                let _ = write!(
                    line,
                    " Next: {} ({} rps){}.",
                    esc(&second.name),
                    num(r2.throughput_rps, 0),
                    if overlap {
                        ", within the run-to-run spread of the first, so treat them as equal on this machine"
                    } else {
                        ""
                    }
                );
            }
            if let Some((low, r)) = best.iter().min_by_key(|(_, r)| r.latency_us.p99) {
                let _ = write!(
                    line,
                    " Lowest p99 among them: {} ({} µs).",
                    esc(&low.name),
                    num(r.latency_us.p99 as f64, 0)
                );
            }
            out.push(line);
        }
    }
    out
}
