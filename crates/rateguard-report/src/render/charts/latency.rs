//! Latency percentile curves: x in "nines" (p50 … p99.99), y log-scaled µs.

use plotters::prelude::*;

use super::{fmt_us, svg, DrawResult, FONT, SIZE};

/// One store's curve: name, colour, `(percentile, µs)` points.
pub(crate) type Curve<'a> = (&'a str, RGBColor, &'a [(f64, u64)]);

/// Percentiles marked on the x axis.
const TICKS: [f64; 5] = [50.0, 90.0, 99.0, 99.9, 99.99];

/// Position of a percentile on the "nines" axis in thousandths of a nine
/// (integers, so the axis can carry fixed key points): p90 → 1000, p99 → 2000.
fn nines(p: f64) -> i32 {
    (-(1.0 - p / 100.0).max(1e-9).log10() * 1_000.0).round() as i32
}

/// The percentile label for a position on the nines axis (`p99.9`).
fn nines_label(x: i32) -> String {
    let p = 100.0 - 100.0 * 10f64.powf(-f64::from(x) / 1_000.0);
    let s = format!("{p:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    format!("p{s}")
}

/// Ticks at 1, 2 and 5 times the powers of ten within `[lo, hi]`, so a log
/// axis spanning less than a decade still gets several labels.
fn ticks_1_2_5(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let mut decade = 10f64.powf(lo.max(1e-9).log10().floor());
    while decade <= hi {
        for m in [1.0, 2.0, 5.0] {
            let v = decade * m;
            if (lo..=hi).contains(&v) {
                out.push(v);
            }
        }
        decade *= 10.0;
    }
    out
}

/// Latency percentile curves, one line per store.
pub(crate) fn latency_curves(title: &str, curves: &[Curve<'_>]) -> String {
    svg(SIZE, |root| draw(root, title, curves))
}

fn draw(root: &super::Area<'_>, title: &str, curves: &[Curve<'_>]) -> DrawResult {
    let values = curves
        .iter()
        .flat_map(|c| c.2.iter().map(|&(_, v)| v.max(1)));
    let lo = values.clone().min().unwrap_or(1) as f64;
    let hi = values.max().unwrap_or(1_000) as f64;
    let x_keys: Vec<i32> = TICKS.iter().map(|&p| nines(p)).collect();
    let mut chart = ChartBuilder::on(root)
        .caption(title, (FONT, 20))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(
            (200..4_100).with_key_points(x_keys),
            ((lo / 1.5)..(hi * 1.5))
                .log_scale()
                .with_key_points(ticks_1_2_5(lo / 1.5, hi * 1.5)),
        )?;
    chart
        .configure_mesh()
        .x_desc("percentile")
        .y_desc("latency (log scale)")
        .x_label_formatter(&|x| nines_label(*x))
        .y_label_formatter(&|y| fmt_us(*y))
        .label_style((FONT, 13))
        .draw()?;
    for &(_, color, points) in curves {
        let line = points.iter().map(|&(p, v)| (nines(p), v.max(1) as f64));
        chart.draw_series(LineSeries::new(line.clone(), color.stroke_width(2)))?;
        chart.draw_series(line.map(|xy| Circle::new(xy, 3, color.filled())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ticks() {
        assert_eq!(
            ticks_1_2_5(800.0, 12_000.0),
            [1_000.0, 2_000.0, 5_000.0, 10_000.0]
        );
        assert_eq!(ticks_1_2_5(3.0, 4.0), Vec::<f64>::new());
    }

    #[test]
    fn nines_axis_round_trips_labels() {
        assert_eq!(nines(90.0), 1_000);
        assert_eq!(nines(99.99), 4_000);
        for (p, label) in [
            (50.0, "p50"),
            (99.0, "p99"),
            (99.9, "p99.9"),
            (99.99, "p99.99"),
        ] {
            assert_eq!(nines_label(nines(p)), label);
        }
    }
}
