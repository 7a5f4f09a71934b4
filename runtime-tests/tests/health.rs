//! `GET /health` through the host with the application's own `spin.toml` and real shards.

mod support;

use std::time::Duration;

use support::{get, post, start_with, tally_manifest};
use tally_host::runtime::HostOptions;
use tally_host::shards::RedisShards;
use tally_host::spin_redis::RedisPolicy;

fn host_for(shards: &RedisShards, reuse: bool) -> tally_host::local::LocalHost {
    let options = HostOptions {
        redis: RedisPolicy {
            reuse_connections: reuse,
            connect_timeout: Duration::from_millis(500),
            command_timeout: Duration::from_millis(500),
            ..RedisPolicy::default()
        },
        ..HostOptions::default()
    };
    start_with(
        &tally_manifest(),
        &[("shards", shards.shard_list())],
        options,
    )
}

fn shard<'a>(body: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    body["shards"]
        .as_array()
        .and_then(|s| s.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("shard {name} missing from {body}"))
}

#[test]
fn all_shards_up_is_200_ok_naming_each_shard_with_latency() {
    let shards = RedisShards::start(2).unwrap();
    let host = host_for(&shards, true);
    let reply = get(&host.url("/health"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("application/json"));
    let body = reply.json();
    assert_eq!(body["status"], "ok");
    for s in shards.shards() {
        let seen = shard(&body, s.name());
        assert_eq!(seen["reachable"], true);
        assert_eq!(seen["address"], s.url());
        assert!(seen["latency_ms"].as_f64().unwrap() >= 0.0);
    }
}

#[test]
fn one_shard_down_is_degraded_then_both_down_is_503() {
    let mut shards = RedisShards::start(2).unwrap();
    // Fresh connections per request, as Spin does, so each probe sees the current state.
    let host = host_for(&shards, false);
    shards.get_mut("a").unwrap().kill();

    let reply = get(&host.url("/health"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "degraded");
    assert_eq!(shard(&body, "a")["reachable"], false);
    assert_eq!(shard(&body, "b")["reachable"], true);

    shards.get_mut("b").unwrap().kill();
    let reply = get(&host.url("/health"));
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "down");
    assert_eq!(shard(&body, "b")["reachable"], false);
}

#[test]
fn reused_connections_notice_a_killed_shard_and_its_return() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = host_for(&shards, true);
    assert_eq!(get(&host.url("/health")).json()["status"], "ok");
    shards.get_mut("b").unwrap().kill();
    assert_eq!(get(&host.url("/health")).json()["status"], "degraded");
    shards.get_mut("b").unwrap().restart().unwrap();
    assert_eq!(get(&host.url("/health")).json()["status"], "ok");
}

#[test]
fn an_unresponsive_shard_is_reported_within_the_command_timeout() {
    let shards = RedisShards::start(2).unwrap();
    let host = host_for(&shards, false);
    // SIGSTOP keeps the port open but nothing answers: only the host's time bounds end the wait.
    let pid = shards.get("a").unwrap().pid().unwrap() as i32;
    unsafe { libc::kill(pid, libc::SIGSTOP) };
    let reply = get(&host.url("/health"));
    unsafe { libc::kill(pid, libc::SIGCONT) };
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(shard(&reply.json(), "a")["reachable"], false);
}

#[test]
fn liveness_answers_without_redis() {
    let mut shards = RedisShards::start(1).unwrap();
    let host = host_for(&shards, false);
    shards.get_mut("a").unwrap().kill();
    let reply = get(&host.url("/health/live"));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json()["status"], "live");
}

#[test]
fn wrong_method_is_405_problem_with_allow() {
    let shards = RedisShards::start(1).unwrap();
    let host = host_for(&shards, true);
    let reply = post(&host.url("/health"), "application/json", "{}");
    assert_eq!(reply.status, 405);
    assert_eq!(
        reply.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    assert_eq!(reply.json()["status"], 405);
}

#[test]
fn unknown_route_is_404() {
    let shards = RedisShards::start(1).unwrap();
    let host = host_for(&shards, true);
    assert_eq!(get(&host.url("/nope")).status, 404);
}

#[test]
fn metrics_and_summary_are_routed_to_their_components() {
    let shards = RedisShards::start(1).unwrap();
    let host = host_for(&shards, true);
    // Each component answers a method it does not serve with its own 405 and Allow list.
    let reply = post(&host.url("/summary"), "application/json", "{}");
    assert_eq!(reply.status, 405, "{}", reply.body);
    assert_eq!(reply.header("allow"), Some("GET, HEAD"));
    let reply = get(&host.url("/metrics"));
    assert_eq!(reply.status, 200, "{}", reply.body);
}
