//! Rate-limit policies as configured: which route class a request is in, how its bucket is
//! shaped, where the bucket lives, and what to do when the limiter itself is unavailable.
//!
//! A policy is written `<tokens>/<period>` with an optional `burst <capacity>`: `100/60s`
//! allows 100 requests a minute with bursts of 100; `10/1s burst 50` refills 10 a second and
//! holds up to 50. Periods take `ms`, `s`, `m` or `h`. `off` disables the class's limit.

use crate::token_bucket::BucketParams;

/// Routes are limited per class, each with its own bucket per client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RouteClass {
    /// `POST /visit…`, `POST /metrics`.
    Writes,
    /// The GETs.
    Reads,
    /// Badges (`GET /visits/{page}/badge.svg`) that must ask the shard: one bucket per page,
    /// not per reader, because image proxies (GitHub's camo) fetch every README's badges from a
    /// handful of addresses.
    Badges,
}

impl RouteClass {
    /// The class's name in variables, keys, headers and logs.
    pub fn name(self) -> &'static str {
        match self {
            RouteClass::Writes => "writes",
            RouteClass::Reads => "reads",
            RouteClass::Badges => "badges",
        }
    }

    /// The variable holding the class's policy (`rate_limit_writes`, `rate_limit_reads`).
    pub fn policy_variable(self) -> &'static str {
        match self {
            RouteClass::Writes => "rate_limit_writes",
            RouteClass::Reads => "rate_limit_reads",
            RouteClass::Badges => "rate_limit_badges",
        }
    }
}

/// Why a policy string was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyError(pub String);

/// Parses a policy; `Ok(None)` for `off`.
pub fn parse_policy(raw: &str) -> Result<Option<BucketParams>, PolicyError> {
    let raw = raw.trim();
    if raw.eq_ignore_ascii_case("off") {
        return Ok(None);
    }
    let bad = || {
        PolicyError(format!(
            "{raw:?} is not <tokens>/<period>[ burst <n>] or off"
        ))
    };
    let mut words = raw.split_whitespace();
    let rate = words.next().ok_or_else(bad)?;
    let burst = match (words.next(), words.next(), words.next()) {
        (None, None, None) => None,
        (Some("burst"), Some(n), None) => Some(n.parse::<u64>().map_err(|_| bad())?),
        _ => return Err(bad()),
    };
    let (tokens, period) = rate.split_once('/').ok_or_else(bad)?;
    let tokens: u64 = tokens.parse().map_err(|_| bad())?;
    let period_ms = parse_period_ms(period).ok_or_else(bad)?;
    let params =
        BucketParams::per_period(tokens, period_ms).map_err(|e| PolicyError(e.to_string()))?;
    match burst {
        Some(capacity) => params
            .with_capacity(capacity)
            .map(Some)
            .map_err(|e| PolicyError(e.to_string())),
        None => Ok(Some(params)),
    }
}

fn parse_period_ms(text: &str) -> Option<u64> {
    let split = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: u64 = if number.is_empty() {
        1
    } else {
        number.parse().ok()?
    };
    let unit_ms = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return None,
    };
    number.checked_mul(unit_ms).filter(|ms| *ms > 0)
}

/// What to do when the limiter's shard cannot be asked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailMode {
    /// Let the request through (availability first; the default).
    Open,
    /// Refuse it with 503 (protection first).
    Closed,
}

impl FailMode {
    /// `open` or `closed` (anything else is `open`, the documented default).
    pub fn parse(raw: &str) -> Self {
        if raw.trim().eq_ignore_ascii_case("closed") {
            FailMode::Closed
        } else {
            FailMode::Open
        }
    }

    /// `fail-open` or `fail-closed`, for headers and logs.
    pub fn label(self) -> &'static str {
        match self {
            FailMode::Open => "fail-open",
            FailMode::Closed => "fail-closed",
        }
    }
}

/// The Redis key of a client's bucket for a class (`identity` is already hashed): a string
/// `"<level> <last>"` (`token_bucket.lua`). Buckets were hashes under `tally:rl:` before; the
/// new prefix keeps a rolling upgrade from reading an old hash as a string.
pub fn bucket_key(class: RouteClass, identity: &str) -> String {
    format!("tally:tb:{}:{identity}", class.name())
}

/// The node's key-value key remembering that a client is blocked, until when.
pub fn block_key(class: RouteClass, identity: &str) -> String {
    format!("rl-block:{}:{identity}", class.name())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_class_reads_its_own_policy_variable() {
        for class in [RouteClass::Writes, RouteClass::Reads, RouteClass::Badges] {
            assert_eq!(
                class.policy_variable(),
                format!("rate_limit_{}", class.name())
            );
        }
    }

    #[test]
    fn policies_parse_rates_periods_and_bursts() {
        let p = parse_policy("100/60s").unwrap().unwrap();
        assert_eq!(p.capacity(), 100);
        let p = parse_policy("10/1s burst 50").unwrap().unwrap();
        assert_eq!(p.capacity(), 50);
        assert!(parse_policy("5/m").unwrap().is_some());
        assert!(parse_policy("5/250ms").unwrap().is_some());
        assert_eq!(parse_policy(" OFF ").unwrap(), None);
    }

    #[test]
    fn malformed_policies_are_refused() {
        for raw in [
            "",
            "100",
            "100/",
            "x/1s",
            "100/1d",
            "100/0s",
            "1/1s burst",
            "1/1s burst x",
            "0/1s",
        ] {
            assert!(parse_policy(raw).is_err(), "{raw:?}");
        }
    }

    #[test]
    fn fail_mode_defaults_to_open() {
        assert_eq!(FailMode::parse("closed"), FailMode::Closed);
        assert_eq!(FailMode::parse("open"), FailMode::Open);
        assert_eq!(FailMode::parse("whatever"), FailMode::Open);
    }
}
