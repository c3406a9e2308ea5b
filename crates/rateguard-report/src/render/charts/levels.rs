//! Offered vs achieved rate at each fixed arrival rate of the throughput
//! scenario: where each store stops keeping up.

use plotters::prelude::*;

use super::{draw_legend, fmt_count, legend_line, svg, DrawResult, FONT, SIZE};
use crate::model::RateLevel;

/// One store's levels: name, colour, levels (lowest first).
pub(crate) type Levels<'a> = (&'a str, RGBColor, &'a [RateLevel]);

/// Achieved against offered rate per store, with the diagonal "kept up"
/// line dashed; filled markers are sustained levels, hollow ones are not.
pub(crate) fn rate_levels(title: &str, stores: &[Levels<'_>]) -> String {
    svg(SIZE, |root| draw(root, title, stores))
}

fn draw(root: &super::Area<'_>, title: &str, stores: &[Levels<'_>]) -> DrawResult {
    let levels = stores.iter().flat_map(|s| s.2.iter());
    let max = levels
        .map(|l| l.target_rps.max(l.achieved_rps))
        .fold(1.0, f64::max)
        * 1.1;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(0.0..max, 0.0..max)?;
    chart
        .configure_mesh()
        .x_desc("offered rate (requests per second)")
        .y_desc("achieved 2xx per second")
        .x_label_formatter(&|x| fmt_count(*x))
        .y_label_formatter(&|y| fmt_count(*y))
        .label_style((FONT, 13))
        .draw()?;
    chart
        .draw_series(DashedLineSeries::new(
            [(0.0, 0.0), (max, max)],
            8,
            5,
            BLACK.mix(0.6).stroke_width(1),
        ))?
        .label("achieved = offered")
        .legend(legend_line(BLACK));
    for &(store, color, levels) in stores {
        let points = levels.iter().map(|l| (l.target_rps, l.achieved_rps));
        chart
            .draw_series(LineSeries::new(points, color.stroke_width(2)))?
            .label(store)
            .legend(legend_line(color));
        chart.draw_series(levels.iter().map(|l| {
            let style = if l.sustained {
                color.filled()
            } else {
                color.stroke_width(2)
            };
            Circle::new((l.target_rps, l.achieved_rps), 5, style)
        }))?;
    }
    draw_legend(&mut chart, SeriesLabelPosition::UpperLeft)
}
