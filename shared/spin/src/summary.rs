//! `GET /summary?type=&period=all|daily|hourly`: count, average, min, max and latest of a
//! metric type, from its pre-aggregated buckets (never by scanning samples), cached in the
//! node's key-value store.

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{Period, ServedVia, SummaryReply};
use tally_core::edge_cache::{freshness, Freshness};
use tally_core::metric_store::{self, buckets_key};
use tally_core::rate_policy::RouteClass;
use tally_core::scripts::READ_METRIC;
use tally_core::validation::{self, ValidationError};

use crate::rate_limit::{self, Admitted};
use crate::request_info::{now_ms, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};
use crate::{config, node_cache, request_log};

/// Answers a summary request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    respond::require_method(req.method(), &[Method::Get, Method::Head])?;
    let metric_type = query_param(req, "type").ok_or(ValidationError::MetricTypeInvalid)?;
    validation::metric_type(&metric_type)?;
    let period = Period::from_query(query_param(req, "period").as_deref())?;
    *limit = rate_limit::admit(req, RouteClass::Reads, 1)?;
    let placement = config::placement()?;

    let now = now_ms();
    let cached = node_cache::read_summary(&metric_type, period);
    if let Some(entry) = &cached {
        if freshness(entry.stored_at_ms, now, node_cache::summary_ttl_ms()) == Freshness::Fresh {
            request_log::note_cache("hit");
            return Ok(reply(entry.summary.clone(), ServedVia::Cache, None));
        }
    }
    let shard = placement.shard_for(metric_type.as_bytes());
    let key = buckets_key(&metric_type, period);
    let computed = shard_io::call(shard, |conn| {
        let raw = shard_io::eval_binaries(conn, &READ_METRIC, &[&key], vec![])?;
        metric_store::parse_read_reply(&raw).map_err(|e| ShardError::Protocol(e.0))
    });
    match (computed, cached) {
        (Ok((server_now_ms, buckets)), _) => {
            request_log::note_cache("miss");
            let via = ServedVia::Redis(shard.name.clone());
            let summary =
                metric_store::summarize_buckets(&metric_type, period, via, server_now_ms, buckets);
            node_cache::write_summary(&summary, now);
            Ok(respond::json(200, &summary))
        }
        (Err(ShardError::Unreachable(_) | ShardError::BreakerOpen { .. }), Some(entry)) => {
            request_log::note_cache("stale");
            let age_s = now.saturating_sub(entry.stored_at_ms) / 1000;
            Ok(reply(entry.summary, ServedVia::StaleCache, Some(age_s)))
        }
        (Err(err), _) => Err(err.into_failure(&shard.name)),
    }
}

/// A cached summary, saying so (with an `Age` header when it is stale).
fn reply(mut summary: SummaryReply, via: ServedVia, stale_age_s: Option<u64>) -> Response {
    summary.served_via = via;
    let mut resp = respond::json(200, &summary);
    if let Some(age_s) = stale_age_s {
        resp.set_header("age", age_s.to_string());
    }
    resp
}
