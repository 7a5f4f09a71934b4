//! The edge cache of page counts in the node's default key-value store (see
//! `tally_core::edge_cache`). Cache failures never fail a request: they only cost a trip to
//! the shard.

use spin_sdk::key_value::Store;
use tally_core::edge_cache::{cache_key, CacheEntry};
use tally_core::visit_store::PageCounts;

/// The page's cached entry, if any.
pub fn read(page: &str) -> Option<CacheEntry> {
    let store = Store::open_default().ok()?;
    let bytes = store.get(&cache_key(page)).ok()??;
    CacheEntry::decode(&bytes)
}

/// Stores fresh numbers for a page (write-through after counting, or after a read).
pub fn write(page: &str, counts: PageCounts, now_ms: u64) {
    if let Ok(store) = Store::open_default() {
        let _ = store.set(&cache_key(page), &CacheEntry::new(counts, now_ms).encode());
    }
}

/// The cache TTL from the `cache_ttl_ms` variable, or the default.
pub fn ttl_ms() -> u64 {
    spin_sdk::variables::get("cache_ttl_ms")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(tally_core::edge_cache::DEFAULT_TTL_MS)
}
