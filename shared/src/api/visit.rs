//! Bodies of the visit endpoints: `POST /visit/{page_id}`, `POST /visit` (batch) and
//! `GET /visits/{page_id}`.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::STATUS_SUCCESS;

/// Reply to `POST /visit/{page_id}`: `{"status":"success","message":"Visit recorded for page
/// {page_id}","count":N}` (the seed's shape).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitReply {
    /// Always `"success"`.
    pub status: String,
    /// `Visit recorded for page {page_id}`.
    pub message: String,
    /// The page's count after this visit.
    pub count: u64,
}

impl VisitReply {
    /// The reply for a recorded visit to `page`, whose count is now `count`.
    pub fn recorded(page: &str, count: u64) -> Self {
        VisitReply {
            status: STATUS_SUCCESS.to_owned(),
            message: format!("Visit recorded for page {page}"),
            count,
        }
    }
}

/// Body of `POST /visit`: `{"visits":[{"page":"/a","count":3}]}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchRequest {
    /// The visits to record; pages may repeat.
    pub visits: Vec<BatchVisit>,
}

/// One entry of a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchVisit {
    /// The page id, normalized like a path's (see [`crate::validation::page_id`]).
    pub page: String,
    /// How many visits; 1 when absent.
    #[serde(default = "one")]
    pub count: u64,
    /// When they happened (RFC 3339), for a server importing or catching up: the visits are
    /// recorded in that hour's and day's history. Absent: now, on the shard's clock.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

fn one() -> u64 {
    1
}

/// Body of `POST /visit`: a batch (`{"visits":[…]}`, from a server) or one page view
/// (`{"page":"/blog/a","referrer":"news.example"}`, what the tracker sends, as `text/plain` so
/// that a browser sends it without a preflight). Exactly one of `visits` and `page` is given.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct VisitBody {
    /// A batch's visits.
    pub visits: Option<Vec<BatchVisit>>,
    /// A page view's page (a path such as `location.pathname`).
    pub page: Option<String>,
    /// A page view's referrer: the host of the page the visitor came from, or empty.
    pub referrer: Option<String>,
}

/// Reply to a browser write that was not counted (`202`): `{"status":"ignored",
/// "counted":false,"reason":"crawler"}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct IgnoredReply {
    /// Always `"ignored"`.
    pub status: String,
    /// Always false.
    pub counted: bool,
    /// Why: `crawler` or `headless_browser`.
    pub reason: String,
}

impl IgnoredReply {
    /// The reply for a page view from a bot of `kind`.
    pub fn bot(kind: crate::bots::BotKind) -> Self {
        IgnoredReply {
            status: "ignored".to_owned(),
            counted: false,
            reason: kind.as_str().to_owned(),
        }
    }
}

/// Reply to a counted page view: `{"status":"success","counted":true,"page":"blog/a",
/// "count":N}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageViewReply {
    /// Always `"success"`.
    pub status: String,
    /// Always true.
    pub counted: bool,
    /// The page's id (normalized).
    pub page: String,
    /// The page's count after this view.
    pub count: u64,
}

impl PageViewReply {
    /// The reply for a counted view of `page`, whose count is now `count`.
    pub fn counted(page: &str, count: u64) -> Self {
        PageViewReply {
            status: STATUS_SUCCESS.to_owned(),
            counted: true,
            page: page.to_owned(),
            count,
        }
    }
}

/// Reply to `POST /visit`: what was recorded per page.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchReply {
    /// Always `"success"`.
    pub status: String,
    /// Per distinct page: visits added by this batch and the resulting count.
    pub recorded: Vec<RecordedPage>,
    /// Total visits added by this batch.
    pub total_added: u64,
    /// True when an `Idempotency-Key` matched an earlier batch and nothing was counted again.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub replayed: bool,
    /// Shards whose part of the batch was not recorded (then `status` is `"partial"`); retry
    /// with the same `Idempotency-Key` to record only what is missing.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub failed_shards: Vec<FailedShard>,
}

/// A shard whose part of a batch failed, with the pages it holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedShard {
    /// The shard's name.
    pub shard: String,
    /// The pages of the batch that live on it.
    pub pages: Vec<String>,
}

impl BatchReply {
    /// A successful reply listing `recorded`.
    pub fn new(recorded: Vec<RecordedPage>, replayed: bool) -> Self {
        BatchReply {
            status: STATUS_SUCCESS.to_owned(),
            total_added: recorded.iter().map(|r| r.added).sum(),
            recorded,
            replayed,
            failed_shards: Vec::new(),
        }
    }

