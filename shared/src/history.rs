//! Visits over time: what each shard keeps per day and hour, the ranges a reader may ask for,
//! and how the shards' answers are put together.
//!
//! # What a shard keeps (written by `record_visits.lua`, in the visit's own round trip)
//!
//! | key | type | content | kept |
//! |---|---|---|---|
//! | `tally:pd:<day>` | sorted set | page → visits that day | `history_days` |
//! | `tally:ph:<day>:<page>` | hash | hour of day → the page's visits | 3 days |
//! | `tally:u:<day>:<page>` | HyperLogLog | the page's visitors that day | `history_days` |
//! | `tally:sd:<day>` | hash | `v` → the site's visits that day on this shard, `0`…`23` → per hour | `history_days` |
//! | `tally:su:<day>` | HyperLogLog | the site's visitors that day on this shard | `history_days` |
//! | `tally:ref:<day>` | sorted set | referrer host → page views that day, at most 200 kept | `history_days` |
//!
//! `<day>` is the UTC day number (Unix seconds / 86400) on the Redis server's clock, or on the
//! `at` a server-side batch names. Every key expires at a fixed time after its day, so a shard
//! holds at most `history_days` days of anything.
//!
//! # Reading across shards
//!
//! A page lives on one shard: its history is that shard's. The site's numbers are each shard's
//! share: visits add up, top pages merge (pages are disjoint across shards), referrer counts add
//! up per host, and unique visitors are the union of the shards' HyperLogLogs, merged here
//! ([`crate::hll`]) because no shard holds the others'. A visitor is the same element on every
//! shard (the component hashes it with the day's cluster-wide salt), so the union never counts
//! one twice.

use sha2::{Digest, Sha256};

use crate::rfc3339::{format_unix_ms, parse_unix_ms};
use crate::validation::ValidationError;

/// Days of history kept when `history_days` is not set.
pub const DEFAULT_HISTORY_DAYS: u32 = 400;
/// Most days `history_days` may keep (10 years).
pub const MAX_HISTORY_DAYS: u32 = 3_650;
/// Hours of hourly history that can be read (the keys live 3 days, covering the last 48 hours
/// whatever the time of day).
pub const HOURS_KEPT: i64 = 48;
/// Days a range of daily history spans when `from` is not given.
pub const DEFAULT_DAYS: i64 = 30;
/// Hours a range of hourly history spans when `from` is not given.
pub const DEFAULT_HOURS: i64 = 24;
/// Referrer hosts kept per day and shard (trimmed to the top half when it grows past this).
pub const REFERRERS_KEPT: usize = 200;

const DAY_S: i64 = 86_400;
const HOUR_S: i64 = 3_600;

/// A series' step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Interval {
    /// UTC days.
    Day,
    /// Hours.
    Hour,
}

impl Interval {
    /// `day` or `hour` (default `day`).
    pub fn parse(raw: Option<&str>) -> Result<Self, ValidationError> {
        match raw.map(str::trim) {
            None | Some("") | Some("day") => Ok(Interval::Day),
            Some("hour") => Ok(Interval::Hour),
            Some(_) => Err(ValidationError::RangeInvalid),
        }
    }

    fn seconds(self) -> i64 {
        match self {
            Interval::Day => DAY_S,
            Interval::Hour => HOUR_S,
        }
    }
}

/// A range of days or hours, both ends included, as day or hour numbers since the epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Range {
    /// Days or hours.
    pub interval: Interval,
    /// The first day or hour.
    pub first: i64,
    /// The last day or hour.
    pub last: i64,
}

