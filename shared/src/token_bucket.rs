//! Whether a client may proceed: a token bucket as a pure function of (state, now, cost).
//!
//! The decision is made in Redis by [`crate::token_bucket_script`], which must compute exactly
//! what [`decide`] computes; this module is the specification, the Lua script its twin, and a
//! differential test on a real redis-server holds them together.
//!
//! # Representation: exact in integers and in doubles
//!
//! Redis Lua numbers are IEEE doubles, so the state is designed to need only operations that
//! are exact on integers below 2^53:
//!
//! * A refill rate is a rational, `refill_tokens` every `refill_period_ms`. Tokens are counted
//!   in *scaled units*: one token = `refill_period_ms` units. The bucket then gains exactly
//!   `refill_tokens` units per millisecond, with no division and no fractional remainder, so
//!   fractional rates (0.5 token/s = 1 token per 2,000 ms) are exact.
//! * Capacity in units (`capacity * refill_period_ms`) and `refill_tokens` are limited to
//!   [`MAX_SCALED_UNITS`] (2^52), so every stored and intermediate value is an exact integer
//!   in both languages.
//! * The only product that can exceed that bound, `elapsed_ms * refill_tokens` after a huge idle
//!   gap, is only *compared* against the missing units; doubles round monotonically, so the
//!   comparison gives the same answer as exact integers (Rust uses saturating arithmetic).
//! * Divisions (whole tokens remaining, milliseconds until refill) are integer floor/ceiling
//!   divisions; the script corrects its double quotient by one step to make them exact.
//!
//! # The decision, step by step (the script follows the same order)
//!
//! 1. No stored state means a full bucket last seen now. A stored level above capacity (after a
//!    capacity decrease) is clamped to capacity.
//! 2. `elapsed = now - last` if the clock moved forward, else 0: a clock going backwards adds
//!    nothing. Either way the state is rebased to `last = now`. (Keeping the later `last`
//!    instead would freeze refill until the clock caught up again, locking a client out for as
//!    long as the clock jumped back; rebasing at worst re-credits the jumped-back span, which
//!    the capacity bounds.)
//! 3. If `elapsed * refill_tokens >= capacity_units - level`, the bucket is full; otherwise the
//!    level grows by `elapsed * refill_tokens`.
//! 4. If the level covers `cost` tokens, they are taken and the request is allowed; otherwise
//!    nothing is taken and `retry_after_ms = ceil(missing units / refill_tokens)`.
//! 5. `remaining = floor(level / refill_period_ms)`, `reset_ms = ceil((capacity_units - level)
//!    / refill_tokens)` (time until full again).
//!
//! A cost above capacity can never be satisfied: it is refused with
//! [`BucketError::CostExceedsCapacity`] before any state is touched, so such a client is not
//! locked out by a drained bucket.

use std::fmt;

/// Largest bucket capacity in scaled units (`capacity * refill_period_ms`): 2^52, so every
/// value the script handles is an exact integer in a double.
pub const MAX_SCALED_UNITS: u64 = 1 << 52;

/// Validated token-bucket parameters: capacity and a rational refill rate.
///
/// Built once from configuration; the decision never re-checks them.
///
/// ```
/// use tally_core::token_bucket::BucketParams;
/// let api = BucketParams::per_second(10).unwrap().with_capacity(100).unwrap();
/// assert_eq!(api.capacity(), 100);
/// let slow = BucketParams::per_period(1, 2_000).unwrap(); // 0.5 token per second
/// assert_eq!(slow.capacity(), 1);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BucketParams {
    capacity: u64,
    refill_tokens: u64,
    refill_period_ms: u64,
}

/// Why parameters or a request were refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BucketError {
    /// Capacity is 0.
    ZeroCapacity,
    /// The refill amount or period is 0.
    ZeroRefill,
    /// `capacity * refill_period_ms` or `refill_tokens` exceeds [`MAX_SCALED_UNITS`].
    TooLarge,
    /// The request costs more tokens than the bucket can ever hold; no state was changed.
    CostExceedsCapacity {
        /// Tokens asked for.
        cost: u64,
        /// The bucket's capacity.
        capacity: u64,
    },
}

impl fmt::Display for BucketError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BucketError::ZeroCapacity => write!(f, "bucket capacity must be at least 1 token"),
            BucketError::ZeroRefill => write!(f, "refill amount and period must be at least 1"),
            BucketError::TooLarge => write!(
                f,
                "capacity times refill period, or the refill amount, exceeds {MAX_SCALED_UNITS}"
            ),
            BucketError::CostExceedsCapacity { cost, capacity } => write!(
                f,
                "a request costing {cost} tokens can never fit a bucket of {capacity} tokens"
            ),
        }
    }
}

impl std::error::Error for BucketError {}

