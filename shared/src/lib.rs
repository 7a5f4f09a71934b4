//! Tally's core: every decision the components make, as pure functions.
//!
//! Each Spin component is a fresh instance per request, talking to Redis shards; whatever can
//! be decided without I/O is decided here, where it compiles natively and is unit-, property-
//! and bench-tested: where a key lives ([`hashing`]), whether a client may proceed
//! ([`token_bucket`], mirrored in Redis by [`token_bucket_script`]), whether a shard may be
//! called ([`breaker`]), what input is acceptable ([`validation`], [`rfc3339`]) and what the
//! API returns ([`api`]). Nothing here reads a clock, draws a random number or does I/O: the
//! caller passes state and "now" in and stores what comes out.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod allowed_sites;
pub mod api;
pub mod api_keys;
pub mod badge;
pub mod bots;
pub mod breaker;
pub mod client_identity;
pub mod config;
pub mod cors;
pub mod edge_cache;
pub mod export;
pub mod hashing;
pub mod history;
pub mod hll;
pub mod metric_store;
pub mod rate_policy;
pub mod request_log;
pub mod reshard;
pub mod rfc3339;
pub mod scripts;
pub mod token_bucket;
pub mod token_bucket_script;
pub mod top_pages;
pub mod validation;
pub mod visit_store;
