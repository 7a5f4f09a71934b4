//! Metrics and summaries end to end: the real `metrics` and `summary` components in the host,
//! against real redis-server shards started by each test.

mod support;

use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};
use support::{
    eventually, get, home_shard, info_field, post, read_until_cached, redis, tally_host,
};
use tally_core::validation::MAX_METRICS_BODY_BYTES;
use tally_host::shards::{RedisShards, Shard};

const MINUTE: i64 = 60_000;
const HOUR: i64 = 3_600_000;

/// A sample as the tests post it.
#[derive(Clone, Debug)]
struct Sample {
    metric_type: &'static str,
    timestamp_ms: i64,
    value: f64,
}

impl Sample {
    fn json(&self) -> Value {
        json!({
            "timestamp": rfc3339(self.timestamp_ms),
            "value": self.value,
            "type": self.metric_type,
        })
    }
}

fn rfc3339(unix_ms: i64) -> String {
    tally_core::rfc3339::format_unix_ms(unix_ms)
}

/// The shard's clock, Unix ms.
fn server_now_ms(shard: &Shard) -> i64 {
    let (seconds, micros): (i64, i64) = redis::cmd("TIME").query(&mut redis(shard)).unwrap();
    seconds * 1_000 + micros / 1_000
}

fn post_json(host: &tally_host::local::LocalHost, body: &Value) -> support::Reply {
    post(&host.url("/metrics"), "application/json", &body.to_string())
}

fn post_all(host: &tally_host::local::LocalHost, samples: &[Sample]) {
    for chunk in samples.chunks(1_000) {
        let body = Value::Array(chunk.iter().map(Sample::json).collect());
        let reply = post_json(host, &body);
        assert_eq!(reply.status, 201, "{}", reply.body);
        assert_eq!(reply.json()["count"], chunk.len());
    }
}

fn summary(host: &tally_host::local::LocalHost, metric_type: &str, period: &str) -> Value {
    let reply = get(&host.url(&format!("/summary?type={metric_type}&period={period}")));
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.json()
}

/// The documented definition: every sample at or after the window's first bucket (all of
/// them for `all`); latest is the newest timestamp, the later-posted sample on ties.
fn reference(samples: &[Sample], metric_type: &str, period: &str, now_ms: i64) -> Value {
    let start = match period {
        "hourly" => (now_ms.div_euclid(MINUTE) - 59) * MINUTE,
        "daily" => (now_ms.div_euclid(HOUR) - 23) * HOUR,
        _ => i64::MIN,
    };
    let inside: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.metric_type == metric_type && s.timestamp_ms >= start)
        .collect();
    let values: Vec<f64> = inside.iter().map(|s| s.value).collect();
    let latest = inside
        .iter()
        .fold(None::<&&Sample>, |best, s| match best {
            Some(b) if b.timestamp_ms > s.timestamp_ms => Some(b),
            _ => Some(s),
        })
        .map(|s| s.value);
    let count = values.len();
    let some = |v: f64| if count > 0 { json!(v) } else { Value::Null };
    json!({
        "type": metric_type,
        "period": period,
        "count": count,
        "average_value": some(values.iter().sum::<f64>() / count.max(1) as f64),
        "min_value": some(values.iter().copied().fold(f64::INFINITY, f64::min)),
        "max_value": some(values.iter().copied().fold(f64::NEG_INFINITY, f64::max)),
        "latest_value": latest.map_or(Value::Null, |v| json!(v)),
    })
}

/// A summary fetched while the shard's clock stays inside one minute, with that clock reading
/// (so the window the summary used is known exactly).
fn summary_at_known_time(
    host: &tally_host::local::LocalHost,
    shard: &Shard,
    metric_type: &str,
    period: &str,
) -> (Value, i64) {
    eventually(Duration::from_secs(10), || {
        let before = server_now_ms(shard);
        let mut got = summary(host, metric_type, period);
        let after = server_now_ms(shard);
        if before.div_euclid(MINUTE) != after.div_euclid(MINUTE) {
            return None;
        }
        got.as_object_mut().unwrap().remove("served_via");
        Some((got, before))
    })
}

