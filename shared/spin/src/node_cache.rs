//! The node's read cache in Spin's default key-value store (see `tally_core::edge_cache`):
//! page counts for `visits`, metric summaries for `summary`. Cache failures never fail a
//! request: they only cost a trip to the shard.
//!
//! [`read_through`] is the one way a component reads through the cache. A fresh entry is
//! answered with no variable read, no limiter charge and no shard call: it spends nothing the
//! node's clients share (see `rate_limit`). Anything else is charged one read token and asked
//! of the shard, and its answer is stored for the next reader when that is worth a durable
//! write (`tally_core::edge_cache::worth_storing`); an unreachable shard is answered from an
//! older entry, marked stale.

use serde::de::DeserializeOwned;
use serde::Serialize;
use tally_core::api::{Period, ServedVia};
use tally_core::edge_cache::{
    summary_key, worth_storing, Entry, DEFAULT_SUMMARY_TTL_MS, DEFAULT_TTL_MS,
};
use tally_core::rate_policy::RouteClass;
use tally_core::validation::PageId;

use crate::http_io::Request;
use crate::node_store::{delete, exists, get, set};
use crate::rate_limit::{self, Admitted};
use crate::request_info::{now_ms, random_u32};
use crate::request_log;
use crate::respond::Failure;
use crate::shard_io::ShardError;

/// What a shard answered for a read, and which shard it was.
pub struct Fetched<T> {
    /// The shard asked.
    pub shard: String,
    /// Its answer.
    pub result: Result<T, ShardError>,
}

/// A value read through the cache and where it came from.
pub struct CachedRead<T> {
    /// The value.
    pub value: T,
    /// `cache`, `redis_<shard>` or `stale_cache`.
    pub served_via: ServedVia,
    /// For a stale answer, the entry's age in whole seconds (the `Age` header).
    pub stale_age_s: Option<u64>,
}

/// How a read through the cache is made: where the entry lives, its TTL, how to ask the
/// shard, and whether a value already cached should be kept instead of what the shard said.
pub struct ReadThrough<'a, T> {
    /// The entry's key in the node's store.
    pub key: String,
    /// The TTL for a newly stored entry (read only on a miss).
    pub ttl_ms: fn() -> u64,
    /// Asks the shard (only on a miss; it may read variables and build the placement).
    pub fetch: Box<dyn FnOnce() -> Result<Fetched<T>, Failure> + 'a>,
    /// `keep(cached, fetched)`: true to leave the cached entry as it is.
    pub keep: fn(&T, &T) -> bool,
    /// Whose bucket a miss is charged to.
    pub charge: Charge<'a>,
}

/// Whose bucket a read that asks the shard is charged to.
#[derive(Clone, Copy, Debug)]
pub enum Charge<'a> {
    /// The reader's (`rate_limit_reads`).
    Reader,
    /// The page's own (`rate_limit_badges`): badges.
    Page(&'a PageId),
}

/// Reads `read.key` through this node's cache, charging the limiter only when a shard is asked.
pub fn read_through<T: Serialize + DeserializeOwned>(
    req: &Request,
    read: ReadThrough<'_, T>,
    limit: &mut Admitted,
) -> Result<CachedRead<T>, Failure> {
    let now = now_ms();
    let cached = get(&read.key).and_then(|bytes| Entry::<T>::decode(&bytes));
    if cached.as_ref().is_some_and(|e| e.is_fresh(now)) {
        request_log::note_cache("hit");
        *limit = rate_limit::uncharged();
        let entry = cached.expect("a fresh entry");
        return Ok(CachedRead {
            value: entry.value,
            served_via: ServedVia::Cache,
            stale_age_s: None,
        });
    }
    *limit = match read.charge {
        Charge::Reader => rate_limit::admit(req, RouteClass::Reads, 1)?,
        Charge::Page(page) => rate_limit::admit_badge(page)?,
    };
    let Fetched { shard, result } = (read.fetch)()?;
    match (result, cached) {
        (Ok(value), cached) => {
            request_log::note_cache("miss");
            let ttl_ms = (read.ttl_ms)();
            let keep_cached = cached
                .as_ref()
                .is_some_and(|e| (read.keep)(&e.value, &value));
            if !keep_cached && worth_storing(cached.as_ref(), now, ttl_ms, random_u32()) {
                set(&read.key, &Entry::new(&value, now, ttl_ms).encode());
            }
            Ok(CachedRead {
                value,
                served_via: ServedVia::Redis(shard),
                stale_age_s: None,
            })
        }
        (Err(ShardError::Unreachable(_) | ShardError::BreakerOpen { .. }), Some(entry)) => {
            request_log::note_cache("stale");
            Ok(CachedRead {
                stale_age_s: Some(entry.age_ms(now) / 1000),
                value: entry.value,
                served_via: ServedVia::StaleCache,
            })
        }
        (Err(err), _) => Err(err.into_failure(&shard)),
    }
}

/// A TTL variable in milliseconds, or `default` when it is unset or unreadable.
fn ttl(variable: &'static str, default: u64) -> u64 {
    crate::config::var(variable)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The page-count TTL from the `cache_ttl_ms` variable, or the default.
pub fn ttl_ms() -> u64 {
    ttl("cache_ttl_ms", DEFAULT_TTL_MS)
}

/// The summary TTL from the `summary_cache_ttl_ms` variable, or the default.
pub fn summary_ttl_ms() -> u64 {
    ttl("summary_cache_ttl_ms", DEFAULT_SUMMARY_TTL_MS)
}

/// Drops this node's cached count of `page`, after the page was erased: the node that erased
/// it answers 0 at once instead of the old count until the entry expires (other nodes keep
/// theirs for at most `cache_ttl_ms`).
pub fn forget_page(page: &PageId) {
    let key = tally_core::edge_cache::cache_key(page.as_str());
    if exists(&key) {
        delete(&key);
    }
}

/// Drops this node's cached summaries of `metric_type`, after it stored new samples of it:
/// a client reading through the node it wrote through sees its own writes. Only entries that
/// exist are deleted (reads are cheap; on Spin every delete is a durable SQLite write), so
/// steady ingest of types nobody summarises on this node writes nothing.
pub fn forget_summaries(metric_type: &str) {
    for period in [Period::All, Period::Daily, Period::Hourly] {
        let key = summary_key(metric_type, period);
        if exists(&key) {
            delete(&key);
        }
    }
}
