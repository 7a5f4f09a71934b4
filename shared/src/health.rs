//! What `GET /health` reports and which status it answers, decided from per-shard probes.
//!
//! Status codes are chosen for a Kubernetes readiness probe: 200 while at least one shard is
//! reachable (`ok` when all are, `degraded` when some are: pages on healthy shards are still
//! served, and pulling every pod out of service would turn a partial outage into a total one),
//! 503 when none is reachable (`down`).

use serde::{Deserialize, Serialize};

use crate::config::ShardConfig;

/// One shard's probe result.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardHealth {
    /// The shard's configured name.
    pub name: String,
    /// Its address with any password removed.
    pub address: String,
    /// Whether it answered `PING`.
    pub reachable: bool,
    /// Time to open a connection and get the answer (or the failure), in milliseconds.
    pub latency_ms: f64,
}

impl ShardHealth {
    /// The probe result for `shard`.
    pub fn new(shard: &ShardConfig, reachable: bool, latency_ms: f64) -> Self {
        Self {
            name: shard.name.clone(),
            address: shard.display_address(),
            reachable,
            latency_ms: (latency_ms * 1000.0).round() / 1000.0,
        }
    }
}

/// Overall state derived from the shards.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverallStatus {
    /// Every shard is reachable.
    Ok,
    /// Some shards are reachable.
    Degraded,
    /// No shard is reachable.
    Down,
}

/// The body of `GET /health`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct HealthReport {
    /// Overall state.
    pub status: OverallStatus,
    /// Every configured shard, in configuration order.
    pub shards: Vec<ShardHealth>,
}

impl HealthReport {
    /// The report for these probe results.
    pub fn from_shards(shards: Vec<ShardHealth>) -> Self {
        let up = shards.iter().filter(|s| s.reachable).count();
        let status = if up == shards.len() && up > 0 {
            OverallStatus::Ok
        } else if up > 0 {
            OverallStatus::Degraded
        } else {
            OverallStatus::Down
        };
        Self { status, shards }
    }

    /// 200 unless no shard is reachable (503).
    pub fn http_status(&self) -> u16 {
        match self.status {
            OverallStatus::Ok | OverallStatus::Degraded => 200,
            OverallStatus::Down => 503,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shard(name: &str, reachable: bool) -> ShardHealth {
        let config = ShardConfig {
            name: name.into(),
            url: format!("redis://:pw@{name}:6379"),
        };
        ShardHealth::new(&config, reachable, 0.25)
    }

    #[test]
    fn all_reachable_is_ok_and_200() {
        let report = HealthReport::from_shards(vec![shard("a", true), shard("b", true)]);
        assert_eq!(report.status, OverallStatus::Ok);
        assert_eq!(report.http_status(), 200);
    }

    #[test]
    fn some_reachable_is_degraded_and_200() {
        let report = HealthReport::from_shards(vec![shard("a", true), shard("b", false)]);
        assert_eq!(report.status, OverallStatus::Degraded);
        assert_eq!(report.http_status(), 200);
    }

    #[test]
    fn none_reachable_is_down_and_503() {
        let report = HealthReport::from_shards(vec![shard("a", false), shard("b", false)]);
        assert_eq!(report.status, OverallStatus::Down);
        assert_eq!(report.http_status(), 503);
    }

    #[test]
    fn addresses_carry_no_password() {
        assert_eq!(shard("a", true).address, "redis://a:6379");
    }
}
