//! `metrics` component: see `tally_spin::metrics`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("metrics", req, tally_spin::metrics::handle)
}
