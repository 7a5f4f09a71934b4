//! `metrics` component: routed and built; its behaviour lands with its own issue.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;

#[http_component]
fn handle(req: Request) -> Response {
    tally_spin::request_log::logged("metrics", req, |_| {
        tally_spin::respond::not_implemented("metrics")
    })
}
