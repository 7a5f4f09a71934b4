//! `POST /visit/{page_id}`, `POST /visit` (a batch from a server, or one page view from the
//! tracker) and `GET /visit/{page_id}/pixel.gif` (a counting pixel): count visits durably, one
//! atomic round trip per shard touched, acknowledged only once Redis has them.
//!
//! Who may write is `access`'s: batches are server writes (an API key when `api_keys` is set);
//! page views, single visits and pixels are browser writes (from an `allowed_sites` page or
//! with a key). Page views and pixels from bots, and single visits from bots on a web page,
//! are not counted: they get `202` with the reason, and the page's bot count for the day goes
//! up instead. A visit writes nothing to the node's key-value store: the reply carries the new
//! count, and this node's cached count catches up within `cache_ttl_ms`.

use std::collections::BTreeMap;

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{
    BatchReply, BatchVisit, FailedShard, IgnoredReply, PageViewReply, ProblemKind, RecordedPage,
    VisitBody, VisitReply,
};
use tally_core::bots::{bot_kind, BotKind};
use tally_core::config::ShardConfig;
use tally_core::cors::url_host;
use tally_core::history::{day_of, normalize_referrer, visitor_element};
use tally_core::rate_policy::RouteClass;
use tally_core::scripts::{COUNT_BOT, RECORD_VISITS};
use tally_core::validation::{self, PageId, ValidationError};
use tally_core::visit_store::{
    count_of, fingerprint, parse_record_reply, visitor_fingerprint, RecordOutcome, RecordRequest,
    PAGES_KEY,
};

use crate::migration::Earlier;
use crate::rate_limit::{self, Admitted};
use crate::request_info::{client_address, header, now_ms, path_info, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};
use crate::{access, config, migration};
use tally_core::reshard::{self, Owner};

/// The suffix that makes a page's path a counting pixel.
const PIXEL_SUFFIX: &str = "/pixel.gif";

/// A transparent 1x1 GIF.
const PIXEL_GIF: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

/// Answers a visit request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    let info = path_info(req);
    if let Some(page) = info.strip_suffix(PIXEL_SUFFIX) {
        respond::require_method(req.method(), &[Method::Get, Method::Head])?;
        return pixel(req, &validation::page_id(page)?, limit);
    }
    respond::require_method(req.method(), &[Method::Post])?;
    let idempotency_key = crate::request_info::idempotency_key(req)?;
    match info.as_str() {
        "" | "/" => body(req, idempotency_key, limit),
        raw_page => {
            let page = validation::page_id(raw_page)?;
            // A single visit from a web page is filtered like a page view; one from a server
            // or a script (no Origin, no Referer) is counted as sent.
            let filter_bots = access::from_a_page(req);
            let referrer = source(req, true)?;
            Ok(
                match view(req, &page, idempotency_key, referrer, filter_bots, limit)? {
                    Viewed::Counted(count) => {
                        respond::json(200, &VisitReply::recorded(page.as_str(), count))
                    }
                    Viewed::Bot(kind) => respond::json(202, &IgnoredReply::bot(kind)),
                },
            )
        }
    }
}

/// `POST /visit` with a JSON body (`application/json`, or `text/plain` as `sendBeacon` sends
/// it): a batch or a page view.
fn body(
    req: &Request,
    idempotency_key: Option<&str>,
    limit: &mut Admitted,
) -> Result<Response, Failure> {
    let body = respond::json_or_text_body(req, validation::MAX_BODY_BYTES)?;
    let parsed: VisitBody = respond::parse_json(body)?;
    match parsed {
        VisitBody {
            visits: Some(visits),
            page: None,
            ..
        } => {
            // A batch is a server's: sent as JSON (text/plain is for browsers' beacons, and
            // would let any page post batches without a preflight).
            if !respond::is_json(req) {
                return Err(Failure::new(
                    ProblemKind::UnsupportedMediaType,
                    "send a batch as application/json",
                ));
            }
            access::require_server_key(req)?;
            batch(&visits, body, idempotency_key, limit, req)
        }
        VisitBody {
            visits: None,
            page: Some(page),
            referrer,
        } => {
            validation::body_size(body.len(), validation::MAX_PAGE_VIEW_BYTES)?;
            let page = validation::page_id(&page)?;
            let referrer = validation::referrer_host(referrer.as_deref())?
                .map(|host| normalize_referrer(&host));
            Ok(
                match view(req, &page, idempotency_key, referrer, true, limit)? {
                    Viewed::Counted(count) => {
                        respond::json(200, &PageViewReply::counted(page.as_str(), count))
                    }
                    Viewed::Bot(kind) => respond::json(202, &IgnoredReply::bot(kind)),
                },
            )
        }
        _ => Err(ValidationError::VisitBodyShape.into()),
    }
}

