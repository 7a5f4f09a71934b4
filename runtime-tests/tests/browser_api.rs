//! What browsers and site owners meet, over HTTP through the real components: CORS
//! preflights and grants, the tracker asset, page-view beacons, the counting pixel, bots,
//! allowed sites and API keys. Every refused write is checked against the shards' contents
//! before and after: nothing is written.

mod support;

use std::io::Write;

use support::{get, get_with, io_of, post_raw, post_with, redis, stored_count, tally_host};
use tally_core::api_keys::key_hash;
use tally_host::shards::RedisShards;

const PERSON_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";
const SITE: &str = "https://site.example";

/// Everything on every shard, as `(key, type)` pairs plus the page counts: what "nothing was
/// written" is checked against.
fn shard_contents(shards: &RedisShards) -> Vec<(String, String)> {
    let mut all = Vec::new();
    for shard in shards.shards() {
        let mut conn = redis(shard);
        let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
        for key in keys {
            let dump: Option<Vec<u8>> = redis::cmd("DUMP").arg(&key).query(&mut conn).unwrap();
            all.push((format!("{}:{key}", shard.name()), format!("{dump:?}")));
        }
    }
    all.sort();
    all
}

fn site_host(shards: &RedisShards, extra: &[(&str, String)]) -> tally_host::local::LocalHost {
    let mut vars = vec![
        ("cors_allowed_origins", SITE.to_string()),
        ("allowed_sites", "site.example".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    tally_host(shards, &vars)
}

/// A page view as the tracker sends it from `origin`.
fn beacon(
    host: &tally_host::local::LocalHost,
    origin: &str,
    body: &str,
    ua: &str,
) -> support::Reply {
    post_raw(
        &host.url("/visit"),
        &[
            ("content-type", "text/plain;charset=UTF-8"),
            ("origin", origin),
            ("user-agent", ua),
        ],
        body,
    )
}

#[test]
fn a_preflight_from_an_allowed_origin_is_granted_without_redis_or_the_limiter() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[("api_key_header", "X-API-Key".into())]);
    for path in [
        "/visit",
        "/visits/home",
        "/metrics",
        "/summary",
        "/tally.js",
    ] {
        let (reply, io) = io_of(&host, || {
            support::request(
                "OPTIONS",
                &host.url(path),
                &[
                    ("origin", SITE),
                    ("access-control-request-method", "POST"),
                    (
                        "access-control-request-headers",
                        "content-type, idempotency-key",
                    ),
                ],
            )
        });
        assert_eq!(reply.status, 204, "{path}: {}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), Some(SITE));
        assert_eq!(
            reply.header("access-control-allow-methods"),
            Some("GET, HEAD, POST")
        );
        assert_eq!(
            reply.header("access-control-allow-headers"),
            Some("content-type, idempotency-key, authorization, x-api-key")
        );
        assert_eq!(reply.header("access-control-max-age"), Some("7200"));
        assert_eq!(reply.header("vary"), Some("Origin"));
        assert_eq!(
            (
                io.redis_connects,
                io.redis_commands,
                io.kv_reads,
                io.kv_writes
            ),
            (0, 0, 0, 0)
        );
    }
}

#[test]
fn a_preflight_from_another_origin_gets_no_grant_and_no_5xx() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[]);
    for (origin, method) in [
        ("https://evil.example", "POST"),
        ("null", "POST"),
        ("https://site.example.evil.test", "GET"),
        ("not an origin", "DELETE"),
    ] {
        let reply = support::request(
            "OPTIONS",
            &host.url("/visit"),
            &[
                ("origin", origin),
                ("access-control-request-method", method),
            ],
        );
        assert_eq!(reply.status, 403, "{origin}: {}", reply.body);
        assert_eq!(reply.header("access-control-allow-origin"), None);
    }
    // An allowed origin asking for an odd method is granted only GET, HEAD and POST: the
    // browser then refuses to send it.
    let odd = support::request(
        "OPTIONS",
        &host.url("/visit"),
        &[
            ("origin", SITE),
            ("access-control-request-method", "DELETE"),
        ],
    );
    assert_eq!(
        odd.header("access-control-allow-methods"),
        Some("GET, HEAD, POST")
    );
}

