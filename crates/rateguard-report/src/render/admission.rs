//! "Accuracy against one exact bucket": per store, the burst and sustained
//! counts against the ideal, the over-admission in the worst 100 ms and 1 s
//! windows, the under-admission, and beside them the Redis CPU per decision
//! the store spends for that accuracy.

use std::fmt::Write as _;

use rateguard_lab_model::{Role, ScenarioId};

use super::table::num;
use super::{esc, swatch, StoreStyle};
use crate::model::{Admission, Summary};

/// `+3` / `0` / `−11`: an excess in requests.
fn excess(v: f64) -> String {
    if v > 0.0 {
        format!("<span class=\"over\">+{}</span>", num(v, 0))
    } else {
        num(v, 0).replace('-', "−")
    }
}

fn admission_cells(a: &Admission) -> String {
    let spread = a.under_admission_spread.map_or_else(String::new, |sp| {
        format!(
            " <span class=\"spread\">({:.1} – {:.1})</span>",
            sp.min * 100.0,
            sp.max * 100.0
        )
    });
    let replicas: Vec<String> = a
        .worst_window_by_replica
        .iter()
        .map(|(k, n)| format!("{k} {n}"))
        .collect();
    format!(
        "<td>{}</td><td>{}</td><td>{:.1} %{spread}</td><td class=\"l\">{}</td>",
        excess(a.over_admission_100ms),
        excess(a.over_admission_1s),
        a.under_admission * 100.0,
        esc(&replicas.join(", "))
    )
}

/// The section (nothing when no store ran burst or sustained).
pub(super) fn section(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let mut rows = String::new();
    let first = s.workloads().into_iter().next();
    for st in stores.iter().filter(|st| st.subject.store.is_some()) {
        let burst = s.first(st.subject, ScenarioId::Burst);
        let sustained = s.first(st.subject, ScenarioId::Sustained);
        if burst.is_none() && sustained.is_none() {
            continue;
        }
        let counts = |r: Option<&crate::model::Record>| {
            r.and_then(|r| Some((r.allowed, r.expected_allowed?)))
                .map_or_else(
                    || "–".to_owned(),
                    |(a, e)| format!("{} / {}", num(a as f64, 0), num(e as f64, 0)),
                )
        };
        let adm = sustained.and_then(|r| r.admission.as_ref()).map_or_else(
            || "<td>–</td><td>–</td><td>–</td><td>–</td>".to_owned(),
            admission_cells,
        );
        let redis = first
            .and_then(|w| s.load_record(st.subject, ScenarioId::Capacity, w))
            .filter(|_| st.subject.has_store_server())
            .and_then(|r| r.role_spread(Role::Store))
            .map_or_else(
                || "–".to_owned(),
                |(sp, _)| {
                    format!(
                        "{:.1} <span class=\"spread\">({:.1} – {:.1})</span>",
                        sp.median, sp.min, sp.max
                    )
                },
            );
        let _ = writeln!(
            rows,
            "<tr><td class=\"l\">{}</td><td>{}</td><td>{}</td>{adm}<td>{redis}</td></tr>",
            swatch(st),
            counts(burst),
            counts(sustained),
        );
    }
    if rows.is_empty() {
        return;
    }
    let shape = s
        .records
        .iter()
        .find_map(|r| r.admission.as_ref())
        .map_or_else(String::new, |a| {
            format!(
                " (B = {}, R = {}/s: at most {} in any 100 ms, {} in any 1 s)",
                a.capacity,
                a.refill_per_sec,
                num(f64::from(a.capacity) + a.refill_per_sec * 0.1, 1),
                num(f64::from(a.capacity) + a.refill_per_sec, 1)
            )
        });
    let workload = first.map_or_else(String::new, |w| format!(" ({})", w.label()));
    let _ = write!(
        out,
        "<h2 id=\"admission\">Accuracy against one exact bucket</h2>\n<p>Per store: admitted / \
         ideal in the burst and sustained scenarios (summed over repetitions); in sustained, \
         where every client asks far above its refill, the <b>over-admission</b>: the most any \
         key got in a 100 ms or 1 s window beyond a token bucket's bound <i>B + R·w</i>{shape}, over \
         every window and repetition (≤ 0 for an exact store; a decision counts in a window only \
         if its request was sent and answered inside it), the replicas that admitted in the worst \
         100 ms window, and the <b>under-admission</b>: the share of <i>min(offered, B + R·T)</i> \
         per key the store refused (median, min – max over repetitions). Last column: what the \
         store spends for it, Redis CPU µs per decision at capacity{}.</p>\n\
         <div class=\"scroll\"><table>\n<tr><th class=\"l\">store</th><th>burst admitted / ideal</th>\
         <th>sustained admitted / ideal</th><th>over-admission, 100 ms</th>\
         <th>over-admission, 1 s</th><th>under-admission</th><th class=\"l\">worst 100 ms window \
         by replica</th><th>Redis CPU µs / decision</th></tr>\n{rows}</table></div>\n",
        esc(&workload)
    );
}
