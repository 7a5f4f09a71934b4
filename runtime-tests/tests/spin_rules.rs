//! The host is held to Spin's rules: each test loads a scenario under `scenarios/` (a
//! `spin.toml` whose components are the `spin-probe` test component) and checks what the
//! component saw or could do.

mod support;

use support::{get, scenario, seen_header, seen_headers, start};
use tally_host::runtime::{Application, HostOptions};
use tally_host::shards::RedisShards;

fn who(url: &str) -> String {
    let reply = get(&format!("{url}?var=who"));
    assert_eq!(reply.status, 200, "{url}: {}", reply.body);
    reply.json()["var"]["ok"]
        .as_str()
        .unwrap_or("?")
        .to_string()
}

#[test]
fn most_specific_route_wins() {
    let host = start(&scenario("routing"), &[]);
    let cases = [
        ("/", "root"),
        ("/anything", "catch-all"),
        ("/deep/er/path", "catch-all"),
        ("/api", "api"),
        ("/api/", "api"),
        ("/api/other", "api"),
        ("/api/users/42", "user"),
        ("/api/users/me", "me"),
        ("/api/users/42/posts/7", "post"),
        ("/api/users/42/posts/7/extra", "api"),
        ("/static/css/site.css", "static"),
    ];
    for (path, expected) in cases {
        assert_eq!(who(&host.url(path)), expected, "route for {path}");
    }
}

#[test]
fn unknown_route_is_404_without_a_catch_all() {
    let host = start(&scenario("variables"), &[("api_token", "t".into())]);
    assert_eq!(get(&host.url("/nope")).status, 404);
    assert_eq!(get(&host.url("/vars/extra")).status, 404);
}

#[test]
fn spin_headers_for_a_wildcard_route() {
    let host = start(&scenario("routing"), &[]);
    let seen = get(&host.url("/static/css/site.css?v=2")).json();
    let port = host.addr().port();
    let h = |name| seen_header(&seen, name);
    assert_eq!(
        h("spin-full-url").as_deref(),
        Some(format!("http://127.0.0.1:{port}/static/css/site.css?v=2").as_str())
    );
    assert_eq!(h("spin-path-info").as_deref(), Some("/css/site.css"));
    assert_eq!(h("spin-matched-route").as_deref(), Some("/static/..."));
    assert_eq!(
        h("spin-raw-component-route").as_deref(),
        Some("/static/...")
    );
    assert_eq!(h("spin-component-route").as_deref(), Some("/static"));
    assert_eq!(h("spin-base-path").as_deref(), Some("/"));
    let client = h("spin-client-addr").expect("spin-client-addr");
    assert!(client.starts_with("127.0.0.1:"), "{client}");
}

#[test]
fn spin_headers_for_named_segments() {
    let host = start(&scenario("routing"), &[]);
    let seen = get(&host.url("/api/users/42/posts/7")).json();
    assert_eq!(
        seen_header(&seen, "spin-path-match-user-id").as_deref(),
        Some("42")
    );
    assert_eq!(
        seen_header(&seen, "spin-path-match-post-id").as_deref(),
        Some("7")
    );
    assert_eq!(seen_header(&seen, "spin-path-info").as_deref(), Some(""));
    assert_eq!(
        seen_header(&seen, "spin-matched-route").as_deref(),
        Some("/api/users/:user_id/posts/:post_id")
    );
}

#[test]
fn client_cannot_forge_spin_headers() {
    let host = start(&scenario("routing"), &[]);
    let reply = support::get_with(
        &host.url("/api/users/42"),
        &[
            ("spin-client-addr", "203.0.113.9:1"),
            ("spin-path-match-id", "1"),
        ],
    );
    let seen = reply.json();
    let addrs = seen_headers(&seen, "spin-client-addr");
    assert_eq!(addrs.len(), 1, "{addrs:?}");
    assert!(addrs[0].starts_with("127.0.0.1:"));
    assert_eq!(seen_headers(&seen, "spin-path-match-id"), vec!["42"]);
}

