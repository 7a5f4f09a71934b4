//! Property tests pinning the token bucket's invariants over random parameters, states,
//! clocks and costs.

use proptest::prelude::*;
use tally_core::token_bucket::{decide, BucketError, BucketParams, BucketState, MAX_SCALED_UNITS};

fn params() -> impl Strategy<Value = BucketParams> {
    (1u64..=10_000, 1u64..=10_000, 1u64..=3_600_000)
        .prop_filter_map("too large", |(cap, tokens, period)| {
            BucketParams::new(cap, tokens, period).ok()
        })
}

fn state(params: &BucketParams) -> impl Strategy<Value = Option<BucketState>> {
    let cap = params.capacity_units();
    proptest::option::of(
        (0..=cap, 0u64..1 << 45).prop_map(|(level_units, last_ms)| BucketState {
            level_units,
            last_ms,
        }),
    )
}

fn case() -> impl Strategy<Value = (BucketParams, Option<BucketState>)> {
    params().prop_flat_map(|p| (Just(p), state(&p)))
}

proptest! {
    #[test]
    fn a_burst_at_one_instant_never_exceeds_capacity(
        (params, start) in case(),
        now in 0u64..1 << 46,
        costs in proptest::collection::vec(1u64..=50, 1..200),
    ) {
        let mut state = start;
        let mut taken = 0u64;
        for cost in costs {
            if let Ok(d) = decide(state, now, cost, &params) {
                if d.allowed {
                    taken += cost;
                }
                state = Some(d.next_state);
            }
        }
        prop_assert!(taken <= params.capacity());
    }

    #[test]
    fn over_any_span_allowed_tokens_never_exceed_capacity_plus_refill(
        params in params(),
        steps in proptest::collection::vec((0u64..5_000, 1u64..=20), 1..200),
    ) {
        let mut state = None;
        let mut now = 1_000u64;
        let start = now;
        let mut taken_units = 0u128;
        for (gap, cost) in steps {
            now += gap;
            if let Ok(d) = decide(state, now, cost, &params) {
                if d.allowed {
                    taken_units += u128::from(cost * params.refill_period_ms());
                }
                state = Some(d.next_state);
            }
        }
        let budget = u128::from(params.capacity_units())
            + u128::from(now - start) * u128::from(params.refill_tokens());
        prop_assert!(taken_units <= budget);
    }

    #[test]
    fn refill_is_exact_and_capped(params in params(), wait_ms in 0u64..10_000_000) {
        let drained = BucketState { level_units: 0, last_ms: 0 };
        let d = decide(Some(drained), wait_ms, 0, &params).unwrap();
        let expected = u128::from(wait_ms) * u128::from(params.refill_tokens());
        let expected = expected.min(u128::from(params.capacity_units())) as u64;
        prop_assert_eq!(d.next_state.level_units, expected);
        prop_assert_eq!(d.remaining, expected / params.refill_period_ms());
    }

    #[test]
    fn refill_in_steps_equals_refill_at_once(
        (params, start) in case(),
        now in 1u64 << 45..1 << 46, // never before the stored reading
        a in 0u64..1_000_000,
        b in 0u64..1_000_000,
    ) {
        let once = decide(start, now + a + b, 0, &params).unwrap();
        let first = decide(start, now + a, 0, &params).unwrap();
        let twice = decide(Some(first.next_state), now + a + b, 0, &params).unwrap();
        prop_assert_eq!(once.next_state.level_units, twice.next_state.level_units);
    }

    #[test]
    fn a_refused_request_passes_exactly_at_retry_after(
        (params, start) in case(),
        now in 0u64..1 << 45,
        cost_seed in any::<u64>(),
    ) {
        let cost = 1 + cost_seed % params.capacity();
        let d = decide(start, now, cost, &params).unwrap();
        if !d.allowed {
            prop_assert!(d.retry_after_ms > 0);
            let at = decide(Some(d.next_state), now + d.retry_after_ms, cost, &params).unwrap();
            prop_assert!(at.allowed);
            let early = now + d.retry_after_ms - 1;
            let before = decide(Some(d.next_state), early, cost, &params).unwrap();
            prop_assert!(!before.allowed);
            let refilled_only = decide(start, now, 0, &params).unwrap().next_state;
            prop_assert_eq!(d.next_state.level_units, refilled_only.level_units);
        } else {
            prop_assert_eq!(d.retry_after_ms, 0);
        }
    }

    #[test]
    fn cost_above_capacity_is_always_refused_whatever_the_state(
        (params, start) in case(),
        now in any::<u64>(),
        extra in 1u64..1_000,
    ) {
        let cost = params.capacity() + extra;
        prop_assert_eq!(
            decide(start, now, cost, &params),
            Err(BucketError::CostExceedsCapacity { cost, capacity: params.capacity() })
        );
    }

    #[test]
    fn a_clock_going_backwards_adds_nothing(
        params in params(),
        level_seed in any::<u64>(),
        last in 1u64..u64::MAX,
        back in 1u64..u64::MAX,
    ) {
        let level_units = level_seed % (params.capacity_units() + 1);
        let now = last.saturating_sub(back);
        let d = decide(Some(BucketState { level_units, last_ms: last }), now, 0, &params).unwrap();
        prop_assert_eq!(d.next_state, BucketState { level_units, last_ms: now });
    }

    #[test]
    fn any_inputs_give_sane_outputs_without_overflow(
        params in params(),
        level_units in any::<u64>(),
        last_ms in any::<u64>(),
        now in any::<u64>(),
        cost_seed in any::<u64>(),
    ) {
        let cost = cost_seed % (params.capacity() + 1);
        let d = decide(Some(BucketState { level_units, last_ms }), now, cost, &params).unwrap();
        prop_assert!(d.next_state.level_units <= params.capacity_units());
        prop_assert!(d.remaining <= params.capacity());
        prop_assert!(d.next_state.last_ms == now);
        let full_ms = params.capacity_units().div_ceil(params.refill_tokens());
        prop_assert!(d.reset_ms <= full_ms);
        prop_assert!(d.retry_after_ms <= full_ms);
    }

    #[test]
    fn params_validate_the_exactness_bound(
        cap in any::<u64>(),
        tokens in any::<u64>(),
        period in any::<u64>(),
    ) {
        match BucketParams::new(cap, tokens, period) {
            Ok(p) => {
                prop_assert!(p.capacity_units() <= MAX_SCALED_UNITS);
                prop_assert!(p.refill_tokens() <= MAX_SCALED_UNITS);
            }
            Err(e) => prop_assert!(matches!(
                e,
                BucketError::ZeroCapacity | BucketError::ZeroRefill | BucketError::TooLarge
            )),
        }
    }
}
