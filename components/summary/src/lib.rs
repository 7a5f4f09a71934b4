//! `summary` component: see `tally_spin::summary`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("summary", req, tally_spin::summary::handle)
}
