//! Reading visits over time (see `tally_core::history`): a page's series
//! (`GET /visits/{page}/history`), the site's totals (`GET /stats`) and series
//! (`GET /stats/history`), and every page ranked over a range, page by page
//! (`GET /visits?top=N&from=&to=&cursor=`).
//!
//! Each read costs a number of Redis commands bounded by the range's length and the number of
//! shards, never by how many visits were recorded, and goes through the node's cache for
//! `cache_ttl_ms`. Site-wide reads ask every shard and name the ones that could not be asked;
//! only when none could is the answer a 503.

use serde::{Deserialize, Serialize};
use spin_sdk::redis::{RedisParameter, RedisResult};
use tally_core::config::ShardConfig;
use tally_core::history::{Interval, Point, Range};
use tally_core::hll::Registers;
use tally_core::top_pages::{merge_top, parse_ranked, TopPage};
use tally_core::validation::{self, PageId, ValidationError};
use tally_core::visit_store::PAGES_KEY;

use crate::http_io::{Request, Response};
use crate::node_cache::{self, Charge, Fetched, ReadThrough};
use crate::rate_limit::Admitted;
use crate::request_info::{now_ms, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};
use crate::{config, migration};
use tally_core::reshard::{self, Owner};
use tally_core::scripts::{
    READ_PAGE_HISTORY, READ_SITE_RANGE, READ_SITE_SERIES, READ_TOP, STORE_SITE_UNIQUES,
};

/// Top pages and sources `GET /stats` lists when `top` is not given.
const DEFAULT_STATS_TOP: usize = 10;
/// The deepest a paged list of pages may be read (its cost grows with the depth).
pub const MAX_CURSOR: usize = 100_000;
/// A day in milliseconds.
const DAY_MS: i64 = 86_400_000;

/// The range in the request's `from`, `to` and `interval`.
fn range(req: &Request, interval_allowed: bool) -> Result<Range, Failure> {
    let interval = if interval_allowed {
        Interval::parse(query_param(req, "interval").as_deref())?
    } else {
        Interval::Day
    };
    let history_days = config::history_days()?;
    Ok(Range::parse(
        query_param(req, "from").as_deref(),
        query_param(req, "to").as_deref(),
        interval,
        now_ms() as i64,
        history_days,
    )?)
}

fn interval_name(range: &Range) -> &'static str {
    match range.interval {
        Interval::Day => "day",
        Interval::Hour => "hour",
    }
}

/// `GET /visits/{page}/history?from=&to=&interval=day|hour`: `[{"t","visits","uniques"}]`,
/// every day (or hour) of the range, missing ones as zeros.
pub fn page_history(
    req: &Request,
    page: &PageId,
    limit: &mut Admitted,
) -> Result<Response, Failure> {
    let range = range(req, true)?;
    let fetch = || {
        migration::hand_over_page(page.as_str(), || {
            reshard::page_history_units(
                page.as_str(),
                range.days(),
                range.interval == Interval::Hour,
            )
        })?;
        let placement = config::placement()?;
        let shard = placement.shard_for(page.as_str().as_bytes());
        let args = vec![
            page.as_str().as_bytes().to_vec(),
            interval_name(&range).as_bytes().to_vec(),
            range.first.to_string().into_bytes(),
            range.last.to_string().into_bytes(),
        ];
        let result = shard_io::call(shard, |conn| {
            let reply = shard_io::eval_ints(conn, &READ_PAGE_HISTORY, &[], args)?;
            page_points(&range, &reply).ok_or_else(|| {
                ShardError::Protocol(format!(
                    "read_page_history returned {} numbers",
                    reply.len()
                ))
            })
        });
        Ok(Fetched {
            shard: shard.name.clone(),
            result,
        })
    };
    cached(
        req,
        format!(
            "hist:{}:{}:{}:{}",
            interval_name(&range),
            range.first,
            range.last,
            page.as_str()
        ),
        fetch,
        limit,
    )
}

/// The points of a page's `read_page_history` reply.
fn page_points(range: &Range, reply: &[i64]) -> Option<Vec<Point>> {
    let per_step = match range.interval {
        Interval::Day => 2,
        Interval::Hour => 1,
    };
    (reply.len() == range.len() * per_step).then(|| {
        range
            .steps()
            .zip(reply.chunks(per_step))
            .map(|(step, values)| Point {
                t: range.label(step),
                visits: values[0].max(0) as u64,
                uniques: values.get(1).map(|u| (*u).max(0) as u64),
            })
            .collect()
    })
}