#[test]
fn request_uri_is_absolute_with_the_host_authority() {
    let host = start(&scenario("routing"), &[]);
    let seen = get(&host.url("/api/users/1?x=y")).json();
    let port = host.addr().port();
    assert_eq!(
        seen["uri"].as_str(),
        Some(format!("http://127.0.0.1:{port}/api/users/1?x=y").as_str())
    );
}

#[test]
fn variables_resolve_defaults_templates_and_overrides() {
    let host = start(
        &scenario("variables"),
        &[("api_token", "t0ken".into()), ("audience", "edge".into())],
    );
    let var = |name: &str| get(&host.url(&format!("/vars?var={name}"))).json()["var"].clone();
    assert_eq!(var("message")["ok"], "hello, edge!");
    assert_eq!(var("token")["ok"], "t0ken");
    assert_eq!(var("literal")["ok"], "just text");
    let undeclared = var("greeting")["err"].as_str().unwrap_or("").to_string();
    assert!(undeclared.starts_with("Error::Undefined"), "{undeclared}");
    let invalid = var("Not-Valid")["err"].as_str().unwrap_or("").to_string();
    assert!(invalid.starts_with("Error::InvalidName"), "{invalid}");
}

#[test]
fn missing_required_variable_fails_at_start_up() {
    support::require_components();
    let err = Application::load_with_env(
        &scenario("missing-variable"),
        HostOptions::default(),
        |_| None,
    )
    .err()
    .expect("start-up fails");
    let message = format!("{err:#}");
    assert!(message.contains("database_url"), "{message}");
}

#[test]
fn unknown_key_value_label_fails_at_start_up() {
    support::require_components();
    let err =
        Application::load_with_env(&scenario("unknown-store"), HostOptions::default(), |_| None)
            .err()
            .expect("start-up fails");
    assert!(format!("{err:#}").contains("sessions"), "{err:#}");
}

#[test]
fn redis_open_is_limited_to_allowed_outbound_hosts() {
    let shards = RedisShards::start(2).unwrap();
    let (allowed, other) = (&shards.shards()[0], &shards.shards()[1]);
    let host = start(
        &scenario("outbound-redis"),
        &[("allowed_port", allowed.port().to_string())],
    );
    let probe = |component: &str, url: &str| {
        let url = format!(
            "/{component}/?redis={}&cmd=PING",
            url.replace(':', "%3A").replace('/', "%2F")
        );
        get(&host.url(&url)).json()["redis"].clone()
    };
    assert_eq!(
        probe("allowed", &allowed.url())["ok"],
        "[RedisResult::Status(\"PONG\")]"
    );
    assert_eq!(
        probe("allowed", &other.url())["err"],
        "Error::InvalidAddress"
    );
    let by_name = format!("redis://localhost:{}", allowed.port());
    assert_eq!(probe("allowed", &by_name)["err"], "Error::InvalidAddress");
    assert_eq!(
        probe("none", &allowed.url())["err"],
        "Error::InvalidAddress"
    );
}

#[test]
fn key_value_default_store_outlives_instances_and_is_shared() {
    let host = start(&scenario("key-value"), &[]);
    let set = get(&host.url("/writer/?kv_set=greeting&value=hi")).json();
    assert_eq!(set["kv_set"]["ok"], serde_json::Value::Null, "{set}");
    let again = get(&host.url("/writer/?kv_get=greeting")).json();
    assert_eq!(again["kv_get"]["ok"], "hi");
    let other = get(&host.url("/reader/?kv_get=greeting")).json();
    assert_eq!(other["kv_get"]["ok"], "hi");
    get(&host.url("/reader/?kv_delete=greeting"));
    let gone = get(&host.url("/writer/?kv_get=greeting")).json();
    assert_eq!(gone["kv_get"]["ok"], serde_json::Value::Null);
}

#[test]
fn key_value_store_not_granted_is_access_denied() {
    let host = start(&scenario("key-value"), &[]);
    let denied = get(&host.url("/denied/?kv_open=default")).json();
    assert_eq!(denied["kv_open"]["err"], "Error::AccessDenied");
    let unknown = get(&host.url("/writer/?kv_open=sessions")).json();
    assert_eq!(unknown["kv_open"]["err"], "Error::AccessDenied");
}
