//! What schemathesis (runtime-tests/api/fuzz_openapi.py) found against the API document, each
//! named by the input that showed it, through the real components on real shards. (Its
//! findings about the administrator's routes are in admin.rs.)

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use support::{get, tally_host};
use tally_host::shards::RedisShards;

/// Sends `head` (request line and headers, without the blank line) as raw bytes and returns
/// the status and body: for values an HTTP client library will not send.
fn raw_request(host: &tally_host::local::LocalHost, head: &[u8]) -> (u16, String) {
    let mut stream = TcpStream::connect(host.addr()).unwrap();
    stream.write_all(head).unwrap();
    stream
        .write_all(b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer).into_owned();
    let status = answer[9..12].parse().unwrap();
    let body = answer.split("\r\n\r\n").nth(1).unwrap_or("").to_string();
    (status, body)
}

/// `POST /visit/0` with `Idempotency-Key: \xd7\xf8\x9b` (Latin-1 bytes, not UTF-8) was
/// recorded as if it had no key; it is a bad key like any other: 400, nothing recorded.
#[test]
fn an_idempotency_key_that_is_not_utf8_is_refused() {
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(&shards, &[]);
    let mut head = format!("POST /visit/0 HTTP/1.1\r\nHost: {}", host.addr()).into_bytes();
    head.extend_from_slice(b"\r\nIdempotency-Key: \xd7\xf8\x9b");
    let (status, body) = raw_request(&host, &head);
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("idempotency_key_invalid"), "{body}");
    assert_eq!(get(&host.url("/visits/0")).json()["count"], 0);
}

/// The analytics seed's paths answer as Tally's own: `POST /api/metrics` ingests,
/// `GET /api/metrics` and `GET /api/metrics/list` list, `GET /api/metrics/summary` summarises;
/// the listing alias does not ingest.
#[test]
fn the_seed_metric_paths_are_aliases() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let now = tally_core::rfc3339::format_unix_ms(support::now_ms());
    let sample = format!(r#"{{"timestamp":"{now}","value":2.5,"type":"cpu"}}"#);
    let stored = support::post(&host.url("/api/metrics"), "application/json", &sample);
    assert_eq!(stored.status, 201, "{}", stored.body);
    assert_eq!(stored.json()["message"], "Metric received");
    for path in [
        "/api/metrics?type=cpu",
        "/api/metrics/list?type=cpu",
        "/metrics?type=cpu",
    ] {
        let listed = get(&host.url(path)).json();
        assert_eq!(listed["count"], 1, "{path}: {listed}");
    }
    let summary = get(&host.url("/api/metrics/summary?type=cpu")).json();
    assert_eq!(summary["count"], 1, "{summary}");
    assert_eq!(summary["average_value"], 2.5, "{summary}");
    let own = get(&host.url("/summary?type=cpu")).json();
    assert_eq!(
        (&summary["count"], &summary["max_value"]),
        (&own["count"], &own["max_value"])
    );
    let refused = support::post(&host.url("/api/metrics/list"), "application/json", &sample);
    assert_eq!(refused.status, 405, "{}", refused.body);
    assert_eq!(refused.header("allow"), Some("GET, HEAD"));
}
