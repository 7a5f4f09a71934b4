//! Body of `GET /summary?type=&period=`, and the pure computation behind it.

use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// The period a summary covers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Period {
    /// Every stored sample.
    #[default]
    All,
    /// The current UTC day.
    Daily,
    /// The current UTC hour.
    Hourly,
}

impl Period {
    /// The wire name: `all`, `daily` or `hourly`.
    pub fn as_str(self) -> &'static str {
        match self {
            Period::All => "all",
            Period::Daily => "daily",
            Period::Hourly => "hourly",
        }
    }

    /// Reads the optional `period` query parameter (absent means `all`).
    pub fn from_query(raw: Option<&str>) -> Result<Self, ValidationError> {
        raw.map_or(Ok(Period::All), str::parse)
    }

    /// The earliest timestamp (Unix ms) inside the period that contains `now_ms`, or `None`
    /// for [`Period::All`].
    pub fn start_ms(self, now_ms: i64) -> Option<i64> {
        let span = match self {
            Period::All => return None,
            Period::Daily => 86_400_000,
            Period::Hourly => 3_600_000,
        };
        Some(now_ms - now_ms.rem_euclid(span))
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
/// latest_value}`; the value fields are `null` when there is no sample.
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
}

/// Summarizes `(timestamp_ms, value)` samples already restricted to the period.
pub fn summarize(
    metric_type: &str,
    period: Period,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn period_parses_and_defaults_to_all() {
        assert_eq!(Period::from_query(None), Ok(Period::All));
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
    fn period_start_is_the_utc_boundary() {
        let now = 1_714_564_800_123 + 3_600_000 * 3 + 5; // 15:00:00.128 UTC
        assert_eq!(Period::All.start_ms(now), None);
        assert_eq!(Period::Daily.start_ms(now), Some(1_714_521_600_000));
        assert_eq!(Period::Hourly.start_ms(now), Some(1_714_575_600_000));
    }

    #[test]
    fn summary_of_samples() {
        let s = summarize("cpu", Period::Daily, [(3, 2.0), (9, 4.0), (5, 9.0)]);
        assert_eq!(s.count, 3);
        assert_eq!(s.average_value, Some(5.0));
        assert_eq!(s.min_value, Some(2.0));
        assert_eq!(s.max_value, Some(9.0));
        assert_eq!(s.latest_value, Some(4.0));
        assert_eq!(serde_json::to_value(&s).unwrap()["period"], "daily");
    }

    #[test]
    fn summary_of_nothing_has_null_values() {
        let s = summarize("cpu", Period::All, []);
        assert_eq!(
            serde_json::to_value(&s).unwrap(),
            json!({"type":"cpu","period":"all","count":0,"average_value":null,
                   "min_value":null,"max_value":null,"latest_value":null})
        );
    }
}
