//! The "Redis round trips and commands per request" chart: per store and
//! scenario, Lua script calls per request (the round trips) beside every
//! command Redis counted (including the script's inner ones).

use rateguard_lab_model::ScenarioId;

use super::charts::{self, lighter, Bar, BarSeries};
use super::{legend, section_with, Mark, StoreStyle};
use crate::model::{Record, Summary};

/// How much lighter the "all commands" bar is than its store's colour.
const ALL_COMMANDS_LIGHTEN: f64 = 0.55;

/// Appends the chart section.
pub(super) fn commands_chart(out: &mut String, s: &Summary, stores: &[StoreStyle]) {
    let has_data = |r: &Record| {
        r.store_commands_per_request.is_some() || r.script_calls_per_request().is_some()
    };
    let scenarios: Vec<ScenarioId> = s
        .settings
        .scenarios
        .iter()
        .copied()
        .filter(|&sc| s.records.iter().any(|r| r.scenario == sc && has_data(r)))
        .collect();
    let bars = |st: &StoreStyle, pick: fn(&Record) -> Option<f64>| -> Vec<Option<Bar>> {
        scenarios
            .iter()
            .map(|sc| {
                pick(s.first(st.subject, *sc)?).map(|value| Bar {
                    value,
                    whisker: None,
                })
            })
            .collect()
    };
    let mut labels = Vec::new();
    let mut values = Vec::new();
    for st in stores {
        let trips = bars(st, Record::script_calls_per_request);
        let all = bars(st, |r| r.store_commands_per_request);
        if trips.iter().chain(&all).all(Option::is_none) {
            continue;
        }
        labels.push((
            format!("{}: script calls (round trips)", st.name),
            format!("{}: all commands", st.name),
        ));
        values.push((st.color, trips, all));
    }
    let mut series: Vec<BarSeries<'_>> = Vec::new();
    for ((trips_label, all_label), (color, trips, all)) in labels.iter().zip(values) {
        series.push((trips_label.as_str(), color, trips));
        series.push((
            all_label.as_str(),
            lighter(color, ALL_COMMANDS_LIGHTEN),
            all,
        ));
    }
    let chart = if series.is_empty() {
        charts::no_data("Redis round trips and commands per request")
    } else {
        let headroom = 1.15;
        let groups: Vec<String> = scenarios.iter().map(ScenarioId::to_string).collect();
        charts::tall_grouped_bars(
            "Redis round trips and commands per request",
            "per request",
            &groups,
            &series,
            headroom,
        )
    };
    let keys: Vec<(String, plotters::style::RGBColor, Mark)> = series
        .iter()
        .map(|x| (x.0.to_owned(), x.1, Mark::Box))
        .collect();
    section_with(
        out,
        "Redis round trips and commands per request",
        chart,
        &legend(&keys),
        "Per store and scenario, two bars. Solid: Lua script calls (EVALSHA + EVAL) per HTTP \
         request, each one trip to Redis; fewer than 1 means one call decided several requests \
         (a store that pipelines may also send several calls in one write, so its network round \
         trips can be fewer still). Light: every command Redis counted, including the TIME, GET and \
         SET each script runs inside Redis, which cost Redis CPU but no round trip. Both from \
         INFO commandstats deltas over the scenario, summed over cluster nodes. The memory \
         store has none.",
    );
}
