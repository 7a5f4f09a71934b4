//! What changing the shard list moves: every key a shard holds, classified by what owns it,
//! and, for an old and a new list, which shard each owner belongs to before and after.
//!
//! Placement is rendezvous hashing over shard names (`crate::hashing`): a page lives on the
//! shard its id hashes to, a metric type on the shard its name hashes to, a rate-limit bucket
//! on the shard its key hashes to. Adding a shard moves about 1/(n+1) of each onto the new
//! shard and nothing else; removing one moves only what it held. Some keys hold several
//! owners (the shard's sorted set of pages, a day's pages or bot counts: one member or field
//! per page), so a move is per owner, not per key. The site's per-shard shares (visits per day
//! and hour, visitor HyperLogLogs, sources) belong to no page: they stay on their shard, and
//! only a shard being removed hands its shares to one that stays.
//!
//! This module is pure: the migrator (`tally-reshard`) scans the shards and asks it.

use crate::hashing::{ShardSet, ShardSetError};

/// What a key holds, and so what owns it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyKind<'k> {
    /// `tally:pages`: every page's all-time count on this shard (a member per page).
    PageCounts,
    /// `tally:pd:<day>`: the pages' visits that day (a member per page).
    PagesOfDay(i64),
    /// `tally:bots:<day>`: the pages' bot views that day (a field per page).
    BotsOfDay(i64),
    /// `tally:ph:<day>:<page>`: one page's visits per hour that day.
    PageHours {
        /// The day.
        day: i64,
        /// The page id.
        page: &'k str,
    },
    /// `tally:u:<day>:<page>`: one page's visitors that day (HyperLogLog).
    PageVisitors {
        /// The day.
        day: i64,
        /// The page id.
        page: &'k str,
    },
    /// `tally:sd:`, `tally:su:`, `tally:ref:`, `tally:suc:<day>`: this shard's share of the
    /// site's numbers for a day (no page owns them).
    SiteShare(i64),
    /// `tally:m:<type>:…`: one metric type's buckets or samples.
    Metric(&'k str),
    /// `tally:metrics:recent`: the newest samples of every type here (a member per sample,
    /// `<type>:<sequence>:<value>`).
    RecentMetrics,
    /// `tally:tb:<class>:<identity>`: a client's token bucket (owned by the key itself).
    RateBucket,
    /// `tally:idem:<key>`: an idempotent request's record, kept 24 h.
    Idempotency,
    /// A script's scratch key (never outlives the script).
    Scratch,
    /// `tally:mv:<source>:<unit>`: a unit moved here from `<source>` whose removal there is
    /// not confirmed yet (the migrator's journal; deleted once it is).
    Journal,
    /// Not a key Tally writes.
    Unknown,
}

/// What a key is.
pub fn classify(key: &str) -> KeyKind<'_> {
    let Some(rest) = key.strip_prefix("tally:") else {
        return KeyKind::Unknown;
    };
    let (prefix, rest) = rest.split_once(':').unwrap_or((rest, ""));
    match prefix {
        "pages" if rest.is_empty() && !key.ends_with(':') => KeyKind::PageCounts,
        "pd" | "bots" | "sd" | "su" | "ref" | "suc" => match day_and(rest) {
            Some((day, None)) => match prefix {
                "pd" => KeyKind::PagesOfDay(day),
                "bots" => KeyKind::BotsOfDay(day),
                _ => KeyKind::SiteShare(day),
            },
            _ => KeyKind::Unknown,
        },
        "ph" | "u" => match day_and(rest) {
            Some((day, Some(page))) if !page.is_empty() => match prefix {
                "ph" => KeyKind::PageHours { day, page },
                _ => KeyKind::PageVisitors { day, page },
            },
            _ => KeyKind::Unknown,
        },
        "m" => match rest.split_once(':') {
            Some((metric_type, _)) if !metric_type.is_empty() => KeyKind::Metric(metric_type),
            _ => KeyKind::Unknown,
        },
        "metrics" if rest == "recent" => KeyKind::RecentMetrics,
        "tb" if !rest.is_empty() => KeyKind::RateBucket,
        "idem" if !rest.is_empty() => KeyKind::Idempotency,
        "scratch" => KeyKind::Scratch,
        "mv" if !rest.is_empty() => KeyKind::Journal,
        _ => KeyKind::Unknown,
    }
}

