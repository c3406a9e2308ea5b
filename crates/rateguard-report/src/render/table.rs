//! The table of every figure, with spread over repetitions, and the outage
//! details.

use std::fmt::Write as _;

use super::{esc, swatch, StoreStyle};

use crate::model::{Record, Spread, Summary};

/// Records in report order: stores in `stores` order, scenarios in
/// [`ScenarioId::ALL`] order.
pub(super) fn ordered<'a>(
    s: &'a Summary,
    stores: &'a [StoreStyle],
) -> Vec<(&'a StoreStyle, &'a Record)> {
    let mut rows: Vec<(usize, &StoreStyle, &Record)> = s
        .records
        .iter()
        .filter_map(|r| {
            let (i, st) = stores
                .iter()
                .enumerate()
                .find(|(_, st)| st.subject == r.subject())?;
            Some((i, st, r))
        })
        .collect();
    // Stable: within a subject and scenario, the run's own order.
    rows.sort_by_key(|(i, _, r)| (*i, r.scenario));
    rows.into_iter().map(|(_, st, r)| (st, r)).collect()
}

/// A number with thousands separators (thin spaces).
pub(super) fn num(v: f64, decimals: usize) -> String {
    let s = format!("{v:.decimals$}");
    let (int, frac) = s.split_once('.').map_or((s.as_str(), ""), |(a, b)| (a, b));
    let (sign, digits) = int.strip_prefix('-').map_or(("", int), |d| ("-", d));
    let mut grouped = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            grouped.push('\u{2009}');
        }
        grouped.push(c);
    }
    if frac.is_empty() {
        format!("{sign}{grouped}")
    } else {
        format!("{sign}{grouped}.{frac}")
    }
}

/// `value` followed by `(min – max)` when a spread is known.
pub(super) fn with_spread(value: f64, spread: Option<Spread>, decimals: usize) -> String {
    match spread {
        Some(sp) => format!(
            "{} <span class=\"spread\">({} – {})</span>",
            num(value, decimals),
            num(sp.min, decimals),
            num(sp.max, decimals)
        ),
        None => num(value, decimals),
    }
}

pub(super) fn opt<T>(v: Option<T>, f: impl FnOnce(T) -> String) -> String {
    v.map_or_else(|| "–".to_owned(), f)
}

/// The figures table and the outage table.
pub(super) fn figures(s: &Summary, stores: &[StoreStyle]) -> String {
    let mut out = String::from(
        "<h2>Every figure</h2>\n<p>Latency in µs as seen by the load generator. Where a scenario \
         was repeated, the value is the median and <span class=\"spread\">(min – max)</span> \
         follows. Accuracy error is 100·(allowed − expected)/expected: positive means more \
         was allowed than an ideal bucket allows. Failed open: requests the gateways let \
         through without the store (counted inside allowed), summed over runs. Round trips / req: Lua script \
         calls (EVALSHA + EVAL) per request, each one trip to Redis; all Redis cmds / req also \
         counts the TIME, GET and SET each script runs inside Redis. Workload: key mix and store RTT of \
         the load scenarios. Backend: what answered behind the limiter (nginx-return-200: NGINX's \
         own fixed reply; mock: the mock backends). CPU: µs per request, all roles.</p>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">subject</th>\
         <th class=\"l\">scenario</th><th class=\"l\">workload</th><th class=\"l\">backend</th><th>replicas</th><th>runs</th><th>requests</th>\
         <th>allowed</th><th>denied</th><th>errors</th><th>expected allowed</th>\
         <th>accuracy error %</th><th>throughput rps</th><th>p50</th><th>p90</th><th>p99</th>\
         <th>p99.9</th><th>max</th><th>failed open</th><th>round trips / req</th>\
         <th>all Redis cmds / req</th><th>capacity rps</th><th>CPU µs / req</th></tr>\n",
    );
    for (st, r) in ordered(s, stores) {
        let sp = r.spread;
        let l = &r.latency_us;
        let _ = writeln!(
            out,
            "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td>\
             <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            swatch(st),
            esc(r.scenario.as_str()),
            esc(&workload(r)),
            opt(r.backend, |b| b.to_string()),
            r.replicas,
            r.repetitions.len().max(1),
            num(r.requests as f64, 0),
            num(r.allowed as f64, 0),
            num(r.denied as f64, 0),
            num(r.errors as f64, 0),
            opt(r.expected_allowed, |v| num(v as f64, 0)),
            opt(r.accuracy_error_pct, |v| format!("{v:+.2}")),
            with_spread(r.throughput_rps, sp.map(|x| x.throughput_rps), 0),
            with_spread(l.p50 as f64, sp.map(|x| x.p50_us), 0),
            num(l.p90 as f64, 0),
            with_spread(l.p99 as f64, sp.map(|x| x.p99_us), 0),
            num(l.p999 as f64, 0),
            num(l.max as f64, 0),
            opt(r.failed_open, |v| num(v as f64, 0)),
            opt(r.script_calls_per_request(), |v| format!("{v:.2}")),
            opt(r.store_commands_per_request, |v| format!("{v:.2}")),
            opt(r.capacity_rps, |v| with_spread(v, sp.and_then(|x| x.capacity_rps), 0)),
            opt(r.cpu_us_per_request.as_ref(), |c| with_spread(
                c.total(),
                sp.and_then(|x| x.cpu_us_per_request),
                1
            )),
        );
    }
    out.push_str("</table></div>\n");
    levels_table(&mut out, s, stores);
    out
}

