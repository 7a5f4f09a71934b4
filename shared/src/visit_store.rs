//! How visits are stored on a shard: key names, and the arguments and replies of the
//! `record_visits` and `read_page` scripts, so components only move bytes.
//!
//! A page's count is its score in the sorted set [`PAGES_KEY`] (which also yields the most
//! visited pages); today's unique visitors are a HyperLogLog per page and Redis-server day.

use crate::validation::PageId;

/// The sorted set holding every page's count on a shard.
pub const PAGES_KEY: &str = "tally:pages";

/// The hash in which `record_visits.lua` keeps an idempotent request's record for 24 h: the
/// request's fingerprint in the field [`IDEMPOTENCY_FINGERPRINT_FIELD`], its answer in `r`.
pub fn idempotency_record_key(idempotency_key: &str) -> String {
    format!("tally:idem:{idempotency_key}")
}

/// The field of an idempotency record holding the request's [`fingerprint`].
pub const IDEMPOTENCY_FINGERPRINT_FIELD: &str = "f";

/// A count that Redis answered as text (a sorted-set score such as `3` or `3.0`, a number in
/// a script's reply): `None` when it is not a number; below zero reads 0.
pub fn count_of(text: &[u8]) -> Option<u64> {
    let value = std::str::from_utf8(text).ok()?.parse::<f64>().ok()?;
    Some(value.max(0.0) as u64)
}

/// One page's numbers after recording or reading (stored in the node's cache as
/// `{"c":count,"u":uniques_today}`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PageCounts {
    /// Total visits.
    #[serde(rename = "c")]
    pub count: u64,
    /// Distinct visitors today (HyperLogLog estimate, ±0.81%).
    #[serde(rename = "u")]
    pub uniques_today: u64,
    /// Page views from bots today, not counted as visits (0 where not read).
    #[serde(rename = "b", default)]
    pub bots_today: u64,
}

/// What one shard is asked to record.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordRequest<'a> {
    /// The client's `Idempotency-Key`, if any.
    pub idempotency_key: Option<&'a str>,
    /// Identifies the request's content; the same key with another fingerprint is a conflict.
    pub fingerprint: String,
    /// The visitor as the HyperLogLogs see it ([`crate::history::visitor_element`]), for
    /// unique counting (browser writes only).
    pub visitor: Option<String>,
    /// The host the visitor came from (page views from the tracker), normalized.
    pub referrer: Option<String>,
    /// Days of history to keep (`history_days`).
    pub history_days: u32,
    /// The entries on this shard: page, visits to add, and when (Unix seconds; 0 for now, on
    /// the Redis server's clock).
    pub pages: Vec<(&'a PageId, u64, i64)>,
}

impl RecordRequest<'_> {
    /// The script's `ARGV`.
    pub fn args(&self) -> Vec<Vec<u8>> {
        let mut args = Vec::with_capacity(5 + 3 * self.pages.len());
        args.push(self.idempotency_key.unwrap_or("").as_bytes().to_vec());
        args.push(self.fingerprint.as_bytes().to_vec());
        args.push(self.visitor.as_deref().unwrap_or("").as_bytes().to_vec());
        args.push(self.referrer.as_deref().unwrap_or("").as_bytes().to_vec());
        args.push(self.history_days.to_string().into_bytes());
        for (page, visits, at_s) in &self.pages {
            args.push(page.as_str().as_bytes().to_vec());
            args.push(visits.to_string().into_bytes());
            args.push(at_s.to_string().into_bytes());
        }
        args
    }
}

/// What a shard did with a [`RecordRequest`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordOutcome {
    /// Counted now; numbers per page, in request order.
    Applied(Vec<PageCounts>),
    /// The same idempotent request was counted before; its original numbers.
    Replayed(Vec<PageCounts>),
    /// The idempotency key was used before with a different request; nothing counted.
    Conflict,
}

/// A reply that does not have the script's shape (a bug or a foreign script).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MalformedReply(pub String);

/// Interprets the `record_visits` reply for a request of `pages` pages.
pub fn parse_record_reply(reply: &[i64], pages: usize) -> Result<RecordOutcome, MalformedReply> {
    let (status, rest) = reply
        .split_first()
        .ok_or_else(|| MalformedReply("empty reply".into()))?;
    let counts = || -> Result<Vec<PageCounts>, MalformedReply> {
        if rest.len() != 2 * pages {
            return Err(MalformedReply(format!(
                "{} numbers for {pages} pages",
                rest.len()
            )));
        }
        Ok(rest
            .chunks_exact(2)
            .map(|pair| PageCounts {
                count: pair[0].max(0) as u64,
                uniques_today: pair[1].max(0) as u64,
                bots_today: 0,
            })
            .collect())
    };
    match status {
        0 => Ok(RecordOutcome::Applied(counts()?)),
        1 => Ok(RecordOutcome::Replayed(counts()?)),
        2 => Ok(RecordOutcome::Conflict),
        other => Err(MalformedReply(format!("unknown status {other}"))),
    }
}

