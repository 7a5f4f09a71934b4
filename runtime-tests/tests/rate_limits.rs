//! Rate limiting end to end: the token bucket in Redis on the shard the client's identity
//! hashes to, through the real components and real shards.

mod support;

use std::time::Duration;

use support::{eventually, get_with, home_shard, parallel, post_with, tally_host};
use tally_core::rate_policy::RouteClass;
use tally_host::shards::RedisShards;

fn limits(writes: &str, reads: &str) -> Vec<(&'static str, String)> {
    vec![
        ("rate_limit_writes", writes.to_string()),
        ("rate_limit_reads", reads.to_string()),
    ]
}

#[test]
fn a_burst_of_64_concurrent_requests_gets_exactly_the_capacity() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits("10/600s", "off"));
    let statuses = parallel(64, 64, |i| {
        post_with(&host.url(&format!("/visit/burst-{i}")), &[], None).status
    });
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 10);
    assert_eq!(statuses.iter().filter(|s| **s == 429).count(), 54);
}

#[test]
fn answers_carry_the_rate_limit_headers_and_429_is_a_problem_with_retry_after() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits("2/60s", "off"));
    let first = post_with(&host.url("/visit/a"), &[], None);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("ratelimit-policy"),
        Some(r#""writes";q=2;w=60"#)
    );
    assert!(first
        .header("ratelimit")
        .unwrap()
        .starts_with(r#""writes";r=1;"#));
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    assert!(first.header("x-ratelimit-reset").is_some());
    assert!(first.header("retry-after").is_none());

    post_with(&host.url("/visit/a"), &[], None);
    let refused = post_with(&host.url("/visit/a"), &[], None);
    assert_eq!(refused.status, 429);
    assert_eq!(
        refused.header("content-type"),
        Some("application/problem+json")
    );
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    let retry_after: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
}

#[test]
fn refill_admits_again() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits("5/1s", "off"));
    for _ in 0..5 {
        assert_eq!(post_with(&host.url("/visit/r"), &[], None).status, 200);
    }
    let refused = post_with(&host.url("/visit/r"), &[], None);
    assert_eq!(refused.status, 429);
    assert_eq!(refused.header("retry-after"), Some("1"));
    eventually(Duration::from_secs(10), || {
        (post_with(&host.url("/visit/r"), &[], None).status == 200).then_some(())
    });
}

#[test]
fn a_blocked_client_costs_no_redis_commands() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits("3/600s", "off"));
    for _ in 0..3 {
        post_with(&host.url("/visit/b"), &[], None);
    }
    assert_eq!(post_with(&host.url("/visit/b"), &[], None).status, 429);
    let before = evalsha_calls(&shards);
    for _ in 0..20 {
        assert_eq!(post_with(&host.url("/visit/b"), &[], None).status, 429);
    }
    let after = evalsha_calls(&shards);
    assert_eq!(before, after, "no script ran for a remembered block");
}

#[test]
fn a_batch_costs_its_visits_and_one_that_can_never_fit_is_413() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &limits("10/600s", "off"));
    let big = r#"{"visits":[{"page":"a","count":11}]}"#;
    let reply = post_with(&host.url("/visit"), &[], Some(big));
    assert_eq!(reply.status, 413, "{}", reply.body);
    let fits = r#"{"visits":[{"page":"a","count":6}]}"#;
    assert_eq!(post_with(&host.url("/visit"), &[], Some(fits)).status, 200);
    // 4 tokens left: a batch of 6 is refused whole.
    assert_eq!(post_with(&host.url("/visit"), &[], Some(fits)).status, 429);
    assert_eq!(
        support::stored_count(home_shard(&shards, "a"), "a"),
        Some(6)
    );
}

