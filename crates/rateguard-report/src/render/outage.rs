//! The store-outage sections, one per `on_error` mode: how to read it, a
//! table (what was admitted while the store was down against the ideal
//! bucket and, for `local`, the bound; the 429s and errors; the recovery
//! time over the repetitions), then each store's timeline.

use std::fmt::Write as _;

use plotters::style::RGBColor;
use rateguard_contract::OnError;
use rateguard_lab_model::ScenarioId;

use super::table::{failed_open_text, num, opt, outage_facts, with_spread};
use super::{charts, esc, legend, section, section_with, swatch, Mark, StoreStyle};
use crate::model::{Record, Summary};

/// What a mode does while the store is down, and what to look for.
fn how_to_read(mode: OnError) -> &'static str {
    match mode {
        OnError::Allow => "Fail open: while Redis is down every request is let through without a limit (<i>failed open</i>), so <i>admitted while down</i> far exceeds the ideal bucket's allowance; the API stays up, the limits are gone.",
        OnError::Deny => "Fail closed: while Redis is down every decision is a <code>503</code>, so nothing is admitted (the ideal bucket would have admitted the column beside it); limits hold, the API is down.",
        OnError::Local => "Local fallback: while Redis is down each replica enforces every limit in its own memory at 1/<code>replicas_hint</code> of it (here <code>replicas_hint</code> = the replica count), so <i>admitted while down</i> stays near the ideal and under the bound <code>replicas × (⌊C/h⌋ + d·r/h)</code> per client (the local buckets start full); decisions are counted as <code>local_fallback</code>, denials are real 429s.",
    }
}

/// The outage records of `mode`, in store order (a record from before
/// modes existed counts as `allow`).
fn records_of<'a>(
    s: &'a Summary,
    stores: &'a [StoreStyle],
    mode: OnError,
) -> Vec<(&'a StoreStyle, &'a Record)> {
    stores
        .iter()
        .flat_map(|st| {
            s.records_of(st.subject, ScenarioId::StoreOutage)
                .filter(move |r| r.key().on_error == Some(mode))
                .map(move |r| (st, r))
        })
        .collect()
}

/// Every mode's section; "no data" when the run has no outage records.
pub(super) fn sections(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let mut any = false;
    for mode in OnError::ALL {
        let recs = records_of(s, stores, mode);
        if recs.is_empty() {
            continue;
        }
        any = true;
        let _ = write!(
            out,
            "<h2>Store outage, on_error = {mode}</h2>\n<p>{}</p>\n",
            how_to_read(mode)
        );
        table(out, mode, &recs);
        for (st, r) in recs.iter().filter(|(_, r)| !r.timeline.is_empty()) {
            timeline(out, st, r, mode);
        }
    }
    if !any {
        section(
            out,
            "Store outage",
            charts::no_data("the store-outage scenario"),
            "",
        );
    }
}

fn table(out: &mut String, mode: OnError, recs: &[(&StoreStyle, &Record)]) {
    out.push_str(
        "<div class=\"scroll\"><table>\n<tr><th class=\"l\">store</th><th>runs</th>\
         <th>down for</th><th>admitted while down</th><th>ideal bucket while down</th>\
         <th>bound (local)</th><th>429 while down</th><th>errors while down (503, transport)</th>\
         <th>recovery: store deciding again after restart</th><th>first 429 after restart (first run)</th>\
         <th>local decisions (whole scenario)</th><th>failed open (whole scenario)</th></tr>\n",
    );
    for (st, r) in recs {
        let w = r.outage_window;
        let spread = |pick: fn(&crate::model::OutageWindow) -> crate::model::Spread| {
            opt(w.as_ref(), |w| {
                with_spread(pick(w).median, Some(pick(w)), 0)
            })
        };
        let recovery = opt(w.as_ref(), |w| match w.recovery_ms {
            Some(sp) => format!(
                "{} ms, {} of {} runs",
                with_spread(sp.median, Some(sp), 0),
                w.recovered,
                w.runs
            ),
            None => format!("not within the run (0 of {})", w.runs),
        });
        let first_429 = opt(
            outage_facts(r).and_then(|f| f.resume_after_restart_ms),
            |ms| format!("{ms} ms"),
        );
        let down = format!("{:.1} s", down_secs(r));
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{down}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{recovery}</td><td>{first_429}</td><td>{}</td><td>{}</td></tr>",
            swatch(st),
            r.repetitions.len().max(1),
            spread(|w| w.admitted),
            spread(|w| w.ideal),
            opt(w.and_then(|w| w.bound), |b| num(b, 0)),
            spread(|w| w.denied),
            spread(|w| w.errors),
            opt(r.local_fallback.filter(|_| mode == OnError::Local), |n| num(n as f64, 0)),
            opt(failed_open_text(r), |t| t),
        );
    }
    out.push_str("</table></div>\n");
}

/// The first run's outage length, s.
fn down_secs(r: &Record) -> f64 {
    r.outage.map_or(0.0, |o| {
        o.restarted_at_ms.saturating_sub(o.killed_at_ms) as f64 / 1e3
    })
}

fn timeline(out: &mut String, st: &StoreStyle, r: &Record, mode: OnError) {
    let title = format!("Store outage: {}, on_error = {mode}", st.name);
    let chart = charts::outage_timeline(&title, &r.timeline, r.outage.as_ref());
    let failed_open = failed_open_text(r).map_or_else(
        || "Failed open: not measured in this run.".to_owned(),
        |t| format!("Failed open (requests the gateways let through without the store, counted over the whole scenario, not only while the store was down): {t}."),
    );
    let keys: Vec<(String, RGBColor, Mark)> = charts::OUTAGE_LEGEND
        .iter()
        .map(|&(l, c, dashed)| {
            (
                l.to_owned(),
                c,
                if dashed { Mark::Dashed } else { Mark::Line },
            )
        })
        .collect();
    section_with(out, &esc(&title), chart, &legend(&keys), &format!(
        "Responses per second (over a rolling 1 s window, so the clients' pacing does not alias with the 100 ms slots) in the first run while the store is killed and restarted (markers). Under allow, requests keep passing (ok) while the store is down; under deny they fail (errors); under local, ok and 429 go on at about the limit. \"Enforcing again\" marks the first 429 after the restart (allow, deny) or the end of the replicas' local decisions (local). Grey: slot p99 on the right axis. {failed_open}"));
}
