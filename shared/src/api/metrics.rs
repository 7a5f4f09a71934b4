//! Bodies of the metrics endpoints: `POST /metrics` and `GET /metrics?type=&limit=`.

use serde::{Deserialize, Serialize};

use super::STATUS_SUCCESS;
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

/// Reply to `POST /metrics` (status 201).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MetricCreated {
    /// Always `"success"`.
    pub status: String,
    /// `Metric recorded for type {type}`.
    pub message: String,
}

impl MetricCreated {
    /// The reply for a stored sample of `metric_type`.
    pub fn recorded(metric_type: &str) -> Self {
        MetricCreated {
            status: STATUS_SUCCESS.to_owned(),
            message: format!("Metric recorded for type {metric_type}"),
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
        assert_eq!(
            serde_json::to_value(MetricCreated::recorded("cpu")).unwrap(),
            json!({"status":"success","message":"Metric recorded for type cpu"})
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
