//! The node's read cache for page counts, kept in Spin's key-value store.
//!
//! An entry is `{count, uniques_today, stored_at_ms}`; it is fresh while younger than the TTL
//! on this node's clock (the cache is node-local, so the node's clock is the right one), and
//! may still be served, marked stale, when the page's shard cannot be reached.

use serde::{Deserialize, Serialize};

use crate::api::{Period, SummaryReply};
use crate::visit_store::PageCounts;

/// Default freshness of a cached count.
pub const DEFAULT_TTL_MS: u64 = 5_000;

/// One cached page.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CacheEntry {
    /// Total visits when stored.
    #[serde(rename = "c")]
    pub count: u64,
    /// Unique visitors today when stored.
    #[serde(rename = "u")]
    pub uniques_today: u64,
    /// When it was stored, Unix ms on this node's clock.
    #[serde(rename = "t")]
    pub stored_at_ms: u64,
}

/// How usable an entry is now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Freshness {
    /// Within the TTL: serve it.
    Fresh,
    /// Older than the TTL: refresh from the shard, or serve marked stale if it is down.
    Stale {
        /// Age in milliseconds.
        age_ms: u64,
    },
}

impl CacheEntry {
    /// An entry for `counts` stored at `now_ms`.
    pub fn new(counts: PageCounts, now_ms: u64) -> Self {
        Self {
            count: counts.count,
            uniques_today: counts.uniques_today,
            stored_at_ms: now_ms,
        }
    }

    /// The cached numbers.
    pub fn counts(&self) -> PageCounts {
        PageCounts {
            count: self.count,
            uniques_today: self.uniques_today,
        }
    }

    /// Age now (0 if the clock went backwards).
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms)
    }

    /// Fresh while `age < ttl_ms`.
    pub fn freshness(&self, now_ms: u64, ttl_ms: u64) -> Freshness {
        freshness(self.stored_at_ms, now_ms, ttl_ms)
    }
}

/// How usable something stored at `stored_at_ms` is at `now_ms`: fresh while younger than
/// `ttl_ms` (a clock that went backwards counts as age 0; a TTL of 0 is never fresh).
pub fn freshness(stored_at_ms: u64, now_ms: u64, ttl_ms: u64) -> Freshness {
    let age_ms = now_ms.saturating_sub(stored_at_ms);
    if age_ms < ttl_ms {
        Freshness::Fresh
    } else {
        Freshness::Stale { age_ms }
    }
}

/// What the node's cache stores, as JSON: [`CacheEntry`] and [`CachedSummary`].
pub trait Stored: Serialize + serde::de::DeserializeOwned {
    /// The stored form.
    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    /// Reads a stored entry; anything unreadable is treated as absent.
    fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl Stored for CacheEntry {}
impl Stored for CachedSummary {}

/// Default freshness of a cached summary (300 s, as the seed).
pub const DEFAULT_SUMMARY_TTL_MS: u64 = 300_000;

/// A summary in the node's cache, with when it was stored (this node's clock).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CachedSummary {
    /// When it was stored, Unix ms.
    #[serde(rename = "t")]
    pub stored_at_ms: u64,
    /// The summary as computed from the shard.
    #[serde(rename = "s")]
    pub summary: SummaryReply,
}

/// The key-value key for a summary of `metric_type` over `period`.
pub fn summary_key(metric_type: &str, period: Period) -> String {
    format!("summary:{metric_type}:{}", period.as_str())
}

/// The key-value key for a page's entry.
pub fn cache_key(page: &str) -> String {
    format!("visits:{page}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(at: u64) -> CacheEntry {
        CacheEntry::new(
            PageCounts {
                count: 3,
                uniques_today: 2,
            },
            at,
        )
    }

    #[test]
    fn fresh_until_the_ttl_then_stale_with_its_age() {
        assert_eq!(entry(1_000).freshness(5_999, 5_000), Freshness::Fresh);
        assert_eq!(
            entry(1_000).freshness(6_000, 5_000),
            Freshness::Stale { age_ms: 5_000 }
        );
    }

    #[test]
    fn a_clock_going_backwards_counts_as_age_zero() {
        assert_eq!(entry(10_000).freshness(9_000, 5_000), Freshness::Fresh);
    }

    #[test]
    fn summaries_round_trip_under_their_own_keys() {
        let summary = crate::api::summarize(
            "cpu",
            Period::Hourly,
            crate::api::ServedVia::Redis("a".into()),
            [(1, 2.5)],
        );
        let cached = CachedSummary {
            stored_at_ms: 7,
            summary,
        };
        assert_eq!(CachedSummary::decode(&cached.encode()), Some(cached));
        assert_eq!(summary_key("cpu", Period::Daily), "summary:cpu:daily");
        assert_eq!(freshness(7, 7, 0), Freshness::Stale { age_ms: 0 });
    }

    #[test]
    fn entries_round_trip_and_garbage_is_absent() {
        let e = entry(42);
        assert_eq!(CacheEntry::decode(&e.encode()), Some(e));
        assert_eq!(CacheEntry::decode(b"not json"), None);
    }
}
