//! What the subjects cost and carry, per workload (key mix × store RTT):
//! CPU µs per request by role, capacity, latency at the same offered load,
//! the RTT's and the key mix's effects.

use std::fmt::Write as _;

use rateguard_lab_model::{Role, ScenarioId};

use super::charts::{self, Bar, ROLE_PALETTE};
use super::table::num;
use super::{esc, legend, section_with, swatch, Mark, StoreStyle};
use crate::model::{Record, Summary, Workload};

/// Every workload of the run: key mixes × RTTs.
pub(crate) fn workloads(s: &Summary) -> Vec<Workload> {
    s.workloads()
}

/// `st`'s record of load `scenario` at `w`.
pub(crate) fn load_record<'a>(
    s: &'a Summary,
    st: &StoreStyle,
    scenario: ScenarioId,
    w: Workload,
) -> Option<&'a Record> {
    s.load_record(st.subject, scenario, w)
}

/// Whether `st` has its own figures at `w` (subjects without a store server
/// only at the first RTT, so nothing is shown twice).
fn shown_at(st: &StoreStyle, w: Workload) -> bool {
    w.first_rtt || st.subject.has_store_server()
}

/// The record whose CPU stands for `st` at `w`: throughput at the reference
/// load, else capacity at the capacity rate.
pub(crate) fn cpu_record<'a>(s: &'a Summary, st: &StoreStyle, w: Workload) -> Option<&'a Record> {
    [ScenarioId::Throughput, ScenarioId::Capacity]
        .into_iter()
        .filter_map(|sc| load_record(s, st, sc, w))
        .find(|r| r.cpu_us_per_request.is_some())
}

/// The row label of `st` at `w`.
fn row_label(st: &StoreStyle, w: Workload) -> String {
    if st.subject.has_store_server() {
        format!("{} · {}", st.name, w.label())
    } else {
        format!("{} · {}", st.name, w.keys)
    }
}

/// Appends the cost sections.
pub(super) fn sections(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    cpu_section(out, s, stores);
    capacity_section(out, s, stores);
    same_load_section(out, s, stores);
    rtt_and_keys_tables(out, s, stores);
}

fn cpu_section(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let mut rows = Vec::new();
    let mut table = String::from(
        "<div class=\"scroll\"><table>\n<tr><th class=\"l\">subject · workload</th><th class=\"l\">measured at</th>",
    );
    for role in Role::ALL {
        let _ = write!(table, "<th>{role}</th>");
    }
    table.push_str("<th>total</th><th>all but loadgen</th></tr>\n");
    for w in workloads(s) {
        for st in stores.iter().filter(|st| shown_at(st, w)) {
            let Some(r) = cpu_record(s, st, w) else {
                continue;
            };
            let Some(cpu) = &r.cpu_us_per_request else {
                continue;
            };
            rows.push((
                row_label(st, w),
                Role::ALL.map(|role| cpu.get(role)).to_vec(),
            ));
            let at = match r.scenario {
                ScenarioId::Throughput => format!("{} rps (throughput)", num(reference_rps(r), 0)),
                _ => format!("{} rps (capacity)", num(r.capacity_rps.unwrap_or(0.0), 0)),
            };
            let _ = write!(
                table,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{at}</td>",
                esc(&row_label(st, w))
            );
            for role in Role::ALL {
                let _ = write!(table, "<td>{:.1}</td>", cpu.get(role));
            }
            let spread =
                r.spread
                    .and_then(|sp| sp.cpu_us_per_request)
                    .map_or_else(String::new, |sp| {
                        format!(
                            " <span class=\"spread\">({:.1} – {:.1})</span>",
                            sp.min, sp.max
                        )
                    });
            let _ = writeln!(
                table,
                "<td><b>{:.1}</b>{spread}</td><td>{:.1}</td></tr>",
                cpu.total(),
                cpu.system()
            );
        }
    }
    table.push_str("</table></div>\n");
    let chart = if rows.is_empty() {
        charts::no_data("CPU per request")
    } else {
        charts::stacked_rows(
            "CPU µs per request, by role",
            "CPU µs per request",
            &ROLE_PALETTE,
            &rows,
        )
    };
    let keys: Vec<(String, _, Mark)> = Role::ALL
        .iter()
        .map(|r| (r.to_string(), ROLE_PALETTE[r.index()], Mark::Box))
        .collect();
    section_with(
        out,
        "CPU per request, by role",
        chart,
        &legend(&keys),
        "User + system CPU time of each role's processes over the measured window, divided by the requests completed in it: at the throughput scenario's middle load (the same offered load for every subject with that key mix), else at the capacity rate. Lower is cheaper. This separates the stores on any machine, saturated or not: the store segment is Redis' work (none for memory), gateway the replicas' (none for nginx-limit-req). Spread in the table: min – max of the total over repetitions.",
    );
    out.push_str(&table);
}

