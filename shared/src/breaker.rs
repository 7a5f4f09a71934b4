//! Whether this node may call a shard now: a per-shard circuit breaker as pure functions.
//!
//! No memory survives a request, so the breaker's state lives in the node's key-value store
//! (this node's view of that shard, like a proxy's outlier detection). The component loads the
//! state, asks [`allow`], calls the shard, reports the outcome with [`step`] and stores the new
//! state with [`encode`]. Nothing here reads a clock: `now_ms` is passed in.
//!
//! # Behaviour
//!
//! * **Closed**: every call is allowed. The breaker opens after `consecutive_failures`
//!   failures in a row, or when, within a window of `window_ms` that opens at a failure, at
//!   least `min_calls` calls were made and at least `failure_rate_percent` of them failed.
//!   Calls are counted only while the window holds a failure: a success on a breaker with no
//!   recent failure returns the state unchanged, so a healthy shard's calls cost no write to
//!   the node's store (on Spin a key-value write is a durable SQLite transaction). The rate is
//!   therefore the failure rate since trouble began, not diluted by the healthy calls before.
//! * **Open**: calls are rejected, with a retry-after. The open duration doubles with each
//!   opening in a row (`base_open_ms`, 2x, 4x, ...), capped at `max_open_ms`; outcomes of calls
//!   begun before opening are ignored.
//! * **Half-open**: once the open duration has passed, at most `half_open_probes` calls are
//!   admitted as probes. A success closes the breaker (and forgets the openings); a failure
//!   reopens it for a longer time. If no probe reports within `probe_timeout_ms` (the caller
//!   crashed), the probes are counted as failed and the breaker reopens, so a half-open
//!   episode never admits more than `half_open_probes` calls.
//! * A clock that goes backwards never lengthens anything: the open period is measured from
//!   the earlier of the recorded start and now, and never exceeds `max_open_ms`.
//!
//! # Stored form
//!
//! [`encode`] writes a version byte (1), a phase tag and the fields as LEB128 varints: a few
//! bytes. [`decode`] returns the default (closed, no history) for anything it does not
//! recognise (empty, another version, garbage, trailing bytes), so an old or corrupt entry
//! can never crash a component; at worst it forgets one shard's recent failures.

use std::fmt;

/// The encoding version written by [`encode`].
pub const ENCODING_VERSION: u8 = 1;

/// Breaker thresholds as configured (plain data, e.g. from Spin variables); turn them into
/// [`BreakerParams`] with [`BreakerConfig::validate`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BreakerConfig {
    /// Failures in a row that open the breaker.
    pub consecutive_failures: u32,
    /// Length of the failure-rate window.
    pub window_ms: u64,
    /// Calls needed in a window before the failure rate counts.
    pub min_calls: u32,
    /// Failure rate (percent of calls in the window) that opens the breaker.
    pub failure_rate_percent: u8,
    /// Open duration after the first opening.
    pub base_open_ms: u64,
    /// Longest open duration, however many openings in a row.
    pub max_open_ms: u64,
    /// Probe calls admitted while half-open.
    pub half_open_probes: u32,
    /// How long half-open waits for a probe's outcome before reopening.
    pub probe_timeout_ms: u64,
}

impl Default for BreakerConfig {
    /// 5 failures in a row, or 50% of at least 20 calls in 10 s; open 1 s doubling to 60 s;
    /// 1 probe with a 5 s timeout.
    fn default() -> Self {
        BreakerConfig {
            consecutive_failures: 5,
            window_ms: 10_000,
            min_calls: 20,
            failure_rate_percent: 50,
            base_open_ms: 1_000,
            max_open_ms: 60_000,
            half_open_probes: 1,
            probe_timeout_ms: 5_000,
        }
    }
}

/// Why a [`BreakerConfig`] was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerConfigError {
    /// A count, duration or the probe number is 0.
    Zero(&'static str),
    /// The failure rate is not within 1..=100.
    FailureRate,
    /// `max_open_ms` is below `base_open_ms`.
    MaxBelowBase,
}

