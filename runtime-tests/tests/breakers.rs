//! Per-shard circuit breakers end to end: a dead shard's breaker opens within the configured
//! number of failures, its pages fail fast without connecting while other shards' pages keep
//! working, and it closes again through a half-open probe once the shard is back.

mod support;

use std::time::Duration;

use support::{eventually, get, home_shard, post_with, tally_host};
use tally_host::shards::RedisShards;

fn breaker_phase(host: &tally_host::local::LocalHost, shard: &str) -> String {
    let health = get(&host.url("/health")).json();
    health["shards"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == shard)
        .map(|s| s["breaker"].as_str().unwrap().to_string())
        .unwrap()
}

#[test]
fn a_dead_shards_breaker_opens_fails_fast_and_closes_after_a_probe() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(
        &shards,
        &[
            ("breaker_consecutive_failures", "3".into()),
            ("breaker_open_ms", "3000".into()),
        ],
    );
    let victim = home_shard(&shards, "victim-page").name().to_string();
    let healthy_page = (0..100)
        .map(|i| format!("other-{i}"))
        .find(|p| home_shard(&shards, p).name() != victim)
        .unwrap();
    let visit = |page: &str| post_with(&host.url(&format!("/visit/{page}")), &[], None);
    assert_eq!(visit("victim-page").status, 200);
    assert_eq!(breaker_phase(&host, &victim), "closed");

    shards.get_mut(&victim).unwrap().kill();
    for _ in 0..3 {
        assert_eq!(visit("victim-page").status, 503);
    }
    assert_eq!(breaker_phase(&host, &victim), "open");

    // Back up, but the breaker is still open: no connection reaches the shard.
    shards.get_mut(&victim).unwrap().restart().unwrap();
    let before = support::info_field(
        shards.get(&victim).unwrap(),
        "stats",
        "total_connections_received",
    )
    .unwrap()
    .parse::<u64>()
    .unwrap();
    let fast = visit("victim-page");
    assert_eq!(fast.status, 503);
    assert!(fast.header("retry-after").is_some());
    assert_eq!(
        support::info_field(
            shards.get(&victim).unwrap(),
            "stats",
            "total_connections_received"
        )
        .unwrap()
        .parse::<u64>()
        .unwrap(),
        before + 1,
        "only this test's own INFO connection reached the shard"
    );
    assert_eq!(
        visit(&healthy_page).status,
        200,
        "other shards keep working"
    );

    // After the open period a probe goes through and closes the breaker.
    eventually(Duration::from_secs(20), || {
        (visit("victim-page").status == 200).then_some(())
    });
    assert_eq!(breaker_phase(&host, &victim), "closed");
}
