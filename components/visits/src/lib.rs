//! `visits` component: see `tally_spin::visits`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("visits", req, tally_spin::visits::handle)
}