    /// The same reply noting shards that failed (status `"partial"` when any did).
    pub fn with_failures(mut self, failed_shards: Vec<FailedShard>) -> Self {
        if !failed_shards.is_empty() {
            self.status = "partial".to_owned();
        }
        self.failed_shards = failed_shards;
        self
    }
}

/// One page's outcome in a batch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RecordedPage {
    /// The normalized page id.
    pub page: String,
    /// Visits this batch added.
    pub added: u64,
    /// The page's count afterwards.
    pub count: u64,
    /// The hour the entry was recorded in, when the batch named one (`at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub at: Option<String>,
}

/// Where a count was read from: `"cache"` or `"redis_<shard>"`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
pub enum ServedVia {
    /// The node's key-value cache.
    Cache,
    /// The named Redis shard.
    Redis(String),
    /// The node's cache, older than its TTL, because the page's shard is unreachable.
    StaleCache,
}

impl fmt::Display for ServedVia {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ServedVia::Cache => f.write_str("cache"),
            ServedVia::Redis(shard) => write!(f, "redis_{shard}"),
            ServedVia::StaleCache => f.write_str("stale_cache"),
        }
    }
}

impl From<ServedVia> for String {
    fn from(via: ServedVia) -> String {
        via.to_string()
    }
}

impl TryFrom<String> for ServedVia {
    type Error = String;

    fn try_from(text: String) -> Result<Self, String> {
        if text == "cache" {
            return Ok(ServedVia::Cache);
        }
        if text == "stale_cache" {
            return Ok(ServedVia::StaleCache);
        }
        match text.strip_prefix("redis_") {
            Some(shard) if !shard.is_empty() => Ok(ServedVia::Redis(shard.to_owned())),
            _ => Err(format!("unknown served_via {text:?}")),
        }
    }
}

/// Reply to `GET /visits/{page_id}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitsReply {
    /// The page's count.
    pub count: u64,
    /// Where the count came from.
    pub served_via: ServedVia,
    /// Distinct visitors today (server's UTC day), when tracked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uniques_today: Option<u64>,
    /// Page views from bots today (server's UTC day), which were not counted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bots_today: Option<u64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn visit_reply_keeps_the_seed_shape() {
        let reply = VisitReply::recorded("home", 42);
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"status":"success","message":"Visit recorded for page home","count":42})
        );
    }

    #[test]
    fn batch_request_parses_and_defaults_count_to_one() {
        let req: BatchRequest =
            serde_json::from_str(r#"{"visits":[{"page":"/a","count":3},{"page":"b"}]}"#).unwrap();
        assert_eq!(
            req.visits[0],
            BatchVisit {
                page: "/a".into(),
                count: 3,
                at: None
            }
        );
        assert_eq!(req.visits[1].count, 1);
    }

    #[test]
    fn batch_reply_totals_and_hides_replayed_when_false() {
        let reply = BatchReply::new(
            vec![
                RecordedPage {
                    page: "a".into(),
                    added: 3,
                    count: 10,
                    at: None,
                },
                RecordedPage {
                    page: "b".into(),
                    added: 1,
                    count: 1,
                    at: None,
                },
            ],
            false,
        );
        let value = serde_json::to_value(&reply).unwrap();
        assert_eq!(value["total_added"], 4);
        assert!(value.get("replayed").is_none());
        let replay = BatchReply::new(vec![], true);
        assert_eq!(serde_json::to_value(&replay).unwrap()["replayed"], true);
    }

    #[test]
    fn served_via_is_a_plain_string() {
        let reply = VisitsReply {
            count: 5,
            served_via: ServedVia::Redis("a".into()),
            uniques_today: Some(2),
            bots_today: Some(1),
        };
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"count":5,"served_via":"redis_a","uniques_today":2,"bots_today":1})
        );
        let cached: VisitsReply =
            serde_json::from_str(r#"{"count":1,"served_via":"cache"}"#).unwrap();
        assert_eq!(cached.served_via, ServedVia::Cache);
        assert_eq!(cached.uniques_today, None);
        assert!(serde_json::from_str::<VisitsReply>(r#"{"count":1,"served_via":"disk"}"#).is_err());
        assert!(
            serde_json::from_str::<VisitsReply>(r#"{"count":1,"served_via":"redis_"}"#).is_err()
        );
    }
}
