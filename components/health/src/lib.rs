//! `health` component: `GET /health` (shard reachability, latency) and `GET /health/live`.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("health", req, tally_spin::health::handle)
}
