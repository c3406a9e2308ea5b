//! The store-outage timeline: outcomes per second (a rolling window over
//! the 100 ms slots, so the clients' pacing does not alias with the slot
//! width) with kill, restart and enforcement-resumed markers, and the slot
//! p99 on the right axis.

use plotters::prelude::*;

use super::{fmt_count, fmt_us, svg, DrawResult, FONT, SIZE};
use crate::model::{Outage, TimelinePoint};

const OK: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const DENIED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const ERRORS: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const P99: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);
const KILL: RGBColor = RGBColor(0x00, 0x00, 0x00);
const RESTART: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RESUMED: RGBColor = RGBColor(0x94, 0x67, 0xbd);

/// Slots per rolling window: 10 × 100 ms, one second, a whole number of
/// the outage clients' refill intervals.
const WINDOW_SLOTS: usize = 10;

/// The lines and markers of the chart, for its legend: (label, colour, dashed).
pub(crate) const LEGEND: [(&str, RGBColor, bool); 7] = [
    ("ok", OK, false),
    ("denied (429)", DENIED, false),
    ("errors", ERRORS, false),
    ("slot p99 (right axis)", P99, false),
    ("store killed", KILL, true),
    ("store restarted", RESTART, true),
    ("enforcing again", RESUMED, true),
];

/// Per second over the window of `WINDOW_SLOTS` slots ending at each slot.
fn per_second(points: &[TimelinePoint], pick: fn(&TimelinePoint) -> u64) -> Vec<f64> {
    let slot_s = match points {
        [a, b, ..] => (b.t_ms.saturating_sub(a.t_ms)).max(1) as f64 / 1_000.0,
        _ => 0.1,
    };
    (0..points.len())
        .map(|i| {
            let from = (i + 1).saturating_sub(WINDOW_SLOTS);
            let n: u64 = points[from..=i].iter().map(pick).sum();
            n as f64 / (slot_s * (i + 1 - from) as f64)
        })
        .collect()
}

/// ok / denied / errors per second and the slot p99, with outage markers.
pub(crate) fn outage_timeline(
    title: &str,
    points: &[TimelinePoint],
    outage: Option<&Outage>,
) -> String {
    svg(SIZE, |root| draw(root, title, points, outage))
}

fn draw(
    root: &super::Area<'_>,
    title: &str,
    points: &[TimelinePoint],
    outage: Option<&Outage>,
) -> DrawResult {
    let secs = |ms: u64| ms as f64 / 1_000.0;
    let t_max = points.iter().map(|p| p.t_ms).max().unwrap_or(1).max(1);
    let t_max = outage.map_or(t_max, |o| t_max.max(o.restarted_at_ms));
    type Pick = fn(&TimelinePoint) -> u64;
    let picks: [Pick; 3] = [|p| p.ok, |p| p.denied, |p| p.errors];
    let rates = picks.map(|pick| per_second(points, pick));
    let y_max = rates.iter().flatten().copied().fold(1.0, f64::max) * 1.15;
    let p99_max = points.iter().map(|p| p.p99_us).max().unwrap_or(1).max(1) as f64 * 1.15;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .right_y_label_area_size(70)
        .build_cartesian_2d(0.0..secs(t_max) * 1.02, 0.0..y_max)?
        .set_secondary_coord(0.0..secs(t_max) * 1.02, 0.0..p99_max);
    chart
        .configure_mesh()
        .x_desc("time since start (s)")
        .y_desc("responses per second (1 s window)")
        .y_label_formatter(&|y| fmt_count(*y))
        .label_style((FONT, 13))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("slot p99")
        .y_label_formatter(&|y| fmt_us(*y))
        .label_style((FONT, 13))
        .draw()?;
    for (rate, (_, color, _)) in rates.iter().zip(LEGEND) {
        // Each window's value sits at the end of its last slot.
        chart.draw_series(LineSeries::new(
            points
                .iter()
                .zip(rate)
                .map(|(p, &v)| (secs(p.t_ms) + 0.1, v)),
            color.stroke_width(2),
        ))?;
    }
    chart.draw_secondary_series(LineSeries::new(
        points.iter().map(|p| (secs(p.t_ms), p.p99_us as f64)),
        P99.stroke_width(1),
    ))?;
    if let Some(o) = outage {
        let markers = [
            ("store killed", KILL, Some(o.killed_at_ms)),
            ("store restarted", RESTART, Some(o.restarted_at_ms)),
            ("enforcing again", RESUMED, o.enforcement_resumed_at_ms),
        ];
        for (_, color, at) in markers {
            let Some(at) = at else { continue };
            let x = secs(at);
            chart.draw_series(DashedLineSeries::new(
                [(x, 0.0), (x, y_max)],
                6,
                4,
                color.stroke_width(2),
            ))?;
        }
    }
    Ok(())
}
