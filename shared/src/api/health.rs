//! Body of `GET /health`: per-shard reachability, latency and breaker phase, with a status
//! code a Kubernetes probe can act on.

use serde::{Deserialize, Serialize};

use crate::breaker::Phase;

/// Overall health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum HealthStatus {
    /// Every shard answered.
    Ok,
    /// Some shards answered: keys on the others fail, the rest works.
    Degraded,
    /// No shard answered.
    Down,
}

/// One shard's health as seen from this node.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHealth {
    /// The shard's configured name.
    pub name: String,
    /// Its address with any password removed (`ShardConfig::display_address`).
    pub address: String,
    /// Whether it answered `PING`.
    pub reachable: bool,
    /// Round-trip time of the `PING`, when it answered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency_ms: Option<f64>,
    /// This node's breaker phase for the shard (`closed`, `open` or `half_open`), once the
    /// component guards shards with breakers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breaker: Option<String>,
}

impl ShardHealth {
    /// A shard's health entry: reachable when it has a latency (kept to the microsecond).
    pub fn new(name: &str, address: &str, latency_ms: Option<f64>) -> Self {
        ShardHealth {
            name: name.to_owned(),
            address: address.to_owned(),
            reachable: latency_ms.is_some(),
            latency_ms: latency_ms.map(|ms| (ms * 1000.0).round() / 1000.0),
            breaker: None,
        }
    }

    /// The same entry with this node's breaker phase for the shard.
    pub fn with_breaker(mut self, phase: Phase) -> Self {
        self.breaker = Some(phase.as_str().to_owned());
        self
    }
}

/// Reply to `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthReply {
    /// Overall status.
    pub status: HealthStatus,
    /// Per shard, in name order.
    pub shards: Vec<ShardHealth>,
}

impl HealthReply {
    /// The reply for these shards; the overall status follows from their reachability.
    pub fn from_shards(shards: Vec<ShardHealth>) -> Self {
        let reachable = shards.iter().filter(|s| s.reachable).count();
        let status = if reachable == shards.len() {
            HealthStatus::Ok
        } else if reachable > 0 {
            HealthStatus::Degraded
        } else {
            HealthStatus::Down
        };
        HealthReply { status, shards }
    }

    /// 200 while at least one shard answers (the node can still serve), else 503.
    pub fn http_status(&self) -> u16 {
        match self.status {
            HealthStatus::Ok | HealthStatus::Degraded => 200,
            HealthStatus::Down => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn all_reachable_is_ok_200() {
        let reply = HealthReply::from_shards(vec![
            ShardHealth::new("a", "redis://h:1", Some(0.4)).with_breaker(Phase::Closed)
        ]);
        assert_eq!(reply.status, HealthStatus::Ok);
        assert_eq!(reply.http_status(), 200);
        assert_eq!(
            serde_json::to_value(&reply).unwrap(),
            json!({"status": "ok", "shards": [
                {"name": "a", "address": "redis://h:1", "reachable": true, "latency_ms": 0.4, "breaker": "closed"}
            ]})
        );
    }

    #[test]
    fn some_unreachable_is_degraded_200() {
        let reply = HealthReply::from_shards(vec![
            ShardHealth::new("a", "redis://h:1", Some(1.0)),
            ShardHealth::new("b", "redis://h:2", None),
        ]);
        assert_eq!(reply.status, HealthStatus::Degraded);
        assert_eq!(reply.http_status(), 200);
    }

    #[test]
    fn none_reachable_is_down_503() {
        let reply = HealthReply::from_shards(vec![ShardHealth::new("a", "redis://h:1", None)]);
        assert_eq!(reply.status, HealthStatus::Down);
        assert_eq!(reply.http_status(), 503);
        assert_eq!(serde_json::to_value(&reply).unwrap()["status"], "down");
    }
}
