//! What opens the report: the verdict per workload ([`Summary::verdicts`]),
//! the rule it follows, and the sizing table (cores per 100 000 decisions
//! or requests per second at capacity) with a sentence turning a row into a
//! deployment.

use std::fmt::Write as _;

use rateguard_lab_model::{Role, ScenarioId};

use super::table::num;
use super::{esc, swatch, StoreStyle};
use crate::model::{Spread, Summary, Workload, MIN_REPETITIONS, SUSTAINED_TOLERANCE_PCT};

/// Cores for 100 000 per second at `us` µs each.
const PER_100K: f64 = 100_000.0 / 1e6;

/// The verdict section.
pub(super) fn section(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    out.push_str("<h2 id=\"verdict\">Which store to run</h2>\n<ul class=\"verdict\">\n");
    for v in s.verdicts() {
        let details = if v.details.is_empty() {
            String::new()
        } else {
            format!(
                "<br><span class=\"spread\">{}</span>",
                esc(&v.details.join("; "))
            )
        };
        let _ = writeln!(
            out,
            "<li><span class=\"w\">{}</span> <b>{}</b>: {}{details}</li>",
            esc(&v.workload.label()),
            esc(&v.choice()),
            esc(&v.reason)
        );
    }
    out.push_str("</ul>\n");
    let held: Vec<String> = s.candidates().iter().map(|k| k.to_string()).collect();
    let not: Vec<String> = stores
        .iter()
        .filter(|st| st.subject.frontend.uses_store() && st.subject.store.is_some())
        .filter(|st| s.held_exactly(st.subject) == Some(false))
        .map(|st| st.name.clone())
        .collect();
    let _ = writeln!(
        out,
        "<p class=\"rule\"><b>The rule.</b> Among the stores that held the limit exactly across {} \
         replicas ({}; {}), rank by Redis CPU per decision at capacity (the shared, scarce \
         resource), then by gateway CPU per request at capacity, then by p99 at the same offered \
         load; a cost ranks only over ≥ {MIN_REPETITIONS} repetitions and where the spreads (min – \
         max over repetitions) do not overlap; otherwise the tie is stated. A workload is a key \
         mix at a store RTT. Capacity is evidence below, not a key: on one shared machine it is \
         bounded by every process at once. Rule for holding the limit: burst admitted exactly the \
         ideal bucket's count, sustained within ±{SUSTAINED_TOLERANCE_PCT} % of it, and no 100 ms or \
         1 s window above <i>B + R·w</i>.</p>",
        s.settings.replicas,
        if held.is_empty() {
            "none did".to_owned()
        } else {
            format!("held: {}", esc(&held.join(", ")))
        },
        if not.is_empty() {
            "every other store measured did".to_owned()
        } else {
            format!("did not: {}", esc(&not.join(", ")))
        },
    );
}

/// One sizing cell: a CPU figure in cores per 100 000/s, with spread.
fn cores(spread: Option<(Spread, usize)>, scale: f64) -> String {
    spread.map_or_else(
        || "–".to_owned(),
        |(sp, _)| {
            format!(
                "{:.2} <span class=\"spread\">({:.2} – {:.2})</span>",
                sp.median * PER_100K * scale,
                sp.min * PER_100K * scale,
                sp.max * PER_100K * scale
            )
        },
    )
}

/// The sizing table, and the sentence under it.
pub(super) fn sizing(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    out.push_str(
        "<h2 id=\"sizing\">Sizing</h2>\n<div class=\"scroll\"><table class=\"sizing\">\n<tr>\
         <th class=\"l\">store · workload</th><th>Redis cores per 100 000 decisions/s</th>\
         <th>… on the busiest shard</th><th>gateway cores per 100 000 requests/s</th>\
         <th>script calls per decision</th><th class=\"l\">held the limit</th></tr>\n",
    );
    let mut rows = 0;
    for w in s.workloads() {
        for st in stores
            .iter()
            .filter(|st| st.subject.frontend == rateguard_lab_model::Frontend::Gateway)
            .filter(|st| w.first_rtt || st.subject.has_store_server())
        {
            let Some(r) = s.load_record(st.subject, ScenarioId::Capacity, w) else {
                continue;
            };
            let redis = st
                .subject
                .has_store_server()
                .then(|| r.role_spread(Role::Store))
                .flatten();
            let shard = r
                .busiest_node_share
                .map_or_else(|| "–".to_owned(), |share| cores(redis, share));
            let held = match s.held_exactly(st.subject) {
                Some(true) => "yes",
                Some(false) => "no",
                None => "–",
            };
            let label = if st.subject.has_store_server() {
                w.label()
            } else {
                w.keys.to_string()
            };
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{} · {}</td><td>{}</td><td>{shard}</td><td>{}</td><td>{}</td><td class=\"l\">{held}</td></tr>",
                swatch(st),
                esc(&label),
                cores(redis, 1.0),
                cores(r.role_spread(Role::Gateway), 1.0),
                r.script_calls_per_request()
                    .map_or_else(|| "–".to_owned(), |c| format!("{c:.2}")),
            );
            rows += 1;
        }
    }
    out.push_str("</table></div>\n");
    if rows == 0 {
        out.push_str("<p class=\"nodata\">No capacity records in this run: nothing to size.</p>\n");
        return;
    }
    let _ = writeln!(
        out,
        "<p>From the CPU each role used per request at the capacity rate (user + system time, \
         median and min – max over repetitions), times 100 000: cores of this machine's CPU \
         ({}). A decision is one request's rate-limit check (one policy, one limit here); script \
         calls per decision below 1 mean the store merged decisions. <i>Busiest shard</i>: for a \
         store on several nodes, the Redis cores times the busiest node's share of the script \
         calls (one hot key lands on one shard).</p>",
        esc(&s.machine.cpu_model)
    );
    if let Some(line) = example(s) {
        let _ = writeln!(out, "<p class=\"example\">{line}</p>");
    }
}

/// `100 000 req/s of hot keys on redis-pipelined at 0 ms: ≈ … cores`.
fn example(s: &Summary) -> Option<String> {
    let verdicts = s.verdicts();
    let (store, w): (_, Workload) = verdicts
        .iter()
        .find_map(|v| v.store.map(|k| (k, v.workload)))
        .or_else(|| {
            let k = *s.candidates().first()?;
            Some((k, *s.workloads().first()?))
        })?;
    let subject = crate::model::Subject::gateway(store);
    let r = s.load_record(subject, ScenarioId::Capacity, w)?;
    let gateway = r.role_spread(Role::Gateway)?.0.median * PER_100K;
    let redis = r
        .role_spread(Role::Store)
        .map_or(0.0, |s| s.0.median * PER_100K);
    let shard = r.busiest_node_share.map(|share| redis * share);
    let redis_text = match shard {
        Some(busiest) => {
            format!("≈ {redis:.1} Redis cores in all, ≈ {busiest:.1} on the busiest shard")
        }
        None => format!("≈ {redis:.1} Redis cores"),
    };
    let one_process = if shard.unwrap_or(redis) > 1.0 {
        " One Redis process runs its scripts on one core, so that is more than one Redis can give: shard the keys (a cluster) or cut the cost per decision."
    } else {
        " One Redis process runs its scripts on one core, so one Redis holds that rate with room to spare."
    };
    Some(format!(
        "<b>Reading a row:</b> {} requests/s of the {} workload on <b>{}</b> need ≈ {gateway:.1} gateway cores and {redis_text}, as measured here (cores of this CPU; a slower or busier machine needs more).{one_process}",
        num(100_000.0, 0),
        esc(&w.label()),
        esc(&store.to_string())
    ))
}
