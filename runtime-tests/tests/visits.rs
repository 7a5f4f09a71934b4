//! Visit counting end to end: the real `visit` and `visits` components in the host, against
//! two real redis-server shards started by each test.

mod support;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use support::{
    command_calls, eventually, get, get_with, home_shard, parallel, post_with, read_until_cached,
    redis, stored_count, tally_host,
};
use tally_host::shards::RedisShards;

fn page_name(i: usize) -> String {
    format!("page-{i:03}")
}

#[test]
fn concurrent_visits_are_counted_exactly_on_the_right_shard() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let (visits, pages) = (10_000, 200);
    let statuses = parallel(visits, 64, |i| {
        support::post_with(
            &host.url(&format!("/visit/{}", page_name(i % pages))),
            &[],
            None,
        )
        .status
    });
    let refused: Vec<&u16> = statuses.iter().filter(|s| **s != 200).collect();
    assert!(
        refused.is_empty(),
        "every visit answered 200, not {refused:?}"
    );

    let mut total = 0;
    for p in 0..pages {
        let page = page_name(p);
        let home = home_shard(&shards, &page);
        assert_eq!(stored_count(home, &page), Some(50), "{page} on its shard");
        for other in shards.shards().iter().filter(|s| s.name() != home.name()) {
            assert_eq!(stored_count(other, &page), None, "{page} only on its shard");
        }
        total += stored_count(home, &page).unwrap();
    }
    assert_eq!(total, visits as u64);
    // Concurrent visits to one page write their counts through to the cache in any order;
    // the cache holds the exact count again within its TTL (5 s) at the latest.
    eventually(Duration::from_secs(7), || {
        (get(&host.url("/visits/page-007")).json()["count"] == 50).then_some(())
    });
}

#[test]
fn single_visit_answers_the_seed_shape_with_the_new_count() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    post_with(&host.url("/visit/home"), &[], None);
    let reply = post_with(&host.url("/visit/home"), &[], None);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status":"success","message":"Visit recorded for page home","count":2})
    );
}

#[test]
fn a_batch_makes_one_round_trip_per_shard() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    // Load the script on both shards first, so EVALSHA finds it.
    let warm = r#"{"visits":[{"page":"page-000"},{"page":"page-001"},{"page":"page-002"},{"page":"page-003"}]}"#;
    assert_eq!(post_with(&host.url("/visit"), &[], Some(warm)).status, 200);
    for shard in shards.shards() {
        redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query::<()>(&mut redis(shard))
            .unwrap();
    }
    let entries: Vec<String> = (0..100)
        .map(|i| format!(r#"{{"page":"{}","count":2}}"#, page_name(i)))
        .collect();
    let body = format!(r#"{{"visits":[{}]}}"#, entries.join(","));
    let reply = post_with(&host.url("/visit"), &[], Some(&body));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["total_added"], 200);
    for shard in shards.shards() {
        assert_eq!(
            support::command_calls(shard, "evalsha"),
            1,
            "shard {}",
            shard.name()
        );
        assert_eq!(
            support::command_calls(shard, "eval"),
            0,
            "shard {}",
            shard.name()
        );
    }
}

#[test]
fn a_chunked_batch_is_read_like_one_with_a_length() {
    // The host never shows a component `Transfer-Encoding` (Spin strips it too), so a body
    // without a length must still be read when the batch handler asks for it.
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(&shards, &[]);
    let body = r#"{"visits":[{"page":"chunked","count":5},{"page":"also","count":2}]}"#;
    let reply = support::post_chunked(&host.url("/visit"), body);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["total_added"], 7);
    assert_eq!(stored_count(&shards.shards()[0], "chunked"), Some(5));
}

#[test]
fn idempotent_retries_count_once_and_a_changed_body_is_422() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let key = [("idempotency-key", "6f1c2a9e-1d2b-4c55-9a0e-2f8b1f7c9d11")];
    let body = r#"{"visits":[{"page":"a","count":3},{"page":"b","count":1}]}"#;
    let first = post_with(&host.url("/visit"), &key, Some(body));
    let retry = post_with(&host.url("/visit"), &key, Some(body));
    assert_eq!(first.status, 200);
    assert_eq!(retry.status, 200);
    assert_eq!(retry.json()["replayed"], true);
    assert_eq!(first.json()["recorded"], retry.json()["recorded"]);
    assert_eq!(stored_count(home_shard(&shards, "a"), "a"), Some(3));

    let changed = r#"{"visits":[{"page":"a","count":4},{"page":"b","count":1}]}"#;
    let conflict = post_with(&host.url("/visit"), &key, Some(changed));
    assert_eq!(conflict.status, 422, "{}", conflict.body);
    assert_eq!(stored_count(home_shard(&shards, "a"), "a"), Some(3));

    let single_key = [("idempotency-key", "visit-home-1")];
    post_with(&host.url("/visit/home"), &single_key, None);
    let again = post_with(&host.url("/visit/home"), &single_key, None);
    assert_eq!(again.json()["count"], 1);
    assert_eq!(stored_count(home_shard(&shards, "home"), "home"), Some(1));
}

