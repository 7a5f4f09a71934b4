//! One JSON line per request on stdout: component, route, status, shards touched, latency,
//! and the cache, limiter and breaker outcomes. No client address, page id or secret is
//! written.
//!
//! Outcomes are noted where they happen (`shard_io`, `rate_limit`, `visits`) into a
//! module-level record. That is sound only because of Spin's execution model: every request
//! gets a fresh instance, so the record starts empty and belongs to this request alone.

use std::cell::RefCell;
use std::time::Instant;

use crate::http_io::Request;
use tally_core::request_log::{Line, Outcomes};

thread_local! {
    static OUTCOMES: RefCell<Outcomes> = RefCell::new(Outcomes::default());
}

/// A shard was called (or refused by its breaker).
pub fn note_shard(shard: &str) {
    OUTCOMES.with(|o| {
        let mut o = o.borrow_mut();
        if !o.shards.iter().any(|s| s == shard) {
            o.shards.push(shard.to_string());
        }
    });
}

/// A shard's breaker was open, so it was not called.
pub fn note_breaker_open(shard: &str) {
    OUTCOMES.with(|o| o.borrow_mut().breaker_open.push(shard.to_string()));
}

/// How the edge cache served the read: `hit`, `miss` or `stale`.
pub fn note_cache(outcome: &'static str) {
    OUTCOMES.with(|o| o.borrow_mut().cache = Some(outcome));
}

/// The request was an administrator's (an export or an erase).
pub fn note_admin() {
    OUTCOMES.with(|o| o.borrow_mut().admin = true);
}

/// A browser write came from a bot of this kind and was not counted.
pub fn note_bot(kind: &'static str) {
    OUTCOMES.with(|o| o.borrow_mut().bot = Some(kind));
}

/// What the rate limiter decided.
pub fn note_limiter(outcome: &'static str) {
    OUTCOMES.with(|o| o.borrow_mut().limiter = Some(outcome));
}

/// The route the log line names: the method and Spin's matched route pattern (never the path,
/// which holds page ids).
fn route(req: &Request) -> String {
    let pattern = req.last_header_value("spin-matched-route");
    let mut route = req.method().to_string();
    route.push(' ');
    route.push_str(pattern.as_deref().unwrap_or("?"));
    route
}

/// Writes the request's log line, with the outcomes noted while it was handled. Called after
/// the answer is sent, so reading the route header is not on the client's path.
pub(crate) fn write_line(component: &str, req: &Request, status: u16, started: Instant) {
    let outcomes = OUTCOMES.with(|o| std::mem::take(&mut *o.borrow_mut()));
    let route = route(req);
    let line = Line {
        component,
        route: &route,
        status,
        latency_micros: u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX),
        outcomes: &outcomes,
    };
    write_stdout(&line.to_json_line());
}

/// Writes the line to stdout directly: `println!` costs several host calls per line through
/// the C library's stdio, a measurable share of a request here.
fn write_stdout(bytes: &[u8]) {
    let _ = crate::http_io::write_all(&wasi::cli::stdout::get_stdout(), bytes);
}
