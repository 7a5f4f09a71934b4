//! The node's read cache, kept in Spin's key-value store: page counts for `GET /visits` and
//! metric summaries for `GET /summary`.
//!
//! An entry is `{value, stored_at_ms, ttl_ms}`. It is fresh while younger than its own TTL on
//! this node's clock (the cache is node-local, so the node's clock is the right one), and may
//! still be served, marked stale, when the shard it came from cannot be reached. The TTL is
//! written into the entry by the request that fills it (which has read the TTL variable
//! anyway), so a request served from the cache reads no variable at all: on Spin each variable
//! read is a call through the host's providers, a real share of a cached answer's cost. A
//! changed TTL applies to entries stored after the change.

use serde::{Deserialize, Serialize};

use crate::api::Period;

/// Default freshness of a cached count.
pub const DEFAULT_TTL_MS: u64 = 5_000;

/// Default freshness of a cached summary (300 s, as the seed).
pub const DEFAULT_SUMMARY_TTL_MS: u64 = 300_000;

/// One cached value with when it was stored and for how long it stays fresh.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry<T> {
    /// The cached value.
    #[serde(rename = "v")]
    pub value: T,
    /// When it was stored, Unix ms on this node's clock.
    #[serde(rename = "t")]
    pub stored_at_ms: u64,
    /// How long after `stored_at_ms` it is fresh.
    #[serde(rename = "l")]
    pub ttl_ms: u64,
}

impl<T> Entry<T> {
    /// An entry for `value` stored at `now_ms`, fresh for `ttl_ms`.
    pub fn new(value: T, now_ms: u64, ttl_ms: u64) -> Self {
        Self {
            value,
            stored_at_ms: now_ms,
            ttl_ms,
        }
    }

    /// Age now (0 if the clock went backwards).
    pub fn age_ms(&self, now_ms: u64) -> u64 {
        now_ms.saturating_sub(self.stored_at_ms)
    }

    /// Fresh while `age < ttl_ms` (a clock that went backwards counts as age 0; a TTL of 0 is
    /// never fresh).
    pub fn is_fresh(&self, now_ms: u64) -> bool {
        self.age_ms(now_ms) < self.ttl_ms
    }
}

impl<T: Serialize> Entry<T> {
    /// The stored form (JSON).
    pub fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
}

impl<T: serde::de::DeserializeOwned> Entry<T> {
    /// Reads a stored entry; anything unreadable (garbage, another layout) is absent.
    pub fn decode(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// Of the misses on a page this node has not cached lately, one in this many stores its entry.
pub const ADMIT_ONE_IN: u32 = 16;

/// Whether a value just read from a shard should be written to the node's cache, where every
/// write is a durable SQLite transaction on Spin (serialised with every other key-value call of
/// the node): worth it only for a page that will be read again within the TTL.
///
/// - A TTL of 0 stores nothing: nothing could ever be served from it.
/// - A page whose entry was stored less than two TTLs ago was cached and is still being read:
///   its entry is refreshed (at most one write per TTL per page).
/// - Any other miss (a page never cached, or not read for two TTLs) stores its entry one time
///   in [`ADMIT_ONE_IN`], decided by `sample` (random): a page read often is cached after a few
///   misses, one read rarely seldom costs a write.
pub fn worth_storing<T>(
    previous: Option<&Entry<T>>,
    now_ms: u64,
    ttl_ms: u64,
    sample: u32,
) -> bool {
    if ttl_ms == 0 {
        return false;
    }
    match previous {
        Some(entry) if entry.age_ms(now_ms) < ttl_ms.saturating_mul(2) => true,
        _ => sample.is_multiple_of(ADMIT_ONE_IN),
    }
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
    use crate::visit_store::PageCounts;

    fn entry(at: u64, ttl_ms: u64) -> Entry<PageCounts> {
        let counts = PageCounts {
            count: 3,
            uniques_today: 2,
            bots_today: 0,
        };
        Entry::new(counts, at, ttl_ms)
    }

    #[test]
    fn fresh_until_its_own_ttl_then_stale_with_its_age() {
        assert!(entry(1_000, 5_000).is_fresh(5_999));
        assert!(!entry(1_000, 5_000).is_fresh(6_000));
        assert_eq!(entry(1_000, 5_000).age_ms(6_000), 5_000);
        assert!(
            entry(1_000, 60_000).is_fresh(6_000),
            "the entry's TTL decides"
        );
        assert!(!entry(7, 0).is_fresh(7), "a TTL of 0 is never fresh");
    }

    #[test]
    fn a_recently_cached_page_is_refreshed_and_others_are_sampled() {
        let recent = entry(1_000, 5_000);
        assert!(
            worth_storing(Some(&recent), 6_000, 5_000, 1),
            "expired, read again"
        );
        assert!(worth_storing(Some(&recent), 10_999, 5_000, 1));
        assert!(
            !worth_storing(Some(&recent), 11_000, 5_000, 1),
            "not read for two TTLs"
        );
        assert!(worth_storing(Some(&recent), 11_000, 5_000, ADMIT_ONE_IN));
        assert!(!worth_storing::<PageCounts>(None, 0, 5_000, 1));
        assert!(worth_storing::<PageCounts>(None, 0, 5_000, 0));
        let admitted = (0..ADMIT_ONE_IN * 100)
            .filter(|&sample| worth_storing::<PageCounts>(None, 0, 5_000, sample))
            .count();
        assert_eq!(admitted, 100, "one miss in ADMIT_ONE_IN");
    }

    #[test]
    fn a_ttl_of_zero_stores_nothing() {
        for sample in 0..ADMIT_ONE_IN {
            assert!(!worth_storing(Some(&entry(1_000, 0)), 1_000, 0, sample));
            assert!(!worth_storing::<PageCounts>(None, 1_000, 0, sample));
        }
    }

    #[test]
    fn a_clock_going_backwards_counts_as_age_zero() {
        assert!(entry(10_000, 5_000).is_fresh(9_000));
        assert_eq!(entry(10_000, 5_000).age_ms(9_000), 0);
    }

    #[test]
    fn summaries_round_trip_under_their_own_keys() {
        let summary = crate::api::summarize(
            "cpu",
            Period::Hourly,
            crate::api::ServedVia::Redis("a".into()),
            [(1, 2.5)],
        );
        let cached = Entry::new(summary, 7, 300_000);
        assert_eq!(Entry::decode(&cached.encode()), Some(cached));
        assert_eq!(summary_key("cpu", Period::Daily), "summary:cpu:daily");
    }

    #[test]
    fn entries_round_trip_and_garbage_or_old_layouts_are_absent() {
        let e = entry(42, 5_000);
        assert_eq!(Entry::decode(&e.encode()), Some(e));
        assert_eq!(Entry::<PageCounts>::decode(b"not json"), None);
        // The layout before entries carried their TTL: read as absent, so refreshed.
        assert_eq!(
            Entry::<PageCounts>::decode(br#"{"c":3,"u":2,"t":42}"#),
            None
        );
    }
}
