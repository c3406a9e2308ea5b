//! Latency against offered load: one line per subject and store RTT
//! (solid at the first RTT, dashed above), y log-scaled.

use plotters::prelude::*;

use super::{fmt_count, fmt_us, svg, DrawResult, FONT, SIZE};

/// One line: colour, dashed, (offered rps, µs) points.
pub(crate) type Line = (RGBColor, bool, Vec<(f64, f64)>);

/// `lines` on offered load (x) against latency (y, log scale).
pub(crate) fn load_latency(title: &str, y_desc: &str, lines: &[Line]) -> String {
    svg(SIZE, |root| draw(root, title, y_desc, lines))
}

fn draw(root: &super::Area<'_>, title: &str, y_desc: &str, lines: &[Line]) -> DrawResult {
    let points = lines.iter().flat_map(|l| l.2.iter());
    let x_max = points.clone().map(|p| p.0).fold(1.0, f64::max) * 1.1;
    let lo = points
        .clone()
        .map(|p| p.1.max(1.0))
        .fold(f64::MAX, f64::min);
    let hi = points.map(|p| p.1.max(1.0)).fold(1.0, f64::max);
    let lo = if lo == f64::MAX { 1.0 } else { lo };
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(0.0..x_max, ((lo / 1.5)..(hi * 1.5)).log_scale())?;
    chart
        .configure_mesh()
        .x_desc("offered load (requests per second)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| fmt_count(*x))
        .y_label_formatter(&|y| fmt_us(*y))
        .label_style((FONT, 13))
        .draw()?;
    for (color, dashed, pts) in lines {
        if *dashed {
            chart.draw_series(DashedLineSeries::new(
                pts.iter().copied(),
                8,
                5,
                color.stroke_width(2),
            ))?;
        } else {
            chart.draw_series(LineSeries::new(pts.iter().copied(), color.stroke_width(2)))?;
        }
        chart.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))?;
    }
    Ok(())
}
