//! Visits over time through the real components on real shards: history and site totals exact
//! against a reference computed here from random visits spread over many days and pages
//! (written with server-side batches that name their time, so no clock is moved and nothing
//! sleeps), unique visitors merged across shards within HyperLogLog error, the merge itself
//! equal to Redis's own, bounded reads, paging through every page, and every history key's
//! expiry.

mod support;

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use support::{date, get, get_with, now_ms, post_with, redis, tally_host, DAY_MS};
use tally_core::hll::union_count;
use tally_host::shards::RedisShards;

fn at(day: i64, hour: i64) -> String {
    tally_core::rfc3339::format_unix_ms(day * DAY_MS + hour * 3_600_000 + 60_000)
}

/// Random visits: (page, day, hour, count), over `days` days ending yesterday.
fn random_visits(
    rng: &mut StdRng,
    pages: usize,
    days: i64,
    n: usize,
) -> Vec<(String, i64, i64, u64)> {
    let today = now_ms() / DAY_MS;
    (0..n)
        .map(|_| {
            (
                format!("p{}", rng.random_range(0..pages)),
                today - rng.random_range(1..=days),
                rng.random_range(0..24),
                rng.random_range(1..=5),
            )
        })
        .collect()
}

fn record(host: &tally_host::local::LocalHost, visits: &[(String, i64, i64, u64)]) {
    for chunk in visits.chunks(500) {
        let entries: Vec<serde_json::Value> = chunk
            .iter()
            .map(|(page, day, hour, count)| {
                serde_json::json!({"page": page, "count": count, "at": at(*day, *hour)})
            })
            .collect();
        let body = serde_json::json!({ "visits": entries }).to_string();
        let reply = post_with(&host.url("/visit"), &[], Some(&body));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
}

#[test]
fn history_and_site_totals_are_exact_against_a_reference() {
    let shards = RedisShards::start(3).unwrap();
    let host = tally_host(&shards, &[("cache_ttl_ms", "0".into())]);
    let mut rng = StdRng::seed_from_u64(15);
    let visits = random_visits(&mut rng, 40, 60, 3_000);
    record(&host, &visits);

    let today = now_ms() / DAY_MS;
    let (first, last) = (today - 45, today - 1);
    let mut per_page_day: BTreeMap<(String, i64), u64> = BTreeMap::new();
    let mut per_day: BTreeMap<i64, u64> = BTreeMap::new();
    let mut per_page_in_range: BTreeMap<String, u64> = BTreeMap::new();
    for (page, day, _, count) in &visits {
        *per_page_day.entry((page.clone(), *day)).or_default() += count;
        *per_day.entry(*day).or_default() += count;
        if (first..=last).contains(day) {
            *per_page_in_range.entry(page.clone()).or_default() += count;
        }
    }
    let range = format!("from={}&to={}", date(first), date(last));

    // A page's daily history: every day of the range, missing days as zeros.
    for page in ["p0", "p7", "p39"] {
        let series = get(&host.url(&format!("/visits/{page}/history?{range}"))).json();
        let series = series.as_array().unwrap();
        assert_eq!(series.len(), 45);
        for (i, point) in series.iter().enumerate() {
            let day = first + i as i64;
            assert_eq!(point["t"], date(day));
            let expected = per_page_day
                .get(&(page.to_string(), day))
                .copied()
                .unwrap_or(0);
            assert_eq!(point["visits"], expected, "{page} on {}", date(day));
            assert_eq!(point["uniques"], 0, "batches count no unique visitors");
        }
    }

    // The site's series, merged across the three shards.
    let site = get(&host.url(&format!("/stats/history?{range}"))).json();
    let points = site["points"].as_array().unwrap();
    assert_eq!(points.len(), 45);
    for (i, point) in points.iter().enumerate() {
        let day = first + i as i64;
        assert_eq!(
            point["visits"],
            per_day.get(&day).copied().unwrap_or(0),
            "{}",
            date(day)
        );
    }
    assert_eq!(site["unavailable_shards"], serde_json::json!([]));

    // The site's totals and top pages over the range.
    let stats = get(&host.url(&format!("/stats?{range}&top=5"))).json();
    let total: u64 = (first..=last)
        .map(|d| per_day.get(&d).copied().unwrap_or(0))
        .sum();
    assert_eq!(stats["visits"], total);
    let mut ranked: Vec<(String, u64)> = per_page_in_range.into_iter().collect();
    ranked.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let top: Vec<(String, u64)> = stats["top_pages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["page"].as_str().unwrap().to_string(),
                p["count"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(top, ranked[..5].to_vec());
    assert_eq!(stats["from"], date(first));
    assert_eq!(stats["to"], date(last));
}

#[test]
fn the_hll_merge_is_exactly_redis_own() {
    let shards = RedisShards::start(1).unwrap();
    let mut conn = redis(&shards.shards()[0]);
    let mut rng = StdRng::seed_from_u64(7);
    // Sparse (few elements) and dense (past Redis's sparse limit) HyperLogLogs, overlapping.
    for sizes in [[5usize, 40, 0], [300, 2_000, 20], [5_000, 12_000, 800]] {
        let keys = ["hll:a", "hll:b", "hll:c"];
        let _: () = redis::cmd("DEL").arg(&keys[..]).query(&mut conn).unwrap();
        for (key, size) in keys.iter().zip(sizes) {
            let _: i64 = redis::cmd("PFADD").arg(key).query(&mut conn).unwrap();
            for _ in 0..size {
                let element = format!("v{}", rng.random_range(0..20_000));
                let _: i64 = redis::cmd("PFADD")
                    .arg(key)
                    .arg(element)
                    .query(&mut conn)
                    .unwrap();
            }
        }
        let stored: Vec<Vec<u8>> = keys
            .iter()
            .map(|k| redis::cmd("GET").arg(k).query(&mut conn).unwrap())
            .collect();
        let theirs: u64 = redis::cmd("PFCOUNT")
            .arg(&keys[..])
            .query(&mut conn)
            .unwrap();
        let ours = union_count(stored.iter().map(|b| Some(b.as_slice()))).unwrap();
        assert_eq!(ours, theirs, "sizes {sizes:?}");
        for (key, bytes) in keys.iter().zip(&stored) {
            let one: u64 = redis::cmd("PFCOUNT").arg(key).query(&mut conn).unwrap();
            assert_eq!(union_count([Some(bytes.as_slice())]).unwrap(), one, "{key}");
        }
    }
}

#[test]
fn site_uniques_merge_across_shards_without_counting_anyone_twice() {
    let shards = RedisShards::start(3).unwrap();
    let host = tally_host(&shards, &[("trusted_proxies", "127.0.0.1/32".into())]);
    // 400 visitors, each viewing pages that live on different shards.
    let visitors = 400;
    for v in 0..visitors {
        let address = format!("198.51.{}.{}", v / 250, v % 250 + 1);
        for page in ["a", "b", "c", "d"] {
            let reply = post_with(
                &host.url(&format!("/visit/{page}")),
                &[("x-forwarded-for", &address)],
                None,
            );
            assert_eq!(reply.status, 200, "{}", reply.body);
        }
    }
    let today = date(now_ms() / DAY_MS);
    let stats = get(&host.url(&format!("/stats?from={today}&to={today}"))).json();
    assert_eq!(stats["visits"], visitors * 4);
    let uniques = stats["uniques"].as_u64().unwrap() as f64;
    let error = (uniques - f64::from(visitors)).abs() / f64::from(visitors);
    assert!(error < 0.03, "{uniques} uniques for {visitors} visitors");
    let page = get(&host.url(&format!("/visits/a/history?from={today}&to={today}"))).json();
    let page_uniques = page[0]["uniques"].as_u64().unwrap() as f64;
    assert!((page_uniques - f64::from(visitors)).abs() / f64::from(visitors) < 0.03);
}

#[test]
fn hourly_history_counts_the_current_hour() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    for _ in 0..3 {
        post_with(&host.url("/visit/hourly"), &[], None);
    }
    let series = get(&host.url("/visits/hourly/history?interval=hour")).json();
    let series = series.as_array().unwrap();
    assert_eq!(series.len(), 24);
    assert_eq!(series[23]["visits"], 3);
    assert!(series[23]["uniques"].is_null(), "uniques are kept per day");
    assert!(series[23]["t"].as_str().unwrap().ends_with(":00:00Z"));
    let site = get(&host.url("/stats/history?interval=hour")).json();
    assert_eq!(site["points"][23]["visits"], 3);
}

#[test]
fn every_page_can_be_read_page_by_page_all_time_and_over_a_range() {
    let shards = RedisShards::start(3).unwrap();
    let host = tally_host(&shards, &[]);
    let today = now_ms() / DAY_MS;
    let visits: Vec<(String, i64, i64, u64)> = (0..250)
        .map(|i| (format!("page-{i:03}"), today - 2, 10, (i % 7 + 1) as u64))
        .collect();
    record(&host, &visits);
    for query in [
        "",
        &format!("&from={}&to={}", date(today - 3), date(today - 1)),
    ] {
        let mut seen = Vec::new();
        let mut cursor: Option<String> = None;
        loop {
            let url = match &cursor {
                Some(c) => host.url(&format!("/visits?top=100{query}&cursor={c}")),
                None => host.url(&format!("/visits?top=100{query}")),
            };
            let part = get(&url).json();
            seen.extend(part["pages"].as_array().unwrap().iter().map(|p| {
                (
                    p["page"].as_str().unwrap().to_string(),
                    p["count"].as_u64().unwrap(),
                )
            }));
            match part["next_cursor"].as_str() {
                Some(next) => cursor = Some(next.to_string()),
                None => break,
            }
        }
        assert_eq!(seen.len(), 250, "{query}");
        let mut sorted = seen.clone();
        sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        assert_eq!(seen, sorted, "most visited first, ties by id: {query}");
    }
    assert_eq!(get(&host.url("/visits?top=10&cursor=abc")).status, 400);
}

#[test]
fn bad_ranges_and_times_are_clear_4xx() {
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(&shards, &[("history_days", "30".into())]);
    for url in [
        "/visits/a/history?from=2020-01-01",
        "/visits/a/history?interval=week",
        "/visits/a/history?from=yesterday",
        "/stats?from=2999-01-01",
        "/stats/history?interval=hour&from=2020-01-01T00:00:00Z",
    ] {
        let reply = get(&host.url(url));
        assert_eq!(reply.status, 400, "{url}: {}", reply.body);
        assert_eq!(reply.json()["code"], "range_invalid");
    }
    let too_old = tally_core::rfc3339::format_unix_ms(now_ms() - 31 * DAY_MS);
    let body = format!(r#"{{"visits":[{{"page":"a","at":"{too_old}"}}]}}"#);
    let reply = post_with(&host.url("/visit"), &[], Some(&body));
    assert_eq!(reply.status, 422, "{}", reply.body);
    assert_eq!(reply.json()["code"], "visit_time_invalid");
}

#[test]
fn reads_cost_the_same_commands_whatever_was_recorded() {
    let shards = RedisShards::start(1).unwrap();
    let shard = &shards.shards()[0];
    let host = tally_host(&shards, &[("cache_ttl_ms", "0".into())]);
    let today = now_ms() / DAY_MS;
    let range = format!("from={}&to={}", date(today - 29), date(today));
    let commands = |url: &str| {
        let _: () = redis::cmd("CONFIG")
            .arg("RESETSTAT")
            .query(&mut redis(shard))
            .unwrap();
        assert_eq!(get_with(&host.url(url), &[]).status, 200);
        let info: String = redis::cmd("INFO")
            .arg("commandstats")
            .query(&mut redis(shard))
            .unwrap();
        info.lines()
            .filter_map(|l| {
                l.split_once("calls=")
                    .and_then(|(_, r)| r.split(',').next())
            })
            .map(|n| n.parse::<u64>().unwrap())
            .sum::<u64>()
    };
    let urls = [
        format!("/visits/p0/history?{range}"),
        format!("/stats?{range}"),
        format!("/stats/history?{range}"),
    ];
    // Once first, so every script is loaded (a first call is EVALSHA, NOSCRIPT, EVAL).
    urls.iter().for_each(|u| {
        commands(u);
    });
    let few: Vec<u64> = urls.iter().map(|u| commands(u)).collect();
    let mut rng = StdRng::seed_from_u64(3);
    record(&host, &random_visits(&mut rng, 20, 25, 2_000));
    let many: Vec<u64> = urls.iter().map(|u| commands(u)).collect();
    // CONFIG and INFO themselves are counted too; the reads' commands do not depend on the data.
    assert_eq!(few, many, "{urls:?}");
}

#[test]
fn every_history_key_expires_at_its_day_plus_the_history_kept() {
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(&shards, &[("history_days", "10".into())]);
    let today = now_ms() / DAY_MS;
    let day = today - 1;
    record(&host, &[("e".to_string(), day, 5, 2)]);
    post_raw_beacon(&host);
    let mut conn = redis(&shards.shards()[0]);
    let keep_until = (day + 11) * 86_400;
    for (key, expected) in [
        (format!("tally:pd:{day}"), keep_until),
        (format!("tally:sd:{day}"), keep_until),
        (format!("tally:ph:{day}:e"), (day + 3) * 86_400),
    ] {
        let at: i64 = redis::cmd("EXPIRETIME").arg(&key).query(&mut conn).unwrap();
        assert_eq!(at, expected, "{key}");
    }
    for key in [
        format!("tally:u:{today}:viewed"),
        format!("tally:su:{today}"),
        format!("tally:ref:{today}"),
    ] {
        let at: i64 = redis::cmd("EXPIRETIME").arg(&key).query(&mut conn).unwrap();
        assert_eq!(at, (today + 11) * 86_400, "{key}");
    }
}

/// One page view of `viewed` from a browser that came from news.example.org.
fn post_raw_beacon(host: &tally_host::local::LocalHost) {
    let reply = support::post_raw(
        &host.url("/visit"),
        &[
            ("content-type", "text/plain"),
            ("origin", "https://site.example"),
            ("user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0 Safari/537.36"),
        ],
        r#"{"page":"/viewed","referrer":"www.News.example.org"}"#,
    );
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[test]
fn sources_come_from_the_tracker_normalized_and_ranked() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    for _ in 0..3 {
        post_raw_beacon(&host);
    }
    let today = date(now_ms() / DAY_MS);
    let stats = get(&host.url(&format!("/stats?from={today}&to={today}"))).json();
    assert_eq!(
        stats["top_sources"],
        serde_json::json!([{"host": "news.example.org", "count": 3}])
    );
}

/// Adds `visitors` to the site's HyperLogLog of `day` on `shard`, as the record script does (a
/// batch carries no visitor, so past days' visitors cannot be sent through the API).
fn add_site_visitors(shard: &tally_host::shards::Shard, day: i64, visitors: std::ops::Range<u32>) {
    let mut conn = redis(shard);
    let key = format!("tally:su:{day}");
    for chunk in visitors.collect::<Vec<_>>().chunks(500) {
        let mut cmd = redis::cmd("PFADD");
        cmd.arg(&key);
        for v in chunk {
            cmd.arg(format!("visitor-{v}"));
        }
        let _: i64 = cmd.query(&mut conn).unwrap();
    }
    let _: i64 = redis::cmd("EXPIREAT")
        .arg(&key)
        .arg((day + 401) * 86_400)
        .query(&mut conn)
        .unwrap();
}

/// Top-level calls of `command` on a shard since its last `CONFIG RESETSTAT`.
fn calls(shard: &tally_host::shards::Shard, command: &str) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis(shard))
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("cmdstat_{command}:calls=")))
        .and_then(|rest| rest.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

#[test]
fn finished_days_uniques_are_kept_once_counted_and_a_long_series_costs_one_call_per_shard() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("cache_ttl_ms", "0".into())]);
    let today = now_ms() / DAY_MS;
    let day = today - 3;
    // 500 visitors that day, 100 of them seen on both shards (pages on both).
    add_site_visitors(&shards.shards()[0], day, 0..300);
    add_site_visitors(&shards.shards()[1], day, 200..500);
    post_with(&host.url("/visit/today"), &[], None);
    let url = host.url(&format!(
        "/stats/history?from={}&to={}",
        date(day),
        date(today)
    ));
    let first = get(&url).json();
    let uniques = first["points"][0]["uniques"].as_u64().unwrap();
    assert!(uniques.abs_diff(500) <= 15, "{uniques} for 500 visitors");
    assert_eq!(first["points"][3]["uniques"], 1);

    // Kept on every shard, as long as the day's history; today (not over) is not.
    for shard in shards.shards() {
        let mut conn = redis(shard);
        let kept: Option<u64> = redis::cmd("GET")
            .arg(format!("tally:suc:{day}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(kept, Some(uniques), "shard {}", shard.name());
        let until: i64 = redis::cmd("EXPIRETIME")
            .arg(format!("tally:suc:{day}"))
            .query(&mut conn)
            .unwrap();
        assert_eq!(until, (day + 401) * 86_400);
        let today_kept: bool = redis::cmd("EXISTS")
            .arg(format!("tally:suc:{today}"))
            .query(&mut conn)
            .unwrap();
        assert!(!today_kept);
    }
    // The range's total merges each shard's days on the shard (no scratch key left behind),
    // then the shards here.
    let stats = get(&host.url(&format!("/stats?from={}&to={}", date(day), date(today)))).json();
    let total = stats["uniques"].as_u64().unwrap();
    assert!(total.abs_diff(501) <= 15, "{total} for 501 visitors");
    for shard in shards.shards() {
        let left: bool = redis::cmd("EXISTS")
            .arg("tally:scratch:union")
            .query(&mut redis(shard))
            .unwrap();
        assert!(!left);
    }
    // Read again, the kept count is what is answered: visitors added behind Tally's back to
    // the finished day's HyperLogLog do not change it.
    add_site_visitors(&shards.shards()[0], day, 1_000..2_000);
    assert_eq!(get(&url).json(), first);

    // One call per shard, for one day or for 400.
    let long = host.url(&format!(
        "/stats/history?from={}&to={}",
        date(today - 399),
        date(today)
    ));
    let short = host.url(&format!(
        "/stats/history?from={}&to={}",
        date(today),
        date(today)
    ));
    get(&long);
    let mut per_read = Vec::new();
    for url in [&short, &long] {
        for shard in shards.shards() {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(&mut redis(shard))
                .unwrap();
        }
        assert_eq!(get(url).status, 200);
        per_read.push(
            shards
                .shards()
                .iter()
                .map(|s| (calls(s, "evalsha"), calls(s, "eval"), calls(s, "mget")))
                .collect::<Vec<_>>(),
        );
    }
    assert_eq!(per_read[0], vec![(1, 0, 0), (1, 0, 0)]);
    assert_eq!(per_read[1], per_read[0]);
}
