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

use crate::api::Period;
use crate::hashing::{ShardSet, ShardSetError};
use crate::metric_store::{buckets_key, samples_key};
use crate::visit_store::PAGES_KEY;

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
    /// `tally:mv:<id>`: an outbox absorbed here (kept 7 days, so it is absorbed once).
    Journal,
    /// `tally:out:<id>`, `tally:outs:<owner>`, `tally:outseq`: data taken off this shard and
    /// not yet absorbed by its new one, and their index.
    Outbox,
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
        "out" | "outs" if !rest.is_empty() => KeyKind::Outbox,
        "outseq" => KeyKind::Outbox,
        _ => KeyKind::Unknown,
    }
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

/// How a hand-off takes a unit off the shard it leaves (`handoff.lua`'s `how`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Take {
    /// A member of a sorted set whose score adds up (a page's count, its visits that day).
    Zscore,
    /// A member of a sorted set that is the same either way (a recent metric sample).
    Zmember,
    /// A field of a hash that adds up (a page's bot views that day).
    Hfield,
    /// A whole hash whose fields add up (a page's hours, the site's day).
    Hash,
    /// A whole sorted set whose scores add up (the site's sources that day).
    Zset,
    /// A whole sorted set whose members are the same either way (a metric type's samples).
    Zunion,
    /// A HyperLogLog (visitors).
    Hll,
    /// A string written once (a finished day's unique visitors).
    Setnx,
    /// A string of packed metric buckets.
    Buckets,
}

impl Take {
    /// The name `handoff.lua` knows it by.
    pub fn name(self) -> &'static str {
        match self {
            Take::Zscore => "zscore",
            Take::Zmember => "zmember",
            Take::Hfield => "hfield",
            Take::Hash => "hash",
            Take::Zset => "zset",
            Take::Zunion => "zunion",
            Take::Hll => "hll",
            Take::Setnx => "setnx",
            Take::Buckets => "buckets",
        }
    }
}

/// One unit to hand off: a whole key, or one member or field of a key shared by owners.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unit {
    /// How it is taken.
    pub take: Take,
    /// The key.
    pub key: String,
    /// The member or field; empty for a whole key.
    pub member: String,
}

impl Unit {
    /// `take` of `key`'s `member` (empty: the whole key).
    pub fn new(take: Take, key: String, member: &str) -> Self {
        Self {
            take,
            key,
            member: member.to_string(),
        }
    }
}

/// What data belongs to, for placement and for the index of outboxes (`tally:outs:<owner>`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Owner {
    /// A page: placed by its id.
    Page(String),
    /// A metric type: placed by its name.
    MetricType(String),
    /// A removed shard's share of the site's numbers for a day: goes to its heir.
    SiteDay(i64),
    /// A key placed by its own name (a rate-limit bucket).
    Key(String),
}

impl Owner {
    /// The bytes placement hashes (`None`: the site's share, which goes to an heir).
    pub fn placed_by(&self) -> Option<&[u8]> {
        match self {
            Owner::Page(id) | Owner::MetricType(id) | Owner::Key(id) => Some(id.as_bytes()),
            Owner::SiteDay(_) => None,
        }
    }

    /// Its name in the outbox index.
    pub fn index_name(&self) -> String {
        match self {
            Owner::Page(id) => format!("p:{id}"),
            Owner::MetricType(id) => format!("t:{id}"),
            Owner::SiteDay(day) => format!("s:{day}"),
            Owner::Key(key) => format!("k:{key}"),
        }
    }
}

/// The units a page's count and today's numbers read (`read_page.lua`): its all-time count,
/// its bot views and visitors of `day`.
pub fn page_count_units(page: &str, day: i64) -> Vec<Unit> {
    vec![
        Unit::new(Take::Zscore, PAGES_KEY.into(), page),
        Unit::new(Take::Hfield, format!("tally:bots:{day}"), page),
        Unit::new(Take::Hll, format!("tally:u:{day}:{page}"), ""),
    ]
}

/// The units of a page's history on `days`: visits and visitors per day, and with `hours` its
/// visits per hour.
pub fn page_history_units(
    page: &str,
    days: std::ops::RangeInclusive<i64>,
    hours: bool,
) -> Vec<Unit> {
    let mut units = Vec::new();
    for day in days {
        units.push(Unit::new(Take::Zscore, format!("tally:pd:{day}"), page));
        units.push(Unit::new(Take::Hll, format!("tally:u:{day}:{page}"), ""));
        if hours {
            units.push(Unit::new(Take::Hash, format!("tally:ph:{day}:{page}"), ""));
        }
    }
    units
}