impl BucketParams {
    /// `refill_tokens` tokens every `refill_period_ms`, holding at most `capacity` tokens.
    pub fn new(
        capacity: u64,
        refill_tokens: u64,
        refill_period_ms: u64,
    ) -> Result<Self, BucketError> {
        if capacity == 0 {
            return Err(BucketError::ZeroCapacity);
        }
        if refill_tokens == 0 || refill_period_ms == 0 {
            return Err(BucketError::ZeroRefill);
        }
        match capacity.checked_mul(refill_period_ms) {
            Some(units) if units <= MAX_SCALED_UNITS && refill_tokens <= MAX_SCALED_UNITS => {}
            _ => return Err(BucketError::TooLarge),
        }
        Ok(BucketParams {
            capacity,
            refill_tokens,
            refill_period_ms,
        })
    }

    /// `tokens` per second, with a burst capacity of the same size.
    pub fn per_second(tokens: u64) -> Result<Self, BucketError> {
        Self::new(tokens, tokens, 1_000)
    }

    /// `tokens` per minute, with a burst capacity of the same size.
    pub fn per_minute(tokens: u64) -> Result<Self, BucketError> {
        Self::new(tokens, tokens, 60_000)
    }

    /// `tokens` every `period_ms`, with a burst capacity of the same size.
    pub fn per_period(tokens: u64, period_ms: u64) -> Result<Self, BucketError> {
        Self::new(tokens, tokens, period_ms)
    }

    /// The same refill rate with another burst capacity.
    pub fn with_capacity(self, capacity: u64) -> Result<Self, BucketError> {
        Self::new(capacity, self.refill_tokens, self.refill_period_ms)
    }

    /// Most tokens the bucket holds.
    pub fn capacity(&self) -> u64 {
        self.capacity
    }

    /// Tokens added every [`BucketParams::refill_period_ms`].
    pub fn refill_tokens(&self) -> u64 {
        self.refill_tokens
    }

    /// The refill period in milliseconds.
    pub fn refill_period_ms(&self) -> u64 {
        self.refill_period_ms
    }

    /// Capacity in scaled units (`capacity * refill_period_ms`).
    pub fn capacity_units(&self) -> u64 {
        self.capacity * self.refill_period_ms
    }
}

/// What is stored per bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct BucketState {
    /// Tokens held, in scaled units (one token = `refill_period_ms` units).
    pub level_units: u64,
    /// The clock reading (ms) of the last decision, up to which refill has been credited.
    pub last_ms: u64,
}

/// The outcome of one request against a bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Whether the request may proceed (its cost was taken).
    pub allowed: bool,
    /// Whole tokens left after this decision.
    pub remaining: u64,
    /// 0 when allowed; otherwise milliseconds until the same request would be allowed.
    pub retry_after_ms: u64,
    /// Milliseconds until the bucket is full again.
    pub reset_ms: u64,
    /// The state to store.
    pub next_state: BucketState,
}

