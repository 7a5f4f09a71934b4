//! The node's caches in Spin's default key-value store (see `tally_core::edge_cache`): page
//! counts for `visits`, metric summaries for `summary`. Cache failures never fail a request:
//! they only cost a trip to the shard.

use tally_core::api::{Period, SummaryReply};
use tally_core::edge_cache::{
    cache_key, summary_key, CacheEntry, CachedSummary, Stored, DEFAULT_SUMMARY_TTL_MS,
    DEFAULT_TTL_MS,
};
use tally_core::visit_store::PageCounts;

use crate::node_store::{delete, exists, get, set};

/// A TTL variable in milliseconds, or `default` when it is unset or unreadable.
fn ttl(variable: &str, default: u64) -> u64 {
    spin_sdk::variables::get(variable)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

/// The page's cached entry, if any.
pub fn read(page: &str) -> Option<CacheEntry> {
    CacheEntry::decode(&get(&cache_key(page))?)
}

/// Stores numbers just read from the page's shard, unless the entry read before asking the
/// shard (`previous`) already held a higher count: counts only grow, so a higher one is newer
/// (two reads of one page may finish in either order). The store has no compare-and-set, so a
/// narrow race remains; the TTL bounds how long it can last.
pub fn write(page: &str, counts: PageCounts, now_ms: u64, previous: Option<&CacheEntry>) {
    if previous.is_some_and(|e| e.count > counts.count) {
        return;
    }
    set(&cache_key(page), &CacheEntry::new(counts, now_ms).encode());
}

/// The page-count TTL from the `cache_ttl_ms` variable, or the default.
pub fn ttl_ms() -> u64 {
    ttl("cache_ttl_ms", DEFAULT_TTL_MS)
}

/// The cached summary of `metric_type` over `period`, if any.
pub fn read_summary(metric_type: &str, period: Period) -> Option<CachedSummary> {
    CachedSummary::decode(&get(&summary_key(metric_type, period))?)
}

/// Stores a summary just computed from its shard.
pub fn write_summary(summary: &SummaryReply, now_ms: u64) {
    let entry = CachedSummary {
        stored_at_ms: now_ms,
        summary: summary.clone(),
    };
    set(
        &summary_key(&summary.metric_type, summary.period),
        &entry.encode(),
    );
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

/// The summary TTL from the `summary_cache_ttl_ms` variable, or the default.
pub fn summary_ttl_ms() -> u64 {
    ttl("summary_cache_ttl_ms", DEFAULT_SUMMARY_TTL_MS)
}
