//! `GET /health` and `GET /health/live`: shard reachability for probes.

use std::time::Instant;

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{HealthReply, ShardHealth};
use tally_core::config::ShardConfig;

use crate::respond::{self, Failure};
use crate::{breaker_io, config, shard_io};

/// Answers a health request.
pub fn handle(req: &Request) -> Response {
    respond::outcome(answer(req))
}

fn answer(req: &Request) -> Result<Response, Failure> {
    respond::require_method(req.method(), &[Method::Get, Method::Head])?;
    if req.path().trim_end_matches('/').ends_with("/live") {
        return Ok(respond::json_bytes(200, br#"{"status":"live"}"#.to_vec()));
    }
    let shards = config::shards()?;
    let report = HealthReply::from_shards(shards.iter().map(probe).collect());
    Ok(respond::json(report.http_status(), &report))
}

/// Opens the shard and sends `PING`, timing the round trip; `None` latency when it failed.
/// Probes bypass the breaker (they report the truth) and show this node's breaker phase.
fn probe(shard: &ShardConfig) -> ShardHealth {
    let started = Instant::now();
    let outcome = shard_io::open(shard).and_then(|conn| shard_io::ping(&conn));
    let latency_ms = outcome
        .is_ok()
        .then(|| started.elapsed().as_secs_f64() * 1000.0);
    ShardHealth::new(&shard.name, &shard.display_address(), latency_ms)
        .with_breaker(breaker_io::phase(&shard.name))
}