/// Every unit of a page kept on `days`: its count, and each day's visits, hours, visitors
/// and bot views.
pub fn page_units(page: &str, days: std::ops::RangeInclusive<i64>) -> Vec<Unit> {
    let mut units = page_rank_units(page, None);
    for day in days.clone() {
        units.push(Unit::new(Take::Hfield, format!("tally:bots:{day}"), page));
    }
    units.extend(page_history_units(page, days, true));
    units
}

/// The units of a page in a ranking of `days` (`None`: the all-time ranking).
pub fn page_rank_units(page: &str, days: Option<std::ops::RangeInclusive<i64>>) -> Vec<Unit> {
    match days {
        None => vec![Unit::new(Take::Zscore, PAGES_KEY.into(), page)],
        Some(days) => days
            .map(|day| Unit::new(Take::Zscore, format!("tally:pd:{day}"), page))
            .collect(),
    }
}

/// Every unit of a metric type but its recent samples (which are the same on any shard): its
/// bucket strings and its samples.
pub fn metric_type_units(metric_type: &str) -> Vec<Unit> {
    let mut units: Vec<Unit> = [Period::All, Period::Hourly, Period::Daily]
        .into_iter()
        .map(|period| Unit::new(Take::Buckets, buckets_key(metric_type, period), ""))
        .collect();
    units.push(Unit::new(Take::Zunion, samples_key(metric_type), ""));
    units
}

/// A shard's share of the site's numbers on `day`: visits per day and hour, visitors,
/// sources, and the day's finished unique count.
pub fn site_day_units(day: i64) -> Vec<Unit> {
    vec![
        Unit::new(Take::Hash, format!("tally:sd:{day}"), ""),
        Unit::new(Take::Hll, format!("tally:su:{day}"), ""),
        Unit::new(Take::Zset, format!("tally:ref:{day}"), ""),
        Unit::new(Take::Setnx, format!("tally:suc:{day}"), ""),
    ]
}

/// A rate-limit bucket: its state goes over whole, and is kept by the new shard unless that
/// already has one (a bucket is handed over before it is charged there, so it has not).
pub fn bucket_units(key: &str) -> Vec<Unit> {
    vec![Unit::new(Take::Setnx, key.to_string(), "")]
}

/// `handoff.lua`'s arguments: from `source` to `destination`, for `owners`, the `units`.
pub fn handoff_args(
    source: &str,
    destination: &str,
    owners: &[Owner],
    units: &[Unit],
) -> Vec<Vec<u8>> {
    let mut args = Vec::with_capacity(3 + owners.len() + 3 * units.len());
    args.push(source.as_bytes().to_vec());
    args.push(destination.as_bytes().to_vec());
    args.push(owners.len().to_string().into_bytes());
    args.extend(owners.iter().map(|o| o.index_name().into_bytes()));
    for unit in units {
        args.push(unit.take.name().as_bytes().to_vec());
        args.push(unit.key.as_bytes().to_vec());
        args.push(unit.member.as_bytes().to_vec());
    }
    args
}

/// The prefix of an outbox's key on the shard its data left: `tally:out:<id>`.
pub const OUTBOX_PREFIX: &str = "tally:out:";

/// Data taken off a shard and not yet deleted there: what `handoff.lua` returns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Outbox {
    /// Its id (`<source>:<unix ms>:<sequence>`): the destination journals it.
    pub id: String,
    /// The shard that absorbs it.
    pub destination: String,
    /// `absorb_moved.lua`'s five values per unit, flat.
    pub units: Vec<Vec<u8>>,
}

impl Outbox {
    /// Units in it.
    pub fn len(&self) -> usize {
        self.units.len() / 5
    }

    /// Whether it holds no unit.
    pub fn is_empty(&self) -> bool {
        self.units.is_empty()
    }

    /// The outbox `id` as `handoff.lua` stores it (`LRANGE` of [`OUTBOX_PREFIX`]`<id>`): its
    /// destination, how many owners, the owners, then five values per unit. `None` for a
    /// list of another shape (an empty one was released meanwhile).
    pub fn from_stored(id: String, mut items: Vec<Vec<u8>>) -> Option<Self> {
        let owners: usize = std::str::from_utf8(items.get(1)?).ok()?.parse().ok()?;
        if items.len() < 2 + owners {
            return None;
        }
        let units = items.split_off(2 + owners);
        let destination = String::from_utf8_lossy(&items[0]).into_owned();
        Some(Outbox {
            id,
            destination,
            units,
        })
    }

