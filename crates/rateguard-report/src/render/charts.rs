//! The report's charts as inline SVG strings, drawn with `plotters`.
//!
//! Each function returns one `<svg>` element (or, if drawing failed, a short
//! HTML note saying so). Stores keep one colour in every chart
//! ([`store_color`]).

use plotters::coord::Shift;
use plotters::prelude::*;
use rateguard_contract::StoreKind;
use rateguard_lab_model::Frontend;

use super::esc;

mod accuracy;
mod bars;
mod latency;
mod load_latency;
mod stacked;
mod timeline;

pub(crate) use accuracy::allowed_over_time;
pub(crate) use bars::{grouped_bars, tall_grouped_bars, Bar, BarSeries};
pub(crate) use latency::latency_curves;
pub(crate) use load_latency::load_latency;
pub(crate) use stacked::stacked_rows;
pub(crate) use timeline::{outage_timeline, LEGEND as OUTAGE_LEGEND};

/// The drawing area every chart draws on.
type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;
/// What a chart's drawing code returns.
type DrawResult = Result<(), Box<dyn std::error::Error>>;

/// Default chart size in pixels.
const SIZE: (u32, u32) = (860, 420);
/// Font family for every label (SVG `<text>`; the viewer picks the face).
const FONT: &str = "sans-serif";

/// Store colours, by [`StoreKind::index`]: a kind added later takes the
/// next one by itself (cycling if there are more kinds than colours).
const PALETTE: [RGBColor; 8] = [
    RGBColor(0xd6, 0x27, 0x28), // memory: red, the unshared baseline
    RGBColor(0x1f, 0x77, 0xb4), // redis-lua: blue
    RGBColor(0x2c, 0xa0, 0x2c), // redis-pipelined: green
    RGBColor(0x94, 0x67, 0xbd), // fred-cluster: purple
    RGBColor(0xff, 0x7f, 0x0e), // redis-leased: orange
    RGBColor(0x17, 0xbe, 0xcf), // cyan
    RGBColor(0xe3, 0x77, 0xc2), // pink
    RGBColor(0x00, 0x5f, 0x5f), // dark teal
];

/// One colour per frontend (only the references' are used: the gateways
/// take their store's).
const REFERENCE_PALETTE: [RGBColor; Frontend::ALL.len()] = [
    RGBColor(0x1f, 0x77, 0xb4), // gateway (unused: the store's colour)
    RGBColor(0x7f, 0x7f, 0x7f), // none: grey, the proxy alone
    RGBColor(0x8c, 0x56, 0x4b), // nginx-limit-req: brown
    RGBColor(0x1f, 0x77, 0xb4), // rls (unused: a lighter store colour)
];

/// One colour per CPU role, in [`Role::ALL`](rateguard_lab_model::Role) order.
pub(crate) const ROLE_PALETTE: [RGBColor; rateguard_lab_model::Role::ALL.len()] = [
    RGBColor(0x1f, 0x77, 0xb4), // gateway: blue
    RGBColor(0xd6, 0x27, 0x28), // store: red
    RGBColor(0x2c, 0xa0, 0x2c), // nginx: green
    RGBColor(0xbc, 0xbd, 0x22), // backends: olive
    RGBColor(0x7f, 0x7f, 0x7f), // loadgen: grey
];

/// The colour of `store` in every chart.
pub(crate) fn store_color(store: StoreKind) -> RGBColor {
    PALETTE[store.index() % PALETTE.len()]
}

/// The colour of a subject: its store's, or its reference frontend's.
pub(crate) fn subject_color(subject: crate::model::Subject) -> RGBColor {
    match (subject.frontend, subject.store) {
        (Frontend::Rls, Some(store)) => lighter(store_color(store), 0.35),
        (_, Some(store)) => store_color(store),
        (frontend, None) => REFERENCE_PALETTE[frontend.index()],
    }
}

/// `c` mixed with white: `amount` 0 keeps it, 1 gives white.
pub(crate) fn lighter(c: RGBColor, amount: f64) -> RGBColor {
    let mix =
        |v: u8| (f64::from(v) + (255.0 - f64::from(v)) * amount.clamp(0.0, 1.0)).round() as u8;
    RGBColor(mix(c.0), mix(c.1), mix(c.2))
}

/// The same colour as a CSS hex string, for the HTML table and legend.
pub(crate) fn css_color(c: RGBColor) -> String {
    format!("#{:02x}{:02x}{:02x}", c.0, c.1, c.2)
}

/// Draws one chart of `size` into an SVG string. The `xmlns` attribute is
/// dropped: HTML puts inline `<svg>` in the SVG namespace by itself, and the
/// report must not contain URLs.
fn svg(size: (u32, u32), draw: impl FnOnce(&Area<'_>) -> DrawResult) -> String {
    let mut buf = String::new();
    let result = {
        let root = SVGBackend::with_string(&mut buf, size).into_drawing_area();
        root.fill(&WHITE)
            .map_err(Into::into)
            .and_then(|()| draw(&root))
            .and_then(|()| root.present().map_err(Into::into))
    };
    match result {
        Ok(()) => buf.replace(" xmlns=\"http://www.w3.org/2000/svg\"", ""),
        Err(e) => format!(
            "<p class=\"error\">This chart could not be drawn: {}</p>",
            esc(&e.to_string())
        ),
    }
}

/// A short note shown in place of a chart that has no data in this run.
pub(crate) fn no_data(what: &str) -> String {
    format!(
        "<p class=\"nodata\">No data for {} in this run.</p>",
        esc(what)
    )
}

/// A microsecond value as a short label (`850 µs`, `1.2 ms`, `3.0 s`).
pub(crate) fn fmt_us(us: f64) -> String {
    if us < 1_000.0 {
        format!("{us:.0} µs")
    } else if us < 1_000_000.0 {
        format!("{:.1} ms", us / 1_000.0)
    } else {
        format!("{:.1} s", us / 1_000_000.0)
    }
}

/// A count as a short label (`950`, `12.5k`, `3.1M`).
pub(crate) fn fmt_count(v: f64) -> String {
    let a = v.abs();
    if a >= 1_000_000.0 {
        format!("{:.1}M", v / 1_000_000.0)
    } else if a >= 10_000.0 {
        format!("{:.0}k", v / 1_000.0)
    } else if a >= 1_000.0 {
        format!("{:.1}k", v / 1_000.0)
    } else if a >= 10.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        format!("{v:.2}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_stores_keep_their_colour_wherever_they_appear() {
        assert_ne!(
            store_color(StoreKind::Memory),
            store_color(StoreKind::RedisLua)
        );
        assert_eq!(css_color(store_color(StoreKind::Memory)), "#d62728");
        assert_eq!(lighter(RGBColor(0, 100, 255), 0.5), RGBColor(128, 178, 255));
        assert_eq!(lighter(RGBColor(10, 20, 30), 0.0), RGBColor(10, 20, 30));
    }

    #[test]
    fn labels() {
        assert_eq!(fmt_us(850.0), "850 µs");
        assert_eq!(fmt_us(1_240.0), "1.2 ms");
        assert_eq!(fmt_count(12_400.0), "12k");
        assert_eq!(fmt_count(1_500.0), "1.5k");
        assert_eq!(fmt_count(2.5), "2.50");
        assert_eq!(fmt_count(7.0), "7");
    }
}
