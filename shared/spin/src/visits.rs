//! `GET /visits/{page_id}` (count through the edge cache, saying where it came from),
//! `GET /visits/{page_id}/badge.svg` (an SVG counter), and through `insights` a page's history
//! (`/visits/{page_id}/history`), the ranked pages (`/visits?top=N`) and the site's statistics
//! (`/stats`, `/stats/history`).

use spin_sdk::http::Method;

use crate::http_io::{Request, Response};
use tally_core::api::{ProblemKind, VisitsReply};
use tally_core::badge;
use tally_core::edge_cache::cache_key;
use tally_core::scripts::READ_PAGE;
use tally_core::validation::{self, PageId};
use tally_core::visit_store::{parse_read_reply, read_args, PageCounts};

use crate::node_cache::{CachedRead, Charge, Fetched, ReadThrough};
use crate::rate_limit::{self, Admitted};
use crate::request_info::{path_info, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};
use crate::{admin, insights};
use crate::{config, migration, node_cache};
use tally_core::reshard;

/// The suffix that asks for a badge instead of JSON.
const BADGE_SUFFIX: &str = "/badge.svg";
/// The suffix that asks for a page's history.
const HISTORY_SUFFIX: &str = "/history";

/// Answers a visits request.
pub fn handle(req: &Request) -> Response {
    rate_limit::limited(req, answer)
}

fn answer(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    let info = path_info(req);
    if req.path() == "/export" {
        respond::require_method(req.method(), &[Method::Get])?;
        return admin::export(req);
    }
    // Only a page itself (`/visits/{page}`) may be erased: not the statistics, the list, a
    // badge or a history (DELETE /stats/history once erased a page called "history").
    let a_page = !req.path().starts_with("/stats")
        && !matches!(info.as_str(), "" | "/")
        && !info.ends_with(BADGE_SUFFIX)
        && !info.ends_with(HISTORY_SUFFIX);
    if a_page {
        respond::require_method(req.method(), &[Method::Get, Method::Head, Method::Delete])?;
        if *req.method() == Method::Delete {
            return admin::erase(req, &validation::page_id(&info)?);
        }
    } else {
        respond::require_method(req.method(), &[Method::Get, Method::Head])?;
    }
    // The dashboard's data (everything over time and across pages) is public or admin-only
    // (`dashboard_access`); a page's own count and badge are always public.
    if req.path().starts_with("/stats") {
        admin::require_dashboard_access(req)?;
        return match info.as_str() {
            "" | "/" => insights::stats(req, limit),
            "/history" => insights::site_history(req, limit),
            _ => Err(Failure::new(
                ProblemKind::NotFound,
                "no such statistics: /stats or /stats/history",
            )),
        };
    }
    if info.is_empty() || info == "/" {
        admin::require_dashboard_access(req)?;
        return insights::ranked_pages(req, limit);
    }
    if let Some(page) = info.strip_suffix(BADGE_SUFFIX) {
        return badge(req, &validation::page_id(page)?, limit);
    }
    if let Some(page) = info.strip_suffix(HISTORY_SUFFIX) {
        admin::require_dashboard_access(req)?;
        return insights::page_history(req, &validation::page_id(page)?, limit);
    }
    let page = validation::page_id(&info)?;
    let read = read_counts(req, &page, Charge::Reader, limit)?;
    let reply = VisitsReply {
        count: read.value.count,
        served_via: read.served_via,
        uniques_today: Some(read.value.uniques_today),
        bots_today: Some(read.value.bots_today),
    };
    let mut resp = respond::json(200, &reply);
    if let Some(age_s) = read.stale_age_s {
        resp.set_header("age", age_s.to_string());
    }
    Ok(resp)
}

/// A page's numbers through this node's cache (see `node_cache::read_through`).
fn read_counts(
    req: &Request,
    page: &PageId,
    charge: Charge<'_>,
    limit: &mut Admitted,
) -> Result<CachedRead<PageCounts>, Failure> {
    let fetch = || {
        migration::hand_over_page(page.as_str(), || {
            let today = tally_core::history::day_of(crate::request_info::now_ms() as i64);
            reshard::page_count_units(page.as_str(), today)
        })?;
        let placement = config::placement()?;
        let shard = placement.shard_for(page.as_str().as_bytes());
        let result = shard_io::call(shard, |conn| {
            let reply = shard_io::eval_ints(conn, &READ_PAGE, &[], read_args(page))?;
            parse_read_reply(&reply).map_err(|e| ShardError::Protocol(e.0))
        });
        Ok(Fetched {
            shard: shard.name.clone(),
            result,
        })
    };
    let read = ReadThrough {
        key: cache_key(page.as_str()),
        ttl_ms: node_cache::ttl_ms,
        fetch: Box::new(fetch),
        // Counts only grow, so a higher cached count is newer (two reads of one page may
        // finish in either order); the store has no compare-and-set, and the TTL bounds the
        // narrow race that remains.
        keep: |cached, fetched| cached.count > fetched.count,
        charge,
    };
    node_cache::read_through(req, read, limit)
}

fn badge(req: &Request, page: &PageId, limit: &mut Admitted) -> Result<Response, Failure> {
    let label = query_param(req, "label").unwrap_or_else(|| badge::DEFAULT_LABEL.into());
    let label = validation::badge_label(&label)?;
    let color = match query_param(req, "color") {
        Some(raw) => validation::badge_color(&raw)?,
        None => badge::DEFAULT_COLOR.to_string(),
    };
    // A badge that asks the shard is charged to the page, not the reader (see rate_limit).
    let read = read_counts(req, page, Charge::Page(page), limit)?;
    let svg = badge::render(label, read.value.count, &color);
    Ok(Response::new(200, svg.into_bytes())
        .with_header("content-type", "image/svg+xml")
        .with_header("cache-control", "no-cache")
        .with_header("x-served-via", read.served_via.to_string()))
}