    /// `absorb_moved.lua`'s arguments.
    pub fn absorb_args(&self) -> Vec<Vec<u8>> {
        let mut args = Vec::with_capacity(1 + self.units.len());
        args.push(self.id.as_bytes().to_vec());
        args.extend(self.units.iter().cloned());
        args
    }
}

/// Reads `handoff.lua`'s flat reply.
pub fn parse_handoff_reply(reply: Vec<Vec<u8>>) -> Result<Vec<Outbox>, String> {
    let mut values = reply.into_iter();
    let mut outboxes = Vec::new();
    let text = |v: Vec<u8>| String::from_utf8(v).map_err(|_| "a name is not UTF-8".to_string());
    while let Some(id) = values.next() {
        let (Some(destination), Some(n)) = (values.next(), values.next()) else {
            return Err("handoff: a short outbox header".into());
        };
        let n: usize = text(n)?
            .parse()
            .map_err(|_| "handoff: a unit count that is not a number")?;
        let units: Vec<Vec<u8>> = values.by_ref().take(5 * n).collect();
        if units.len() != 5 * n {
            return Err("handoff: fewer units than announced".into());
        }
        outboxes.push(Outbox {
            id: text(id)?,
            destination: text(destination)?,
            units,
        });
    }
    Ok(outboxes)
}

/// A running migration: `shards_previous` (the list before) and `shards` (the list after).
/// One change at a time: shards are only added, or only removed, and a shard in both lists
/// keeps its address, so every moving owner goes from a shard that keeps its share of reads
/// to one that takes it over.
#[derive(Clone, Debug)]
pub struct Migration {
    plan: Reshard,
    removed: Vec<String>,
}

impl Migration {
    /// The migration from the `previous` shard list to the `current` one (name and address
    /// pairs); `Ok(None)` when they hold the same shards.
    pub fn new(
        previous: &[(String, String)],
        current: &[(String, String)],
    ) -> Result<Option<Self>, String> {
        for (name, url) in current {
            if let Some((_, old)) = previous.iter().find(|(n, _)| n == name) {
                if old != url {
                    return Err(format!(
                        "shard {name} has another address in shards_previous; a shard's name is its identity"
                    ));
                }
            }
        }
        let kept = |list: &[(String, String)], other: &[(String, String)]| {
            list.iter().all(|(n, _)| other.iter().any(|(o, _)| o == n))
        };
        let adds_only = kept(previous, current);
        let removes_only = kept(current, previous);
        if adds_only && removes_only {
            return Ok(None);
        }
        if !adds_only && !removes_only {
            return Err(
                "shards_previous and shards differ both ways: add shards, or remove them, one change at a time"
                    .into(),
            );
        }
        let names =
            |list: &[(String, String)]| list.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>();
        let plan = Reshard::new(&names(previous), &names(current)).map_err(|e| format!("{e:?}"))?;
        let removed = previous
            .iter()
            .filter(|(n, _)| !current.iter().any(|(c, _)| c == n))
            .map(|(n, _)| n.clone())
            .collect();
        Ok(Some(Self { plan, removed }))
    }

