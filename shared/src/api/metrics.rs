//! Bodies of the metrics endpoints: `POST /metrics` and `GET /metrics?type=&limit=`.

use serde::{Deserialize, Serialize};

use crate::validation::{self, ValidSample, ValidationError};

/// A metric sample as posted and as listed: `{timestamp, value, type}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricSample {
    /// RFC 3339 date-time.
    pub timestamp: String,
    /// The measured value.
    pub value: f64,
    /// The metric type, `[a-z0-9_.-]{1,64}`.
    #[serde(rename = "type")]
    pub metric_type: String,
}

impl MetricSample {
    /// Validates the sample against the clock reading `now_ms` (Unix ms).
    pub fn validate(&self, now_ms: i64) -> Result<ValidSample, ValidationError> {
        validation::metric_sample(&self.timestamp, self.value, &self.metric_type, now_ms)
    }
}

/// Whether a `POST /metrics` body is an array of samples (its first non-blank byte is `[`)
/// rather than one sample object.
pub fn is_array_body(body: &[u8]) -> bool {
    body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'[')
}

/// Reply to `POST /metrics` (status 201): the seed's
/// `{"message":"Metric received","timestamp":…,"type":…}` for one sample, or
/// `{"message":"Metrics received","count":N}` for an array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricCreated {
    /// `Metric received` or `Metrics received`.
    pub message: String,
    /// The sample's timestamp as posted (one sample only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timestamp: Option<String>,
    /// The sample's type (one sample only).
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// How many samples were stored (arrays only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<usize>,
}

impl MetricCreated {
    /// The reply for one stored sample.
    pub fn one(sample: &MetricSample) -> Self {
        MetricCreated {
            message: "Metric received".to_owned(),
            timestamp: Some(sample.timestamp.clone()),
            metric_type: Some(sample.metric_type.clone()),
            count: None,
        }
    }

    /// The reply for an array of `count` stored samples.
    pub fn many(count: usize) -> Self {
        MetricCreated {
            message: "Metrics received".to_owned(),
            timestamp: None,
            metric_type: None,
            count: Some(count),
        }
    }
}

/// Reply to `GET /metrics`: samples, newest first.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct MetricsList {
    /// The `type` filter, if one was given.
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub metric_type: Option<String>,
    /// Number of samples returned.
    pub count: usize,
    /// The samples, newest first.
    pub metrics: Vec<MetricSample>,
}

impl MetricsList {
    /// A list of `metrics` (already newest first), with its count.
    pub fn new(metric_type: Option<String>, metrics: Vec<MetricSample>) -> Self {
        MetricsList {
            metric_type,
            count: metrics.len(),
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn arrays_are_told_from_objects_by_their_first_byte() {
        assert!(is_array_body(b" \n [{}]"));
        assert!(!is_array_body(b"{\"value\":1}"));
        assert!(!is_array_body(b""));
    }

    #[test]
    fn sample_uses_type_on_the_wire() {
        let s: MetricSample = serde_json::from_str(
            r#"{"timestamp":"2024-05-01T12:00:00Z","value":2.5,"type":"cpu"}"#,
        )
        .unwrap();
        assert_eq!(s.metric_type, "cpu");
        assert_eq!(serde_json::to_value(&s).unwrap()["type"], "cpu");
        assert_eq!(
            s.validate(1_714_564_800_000).unwrap().timestamp_ms,
            1_714_564_800_000
        );
    }

    #[test]
    fn created_and_list_shapes() {
        let sample = MetricSample {
            timestamp: "2024-05-01T12:00:00+02:00".into(),
            value: 1.5,
            metric_type: "cpu".into(),
        };
        assert_eq!(
            serde_json::to_value(MetricCreated::one(&sample)).unwrap(),
            json!({"message":"Metric received","timestamp":"2024-05-01T12:00:00+02:00",
                   "type":"cpu"})
        );
        assert_eq!(
            serde_json::to_value(MetricCreated::many(3)).unwrap(),
            json!({"message":"Metrics received","count":3})
        );
        let list = MetricsList::new(None, vec![]);
        assert_eq!(
            serde_json::to_value(&list).unwrap(),
            json!({"count":0,"metrics":[]})
        );
        let typed = MetricsList::new(Some("cpu".into()), vec![]);
        assert_eq!(serde_json::to_value(&typed).unwrap()["type"], "cpu");
    }
}