impl Range {
    /// The range a reader asked for: `from` and `to` as dates (`2026-11-01`) or RFC 3339
    /// times, `to` defaulting to now and `from` to 30 days (or 24 hours) before it; at most
    /// `history_days` days or 48 hours, `from` not after `to`, nothing in the future.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        interval: Interval,
        now_ms: i64,
        history_days: u32,
    ) -> Result<Self, ValidationError> {
        let step = interval.seconds();
        let now = now_ms.div_euclid(1_000).div_euclid(step);
        let point =
            |raw: &str| -> Result<i64, ValidationError> { Ok(instant_s(raw)?.div_euclid(step)) };
        let last = match to.map(str::trim).filter(|t| !t.is_empty()) {
            Some(raw) => point(raw)?,
            None => now,
        };
        let default_span = match interval {
            Interval::Day => DEFAULT_DAYS,
            Interval::Hour => DEFAULT_HOURS,
        };
        let first = match from.map(str::trim).filter(|f| !f.is_empty()) {
            Some(raw) => point(raw)?,
            None => last - default_span + 1,
        };
        let max_span = match interval {
            Interval::Day => i64::from(history_days),
            Interval::Hour => HOURS_KEPT,
        };
        if first > last || last > now || last - first + 1 > max_span {
            return Err(ValidationError::RangeInvalid);
        }
        Ok(Range {
            interval,
            first,
            last,
        })
    }

    /// Days (or hours) in the range.
    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    /// Whether the range is empty (never, for a parsed range).
    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }

    /// The days (or hours) in order.
    pub fn steps(&self) -> impl Iterator<Item = i64> {
        self.first..=self.last
    }

    /// The days the range touches (for hours: the days of its first and last hour, and any
    /// between).
    pub fn days(&self) -> std::ops::RangeInclusive<i64> {
        match self.interval {
            Interval::Day => self.first..=self.last,
            Interval::Hour => {
                (self.first * HOUR_S).div_euclid(DAY_S)..=(self.last * HOUR_S).div_euclid(DAY_S)
            }
        }
    }

    /// The label of step `n`: `2026-11-29` for a day, `2026-11-29T13:00:00Z` for an hour.
    pub fn label(&self, n: i64) -> String {
        let text = format_unix_ms(n * self.interval.seconds() * 1_000);
        match self.interval {
            Interval::Day => text[..10].to_owned(),
            Interval::Hour => format!("{}:00:00Z", &text[..13]),
        }
    }
}

/// Unix seconds of a date (`YYYY-MM-DD`, midnight UTC) or an RFC 3339 time.
fn instant_s(raw: &str) -> Result<i64, ValidationError> {
    let text = if raw.len() == 10 {
        format!("{raw}T00:00:00Z")
    } else {
        raw.to_owned()
    };
    parse_unix_ms(&text)
        .map(|ms| ms.div_euclid(1_000))
        .map_err(|_| ValidationError::RangeInvalid)
}

/// `history_days`, checked: 1 to 3650 (default 400).
pub fn history_days(raw: Option<&str>) -> Result<u32, String> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(DEFAULT_HISTORY_DAYS),
        Some(raw) => raw
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_HISTORY_DAYS).contains(d))
            .ok_or_else(|| format!("history_days: {raw:?} is not a number of days from 1 to 3650")),
    }
}

/// The day number of Unix milliseconds.
pub fn day_of(unix_ms: i64) -> i64 {
    unix_ms.div_euclid(1_000).div_euclid(DAY_S)
}

/// A visitor as the shards' HyperLogLogs see it: SHA-256 of the deployment's secret salt, the
/// day and the visitor's fingerprint (address and User-Agent, already hashed), 16 bytes in hex.
/// The same visitor is the same element on every shard that day (so site-wide uniques merge
/// without counting anyone twice), a different one the next day, and neither the address nor
/// the fingerprint can be read back from it.
pub fn visitor_element(secret: &[u8], day: i64, fingerprint: &str) -> String {
    let mut hash = Sha256::new();
    hash.update((secret.len() as u64).to_le_bytes());
    hash.update(secret);
    hash.update(day.to_le_bytes());
    hash.update(fingerprint.as_bytes());
    hex::encode(&hash.finalize()[..16])
}