/// The journal entry `absorb_moved.lua` writes for a unit moved from `source`: the key, and
/// for one member or field of a shared key, a NUL and the member.
pub fn journal_key(source: &str, key: &str, member: Option<&str>) -> String {
    match member {
        Some(member) => format!("tally:mv:{source}:{key}\0{member}"),
        None => format!("tally:mv:{source}:{key}"),
    }
}

/// The source, key and member of a journal entry (the inverse of [`journal_key`]; source
/// names never hold a colon).
pub fn parse_journal_key(journal: &str) -> Option<(&str, &str, Option<&str>)> {
    let rest = journal.strip_prefix("tally:mv:")?;
    let (source, unit) = rest.split_once(':')?;
    Some(match unit.split_once('\0') {
        Some((key, member)) => (source, key, Some(member)),
        None => (source, unit, None),
    })
}

/// `<day>` or `<day>:<tail>`.
fn day_and(rest: &str) -> Option<(i64, Option<&str>)> {
    match rest.split_once(':') {
        Some((day, tail)) => Some((day.parse().ok()?, Some(tail))),
        None => Some((rest.parse().ok()?, None)),
    }
}

/// The metric type a `tally:metrics:recent` member belongs to (`<type>:<sequence>:<value>`).
pub fn recent_member_type(member: &str) -> Option<&str> {
    member
        .split_once(':')
        .map(|(t, _)| t)
        .filter(|t| !t.is_empty())
}

/// A change of the shard list: where each owner lives before and after.
#[derive(Clone, Debug)]
pub struct Reshard {
    before: ShardSet,
    after: ShardSet,
}

/// Where an owner goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Move<'s> {
    /// Its shard in the old list.
    pub from: &'s str,
    /// Its shard in the new list.
    pub to: &'s str,
}

impl Reshard {
    /// From the shard names of the old list to those of the new one.
    pub fn new<S: AsRef<str>>(before: &[S], after: &[S]) -> Result<Self, ShardSetError> {
        Ok(Self {
            before: ShardSet::uniform(before)?,
            after: ShardSet::uniform(after)?,
        })
    }