/// The offered rate of a throughput record's reference (middle) level.
fn reference_rps(r: &Record) -> f64 {
    r.rate_levels
        .get(r.rate_levels.len() / 2)
        .map_or(0.0, |l| l.target_rps)
}

fn capacity_section(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let ws = workloads(s);
    let groups: Vec<String> = ws.iter().map(Workload::label).collect();
    let series: Vec<_> = stores
        .iter()
        .map(|st| {
            let bars = ws
                .iter()
                .map(|&w| {
                    let r = load_record(s, st, ScenarioId::Capacity, w)?;
                    Some(Bar {
                        value: r.capacity_rps?,
                        whisker: r
                            .spread
                            .and_then(|sp| sp.capacity_rps)
                            .map(|c| (c.min, c.max)),
                    })
                })
                .collect();
            (st.name.as_str(), st.color, bars)
        })
        .filter(|(_, _, bars): &(_, _, Vec<Option<Bar>>)| bars.iter().any(Option::is_some))
        .collect();
    let chart = if series.is_empty() {
        charts::no_data("the capacity scenario")
    } else {
        charts::grouped_bars(
            "Capacity per workload",
            "requests per second",
            &groups,
            &series,
        )
    };
    let keys: Vec<(String, _, Mark)> = stores
        .iter()
        .filter(|st| series.iter().any(|x| x.0 == st.name))
        .map(|st| (st.name.clone(), st.color, Mark::Box))
        .collect();
    let slo = s
        .settings
        .slo_p99_ms
        .map_or_else(String::new, |ms| format!(" under {ms} ms"));
    section_with(
        out,
        "Capacity",
        chart,
        &legend(&keys),
        &format!("The highest open-model arrival rate at which ≥ 99 % of requests came back 2xx and p99{slo} (from each request's intended start), found by doubling then bisection to within 5 %; bar: median over repetitions, whiskers: min and max. Subjects without a store server (memory, none, nginx-limit-req) have no RTT: the same bars stand in every RTT group of a key mix. Higher is better; a result marked loadgen-bound below is the load generator's limit, not the subject's."),
    );
    let mut t = String::from("<div class=\"scroll\"><table>\n<tr><th class=\"l\">subject</th>");
    for w in &ws {
        let _ = write!(t, "<th>{}</th>", esc(&w.label()));
    }
    t.push_str("</tr>\n");
    for st in stores {
        let cells: Vec<String> = ws
            .iter()
            .map(|&w| {
                load_record(s, st, ScenarioId::Capacity, w)
                    .map_or_else(|| "–".to_owned(), capacity_cell)
            })
            .collect();
        if cells.iter().all(|c| c == "–") {
            continue;
        }
        let _ = write!(t, "<tr><td class=\"l\">{}</td>", swatch(st));
        for c in cells {
            let _ = write!(t, "<td>{c}</td>");
        }
        t.push_str("</tr>\n");
    }
    t.push_str("</table></div>\n");
    out.push_str(&t);
}

/// `12 340 (11 900 – 12 800) rps, p99 9.1 ms, loadgen 0.31 core`.
pub(crate) fn capacity_cell(r: &Record) -> String {
    let Some(c) = r.capacity_rps else {
        return "–".to_owned();
    };
    let spread = r
        .spread
        .and_then(|sp| sp.capacity_rps)
        .map_or_else(String::new, |sp| {
            format!(
                " <span class=\"spread\">({} – {})</span>",
                num(sp.min, 0),
                num(sp.max, 0)
            )
        });
    let bound = if r.loadgen_bound == Some(true) {
        " <span class=\"error\">loadgen-bound</span>"
    } else {
        ""
    };
    let cores = r
        .loadgen_cpu_cores
        .map_or_else(String::new, |c| format!(", loadgen {c:.2} core"));
    format!(
        "{} rps{spread}{bound}<br><span class=\"spread\">p99 {} µs{cores}</span>",
        num(c, 0),
        num(r.latency_us.p99 as f64, 0)
    )
}