/// Decides one request of `cost` tokens at `now_ms`, given the stored state (if any).
///
/// Returns [`BucketError::CostExceedsCapacity`] when `cost > capacity`; the caller must then
/// leave the stored state as it is.
pub fn decide(
    state: Option<BucketState>,
    now_ms: u64,
    cost: u64,
    params: &BucketParams,
) -> Result<Decision, BucketError> {
    if cost > params.capacity {
        return Err(BucketError::CostExceedsCapacity {
            cost,
            capacity: params.capacity,
        });
    }
    let capacity_units = params.capacity_units();
    let rate = params.refill_tokens;
    let period = params.refill_period_ms;
    let (mut level, last) = match state {
        Some(s) => (s.level_units.min(capacity_units), s.last_ms),
        None => (capacity_units, now_ms),
    };
    let elapsed = now_ms.saturating_sub(last);
    let missing = capacity_units - level;
    if elapsed.saturating_mul(rate) >= missing {
        level = capacity_units;
    } else {
        level += elapsed * rate;
    }
    let cost_units = cost * period;
    let (allowed, retry_after_ms) = if level >= cost_units {
        level -= cost_units;
        (true, 0)
    } else {
        (false, (cost_units - level).div_ceil(rate))
    };
    Ok(Decision {
        allowed,
        remaining: level / period,
        retry_after_ms,
        reset_ms: (capacity_units - level).div_ceil(rate),
        next_state: BucketState {
            level_units: level,
            last_ms: now_ms,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ten_per_second() -> BucketParams {
        BucketParams::per_second(10).unwrap()
    }

    #[test]
    fn new_bucket_starts_full_and_takes_the_cost() {
        let d = decide(None, 5_000, 3, &ten_per_second()).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 7);
        assert_eq!(d.retry_after_ms, 0);
        assert_eq!(d.reset_ms, 300);
        assert_eq!(
            d.next_state,
            BucketState {
                level_units: 7_000,
                last_ms: 5_000
            }
        );
    }

    #[test]
    fn empty_bucket_denies_with_retry_after_and_takes_nothing() {
        let params = ten_per_second();
        let empty = BucketState {
            level_units: 0,
            last_ms: 1_000,
        };
        let d = decide(Some(empty), 1_000, 2, &params).unwrap();
        assert!(!d.allowed);
        assert_eq!(d.remaining, 0);
        assert_eq!(d.retry_after_ms, 200);
        assert_eq!(d.reset_ms, 1_000);
        assert_eq!(d.next_state, empty);
    }

    #[test]
    fn denied_request_is_allowed_after_retry_after() {
        let params = ten_per_second();
        let empty = BucketState {
            level_units: 0,
            last_ms: 0,
        };
        let denied = decide(Some(empty), 0, 5, &params).unwrap();
        let later = decide(Some(denied.next_state), denied.retry_after_ms, 5, &params).unwrap();
        assert!(later.allowed);
        let just_before = decide(
            Some(denied.next_state),
            denied.retry_after_ms - 1,
            5,
            &params,
        )
        .unwrap();
        assert!(!just_before.allowed);
    }

    #[test]
    fn cost_above_capacity_is_a_distinct_error() {
        let err = decide(None, 0, 11, &ten_per_second()).unwrap_err();
        assert_eq!(
            err,
            BucketError::CostExceedsCapacity {
                cost: 11,
                capacity: 10
            }
        );
        assert!(err.to_string().contains("11 tokens"));
    }

    #[test]
    fn cost_equal_to_capacity_is_allowed_on_a_full_bucket() {
        let d = decide(None, 0, 10, &ten_per_second()).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 0);
    }

    #[test]
    fn zero_cost_peeks_without_taking() {
        let d = decide(None, 0, 0, &ten_per_second()).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, 10);
        assert_eq!(d.reset_ms, 0);
    }

    #[test]
    fn clock_going_backwards_adds_nothing_and_rebases() {
        let params = ten_per_second();
        let state = BucketState {
            level_units: 1_000,
            last_ms: 10_000,
        };
        let d = decide(Some(state), 4_000, 1, &params).unwrap();
        assert!(d.allowed);
        assert_eq!(
            d.next_state,
            BucketState {
                level_units: 0,
                last_ms: 4_000
            }
        );
        // Refill resumes from the new reading instead of waiting for the old one.
        assert!(
            decide(Some(d.next_state), 4_100, 1, &params)
                .unwrap()
                .allowed
        );
    }

    #[test]
    fn huge_gap_fills_the_bucket_without_overflow() {
        let params = BucketParams::new(1 << 20, MAX_SCALED_UNITS, 1).unwrap();
        let state = BucketState {
            level_units: 0,
            last_ms: 0,
        };
        let d = decide(Some(state), u64::MAX, 1, &params).unwrap();
        assert!(d.allowed);
        assert_eq!(d.remaining, (1 << 20) - 1);
    }

    #[test]
    fn fractional_refill_is_exact() {
        // 0.5 token per second: one token every 2,000 ms.
        let params = BucketParams::per_period(1, 2_000)
            .unwrap()
            .with_capacity(3)
            .unwrap();
        let drained = BucketState {
            level_units: 0,
            last_ms: 0,
        };
        let at_999 = decide(Some(drained), 999, 0, &params).unwrap();
        assert_eq!(at_999.remaining, 0);
        assert_eq!(at_999.next_state.level_units, 999);
        let at_2000 = decide(Some(at_999.next_state), 2_000, 1, &params).unwrap();
        assert!(at_2000.allowed);
        assert_eq!(at_2000.next_state.level_units, 0);
    }

    #[test]
    fn stored_level_above_capacity_is_clamped() {
        let params = ten_per_second();
        let state = BucketState {
            level_units: u64::MAX,
            last_ms: 0,
        };
        let d = decide(Some(state), 0, 0, &params).unwrap();
        assert_eq!(d.remaining, 10);
    }

    #[test]
    fn per_minute_refills_one_token_per_second_for_sixty() {
        let params = BucketParams::per_minute(60).unwrap();
        let drained = BucketState {
            level_units: 0,
            last_ms: 0,
        };
        assert_eq!(
            decide(Some(drained), 1_000, 0, &params).unwrap().remaining,
            1
        );
        assert_eq!(params.refill_tokens(), 60);
        assert_eq!(params.refill_period_ms(), 60_000);
        assert_eq!(params.capacity_units(), 3_600_000);
    }

    #[test]
    fn invalid_params_are_refused() {
        assert_eq!(BucketParams::new(0, 1, 1), Err(BucketError::ZeroCapacity));
        assert_eq!(BucketParams::new(1, 0, 1), Err(BucketError::ZeroRefill));
        assert_eq!(BucketParams::new(1, 1, 0), Err(BucketError::ZeroRefill));
        assert_eq!(
            BucketParams::new(1 << 30, 1, 1 << 30),
            Err(BucketError::TooLarge)
        );
        assert_eq!(
            BucketParams::new(u64::MAX, 1, 2),
            Err(BucketError::TooLarge)
        );
        assert_eq!(
            BucketParams::new(1, MAX_SCALED_UNITS + 1, 1),
            Err(BucketError::TooLarge)
        );
        assert!(BucketParams::new(MAX_SCALED_UNITS, MAX_SCALED_UNITS, 1).is_ok());
        for err in [
            BucketError::ZeroCapacity,
            BucketError::ZeroRefill,
            BucketError::TooLarge,
        ] {
            assert!(!err.to_string().is_empty());
        }
    }
}
