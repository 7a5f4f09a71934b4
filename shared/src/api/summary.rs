//! Body of `GET /summary?type=&period=`, and the pure computation behind it.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::ServedVia;
use crate::validation::ValidationError;

/// The period a summary covers, as a window on the Redis server's clock that ends now.
///
/// Windows are whole buckets (see [`crate::metric_store`]): `hourly` is the current minute and
/// the 59 before it, `daily` the current hour and the 23 before it, so they reach back between
/// 59 and 60 minutes and between 23 and 24 hours. Samples stamped ahead of the clock (up to the
/// 5 minutes validation allows) are inside the window.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every sample ever ingested for the type.
    All,
    /// The last 24 hours, in hour buckets.
    Daily,
    /// The last hour, in minute buckets.
    Hourly,
}

/// One minute, in milliseconds.
pub const MINUTE_MS: i64 = 60_000;
/// One hour, in milliseconds.
pub const HOUR_MS: i64 = 3_600_000;

impl Period {
    /// The wire name: `all`, `daily` or `hourly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::All => "all",
            Period::Daily => "daily",
            Period::Hourly => "hourly",
        }
    }

    /// Reads the `period` query parameter: `all` when it is absent (the analytics seed's
    /// default, so its clients work unchanged); present, it must be a known period.
    pub fn from_query(raw: Option<&str>) -> Result<Self, ValidationError> {
        raw.map_or(Ok(Period::All), str::parse)
    }

    /// The bucket length and how many buckets, ending with the current one, the window holds;
    /// `None` for [`Period::All`].
    pub fn buckets(self) -> Option<(i64, i64)> {
        match self {
            Period::All => None,
            Period::Daily => Some((HOUR_MS, 24)),
            Period::Hourly => Some((MINUTE_MS, 60)),
        }
    }

    /// The earliest timestamp (Unix ms) inside the window when the clock reads `now_ms`, or
    /// `None` for [`Period::All`].
    pub fn window_start_ms(self, now_ms: i64) -> Option<i64> {
        let (bucket_ms, count) = self.buckets()?;
        Some((now_ms.div_euclid(bucket_ms) - (count - 1)) * bucket_ms)
    }
}

impl FromStr for Period {
    type Err = ValidationError;

    fn from_str(text: &str) -> Result<Self, ValidationError> {
        match text {
            "all" => Ok(Period::All),
            "daily" => Ok(Period::Daily),
            "hourly" => Ok(Period::Hourly),
            _ => Err(ValidationError::PeriodInvalid),
        }
    }
}

/// Reply to `GET /summary`: `{type, period, count, average_value, min_value, max_value,
/// latest_value, served_via}`; the value fields are `null` when there is no sample.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SummaryReply {
    /// The metric type summarized.
    #[serde(rename = "type")]
    pub metric_type: String,
    /// The period covered.
    pub period: Period,
    /// Number of samples.
    pub count: u64,
    /// Mean value.
    pub average_value: Option<f64>,
    /// Smallest value.
    pub min_value: Option<f64>,
    /// Largest value.
    pub max_value: Option<f64>,
    /// Value of the sample with the newest timestamp (the later one in input order on ties).
    pub latest_value: Option<f64>,
    /// Where the numbers came from: the node's cache or the type's shard.
    pub served_via: ServedVia,
}

/// Summarizes `(timestamp_ms, value)` samples already restricted to the period, in ingest
/// order. This is the definition the bucketed summaries of [`crate::metric_store`] must match.
pub fn summarize(
    metric_type: &str,
    period: Period,
    served_via: ServedVia,
    samples: impl IntoIterator<Item = (i64, f64)>,
) -> SummaryReply {
    let mut count = 0u64;
    let mut sum = 0.0;
    let mut min = f64::INFINITY;
    let mut max = f64::NEG_INFINITY;
    let mut latest: Option<(i64, f64)> = None;
    for (timestamp_ms, value) in samples {
        count += 1;
        sum += value;
        min = min.min(value);
        max = max.max(value);
        if latest.is_none_or(|(t, _)| timestamp_ms >= t) {
            latest = Some((timestamp_ms, value));
        }
    }
    let some = |v: f64| (count > 0).then_some(v);
    SummaryReply {
        metric_type: metric_type.to_owned(),
        period,
        count,
        average_value: some(sum / count.max(1) as f64),
        min_value: some(min),
        max_value: some(max),
        latest_value: latest.map(|(_, v)| v),
        served_via,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn period_parses_and_defaults_to_all() {
        assert_eq!(Period::from_query(None), Ok(Period::All));
        assert_eq!(
            Period::from_query(Some("")),
            Err(ValidationError::PeriodInvalid)
        );
        assert_eq!(Period::from_query(Some("all")), Ok(Period::All));
        assert_eq!(Period::from_query(Some("daily")), Ok(Period::Daily));
        assert_eq!(Period::from_query(Some("hourly")), Ok(Period::Hourly));
        assert_eq!(
            Period::from_query(Some("weekly")),
            Err(ValidationError::PeriodInvalid)
        );
        for p in [Period::All, Period::Daily, Period::Hourly] {
            assert_eq!(p.as_str().parse::<Period>(), Ok(p));
        }
    }

    #[test]
    fn windows_are_whole_buckets_ending_now() {
        let now = 1_714_564_800_000 + 3 * HOUR_MS + 7 * MINUTE_MS + 128; // 15:07:00.128 UTC
        assert_eq!(Period::All.window_start_ms(now), None);
        // The current hour (15:00) and the 23 before it: from 16:00 the day before.
        assert_eq!(
            Period::Daily.window_start_ms(now),
            Some(1_714_564_800_000 + 3 * HOUR_MS - 23 * HOUR_MS)
        );
        // The current minute (15:07) and the 59 before it: from 14:08.
        assert_eq!(
            Period::Hourly.window_start_ms(now),
            Some(1_714_564_800_000 + 2 * HOUR_MS + 8 * MINUTE_MS)
        );
    }

    #[test]
    fn summary_of_samples() {
        let s = summarize(
            "cpu",
            Period::Daily,
            ServedVia::Cache,
            [(3, 2.0), (9, 4.0), (5, 9.0)],
        );
        assert_eq!(s.count, 3);
        assert_eq!(s.average_value, Some(5.0));
        assert_eq!(s.min_value, Some(2.0));
        assert_eq!(s.max_value, Some(9.0));
        assert_eq!(s.latest_value, Some(4.0));
        assert_eq!(serde_json::to_value(&s).unwrap()["period"], "daily");
    }

    #[test]
    fn summary_of_nothing_has_null_values() {
        let s = summarize("cpu", Period::All, ServedVia::Redis("a".into()), []);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type":"cpu","period":"all","count":0,"average_value":null,
                   "min_value":null,"max_value":null,"latest_value":null,
                   "served_via":"redis_a"})
        );
    }
}
