//! Configuration read from Spin variables, once per request.

use tally_core::config::ShardConfig;

use crate::respond::Failure;

/// The `shards` variable: `name=redis://host:port` pairs separated by commas.
pub fn shards() -> Result<Vec<ShardConfig>, Failure> {
    let raw = spin_sdk::variables::get("shards")
        .map_err(|err| Failure::misconfigured(format!("variable shards: {err}")))?;
    tally_core::config::parse_shard_list(&raw)
        .map_err(|err| Failure::misconfigured(format!("variable shards: {err}")))
}