/// `GET /stats/history`: the site's series, with the shards that could not be asked.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct SiteHistory {
    /// Every day (or hour) of the range.
    pub points: Vec<Point>,
    /// Shards that could not be asked (their share is missing).
    #[serde(default)]
    pub unavailable_shards: Vec<String>,
}

/// `GET /stats`: the site's totals over a range.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Stats {
    /// The first day, `YYYY-MM-DD`.
    pub from: String,
    /// The last day.
    pub to: String,
    /// Visits in the range.
    pub visits: u64,
    /// Distinct visitors in the range (a HyperLogLog union over its days and every shard).
    pub uniques: u64,
    /// The most visited pages in the range.
    pub top_pages: Vec<TopPage>,
    /// The most frequent referrer hosts in the range.
    pub top_sources: Vec<TopSource>,
    /// Shards that could not be asked (their share is missing).
    #[serde(default)]
    pub unavailable_shards: Vec<String>,
}

/// A referrer host and its page views.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TopSource {
    /// The host visitors came from.
    pub host: String,
    /// Page views it sent in the range.
    pub count: u64,
}

/// A day's unique visitors as one shard answers them.
enum DayUniques {
    /// Counted across every shard once the day was over (`tally:suc:<day>`).
    Finished(u64),
    /// This shard's HyperLogLog of the day.
    Partial(Vec<u8>),
    /// Nothing on this shard.
    Missing,
}

/// One shard's share of the site's series.
struct ShareOfSeries {
    visits: Vec<i64>,
    /// Per day (empty for hours).
    uniques: Vec<DayUniques>,
}

/// Asks one shard for its share of the site's series: one round trip whatever the range.
fn series_share(shard: &ShardConfig, range: &Range) -> Result<ShareOfSeries, ShardError> {
    let args = vec![
        interval_name(range).as_bytes().to_vec(),
        range.first.to_string().into_bytes(),
        range.last.to_string().into_bytes(),
    ];
    let reply = shard_io::call(shard, |conn| {
        shard_io::eval(conn, &READ_SITE_SERIES, &[], args)
    })?;
    let per_step = if range.interval == Interval::Day {
        2
    } else {
        1
    };
    if reply.len() != range.len() * per_step {
        return Err(ShardError::Protocol(
            "read_site_series: wrong length".into(),
        ));
    }
    let wrong = |what: &RedisResult| ShardError::Protocol(format!("read_site_series: {what:?}"));
    let mut share = ShareOfSeries {
        visits: Vec::with_capacity(range.len()),
        uniques: Vec::new(),
    };
    for step in reply.chunks(per_step) {
        match &step[0] {
            RedisResult::Int64(v) => share.visits.push(*v),
            other => return Err(wrong(other)),
        }
        if let Some(uniques) = step.get(1) {
            share.uniques.push(match uniques {
                RedisResult::Int64(n) => DayUniques::Finished((*n).max(0) as u64),
                RedisResult::Binary(b) => DayUniques::Partial(b.clone()),
                RedisResult::Nil => DayUniques::Missing,
                other => return Err(wrong(other)),
            });
        }
    }
    Ok(share)
}

/// One shard's share of the site over a range of days: its visits and the union of its days'
/// HyperLogLogs, merged on the shard (one round trip, one HyperLogLog, whatever the range).
fn range_share(shard: &ShardConfig, range: &Range) -> Result<(u64, Option<Vec<u8>>), ShardError> {
    let days = range.days();
    let args = vec![
        days.start().to_string().into_bytes(),
        days.end().to_string().into_bytes(),
    ];
    let reply = shard_io::call(shard, |conn| {
        shard_io::eval(conn, &READ_SITE_RANGE, &[], args)
    })?;
    match reply.as_slice() {
        [RedisResult::Int64(visits), RedisResult::Binary(hll)] => {
            Ok(((*visits).max(0) as u64, Some(hll.clone())))
        }
        [RedisResult::Int64(visits), RedisResult::Nil] => Ok(((*visits).max(0) as u64, None)),
        other => Err(ShardError::Protocol(format!("read_site_range: {other:?}"))),
    }
}

/// What a read across the site asks of each shard.
struct Across<Ask, Listed, Units> {
    /// The days of the site's numbers it reads (in migration mode, a removed shard's share of
    /// them is handed to its heir first).
    site_days: Option<std::ops::RangeInclusive<i64>>,
    /// One shard's share.
    ask: Ask,
    /// The pages a share ranks.
    listed: Listed,
    /// The units a page's rank reads.
    rank_units: Units,
}

