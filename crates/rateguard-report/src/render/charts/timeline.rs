//! The store-outage timeline: outcomes per time slot with kill, restart and
//! enforcement-resumed markers, and the slot p99 on the right axis.

use plotters::prelude::*;

use super::{draw_legend, fmt_count, fmt_us, legend_line, svg, DrawResult, FONT, SIZE};
use crate::model::{Outage, TimelinePoint};

const OK: RGBColor = RGBColor(0x2c, 0xa0, 0x2c);
const DENIED: RGBColor = RGBColor(0xff, 0x7f, 0x0e);
const ERRORS: RGBColor = RGBColor(0xd6, 0x27, 0x28);
const P99: RGBColor = RGBColor(0x7f, 0x7f, 0x7f);
const KILL: RGBColor = RGBColor(0x00, 0x00, 0x00);
const RESTART: RGBColor = RGBColor(0x1f, 0x77, 0xb4);
const RESUMED: RGBColor = RGBColor(0x94, 0x67, 0xbd);

/// ok / denied / errors per slot and the slot p99, with outage markers.
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
    let y_max = points
        .iter()
        .map(|p| p.ok.max(p.denied).max(p.errors))
        .max()
        .unwrap_or(1)
        .max(1) as f64
        * 1.15;
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
        .y_desc("responses per slot")
        .y_label_formatter(&|y| fmt_count(*y))
        .label_style((FONT, 13))
        .draw()?;
    chart
        .configure_secondary_axes()
        .y_desc("slot p99")
        .y_label_formatter(&|y| fmt_us(*y))
        .label_style((FONT, 13))
        .draw()?;
    type Pick = fn(&TimelinePoint) -> u64;
    let lines: [(&str, RGBColor, Pick); 3] = [
        ("ok", OK, |p| p.ok),
        ("denied (429)", DENIED, |p| p.denied),
        ("errors", ERRORS, |p| p.errors),
    ];
    for (name, color, pick) in lines {
        chart
            .draw_series(LineSeries::new(
                points.iter().map(|p| (secs(p.t_ms), pick(p) as f64)),
                color.stroke_width(2),
            ))?
            .label(name)
            .legend(legend_line(color));
    }
    chart
        .draw_secondary_series(LineSeries::new(
            points.iter().map(|p| (secs(p.t_ms), p.p99_us as f64)),
            P99.stroke_width(1),
        ))?
        .label("p99 (right axis)")
        .legend(legend_line(P99));
    if let Some(o) = outage {
        let markers = [
            ("store killed", KILL, Some(o.killed_at_ms)),
            ("store restarted", RESTART, Some(o.restarted_at_ms)),
            ("enforcing again", RESUMED, o.enforcement_resumed_at_ms),
        ];
        for (name, color, at) in markers {
            let Some(at) = at else { continue };
            let x = secs(at);
            chart
                .draw_series(DashedLineSeries::new(
                    [(x, 0.0), (x, y_max)],
                    6,
                    4,
                    color.stroke_width(2),
                ))?
                .label(name)
                .legend(legend_line(color));
        }
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperRight)
}