impl fmt::Display for BreakerConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BreakerConfigError::Zero(field) => {
                write!(f, "breaker setting {field} must be at least 1")
            }
            BreakerConfigError::FailureRate => {
                write!(f, "breaker failure rate must be 1 to 100 percent")
            }
            BreakerConfigError::MaxBelowBase => {
                write!(f, "breaker max_open_ms is below base_open_ms")
            }
        }
    }
}

impl std::error::Error for BreakerConfigError {}

impl BreakerConfig {
    /// Checks the settings once; the state functions never re-check them.
    pub fn validate(self) -> Result<BreakerParams, BreakerConfigError> {
        let nonzero = [
            ("consecutive_failures", u64::from(self.consecutive_failures)),
            ("window_ms", self.window_ms),
            ("min_calls", u64::from(self.min_calls)),
            ("base_open_ms", self.base_open_ms),
            ("half_open_probes", u64::from(self.half_open_probes)),
            ("probe_timeout_ms", self.probe_timeout_ms),
        ];
        if let Some((field, _)) = nonzero.iter().find(|(_, v)| *v == 0) {
            return Err(BreakerConfigError::Zero(field));
        }
        if !(1..=100).contains(&self.failure_rate_percent) {
            return Err(BreakerConfigError::FailureRate);
        }
        if self.max_open_ms < self.base_open_ms {
            return Err(BreakerConfigError::MaxBelowBase);
        }
        Ok(BreakerParams(self))
    }
}

/// Validated breaker thresholds (the default is [`BreakerConfig::default`], which is valid).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BreakerParams(BreakerConfig);

impl BreakerParams {
    /// The validated settings.
    pub fn config(&self) -> &BreakerConfig {
        &self.0
    }

    /// How long the breaker stays open after `openings` openings in a row (1 = first).
    pub fn open_duration_ms(&self, openings: u32) -> u64 {
        let doublings = openings.saturating_sub(1);
        1u64.checked_shl(doublings)
            .and_then(|factor| self.0.base_open_ms.checked_mul(factor))
            .map_or(self.0.max_open_ms, |d| d.min(self.0.max_open_ms))
    }
}

/// A breaker's phase, without its counters.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// Calls flow.
    Closed,
    /// Calls are rejected.
    Open,
    /// A few probe calls are admitted.
    HalfOpen,
}

impl Phase {
    /// The phase's name in health reports: `closed`, `open` or `half_open`.
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::Closed => "closed",
            Phase::Open => "open",
            Phase::HalfOpen => "half_open",
        }
    }
}

/// Everything a breaker remembers about one shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BreakerState {
    /// Calls flow; failures are being counted.
    Closed {
        /// Failures since the last success.
        consecutive_failures: u32,
        /// Start of the current failure-rate window.
        window_start_ms: u64,
        /// Calls reported in the current window.
        window_calls: u32,
        /// Failures reported in the current window.
        window_failures: u32,
    },
    /// Calls are rejected until `since_ms + duration_ms`.
    Open {
        /// When the breaker opened.
        since_ms: u64,
        /// How long it stays open (capped by the current `max_open_ms` when read).
        duration_ms: u64,
        /// Openings in a row, this one included.
        openings: u32,
    },
    /// Probes are being admitted.
    HalfOpen {
        /// When half-open began.
        since_ms: u64,
        /// Probes admitted so far.
        probes_admitted: u32,
        /// Openings in a row before this half-open.
        openings: u32,
    },
}

impl Default for BreakerState {
    /// Closed, with no history.
    fn default() -> Self {
        BreakerState::Closed {
            consecutive_failures: 0,
            window_start_ms: 0,
            window_calls: 0,
            window_failures: 0,
        }
    }
}

impl BreakerState {
    /// Closed with nothing to remember (no failure counted): [`allow`] admits a call and a
    /// success leaves the state as it is, whatever the parameters, so a caller may skip both
    /// (and reading the parameters) on a healthy shard.
    pub fn is_quiet(&self) -> bool {
        matches!(
            self,
            BreakerState::Closed {
                consecutive_failures: 0,
                window_calls: 0,
                window_failures: 0,
                ..
            }
        )
    }

