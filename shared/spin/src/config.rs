//! Configuration read from Spin variables, once per request.

use std::cell::OnceCell;
use std::rc::Rc;

use tally_core::config::ShardConfig;

use crate::respond::Failure;
use crate::shard_io::Placement;

/// The `shards` variable: `name=redis://host:port` pairs separated by commas.
pub fn shards() -> Result<Vec<ShardConfig>, Failure> {
    let raw = spin_sdk::variables::get("shards")
        .map_err(|err| Failure::misconfigured(format!("variable shards: {err}")))?;
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
