//! Test support: locating manifests and built components, starting hosts, making requests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use tally_host::io_counts::RequestIo;
use tally_host::local::LocalHost;
use tally_host::runtime::HostOptions;
use tally_host::server::ServerOptions;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;

/// How much of the components' output a test host keeps (writes beyond it are dropped).
const CAPTURE_BYTES: usize = 64 << 20;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `runtime-tests/scenarios/<name>/spin.toml`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .join("spin.toml")
}

/// The application's own manifest.
pub fn tally_manifest() -> PathBuf {
    workspace().join("spin.toml")
}

/// Fails with a helpful message when the components have not been built.
pub fn require_components() {
    let probe = workspace().join("target/wasm32-wasip2/component/spin_probe.wasm");
    assert!(
        probe.exists(),
        "components are not built: run scripts/test (or scripts/lib.sh's build_components)"
    );
}

/// Starts a host for `manifest` with the given `SPIN_VARIABLE_*` values.
pub fn start(manifest: &Path, vars: &[(&str, String)]) -> LocalHost {
    start_with(manifest, vars, HostOptions::default())
}

/// Starts a host with explicit host options. The components' stdout and stderr are captured
/// in memory unless the options already say where they go, so their log lines stay out of the
/// output of the tests.
pub fn start_with(manifest: &Path, vars: &[(&str, String)], mut options: HostOptions) -> LocalHost {
    require_components();
    options
        .captured_stdout
        .get_or_insert_with(|| MemoryOutputPipe::new(CAPTURE_BYTES));
    options
        .captured_stderr
        .get_or_insert_with(|| MemoryOutputPipe::new(CAPTURE_BYTES));
    let env = env_of(vars);
    let host = LocalHost::start(
        manifest,
        options,
        ServerOptions {
            log_requests: false,
            ..ServerOptions::default()
        },
        move |name| env.get(name).cloned(),
    )
    .expect("host starts");
    let manifest = if manifest == tally_manifest() {
        "tally".to_string()
    } else {
        manifest.display().to_string()
    };
    hosts()
        .lock()
        .unwrap()
        .insert(host.addr().to_string(), manifest);
    host
}

/// The manifest each host `start_with` started serves ("tally": the application's own), by
/// address: the record of an exchange names it.
fn hosts() -> &'static Mutex<HashMap<String, String>> {
    static HOSTS: OnceLock<Mutex<HashMap<String, String>>> = OnceLock::new();
    HOSTS.get_or_init(Default::default)
}

/// Appends an exchange to `target/api-exchanges/<pid>.jsonl` (one JSON object a line: method,
/// path and query, the request's headers, the status, the response's headers and body, and the
/// manifest its host serves, or null for a server these helpers did not start), which
/// runtime-tests/api/check_exchanges.py validates against the OpenAPI document after the tests.
fn record(method: &str, url: &str, sent: &[(&str, &str)], reply: &Reply) {
    static LOG: OnceLock<Option<Mutex<File>>> = OnceLock::new();
    let log = LOG.get_or_init(|| {
        let dir = workspace().join("target/api-exchanges");
        std::fs::create_dir_all(&dir).ok()?;
        let file = File::create(dir.join(format!("{}.jsonl", std::process::id()))).ok()?;
        Some(Mutex::new(file))
    });
    let Some(log) = log else { return };
    let (authority, path) = match url.split_once("://").map(|(_, rest)| rest) {
        Some(rest) => rest.split_at(rest.find('/').unwrap_or(rest.len())),
        None => ("", url),
    };
    let manifest = hosts().lock().unwrap().get(authority).cloned();
    let mut line = serde_json::json!({
        "method": method,
        "path": if path.is_empty() { "/" } else { path },
        "request_headers": sent.iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect::<HashMap<_, _>>(),
        "status": reply.status,
        "headers": reply.headers.iter().map(|(n, v)| (n.to_ascii_lowercase(), v)).collect::<HashMap<_, _>>(),
        "body": reply.body,
        "manifest": manifest,
    })
    .to_string();
    line.push('\n');
    let _ = log.lock().unwrap().write_all(line.as_bytes());
}

/// A `SPIN_VARIABLE_*` lookup table.
pub fn env_of(vars: &[(&str, String)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.clone()))
        .collect()
}

