//! The Lua scripts Tally runs on its shards, each with its SHA-1 (computed at build time) so a
//! component sends `EVALSHA` and falls back to `EVAL` only when the shard answers `NOSCRIPT`.

mod digests {
    include!(concat!(env!("OUT_DIR"), "/script_digests.rs"));
}

/// A script and its digest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Script {
    /// A short name for logs.
    pub name: &'static str,
    /// The Lua source.
    pub source: &'static str,
    /// Lower-case hex SHA-1 of `source`, as `EVALSHA` expects.
    pub sha1: &'static str,
}

/// Records visits (counts, unique visitors, idempotency) on one shard; see the script.
pub const RECORD_VISITS: Script = Script {
    name: "record_visits",
    source: include_str!("../lua/record_visits.lua"),
    sha1: digests::RECORD_VISITS_SHA1,
};

/// Takes units of data off the shard they leave into an outbox, and returns the owners'
/// outboxes (step 1 of a hand-off; see `tally_core::reshard`).
pub const HANDOFF: Script = Script {
    name: "handoff",
    source: include_str!("../lua/handoff.lua"),
    sha1: digests::HANDOFF_SHA1,
};

/// Applies an outbox on its destination, once (journaled by its id); step 2 of a hand-off.
pub const ABSORB_MOVED: Script = Script {
    name: "absorb_moved",
    source: include_str!("../lua/absorb_moved.lua"),
    sha1: digests::ABSORB_MOVED_SHA1,
};

/// Deletes absorbed outboxes from the shard they left; step 3 of a hand-off.
pub const RELEASE_MOVED: Script = Script {
    name: "release_moved",
    source: include_str!("../lua/release_moved.lua"),
    sha1: digests::RELEASE_MOVED_SHA1,
};

/// Reads one page's count and today's unique visitors.
pub const READ_PAGE: Script = Script {
    name: "read_page",
    source: include_str!("../lua/read_page.lua"),
    sha1: digests::READ_PAGE_SHA1,
};

/// One page's history over a range (days: visits and uniques; hours: visits).
pub const READ_PAGE_HISTORY: Script = Script {
    name: "read_page_history",
    source: include_str!("../lua/read_page_history.lua"),
    sha1: digests::READ_PAGE_HISTORY_SHA1,
};

/// A shard's share of the site's visits over a range.
pub const READ_SITE_SERIES: Script = Script {
    name: "read_site_series",
    source: include_str!("../lua/read_site_series.lua"),
    sha1: digests::READ_SITE_SERIES_SHA1,
};

/// A shard's share of the site over a range of days: visits and one merged HyperLogLog.
pub const READ_SITE_RANGE: Script = Script {
    name: "read_site_range",
    source: include_str!("../lua/read_site_range.lua"),
    sha1: digests::READ_SITE_RANGE_SHA1,
};

/// Keeps the site's finished unique-visitor counts of days that are over.
pub const STORE_SITE_UNIQUES: Script = Script {
    name: "store_site_uniques",
    source: include_str!("../lua/store_site_uniques.lua"),
    sha1: digests::STORE_SITE_UNIQUES_SHA1,
};

/// A shard's top pages or referrers over a range of days.
pub const READ_TOP: Script = Script {
    name: "read_top",
    source: include_str!("../lua/read_top.lua"),
    sha1: digests::READ_TOP_SHA1,
};

/// One chunk of a day's pages with their visits and uniques, for an export.
pub const EXPORT_DAY: Script = Script {
    name: "export_day",
    source: include_str!("../lua/export_day.lua"),
    sha1: digests::EXPORT_DAY_SHA1,
};

/// Erases a page and its history on its shard.
pub const ERASE_PAGE: Script = Script {
    name: "erase_page",
    source: include_str!("../lua/erase_page.lua"),
    sha1: digests::ERASE_PAGE_SHA1,
};

/// Counts a bot's page view (not a visit) for today.
pub const COUNT_BOT: Script = Script {
    name: "count_bot",
    source: include_str!("../lua/count_bot.lua"),
    sha1: digests::COUNT_BOT_SHA1,
};

/// Stores metric samples with their pre-aggregated buckets (see [`crate::metric_store`]).
pub const INGEST_METRICS: Script = Script {
    name: "ingest_metrics",
    source: include_str!("../lua/ingest_metrics.lua"),
    sha1: digests::INGEST_METRICS_SHA1,
};

/// Reads a metric type's buckets and the server's clock for a summary.
pub const READ_METRIC: Script = Script {
    name: "read_metric",
    source: include_str!("../lua/read_metric.lua"),
    sha1: digests::READ_METRIC_SHA1,
};

/// The token bucket (see [`crate::token_bucket_script`]).
pub const TOKEN_BUCKET: Script = Script {
    name: "token_bucket",
    source: crate::token_bucket_script::TOKEN_BUCKET_LUA,
    sha1: digests::TOKEN_BUCKET_SHA1,
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digests_are_forty_hex_digits_and_distinct() {
        let all = [
            RECORD_VISITS,
            READ_PAGE,
            TOKEN_BUCKET,
            INGEST_METRICS,
            READ_METRIC,
            COUNT_BOT,
            READ_PAGE_HISTORY,
            READ_SITE_SERIES,
            READ_SITE_RANGE,
            STORE_SITE_UNIQUES,
            READ_TOP,
            EXPORT_DAY,
            ERASE_PAGE,
        ];
        for s in all {
            assert_eq!(s.sha1.len(), 40, "{}", s.name);
            assert!(s.sha1.bytes().all(|b| b.is_ascii_hexdigit()), "{}", s.name);
        }
        assert_ne!(RECORD_VISITS.sha1, READ_PAGE.sha1);
    }
}