/// Every shard's share, or a 503 when none could be asked. In migration mode it asks the
/// shards being removed too, and a page that a shard ranks though it no longer owns it is
/// handed over and the shards asked again (twice at most: each round moves every such page
/// listed, so a second is rare), so a page is ranked once, with all of its visits.
fn shares<T, Ask, Listed, Units>(
    across: Across<Ask, Listed, Units>,
) -> Result<(Vec<T>, Vec<String>), Failure>
where
    Ask: Fn(&ShardConfig) -> Result<T, ShardError>,
    Listed: Fn(&T) -> Vec<String>,
    Units: Fn(&str) -> Vec<reshard::Unit>,
{
    if let Some(days) = across.site_days.clone() {
        migration::hand_over(|| {
            days.map(|day| (Owner::SiteDay(day), reshard::site_day_units(day)))
                .collect()
        })?;
    }
    // Outside a migration no share is looked at twice: one round, nothing listed.
    let rounds = if migration::current()?.is_some() {
        3
    } else {
        1
    };
    let mut round = 1;
    loop {
        let (got, unavailable) = shares_once(&across.ask)?;
        let mut misplaced = Vec::new();
        if round < rounds {
            for (shard, share) in &got {
                let pages = (across.listed)(share);
                misplaced.extend(migration::misplaced(
                    shard,
                    pages.iter().map(String::as_str),
                )?);
            }
        }
        if misplaced.is_empty() {
            return Ok((
                got.into_iter().map(|(_, share)| share).collect(),
                unavailable,
            ));
        }
        migration::hand_over(|| {
            misplaced
                .iter()
                .map(|page| (Owner::Page(page.clone()), (across.rank_units)(page)))
                .collect()
        })?;
        round += 1;
    }
}

/// Shares, each with its shard's name.
type Named<T> = Vec<(String, T)>;

/// Every shard's share, named by shard, once.
fn shares_once<T>(
    ask: impl Fn(&ShardConfig) -> Result<T, ShardError>,
) -> Result<(Named<T>, Vec<String>), Failure> {
    let (mut got, mut unavailable) = (Vec::new(), Vec::new());
    let mut last_error = None;
    for shard in &migration::readable_shards()? {
        match ask(shard) {
            Ok(share) => got.push((shard.name.clone(), share)),
            Err(err @ ShardError::Protocol(_)) => return Err(err.into_failure(&shard.name)),
            Err(err) => {
                unavailable.push(shard.name.clone());
                last_error = Some((shard.name.clone(), err));
            }
        }
    }
    match (got.is_empty(), last_error) {
        (true, Some((name, err))) => Err(err.into_failure(&name)),
        _ => Ok((got, unavailable)),
    }
}

/// Days (UTC day numbers) whose unique visitors were merged from HyperLogLogs, with the counts.
type MergedDays = Vec<(i64, u64)>;

/// The site's series from every shard's share: visits added, each day's uniques taken from
/// its finished count or merged from the shards' HyperLogLogs. Also returns the days whose
/// uniques were merged here, with their counts.
fn site_points(
    range: &Range,
    shares: &[ShareOfSeries],
) -> Result<(Vec<Point>, MergedDays), Failure> {
    let mut merged_days = Vec::new();
    let mut points = Vec::with_capacity(range.len());
    for (i, step) in range.steps().enumerate() {
        let visits = shares.iter().map(|s| s.visits[i].max(0) as u64).sum();
        let uniques = match range.interval {
            Interval::Hour => None,
            Interval::Day => {
                let finished = shares
                    .iter()
                    .filter_map(|s| match s.uniques.get(i) {
                        Some(DayUniques::Finished(n)) => Some(*n),
                        _ => None,
                    })
                    .max();
                match finished {
                    Some(n) => Some(n),
                    None => {
                        let mut registers = Registers::default();
                        for share in shares {
                            if let Some(DayUniques::Partial(bytes)) = share.uniques.get(i) {
                                registers.merge_bytes(bytes).map_err(hll_failure)?;
                            }
                        }
                        let count = registers.count();
                        merged_days.push((step, count));
                        Some(count)
                    }
                }
            }
        };
        points.push(Point {
            t: range.label(step),
            visits,
            uniques,
        });
    }
    Ok((points, merged_days))
}

/// How long after a day ends (on this node's clock) its unique visitors are taken as final:
/// long enough for any shard's clock, and any visit begun that day, to be past it.
const DAY_SETTLED_MS: i64 = 3_600_000;