    /// Where an owner's data goes: `None` when it stays where it is.
    pub fn moves(&self, owner: &[u8]) -> Option<Move<'_>> {
        self.plan.moves(owner)
    }

    /// The shards being removed, each with the shard that takes its share of the site.
    pub fn removed(&self) -> impl Iterator<Item = (&str, &str)> {
        self.removed.iter().map(|r| (r.as_str(), self.plan.heir(r)))
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
            ("tally:mv:a:1700000000000:7", KeyKind::Journal),
            ("tally:out:a:1700000000000:7", KeyKind::Outbox),
            ("tally:outs:p:home", KeyKind::Outbox),
            ("tally:outseq", KeyKind::Outbox),
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
    #[test]
    fn a_migration_is_one_change_at_a_time() {
        let list = |names: &[&str]| {
            names
                .iter()
                .map(|n| (n.to_string(), format!("redis://{n}")))
                .collect::<Vec<_>>()
        };
        assert!(Migration::new(&list(&["a", "b"]), &list(&["b", "a"]))
            .unwrap()
            .is_none());
        let add = Migration::new(&list(&["a", "b"]), &list(&["a", "b", "c"]))
            .unwrap()
            .unwrap();
        assert_eq!(add.removed().count(), 0);
        let remove = Migration::new(&list(&["a", "b", "c"]), &list(&["a", "b"]))
            .unwrap()
            .unwrap();
        let (removed, heir) = remove.removed().next().unwrap();
        assert_eq!(removed, "c");
        assert!(heir == "a" || heir == "b");
        let err = Migration::new(&list(&["a", "b"]), &list(&["a", "c"])).unwrap_err();
        assert!(err.contains("one change at a time"), "{err}");
        let mut moved = list(&["a", "b", "c"]);
        moved[0].1 = "redis://elsewhere".into();
        let err = Migration::new(&list(&["a", "b"]), &moved).unwrap_err();
        assert!(err.contains("another address"), "{err}");
    }

    #[test]
    fn handoff_replies_are_read_whole_or_refused() {
        let unit = |v: &str| -> Vec<Vec<u8>> {
            ["zincr", "tally:pages", v, "3", ""]
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect()
        };
        let mut reply: Vec<Vec<u8>> = vec![b"a:1:1".to_vec(), b"c".to_vec(), b"2".to_vec()];
        reply.extend(unit("x"));
        reply.extend(unit("y"));
        reply.extend([b"a:1:2".to_vec(), b"c".to_vec(), b"0".to_vec()]);
        let boxes = parse_handoff_reply(reply.clone()).unwrap();
        assert_eq!(boxes.len(), 2);
        assert_eq!(boxes[0].len(), 2);
        assert_eq!(boxes[0].absorb_args()[0], b"a:1:1");
        assert_eq!(boxes[0].absorb_args().len(), 11);
        assert!(boxes[1].is_empty());
        reply.truncate(reply.len() - 4);
        assert!(parse_handoff_reply(reply).is_err());
    }

    #[test]
    fn stored_outboxes_are_read_past_their_owners_or_skipped() {
        let stored = |items: &[&str]| -> Vec<Vec<u8>> {
            items.iter().map(|s| s.as_bytes().to_vec()).collect()
        };
        let unit = ["zincr", "tally:pages", "x", "3", ""];
        let mut items = stored(&["c", "2", "p:x", "s:20000"]);
        items.extend(stored(&unit));
        let outbox = Outbox::from_stored("a:1:1".into(), items).unwrap();
        assert_eq!(outbox.destination, "c");
        assert_eq!(outbox.units, stored(&unit));
        assert_eq!(outbox.absorb_args()[0], b"a:1:1");
        // Released meanwhile (empty), or not an outbox's shape: skipped.
        assert_eq!(Outbox::from_stored("a:1:2".into(), Vec::new()), None);
        assert_eq!(
            Outbox::from_stored("a:1:3".into(), stored(&["c", "two"])),
            None
        );
        assert_eq!(
            Outbox::from_stored("a:1:4".into(), stored(&["c", "3", "p:x"])),
            None
        );
    }

    #[test]
    fn handoff_args_name_owners_then_units() {
        let owners = [Owner::Page("home".into()), Owner::SiteDay(20000)];
        let args = handoff_args("a", "c", &owners, &page_count_units("home", 20000));
        let text: Vec<String> = args
            .iter()
            .map(|a| String::from_utf8(a.clone()).unwrap())
            .collect();
        assert_eq!(&text[..5], ["a", "c", "2", "p:home", "s:20000"]);
        assert_eq!(&text[5..8], ["zscore", "tally:pages", "home"]);
        assert_eq!(text.len(), 5 + 9);
        assert_eq!(page_history_units("x", 1..=3, true).len(), 9);
        assert_eq!(page_rank_units("x", Some(1..=3)).len(), 3);
        assert_eq!(metric_type_units("cpu").len(), 4);
        // Every key a hand-off names is one the migrator classifies to the same owner.
        for unit in page_history_units("blog/a", 5..=5, true)
            .into_iter()
            .chain(page_count_units("blog/a", 5))
        {
            let kind = classify(&unit.key);
            assert!(
                Reshard::owner_of(&kind, &unit.key) == Some("blog/a".as_bytes())
                    || unit.member == "blog/a",
                "{unit:?}"
            );
        }
    }
}
