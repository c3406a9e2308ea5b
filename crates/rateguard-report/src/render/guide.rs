//! "How to read this" and the findings, computed from the run's data: no
//! conclusion here is written in advance.

use std::fmt::Write as _;

use rateguard_lab_model::ScenarioId;

use super::table::{failed_open_text, num, outage_facts};
use super::{esc, StoreStyle};
use crate::model::{Record, Summary, SUSTAINED_TOLERANCE_PCT};

mod round_trips;

const HOW_TO_READ: &str = "<h2>How to read this report</h2>\n<ul>\n\
<li><b>429 accuracy</b> charts compare cumulative allowed responses with an ideal single token \
bucket (dashed). The question they answer: does the limit hold when requests for one client are \
spread by nginx over several gateway replicas? A line above the dashed one lets clients exceed \
their limit.</li>\n\
<li><b>Which store to run</b> names a store per workload (key mix × store RTT) from the costs \
this run separates: Redis CPU per decision, then gateway CPU per request (both at capacity), \
then p99 at the same offered load, among the stores that held the limit exactly; a rank needs \
spreads over ≥ 3 repetitions that do not overlap, otherwise the tie is stated. <b>Sizing</b> \
turns the same CPU figures into cores per 100 000 decisions or requests per second.</li>\n\
<li><b>Accuracy against one exact bucket</b>: per store, the most a key got beyond a token \
bucket's bound in any 100 ms or 1 s window (over-admission, ≤ 0 when exact) and the share of \
the ideal it refused (under-admission).</li>\n\
<li><b>CPU per request</b> charges each process role's CPU time to the requests it served: \
it separates the stores even when the machine is saturated.</li>\n\
<li><b>Capacity</b> is the highest open-model arrival rate that met the SLO, searched rather \
than stepped; whiskers are min–max over repetitions: when they overlap, this machine cannot tell \
two subjects apart. A <i>loadgen-bound</i> result is the generator's limit, not the subject's.</li>\n\
<li><b>Latency at the same load</b> and <b>latency percentiles</b> come from the open-model \
throughput scenario at 25/50/75 % of the slowest store's capacity (a fixed arrival rate, so a slow \
response does not hide the ones queued behind it): every subject at the same offered load.</li>\n\
<li><b>Reference rows</b>: <i>none</i> is the gateways with no matching policy (the proxy's own \
cost), <i>nginx-limit-req</i> NGINX's own limiter in place of the gateways (per NGINX instance).</li>\n\
<li><b>Redis round trips and commands per request</b>: the solid bars count Lua script calls \
per request, each one trip to Redis (fewer than 1 when one call decides several requests); the \
light bars count every command Redis ran, including the script's own TIME, GET and SET, which \
cost Redis CPU but no round trip.</li>\n\
<li><b>Requests per replica / backend</b> show nginx's round-robin spread.</li>\n\
<li><b>Store outage</b> runs once per <code>on_error</code> mode: <i>allow</i> serves requests \
without limits while Redis is down (<i>failed open</i>), <i>deny</i> answers 503, <i>local</i> \
enforces each limit in every replica's memory at 1/<code>replicas_hint</code>. Each mode's table \
sets what was admitted while down against an ideal bucket (and, for local, its bound), and the \
recovery: from the restart until the replicas stopped deciding without the store.</li>\n\
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

fn findings(s: &Summary, stores: &[StoreStyle]) -> Vec<String> {
    let mut out: Vec<String> = [ScenarioId::Burst, ScenarioId::Sustained]
        .into_iter()
        .filter_map(|sc| accuracy_line(s, stores, sc))
        .collect();

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
        for r in s.records_of(st.subject, ScenarioId::StoreOutage) {
            out.extend(outage_finding(st, r));
        }
    }
    out.extend(choice(s, stores));
    if out.is_empty() {
        out.push("This run has no records to draw findings from.".to_owned());
    }
    out
}

/// `Outage, store (on_error = mode)`: what passed while down, the ideal,
/// and the recovery.
fn outage_finding(st: &StoreStyle, r: &Record) -> Option<String> {
    let f = outage_facts(r)?;
    let mode = r
        .key()
        .on_error
        .map_or_else(String::new, |m| format!(" (on_error = {m})"));
    let resumed = match r
        .outage_window
        .and_then(|w| w.recovery_ms.map(|sp| (sp, w)))
    {
        Some((sp, w)) => format!(
            "the store decided again {} ms after the restart (median of {} runs; {} – {} ms)",
            num(sp.median, 0),
            w.recovered,
            num(sp.min, 0),
            num(sp.max, 0)
        ),
        None => f.resume_after_restart_ms.map_or_else(
            || "limits were not seen enforced again within the run".to_owned(),
            |ms| format!("limits were enforced again {ms} ms after the restart"),
        ),
    };
    let ideal = r.outage_window.map_or_else(String::new, |w| {
        format!(
            " (median per run: {} admitted, where an ideal bucket admits {})",
            num(w.admitted.median, 0),
            num(w.ideal.median, 0)
        )
    });
    let failed_open = failed_open_text(r).map_or_else(String::new, |t| {
        format!(" The gateways failed open (let requests through without the store) {t}.")
    });
    Some(format!(
        "<b>Outage, {}{mode}</b>: while the store was down, {} requests were served, {} denied and {} failed (first run; worst slot p99 {} µs){ideal}; {resumed}.{failed_open}",
        esc(&st.name), num(f.during.0 as f64, 0), num(f.during.1 as f64, 0), num(f.during.2 as f64, 0), num(f.worst_p99_us as f64, 0)
    ))
}

/// The limit verdicts and the round-trip sentence (the ranking itself is
/// the verdict at the top).
fn choice(s: &Summary, stores: &[StoreStyle]) -> Vec<String> {
    let mut out = Vec::new();
    let (holding, leaking): (Vec<&StoreStyle>, Vec<&StoreStyle>) = stores
        .iter()
        .filter(|st| s.held_exactly(st.subject).is_some())
        .partition(|st| s.held_exactly(st.subject) == Some(true));
    let rule = format!("burst exactly the ideal bucket's count, sustained within ±{SUSTAINED_TOLERANCE_PCT} % of it, no window above B + R·w");
    if !leaking.is_empty() {
        let names: Vec<String> = leaking.iter().map(|st| esc(&st.name)).collect();
        out.push(format!(
            "<b>Did not hold the limit across {} replicas</b> ({rule}): {}. Use such a store only where each replica may enforce its own limit.",
            s.settings.replicas, names.join(", ")
        ));
    }
    if !holding.is_empty() {
        let names: Vec<String> = holding.iter().map(|st| esc(&st.name)).collect();
        let trips = round_trips::sentence(s, &holding);
        out.push(format!(
            "<b>Held the limit</b> ({rule}): {}; see <i>Which store to run</i> for how they rank per workload.{}",
            names.join(", "),
            trips.map_or_else(String::new, |t| format!(" {t}"))
        ));
    }
    out
}