/// `zipf · 1 ms` for a load scenario's record, `on_error = local` for an
/// outage's, else empty.
fn workload(r: &Record) -> String {
    match (r.keys, r.store_rtt_ms) {
        (Some(k), Some(rtt)) => format!("{k} · {rtt} ms"),
        (Some(k), None) => k.to_string(),
        _ => r
            .on_error
            .map_or_else(String::new, |m| format!("on_error = {m}")),
    }
}

/// Each throughput step and capacity probe per subject.
fn levels_table(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let rows: Vec<_> = ordered(s, stores)
        .into_iter()
        .filter(|(_, r)| !r.rate_levels.is_empty())
        .collect();
    if rows.is_empty() {
        return;
    }
    out.push_str(
        "<h3>Throughput steps and capacity probes</h3>\n<p>First repetition. Sustained: for \
         capacity, the probe met the SLO; for throughput, ≥ 95 % of the offered rate came back 2xx \
         with p99 ≤ 100 ms.</p>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">subject</th>\
         <th class=\"l\">scenario</th><th class=\"l\">workload</th><th>offered rps</th>\
         <th>achieved 2xx rps</th><th>errors</th><th>p50</th><th>p99</th><th>p99.9</th>\
         <th>sustained</th><th>CPU µs / req</th><th>loadgen cores</th></tr>\n",
    );
    for (st, r) in rows {
        for l in &r.rate_levels {
            let _ = writeln!(
                out,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{}</td><td class=\"l\">{}</td><td>{}</td>\
                 <td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                swatch(st),
                r.scenario,
                esc(&workload(r)),
                num(l.target_rps, 0),
                num(l.achieved_rps, 0),
                num(l.errors as f64, 0),
                num(l.latency_us.p50 as f64, 0),
                num(l.latency_us.p99 as f64, 0),
                num(l.latency_us.p999 as f64, 0),
                if l.sustained { "yes" } else { "no" },
                opt(l.cpu_us_per_request.as_ref(), |c| format!("{:.1}", c.total())),
                opt(l.loadgen_cpu_cores, |c| format!("{c:.2}")),
            );
        }
    }
    out.push_str("</table></div>\n");
}

/// `r.failed_open` as `N over K runs (about n per run)`; `None` when not
/// measured.
pub(super) fn failed_open_text(r: &Record) -> Option<String> {
    let total = r.failed_open?;
    let runs = r.repetitions.len().max(1);
    Some(if runs == 1 {
        format!("{} in 1 run", num(total as f64, 0))
    } else {
        format!(
            "{} over {runs} runs (about {} per run)",
            num(total as f64, 0),
            num(total as f64 / runs as f64, 0)
        )
    })
}

/// What happened during each store's outage, from its timeline.
pub(super) struct OutageFacts {
    /// Time from restart until limits were enforced again, ms.
    pub(super) resume_after_restart_ms: Option<u64>,
    /// Responses in slots between the kill and the restart: ok, denied, errors.
    pub(super) during: (u64, u64, u64),
    /// Largest slot p99 between the kill and the restart, µs.
    pub(super) worst_p99_us: u64,
}

/// Facts of `r`'s outage, if it has one.
pub(super) fn outage_facts(r: &Record) -> Option<OutageFacts> {
    let o = r.outage?;
    let down = r
        .timeline
        .iter()
        .filter(|p| p.t_ms >= o.killed_at_ms && p.t_ms < o.restarted_at_ms);
    let during = down.clone().fold((0, 0, 0), |(a, b, c), p| {
        (a + p.ok, b + p.denied, c + p.errors)
    });
    Some(OutageFacts {
        resume_after_restart_ms: o
            .enforcement_resumed_at_ms
            .map(|t| t.saturating_sub(o.restarted_at_ms)),
        during,
        worst_p99_us: down.map(|p| p.p99_us).max().unwrap_or(0),
    })
}

#[cfg(test)]
mod tests {
    use super::num;

    #[test]
    fn thousands_separators() {
        assert_eq!(num(1_234_567.0, 0), "1\u{2009}234\u{2009}567");
        assert_eq!(num(-1_234.5, 1), "-1\u{2009}234.5");
        assert_eq!(num(999.0, 0), "999");
    }
}
