//! Configuration read from Spin variables, each at most once per request.
//!
//! On Spin every variable read goes through the host's providers (for the environment
//! provider, a blocking section handed to another thread), a measurable share of a cheap
//! request; an instance serves exactly one request, so a value read once cannot go stale.

use std::cell::{OnceCell, RefCell};
use std::rc::Rc;

use tally_core::config::ShardConfig;

use crate::respond::Failure;
use crate::shard_io::Placement;

type Values = Vec<(&'static str, Result<Rc<str>, String>)>;

thread_local! {
    static VALUES: RefCell<Values> = const { RefCell::new(Vec::new()) };
}

/// The variable `name`, read from Spin on first use in this request (`Err`: Spin's error, as
/// text).
pub fn var(name: &'static str) -> Result<Rc<str>, String> {
    let known = VALUES.with(|v| {
        v.borrow()
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, value)| value.clone())
    });
    if let Some(value) = known {
        return value;
    }
    let value = spin_sdk::variables::get(name)
        .map(Rc::from)
        .map_err(|err| err.to_string());
    VALUES.with(|v| v.borrow_mut().push((name, value.clone())));
    value
}

/// The variable `name` if it is set to something other than blanks.
pub fn non_empty_var(name: &'static str) -> Option<Rc<str>> {
    var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The `shards` variable: `name=redis://host:port` pairs separated by commas.
pub fn shards() -> Result<Vec<ShardConfig>, Failure> {
    let raw =
        var("shards").map_err(|err| Failure::misconfigured(format!("variable shards: {err}")))?;
    tally_core::config::parse_shard_list(&raw)
        .map_err(|err| Failure::misconfigured(format!("variable shards: {err}")))
}

/// The placement over the configured shards, built on first use and kept for the rest of the
/// request (an instance serves exactly one request, so it cannot go stale). A request that
/// never needs a shard, such as one from a client whose block is remembered, never reads or
/// parses the `shards` variable.
pub fn placement() -> Result<Rc<Placement>, Failure> {
    thread_local! {
        static PLACEMENT: OnceCell<Rc<Placement>> = const { OnceCell::new() };
    }
    if let Some(placement) = PLACEMENT.with(|p| p.get().cloned()) {
        return Ok(placement);
    }
    let placement = Rc::new(Placement::new(shards()?)?);
    PLACEMENT.with(|p| p.set(placement.clone()).ok());
    Ok(placement)
}

/// `history_days`: days of history the shards keep (default 400).
pub fn history_days() -> Result<u32, Failure> {
    let raw = var("history_days").ok();
    tally_core::history::history_days(raw.as_deref()).map_err(Failure::misconfigured)
}

/// The secret the day's visitor salt is made from: `visitor_salt`, or, when that is unset, the
/// `shards` variable (the same on every node, and secret where the shards have passwords).
/// Every node must use the same, so that a visitor is one element on every shard.
pub fn visitor_secret() -> Rc<str> {
    non_empty_var("visitor_salt")
        .or_else(|| var("shards").ok())
        .unwrap_or_default()
}