/// Keeps, on every shard, the site's unique visitors of the days in `merged` that are over, so
/// that later reads of them need no HyperLogLog. Only called when every shard answered (a
/// count missing a shard's visitors must not be kept). A shard that cannot store them only
/// means its next read merges those days again.
fn store_finished_days(merged: &[(i64, u64)]) -> Result<(), Failure> {
    let now = now_ms() as i64;
    let over: Vec<&(i64, u64)> = merged
        .iter()
        // A day without a visitor on any shard is not kept: reading its absence costs the same.
        .filter(|(day, count)| *count > 0 && (day + 1) * DAY_MS + DAY_SETTLED_MS <= now)
        .collect();
    if over.is_empty() {
        return Ok(());
    }
    let mut args = vec![config::history_days()?.to_string().into_bytes()];
    for (day, count) in over {
        args.push(day.to_string().into_bytes());
        args.push(count.to_string().into_bytes());
    }
    for shard in config::placement()?.shards() {
        let stored = shard_io::call(shard, |conn| {
            shard_io::eval(conn, &STORE_SITE_UNIQUES, &[], args.clone())
        });
        if let Err(err) = stored {
            eprintln!(
                "{}",
                serde_json::json!({"level": "warn", "msg": "keeping finished days' uniques",
                    "shard": shard.name, "error": format!("{err:?}")})
            );
        }
    }
    Ok(())
}

fn hll_failure(err: tally_core::hll::HllError) -> Failure {
    Failure::misconfigured(format!("a shard holds a malformed HyperLogLog: {}", err.0))
}

/// `GET /stats/history?from=&to=&interval=day|hour`.
pub fn site_history(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    let range = range(req, true)?;
    let fetch = || {
        let (got, unavailable) = shares(Across {
            site_days: Some(range.days()),
            ask: |shard: &ShardConfig| series_share(shard, &range),
            listed: |_: &ShareOfSeries| Vec::new(),
            rank_units: |_: &str| Vec::new(),
        })?;
        let (points, merged_days) = site_points(&range, &got)?;
        if unavailable.is_empty() {
            store_finished_days(&merged_days)?;
        }
        Ok(Fetched {
            shard: "shards".into(),
            result: Ok(SiteHistory {
                points,
                unavailable_shards: unavailable,
            }),
        })
    };
    cached(
        req,
        format!(
            "sitehist:{}:{}:{}",
            interval_name(&range),
            range.first,
            range.last
        ),
        fetch,
        limit,
    )
}

/// `GET /stats?from=&to=&top=N`: visits, uniques, top pages and top sources over the days.
pub fn stats(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    let range = range(req, false)?;
    let top = match query_param(req, "top") {
        Some(raw) => validation::top_pages(&raw)?,
        None => DEFAULT_STATS_TOP,
    };
    let fetch = || {
        type Share = ((u64, Option<Vec<u8>>), Vec<TopPage>, Vec<TopPage>);
        let (got, unavailable) = shares(Across {
            site_days: Some(range.days()),
            ask: |shard: &ShardConfig| {
                let share = range_share(shard, &range)?;
                let pages = top_on(shard, "pd", &range, top)?;
                let sources = top_on(shard, "ref", &range, top)?;
                Ok((share, pages, sources))
            },
            listed: |(_, pages, _): &Share| pages.iter().map(|p| p.page.clone()).collect(),
            rank_units: |page: &str| reshard::page_rank_units(page, Some(range.days())),
        })?;
        let mut registers = Registers::default();
        let mut visits = 0;
        for ((shard_visits, hll), _, _) in &got {
            visits += shard_visits;
            if let Some(bytes) = hll {
                registers.merge_bytes(bytes).map_err(hll_failure)?;
            }
        }
        let (pages, sources): (Vec<_>, Vec<_>) = got.into_iter().map(|(_, p, s)| (p, s)).unzip();
        Ok(Fetched {
            shard: "shards".into(),
            result: Ok(Stats {
                from: range.label(range.first),
                to: range.label(range.last),
                visits,
                uniques: registers.count(),
                top_pages: merge_top(pages, top),
                top_sources: merge_top(sources, top)
                    .into_iter()
                    .map(|t| TopSource {
                        host: t.page,
                        count: t.count,
                    })
                    .collect(),
                unavailable_shards: unavailable,
            }),
        })
    };
    cached(
        req,
        format!("stats:{}:{}:{top}", range.first, range.last),
        fetch,
        limit,
    )
}

