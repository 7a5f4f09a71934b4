//! What a request costs the runtime on a healthy system, counted by the host: key-value writes
//! (each a durable SQLite transaction on Spin) and Redis connections (each a new TCP
//! connection on Spin). A visit, a cached read and a metric ingest write nothing to the node's
//! store and open at most one connection per shard they touch; writes happen only when node
//! state really changes (a cache entry filled or dropped, a breaker recording failures).

mod support;

use support::{
    get, get_with, home_shard, io_of, limiter_shard_for_loopback, post_with, read_until_cached,
    tally_host,
};
use tally_core::rate_policy::RouteClass;
use tally_host::shards::RedisShards;

/// A page that lives on `shard` (`on == true`) or on another shard (`on == false`).
fn page_where(shards: &RedisShards, shard: &str, on: bool) -> String {
    (0..1000)
        .map(|i| format!("page-{i}"))
        .find(|p| (home_shard(shards, p).name() == shard) == on)
        .unwrap()
}

fn limits_on() -> Vec<(&'static str, String)> {
    vec![
        ("rate_limit_writes", "1000000/1s".into()),
        ("rate_limit_reads", "1200/60s burst 1200".into()),
    ]
}

#[test]
fn a_visit_writes_nothing_and_connects_once_per_shard_it_touches() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits_on());
    let limiter = limiter_shard_for_loopback(&shards, RouteClass::Writes);
    let visit = |page: &str| post_with(&host.url(&format!("/visit/{page}")), &[], None);
    // Load the scripts on both shards (a shard's first call is EVALSHA, NOSCRIPT, EVAL).
    let together = page_where(&shards, &limiter, true);
    let apart = page_where(&shards, &limiter, false);
    visit(&together);
    visit(&apart);

    for _ in 0..3 {
        let (reply, io) = io_of(&host, || visit(&together));
        assert_eq!(reply.status, 200);
        assert_eq!(io.kv_writes, 0, "{io:?}");
        assert_eq!(
            io.redis_connects, 1,
            "bucket and page share a shard: {io:?}"
        );
        assert_eq!(
            io.redis_commands, 2,
            "the bucket's script and the visit's: {io:?}"
        );

        let (reply, io) = io_of(&host, || visit(&apart));
        assert_eq!(reply.status, 200);
        assert_eq!(io.kv_writes, 0, "{io:?}");
        assert_eq!(io.redis_connects, 2, "one connection per shard: {io:?}");
        assert_eq!(io.redis_commands, 2, "{io:?}");
    }
}

#[test]
fn an_unlimited_visit_is_one_connection_and_one_command() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    post_with(&host.url("/visit/home"), &[], None);
    let (reply, io) = io_of(&host, || post_with(&host.url("/visit/home"), &[], None));
    assert_eq!(reply.status, 200);
    assert_eq!(
        (io.kv_writes, io.redis_connects, io.redis_commands),
        (0, 1, 1),
        "{io:?}"
    );
}

#[test]
fn a_cached_read_touches_no_shard_and_writes_nothing() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits_on());
    let read = || get_with(&host.url("/visits/home"), &[]);
    let limiter = limiter_shard_for_loopback(&shards, RouteClass::Reads);
    let shards_touched = if home_shard(&shards, "home").name() == limiter {
        1
    } else {
        2
    };
    // Misses ask the shard until one of them stores the page: one write in all, which pays
    // for the reads after it.
    let mut writes = 0;
    loop {
        let (reply, io) = io_of(&host, read);
        if reply.json()["served_via"] == "cache" {
            break;
        }
        assert_eq!(
            io.redis_connects, shards_touched,
            "the bucket's and the page's: {io:?}"
        );
        writes += io.kv_writes;
    }
    assert_eq!(writes, 1);
    for _ in 0..5 {
        let (hit, io) = io_of(&host, read);
        assert_eq!(hit.json()["served_via"], "cache");
        assert_eq!(io.kv_writes, 0, "{io:?}");
        assert_eq!(io.redis_connects, 0, "{io:?}");
        assert_eq!(io.redis_commands, 0, "{io:?}");
    }
}

#[test]
fn a_metric_ingest_writes_nothing_unless_it_drops_a_cached_summary() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits_on());
    let ingest = || {
        let now = chrono_now();
        let body = format!(r#"{{"timestamp":"{now}","value":1.5,"type":"cpu"}}"#);
        post_with(&host.url("/metrics"), &[], Some(&body))
    };
    ingest();
    for _ in 0..3 {
        let (reply, io) = io_of(&host, ingest);
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(io.kv_writes, 0, "{io:?}");
        assert!(io.redis_connects <= 2, "{io:?}");
    }
    // Once this node caches a summary of the type, the next ingest of the type drops it (one
    // write), so this node's next summary includes the new sample. A later ingest writes only
    // if a summary read stored an entry again in between, and with nothing cached, nothing.
    let summary_url = host.url("/summary?type=cpu&period=all");
    read_until_cached(&summary_url);
    let (_, io) = io_of(&host, ingest);
    assert_eq!(io.kv_writes, 1, "{io:?}");
    assert_eq!(get(&summary_url).json()["count"], 5);
    let (_, io) = io_of(&host, ingest);
    assert!(
        io.kv_writes <= 1,
        "at most the entry the read above stored: {io:?}"
    );
    let (_, io) = io_of(&host, ingest);
    assert_eq!(io.kv_writes, 0, "{io:?}");
}

#[test]
fn a_failing_shard_is_written_down_and_an_open_breaker_fails_fast_without_writing() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("breaker_consecutive_failures", "2".into())]);
    let victim = home_shard(&shards, "home").name().to_string();
    shards.get_mut(&victim).unwrap().kill();
    let visit = || post_with(&host.url("/visit/home"), &[], None);
    for _ in 0..2 {
        let (reply, io) = io_of(&host, visit);
        assert_eq!(reply.status, 503);
        assert_eq!(io.kv_writes, 1, "the failure is recorded: {io:?}");
    }
    let (reply, io) = io_of(&host, visit);
    assert_eq!(reply.status, 503);
    assert_eq!(
        (io.kv_writes, io.redis_connects),
        (0, 0),
        "open: fails fast: {io:?}"
    );
}

/// Now as RFC 3339 UTC, from the system clock.
fn chrono_now() -> String {
    let ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    tally_core::rfc3339::format_unix_ms(ms)
}
