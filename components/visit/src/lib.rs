//! `visit` component: see `tally_spin::visit`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("visit", req, tally_spin::visit::handle)
}