/// `GET /visit/{page}/pixel.gif`: counts a view of `page` from a page that cannot run the
/// tracker (`<img src=…>`), answered with a transparent GIF that is never cached.
fn pixel(req: &Request, page: &PageId, limit: &mut Admitted) -> Result<Response, Failure> {
    let status = match view(req, page, None, source(req, false)?, true, limit)? {
        Viewed::Counted(_) => 200,
        Viewed::Bot(_) => 202,
    };
    Ok(Response::new(status, PIXEL_GIF.to_vec())
        .with_header("content-type", "image/gif")
        .with_header("cache-control", "no-store"))
}

/// Where a single visit or a pixel's view came from (a referrer host, normalized): the
/// `referrer` query parameter (a host name; anything else is a 400), else, for a visit a
/// server forwards (`forwarded`: a POST without an `Origin`), its `Referer` header's host. A
/// browser's own `Referer` names the page itself (an `<img>` or a `fetch` from the page), so
/// it is never a source; a `Referer` that is not a URL is ignored.
fn source(req: &Request, forwarded: bool) -> Result<Option<String>, Failure> {
    if let Some(raw) = query_param(req, "referrer") {
        return Ok(validation::referrer_host(Some(&raw))?.map(|host| normalize_referrer(&host)));
    }
    if !forwarded || header(req, "origin").is_some() {
        return Ok(None);
    }
    Ok(header(req, "referer")
        .and_then(url_host)
        .map(|host| normalize_referrer(&host)))
}

/// What became of a browser write.
enum Viewed {
    /// Counted; the page's count now.
    Counted(u64),
    /// Not counted: it came from a bot.
    Bot(BotKind),
}

/// A browser write of one view of `page`: from an allowed site, within the writer's rate
/// limit, then counted (with the visitor among today's uniques), or, from a bot when
/// `filter_bots` and no API key vouches for the writer, counted as a bot view instead.
fn view(
    req: &Request,
    page: &PageId,
    idempotency_key: Option<&str>,
    referrer: Option<String>,
    filter_bots: bool,
    limit: &mut Admitted,
) -> Result<Viewed, Failure> {
    access::require_allowed_site(req)?;
    *limit = rate_limit::admit(req, RouteClass::Writes, 1)?;
    let placement = config::placement()?;
    let shard = placement.shard_for(page.as_str().as_bytes());
    let user_agent = header(req, "user-agent").unwrap_or("");
    if filter_bots {
        if let Some(kind) = bot_kind(user_agent).filter(|_| !has_key(req)) {
            let counted = shard_io::call(shard, |conn| {
                shard_io::eval_ints(
                    conn,
                    &COUNT_BOT,
                    &[],
                    vec![page.as_str().as_bytes().to_vec()],
                )
            });
            counted.map_err(|err| err.into_failure(&shard.name))?;
            crate::request_log::note_bot(kind.as_str());
            return Ok(Viewed::Bot(kind));
        }
    }
    let visitor = visitor_fingerprint(&client_address(req)?.to_string(), user_agent);
    let request = RecordRequest {
        idempotency_key,
        fingerprint: fingerprint(format!("visit\0{page}").as_bytes()),
        visitor: Some(visitor_element(
            config::visitor_secret().as_bytes(),
            day_of(now_ms() as i64),
            &visitor,
        )),
        referrer,
        history_days: config::history_days()?,
        pages: vec![(page, 1, 0)],
    };
    migration::hand_over(|| vec![page_count(page)])?;
    match migration::earlier_attempt(
        idempotency_key,
        &request.fingerprint,
        std::iter::once(page.as_str()),
    )? {
        Earlier::Unseen => {}
        Earlier::Applied => return Ok(Viewed::Counted(counts_now(&[page])?[0])),
        Earlier::Conflict => return Err(conflict()),
    }
    let outcome = record(shard, &request).map_err(|err| err.into_failure(&shard.name))?;
    match outcome {
        RecordOutcome::Applied(counts) | RecordOutcome::Replayed(counts) => {
            Ok(Viewed::Counted(counts[0].count))
        }
        RecordOutcome::Conflict => Err(conflict()),
    }
}

/// Whether the request presents one of the configured API keys (a server writing for a site).
fn has_key(req: &Request) -> bool {
    access::known_key(req).ok().flatten().is_some()
}

