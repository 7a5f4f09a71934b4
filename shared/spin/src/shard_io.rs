//! Talking to one Redis shard through Spin's outbound Redis interface.

use spin_sdk::redis::{Connection, RedisResult};
use tally_core::config::ShardConfig;

/// Opens a connection to `shard` (Spin opens a fresh one per request).
pub fn open(shard: &ShardConfig) -> Result<Connection, spin_sdk::redis::Error> {
    Connection::open(&shard.url)
}

/// Sends `PING` and checks for `PONG`.
pub fn ping(conn: &Connection) -> Result<(), String> {
    match conn.execute("PING", &[]) {
        Ok(reply) if matches!(reply.as_slice(), [RedisResult::Status(s)] if s == "PONG") => Ok(()),
        Ok(other) => Err(format!("unexpected PING reply {other:?}")),
        Err(err) => Err(err.to_string()),
    }
}