    /// The phase of this state.
    pub fn phase(&self) -> Phase {
        match self {
            BreakerState::Closed { .. } => Phase::Closed,
            BreakerState::Open { .. } => Phase::Open,
            BreakerState::HalfOpen { .. } => Phase::HalfOpen,
        }
    }
}

/// The outcome of a call to the shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    /// The shard answered.
    Success,
    /// The shard failed or timed out.
    Failure,
}

/// A change of phase, for logs and metrics.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// The phase before.
    pub from: Phase,
    /// The phase after.
    pub to: Phase,
}

/// Whether a call may be made now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Closed: call freely.
    Allowed,
    /// Half-open: this call is one of the probes; report its outcome.
    Probe,
    /// Open (or half-open with all probes out): do not call.
    Rejected {
        /// When it is worth asking again.
        retry_after_ms: u64,
    },
}

/// The answer of [`allow`]: the permit and the state to store (admitting a probe changes it).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Admission {
    /// Whether to call.
    pub permit: Permit,
    /// The state to store.
    pub next_state: BreakerState,
    /// The phase change, if any.
    pub transition: Option<Transition>,
}

fn transition(from: Phase, to: Phase) -> Option<Transition> {
    (from != to).then_some(Transition { from, to })
}

fn open(now_ms: u64, openings: u32, params: &BreakerParams) -> BreakerState {
    BreakerState::Open {
        since_ms: now_ms,
        duration_ms: params.open_duration_ms(openings),
        openings,
    }
}

fn closed_at(now_ms: u64) -> BreakerState {
    BreakerState::Closed {
        consecutive_failures: 0,
        window_start_ms: now_ms,
        window_calls: 0,
        window_failures: 0,
    }
}

/// Decides whether a call may be made at `now_ms`.
pub fn allow(state: &BreakerState, now_ms: u64, params: &BreakerParams) -> Admission {
    let config = params.config();
    let (permit, next_state) = match *state {
        BreakerState::Closed { .. } => (Permit::Allowed, *state),
        BreakerState::Open {
            since_ms,
            duration_ms,
            openings,
        } => {
            let since_ms = since_ms.min(now_ms);
            let open_for = duration_ms.min(config.max_open_ms);
            let elapsed = now_ms - since_ms;
            if elapsed < open_for {
                let next = BreakerState::Open {
                    since_ms,
                    duration_ms,
                    openings,
                };
                let retry_after_ms = open_for - elapsed;
                (Permit::Rejected { retry_after_ms }, next)
            } else {
                let next = BreakerState::HalfOpen {
                    since_ms: now_ms,
                    probes_admitted: 1,
                    openings,
                };
                (Permit::Probe, next)
            }
        }
        BreakerState::HalfOpen {
            since_ms,
            probes_admitted,
            openings,
        } => {
            let since_ms = since_ms.min(now_ms);
            let elapsed = now_ms - since_ms;
            if elapsed >= config.probe_timeout_ms {
                let reopened = openings.saturating_add(1);
                let retry_after_ms = params.open_duration_ms(reopened);
                (
                    Permit::Rejected { retry_after_ms },
                    open(now_ms, reopened, params),
                )
            } else if probes_admitted < config.half_open_probes {
                let next = BreakerState::HalfOpen {
                    since_ms,
                    probes_admitted: probes_admitted + 1,
                    openings,
                };
                (Permit::Probe, next)
            } else {
                let next = BreakerState::HalfOpen {
                    since_ms,
                    probes_admitted,
                    openings,
                };
                let retry_after_ms = config.probe_timeout_ms - elapsed;
                (Permit::Rejected { retry_after_ms }, next)
            }
        }
    };
    Admission {
        permit,
        transition: transition(state.phase(), next_state.phase()),
        next_state,
    }
}