#[test]
fn summaries_equal_a_reference_over_random_late_and_boundary_samples() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("summary_cache_ttl_ms", "0".into())]);
    let types = ["cpu", "mem", "disk.io"];
    let now = server_now_ms(&shards.shards()[0]);
    let hour_start = (now.div_euclid(MINUTE) - 59) * MINUTE;
    let day_start = (now.div_euclid(HOUR) - 23) * HOUR;
    let mut rng = StdRng::seed_from_u64(6);
    let mut samples = Vec::new();
    for i in 0..3_000 {
        let timestamp_ms = match i % 6 {
            // On and just outside the window boundaries (the windows may move on by a minute
            // before the summary is read; the reference uses the summary's own clock).
            0 => [hour_start, hour_start - 1, day_start, day_start - 1][rng.random_range(0..4)],
            // Ahead of the clock, within what validation allows.
            1 => now + rng.random_range(0..4 * MINUTE),
            // Late: days old.
            2 => now - rng.random_range(24 * HOUR..90 * 24 * HOUR),
            // Anywhere in the last 30 hours, out of order.
            _ => now - rng.random_range(0..30 * HOUR),
        };
        samples.push(Sample {
            metric_type: types[rng.random_range(0..types.len())],
            timestamp_ms,
            // Eighths, so every sum is exact whatever order it is added in.
            value: f64::from(rng.random_range(-8_000..8_000)) / 8.0,
        });
    }
    // Arrays of random sizes, and some single samples.
    let mut rest = &samples[..];
    while !rest.is_empty() {
        let n = rng.random_range(1..=rest.len().min(400));
        let (head, tail) = rest.split_at(n);
        if n == 1 {
            let reply = post_json(&host, &head[0].json());
            assert_eq!(reply.status, 201, "{}", reply.body);
        } else {
            post_all(&host, head);
        }
        rest = tail;
    }

    for metric_type in types {
        let shard = home_shard(&shards, metric_type);
        for period in ["all", "daily", "hourly"] {
            let (got, now) = summary_at_known_time(&host, shard, metric_type, period);
            assert_eq!(
                got,
                reference(&samples, metric_type, period, now),
                "{metric_type} {period}"
            );
        }
    }
    let unknown = summary(&host, "never.posted", "daily");
    assert_eq!(unknown["count"], 0);
    assert_eq!(unknown["average_value"], Value::Null);
    assert_eq!(unknown["latest_value"], Value::Null);
}

/// Every command the shard has run, by name, since `CONFIG RESETSTAT`.
fn commands_since_reset(shard: &Shard) -> u64 {
    let info: String = redis::cmd("INFO")
        .arg("commandstats")
        .query(&mut redis(shard))
        .unwrap();
    info.lines()
        .filter(|l| !l.starts_with("cmdstat_info:") && !l.starts_with("cmdstat_config|"))
        .filter_map(|l| {
            l.split_once(":calls=")?
                .1
                .split(',')
                .next()?
                .parse::<u64>()
                .ok()
        })
        .sum()
}

/// Bytes the shard has sent its clients since `CONFIG RESETSTAT` (whose own `+OK` counts).
fn bytes_sent_since_reset(shard: &Shard) -> i64 {
    info_field(shard, "stats", "total_net_output_bytes")
        .and_then(|n| n.parse().ok())
        .expect("INFO stats has total_net_output_bytes")
}