/// The `read_page` script's `ARGV`.
pub fn read_args(page: &PageId) -> Vec<Vec<u8>> {
    vec![page.as_str().as_bytes().to_vec()]
}

/// Interprets the `read_page` reply.
pub fn parse_read_reply(reply: &[i64]) -> Result<PageCounts, MalformedReply> {
    match reply {
        [count, uniques, bots] => Ok(PageCounts {
            count: (*count).max(0) as u64,
            uniques_today: (*uniques).max(0) as u64,
            bots_today: (*bots).max(0) as u64,
        }),
        other => Err(MalformedReply(format!(
            "{} numbers, expected 3",
            other.len()
        ))),
    }
}

/// A fingerprint of a request's content for idempotency: XXH3-128 as hex.
pub fn fingerprint(content: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(content))
}

/// The visitor's fingerprint: a hash of the client address and User-Agent, so neither is kept
/// or travels in the clear; [`crate::history::visitor_element`] salts it with the day's
/// secret salt before it reaches a shard, so the shards' ids do not link across days.
pub fn visitor_fingerprint(client_ip: &str, user_agent: &str) -> String {
    let mut material = Vec::with_capacity(client_ip.len() + user_agent.len() + 1);
    material.extend_from_slice(client_ip.as_bytes());
    material.push(0);
    material.extend_from_slice(user_agent.as_bytes());
    fingerprint(&material)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validation::page_id;

    #[test]
    fn counts_read_from_redis_numbers() {
        assert_eq!(count_of(b"3"), Some(3));
        assert_eq!(count_of(b"3.0"), Some(3));
        assert_eq!(count_of(b"-1"), Some(0));
        assert_eq!(count_of(b"many"), None);
        assert_eq!(count_of(&[0xff]), None);
    }

    #[test]
    fn record_args_lay_out_pairs_after_the_header() {
        let (a, b) = (page_id("a").unwrap(), page_id("b").unwrap());
        let req = RecordRequest {
            idempotency_key: Some("k"),
            fingerprint: "f".into(),
            visitor: None,
            referrer: Some("news.example".into()),
            history_days: 400,
            pages: vec![(&a, 3, 0), (&b, 1, 1_700_000_000)],
        };
        let args: Vec<String> = req
            .args()
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "k",
                "f",
                "",
                "news.example",
                "400",
                "a",
                "3",
                "0",
                "b",
                "1",
                "1700000000"
            ]
        );
    }

    #[test]
    fn record_replies_parse_by_status() {
        assert_eq!(
            parse_record_reply(&[0, 5, 1, 7, 2], 2),
            Ok(RecordOutcome::Applied(vec![
                PageCounts {
                    count: 5,
                    uniques_today: 1,
                    bots_today: 0
                },
                PageCounts {
                    count: 7,
                    uniques_today: 2,
                    bots_today: 0
                },
            ]))
        );
        assert!(matches!(
            parse_record_reply(&[1, 5, 1], 1),
            Ok(RecordOutcome::Replayed(_))
        ));
        assert_eq!(parse_record_reply(&[2], 3), Ok(RecordOutcome::Conflict));
        assert!(parse_record_reply(&[0, 5], 1).is_err());
        assert!(parse_record_reply(&[], 1).is_err());
        assert!(parse_record_reply(&[9], 0).is_err());
    }

    #[test]
    fn read_replies_parse() {
        assert_eq!(
            parse_read_reply(&[4, 2, 7]),
            Ok(PageCounts {
                count: 4,
                uniques_today: 2,
                bots_today: 7
            })
        );
        assert!(parse_read_reply(&[4]).is_err());
    }

    #[test]
    fn fingerprints_are_stable_and_distinguish_inputs() {
        assert_eq!(fingerprint(b"x"), fingerprint(b"x"));
        assert_ne!(fingerprint(b"x"), fingerprint(b"y"));
        assert_ne!(
            visitor_fingerprint("1.2.3.4", "ua"),
            visitor_fingerprint("1.2.3.4", "ub")
        );
        assert_ne!(
            visitor_fingerprint("ab", "c"),
            visitor_fingerprint("a", "bc")
        );
    }
}
