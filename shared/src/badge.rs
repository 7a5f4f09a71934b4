//! The SVG counter badge: a label and a count, every user-supplied string escaped so no markup
//! can be injected.

/// Default badge label.
pub const DEFAULT_LABEL: &str = "visits";
/// Default value colour.
pub const DEFAULT_COLOR: &str = "#4c1";

/// Escapes text for XML content and attribute values.
pub fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c => out.push(c),
        }
    }
    out
}

/// Approximate rendered width of `text` at 11px Verdana, in pixels.
fn text_width(text: &str) -> u32 {
    10 + 7 * text.chars().count() as u32
}

/// Renders the badge. `color` must come from `validation::badge_color` (it is escaped anyway).
pub fn render(label: &str, count: u64, color: &str) -> String {
    let value = count.to_string();
    let (lw, vw) = (text_width(label), text_width(&value));
    let width = lw + vw;
    let label = escape_xml(label);
    let color = escape_xml(color);
    format!(
        concat!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="20" role="img" aria-label="{l}: {v}">"##,
            r##"<title>{l}: {v}</title>"##,
            r##"<rect width="{lw}" height="20" fill="#555"/>"##,
            r##"<rect x="{lw}" width="{vw}" height="20" fill="{c}"/>"##,
            r##"<g fill="#fff" text-anchor="middle" font-family="Verdana,sans-serif" font-size="11">"##,
            r##"<text x="{lx}" y="14">{l}</text><text x="{vx}" y="14">{v}</text></g></svg>"##
        ),
        w = width,
        l = label,
        v = value,
        lw = lw,
        vw = vw,
        c = color,
        lx = lw / 2,
        vx = lw + vw / 2,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_quotes() {
        let svg = render("<script>alert(\"x\")</script>", 7, "#4c1");
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;"));
    }

    #[test]
    fn shows_label_and_count() {
        let svg = render("visits", 1234, DEFAULT_COLOR);
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains(">visits<") && svg.contains(">1234<"));
    }
}