#[test]
fn a_summary_costs_the_same_commands_and_bytes_for_10_and_100000_samples() {
    let shards = RedisShards::start(1).unwrap();
    let shard = &shards.shards()[0];
    let host = tally_host(&shards, &[("summary_cache_ttl_ms", "0".into())]);
    let now = server_now_ms(shard);
    let spread = |metric_type: &'static str, n: i64| -> Vec<Sample> {
        (0..n)
            .map(|i| Sample {
                metric_type,
                timestamp_ms: now - (i * 7_919) % (26 * HOUR),
                value: (i % 100) as f64,
            })
            .collect()
    };
    post_all(&host, &spread("small", 10));
    post_all(&host, &spread("big", 100_000));
    // Load the script on the shard first: a summary's first call may need EVAL after NOSCRIPT.
    summary(&host, "warm", "all");

    for period in ["all", "daily", "hourly"] {
        let mut cost = Vec::new();
        for metric_type in ["small", "big"] {
            let _: () = redis::cmd("CONFIG")
                .arg("RESETSTAT")
                .query(&mut redis(shard))
                .unwrap();
            let got = summary(&host, metric_type, period);
            assert_eq!(got["served_via"], "redis_a");
            cost.push((bytes_sent_since_reset(shard), commands_since_reset(shard)));
        }
        let [(small_bytes, small_commands), (big_bytes, big_commands)] = cost[..] else {
            unreachable!()
        };
        assert_eq!(small_commands, big_commands, "{period}: small vs big");
        assert_eq!(small_commands, 3, "{period}: EVALSHA, TIME, GET");
        // The same packed slots either way; only the clock's digits may differ.
        let slots = match period {
            "all" => 1,
            "daily" => 26,
            _ => 75,
        };
        assert!(small_bytes > slots * 56, "{period}: {small_bytes} bytes");
        assert!(
            (small_bytes - big_bytes).abs() <= 8,
            "{period}: {small_bytes} vs {big_bytes} bytes"
        );
    }
    assert_eq!(summary(&host, "big", "all")["count"], 100_000);
    assert_eq!(summary(&host, "small", "all")["count"], 10);
}

#[test]
fn summaries_are_cached_for_the_ttl_and_a_node_sees_its_own_writes() {
    let shards = RedisShards::start(2).unwrap();
    // Two nodes on the same shards, each with its own key-value cache.
    let reader = tally_host(&shards, &[("summary_cache_ttl_ms", "300000".into())]);
    let writer = tally_host(&shards, &[]);
    let now = server_now_ms(&shards.shards()[0]);
    let at = |value: f64| Sample {
        metric_type: "latency",
        timestamp_ms: now,
        value,
    };
    post_all(&writer, &[at(1.0), at(3.0)]);

    let first = summary(&reader, "latency", "all");
    assert_eq!(
        first["served_via"],
        format!("redis_{}", home_shard(&shards, "latency").name())
    );
    assert_eq!(first["count"], 2);
    for miss in read_until_cached(&reader.url("/summary?type=latency&period=all")) {
        assert_eq!(miss["count"], 2);
    }
    // Another node's write does not reach this node's cache before the TTL runs out.
    post_all(&writer, &[at(5.0)]);
    let cached = summary(&reader, "latency", "all");
    assert_eq!(cached["served_via"], "cache");
    assert_eq!(cached["count"], 2);
    // Writing through the node drops its cached summaries of that type.
    post_all(&reader, &[at(7.0)]);
    let fresh = summary(&reader, "latency", "all");
    assert_ne!(fresh["served_via"], "cache");
    assert_eq!(fresh["count"], 4);
    assert_eq!(fresh["latest_value"], 7.0);
    // Each period has its own entry.
    assert_ne!(summary(&reader, "latency", "hourly")["served_via"], "cache");

    // A short TTL: served from the cache while young, then from the shard again.
    let short = tally_host(&shards, &[("summary_cache_ttl_ms", "1500".into())]);
    read_until_cached(&short.url("/summary?type=latency&period=daily"));
    post_all(&writer, &[at(9.0)]);
    let refreshed = eventually(Duration::from_secs(10), || {
        let s = summary(&short, "latency", "daily");
        (s["served_via"] != "cache").then_some(s)
    });
    assert_eq!(refreshed["count"], 5);
}

