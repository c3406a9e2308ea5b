//! Horizontal stacked bars: one row per labelled item, one segment per
//! part (the CPU µs per request of each role).

use plotters::prelude::*;

use super::{fmt_count, svg, DrawResult, FONT};

/// One row: its label and each part's value, in the order of the parts.
pub(crate) type Row = (String, Vec<f64>);

/// Rows of stacked segments coloured by `part_colors`, x in `x_desc`.
pub(crate) fn stacked_rows(
    title: &str,
    x_desc: &str,
    part_colors: &[RGBColor],
    rows: &[Row],
) -> String {
    let height = 90 + 26 * rows.len().max(1) as u32;
    svg((860, height), |root| {
        draw(root, title, x_desc, part_colors, rows)
    })
}

fn draw(
    root: &super::Area<'_>,
    title: &str,
    x_desc: &str,
    part_colors: &[RGBColor],
    rows: &[Row],
) -> DrawResult {
    let x_max = rows
        .iter()
        .map(|(_, v)| v.iter().sum::<f64>())
        .fold(0.0, f64::max)
        .max(1e-9)
        * 1.08;
    let n = rows.len().max(1);
    // y in thousandths of a row (integers, so the axis can carry one key
    // point per row); row i (from the top) spans one thousand.
    let n = i32::try_from(n).unwrap_or(i32::MAX / 1000);
    let keys: Vec<i32> = (0..n).map(|i| i * 1000 + 500).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(250)
        .build_cartesian_2d(0.0..x_max, (0..n * 1000).with_key_points(keys))?;
    let label = |y: &i32| {
        let i = usize::try_from((n * 1000 - *y - 500) / 1000).unwrap_or(usize::MAX);
        rows.get(i).map(|r| r.0.clone()).unwrap_or_default()
    };
    chart
        .configure_mesh()
        .disable_y_mesh()
        .x_desc(x_desc)
        .x_label_formatter(&|x| fmt_count(*x))
        .y_label_formatter(&label)
        .label_style((FONT, 13))
        .draw()?;
    for (i, (_, parts)) in (0..n).zip(rows) {
        // First row at the top.
        let y = (n - 1 - i) * 1000;
        let mut left = 0.0;
        for (v, color) in parts.iter().zip(part_colors) {
            if *v > 0.0 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(left, y + 150), (left + v, y + 850)],
                    color.filled(),
                )))?;
            }
            left += v;
        }
        chart.draw_series(std::iter::once(Text::new(
            format!(" {}", fmt_count(left)),
            (left, y + 700),
            (FONT, 12),
        )))?;
    }
    Ok(())
}
