//! The token bucket as a Redis Lua script, with its arguments and reply in one place.
//!
//! Token buckets are shared by every edge node, so the decision runs inside Redis: one atomic
//! round trip (EVALSHA, EVAL on NOSCRIPT), clock from the server's `TIME`. The script
//! ([`TOKEN_BUCKET_LUA`], `shared/lua/token_bucket.lua`) computes exactly what
//! [`crate::token_bucket::decide`] computes; this module builds its `ARGV` from validated
//! [`BucketParams`] and turns its flat integer reply back into a [`Decision`], so components and
//! tests never hand-parse it.

use std::fmt;

use crate::token_bucket::{BucketError, BucketParams, BucketState, Decision};

/// The Lua source of the token-bucket script (one key: the bucket).
pub const TOKEN_BUCKET_LUA: &str = include_str!("../lua/token_bucket.lua");

/// How long (ms) a bucket key outlives the moment it would be full again. A missing key means
/// a full bucket, so the grace only absorbs timer granularity; tests that pass their own "now"
/// must not let real time run ahead of it by more than this.
pub const KEY_GRACE_MS: u64 = 1_000;

/// Number of integers in the script's reply.
pub const REPLY_LEN: usize = 6;

/// The script's `ARGV`: capacity, refill tokens, refill period, cost and, for tests only, a
/// fixed "now" in milliseconds (production passes `None` so the server's clock is used).
pub fn script_args(params: &BucketParams, cost: u64, now_ms: Option<u64>) -> Vec<String> {
    let mut args = vec![
        params.capacity().to_string(),
        params.refill_tokens().to_string(),
        params.refill_period_ms().to_string(),
        cost.to_string(),
    ];
    if let Some(now) = now_ms {
        args.push(now.to_string());
    }
    args
}

/// Why a script reply could not be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScriptError {
    /// The bucket refused the request's shape (cost above capacity); nothing was written.
    Bucket(BucketError),
    /// The reply does not have the documented shape (wrong script, wrong server).
    MalformedReply,
}

impl fmt::Display for ScriptError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScriptError::Bucket(err) => err.fmt(f),
            ScriptError::MalformedReply => write!(f, "the token-bucket script replied oddly"),
        }
    }
}

impl std::error::Error for ScriptError {}

/// Turns the script's flat reply into a [`Decision`] (or the cost-above-capacity error).
pub fn parse_reply(
    reply: &[i64],
    cost: u64,
    params: &BucketParams,
) -> Result<Decision, ScriptError> {
    let [status, remaining, retry_after_ms, reset_ms, level_units, last_ms]: [i64; REPLY_LEN] =
        reply.try_into().map_err(|_| ScriptError::MalformedReply)?;
    let allowed = match status {
        1 => true,
        0 => false,
        -1 => {
            return Err(ScriptError::Bucket(BucketError::CostExceedsCapacity {
                cost,
                capacity: params.capacity(),
            }))
        }
        _ => return Err(ScriptError::MalformedReply),
    };
    let unsigned = |v: i64| u64::try_from(v).map_err(|_| ScriptError::MalformedReply);
    Ok(Decision {
        allowed,
        remaining: unsigned(remaining)?,
        retry_after_ms: unsigned(retry_after_ms)?,
        reset_ms: unsigned(reset_ms)?,
        next_state: BucketState {
            level_units: unsigned(level_units)?,
            last_ms: unsigned(last_ms)?,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_bucket::decide;

    #[test]
    fn script_grace_matches_the_constant() {
        let line = format!("local KEY_GRACE_MS = {KEY_GRACE_MS}");
        assert!(TOKEN_BUCKET_LUA.contains(&line));
    }

    #[test]
    fn script_reads_time_and_sets_expiry() {
        assert!(TOKEN_BUCKET_LUA.contains("redis.call('TIME')"));
        assert!(TOKEN_BUCKET_LUA.contains("'PX'"));
    }

    #[test]
    fn args_carry_params_cost_and_optional_now() {
        let params = BucketParams::per_second(10).unwrap();
        assert_eq!(script_args(&params, 2, None), ["10", "10", "1000", "2"]);
        assert_eq!(
            script_args(&params, 2, Some(7)),
            ["10", "10", "1000", "2", "7"]
        );
    }

    #[test]
    fn reply_round_trips_a_decision() {
        let params = BucketParams::per_second(10).unwrap();
        let d = decide(None, 1_000, 3, &params).unwrap();
        let reply = [
            1,
            d.remaining as i64,
            d.retry_after_ms as i64,
            d.reset_ms as i64,
            d.next_state.level_units as i64,
            d.next_state.last_ms as i64,
        ];
        assert_eq!(parse_reply(&reply, 3, &params), Ok(d));
        let denied = parse_reply(&[0, 0, 5, 6, 0, 1], 3, &params).unwrap();
        assert!(!denied.allowed);
    }

    #[test]
    fn minus_one_means_cost_exceeds_capacity() {
        let params = BucketParams::per_second(10).unwrap();
        let err = parse_reply(&[-1, 0, 0, 0, 0, 0], 11, &params).unwrap_err();
        assert_eq!(
            err,
            ScriptError::Bucket(BucketError::CostExceedsCapacity {
                cost: 11,
                capacity: 10
            })
        );
        assert!(err.to_string().contains("11"));
    }

    #[test]
    fn odd_replies_are_malformed() {
        let params = BucketParams::per_second(10).unwrap();
        for reply in [&[1, 2, 3][..], &[2, 0, 0, 0, 0, 0], &[1, -1, 0, 0, 0, 0]] {
            assert_eq!(
                parse_reply(reply, 1, &params),
                Err(ScriptError::MalformedReply)
            );
        }
        assert!(!ScriptError::MalformedReply.to_string().is_empty());
    }
}
