//! This node's circuit breaker per shard: the core's state machine (`tally_core::breaker`),
//! its state kept in the node's key-value store, consulted before every shard call and updated
//! with the outcome. An open breaker fails calls fast, without opening a connection.
//!
//! On a healthy shard this costs one key-value read per request and shard, and nothing else:
//! a quiet breaker (closed, nothing to remember) admits a call and takes its success without
//! reading its thresholds (three variables) or writing its state. A state read is kept for the
//! rest of the request, so a second call to the same shard reads nothing.

use std::cell::RefCell;

use tally_core::breaker::{
    self, BreakerConfig, BreakerParams, BreakerState, Event, Phase, Transition,
};

use crate::node_store;
use crate::request_info::now_ms;

fn key(shard: &str) -> String {
    format!("breaker:{shard}")
}

/// Thresholds from the `breaker_*` variables, falling back to the core's defaults. Read once
/// per request, and only when a breaker is not quiet.
fn params() -> BreakerParams {
    thread_local! {
        static PARAMS: std::cell::OnceCell<BreakerParams> = const { std::cell::OnceCell::new() };
    }
    PARAMS.with(|p| *p.get_or_init(read_params))
}

fn read_params() -> BreakerParams {
    let var = |name| -> Option<u64> { crate::config::var(name).ok().and_then(|v| v.parse().ok()) };
    let defaults = BreakerConfig::default();
    let config = BreakerConfig {
        consecutive_failures: var("breaker_consecutive_failures")
            .map_or(defaults.consecutive_failures, |v| v as u32),
        base_open_ms: var("breaker_open_ms").unwrap_or(defaults.base_open_ms),
        max_open_ms: var("breaker_max_open_ms").unwrap_or(defaults.max_open_ms),
        ..defaults
    };
    config.validate().unwrap_or_else(|err| {
        eprintln!(
            "{}",
            serde_json::json!({"level":"error","msg":format!("breaker variables: {err:?}; using defaults")})
        );
        BreakerConfig::default()
            .validate()
            .expect("the default breaker configuration is valid")
    })
}

thread_local! {
    /// The breaker states this request has read or written, by shard.
    static STATES: RefCell<Vec<(String, BreakerState)>> = const { RefCell::new(Vec::new()) };
}

/// This node's view of `shard` (closed when nothing is stored or the entry is unreadable),
/// read from the store on first use in this request.
pub fn load(shard: &str) -> BreakerState {
    let known = STATES.with(|s| {
        s.borrow()
            .iter()
            .find(|(name, _)| name == shard)
            .map(|(_, state)| *state)
    });
    known.unwrap_or_else(|| {
        let state = node_store::get(&key(shard))
            .map(|bytes| breaker::decode(&bytes))
            .unwrap_or_default();
        remember(shard, state);
        state
    })
}

fn remember(shard: &str, state: BreakerState) {
    STATES.with(|s| {
        let mut states = s.borrow_mut();
        match states.iter_mut().find(|(name, _)| name == shard) {
            Some((_, known)) => *known = state,
            None => states.push((shard.to_string(), state)),
        }
    });
}

/// The phase of this node's breaker for `shard`, for health reports.
pub fn phase(shard: &str) -> Phase {
    load(shard).phase()
}

fn save(shard: &str, state: &BreakerState) {
    node_store::set(&key(shard), &breaker::encode(state));
    remember(shard, *state);
}

fn log_transition(shard: &str, transition: Option<Transition>) {
    if let Some(t) = transition {
        eprintln!(
            "{}",
            serde_json::json!({
                "level": "warn",
                "msg": "circuit breaker transition",
                "shard": shard,
                "from": t.from.as_str(),
                "to": t.to.as_str(),
            })
        );
    }
}

/// Whether a call to `shard` may go ahead; `Err(retry_after_ms)` when the breaker is open.
pub fn admit(shard: &str) -> Result<BreakerState, u64> {
    let state = load(shard);
    if state.is_quiet() {
        return Ok(state);
    }
    let admission = breaker::allow(&state, now_ms(), &params());
    if admission.next_state != state {
        save(shard, &admission.next_state);
    }
    log_transition(shard, admission.transition);
    match admission.permit {
        breaker::Permit::Rejected { retry_after_ms } => Err(retry_after_ms),
        _ => Ok(admission.next_state),
    }
}

/// Records a call's outcome (nothing to do for a success on a quiet breaker).
pub fn record(shard: &str, before: &BreakerState, succeeded: bool) {
    if succeeded && before.is_quiet() {
        return;
    }
    let event = if succeeded {
        Event::Success
    } else {
        Event::Failure
    };
    let (next, transition) = breaker::step(before, event, now_ms(), &params());
    if next != *before {
        save(shard, &next);
    }
    log_transition(shard, transition);
}
