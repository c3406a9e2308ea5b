//! "Which store to choose": a table computed from the run. Rows are the
//! workloads (key mix × store RTT), columns the stores that held the limit
//! exactly, cells their capacity and CPU µs per request with the spread
//! over repetitions. A cell is marked best only when it beats the next one
//! beyond both ranges; otherwise the row says "not separable here".

use std::fmt::Write as _;

use rateguard_lab_model::ScenarioId;

use super::costs::{capacity_cell, cpu_record, load_record, workloads, Workload};
use super::{esc, swatch, StoreStyle};
use crate::model::{Spread, Summary};

/// Sustained accuracy within this many percent counts as holding the limit
/// (arrival timing blurs the ideal); the burst must be exact.
pub(super) const SUSTAINED_TOLERANCE_PCT: f64 = 5.0;

/// Whether `st` held the limit exactly in this run: its burst allowed
/// exactly the ideal, and its sustained run (if any) came within
/// [`SUSTAINED_TOLERANCE_PCT`]. `None` when no burst was measured.
pub(super) fn held_exactly(s: &Summary, st: &StoreStyle) -> Option<bool> {
    let burst = s.first(st.subject, ScenarioId::Burst)?;
    let exact = burst.expected_allowed == Some(burst.allowed);
    let sustained = s
        .first(st.subject, ScenarioId::Sustained)
        .and_then(|r| r.accuracy_error_pct)
        .is_none_or(|e| e.abs() <= SUSTAINED_TOLERANCE_PCT);
    Some(exact && sustained)
}

/// A figure with its spread (min, max) over repetitions.
#[derive(Debug, Clone, Copy)]
struct Ranged {
    value: f64,
    lo: f64,
    hi: f64,
}

impl Ranged {
    fn of(value: f64, spread: Option<Spread>) -> Self {
        let (lo, hi) = spread.map_or((value, value), |s| (s.min, s.max));
        Self { value, lo, hi }
    }
}

/// One store's cell at one workload.
struct Cell<'a> {
    st: &'a StoreStyle,
    capacity: Ranged,
    cpu: Option<Ranged>,
    loadgen_bound: bool,
    html: String,
}

fn cell<'a>(s: &Summary, st: &'a StoreStyle, w: Workload) -> Option<Cell<'a>> {
    let cap = load_record(s, st, ScenarioId::Capacity, w)?;
    let capacity = Ranged::of(cap.capacity_rps?, cap.spread.and_then(|sp| sp.capacity_rps));
    let cpu_rec = cpu_record(s, st, w);
    let cpu = cpu_rec.and_then(|r| {
        let total = r.cpu_us_per_request.as_ref()?.total();
        Some(Ranged::of(
            total,
            r.spread.and_then(|sp| sp.cpu_us_per_request),
        ))
    });
    let cpu_text = cpu.map_or_else(
        || "CPU –".to_owned(),
        |c| {
            format!(
                "{:.1} CPU µs/req <span class=\"spread\">({:.1} – {:.1})</span>",
                c.value, c.lo, c.hi
            )
        },
    );
    Some(Cell {
        st,
        capacity,
        cpu,
        loadgen_bound: cap.loadgen_bound == Some(true),
        html: format!("{}<br>{cpu_text}", capacity_cell(cap)),
    })
}

