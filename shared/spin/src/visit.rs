//! `POST /visit/{page_id}` and `POST /visit` (batch): count visits durably, one atomic round
//! trip per shard touched, acknowledged only once Redis has them. A visit writes nothing to
//! the node's key-value store: the reply carries the new count, and this node's cached count
//! of the page catches up within `cache_ttl_ms` like every other node's (writing it through
//! cost a durable SQLite write per visit on Spin, more than the read it would save).

use std::collections::BTreeMap;

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{
    BatchReply, BatchRequest, FailedShard, ProblemKind, RecordedPage, VisitReply,
};
use tally_core::config::ShardConfig;
use tally_core::rate_policy::RouteClass;
use tally_core::scripts::RECORD_VISITS;
use tally_core::validation::{self, PageId};
use tally_core::visit_store::{
    fingerprint, parse_record_reply, visitor_fingerprint, RecordOutcome, RecordRequest,
};

use crate::config;
use crate::rate_limit::{self, Admitted};
use crate::request_info::{client_address, header, path_info, random_hex};
use crate::respond::{self, Failure};
use crate::shard_io::{self, Placement, ShardError};

/// Answers a visit request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    respond::require_method(req.method(), &[Method::Post])?;
    let idempotency_key = header(req, "idempotency-key")
        .map(validation::idempotency_key)
        .transpose()?;
    match path_info(req).as_str() {
        "" | "/" => batch(req, idempotency_key, limit),
        raw_page => {
            let page = validation::page_id(raw_page)?;
            *limit = rate_limit::admit(req, RouteClass::Writes, 1)?;
            single(req, &*config::placement()?, page, idempotency_key)
        }
    }
}

fn single(
    req: &Request,
    placement: &Placement,
    page: PageId,
    idempotency_key: Option<&str>,
) -> Result<Response, Failure> {
    let shard = placement.shard_for(page.as_str().as_bytes());
    let request = RecordRequest {
        idempotency_key,
        fingerprint: fingerprint(format!("visit\0{page}").as_bytes()),
        visitor: Some(visitor_fingerprint(
            &client_address(req)?.to_string(),
            header(req, "user-agent").unwrap_or(""),
        )),
        salt_candidate: random_hex(16),
        pages: vec![(&page, 1)],
    };
    let outcome = record(shard, &request).map_err(|err| err.into_failure(&shard.name))?;
    let counts = match outcome {
        RecordOutcome::Applied(counts) | RecordOutcome::Replayed(counts) => counts,
        RecordOutcome::Conflict => return Err(conflict()),
    };
    Ok(respond::json(
        200,
        &VisitReply::recorded(page.as_str(), counts[0].count),
    ))
}

fn batch(
    req: &Request,
    idempotency_key: Option<&str>,
    limit: &mut Admitted,
) -> Result<Response, Failure> {
    let body = respond::json_body(req, validation::MAX_BODY_BYTES)?;
    let parsed: BatchRequest = respond::parse_json(body)?;
    let visits = aggregate(&parsed)?;
    // A batch costs as many tokens as visits it carries.
    *limit = rate_limit::admit(req, RouteClass::Writes, visits.values().sum())?;
    let placement = config::placement()?;
    let body_fingerprint = fingerprint(body);

    let visits: Vec<(PageId, u64)> = visits.into_iter().collect();
    let (mut recorded, mut failed, mut replayed) = (Vec::new(), Vec::new(), false);
    for (shard, pages) in placement.group_by_shard(&visits, |(page, _)| page.as_str().as_bytes()) {
        let request = RecordRequest {
            idempotency_key,
            fingerprint: body_fingerprint.clone(),
            visitor: None,
            salt_candidate: String::new(),
            pages: pages.iter().map(|(page, added)| (page, *added)).collect(),
        };
        let outcome = match record(shard, &request) {
            Ok(outcome) => outcome,
            Err(err @ ShardError::Protocol(_)) => return Err(err.into_failure(&shard.name)),
            Err(ShardError::Unreachable(_) | ShardError::BreakerOpen { .. }) => {
                failed.push(FailedShard {
                    shard: shard.name.clone(),
                    pages: request.pages.iter().map(|(p, _)| p.to_string()).collect(),
                });
                continue;
            }
        };
        let counts = match outcome {
            RecordOutcome::Applied(counts) => counts,
            RecordOutcome::Replayed(counts) => {
                replayed = true;
                counts
            }
            RecordOutcome::Conflict => return Err(conflict()),
        };
        recorded.extend(
            request
                .pages
                .iter()
                .zip(counts)
                .map(|((page, added), c)| RecordedPage {
                    page: page.to_string(),
                    added: *added,
                    count: c.count,
                }),
        );
    }
    recorded.sort_by(|a, b| a.page.cmp(&b.page));
    let status = if failed.is_empty() { 200 } else { 503 };
    let reply = BatchReply::new(recorded, replayed).with_failures(failed);
    let mut resp = respond::json(status, &reply);
    if status == 503 {
        resp.set_header("retry-after", "1");
    }
    Ok(resp)
}

/// Validates every entry and sums repeated pages; the whole batch is refused on any error.
fn aggregate(batch: &BatchRequest) -> Result<BTreeMap<PageId, u64>, Failure> {
    validation::batch_len(batch.visits.len(), validation::MAX_BATCH_VISITS)?;
    let mut visits = BTreeMap::new();
    for visit in &batch.visits {
        let page = validation::page_id(&visit.page)?;
        let count = validation::visit_count(visit.count)?;
        *visits.entry(page).or_insert(0) += count;
    }
    Ok(visits)
}

/// Runs `record_visits` on one shard.
fn record(shard: &ShardConfig, request: &RecordRequest) -> Result<RecordOutcome, ShardError> {
    let reply = shard_io::call(shard, |conn| {
        shard_io::eval_ints(conn, &RECORD_VISITS, &[], request.args())
    })?;
    parse_record_reply(&reply, request.pages.len()).map_err(|err| ShardError::Protocol(err.0))
}

fn conflict() -> Failure {
    Failure::new(
        ProblemKind::IdempotencyConflict,
        "this Idempotency-Key was used with a different request; use a new key",
    )
}
