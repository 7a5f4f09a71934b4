//! `health` component: `GET /health` (shard reachability, latency) and `GET /health/live`.

use spin_sdk::http::{IncomingRequest, ResponseOutparam};
use spin_sdk::http_component;

#[http_component]
fn handle(req: IncomingRequest, out: ResponseOutparam) {
    tally_spin::http_io::serve("health", req, out, tally_spin::health::handle)
}
