//! `visits` component: see `tally_spin::visits`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    tally_spin::http_io::serve("visits", req, out, tally_spin::visits::handle)
}