#[test]
fn reads_are_cached_within_the_ttl_and_refreshed_after() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("cache_ttl_ms", "300".into())]);
    let page = "cached-page";
    post_with(&host.url(&format!("/visit/{page}")), &[], None);
    let home = home_shard(&shards, page);
    // A visit writes nothing to the node's store: reads ask the shard until the node decides
    // the page is worth caching.
    let url = host.url(&format!("/visits/{page}"));
    let misses = read_until_cached(&url);
    assert!(!misses.is_empty(), "the first read asks the shard");
    for miss in &misses {
        assert_eq!(miss["served_via"], format!("redis_{}", home.name()));
        assert_eq!(miss["count"], 1);
    }
    assert_eq!(get(&url).json()["count"], 1);
    // Change the count behind Tally's back: a fresh cache entry keeps answering 1.
    redis::cmd("ZINCRBY")
        .arg("tally:pages")
        .arg(41)
        .arg(page)
        .query::<f64>(&mut redis(home))
        .unwrap();
    let refreshed = eventually(Duration::from_secs(10), || {
        let body = get(&host.url(&format!("/visits/{page}"))).json();
        match body["served_via"].as_str() {
            Some("cache") => {
                assert_eq!(body["count"], 1, "a cached answer is the cached count");
                None
            }
            _ => Some(body),
        }
    });
    assert_eq!(refreshed["served_via"], format!("redis_{}", home.name()));
    assert_eq!(refreshed["count"], 42);
}

#[test]
fn a_dead_shard_is_answered_from_a_stale_entry_or_503() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("cache_ttl_ms", "100".into())]);
    let page = "stale-page";
    post_with(&host.url(&format!("/visit/{page}")), &[], None);
    // Read until this node has stored the page (one miss in ADMIT_ONE_IN stores it).
    eventually(Duration::from_secs(20), || {
        assert_eq!(
            get(&host.url(&format!("/visits/{page}"))).json()["count"],
            1
        );
        let kv = host.app().key_value_stores();
        kv.peek("default", &format!("visits:{page}")).map(drop)
    });
    let home = home_shard(&shards, page).name().to_string();
    let never_cached = (0..100)
        .map(page_name)
        .find(|p| home_shard(&shards, p).name() == home)
        .unwrap();
    shards.get_mut(&home).unwrap().kill();

    let stale = eventually(Duration::from_secs(10), || {
        let reply = get(&host.url(&format!("/visits/{page}")));
        (reply.json()["served_via"] == "stale_cache").then_some(reply)
    });
    assert_eq!(stale.status, 200);
    assert_eq!(stale.json()["count"], 1);
    assert!(stale.header("age").is_some(), "stale answers carry Age");

    let missing = get(&host.url(&format!("/visits/{never_cached}")));
    assert_eq!(missing.status, 503, "{}", missing.body);
    assert_eq!(
        missing.header("content-type"),
        Some("application/problem+json")
    );
    assert!(missing.header("retry-after").is_some());
}

#[test]
fn unknown_pages_count_zero() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let reply = get(&host.url("/visits/never-visited")).json();
    assert_eq!(reply["count"], 0);
    assert_eq!(reply["uniques_today"], 0);
}

#[test]
fn unique_visitors_are_within_hyperloglog_error() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let visitors = 10_000;
    parallel(visitors, 32, |i| {
        let ua = format!("browser-{i}");
        let url = host.url("/visit/landing");
        post_with(&url, &[("user-agent", ua.as_str())], None).status
    });
    // The same visitor again adds a visit but not a unique.
    post_with(
        &host.url("/visit/landing"),
        &[("user-agent", "browser-1")],
        None,
    );
    let reply = get(&host.url("/visits/landing")).json();
    assert_eq!(reply["count"], visitors as u64 + 1);
    let uniques = reply["uniques_today"].as_f64().unwrap();
    let error = (uniques - visitors as f64).abs() / visitors as f64;
    assert!(error < 0.025, "uniques {uniques} vs {visitors}");
}

/// The one key matching `pattern` on the shard, with its time to live in seconds.
fn only_key_and_ttl(conn: &mut redis::Connection, pattern: &str) -> (String, i64) {
    let keys: Vec<String> = redis::cmd("KEYS").arg(pattern).query(conn).unwrap();
    let [key] = &keys[..] else {
        panic!("{pattern}: {keys:?}")
    };
    let ttl: i64 = redis::cmd("TTL").arg(key).query(conn).unwrap();
    (key.clone(), ttl)
}