/// A batch from a server: every entry validated, repeated pages summed, one atomic round trip
/// per shard touched.
fn batch(
    entries: &[BatchVisit],
    body: &[u8],
    idempotency_key: Option<&str>,
    limit: &mut Admitted,
    req: &Request,
) -> Result<Response, Failure> {
    let history_days = config::history_days()?;
    let visits = aggregate(entries, now_ms() as i64, history_days)?;
    // A batch costs as many tokens as visits it carries.
    *limit = rate_limit::admit(req, RouteClass::Writes, visits.values().sum())?;
    let placement = config::placement()?;
    let body_fingerprint = fingerprint(body);

    let visits: Vec<((PageId, i64), u64)> = visits.into_iter().collect();
    migration::hand_over(|| {
        visits
            .iter()
            .map(|((page, _), _)| page_count(page))
            .collect()
    })?;
    match migration::earlier_attempt(
        idempotency_key,
        &body_fingerprint,
        visits.iter().map(|((page, _), _)| page.as_str()),
    )? {
        Earlier::Unseen => {}
        Earlier::Applied => return replay_now(&visits),
        Earlier::Conflict => return Err(conflict()),
    }
    let (mut recorded, mut failed, mut replayed) = (Vec::new(), Vec::new(), false);
    for (shard, entries) in
        placement.group_by_shard(&visits, |((page, _), _)| page.as_str().as_bytes())
    {
        let request = RecordRequest {
            idempotency_key,
            fingerprint: body_fingerprint.clone(),
            visitor: None,
            referrer: None,
            history_days,
            pages: entries
                .iter()
                .map(|((page, at_s), added)| (page, *added, *at_s))
                .collect(),
        };
        let outcome = match record(shard, &request) {
            Ok(outcome) => outcome,
            Err(err @ ShardError::Protocol(_)) => return Err(err.into_failure(&shard.name)),
            Err(ShardError::Unreachable(_) | ShardError::BreakerOpen { .. }) => {
                let mut pages: Vec<String> = request
                    .pages
                    .iter()
                    .map(|(p, _, _)| p.to_string())
                    .collect();
                pages.dedup();
                failed.push(FailedShard {
                    shard: shard.name.clone(),
                    pages,
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
                .map(|((page, added, at_s), c)| RecordedPage {
                    page: page.to_string(),
                    added: *added,
                    count: c.count,
                    at: (*at_s != 0).then(|| hour_label(*at_s)),
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

/// Validates every entry and sums repeated pages (per hour, for entries that name one with
/// `at`); the whole batch is refused on any error.
fn aggregate(
    entries: &[BatchVisit],
    now_ms: i64,
    history_days: u32,
) -> Result<BTreeMap<(PageId, i64), u64>, Failure> {
    validation::batch_len(entries.len(), validation::MAX_BATCH_VISITS)?;
    let mut visits = BTreeMap::new();
    for visit in entries {
        let page = validation::page_id(&visit.page)?;
        let count = validation::visit_count(visit.count)?;
        let at_s = match &visit.at {
            Some(at) => validation::visit_hour(at, now_ms, history_days)?,
            None => 0,
        };
        *visits.entry((page, at_s)).or_insert(0) += count;
    }
    Ok(visits)
}

/// The hour a batch entry was recorded at, as RFC 3339 (`2026-11-29T13:00:00Z`).
fn hour_label(at_s: i64) -> String {
    let text = tally_core::rfc3339::format_unix_ms(at_s * 1_000);
    format!("{}:00:00Z", &text[..13])
}

/// A batch applied before a change of the shard list, answered as a replay with its pages'
/// counts now (the counts it was first answered with are on the shards its pages left).
fn replay_now(visits: &[((PageId, i64), u64)]) -> Result<Response, Failure> {
    let pages: Vec<&PageId> = visits.iter().map(|((page, _), _)| page).collect();
    let counts = counts_now(&pages)?;
    let recorded = visits
        .iter()
        .zip(counts)
        .map(|(((page, at_s), added), count)| RecordedPage {
            page: page.to_string(),
            added: *added,
            count,
            at: (*at_s != 0).then(|| hour_label(*at_s)),
        })
        .collect();
    Ok(respond::json(200, &BatchReply::new(recorded, true)))
}

/// The pages' all-time counts on their shards, in order: one `ZMSCORE` per shard.
fn counts_now(pages: &[&PageId]) -> Result<Vec<u64>, Failure> {
    use spin_sdk::redis::RedisParameter;
    let placement = config::placement()?;
    let mut counts = BTreeMap::new();
    for (shard, group) in placement.group_by_shard(pages, |page| page.as_str().as_bytes()) {
        let mut args = vec![RedisParameter::Binary(PAGES_KEY.as_bytes().to_vec())];
        args.extend(
            group
                .iter()
                .map(|page| RedisParameter::Binary(page.as_str().as_bytes().to_vec())),
        );
        let scores = shard_io::call(shard, |conn| {
            let scores = shard_io::binaries_or_nil(conn, "ZMSCORE", &args)?;
            if scores.len() != group.len() {
                return Err(ShardError::Protocol("ZMSCORE: one score per page".into()));
            }
            Ok(scores)
        })
        .map_err(|err| err.into_failure(&shard.name))?;
        for (page, score) in group.into_iter().zip(scores) {
            let count = score.as_deref().and_then(count_of).unwrap_or(0);
            counts.insert(page.as_str(), count);
        }
    }
    Ok(pages.iter().map(|p| counts[p.as_str()]).collect())
}

/// The unit of a page's all-time count, which a write answers with.
fn page_count(page: &PageId) -> (Owner, Vec<reshard::Unit>) {
    (
        Owner::Page(page.to_string()),
        reshard::page_rank_units(page.as_str(), None),
    )
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
