//! Grouped bars with optional min/max whiskers (throughput, commands per
//! request, requests per replica and per backend).

use plotters::prelude::*;

use super::{fmt_count, svg, DrawResult, FONT, SIZE};

/// One bar: its height and, when repeated, the (min, max) whisker.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Bar {
    /// Bar height (the median when repeated).
    pub(crate) value: f64,
    /// Lowest and highest over repetitions.
    pub(crate) whisker: Option<(f64, f64)>,
}

/// One series of bars (a store): name, colour, one optional bar per group.
pub(crate) type BarSeries<'a> = (&'a str, RGBColor, Vec<Option<Bar>>);

/// Bars grouped along x by `groups`; within a group, one bar per series.
pub(crate) fn grouped_bars(
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[BarSeries<'_>],
) -> String {
    tall_grouped_bars(title, y_desc, groups, series, 1.3)
}

/// [`grouped_bars`] with the y axis reaching `headroom` × the highest bar,
/// leaving room above the bars for a long legend.
pub(crate) fn tall_grouped_bars(
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[BarSeries<'_>],
    headroom: f64,
) -> String {
    svg(SIZE, |root| {
        draw(root, title, y_desc, groups, series, headroom)
    })
}

fn draw(
    root: &super::Area<'_>,
    title: &str,
    y_desc: &str,
    groups: &[String],
    series: &[BarSeries<'_>],
    headroom: f64,
) -> DrawResult {
    let bars = series.iter().flat_map(|s| s.2.iter().flatten());
    let y_max = bars
        .map(|b| b.whisker.map_or(b.value, |(_, hi)| hi.max(b.value)))
        .fold(0.0, f64::max);
    let y_max = if y_max > 0.0 { y_max * headroom } else { 1.0 };
    let n_groups = groups.len().max(1);
    // x is in thousandths of a group (integers, so the axis can carry one
    // key point per group); group i is centred on i·1000.
    let keys: Vec<i32> = (0..n_groups as i32).map(|i| i * 1_000).collect();
    let at = |x: f64| (x * 1_000.0).round() as i32;
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(70)
        .build_cartesian_2d(
            (-500..n_groups as i32 * 1_000 - 500).with_key_points(keys),
            0.0..y_max,
        )?;
    let label = |x: &i32| match usize::try_from(*x) {
        Ok(x) if x % 1_000 == 0 => groups.get(x / 1_000).cloned().unwrap_or_default(),
        _ => String::new(),
    };
    chart
        .configure_mesh()
        .disable_x_mesh()
        .y_desc(y_desc)
        .x_label_formatter(&label)
        .y_label_formatter(&|y| fmt_count(*y))
        .label_style((FONT, 13))
        .draw()?;
    let width = 0.8 / series.len().max(1) as f64;
    for (j, &(_, color, ref values)) in series.iter().enumerate() {
        let left = |i: usize| i as f64 - 0.4 + j as f64 * width;
        let placed: Vec<(usize, Bar)> = values
            .iter()
            .enumerate()
            .filter_map(|(i, b)| b.map(|b| (i, b)))
            .collect();
        if placed.is_empty() {
            continue;
        }
        chart.draw_series(placed.iter().map(|&(i, b)| {
            Rectangle::new(
                [
                    (at(left(i) + width * 0.05), 0.0),
                    (at(left(i) + width * 0.95), b.value),
                ],
                color.filled(),
            )
        }))?;
        chart.draw_series(placed.iter().filter_map(|&(i, b)| {
            let (lo, hi) = b.whisker?;
            let mid = left(i) + width / 2.0;
            Some(ErrorBar::new_vertical(
                at(mid),
                lo,
                b.value,
                hi,
                BLACK.stroke_width(1),
                8,
            ))
        }))?;
    }
    Ok(())
}