#[test]
fn a_known_visitor_costs_no_expiry_and_no_salt_is_stored() {
    let shards = RedisShards::start(1).unwrap();
    let shard = &shards.shards()[0];
    let host = tally_host(&shards, &[]);
    let visit = |ua: &str| {
        let reply = post_with(&host.url("/visit/home"), &[("user-agent", ua)], None);
        assert_eq!(reply.status, 200);
    };
    visit("first");
    let mut conn = redis(shard);
    // The day's HyperLogLog lives as long as the day's history (400 days by default).
    let (uniques_key, ttl) = only_key_and_ttl(&mut conn, "tally:u:*");
    assert!(
        ttl > 399 * 86_400 && ttl <= 401 * 86_400,
        "{uniques_key}: ttl {ttl}"
    );
    // The visitor's element is derived in the component from the secret and the day: no salt
    // (nor anything else about a visitor) is kept on the shard.
    let salts: Vec<String> = redis::cmd("KEYS")
        .arg("tally:salt:*")
        .query(&mut conn)
        .unwrap();
    assert!(salts.is_empty(), "{salts:?}");

    // The same visitor again: counted, but no new unique and no EXPIREAT at all.
    let _: () = redis::cmd("CONFIG")
        .arg("RESETSTAT")
        .query(&mut conn)
        .unwrap();
    visit("first");
    assert_eq!(command_calls(shard, "expireat"), 0);
    assert_eq!(command_calls(shard, "expire"), 0);
    // A new visitor changes the page's and the site's HyperLogLogs: their expiry is set again
    // (to the same instant), and nothing else's.
    visit("second");
    assert_eq!(command_calls(shard, "expireat"), 2);
    let reply = get(&host.url("/visits/home")).json();
    assert_eq!(
        (reply["count"].as_u64(), reply["uniques_today"].as_u64()),
        (Some(3), Some(2))
    );
}

#[test]
fn top_pages_merge_across_shards() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let body = r#"{"visits":[{"page":"a","count":5},{"page":"b","count":9},{"page":"c","count":1},{"page":"d","count":7}]}"#;
    post_with(&host.url("/visit"), &[], Some(body));
    let top = get(&host.url("/visits?top=3")).json();
    assert_eq!(
        top["pages"],
        serde_json::json!([
            {"page":"b","count":9}, {"page":"d","count":7}, {"page":"a","count":5}
        ])
    );
    assert_eq!(get(&host.url("/visits?top=0")).status, 400);
    assert_eq!(get(&host.url("/visits?top=101")).status, 400);
    assert_eq!(get(&host.url("/visits")).status, 400);
}

