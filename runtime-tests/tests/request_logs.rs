//! The components' request log: one valid JSON line per request on stdout, with component,
//! route, status, latency and outcomes, and never a client address or a secret.

mod support;

use support::{get, post_with, start_with, tally_manifest};
use tally_host::runtime::HostOptions;
use tally_host::shards::{RedisShards, ShardOptions};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

#[test]
fn every_request_logs_one_json_line_without_addresses_or_secrets() {
    let password = "s3cret-pa55word";
    let shards = RedisShards::start_with(
        2,
        ShardOptions {
            password: Some(password.into()),
            ..ShardOptions::default()
        },
    )
    .unwrap();
    let stdout = MemoryOutputPipe::new(1 << 20);
    let host = start_with(
        &tally_manifest(),
        &[
            ("shards", shards.shard_list()),
            ("rate_limit_writes", "100/60s".into()),
            ("rate_limit_reads", "100/60s".into()),
        ],
        HostOptions {
            captured_stdout: Some(stdout.clone()),
            ..HostOptions::default()
        },
    );
    assert_eq!(post_with(&host.url("/visit/home"), &[], None).status, 200);
    let misses = support::read_until_cached(&host.url("/visits/home")).len();
    let health = get(&host.url("/health"));
    assert_eq!(health.status, 200);
    assert!(!health.body.contains(password), "health shows no password");
    assert_eq!(post_with(&host.url("/health"), &[], None).status, 405);

    support::wait_quiet(&host);
    let output = String::from_utf8(stdout.contents().to_vec()).unwrap();
    let lines: Vec<serde_json::Value> = output
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 4 + misses, "{output}");
    let components: Vec<&str> = lines
        .iter()
        .map(|l| l["component"].as_str().unwrap())
        .collect();
    let mut expected = vec!["visit"];
    expected.extend(vec!["visits"; misses + 1]);
    expected.extend(["health", "health"]);
    assert_eq!(components, expected);
    assert_eq!(lines[0]["route"], "POST /visit/...");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["outcomes"]["limiter"], "allowed");
    assert!(!lines[0]["outcomes"]["shards"]
        .as_array()
        .unwrap()
        .is_empty());
    // The visit wrote nothing through: reads ask the shard (charged) until the node caches the
    // page; a cached read calls no shard and is not charged.
    for miss in &lines[1..=misses] {
        assert_eq!(miss["outcomes"]["cache"], "miss");
        assert_eq!(miss["outcomes"]["limiter"], "allowed");
    }
    let hit = &lines[misses + 1];
    assert_eq!(hit["outcomes"]["cache"], "hit");
    assert_eq!(hit["outcomes"]["limiter"], "uncharged");
    assert!(hit["outcomes"].get("shards").is_none(), "{hit}");
    // A handler that reads no header still names its matched route.
    let (health_line, wrong_method) = (&lines[misses + 2], &lines[misses + 3]);
    assert_eq!(health_line["route"], "GET /health/...");
    assert_eq!(wrong_method["route"], "POST /health/...");
    assert_eq!(wrong_method["status"], 405);
    for line in &lines {
        assert!(line["latency_ms"].as_f64().unwrap() >= 0.0);
    }
    assert!(
        !output.contains("127.0.0.1"),
        "no client or shard address: {output}"
    );
    assert!(!output.contains(password), "no secret: {output}");
}