fn same_load_section(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let rtts = s.settings.rtts_ms();
    for keys in s.settings.key_mixes() {
        let mut lines = Vec::new();
        let mut entries = Vec::new();
        for st in stores {
            for (i, &rtt_ms) in rtts.iter().enumerate() {
                let w = Workload {
                    keys,
                    rtt_ms,
                    first_rtt: i == 0,
                };
                if !shown_at(st, w) {
                    continue;
                }
                let Some(r) = load_record(s, st, ScenarioId::Throughput, w) else {
                    continue;
                };
                let pts: Vec<(f64, f64)> = r
                    .rate_levels
                    .iter()
                    .map(|l| (l.target_rps, l.latency_us.p99 as f64))
                    .collect();
                if pts.is_empty() {
                    continue;
                }
                let dashed = i > 0;
                lines.push((st.color, dashed, pts));
                let name = if st.subject.has_store_server() {
                    format!("{} · {rtt_ms} ms", st.name)
                } else {
                    st.name.clone()
                };
                entries.push((
                    name,
                    st.color,
                    if dashed { Mark::Dashed } else { Mark::Line },
                ));
            }
        }
        if lines.is_empty() {
            continue;
        }
        let chart = charts::load_latency(
            &format!("p99 latency at the same offered load: {keys} keys"),
            "p99 latency (log scale)",
            &lines,
        );
        section_with(
            out,
            &format!("Latency at the same load: {keys} keys"),
            chart,
            &legend(&entries),
            "p99 latency (from each request's intended start) at the throughput scenario's offered loads, 25 / 50 / 75 % of the slowest store's capacity with this key mix, the same for every subject and RTT, so the curves compare like with like; first repetition. Solid: the first store RTT; dashed: the next.",
        );
    }
}

fn rtt_and_keys_tables(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let rtts = s.settings.rtts_ms();
    let mut t = String::from(
        "<h2>Redis across a network</h2>\n<p>Per store with a Redis server, at each round-trip time added between the gateways and Redis (the lab's delay proxies; 0 ms is direct loopback): capacity, and p50 / p99 at the throughput scenario's middle load (the same for every RTT).</p>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">store · keys</th>",
    );
    for rtt in &rtts {
        let _ = write!(
            t,
            "<th>capacity @ {rtt} ms</th><th>p50 / p99 @ {rtt} ms</th>"
        );
    }
    t.push_str("</tr>\n");
    let mut any = false;
    for st in stores.iter().filter(|st| st.subject.has_store_server()) {
        for keys in s.settings.key_mixes() {
            let _ = write!(t, "<tr><td class=\"l\">{} · {keys}</td>", swatch(st));
            for (i, &rtt_ms) in rtts.iter().enumerate() {
                let w = Workload {
                    keys,
                    rtt_ms,
                    first_rtt: i == 0,
                };
                let cap = load_record(s, st, ScenarioId::Capacity, w)
                    .map_or_else(|| "–".to_owned(), capacity_cell);
                let lat = load_record(s, st, ScenarioId::Throughput, w).map_or_else(
                    || "–".to_owned(),
                    |r| {
                        format!(
                            "{} / {} µs",
                            num(r.latency_us.p50 as f64, 0),
                            num(r.latency_us.p99 as f64, 0)
                        )
                    },
                );
                let _ = write!(t, "<td>{cap}</td><td>{lat}</td>");
                any = true;
            }
            t.push_str("</tr>\n");
        }
    }
    t.push_str("</table></div>\n");
    if any {
        out.push_str(&t);
    }

    let mut k = String::from(
        "<h2>Key skew</h2>\n<p>Per subject and key mix (throughput scenario at its middle load, first store RTT): Lua script calls (round trips to Redis) per request, every Redis command per request, and CPU µs per request. One hot key is where redis-pipelined can merge same-key decisions; Zipf spreads them over 10 000 keys with a few hot ones.</p>\n<div class=\"scroll\"><table>\n<tr><th class=\"l\">subject</th><th class=\"l\">keys</th><th>round trips / req</th><th>Redis cmds / req</th><th>CPU µs / req</th><th>store CPU µs / req</th></tr>\n",
    );
    for st in stores {
        for keys in s.settings.key_mixes() {
            let w = Workload {
                keys,
                rtt_ms: rtts[0],
                first_rtt: true,
            };
            let Some(r) = load_record(s, st, ScenarioId::Throughput, w)
                .or_else(|| load_record(s, st, ScenarioId::Capacity, w))
            else {
                continue;
            };
            let opt = |v: Option<f64>| v.map_or_else(|| "–".to_owned(), |v| format!("{v:.2}"));
            let cpu = r.cpu_us_per_request.as_ref();
            let _ = writeln!(
                k,
                "<tr><td class=\"l\">{}</td><td class=\"l\">{keys}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
                swatch(st),
                opt(r.script_calls_per_request()),
                opt(r.store_commands_per_request),
                opt(cpu.map(|c| c.total())),
                opt(cpu.map(|c| c.get(Role::Store))),
            );
        }
    }
    k.push_str("</table></div>\n");
    out.push_str(&k);
}
