//! `incr-yardstick`: the barest Spin visit counter there is, for benchmarks only
//! (`scripts/bench-spin`). `POST /incr/{key}` opens the Redis address in the `redis_url`
//! variable, runs one `INCR`, and answers the new count as text. It is written the way a
//! newcomer would write it with spin-sdk, so that every Tally route can be measured as a
//! fraction of "one Redis write on this runtime".

use spin_sdk::http::{IntoResponse, Request, Response};
use spin_sdk::http_component;
use spin_sdk::redis::Connection;

#[http_component]
fn handle(req: Request) -> anyhow::Result<impl IntoResponse> {
    let address = spin_sdk::variables::get("redis_url")?;
    let key = format!("yardstick:{}", req.path().rsplit('/').next().unwrap_or(""));
    let count = Connection::open(&address)?.incr(&key)?;
    Ok(Response::new(200, count.to_string()))
}
