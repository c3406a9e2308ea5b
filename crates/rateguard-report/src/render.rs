//! The HTML report: one self-contained page (inline CSS, inline SVG, no
//! scripts, no external links).
//!
//! # Layout
//! The verdict and the sizing table open the page, then the accuracy
//! table, the run's facts and the evidence.
//! - this file: the page skeleton, the run facts and the chart sections;
//! - `verdict`: the verdict per workload, its rule, the sizing table;
//! - `admission`: accuracy against one exact bucket (over/under-admission);
//! - `charts`: the SVG charts (plotters);
//! - `commands`: the Redis round trips and commands chart;
//! - `table`: the table of every figure;
//! - `outage`: the store-outage sections, one per `on_error` mode;
//! - `rls`: the Envoy RLS path table (`rateguard rls` over gRPC);
//! - `guide`: "how to read this" and the data-driven findings.

use std::fmt::Write as _;

use plotters::style::RGBColor;
use rateguard_lab_model::ScenarioId;

use crate::model::{Record, Subject, Summary};

mod admission;
mod charts;
mod commands;
mod costs;
mod guide;
mod outage;
mod rls;
mod table;
mod verdict;

use charts::{css_color, subject_color, Bar};

/// Inline style sheet of the page.
const CSS: &str = "\
body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1100px;\
padding:0 1em;color:#222;line-height:1.45;overflow-wrap:break-word}\
h1{margin-bottom:.2em}h2{margin-top:2em;border-bottom:1px solid #ddd}\
.scroll{overflow-x:auto;max-width:100%;margin:1em 0;border:1px solid #eee}\
.scroll table{margin:0}\
table{border-collapse:collapse;margin:1em 0;font-size:.88em}\
th,td{border:1px solid #ccc;padding:.25em .5em;text-align:right;vertical-align:top}\
th{background:#f4f4f4}td.l,th.l{text-align:left}td.best{background:#e6f4e6;font-weight:600}\
.swatch{display:inline-block;width:.8em;height:.8em;margin-right:.35em;border-radius:2px}\
.spread{color:#666;font-size:.85em;font-weight:400}.nodata,.error{color:#a00}\
figure{margin:1em 0;overflow-x:auto}figcaption{color:#555;font-size:.9em}\
figure svg{width:100%;min-width:560px;max-width:860px;height:auto;display:block}\
.legend{display:flex;flex-wrap:wrap;gap:.2em 1.2em;font-size:.88em;margin:.2em 0 .5em}\
.legend .k{display:inline-block;width:1.6em;height:0;border-top:3px solid;vertical-align:middle;margin-right:.35em}\
.legend .k.d{border-top-style:dashed}\
.legend .k.b{width:.8em;height:.8em;border:0;border-radius:2px}\
ul.verdict{list-style:none;padding:0;margin:1em 0}ul.verdict li{margin:.45em 0;padding:.4em .6em;\
border-left:4px solid #2c7;background:#f6fbf6}ul.verdict .w{display:inline-block;min-width:7.5em;\
font-family:ui-monospace,monospace;font-size:.9em;color:#444}\
p.rule,p.example{font-size:.92em}.over{color:#a00;font-weight:600}p.example{background:#f6f6f6;padding:.5em .7em}\
@media (max-width:600px){body{margin:1em auto;padding:0 .6em}table{font-size:.8em}\
ul.verdict .w{display:block}h2{font-size:1.25em}}";

/// How a legend entry is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mark {
    /// A filled box (bars).
    Box,
    /// A solid line.
    Line,
    /// A dashed line.
    Dashed,
}

/// An HTML legend (below a chart, never over its data).
pub(crate) fn legend(entries: &[(String, RGBColor, Mark)]) -> String {
    if entries.is_empty() {
        return String::new();
    }
    let mut out = String::from("<div class=\"legend\">");
    for (label, color, mark) in entries {
        let c = css_color(*color);
        let key = match mark {
            Mark::Box => format!("<span class=\"k b\" style=\"background:{c}\"></span>"),
            Mark::Line => format!("<span class=\"k\" style=\"border-color:{c}\"></span>"),
            Mark::Dashed => format!("<span class=\"k d\" style=\"border-color:{c}\"></span>"),
        };
        let _ = write!(out, "<span>{key}{}</span>", esc(label));
    }
    out.push_str("</div>");
    out
}

/// A subject (a store, or a reference frontend) with its colour, in report order.
pub(crate) struct StoreStyle {
    /// The store or reference.
    pub(crate) subject: Subject,
    /// Its id, as shown.
    pub(crate) name: String,
    /// Its colour in every chart.
    pub(crate) color: RGBColor,
}