/// Records the outcome of a call made at `now_ms` and returns the new state.
pub fn step(
    state: &BreakerState,
    event: Event,
    now_ms: u64,
    params: &BreakerParams,
) -> (BreakerState, Option<Transition>) {
    let config = params.config();
    let failed = event == Event::Failure;
    let next = match *state {
        BreakerState::Closed {
            consecutive_failures,
            window_start_ms,
            window_calls,
            window_failures,
        } => {
            let expired = now_ms.saturating_sub(window_start_ms) >= config.window_ms;
            // The window opens at a failure and counts calls only while it holds one.
            let in_window = window_failures > 0 && !expired;
            if !failed {
                if in_window {
                    BreakerState::Closed {
                        consecutive_failures: 0,
                        window_start_ms,
                        window_calls: window_calls.saturating_add(1),
                        window_failures,
                    }
                } else {
                    // Nothing to remember: a healthy shard's successes leave the state as it is.
                    BreakerState::Closed {
                        consecutive_failures: 0,
                        window_start_ms,
                        window_calls: 0,
                        window_failures: 0,
                    }
                }
            } else {
                let (window_start_ms, window_calls, window_failures) = if in_window {
                    (window_start_ms, window_calls, window_failures)
                } else {
                    (now_ms, 0, 0)
                };
                let window_calls = window_calls.saturating_add(1);
                let window_failures = window_failures.saturating_add(1);
                let consecutive_failures = consecutive_failures.saturating_add(1);
                let rate_tripped = window_calls >= config.min_calls
                    && u64::from(window_failures) * 100
                        >= u64::from(config.failure_rate_percent) * u64::from(window_calls);
                if consecutive_failures >= config.consecutive_failures || rate_tripped {
                    open(now_ms, 1, params)
                } else {
                    BreakerState::Closed {
                        consecutive_failures,
                        window_start_ms,
                        window_calls,
                        window_failures,
                    }
                }
            }
        }
        BreakerState::Open { .. } => *state,
        BreakerState::HalfOpen { openings, .. } => {
            if failed {
                open(now_ms, openings.saturating_add(1), params)
            } else {
                closed_at(now_ms)
            }
        }
    };
    (next, transition(state.phase(), next.phase()))
}

/// The compact stored form: version byte, phase tag, LEB128 fields.
pub fn encode(state: &BreakerState) -> Vec<u8> {
    let mut out = Vec::with_capacity(24);
    out.push(ENCODING_VERSION);
    let fields: [u64; 4];
    let fields: &[u64] = match *state {
        BreakerState::Closed {
            consecutive_failures,
            window_start_ms,
            window_calls,
            window_failures,
        } => {
            out.push(0);
            fields = [
                u64::from(consecutive_failures),
                window_start_ms,
                u64::from(window_calls),
                u64::from(window_failures),
            ];
            &fields
        }
        BreakerState::Open {
            since_ms,
            duration_ms,
            openings,
        } => {
            out.push(1);
            fields = [since_ms, duration_ms, u64::from(openings), 0];
            &fields[..3]
        }
        BreakerState::HalfOpen {
            since_ms,
            probes_admitted,
            openings,
        } => {
            out.push(2);
            fields = [since_ms, u64::from(probes_admitted), u64::from(openings), 0];
            &fields[..3]
        }
    };
    for &field in fields {
        write_varint(&mut out, field);
    }
    out
}

/// Reads a stored state; anything unrecognised yields the default (closed, no history).
pub fn decode(bytes: &[u8]) -> BreakerState {
    try_decode(bytes).unwrap_or_default()
}