#[test]
fn without_cors_configured_options_is_405_as_before_and_no_answer_grants_anything() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    let reply = support::request("OPTIONS", &host.url("/visit"), &[("origin", SITE)]);
    assert_eq!(reply.status, 405);
    let read = get_with(&host.url("/visits/home"), &[("origin", SITE)]);
    assert_eq!(read.header("access-control-allow-origin"), None);
}

#[test]
fn answers_to_an_allowed_origin_name_it_and_expose_the_rate_limit_headers() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[("rate_limit_reads", "100/60s".into())]);
    let read = get_with(&host.url("/visits/home"), &[("origin", SITE)]);
    assert_eq!(read.status, 200);
    assert_eq!(read.header("access-control-allow-origin"), Some(SITE));
    let exposed = read.header("access-control-expose-headers").unwrap();
    for name in [
        "RateLimit",
        "RateLimit-Policy",
        "X-RateLimit-Remaining",
        "Retry-After",
    ] {
        assert!(exposed.contains(name), "{exposed}");
    }
    let other = get_with(
        &host.url("/visits/home"),
        &[("origin", "https://evil.example")],
    );
    assert_eq!(
        other.status, 200,
        "the answer is given; the browser withholds it"
    );
    assert_eq!(other.header("access-control-allow-origin"), None);
}

#[test]
fn the_tracker_is_a_small_cacheable_asset_with_an_etag() {
    let shards = RedisShards::start(1).unwrap();
    let host = tally_host(&shards, &[]);
    let (js, io) = io_of(&host, || get(&host.url("/tally.js")));
    assert_eq!(js.status, 200);
    assert_eq!(
        js.header("content-type"),
        Some("text/javascript; charset=utf-8")
    );
    assert_eq!(js.header("cache-control"), Some("public, max-age=3600"));
    assert_eq!((io.redis_connects, io.kv_reads), (0, 0));
    for forbidden in ["document.cookie", "localStorage.setItem", "sessionStorage"] {
        assert!(
            !js.body.contains(forbidden),
            "the tracker stores nothing: {forbidden}"
        );
    }
    assert!(js.body.contains("sendBeacon") && js.body.contains("pushState"));
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    gz.write_all(js.body.as_bytes()).unwrap();
    let gzipped = gz.finish().unwrap().len();
    assert!(gzipped < 1024, "tally.js is {gzipped} bytes gzipped");

    let etag = js.header("etag").unwrap().to_string();
    assert!(etag.starts_with('"') && etag.len() == 18, "{etag}");
    let again = get_with(&host.url("/tally.js"), &[("if-none-match", &etag)]);
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    assert_eq!(again.header("etag"), Some(etag.as_str()));
    let changed = get_with(&host.url("/tally.js"), &[("if-none-match", "\"0000\"")]);
    assert_eq!(changed.status, 200);
    assert_eq!(post_with(&host.url("/tally.js"), &[], None).status, 405);
}

#[test]
fn a_beacon_counts_one_view_of_the_normalized_page_with_its_visitor() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[]);
    let body = r#"{"page":"/blog/post/?utm_source=x","referrer":"news.example.org"}"#;
    let reply = beacon(&host, SITE, body, PERSON_UA);
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status":"success","counted":true,"page":"blog/post","count":1})
    );
    // The same page however it is written, and JSON sent as application/json, count too.
    let json = post_raw(
        &host.url("/visit"),
        &[
            ("content-type", "application/json"),
            ("origin", SITE),
            ("user-agent", PERSON_UA),
        ],
        r#"{"page":"blog/post/index.html"}"#,
    );
    assert_eq!(json.json()["count"], 2);
    let read = get(&host.url("/visits/%2Fblog%2Fpost%2F")).json();
    assert_eq!(read["count"], 2);
    assert_eq!(read["uniques_today"], 1, "one visitor");
}

