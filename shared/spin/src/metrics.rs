//! `POST /metrics` (one sample or an array of up to 1,000, stored with their pre-aggregated
//! buckets in one atomic round trip per shard) and `GET /metrics?type=&limit=` (newest first).

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use spin_sdk::redis::RedisParameter;
use tally_core::api::{is_array_body, MetricCreated, MetricSample, MetricsList, ProblemKind};
use tally_core::metric_store::{self, Listed, Retention, RECENT_KEY};
use tally_core::rate_policy::RouteClass;
use tally_core::scripts::INGEST_METRICS;
use tally_core::validation::{self, MAX_METRICS_BODY_BYTES};

use crate::rate_limit::{self, Admitted};
use crate::request_info::{now_ms, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, Placement, ShardError};
use crate::{config, node_cache};

/// Answers a metrics request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    // The analytics seed's `/api/metrics/list` only lists (`/metrics`, `/api/metrics` do both).
    let methods: &[Method] = if req.path().ends_with("/list") {
        &[Method::Get, Method::Head]
    } else {
        &[Method::Get, Method::Head, Method::Post]
    };
    respond::require_method(req.method(), methods)?;
    if *req.method() == Method::Post {
        ingest(req, limit)
    } else {
        *limit = rate_limit::admit(req, RouteClass::Reads, 1)?;
        list(req, &*config::placement()?)
    }
}

/// Validates the whole body before anything is written, then stores each shard's share.
fn ingest(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    // A server write: one of the configured API keys when there are any.
    crate::access::require_server_key(req)?;
    let body = respond::json_body(req, MAX_METRICS_BODY_BYTES)?;
    let array = is_array_body(body);
    let posted: Vec<MetricSample> = if array {
        respond::parse_json(body)?
    } else {
        vec![respond::parse_json(body)?]
    };
    validation::batch_len(posted.len(), validation::MAX_BATCH_SAMPLES)?;
    let now = now_ms() as i64;
    let valid = posted
        .iter()
        .map(|s| s.validate(now))
        .collect::<Result<Vec<_>, _>>()?;
    // One token per request: its work is bounded by the 1,000-sample, 256 KiB limits.
    *limit = rate_limit::admit(req, RouteClass::Writes, 1)?;
    let placement = config::placement()?;
    let retention = retention()?;

    let plan = metric_store::plan(&valid);
    let mut unstored: Vec<(&str, ShardError, Vec<&str>)> = Vec::new();
    for (shard, batches) in placement.group_by_shard(&plan, |b| b.metric_type.as_bytes()) {
        let shard_name = shard.name.as_str();
        let keys = metric_store::ingest_keys(&batches);
        let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
        let args = metric_store::ingest_args(&batches, retention);
        let stored = shard_io::call(shard, |conn| {
            shard_io::eval_ints(conn, &INGEST_METRICS, &keys, args)
        });
        let expected: usize = batches.iter().map(|b| b.samples.len()).sum();
        match stored {
            Ok(reply) if reply == [expected as i64] => {
                for batch in &batches {
                    node_cache::forget_summaries(&batch.metric_type);
                }
            }
            Ok(reply) => {
                let err = ShardError::Protocol(format!("stored {reply:?} of {expected}"));
                return Err(err.into_failure(shard_name));
            }
            Err(err) => {
                let types = batches.iter().map(|b| b.metric_type.as_str()).collect();
                unstored.push((shard_name, err, types));
            }
        }
    }
    if !unstored.is_empty() {
        return Err(partial_failure(unstored, plan.len()));
    }
    let reply = if array {
        MetricCreated::many(posted.len())
    } else {
        MetricCreated::one(&posted[0])
    };
    Ok(respond::json(201, &reply))
}

/// The 503 for samples some shards did not store: which types to send again. Each shard's
/// share is all or nothing, so retrying those types' samples cannot count any twice.
fn partial_failure(unstored: Vec<(&str, ShardError, Vec<&str>)>, types: usize) -> Failure {
    let names: Vec<&str> = unstored
        .iter()
        .flat_map(|(_, _, t)| t.iter().copied())
        .collect();
    let lost_all = names.len() == types;
    let (shard, first, _) = unstored.into_iter().next().expect("called with failures");
    let base = first.into_failure(shard);
    if lost_all {
        return base;
    }
    let mut failure = Failure::new(
        ProblemKind::ShardUnavailable,
        format!(
            "samples of these types were not stored, retry them: {}; all other samples were \
             stored",
            names.join(", ")
        ),
    );
    failure.headers = base.headers;
    failure
}

/// `metrics_samples_per_type` and `metrics_retention_days`, checked.
fn retention() -> Result<Retention, Failure> {
    let var = |name| crate::config::var(name).ok();
    Ok(Retention {
        samples_per_type: metric_store::samples_per_type(
            var("metrics_samples_per_type").as_deref(),
        )
        .map_err(Failure::misconfigured)?,
        days: metric_store::retention_days(var("metrics_retention_days").as_deref())
            .map_err(Failure::misconfigured)?,
    })
}

/// Newest first: one type from its shard, or every type merged across all shards.
fn list(req: &Request, placement: &Placement) -> Result<Response, Failure> {
    let limit = validation::list_limit(query_param(req, "limit").as_deref())?;
    let metric_type = query_param(req, "type");
    let samples = match metric_type.as_deref() {
        Some(raw) => {
            let metric_type = validation::metric_type(raw)?;
            crate::migration::hand_over_metric_type(metric_type)?;
            let shard = placement.shard_for(metric_type.as_bytes());
            let key = metric_store::samples_key(metric_type);
            newest_on(shard, &key, limit, Some(metric_type))?
        }
        None => {
            let lists = crate::migration::readable_shards()?
                .iter()
                .map(|shard| newest_on(shard, RECENT_KEY, limit, None))
                .collect::<Result<Vec<_>, _>>()?;
            metric_store::newest(lists, limit)
        }
    };
    let samples = samples.into_iter().map(Listed::into_sample).collect();
    Ok(respond::json(200, &MetricsList::new(metric_type, samples)))
}

/// The newest `limit` members of the sorted set `key` on `shard`.
fn newest_on(
    shard: &tally_core::config::ShardConfig,
    key: &str,
    limit: usize,
    metric_type: Option<&str>,
) -> Result<Vec<Listed>, Failure> {
    let args = [
        RedisParameter::Binary(key.as_bytes().to_vec()),
        RedisParameter::Int64(0),
        RedisParameter::Int64(limit as i64 - 1),
        RedisParameter::Binary(b"REV".to_vec()),
        RedisParameter::Binary(b"WITHSCORES".to_vec()),
    ];
    let pairs = shard_io::call(shard, |conn| shard_io::pairs(conn, "ZRANGE", &args))
        .map_err(|err| err.into_failure(&shard.name))?;
    pairs
        .iter()
        .map(|(member, score)| Listed::parse(member, score, metric_type))
        .collect::<Result<_, _>>()
        .map_err(|err| ShardError::Protocol(err.0).into_failure(&shard.name))
}
