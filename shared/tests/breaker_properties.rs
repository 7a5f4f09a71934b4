//! Property tests pinning the circuit breaker's invariants over random configurations, event
//! sequences and clocks (including clocks that jump backwards), and its stored encoding over
//! arbitrary bytes.

use proptest::prelude::*;
use tally_core::breaker::{
    allow, decode, encode, step, try_decode, BreakerConfig, BreakerParams, BreakerState, Event,
    Permit, Phase,
};

fn params() -> impl Strategy<Value = BreakerParams> {
    (
        1u32..6,
        1u64..5_000,
        1u32..20,
        1u8..=100,
        1u64..2_000,
        0u64..20_000,
        1u32..4,
        1u64..3_000,
    )
        .prop_map(|(n, window, min, rate, base, extra, k, timeout)| {
            BreakerConfig {
                consecutive_failures: n,
                window_ms: window,
                min_calls: min,
                failure_rate_percent: rate,
                base_open_ms: base,
                max_open_ms: base + extra,
                half_open_probes: k,
                probe_timeout_ms: timeout,
            }
            .validate()
            .unwrap()
        })
}

fn any_state() -> impl Strategy<Value = BreakerState> {
    prop_oneof![
        (any::<u32>(), any::<u64>(), any::<u32>(), any::<u32>()).prop_map(|(c, w, calls, f)| {
            BreakerState::Closed {
                consecutive_failures: c,
                window_start_ms: w,
                window_calls: calls,
                window_failures: f,
            }
        }),
        (any::<u64>(), any::<u64>(), any::<u32>()).prop_map(|(since_ms, duration_ms, openings)| {
            BreakerState::Open {
                since_ms,
                duration_ms,
                openings,
            }
        }),
        (any::<u64>(), any::<u32>(), any::<u32>()).prop_map(
            |(since_ms, probes_admitted, openings)| {
                BreakerState::HalfOpen {
                    since_ms,
                    probes_admitted,
                    openings,
                }
            }
        ),
    ]
}

/// One thing that happens to a breaker: a request asks to call, or a call reports back.
#[derive(Clone, Copy, Debug)]
enum Action {
    Ask,
    Report(Event),
}

fn actions() -> impl Strategy<Value = Vec<(i64, Action)>> {
    let action = prop_oneof![
        3 => Just(Action::Ask),
        1 => Just(Action::Report(Event::Success)),
        2 => Just(Action::Report(Event::Failure)),
    ];
    // Mostly forward steps, sometimes a jump backwards.
    proptest::collection::vec((-2_000i64..3_000, action), 1..300)
}

