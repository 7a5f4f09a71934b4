//! `assets` component: the static files Tally serves itself (`tally_spin::assets`), compiled in
//! with their ETags. `GET /tally.js` is the tracker a site's pages load.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;
use tally_spin::assets::Asset;

/// Every asset, by path.
const ASSETS: &[Asset] = &[Asset::new(
    "/tally.js",
    "text/javascript; charset=utf-8",
    include_bytes!("../static/tally.js"),
)];

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    tally_spin::http_io::serve("assets", req, out, |req| {
        tally_spin::assets::serve(req, ASSETS)
    })
}
