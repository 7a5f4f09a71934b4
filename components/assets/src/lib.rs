//! `assets` component: the static files Tally serves itself (`tally_spin::assets`), compiled in
//! with their ETags. `GET /tally.js` is the tracker a site's pages load; `GET /dashboard` is the
//! dashboard page, with its script, styles and the charting library (uPlot, installed from the
//! npm registry at build time; see `build.rs`); `GET /openapi.json` is the API's description and `GET /docs` its reference page (rendered
//! from it at build time, see `build.rs`).

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tally_spin::assets::Asset;

/// What the dashboard page may load and call: its own origin's scripts, styles and API only,
/// nothing inline, never framed.
const DASHBOARD_POLICY: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
         img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

/// The API reference: a page without any script, styled by the dashboard's stylesheet.
const DOCS_POLICY: &[(&str, &str)] = &[
    (
        "content-security-policy",
        "default-src 'none'; style-src 'self'; img-src 'self' data:; base-uri 'none'; \
         form-action 'none'; frame-ancestors 'none'",
    ),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-cache"),
];

/// The dashboard's files are revalidated on every load (a `304` while unchanged), so that a
/// deployment's new page never runs an hour-old script.
const REVALIDATE: &[(&str, &str)] = &[("cache-control", "no-cache")];

/// Every asset, by path.
const ASSETS: &[Asset] = &[
    Asset::new(
        "/tally.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/tally.js"),
    ),
    Asset::new(
        "/openapi.json",
        "application/json",
        include_bytes!("../static/openapi.json"),
    ),
    Asset::new(
        "/docs",
        "text/html; charset=utf-8",
        include_bytes!(env!("DOCS_HTML")),
    )
    .with_headers(DOCS_POLICY),
    Asset::new(
        "/dashboard",
        "text/html; charset=utf-8",
        include_bytes!("../static/dashboard.html"),
    )
    .with_headers(DASHBOARD_POLICY),
    Asset::new(
        "/dashboard/app.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../static/dashboard.js"),
    )
    .with_headers(REVALIDATE),
    Asset::new(
        "/dashboard/app.css",
        "text/css; charset=utf-8",
        include_bytes!("../static/dashboard.css"),
    )
    .with_headers(REVALIDATE),
    Asset::new(
        "/dashboard/uplot.js",
        "text/javascript; charset=utf-8",
        include_bytes!(env!("UPLOT_JS")),
    )
    .with_headers(REVALIDATE),
    Asset::new(
        "/dashboard/uplot.css",
        "text/css; charset=utf-8",
        include_bytes!(env!("UPLOT_CSS")),
    )
    .with_headers(REVALIDATE),
    Asset::new(
        "/dashboard/uplot-license.txt",
        "text/plain; charset=utf-8",
        include_bytes!(env!("UPLOT_LICENSE")),
    )
    .with_headers(REVALIDATE),
];

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    tally_spin::http_io::serve("assets", req, out, |req| {
        tally_spin::assets::serve(req, ASSETS)
    })
}