/// A referrer host as kept: lower-case, without a trailing dot or a leading `www.`.
pub fn normalize_referrer(host: &str) -> String {
    let host = host.trim().trim_end_matches('.').to_ascii_lowercase();
    match host.strip_prefix("www.") {
        Some(rest) if !rest.is_empty() => rest.to_owned(),
        _ => host,
    }
}

/// One step of a series.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Point {
    /// The day (`2026-11-29`) or hour (`2026-11-29T13:00:00Z`).
    pub t: String,
    /// Visits in that step.
    pub visits: u64,
    /// Distinct visitors that day (`null` for hours: uniques are kept per day).
    pub uniques: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV_29_NOON_MS: i64 = 1_795_953_600_000; // 2026-11-29T12:00:00Z

    #[test]
    fn default_ranges_end_now() {
        let days = Range::parse(None, None, Interval::Day, NOV_29_NOON_MS, 400).unwrap();
        assert_eq!(days.len(), 30);
        assert_eq!(days.label(days.last), "2026-11-29");
        assert_eq!(days.label(days.first), "2026-10-31");
        let hours = Range::parse(None, None, Interval::Hour, NOV_29_NOON_MS, 400).unwrap();
        assert_eq!(hours.len(), 24);
        assert_eq!(hours.label(hours.last), "2026-11-29T12:00:00Z");
        assert_eq!(
            hours.days(),
            day_of(NOV_29_NOON_MS) - 1..=day_of(NOV_29_NOON_MS)
        );
    }

    #[test]
    fn dates_and_times_both_name_a_range() {
        let r = Range::parse(
            Some("2026-11-01"),
            Some("2026-11-29T23:59:59Z"),
            Interval::Day,
            NOV_29_NOON_MS,
            400,
        )
        .unwrap();
        assert_eq!((r.label(r.first).as_str(), r.len()), ("2026-11-01", 29));
    }

    #[test]
    fn ranges_too_long_backwards_in_the_future_or_malformed_are_refused() {
        let now = NOV_29_NOON_MS;
        for (from, to, interval) in [
            (Some("2025-01-01"), None, Interval::Day),
            (Some("2026-11-10"), Some("2026-11-01"), Interval::Day),
            (None, Some("2026-12-01"), Interval::Day),
            (Some("yesterday"), None, Interval::Day),
            (Some("2026-11-26T00:00:00Z"), None, Interval::Hour),
        ] {
            assert_eq!(
                Range::parse(from, to, interval, now, 400),
                Err(ValidationError::RangeInvalid),
                "{from:?} {to:?}"
            );
        }
        assert!(Range::parse(Some("2026-11-01"), None, Interval::Day, now, 10).is_err());
        assert_eq!(
            Interval::parse(Some("week")),
            Err(ValidationError::RangeInvalid)
        );
        assert_eq!(Interval::parse(None), Ok(Interval::Day));
    }

    #[test]
    fn history_days_are_checked() {
        assert_eq!(history_days(None), Ok(400));
        assert_eq!(history_days(Some("30")), Ok(30));
        for bad in ["0", "3651", "x", "-1"] {
            assert!(history_days(Some(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_visitor_is_one_element_a_day_and_another_the_next() {
        let a = visitor_element(b"secret", 20_000, "fp");
        assert_eq!(a.len(), 32);
        assert_eq!(a, visitor_element(b"secret", 20_000, "fp"));
        assert_ne!(a, visitor_element(b"secret", 20_001, "fp"));
        assert_ne!(a, visitor_element(b"other", 20_000, "fp"));
        assert_ne!(a, visitor_element(b"secret", 20_000, "fp2"));
    }

    #[test]
    fn referrers_are_normalized_hosts() {
        assert_eq!(
            normalize_referrer("WWW.News.Example.org."),
            "news.example.org"
        );
        assert_eq!(normalize_referrer("www"), "www");
        assert_eq!(normalize_referrer("www."), "www");
    }
}