#[test]
fn a_summary_is_served_stale_when_its_shard_is_down() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[("summary_cache_ttl_ms", "100".into())]);
    let now = server_now_ms(&shards.shards()[0]);
    post_all(
        &host,
        &[Sample {
            metric_type: "queue.depth",
            timestamp_ms: now,
            value: 12.0,
        }],
    );
    // Read until this node has stored the summary (one miss in ADMIT_ONE_IN stores it).
    eventually(Duration::from_secs(20), || {
        assert_eq!(summary(&host, "queue.depth", "all")["count"], 1);
        let kv = host.app().key_value_stores();
        kv.peek("default", "summary:queue.depth:all").map(drop)
    });
    let home = home_shard(&shards, "queue.depth").name().to_string();
    shards.get_mut(&home).unwrap().kill();

    // Fresh for 100 ms, then served stale while the shard is down.
    let stale = eventually(Duration::from_secs(10), || {
        let reply = get(&host.url("/summary?type=queue.depth&period=all"));
        (reply.json()["served_via"] == "stale_cache").then_some(reply)
    });
    assert_eq!(stale.status, 200, "{}", stale.body);
    assert_eq!(stale.json()["count"], 1);
    assert!(stale.header("age").is_some());

    // Nothing cached for this period: 503 with Retry-After, not a hang.
    let none = get(&host.url("/summary?type=queue.depth&period=daily"));
    assert_eq!(none.status, 503, "{}", none.body);
    assert!(none.header("retry-after").is_some());
    let refused = post_json(
        &host,
        &Sample {
            metric_type: "queue.depth",
            timestamp_ms: now,
            value: 1.0,
        }
        .json(),
    );
    assert_eq!(refused.status, 503, "{}", refused.body);
}

#[test]
fn bad_input_is_refused_with_the_right_status_and_nothing_is_written() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let now_ms = server_now_ms(&shards.shards()[0]);
    let ok = json!({"timestamp": rfc3339(now_ms), "value": 1.5, "type": "cpu"});
    let with = |field: &str, value: Value| {
        let mut sample = ok.clone();
        sample[field] = value;
        sample
    };
    let long_type = "a".repeat(65);
    let cases: Vec<(String, &str, u16)> = vec![
        ("{\"timestamp\":".into(), "application/json", 400),
        ("not json".into(), "application/json", 400),
        (
            with("value", json!("NaN")).to_string(),
            "application/json",
            422,
        ),
        (
            ok.to_string().replace("1.5", "1e400"),
            "application/json",
            422,
        ),
        (
            with("type", json!("CPU")).to_string(),
            "application/json",
            422,
        ),
        (
            with("type", json!("c p u")).to_string(),
            "application/json",
            422,
        ),
        (
            with("type", json!(long_type)).to_string(),
            "application/json",
            422,
        ),
        (
            with("timestamp", json!("yesterday")).to_string(),
            "application/json",
            422,
        ),
        (
            with("timestamp", json!(rfc3339(now_ms + 10 * MINUTE))).to_string(),
            "application/json",
            422,
        ),
        (
            json!({"value": 1, "type": "cpu"}).to_string(),
            "application/json",
            422,
        ),
        ("[]".into(), "application/json", 422),
        // One bad sample refuses the whole array.
        (
            json!([ok.clone(), ok.clone(), with("value", json!(null))]).to_string(),
            "application/json",
            422,
        ),
        (
            Value::Array(vec![ok.clone(); 1_001]).to_string(),
            "application/json",
            413,
        ),
        (
            format!(
                "[{}]",
                vec![with("type", json!("x".repeat(64))).to_string(); 2_600].join(",")
            ),
            "application/json",
            413,
        ),
        (ok.to_string(), "text/plain", 415),
        // Three times the component's cap (under the host's own 1 MiB limit): the component
        // stops keeping bytes at the cap and reads the rest away, so the client gets its 413
        // rather than a reset connection.
        (
            format!("[{}]", " ".repeat(3 * MAX_METRICS_BODY_BYTES)),
            "application/json",
            413,
        ),
    ];
    for (body, content_type, status) in &cases {
        let reply = post(&host.url("/metrics"), content_type, body);
        assert_eq!(
            reply.status,
            *status,
            "{}: {}",
            &body[..body.len().min(80)],
            reply.body
        );
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    for (query, status) in [
        ("/metrics?limit=0", 400),
        ("/metrics?limit=1001", 400),
        ("/metrics?limit=ten", 400),
        ("/metrics?type=Bad%20Type", 422),
        ("/summary?period=all", 422),
        ("/summary?type=cpu&period=weekly", 422),
        ("/summary?type=%3Cscript%3E&period=all", 422),
    ] {
        let reply = get(&host.url(query));
        assert_eq!(reply.status, status, "{query}: {}", reply.body);
    }
    // Without a period, a summary covers every sample (the seed's default).
    let reply = get(&host.url("/summary?type=cpu"));
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.json()["period"], "all");
    assert_eq!(get(&host.url("/summary?type=cpu&period=")).status, 422);
    for shard in shards.shards() {
        let keys: u64 = redis::cmd("DBSIZE").query(&mut redis(shard)).unwrap();
        assert_eq!(keys, 0, "shard {} holds nothing", shard.name());
    }
}