#[test]
fn forwarded_for_counts_only_through_trusted_proxies() {
    let shards = RedisShards::start(2).unwrap();
    // Untrusted peer (no proxies configured): X-Forwarded-For is ignored, one shared bucket.
    let host = tally_host(&shards, &limits("2/600s", "off"));
    let visit =
        |xff: &str| post_with(&host.url("/visit/x"), &[("x-forwarded-for", xff)], None).status;
    assert_eq!(visit("198.51.100.1"), 200);
    assert_eq!(visit("198.51.100.2"), 200);
    assert_eq!(visit("198.51.100.3"), 429);
    drop(host);

    let shards = RedisShards::start(2).unwrap();
    let mut vars = limits("2/600s", "off");
    vars.push(("trusted_proxies", "127.0.0.1/32".into()));
    let host = tally_host(&shards, &vars);
    let visit =
        |xff: &str| post_with(&host.url("/visit/x"), &[("x-forwarded-for", xff)], None).status;
    assert_eq!(visit("203.0.113.7"), 200);
    assert_eq!(visit("203.0.113.7"), 200);
    assert_eq!(
        visit("203.0.113.7"),
        429,
        "the client behind the proxy is limited"
    );
    assert_eq!(
        visit("203.0.113.8"),
        200,
        "another client has its own bucket"
    );
    // A forged chain: the client claims to be 203.0.113.8, the proxy appends the real peer.
    assert_eq!(
        visit("203.0.113.8, 203.0.113.7"),
        429,
        "forging cannot borrow a bucket"
    );
}

#[test]
fn cached_reads_are_not_charged_but_every_shard_read_is() {
    let shards = RedisShards::start(2).unwrap();
    // The node admits a page to its cache one miss in 16 (`edge_cache::ADMIT_ONE_IN`): a
    // bucket of 400 makes "no admission before it runs dry" a (15/16)^400 < 1e-11 event.
    const CAPACITY: u64 = 400;
    let host = tally_host(&shards, &limits("off", &format!("{CAPACITY}/60000s")));
    let read = |page: &str| get_with(&host.url(&format!("/visits/{page}")), &[]);
    let remaining = |reply: &support::Reply| -> u64 {
        reply
            .header("x-ratelimit-remaining")
            .unwrap()
            .parse()
            .unwrap()
    };
    // Reads that ask the shard are charged, with the limiter's headers, until the node caches
    // the page.
    let misses = support::read_until_cached(&host.url("/visits/popular")).len() as u64;
    assert!(misses >= 1);
    // Reads served from the node's cache call no shard: not charged, no limiter headers.
    for _ in 0..20 {
        let hit = read("popular");
        assert_eq!(hit.status, 200);
        assert_eq!(hit.json()["served_via"], "cache");
        assert_eq!(hit.header("x-ratelimit-remaining"), None);
    }
    let first_other = read("other-0");
    assert_eq!(
        remaining(&first_other),
        CAPACITY - misses - 1,
        "only the misses were charged"
    );
    // Reads that must ask a shard spend the bucket until it is empty.
    let refused = (1..=CAPACITY)
        .map(|i| read(&format!("other-{i}")))
        .find(|reply| reply.status == 429)
        .expect("the bucket runs out");
    assert!(refused.header("retry-after").is_some());
    // A blocked client is refused whatever needs a shard, but may still read what the cache
    // holds: that costs no shard call, and no more than the 429 would.
    assert_eq!(read("never-read").status, 429);
    assert_eq!(read("popular").json()["served_via"], "cache");
}

#[test]
fn an_unreachable_limiter_fails_open_by_default_and_closed_when_asked() {
    for (mode, expected) in [("open", 200), ("closed", 503)] {
        let mut shards = RedisShards::start(2).unwrap();
        let mut vars = limits("off", "100/60s");
        vars.push(("rate_limit_fail_mode", mode.into()));
        let host = tally_host(&shards, &vars);
        let limiter = support::limiter_shard_for_loopback(&shards, RouteClass::Reads);
        let page = (0..100)
            .map(|i| format!("p{i}"))
            .find(|p| home_shard(&shards, p).name() != limiter)
            .unwrap();
        shards.get_mut(&limiter).unwrap().kill();
        let reply = get_with(&host.url(&format!("/visits/{page}")), &[]);
        assert_eq!(reply.status, expected, "{mode}: {}", reply.body);
        assert_eq!(
            reply.header("x-ratelimit-status"),
            Some(format!("fail-{mode}").as_str())
        );
    }
}

/// `EVALSHA` calls each shard has run so far.
fn evalsha_calls(shards: &RedisShards) -> Vec<u64> {
    shards
        .shards()
        .iter()
        .map(|s| support::command_calls(s, "evalsha"))
        .collect()
}