/// Reads a stored state, or `None` if the bytes are not a version-1 encoding.
pub fn try_decode(bytes: &[u8]) -> Option<BreakerState> {
    let (&version, rest) = bytes.split_first()?;
    if version != ENCODING_VERSION {
        return None;
    }
    let (&tag, mut rest) = rest.split_first()?;
    let mut next = || read_varint(&mut rest);
    let small = |v: u64| u32::try_from(v).ok();
    let state = match tag {
        0 => BreakerState::Closed {
            consecutive_failures: small(next()?)?,
            window_start_ms: next()?,
            window_calls: small(next()?)?,
            window_failures: small(next()?)?,
        },
        1 => BreakerState::Open {
            since_ms: next()?,
            duration_ms: next()?,
            openings: small(next()?)?,
        },
        2 => BreakerState::HalfOpen {
            since_ms: next()?,
            probes_admitted: small(next()?)?,
            openings: small(next()?)?,
        },
        _ => return None,
    };
    rest.is_empty().then_some(state)
}

fn write_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn read_varint(input: &mut &[u8]) -> Option<u64> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = input.split_first()?;
        *input = rest;
        let bits = u64::from(byte & 0x7f);
        if shift == 63 && bits > 1 {
            return None;
        }
        value |= bits << shift;
        if byte & 0x80 == 0 {
            return Some(value);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params() -> BreakerParams {
        BreakerConfig {
            consecutive_failures: 3,
            window_ms: 1_000,
            min_calls: 10,
            failure_rate_percent: 50,
            base_open_ms: 100,
            max_open_ms: 1_000,
            half_open_probes: 2,
            probe_timeout_ms: 500,
        }
        .validate()
        .unwrap()
    }

    fn run(state: BreakerState, events: &[Event], now_ms: u64) -> BreakerState {
        events
            .iter()
            .fold(state, |s, &e| step(&s, e, now_ms, &params()).0)
    }

    #[test]
    fn closed_allows_calls() {
        let a = allow(&BreakerState::default(), 0, &params());
        assert_eq!(a.permit, Permit::Allowed);
        assert_eq!(a.transition, None);
    }

    #[test]
    fn opens_after_consecutive_failures() {
        let two = run(BreakerState::default(), &[Event::Failure; 2], 10);
        assert_eq!(two.phase(), Phase::Closed);
        let (three, t) = step(&two, Event::Failure, 10, &params());
        assert_eq!(
            three,
            BreakerState::Open {
                since_ms: 10,
                duration_ms: 100,
                openings: 1
            }
        );
        assert_eq!(
            t,
            Some(Transition {
                from: Phase::Closed,
                to: Phase::Open
            })
        );
    }

    #[test]
    fn success_resets_the_consecutive_count() {
        use Event::*;
        let s = run(
            BreakerState::default(),
            &[Failure, Failure, Success, Failure, Failure],
            10,
        );
        assert_eq!(s.phase(), Phase::Closed);
    }

    #[test]
    fn opens_on_failure_rate_once_min_calls_reached() {
        use Event::*;
        let pattern = [
            Failure, Success, Failure, Success, Failure, Success, Failure, Success, Success,
        ];
        let s = run(BreakerState::default(), &pattern, 10);
        assert_eq!(s.phase(), Phase::Closed, "9 calls are below min_calls");
        let (s, _) = step(&s, Failure, 10, &params());
        assert_eq!(s.phase(), Phase::Open, "5 of 10 failed");
    }

    #[test]
    fn the_rate_counts_from_the_first_failure_not_the_healthy_calls_before() {
        use Event::*;
        let healthy = run(BreakerState::default(), &[Success; 100], 10);
        assert_eq!(healthy, BreakerState::default(), "nothing to remember");
        let pattern = [
            Failure, Success, Failure, Success, Failure, Success, Failure, Success, Success,
            Failure,
        ];
        assert_eq!(run(healthy, &pattern, 10).phase(), Phase::Open);
    }

    #[test]
    fn a_success_on_a_breaker_without_recent_failures_changes_nothing() {
        for state in [
            BreakerState::default(),
            closed_at(5_000),
            BreakerState::Closed {
                consecutive_failures: 0,
                window_start_ms: 123,
                window_calls: 0,
                window_failures: 0,
            },
        ] {
            assert_eq!(
                step(&state, Event::Success, 9_999, &params()),
                (state, None)
            );
        }
    }

    #[test]
    fn an_expired_window_is_forgotten_by_the_next_success() {
        let s = run(
            BreakerState::default(),
            &[Event::Failure, Event::Failure],
            10,
        );
        let (s, _) = step(&s, Event::Success, 5_000, &params());
        assert_eq!(
            s,
            BreakerState::Closed {
                consecutive_failures: 0,
                window_start_ms: 10,
                window_calls: 0,
                window_failures: 0
            }
        );
        assert_eq!(step(&s, Event::Success, 6_000, &params()).0, s);
    }

    #[test]
    fn failure_rate_window_rolls_over() {
        use Event::*;
        let pattern = [
            Success, Failure, Success, Failure, Success, Failure, Success, Failure, Success,
        ];
        let s = run(BreakerState::default(), &pattern, 10);
        let (s, _) = step(&s, Failure, 2_000, &params());
        assert_eq!(
            s,
            BreakerState::Closed {
                consecutive_failures: 1,
                window_start_ms: 2_000,
                window_calls: 1,
                window_failures: 1
            }
        );
    }

    #[test]
    fn open_rejects_with_retry_after_then_admits_a_probe() {
        let open = BreakerState::Open {
            since_ms: 1_000,
            duration_ms: 100,
            openings: 1,
        };
        let a = allow(&open, 1_040, &params());
        assert_eq!(a.permit, Permit::Rejected { retry_after_ms: 60 });
        let a = allow(&open, 1_100, &params());
        assert_eq!(a.permit, Permit::Probe);
        assert_eq!(
            a.next_state,
            BreakerState::HalfOpen {
                since_ms: 1_100,
                probes_admitted: 1,
                openings: 1
            }
        );
        assert_eq!(
            a.transition,
            Some(Transition {
                from: Phase::Open,
                to: Phase::HalfOpen
            })
        );
    }

    #[test]
    fn half_open_admits_k_probes_then_rejects() {
        let half = BreakerState::HalfOpen {
            since_ms: 0,
            probes_admitted: 1,
            openings: 1,
        };
        let second = allow(&half, 10, &params());
        assert_eq!(second.permit, Permit::Probe);
        let third = allow(&second.next_state, 20, &params());
        assert_eq!(
            third.permit,
            Permit::Rejected {
                retry_after_ms: 480
            }
        );
    }

    #[test]
    fn probe_success_closes_and_forgets() {
        let half = BreakerState::HalfOpen {
            since_ms: 0,
            probes_admitted: 1,
            openings: 4,
        };
        let (s, t) = step(&half, Event::Success, 50, &params());
        assert_eq!(s, closed_at(50));
        assert_eq!(
            t,
            Some(Transition {
                from: Phase::HalfOpen,
                to: Phase::Closed
            })
        );
    }

    #[test]
    fn probe_failure_reopens_for_longer() {
        let half = BreakerState::HalfOpen {
            since_ms: 0,
            probes_admitted: 1,
            openings: 1,
        };
        let (s, _) = step(&half, Event::Failure, 50, &params());
        assert_eq!(
            s,
            BreakerState::Open {
                since_ms: 50,
                duration_ms: 200,
                openings: 2
            }
        );
    }

    #[test]
    fn open_duration_doubles_up_to_the_cap() {
        let p = params();
        let durations: Vec<u64> = (1..=6).map(|n| p.open_duration_ms(n)).collect();
        assert_eq!(durations, [100, 200, 400, 800, 1_000, 1_000]);
        assert_eq!(p.open_duration_ms(u32::MAX), 1_000);
        assert_eq!(p.open_duration_ms(0), 100);
        assert_eq!(p.open_duration_ms(60), 1_000);
    }

    #[test]
    fn lost_probes_reopen_after_the_probe_timeout() {
        let half = BreakerState::HalfOpen {
            since_ms: 0,
            probes_admitted: 2,
            openings: 1,
        };
        let a = allow(&half, 500, &params());
        assert_eq!(
            a.permit,
            Permit::Rejected {
                retry_after_ms: 200
            }
        );
        assert_eq!(
            a.next_state,
            BreakerState::Open {
                since_ms: 500,
                duration_ms: 200,
                openings: 2
            }
        );
    }

    #[test]
    fn late_outcomes_while_open_are_ignored() {
        let open = BreakerState::Open {
            since_ms: 0,
            duration_ms: 100,
            openings: 1,
        };
        assert_eq!(step(&open, Event::Success, 5, &params()), (open, None));
        assert_eq!(step(&open, Event::Failure, 5, &params()), (open, None));
    }

    #[test]
    fn clock_going_backwards_never_lengthens_open() {
        let open = BreakerState::Open {
            since_ms: 10_000,
            duration_ms: 100,
            openings: 1,
        };
        let a = allow(&open, 0, &params());
        assert_eq!(
            a.permit,
            Permit::Rejected {
                retry_after_ms: 100
            }
        );
        assert_eq!(allow(&a.next_state, 100, &params()).permit, Permit::Probe);
    }

    #[test]
    fn stored_duration_above_a_lowered_cap_is_capped() {
        let open = BreakerState::Open {
            since_ms: 0,
            duration_ms: 1 << 40,
            openings: 30,
        };
        assert_eq!(
            allow(&open, 0, &params()).permit,
            Permit::Rejected {
                retry_after_ms: 1_000
            }
        );
    }

    #[test]
    fn encoding_round_trips_each_phase() {
        for s in [
            BreakerState::default(),
            BreakerState::Closed {
                consecutive_failures: 2,
                window_start_ms: u64::MAX,
                window_calls: 7,
                window_failures: u32::MAX,
            },
            BreakerState::Open {
                since_ms: 1_700_000_000_000,
                duration_ms: 60_000,
                openings: 3,
            },
            BreakerState::HalfOpen {
                since_ms: 5,
                probes_admitted: 1,
                openings: 1,
            },
        ] {
            assert_eq!(try_decode(&encode(&s)), Some(s));
        }
        assert!(encode(&BreakerState::default()).len() <= 6);
    }

    #[test]
    fn garbage_decodes_to_closed() {
        let bad: [&[u8]; 7] = [
            b"",
            &[1],
            &[2, 0, 0, 0, 0, 0],
            &[1, 9, 0],
            &[1, 0, 0, 0, 0],
            &[1, 0, 0, 0, 0, 0, 0],
            &[
                1, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f, 0, 0,
            ],
        ];
        for bytes in bad {
            assert_eq!(decode(bytes), BreakerState::default(), "{bytes:?}");
        }
        // A u32 field holding more than u32::MAX is refused.
        let mut too_big = vec![1, 2, 0];
        write_varint(&mut too_big, u64::from(u32::MAX) + 1);
        too_big.push(0);
        assert_eq!(try_decode(&too_big), None);
    }

    #[test]
    fn invalid_configs_are_refused() {
        let ok = BreakerConfig::default();
        assert!(ok.validate().is_ok());
        let zero = BreakerConfig {
            half_open_probes: 0,
            ..ok
        };
        assert_eq!(
            zero.validate(),
            Err(BreakerConfigError::Zero("half_open_probes"))
        );
        let rate = BreakerConfig {
            failure_rate_percent: 101,
            ..ok
        };
        assert_eq!(rate.validate(), Err(BreakerConfigError::FailureRate));
        let cap = BreakerConfig {
            max_open_ms: 1,
            ..ok
        };
        assert_eq!(cap.validate(), Err(BreakerConfigError::MaxBelowBase));
        for err in [
            BreakerConfigError::Zero("x"),
            BreakerConfigError::FailureRate,
            BreakerConfigError::MaxBelowBase,
        ] {
            assert!(!err.to_string().is_empty());
        }
        assert_eq!(BreakerParams::default().config(), &ok);
    }

    #[test]
    fn phase_names_are_stable() {
        assert_eq!(Phase::Closed.as_str(), "closed");
        assert_eq!(Phase::Open.as_str(), "open");
        assert_eq!(Phase::HalfOpen.as_str(), "half_open");
    }
}