/// Renders `summary` as one self-contained HTML page.
pub fn render(summary: &Summary) -> String {
    let stores: Vec<StoreStyle> = summary
        .subject_order()
        .into_iter()
        .map(|subject| StoreStyle {
            subject,
            name: subject.name().to_owned(),
            color: subject_color(subject),
        })
        .collect();
    let mut out = String::with_capacity(256 * 1024);
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>RateGuard lab report {id}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>RateGuard lab report</h1>\n<p>Run <code>{id}</code>, started {at}.</p>\n",
        id = esc(&summary.run_id),
        at = esc(&summary.created_at),
    );
    verdict::section(&mut out, summary, &stores);
    verdict::sizing(&mut out, summary, &stores);
    admission::section(&mut out, summary, &stores);
    facts(&mut out, summary, &stores);
    out.push_str(&guide::guide(summary, &stores));
    costs::sections(&mut out, summary, &stores);
    rls::section(&mut out, summary);
    chart_sections(&mut out, summary, &stores);
    out.push_str(&table::figures(summary, &stores));
    out.push_str("</body>\n</html>\n");
    out
}

/// The run facts: machine, versions, commit, settings, notes.
fn facts(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let m = &s.machine;
    let mut rows: Vec<(String, String)> = vec![
        (
            "machine".into(),
            format!(
                "{} cores, {}, {:.1} GiB, {}",
                m.cores, m.cpu_model, m.memory_gib, m.os
            ),
        ),
        ("git commit".into(), s.git_commit.clone()),
    ];
    let v = &s.versions;
    for (k, val) in [
        ("rateguard", &v.rateguard),
        ("rustc", &v.rustc),
        ("redis", &v.redis),
        ("nginx", &v.nginx),
    ]
    .into_iter()
    .chain(v.other.iter().map(|(k, v)| (k.as_str(), v)))
    {
        rows.push((format!("{k} version"), val.clone()));
    }
    let st = &s.settings;
    rows.push((
        "topology".into(),
        format!(
            "nginx → {} gateway replicas → {} backends",
            st.replicas, st.backends
        ),
    ));
    let mut by_backend: Vec<(rateguard_lab_model::BackendKind, Vec<ScenarioId>)> = Vec::new();
    for r in &s.records {
        let Some(b) = r.backend else { continue };
        match by_backend.iter_mut().find(|(k, _)| *k == b) {
            Some((_, scs)) if !scs.contains(&r.scenario) => scs.push(r.scenario),
            Some(_) => {}
            None => by_backend.push((b, vec![r.scenario])),
        }
    }
    if !by_backend.is_empty() {
        let text: Vec<String> = by_backend
            .iter()
            .map(|(b, scs)| {
                let names: Vec<&str> = scs.iter().map(|sc| sc.as_str()).collect();
                format!("{b}: {}", names.join(", "))
            })
            .collect();
        rows.push((
            "backend (behind the limiter)".into(),
            format!(
                "{} ({} is NGINX answering a fixed JSON body itself; mock is the mock backends behind it)",
                text.join("; "),
                rateguard_lab_model::BackendKind::Return200
            ),
        ));
    }
    rows.push((
        "repetitions".into(),
        format!("{} (spread = min / median / max over them)", st.repetitions),
    ));
    let scenarios: Vec<&str> = st.scenarios.iter().map(|sc| sc.as_str()).collect();
    rows.push(("scenarios".into(), scenarios.join(", ")));
    for (k, ms) in &st.durations_ms {
        rows.push((
            format!("{k} duration"),
            format!("{:.1} s", *ms as f64 / 1e3),
        ));
    }
    for (k, val) in &st.params {
        rows.push((k.clone(), val.clone()));
    }
    if let Some(p) = &s.bench_summary_path {
        rows.push(("criterion benches".into(), p.clone()));
    }
    out.push_str("<h2>The run</h2>\n<table>\n");
    for (k, val) in rows {
        let _ = writeln!(
            out,
            "<tr><th class=\"l\">{}</th><td class=\"l\">{}</td></tr>",
            esc(&k),
            esc(&val)
        );
    }
    out.push_str("<tr><th class=\"l\">stores (colour)</th><td class=\"l\">");
    for st in stores {
        let _ = write!(out, "{} ", swatch(st));
    }
    out.push_str("</td></tr>\n</table>\n");
    if let Some(p) = &s.bench_summary_path {
        let _ = writeln!(
            out,
            "<p>Criterion bench summary: <a href=\"{0}\">{0}</a> (a local file next to this run).</p>",
            esc(p)
        );
    }
    if !s.notes.is_empty() {
        out.push_str("<h3>Notes</h3>\n<ul>\n");
        for n in &s.notes {
            let _ = writeln!(out, "<li>{}</li>", esc(n));
        }
        out.push_str("</ul>\n");
    }
}

/// A colour swatch followed by the store's name.
pub(crate) fn swatch(st: &StoreStyle) -> String {
    format!(
        "<span class=\"swatch\" style=\"background:{}\"></span>{}",
        css_color(st.color),
        esc(&st.name)
    )
}

/// Records of `scenario` in store order, with their store's style.
fn by_store<'a>(
    s: &'a Summary,
    stores: &'a [StoreStyle],
    scenario: ScenarioId,
) -> impl Iterator<Item = (&'a StoreStyle, &'a Record)> {
    stores
        .iter()
        .filter_map(move |st| s.first(st.subject, scenario).map(|r| (st, r)))
}