#[test]
fn listing_is_newest_first_by_type_or_across_all_shards() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let now = server_now_ms(&shards.shards()[0]);
    let types = ["cpu", "mem", "disk.io", "net.rx", "net.tx"];
    // Posted out of order: timestamps descend with i, types rotate (several shards).
    let samples: Vec<Sample> = (0..200)
        .map(|i| Sample {
            metric_type: types[i as usize % types.len()],
            timestamp_ms: now - ((i * 37) % 200) * 1_000,
            value: i as f64,
        })
        .collect();
    assert!(
        types
            .iter()
            .any(|t| home_shard(&shards, t).name() != home_shard(&shards, "cpu").name()),
        "the types span both shards"
    );
    post_all(&host, &samples);

    let mut newest = samples.clone();
    newest.sort_by_key(|s| std::cmp::Reverse(s.timestamp_ms));
    let listed = get(&host.url("/metrics?limit=7")).json();
    assert_eq!(listed["count"], 7);
    let got: Vec<(String, f64)> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["timestamp"].as_str().unwrap().to_string(),
                m["value"].as_f64().unwrap(),
            )
        })
        .collect();
    let want: Vec<(String, f64)> = newest[..7]
        .iter()
        .map(|s| (rfc3339(s.timestamp_ms), s.value))
        .collect();
    assert_eq!(got, want);

    let default = get(&host.url("/metrics")).json();
    assert_eq!(default["count"], 100);
    let cpu = get(&host.url("/metrics?type=cpu&limit=1000")).json();
    assert_eq!(cpu["type"], "cpu");
    let cpu_samples = cpu["metrics"].as_array().unwrap();
    assert_eq!(cpu_samples.len(), 40);
    assert!(cpu_samples.iter().all(|m| m["type"] == "cpu"));
    let times: Vec<&str> = cpu_samples
        .iter()
        .map(|m| m["timestamp"].as_str().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] >= w[1]),
        "newest first: {times:?}"
    );
    let nothing = get(&host.url("/metrics?type=never.posted")).json();
    assert_eq!(nothing["count"], 0);
}

