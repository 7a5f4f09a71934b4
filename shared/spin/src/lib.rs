//! Spin glue shared by Tally's components: everything that touches the Spin SDK but is the same
//! in every component, written once. Pure decisions live in `tally-core`; this crate only reads
//! variables, talks to Redis and the key-value store, and turns outcomes into HTTP responses.
//! It compiles for `wasm32-wasip2` only (it imports Spin's host interfaces).

pub mod access;
pub mod admin;
pub mod assets;
pub mod breaker_io;
pub mod config;
pub mod cors;
pub mod health;
pub mod http_io;
pub mod insights;
pub mod metrics;
pub mod migration;
pub mod node_cache;
pub mod node_store;
pub mod rate_limit;
pub mod request_info;
pub mod request_log;
pub mod respond;
pub mod shard_io;
pub mod summary;
pub mod visit;
pub mod visits;
