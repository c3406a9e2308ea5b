//! Allowed-over-time against the ideal token bucket (429 accuracy).

use plotters::prelude::*;

use super::{fmt_count, svg, DrawResult, FONT, SIZE};
use crate::model::SeriesPoint;

/// One store's series: name, colour, cumulative points.
pub(crate) type Series<'a> = (&'a str, RGBColor, &'a [SeriesPoint]);

/// Cumulative allowed responses per store (solid), each with its own ideal
/// bucket (dashed, same colour). The ideal is per store because it replays
/// that store's own arrivals: requests reach each store at slightly different
/// times, so one shared ideal line would put an exact store above it mid-run.
pub(crate) fn allowed_over_time(title: &str, series: &[Series<'_>]) -> String {
    svg(SIZE, |root| draw(root, title, series))
}

fn draw(root: &super::Area<'_>, title: &str, series: &[Series<'_>]) -> DrawResult {
    let points = series.iter().flat_map(|s| s.2.iter());
    let t_max = points.clone().map(|p| p.t_ms).max().unwrap_or(1).max(1) as f64 / 1_000.0;
    let y_max = points
        .map(|p| p.allowed.max(p.ideal))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..t_max * 1.02, 0.0..y_max * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("time since the first request (s)")
        .y_desc("allowed so far")
        .y_label_formatter(&|y| fmt_count(*y))
        .label_style((FONT, 13))
        .draw()?;
    let xy = |p: &SeriesPoint, v: u64| (p.t_ms as f64 / 1_000.0, v as f64);
    for &(_, color, points) in series {
        chart.draw_series(LineSeries::new(
            points.iter().map(|p| xy(p, p.allowed)),
            color.stroke_width(2),
        ))?;
    }
    for &(_, color, points) in series {
        chart.draw_series(DashedLineSeries::new(
            points.iter().map(|p| xy(p, p.ideal)),
            8,
            5,
            color.mix(0.9).stroke_width(1),
        ))?;
    }
    Ok(())
}