#[test]
fn the_badge_is_well_formed_svg_that_escapes_user_strings() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    post_with(&host.url("/visit/blog"), &[], None);
    let label = "%3Cscript%3Ealert(%22x%22)%3C%2Fscript%3E%20%27quoted%27";
    let reply = get(&host.url(&format!("/visits/blog/badge.svg?label={label}")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.header("content-type"), Some("image/svg+xml"));
    assert_eq!(reply.header("cache-control"), Some("no-cache"));
    let doc = roxmltree::Document::parse(&reply.body).expect("well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    assert!(doc.descendants().all(|n| n.tag_name().name() != "script"));
    let texts: Vec<&str> = doc.descendants().filter_map(|n| n.text()).collect();
    assert!(texts.contains(&"<script>alert(\"x\")</script> 'quoted'"));
    assert!(texts.contains(&"1"));
    let bad_color = get(&host.url("/visits/blog/badge.svg?color=red%22%20onload%3D%22x"));
    assert_eq!(bad_color.status, 400);
}

/// A request that must be refused: URL, headers, body, expected status.
type BadInput<'a> = (String, Vec<(&'a str, &'a str)>, Option<String>, u16);

#[test]
fn deeply_nested_json_is_answered_never_a_trapped_instance() {
    // The deepest nesting a 64 KiB batch can carry, in a field the component ignores, and the
    // deepest in the field it reads: answered (200 and 422), never a trapped instance (500).
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let depth = 30_000;
    let ignored = format!(
        r#"{{"visits":[{{"page":"deep"}}],"x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    let reply = post_with(&host.url("/visit"), &[], Some(&ignored));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let read = format!(r#"{{"visits":{}{}}}"#, "[".repeat(depth), "]".repeat(depth));
    let reply = post_with(&host.url("/visit"), &[], Some(&read));
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(stored_count(home_shard(&shards, "deep"), "deep"), Some(1));
}

#[test]
fn bad_input_gets_the_right_4xx_and_writes_nothing() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let visit = host.url("/visit");
    let json = [("content-type", "application/json")];
    let long_page = "p".repeat(300);
    let too_many: Vec<String> = (0..1001).map(|i| format!(r#"{{"page":"p{i}"}}"#)).collect();
    let too_many = format!(r#"{{"visits":[{}]}}"#, too_many.join(","));
    let huge = format!(r#"{{"visits":[{{"page":"{}"}}]}}"#, "x".repeat(70_000));
    let cases: Vec<BadInput> = vec![
        (host.url("/visit/bad%zz"), vec![], None, 400),
        (host.url("/visit/ctl%01char"), vec![], None, 400),
        (host.url(&format!("/visit/{long_page}")), vec![], None, 400),
        (
            host.url("/visit/ok"),
            vec![("idempotency-key", "has space")],
            None,
            400,
        ),
        (visit.clone(), json.to_vec(), Some("{bad".into()), 400),
        (
            visit.clone(),
            json.to_vec(),
            Some(r#"{"pages":[]}"#.into()),
            422,
        ),
        (
            visit.clone(),
            json.to_vec(),
            Some(r#"{"visits":[]}"#.into()),
            422,
        ),
        (
            visit.clone(),
            json.to_vec(),
            Some(r#"{"visits":[{"page":"a","count":0}]}"#.into()),
            422,
        ),
        (
            visit.clone(),
            json.to_vec(),
            Some(r#"{"visits":[{"page":"a"},{"page":""}]}"#.into()),
            400,
        ),
        (visit.clone(), json.to_vec(), Some(too_many), 413),
        (visit.clone(), json.to_vec(), Some(huge), 413),
        (
            visit.clone(),
            vec![("content-type", "text/plain")],
            Some(r#"{"visits":[{"page":"a"}]}"#.into()),
            415,
        ),
    ];
    for (url, headers, body, expected) in cases {
        let reply = match &body {
            Some(body) => support::post_raw(&url, &headers, body),
            None => post_with(&url, &headers, None),
        };
        assert_eq!(reply.status, expected, "{url} {headers:?}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json"),
            "{url}"
        );
    }
    assert_eq!(get_with(&host.url("/visit/x"), &[]).status, 405);
    for shard in shards.shards() {
        let size: u64 = redis::cmd("DBSIZE").query(&mut redis(shard)).unwrap();
        assert_eq!(size, 0, "shard {} was written to", shard.name());
    }
}

#[test]
fn killing_a_shard_mid_load_loses_no_acknowledged_visit() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let pages = 200;
    let sent: Vec<AtomicUsize> = (0..pages).map(|_| AtomicUsize::new(0)).collect();
    let acked: Vec<AtomicUsize> = (0..pages).map(|_| AtomicUsize::new(0)).collect();
    let failures = AtomicUsize::new(0);
    let progress = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let victim = home_shard(&shards, &page_name(0)).name().to_string();

    std::thread::scope(|scope| {
        for t in 0..64 {
            let (sent, acked, failures, progress, stop, host) =
                (&sent, &acked, &failures, &progress, &stop, &host);
            scope.spawn(move || {
                let mut i = t;
                while !stop.load(Ordering::Relaxed) {
                    let p = i % pages;
                    i += 64;
                    sent[p].fetch_add(1, Ordering::SeqCst);
                    let reply =
                        post_with(&host.url(&format!("/visit/{}", page_name(p))), &[], None);
                    match reply.status {
                        200 => {
                            acked[p].fetch_add(1, Ordering::SeqCst);
                        }
                        503 => {
                            assert_eq!(
                                reply.header("content-type"),
                                Some("application/problem+json")
                            );
                            failures.fetch_add(1, Ordering::SeqCst);
                        }
                        other => panic!("unexpected status {other}: {}", reply.body),
                    }
                    progress.fetch_add(1, Ordering::SeqCst);
                }
            });
        }
        let wait_for = |n: usize| {
            eventually(Duration::from_secs(60), || {
                (progress.load(Ordering::SeqCst) >= n).then_some(())
            })
        };
        wait_for(2_000);
        shards.get_mut(&victim).unwrap().kill();
        let at_kill = progress.load(Ordering::SeqCst);
        eventually(Duration::from_secs(60), || {
            (failures.load(Ordering::SeqCst) > 0).then_some(())
        });
        shards.get_mut(&victim).unwrap().restart().unwrap();
        wait_for(at_kill + 2_000);
        stop.store(true, Ordering::SeqCst);
    });

    assert!(failures.load(Ordering::SeqCst) > 0, "the kill was noticed");
    for p in 0..pages {
        let page = page_name(p);
        let stored = stored_count(home_shard(&shards, &page), &page).unwrap_or(0) as usize;
        let (acked, sent) = (
            acked[p].load(Ordering::SeqCst),
            sent[p].load(Ordering::SeqCst),
        );
        assert!(
            stored >= acked,
            "{page}: {stored} stored < {acked} acknowledged"
        );
        assert!(stored <= sent, "{page}: {stored} stored > {sent} sent");
    }
}