#[test]
fn bad_beacons_are_clear_4xx_and_write_nothing() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[]);
    beacon(&host, SITE, r#"{"page":"/seed"}"#, PERSON_UA);
    let before = shard_contents(&shards);
    let long_page = format!(r#"{{"page":"/{}"}}"#, "a".repeat(5000));
    let cases: Vec<(&str, String, u16)> = vec![
        ("text/plain", "not json".into(), 400),
        (
            "text/plain",
            r#"{"page":"/a","referrer":"https://x.example/path"}"#.into(),
            422,
        ),
        (
            "text/plain",
            r#"{"page":"/a","referrer":"bad host!"}"#.into(),
            422,
        ),
        ("text/plain", r#"{"page":""}"#.into(), 400),
        ("text/plain", r#"{"page":"/a%zz"}"#.into(), 400),
        (
            "text/plain",
            r#"{"page":"/a","visits":[{"page":"b"}]}"#.into(),
            422,
        ),
        ("text/plain", "{}".into(), 422),
        ("text/plain", long_page, 413),
        ("application/x-www-form-urlencoded", "page=/a".into(), 415),
    ];
    for (content_type, body, status) in cases {
        let reply = post_raw(
            &host.url("/visit"),
            &[
                ("content-type", content_type),
                ("origin", SITE),
                ("user-agent", PERSON_UA),
            ],
            &body,
        );
        assert_eq!(reply.status, status, "{body}: {}", reply.body);
        assert_eq!(
            reply.header("content-type"),
            Some("application/problem+json")
        );
    }
    assert_eq!(shard_contents(&shards), before);
}

#[test]
fn writes_from_sites_not_allowed_are_403_and_write_nothing() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[]);
    let before = shard_contents(&shards);
    let body = r#"{"page":"/a"}"#;
    for origin in [
        "https://evil.example",
        "https://site.example.evil.test",
        "null",
    ] {
        let reply = beacon(&host, origin, body, PERSON_UA);
        assert_eq!(reply.status, 403, "{origin}: {}", reply.body);
    }
    // A forged Referer does not help when the Origin says otherwise; without either, a
    // browser write is refused too.
    let forged = post_raw(
        &host.url("/visit/a"),
        &[
            ("origin", "https://evil.example"),
            ("referer", "https://site.example/a"),
        ],
        "",
    );
    assert_eq!(forged.status, 403);
    assert_eq!(post_with(&host.url("/visit/a"), &[], None).status, 403);
    let pixel = get_with(
        &host.url("/visit/a/pixel.gif"),
        &[("referer", "https://evil.example/a")],
    );
    assert_eq!(pixel.status, 403);
    assert_eq!(shard_contents(&shards), before);
    // The allowed site's pixel (images send a Referer, not an Origin) counts.
    let pixel = get_with(
        &host.url("/visit/a/pixel.gif"),
        &[
            ("referer", "https://site.example/a"),
            ("user-agent", PERSON_UA),
        ],
    );
    assert_eq!(pixel.status, 200);
    assert_eq!(pixel.header("content-type"), Some("image/gif"));
    assert_eq!(pixel.header("cache-control"), Some("no-store"));
    assert_eq!(
        stored_count(support::home_shard(&shards, "a"), "a"),
        Some(1)
    );
}

#[test]
fn bots_are_answered_202_not_counted_and_counted_as_bots() {
    let shards = RedisShards::start(2).unwrap();
    let host = site_host(&shards, &[]);
    let googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)";
    let headless = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36";
    let reply = beacon(&host, SITE, r#"{"page":"/b"}"#, googlebot);
    assert_eq!(reply.status, 202);
    assert_eq!(
        reply.json(),
        serde_json::json!({"status":"ignored","counted":false,"reason":"crawler"})
    );
    let reply = beacon(&host, SITE, r#"{"page":"/b"}"#, headless);
    assert_eq!(reply.json()["reason"], "headless_browser");
    let pixel = get_with(
        &host.url("/visit/b/pixel.gif"),
        &[
            ("referer", "https://site.example/b"),
            ("user-agent", "curl/8.5.0"),
        ],
    );
    assert_eq!(pixel.status, 202);
    // A single visit from a page is filtered too; one from a script (no Origin, no Referer)
    // is counted as sent, so `curl -X POST .../visit/b` works without a browser.
    let from_page = post_with(
        &host.url("/visit/b"),
        &[("origin", SITE), ("user-agent", googlebot)],
        None,
    );
    assert_eq!(from_page.status, 202);
    assert_eq!(stored_count(support::home_shard(&shards, "b"), "b"), None);
    let read = get(&host.url("/visits/b")).json();
    assert_eq!(
        (read["count"].as_u64(), read["bots_today"].as_u64()),
        (Some(0), Some(4))
    );

    let open = tally_host(&shards, &[]);
    let script = post_with(&open.url("/visit/b"), &[("user-agent", "curl/8.5.0")], None);
    assert_eq!(script.status, 200, "{}", script.body);
    assert_eq!(script.json()["count"], 1);
}

#[test]
fn server_writes_need_a_configured_key_and_an_unknown_key_gets_no_bucket() {
    let shards = RedisShards::start(2).unwrap();
    let key = "s3rver-key";
    let host = tally_host(
        &shards,
        &[
            ("api_keys", key_hash(key)),
            ("rate_limit_writes", "100/60s".into()),
        ],
    );
    let batch = r#"{"visits":[{"page":"c","count":2}]}"#;
    let metric = r#"{"timestamp":"2026-01-01T00:00:00Z","value":1,"type":"cpu"}"#;
    let before = shard_contents(&shards);
    for (path, body) in [("/visit", batch), ("/metrics", metric)] {
        let none = post_with(&host.url(path), &[], Some(body));
        assert_eq!(none.status, 401, "{path}: {}", none.body);
        assert_eq!(
            none.header("www-authenticate"),
            Some("Bearer realm=\"tally\"")
        );
        let wrong = post_with(
            &host.url(path),
            &[("authorization", "Bearer nope")],
            Some(body),
        );
        assert_eq!(wrong.status, 401);
        assert_eq!(
            wrong.header("www-authenticate"),
            Some("Bearer realm=\"tally\", error=\"invalid_token\"")
        );
        assert_eq!(
            wrong.header("x-ratelimit-remaining"),
            None,
            "no bucket was asked"
        );
    }
    assert_eq!(
        shard_contents(&shards),
        before,
        "nothing written, no bucket made"
    );
    let ok = post_with(
        &host.url("/visit"),
        &[("authorization", &format!("Bearer {key}"))],
        Some(batch),
    );
    assert_eq!(ok.status, 200, "{}", ok.body);
    assert_eq!(ok.header("x-ratelimit-remaining"), Some("98"));
}

#[test]
fn rotating_key_values_never_buys_a_fresh_bucket() {
    let shards = RedisShards::start(2).unwrap();
    let known = "k-known";
    let host = tally_host(
        &shards,
        &[
            ("api_keys", format!("{}=1000/60s", key_hash(known))),
            ("api_key_header", "x-api-key".into()),
            ("rate_limit_writes", "3/600s".into()),
        ],
    );
    // Unknown keys, a new one each time: all one address, one bucket of 3.
    let statuses: Vec<u16> = (0..5)
        .map(|i| {
            let key = format!("rotated-{i}");
            post_with(&host.url("/visit/d"), &[("x-api-key", &key)], None).status
        })
        .collect();
    assert_eq!(statuses, [200, 200, 200, 429, 429]);
    // A configured key is its own client, with its own policy (1000/60s).
    let own = post_with(&host.url("/visit/d"), &[("x-api-key", known)], None);
    assert_eq!(own.status, 200);
    assert_eq!(own.header("x-ratelimit-limit"), Some("1000"));
}

#[test]
fn badges_are_charged_to_the_page_not_the_image_proxy() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(
        &shards,
        &[
            ("rate_limit_reads", "2/600s".into()),
            ("rate_limit_badges", "1000/60s".into()),
            ("cache_ttl_ms", "0".into()),
        ],
    );
    // One proxy address fetching many READMEs' badges, none cached: its own read bucket (2)
    // would be long gone.
    for i in 0..10 {
        let badge = get(&host.url(&format!("/visits/page-{i}/badge.svg")));
        assert_eq!(badge.status, 200, "{}", badge.body);
        assert_eq!(badge.header("x-ratelimit-limit"), Some("1000"));
    }
    assert_eq!(get(&host.url("/visits/page-1")).status, 200);
    assert_eq!(get(&host.url("/visits/page-2")).status, 200);
    assert_eq!(
        get(&host.url("/visits/page-3")).status,
        429,
        "JSON reads are the reader's"
    );
}