/// An HTTP response as tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn reply(
    method: &str,
    url: &str,
    sent: &[(&str, &str)],
    resp: ureq::http::Response<ureq::Body>,
) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.into_body().read_to_string().unwrap_or_default();
    let reply = Reply {
        status,
        headers,
        body,
    };
    record(method, url, sent, &reply);
    reply
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    reply(
        "GET",
        url,
        &[],
        agent().get(url).call().expect("GET completes"),
    )
}

/// `GET url` with extra headers.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply("GET", url, headers, req.call().expect("GET completes"))
}

/// `POST url` with a body and content type.
pub fn post(url: &str, content_type: &str, body: &str) -> Reply {
    reply(
        "POST",
        url,
        &[("content-type", content_type)],
        agent()
            .post(url)
            .header("content-type", content_type)
            .send(body)
            .expect("POST completes"),
    )
}

/// The value of request header `name` as the probe component saw it.
pub fn seen_header(probe: &serde_json::Value, name: &str) -> Option<String> {
    probe["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0].as_str() == Some(name))
        .and_then(|pair| pair[1].as_str().map(str::to_string))
}

/// Every value of request header `name` the probe saw.
pub fn seen_headers(probe: &serde_json::Value, name: &str) -> Vec<String> {
    probe["headers"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter(|pair| pair[0].as_str() == Some(name))
                .filter_map(|pair| pair[1].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

/// `POST url` with headers and an optional JSON body.
pub fn post_with(url: &str, headers: &[(&str, &str)], body: Option<&str>) -> Reply {
    let mut req = agent().post(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    let resp = match body {
        Some(body) => req.header("content-type", "application/json").send(body),
        None => req.send_empty(),
    };
    let mut sent = headers.to_vec();
    if body.is_some() {
        sent.push(("content-type", "application/json"));
    }
    reply("POST", url, &sent, resp.expect("POST completes"))
}

/// A host for the application's own `spin.toml` on `shards`, with extra variables.
pub fn tally_host(shards: &tally_host::shards::RedisShards, extra: &[(&str, String)]) -> LocalHost {
    // Rate limits are off unless `extra` sets them: tests send thousands of requests from one
    // address.
    let mut vars = vec![
        ("shards", shards.shard_list()),
        ("rate_limit_writes", "off".to_string()),
        ("rate_limit_reads", "off".to_string()),
    ];
    vars.extend(extra.iter().cloned());
    start(&tally_manifest(), &vars)
}

/// The wall clock in Unix milliseconds.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// A day in milliseconds.
pub const DAY_MS: i64 = 86_400_000;

/// The date (`YYYY-MM-DD`) of a UTC day number.
pub fn date(day: i64) -> String {
    tally_core::rfc3339::format_unix_ms(day * DAY_MS)[..10].to_string()
}

/// A connection straight to a shard, bypassing Tally.
pub fn redis(shard: &tally_host::shards::Shard) -> redis::Connection {
    shard.client().unwrap().get_connection().unwrap()
}

/// A page's count as stored on a shard (None when the shard does not hold it).
pub fn stored_count(shard: &tally_host::shards::Shard, page: &str) -> Option<u64> {
    let score: Option<f64> = redis::cmd("ZSCORE")
        .arg("tally:pages")
        .arg(page)
        .query(&mut redis(shard))
        .unwrap();
    score.map(|s| s as u64)
}

/// The shard the core's hashing places `page` on.
pub fn home_shard<'a>(
    shards: &'a tally_host::shards::RedisShards,
    page: &str,
) -> &'a tally_host::shards::Shard {
    let names: Vec<&str> = shards.shards().iter().map(|s| s.name()).collect();
    let set = tally_core::hashing::ShardSet::uniform(&names).unwrap();
    shards.get(set.shard_for(page.as_bytes()).name()).unwrap()
}

/// Runs `work(i)` for i in 0..n on `threads` threads, collecting the results in order.
pub fn parallel<T: Send>(n: usize, threads: usize, work: impl Fn(usize) -> T + Sync) -> Vec<T> {
    let work = &work;
    let chunks: Vec<Vec<(usize, T)>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..n)
                        .step_by(threads)
                        .map(|i| (i, work(i)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut all: Vec<(usize, T)> = chunks.into_iter().flatten().collect();
    all.sort_by_key(|(i, _)| *i);
    all.into_iter().map(|(_, t)| t).collect()
}

/// Polls `check` until it returns Some, or panics after `timeout`.
pub fn eventually<T>(timeout: Duration, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "condition not met within {timeout:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `POST url` with a JSON body sent chunked (`Transfer-Encoding: chunked`, no length).
pub fn post_chunked(url: &str, body: &str) -> Reply {
    let mut reader = body.as_bytes();
    let resp = agent()
        .post(url)
        .header("content-type", "application/json")
        .send(ureq::SendBody::from_reader(&mut reader));
    let sent = [("content-type", "application/json")];
    reply("POST", url, &sent, resp.expect("POST completes"))
}

/// `POST url` with exactly these headers and this body (no content type added).
pub fn post_raw(url: &str, headers: &[(&str, &str)], body: &str) -> Reply {
    let mut req = agent().post(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply(
        "POST",
        url,
        headers,
        req.send(body).expect("POST completes"),
    )
}

/// A field of a shard's `INFO <section>`, as text.
pub fn info_field(shard: &tally_host::shards::Shard, section: &str, field: &str) -> Option<String> {
    let info: String = redis::cmd("INFO")
        .arg(section)
        .query(&mut redis(shard))
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix(&format!("{field}:")))
        .map(|v| v.trim().to_string())
}

/// How many times a shard has run `command` since start or `CONFIG RESETSTAT`.
pub fn command_calls(shard: &tally_host::shards::Shard, command: &str) -> u64 {
    info_field(shard, "commandstats", &format!("cmdstat_{command}"))
        .and_then(|v| v.strip_prefix("calls=")?.split(',').next()?.parse().ok())
        .unwrap_or(0)
}

/// Waits until every instance the host started has finished (a component writes its log line
/// after its answer, so it may still be running when the client has the answer), and returns
/// the host's I/O totals then.
pub fn wait_quiet(host: &LocalHost) -> tally_host::io_counts::IoSnapshot {
    eventually(Duration::from_secs(10), || {
        let now = host.app().io_totals();
        now.is_quiet().then_some(now)
    })
}

/// What one request asked of the host's key-value store and Redis: runs `request` (which must
/// make exactly one request to `host`) and waits until its instance has finished.
pub fn io_of<T>(host: &LocalHost, request: impl FnOnce() -> T) -> (T, RequestIo) {
    let before = wait_quiet(host);
    let answer = request();
    let after = wait_quiet(host);
    assert_eq!(
        after.instances,
        before.instances + 1,
        "one request, one instance"
    );
    (answer, after.io.since(&before.io))
}

/// The shard holding the loopback client's token bucket for `class`.
pub fn limiter_shard_for_loopback(
    shards: &tally_host::shards::RedisShards,
    class: tally_core::rate_policy::RouteClass,
) -> String {
    use tally_core::client_identity::Identity;
    let identity = Identity::Address("127.0.0.1".parse().unwrap()).hashed();
    home_shard(
        shards,
        &tally_core::rate_policy::bucket_key(class, &identity),
    )
    .name()
    .to_string()
}

/// Reads `url` (a cached route: `GET /visits/...` or `GET /summary...`) until its answer is
/// served from the node's cache, and returns the answers served from elsewhere on the way. A
/// node stores a page it has not cached lately on one miss in
/// `tally_core::edge_cache::ADMIT_ONE_IN`, at random, so this takes a few reads.
pub fn read_until_cached(url: &str) -> Vec<serde_json::Value> {
    let mut misses = Vec::new();
    eventually(Duration::from_secs(20), || {
        let body = get(url).json();
        if body["served_via"] == "cache" {
            return Some(());
        }
        misses.push(body);
        None
    });
    misses
}

/// A free loopback TCP port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A request with any method (`OPTIONS`, …) and headers, without a body.
pub fn request(method: &str, url: &str, headers: &[(&str, &str)]) -> Reply {
    let req = ureq::http::Request::builder().method(method).uri(url);
    let req = headers
        .iter()
        .fold(req, |req, (name, value)| req.header(*name, *value))
        .body(())
        .unwrap();
    reply(
        method,
        url,
        headers,
        agent().run(req).expect("request completes"),
    )
}
