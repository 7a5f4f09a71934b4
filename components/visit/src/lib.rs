//! `visit` component: see `tally_spin::visit`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    tally_spin::http_io::serve("visit", req, out, tally_spin::visit::handle)
}
