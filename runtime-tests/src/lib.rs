//! `tally-host`: a Spin-compatible host on wasmtime, so Tally's real `.wasm` components can be
//! run and tested against real Redis shards without the Spin CLI.
//!
//! It is held to Spin's rules (routes, `spin-*` headers, variables, `allowed_outbound_hosts`,
//! key-value labels, one instance per request) and never accepts what Spin would reject.
//! The pure rules live in the `spin-rules` crate; this crate is the I/O around them:
//!
//! - [`runtime`]: load `spin.toml`, compile and pre-instantiate components, run one request;
//! - [`server`]: the HTTP front door and its request log;
//! - [`spin_redis`], [`spin_kv`], [`spin_variables`]: the Spin interfaces components import;
//! - [`io_counts`]: what each request asked of the key-value store and Redis;
//! - [`shards`]: real `redis-server` processes on free loopback ports for tests and local runs.

pub mod bindings;
pub mod compile_cache;
pub mod component_log;
pub mod io_counts;
pub mod local;
pub mod outbound_http;
pub mod runtime;
pub mod server;
pub mod shards;
pub mod spin_kv;
pub mod spin_redis;
pub mod spin_variables;
pub mod state;