#[test]
fn retention_keeps_the_newest_samples_and_buckets_stay_bounded() {
    let shards = RedisShards::start(1).unwrap();
    let shard = &shards.shards()[0];
    let host = tally_host(
        &shards,
        &[
            ("metrics_samples_per_type", "1000".into()),
            ("metrics_retention_days", "2".into()),
        ],
    );
    let now = server_now_ms(shard);
    // 1,500 samples, one every 2 minutes over 50 hours, posted oldest last.
    let samples: Vec<Sample> = (0..1_500)
        .map(|i| Sample {
            metric_type: "temp",
            timestamp_ms: now - i * 2 * MINUTE,
            value: i as f64,
        })
        .collect();
    post_all(&host, &samples);

    let mut conn = redis(shard);
    let kept: u64 = redis::cmd("ZCARD")
        .arg("tally:m:temp:samples")
        .query(&mut conn)
        .unwrap();
    assert_eq!(kept, 1_000);
    let recent: u64 = redis::cmd("ZCARD")
        .arg("tally:metrics:recent")
        .query(&mut conn)
        .unwrap();
    assert_eq!(recent, 1_000);
    // The buckets are three fixed-size strings of 56-byte slots, however much was posted.
    for (key, slots) in [
        ("tally:m:temp:all", 1),
        ("tally:m:temp:minutes", 75),
        ("tally:m:temp:hours", 26),
    ] {
        let bytes: u64 = redis::cmd("STRLEN").arg(key).query(&mut conn).unwrap();
        assert_eq!(bytes, slots * 56, "{key}");
    }
    // Every key expires two days after the type's last ingest.
    for key in [
        "tally:m:temp:all",
        "tally:m:temp:minutes",
        "tally:m:temp:hours",
        "tally:m:temp:samples",
        "tally:metrics:recent",
    ] {
        let ttl_ms: i64 = redis::cmd("PTTL").arg(key).query(&mut conn).unwrap();
        assert!(
            (2 * 24 * HOUR - 10 * MINUTE..=2 * 24 * HOUR).contains(&ttl_ms),
            "{key} expires in {ttl_ms} ms"
        );
    }

    // The newest 1,000 are the ones listed; the oldest 500 are gone from the list...
    let listed = get(&host.url("/metrics?type=temp&limit=1000")).json();
    let values: Vec<f64> = listed["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["value"].as_f64().unwrap())
        .collect();
    assert_eq!(values, (0..1_000).map(f64::from).collect::<Vec<_>>());
    // ...but every sample still counts in the summary.
    assert_eq!(summary(&host, "temp", "all")["count"], 1_500);
    assert_eq!(summary(&host, "temp", "all")["min_value"], 0.0);
    assert_eq!(summary(&host, "temp", "all")["max_value"], 1_499.0);
}

#[test]
fn metrics_routes_are_rate_limited() {
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(
        &shards,
        &[
            ("rate_limit_writes", "2/60s burst 2".into()),
            ("rate_limit_reads", "100/60s".into()),
        ],
    );
    let sample = json!({"timestamp": rfc3339(server_now_ms(&shards.shards()[0])), "value": 1, "type": "cpu"});
    let statuses: Vec<u16> = (0..3).map(|_| post_json(&host, &sample).status).collect();
    assert_eq!(statuses, [201, 201, 429]);
    let limited = post_json(&host, &sample);
    assert!(limited.header("retry-after").is_some());
    let read = get(&host.url("/summary?type=cpu&period=all"));
    assert_eq!(read.status, 200);
    assert!(read.header("ratelimit-policy").is_some());
    assert!(get(&host.url("/metrics"))
        .header("x-ratelimit-remaining")
        .is_some());
    assert_eq!(read.json()["count"], 2);
}

#[test]
fn an_array_over_a_dead_shard_names_the_types_to_resend_and_keeps_the_rest() {
    let mut shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let now = server_now_ms(&shards.shards()[0]);
    let types = ["cpu", "mem", "disk.io", "net.rx", "net.tx", "load"];
    let dead = home_shard(&shards, "cpu").name().to_string();
    let (lost, kept): (Vec<&str>, Vec<&str>) = types
        .iter()
        .partition(|t| home_shard(&shards, t).name() == dead);
    assert!(!kept.is_empty(), "some types live on the other shard");
    let samples: Vec<Value> = types
        .iter()
        .map(|t| json!({"timestamp": rfc3339(now), "value": 1.0, "type": t}))
        .collect();
    shards.get_mut(&dead).unwrap().kill();

    let reply = post_json(&host, &Value::Array(samples));
    assert_eq!(reply.status, 503, "{}", reply.body);
    assert!(reply.header("retry-after").is_some());
    let detail = reply.json()["detail"].as_str().unwrap().to_string();
    for t in &lost {
        assert!(detail.contains(t), "{detail} names {t}");
    }
    for t in &kept {
        assert!(
            !detail.contains(&format!(" {t}")),
            "{detail} does not name {t}"
        );
        assert_eq!(summary(&host, t, "all")["count"], 1, "{t} was stored");
    }
}
