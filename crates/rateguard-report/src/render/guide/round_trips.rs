//! The round-trip sentence of the "which store to choose" finding: where
//! the stores' Lua script calls per request (their trips to Redis) differ.

use super::super::{esc, StoreStyle};
use crate::model::Summary;

/// Script calls per request that differ by more than this fraction of the
/// highest count a difference.
const TOLERANCE: f64 = 0.05;

/// Compares `stores`' script calls per request scenario by scenario; `None`
/// when no scenario has the figure for two of them.
pub(super) fn sentence(s: &Summary, stores: &[&StoreStyle]) -> Option<String> {
    let mut differ = Vec::new();
    let mut level = Vec::new();
    for &sc in &s.settings.scenarios {
        let mut vals: Vec<(&str, f64)> = stores
            .iter()
            .filter_map(|st| {
                let v = s.first(st.subject, sc)?.script_calls_per_request()?;
                v.is_finite().then_some((st.name.as_str(), v))
            })
            .collect();
        if vals.len() < 2 {
            continue;
        }
        vals.sort_by(|a, b| a.1.total_cmp(&b.1));
        let (low, high) = (vals[0].1, vals[vals.len() - 1].1);
        if high - low > TOLERANCE * high {
            let list: Vec<String> = vals
                .iter()
                .map(|(name, v)| format!("{} {v:.2}", esc(name)))
                .collect();
            differ.push(format!("{} ({})", esc(sc.as_str()), list.join(", ")));
        } else {
            level.push(esc(sc.as_str()));
        }
    }
    let pct = TOLERANCE * 100.0;
    match (differ.is_empty(), level.is_empty()) {
        (true, true) => None,
        (true, false) => Some(format!(
            "Round trips to Redis (Lua script calls per request) were level, within {pct:.0} %, \
             in every scenario ({}): they do not separate these stores in this run.",
            level.join(", ")
        )),
        (false, _) => {
            let rest = if level.is_empty() {
                String::new()
            } else {
                format!(" Level (within {pct:.0} %) on {}.", level.join(", "))
            };
            Some(format!(
                "Round trips to Redis differ (Lua script calls per request, fewest first, where \
                 they differ by more than {pct:.0} %): {}. Fewer calls per request mean fewer \
                 trips to Redis per decision (the total command counts also include the \
                 script's own TIME, GET and SET, which are not trips).{rest}",
                differ.join("; ")
            ))
        }
    }
}