/// One shard's top `n` of `kind` (`pd` pages, `ref` referrers) over the range's days.
fn top_on(
    shard: &ShardConfig,
    kind: &str,
    range: &Range,
    n: usize,
) -> Result<Vec<TopPage>, ShardError> {
    let days = range.days();
    let args = vec![
        kind.as_bytes().to_vec(),
        days.start().to_string().into_bytes(),
        days.end().to_string().into_bytes(),
        n.to_string().into_bytes(),
    ];
    shard_io::call(shard, |conn| {
        let flat = shard_io::eval_binaries(conn, &READ_TOP, &[], args)?;
        Ok(parse_ranked(&into_pairs(flat)?))
    })
}

/// A name and its score, as a script's flat reply lists them.
type Pair = (Vec<u8>, Vec<u8>);

fn into_pairs(flat: Vec<Vec<u8>>) -> Result<Vec<Pair>, ShardError> {
    if !flat.len().is_multiple_of(2) {
        return Err(ShardError::Protocol("an odd ranked reply".into()));
    }
    let mut items = flat.into_iter();
    let mut pairs = Vec::new();
    while let (Some(name), Some(count)) = (items.next(), items.next()) {
        pairs.push((name, count));
    }
    Ok(pairs)
}

/// `GET /visits?top=N[&from=&to=][&cursor=]`: pages ranked all-time (or over the days of a
/// range), `N` at a time; `next_cursor` reads the next `N`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RankedPages {
    /// This part of the list, most visited first (ties by page id).
    pub pages: Vec<TopPage>,
    /// Pass as `cursor` for the next part; absent after the last.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
    /// Shards that could not be asked (their pages are missing).
    #[serde(default)]
    pub unavailable_shards: Vec<String>,
}

/// Answers `GET /visits?top=N…` (charged to the reader like any read of the shards).
pub fn ranked_pages(req: &Request, limit: &mut Admitted) -> Result<Response, Failure> {
    let raw = query_param(req, "top").ok_or_else(|| {
        Failure::new(
            tally_core::api::ProblemKind::InvalidRequest,
            "ask for a page (/visits/{page_id}) or the most visited pages (/visits?top=N)",
        )
    })?;
    let n = validation::top_pages(&raw)?;
    let offset = match query_param(req, "cursor") {
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|o| *o <= MAX_CURSOR)
            .ok_or(ValidationError::CursorInvalid)?,
        None => 0,
    };
    let ranged = query_param(req, "from").is_some() || query_param(req, "to").is_some();
    let range = if ranged {
        Some(range(req, false)?)
    } else {
        None
    };
    *limit = crate::rate_limit::admit(req, tally_core::rate_policy::RouteClass::Reads, 1)?;
    let depth = offset + n;
    let (lists, unavailable) = shares(Across {
        site_days: None,
        ask: |shard: &ShardConfig| match &range {
            Some(range) => top_on(shard, "pd", range, depth),
            None => {
                let args = [
                    RedisParameter::Binary(PAGES_KEY.as_bytes().to_vec()),
                    RedisParameter::Int64(0),
                    RedisParameter::Int64(depth as i64 - 1),
                    RedisParameter::Binary(b"WITHSCORES".to_vec()),
                ];
                shard_io::call(shard, |conn| shard_io::pairs(conn, "ZREVRANGE", &args))
                    .map(|pairs| parse_ranked(&pairs))
            }
        },
        listed: |list: &Vec<TopPage>| list.iter().map(|p| p.page.clone()).collect(),
        rank_units: |page: &str| reshard::page_rank_units(page, range.as_ref().map(Range::days)),
    })?;
    let merged = merge_top(lists, depth);
    let more = merged.len() == depth;
    let pages: Vec<TopPage> = merged.into_iter().skip(offset).collect();
    let reply = RankedPages {
        pages,
        next_cursor: more.then(|| depth.to_string()),
        unavailable_shards: unavailable,
    };
    Ok(respond::json(200, &reply))
}

/// Answers with what `fetch` gets, through this node's cache under `key` for `cache_ttl_ms`,
/// charging the reader only when the shards are asked; a stale answer carries `Age`.
fn cached<'a, T: Serialize + serde::de::DeserializeOwned>(
    req: &Request,
    key: String,
    fetch: impl FnOnce() -> Result<Fetched<T>, Failure> + 'a,
    limit: &mut Admitted,
) -> Result<Response, Failure> {
    let read = ReadThrough {
        key,
        ttl_ms: node_cache::ttl_ms,
        fetch: Box::new(fetch),
        keep: |_, _| false,
        charge: Charge::Reader,
    };
    let read = node_cache::read_through(req, read, limit)?;
    let mut resp = respond::json(200, &read.value);
    if let Some(age_s) = read.stale_age_s {
        resp.set_header("age", age_s.to_string());
    }
    Ok(resp)
}