/// The row's verdict and the index of its best cell, if one is separable.
fn verdict(cells: &[Cell<'_>], repetitions: u32) -> (String, Option<usize>) {
    if cells.len() > 1 && repetitions < 2 {
        return (
            "one repetition: no spread to separate the stores by".to_owned(),
            None,
        );
    }
    if cells.iter().any(|c| c.loadgen_bound) {
        return (
            "the load generator may be the limit here: not ranked".to_owned(),
            None,
        );
    }
    let mut by_cap: Vec<usize> = (0..cells.len()).collect();
    by_cap.sort_by(|&a, &b| cells[b].capacity.value.total_cmp(&cells[a].capacity.value));
    match by_cap.as_slice() {
        [] => ("no capacity measured".to_owned(), None),
        [only] => (
            format!(
                "{}: the only store that held the limit",
                esc(&cells[*only].st.name)
            ),
            Some(*only),
        ),
        [best, next, ..] => {
            let (b, n) = (&cells[*best], &cells[*next]);
            if b.capacity.lo > n.capacity.hi {
                return (
                    format!(
                        "{}: highest capacity, beyond the spread of the next ({})",
                        esc(&b.st.name),
                        esc(&n.st.name)
                    ),
                    Some(*best),
                );
            }
            let mut by_cpu: Vec<usize> = (0..cells.len())
                .filter(|&i| cells[i].cpu.is_some())
                .collect();
            by_cpu.sort_by(|&a, &b| {
                let v = |i: usize| cells[i].cpu.map_or(f64::MAX, |c| c.value);
                v(a).total_cmp(&v(b))
            });
            if let [cheap, next, ..] = by_cpu.as_slice() {
                let (c, n) = (cells[*cheap].cpu, cells[*next].cpu);
                if let (Some(c), Some(n)) = (c, n) {
                    if c.hi < n.lo {
                        return (
                            format!(
                                "not separable on capacity; {}: lowest CPU per request, beyond the spread of the next ({})",
                                esc(&cells[*cheap].st.name),
                                esc(&cells[*next].st.name)
                            ),
                            Some(*cheap),
                        );
                    }
                }
            }
            ("not separable here".to_owned(), None)
        }
    }
}

/// The section: the rule, then the table.
pub(super) fn which_store(s: &Summary, stores: &[StoreStyle]) -> String {
    let held: Vec<&StoreStyle> = stores
        .iter()
        .filter(|st| st.subject.store.is_some() && held_exactly(s, st) == Some(true))
        .collect();
    let leaked: Vec<String> = stores
        .iter()
        .filter(|st| st.subject.store.is_some() && held_exactly(s, st) == Some(false))
        .map(|st| esc(&st.name))
        .collect();
    let mut out = String::from("<h2>Which store to choose</h2>\n");
    let _ = writeln!(
        out,
        "<p>Computed from this run. Columns: the stores that held the limit exactly across {} replicas (burst allowed exactly the ideal bucket's count, sustained within ±{SUSTAINED_TOLERANCE_PCT} %){}. Cells: capacity (median, min – max over repetitions) and CPU µs per request (all roles, at the throughput scenario's middle load). A cell is marked only when it beats the next one beyond both ranges: first on capacity, else on CPU; otherwise the row says so.</p>",
        s.settings.replicas,
        if leaked.is_empty() {
            String::new()
        } else {
            format!("; did not: {}", leaked.join(", "))
        }
    );
    if held.is_empty() {
        out.push_str("<p class=\"nodata\">No store held the limit exactly in this run (or no burst was measured).</p>\n");
        return out;
    }
    out.push_str(
        "<div class=\"scroll\"><table class=\"decide\">\n<tr><th class=\"l\">workload</th>",
    );
    for st in &held {
        let _ = write!(out, "<th class=\"l\">{}</th>", swatch(st));
    }
    out.push_str("<th class=\"l\">verdict</th></tr>\n");
    for w in workloads(s) {
        let cells: Vec<Cell<'_>> = held.iter().filter_map(|st| cell(s, st, w)).collect();
        if cells.is_empty() {
            continue;
        }
        let (verdict, best) = verdict(&cells, s.settings.repetitions);
        let _ = write!(out, "<tr><td class=\"l\">{}</td>", esc(&w.label()));
        for st in &held {
            match cells.iter().position(|c| std::ptr::eq(c.st, *st)) {
                Some(i) if best == Some(i) => {
                    let _ = write!(out, "<td class=\"best\">{} ★</td>", cells[i].html);
                }
                Some(i) => {
                    let _ = write!(out, "<td>{}</td>", cells[i].html);
                }
                None => out.push_str("<td>–</td>"),
            }
        }
        let _ = writeln!(out, "<td class=\"l\">{verdict}</td></tr>");
    }
    out.push_str("</table></div>\n");
    out
}