proptest! {
    #[test]
    fn half_open_never_admits_more_than_k_probes(params in params(), script in actions()) {
        let k = params.config().half_open_probes;
        let mut state = BreakerState::default();
        let mut now = 1_000_000u64;
        let mut probes_this_episode = 0;
        for (dt, action) in script {
            now = now.saturating_add_signed(dt);
            let next = match action {
                Action::Ask => {
                    let a = allow(&state, now, &params);
                    if a.permit == Permit::Probe {
                        if state.phase() != Phase::HalfOpen {
                            probes_this_episode = 0;
                        }
                        probes_this_episode += 1;
                        prop_assert!(probes_this_episode <= k);
                    }
                    a.next_state
                }
                Action::Report(event) => step(&state, event, now, &params).0,
            };
            if next.phase() != Phase::HalfOpen {
                probes_this_episode = 0;
            }
            state = next;
        }
    }

    #[test]
    fn open_never_lasts_longer_than_the_cap(
        params in params(),
        state in any_state(),
        now in any::<u64>(),
    ) {
        let cap = params.config().max_open_ms;
        let a = allow(&state, now, &params);
        if let (Phase::Open, Permit::Rejected { retry_after_ms }) = (state.phase(), a.permit) {
            prop_assert!(retry_after_ms <= cap);
            prop_assert!(retry_after_ms > 0);
            if let Some(later) = now.checked_add(retry_after_ms) {
                prop_assert_eq!(allow(&a.next_state, later, &params).permit, Permit::Probe);
            }
        }
        if let BreakerState::Open { duration_ms, .. } = a.next_state {
            if state.phase() != Phase::Open {
                prop_assert!(duration_ms <= cap);
            }
        }
    }

    #[test]
    fn every_opening_is_capped(
        params in params(),
        state in any_state(),
        now in any::<u64>(),
        fail in any::<bool>(),
    ) {
        let event = if fail { Event::Failure } else { Event::Success };
        let (next, transition) = step(&state, event, now, &params);
        if let (BreakerState::Open { duration_ms, .. }, Some(_)) = (next, transition) {
            prop_assert!(duration_ms <= params.config().max_open_ms);
            prop_assert!(duration_ms >= params.config().base_open_ms);
        }
    }

    #[test]
    fn closed_always_allows(
        params in params(),
        now in any::<u64>(),
        c in any::<u32>(),
        w in any::<u64>(),
    ) {
        let state = BreakerState::Closed {
            consecutive_failures: c,
            window_start_ms: w,
            window_calls: 0,
            window_failures: 0,
        };
        prop_assert_eq!(allow(&state, now, &params).permit, Permit::Allowed);
    }

    #[test]
    fn a_healthy_shard_never_changes_the_stored_state(
        params in params(),
        script in proptest::collection::vec(0u64..3_000, 1..300),
    ) {
        // Any run of calls that all succeed, from a breaker with nothing to remember: the state
        // to store never differs from the state loaded, so the node's store is never written.
        let state = BreakerState::default();
        let mut now = 1_000_000u64;
        for dt in script {
            now += dt;
            let a = allow(&state, now, &params);
            prop_assert_eq!(a.next_state, state);
            prop_assert_eq!(step(&a.next_state, Event::Success, now, &params), (state, None));
        }
    }

    #[test]
    fn a_quiet_breaker_admits_and_keeps_its_state_on_success_whatever_the_params(
        params in params(),
        since in any::<u64>(),
        now in any::<u64>(),
    ) {
        // What lets a caller skip reading the parameters on a healthy shard.
        let quiet = BreakerState::Closed {
            consecutive_failures: 0,
            window_start_ms: since,
            window_calls: 0,
            window_failures: 0,
        };
        prop_assert!(quiet.is_quiet());
        let a = allow(&quiet, now, &params);
        prop_assert_eq!((a.permit, a.next_state, a.transition), (Permit::Allowed, quiet, None));
        prop_assert_eq!(step(&quiet, Event::Success, now, &params), (quiet, None));
        prop_assert!(!step(&quiet, Event::Failure, now, &params).0.is_quiet());
    }

    #[test]
    fn consecutive_failures_always_open_a_closed_breaker(
        params in params(),
        state in any_state(),
        now in any::<u64>(),
    ) {
        // Whatever a closed breaker remembers, the configured failures in a row open it.
        prop_assume!(state.phase() == Phase::Closed);
        let mut s = state;
        for _ in 0..params.config().consecutive_failures {
            s = step(&s, Event::Failure, now, &params).0;
        }
        prop_assert_eq!(s.phase(), Phase::Open);
    }

    #[test]
    fn any_bytes_decode_without_panic(bytes in proptest::collection::vec(any::<u8>(), 0..40)) {
        let state = decode(&bytes);
        // Whatever came out is a state that round-trips.
        prop_assert_eq!(decode(&encode(&state)), state);
    }

    #[test]
    fn any_state_round_trips(state in any_state()) {
        let bytes = encode(&state);
        prop_assert!(bytes.len() <= 2 + 10 + 10 + 5 + 5);
        prop_assert_eq!(try_decode(&bytes), Some(state));
    }

    #[test]
    fn every_state_reached_by_events_round_trips(params in params(), script in actions()) {
        let mut state = BreakerState::default();
        let mut now = 0u64;
        for (dt, action) in script {
            now = now.saturating_add_signed(dt);
            state = match action {
                Action::Ask => allow(&state, now, &params).next_state,
                Action::Report(event) => step(&state, event, now, &params).0,
            };
            prop_assert_eq!(decode(&encode(&state)), state);
        }
    }

    #[test]
    fn truncated_or_extended_encodings_fall_back_to_closed(
        state in any_state(),
        cut in any::<prop::sample::Index>(),
        junk in any::<u8>(),
    ) {
        let bytes = encode(&state);
        let truncated = &bytes[..cut.index(bytes.len())];
        prop_assert_eq!(try_decode(truncated), None);
        prop_assert_eq!(decode(truncated), BreakerState::default());
        let mut extended = bytes.clone();
        extended.push(junk);
        prop_assert_eq!(decode(&extended), BreakerState::default());
    }
}