/// Appends one chart section: heading, figure, caption.
fn section(out: &mut String, title: &str, chart: String, caption: &str) {
    section_with(out, title, chart, "", caption);
}

/// Appends one chart section: heading, figure, its HTML legend, caption.
fn section_with(out: &mut String, title: &str, chart: String, legend: &str, caption: &str) {
    let _ = write!(
        out,
        "<h2>{}</h2>\n<figure>\n{chart}\n{legend}<figcaption>{}</figcaption>\n</figure>\n",
        esc(title),
        esc(caption)
    );
}

/// A legend of one box or line per subject.
fn subject_legend<'a>(items: impl IntoIterator<Item = (&'a str, RGBColor)>, mark: Mark) -> String {
    let entries: Vec<(String, RGBColor, Mark)> = items
        .into_iter()
        .map(|(name, color)| (name.to_owned(), color, mark))
        .collect();
    legend(&entries)
}

fn chart_sections(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let curves: Vec<_> = by_store(s, stores, ScenarioId::Throughput)
        .filter(|(_, r)| !r.latency_curve.is_empty())
        .map(|(st, r)| (st.name.as_str(), st.color, r.latency_curve.as_slice()))
        .collect();
    let chart = if curves.is_empty() {
        charts::no_data("latency curves (throughput scenario)")
    } else {
        charts::latency_curves("Latency by percentile, throughput scenario", &curves)
    };
    let keys = subject_legend(curves.iter().map(|c| (c.0, c.1)), Mark::Line);
    section_with(out, "Latency percentiles", chart, &keys,
        "Latency seen by the load generator through nginx, from p50 to p99.99, at the throughput scenario's middle load of the first workload (x: percentiles spaced by nines; y: log scale). Lower is better; the right end is the tail.");

    for (scenario, what) in [
        (
            ScenarioId::Burst,
            "many users at once against one client key",
        ),
        (
            ScenarioId::Sustained,
            "clients sending above their refill rate",
        ),
    ] {
        let series: Vec<_> = by_store(s, stores, scenario)
            .filter(|(_, r)| !r.allowed_series.is_empty())
            .map(|(st, r)| (st.name.as_str(), st.color, r.allowed_series.as_slice()))
            .collect();
        let chart = if series.is_empty() {
            charts::no_data(&format!("allowed-over-time ({scenario})"))
        } else {
            charts::allowed_over_time(
                &format!("Allowed over time vs ideal bucket: {scenario}"),
                &series,
            )
        };
        let mut keys: Vec<(String, RGBColor, Mark)> = series
            .iter()
            .map(|x| (x.0.to_owned(), x.1, Mark::Line))
            .collect();
        keys.push((
            "ideal token bucket (dashed, per store)".into(),
            RGBColor(0, 0, 0),
            Mark::Dashed,
        ));
        section_with(out, &format!("429 accuracy: {scenario}"), chart, &legend(&keys), &format!(
            "Cumulative allowed responses ({what}) against an ideal single token bucket (dashed), from the first request on. A store on the dashed line enforces the limit exactly across all replicas; above it, clients got more than their limit. nginx-limit-req (burst only) limits per NGINX instance: exact here with one instance."));
    }

    commands::commands_chart(out, s, stores);
    distribution_charts(out, s, stores);

    outage::sections(out, s, stores);
}

fn distribution_charts(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    type Pick = fn(&Record) -> &std::collections::BTreeMap<String, u64>;
    let parts: [(&str, &str, Pick); 2] = [
        ("gateway replica", "X-RateGuard-Replica", |r| &r.per_replica),
        ("backend", "the backend's reply", |r| &r.per_backend),
    ];
    for (what, source, pick) in parts {
        let recs: Vec<_> = by_store(s, stores, ScenarioId::Distribution).collect();
        let mut groups: Vec<String> = recs
            .iter()
            .flat_map(|(_, r)| pick(r).keys().cloned())
            .collect();
        groups.sort();
        groups.dedup();
        let series: Vec<_> = recs
            .iter()
            .map(|(st, r)| {
                let bars = groups
                    .iter()
                    .map(|g| {
                        pick(r).get(g).map(|&v| Bar {
                            value: v as f64,
                            whisker: None,
                        })
                    })
                    .collect();
                (st.name.as_str(), st.color, bars)
            })
            .collect();
        let chart = if groups.is_empty() {
            charts::no_data(&format!("requests per {what}"))
        } else {
            charts::grouped_bars(
                &format!("Requests per {what}"),
                "responses",
                &groups,
                &series,
            )
        };
        let keys = subject_legend(series.iter().map(|x| (x.0, x.1)), Mark::Box);
        section_with(out, &format!("Requests per {what}"), chart, &keys, &format!(
            "Sequential requests of the distribution scenario, counted by {what} (from {source}). Even bars mean nginx spreads load evenly."));
    }
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