    /// Where the owner hashed from `owner` (a page id, a metric type, a bucket key) goes;
    /// `None` when it stays.
    pub fn moves(&self, owner: &[u8]) -> Option<Move<'_>> {
        let from = self.before.shard_for(owner).name();
        let to = self.after.shard_for(owner).name();
        (from != to).then_some(Move { from, to })
    }

    /// The owner's shard in the new list.
    pub fn after_owner(&self, owner: &[u8]) -> &str {
        self.after.shard_for(owner).name()
    }

    /// Whether `shard` of the old list is missing from the new one.
    pub fn removes(&self, shard: &str) -> bool {
        self.before.shards().iter().any(|s| s.name() == shard)
            && !self.after.shards().iter().any(|s| s.name() == shard)
    }

    /// The shard of the new list that takes a removed shard's share of the site's numbers
    /// (the one its name hashes to, so every run picks the same).
    pub fn heir(&self, removed: &str) -> &str {
        self.after.shard_for(removed.as_bytes()).name()
    }

    /// The owner whose placement decides where `key`'s data (or, for keys holding several
    /// owners, where each member) belongs: `None` for keys that hold many owners, belong to
    /// their shard, or are Tally's no longer.
    pub fn owner_of<'k>(kind: &KeyKind<'k>, key: &'k str) -> Option<&'k [u8]> {
        match kind {
            KeyKind::PageHours { page, .. } | KeyKind::PageVisitors { page, .. } => {
                Some(page.as_bytes())
            }
            KeyKind::Metric(metric_type) => Some(metric_type.as_bytes()),
            KeyKind::RateBucket => Some(key.as_bytes()),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_key_tally_writes_is_classified() {
        let cases = [
            ("tally:pages", KeyKind::PageCounts),
            ("tally:pd:20422", KeyKind::PagesOfDay(20422)),
            ("tally:bots:20422", KeyKind::BotsOfDay(20422)),
            (
                "tally:ph:20422:blog/a",
                KeyKind::PageHours {
                    day: 20422,
                    page: "blog/a",
                },
            ),
            // A page id may hold colons.
            (
                "tally:u:20422:a:b",
                KeyKind::PageVisitors {
                    day: 20422,
                    page: "a:b",
                },
            ),
            ("tally:sd:20422", KeyKind::SiteShare(20422)),
            ("tally:su:20422", KeyKind::SiteShare(20422)),
            ("tally:ref:20422", KeyKind::SiteShare(20422)),
            ("tally:suc:20422", KeyKind::SiteShare(20422)),
            ("tally:m:cpu:minutes", KeyKind::Metric("cpu")),
            ("tally:m:mem.rss:samples", KeyKind::Metric("mem.rss")),
            ("tally:metrics:recent", KeyKind::RecentMetrics),
            ("tally:tb:writes:0123abcd", KeyKind::RateBucket),
            ("tally:idem:550e8400", KeyKind::Idempotency),
            ("tally:scratch:union", KeyKind::Scratch),
            ("tally:mv:a:tally:pages\0home", KeyKind::Journal),
        ];
        for (key, kind) in cases {
            assert_eq!(classify(key), kind, "{key}");
        }
        for key in [
            "other:key",
            "tally:pd:x",
            "tally:ph:20422",
            "tally:u:20422:",
            "tally:m:",
            "tally:pages:",
            "tally:metrics:old",
            "tally:sd:1:2",
        ] {
            assert_eq!(classify(key), KeyKind::Unknown, "{key}");
        }
    }

    #[test]
    fn journal_keys_round_trip() {
        for (key, member) in [("tally:pages", Some("a:b")), ("tally:u:1:x", None)] {
            let journal = journal_key("s0", key, member);
            assert_eq!(parse_journal_key(&journal), Some(("s0", key, member)));
            assert_eq!(classify(&journal), KeyKind::Journal);
        }
        assert_eq!(parse_journal_key("tally:pages"), None);
    }

    #[test]
    fn recent_members_name_their_type() {
        assert_eq!(recent_member_type("cpu:17:42.5"), Some("cpu"));
        assert_eq!(recent_member_type(":17:1"), None);
        assert_eq!(recent_member_type("junk"), None);
    }

    #[test]
    fn adding_a_shard_moves_only_onto_it_and_about_its_share() {
        let plan = Reshard::new(&["a", "b"], &["a", "b", "c"]).unwrap();
        let mut moved = 0;
        for i in 0..30_000 {
            let page = format!("page-{i}");
            if let Some(m) = plan.moves(page.as_bytes()) {
                assert_eq!(m.to, "c", "{page} moved from {} to {}", m.from, m.to);
                moved += 1;
            }
        }
        // A third of the pages, within a few percent.
        assert!((9_000..11_000).contains(&moved), "{moved} of 30,000 moved");
        assert!(!plan.removes("a") && !plan.removes("c"));
    }

    #[test]
    fn removing_a_shard_moves_only_what_it_held() {
        let plan = Reshard::new(&["a", "b", "c"], &["a", "b"]).unwrap();
        let before = Reshard::new(&["a", "b", "c"], &["a", "b", "c"]).unwrap();
        for i in 0..10_000 {
            let page = format!("page-{i}");
            assert_eq!(before.moves(page.as_bytes()), None);
            if let Some(m) = plan.moves(page.as_bytes()) {
                assert_eq!(m.from, "c", "{page}");
            }
        }
        assert!(plan.removes("c"));
        assert!(!plan.removes("a"));
        let heir = plan.heir("c");
        assert!(heir == "a" || heir == "b");
        assert_eq!(plan.heir("c"), heir, "the heir is the same every time");
    }

    #[test]
    fn owners_of_single_owner_keys() {
        let key = "tally:u:20422:blog/a";
        assert_eq!(
            Reshard::owner_of(&classify(key), key),
            Some("blog/a".as_bytes())
        );
        let key = "tally:m:cpu:all";
        assert_eq!(
            Reshard::owner_of(&classify(key), key),
            Some("cpu".as_bytes())
        );
        let key = "tally:tb:reads:ff";
        assert_eq!(Reshard::owner_of(&classify(key), key), Some(key.as_bytes()));
        for key in ["tally:pages", "tally:pd:1", "tally:sd:1", "tally:idem:x"] {
            assert_eq!(Reshard::owner_of(&classify(key), key), None, "{key}");
        }
    }
}
