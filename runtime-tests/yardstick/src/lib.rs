//! `incr-yardstick`: the barest Spin components there are, for benchmarks only
//! (`scripts/bench-spin`), written the way a newcomer would write them with spin-sdk, so that
//! Tally's routes can be measured as fractions of "the cheapest thing of its kind" on the same
//! runtime:
//!
//! - `POST /incr/{key}`: opens the Redis address in the `redis_url` variable, runs one `INCR`
//!   and answers the new count as text (the yardstick for a counted visit);
//! - `GET /kv/{key}`: opens the default key-value store and reads one key (the yardstick for a
//!   read served from the node's cache).

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::redis::Connection;

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let path = req.path();
    let key = path.rsplit('/').next().unwrap_or("");
    if path.starts_with("/kv/") {
        let value = Store::open_default()?.get(key)?;
        return Ok(Response::new(200, value.unwrap_or_default()));
    }
    let address = spin_sdk::variables::get("redis_url")?;
    let count = Connection::open(&address)?.incr(&format!("yardstick:{key}"))?;
    Ok(Response::new(200, count.to_string()))
}
