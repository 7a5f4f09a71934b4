//! `GET /summary?type=&period=all|daily|hourly`: count, average, min, max and latest of a
//! metric type, from its pre-aggregated buckets (never by scanning samples), cached in the
//! node's key-value store.

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{Period, ServedVia, SummaryReply};
use tally_core::edge_cache::summary_key;
use tally_core::metric_store::{self, buckets_key};
use tally_core::scripts::READ_METRIC;
use tally_core::validation::{self, ValidationError};

use crate::node_cache::{Charge, Fetched, ReadThrough};
use crate::rate_limit::{self, Admitted};
use crate::request_info::query_param;
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};
use crate::{config, node_cache};

/// Answers a summary request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    respond::require_method(req.method(), &[Method::Get, Method::Head])?;
    let metric_type = query_param(req, "type").ok_or(ValidationError::MetricTypeInvalid)?;
    validation::metric_type(&metric_type)?;
    let period = Period::from_query(query_param(req, "period").as_deref())?;
    let fetch = || {
        crate::migration::hand_over_metric_type(&metric_type)?;
        let placement = config::placement()?;
        let shard = placement.shard_for(metric_type.as_bytes());
        let key = buckets_key(&metric_type, period);
        let result = shard_io::call(shard, |conn| {
            let raw = shard_io::eval_binaries(conn, &READ_METRIC, &[&key], vec![])?;
            let (server_now_ms, buckets) =
                metric_store::parse_read_reply(&raw).map_err(|e| ShardError::Protocol(e.0))?;
            let via = ServedVia::Redis(shard.name.clone());
            Ok(metric_store::summarize_buckets(
                &metric_type,
                period,
                via,
                server_now_ms,
                buckets,
            ))
        });
        Ok(Fetched {
            shard: shard.name.clone(),
            result,
        })
    };
    let read = ReadThrough {
        key: summary_key(&metric_type, period),
        ttl_ms: node_cache::summary_ttl_ms,
        fetch: Box::new(fetch),
        keep: |_, _| false,
        charge: Charge::Reader,
    };
    let read = node_cache::read_through(req, read, limit)?;
    Ok(reply(read.value, read.served_via, read.stale_age_s))
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
