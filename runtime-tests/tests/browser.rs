//! Tally in a real browser: Debian's headless Chromium, driven through chromedriver (WebDriver)
//! by `fantoccini`, loads pages from another origin that include the tracker with one
//! `<script>` line. Host names are mapped to loopback inside the browser
//! (`--host-resolver-rules`), so the site (`site.test`), a site that is not allowed
//! (`evil.test`) and Tally (`tally.test`) are three origins on one machine.
//!
//! What is checked: page views and two single-page navigations count exactly once each; the
//! page reads its own count cross-origin and shows it; a site not in `allowed_sites` is
//! refused and cannot read counts; a headless browser's page view is not counted but shows in
//! the page's bot count; a page on `localhost` sends nothing. A screenshot of the page showing
//! its count is written to `target/browser/site-page.png`.
//!
//! The dashboard (`/dashboard`) is loaded the same way: it renders with nothing on the
//! browser's console, shows the numbers the API answers (totals, top pages and sources, the
//! chart's series, a page's history on click, metric summaries), fits a phone's width, and
//! behind `dashboard_access = admin` asks for the key once. Its first render time is printed
//! and written to `target/browser/dashboard-timing.json`; screenshots go to `target/browser/`.
//!
//! Needs `chromium` and `chromium-driver` (Debian packages), which `scripts/test` installs.

mod support;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use bytes::Bytes;
use fantoccini::{Client, ClientBuilder, Locator};
use http_body_util::Full;
use hyper_util::rt::TokioIo;
use serde_json::json;
use support::{eventually, free_port, get, stored_count, tally_host, wait_quiet, workspace};
use tally_host::shards::RedisShards;

/// What a person's Chromium says it is (the headless one says `HeadlessChrome`, a bot).
const PERSON_UA: &str = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Safari/537.36";

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// The site's page: the tracker's one line, and a script that reads the page's own count from
/// Tally (cross-origin) and shows it.
fn site_page(tally: &str) -> String {
    format!(
        r#"<!doctype html>
<html><head><meta charset="utf-8"><title>A site using Tally</title>
<script defer src="{tally}/tally.js"></script>
<style>body {{ font: 18px system-ui, sans-serif; margin: 3em; }} #count {{ font-weight: bold; }}</style>
</head><body>
<h1>A page on another origin</h1>
<p>This page counts its views with one <code>&lt;script&gt;</code> line and shows its count:</p>
<p>Views of <span id="page"></span>: <span id="count">…</span></p>
<script>
  function showCount() {{
    var page = location.pathname;
    document.getElementById("page").textContent = page;
    fetch("{tally}/visits/" + encodeURIComponent(page))
      .then(function (r) {{ return r.json(); }})
      .then(function (j) {{ document.getElementById("count").textContent = String(j.count); }})
      .catch(function () {{ document.getElementById("count").textContent = "unavailable"; }});
  }}
</script>
</body></html>"#
    )
}

/// Serves one HTML page for every path (a single-page site) on a free loopback port; the
/// page is set once the Tally it names is running.
struct SiteServer {
    addr: SocketAddr,
    html: std::sync::Arc<std::sync::Mutex<Bytes>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SiteServer {
    fn start() -> Self {
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        std_listener.set_nonblocking(true).unwrap();
        let addr = std_listener.local_addr().unwrap();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let html = std::sync::Arc::new(std::sync::Mutex::new(Bytes::new()));
        let served = html.clone();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(std_listener).unwrap();
                loop {
                    let (stream, _) = tokio::select! {
                        accepted = listener.accept() => accepted.unwrap(),
                        _ = &mut stopped => return,
                    };
                    let served = served.clone();
                    tokio::spawn(async move {
                        let service = hyper::service::service_fn(move |_req| {
                            let page = served.lock().unwrap().clone();
                            let mut resp = hyper::Response::new(Full::new(page));
                            resp.headers_mut().insert(
                                "content-type",
                                "text/html; charset=utf-8".parse().unwrap(),
                            );
                            async move { Ok::<_, Infallible>(resp) }
                        });
                        let _ = hyper::server::conn::http1::Builder::new()
                            .serve_connection(TokioIo::new(stream), service)
                            .await;
                    });
                }
            });
        });
        SiteServer {
            addr,
            html,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn set_html(&self, html: String) {
        *self.html.lock().unwrap() = Bytes::from(html);
    }
}

impl Drop for SiteServer {
    fn drop(&mut self) {
        self.stop.take().map(|s| s.send(()));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// chromedriver on a free loopback port, stopped (by its pid) when dropped.
struct Driver {
    child: Child,
    url: String,
}

impl Driver {
    fn start() -> Self {
        for tool in [CHROMIUM, CHROMEDRIVER] {
            assert!(
                Path::new(tool).exists(),
                "{tool} is missing: install Debian's chromium and chromium-driver \
                 (scripts/test does)"
            );
        }
        let port = free_port();
        let child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("starting chromedriver");
        let url = format!("http://127.0.0.1:{port}");
        eventually(Duration::from_secs(20), || {
            std::net::TcpStream::connect(("127.0.0.1", port)).ok()
        });
        eventually(Duration::from_secs(20), || {
            (get(&format!("{url}/status")).json()["value"]["ready"] == true).then_some(())
        });
        Driver { child, url }
    }

    /// A new browser session: headless Chromium with the `.test` names mapped to loopback,
    /// saying it is `user_agent` (or the headless default).
    async fn session(&self, user_agent: Option<&str>, profile: &Path) -> Client {
        let mut args = vec![
            "--headless=new".to_string(),
            "--no-sandbox".into(),
            "--disable-gpu".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-quic".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--window-size=900,500".into(),
            "--host-resolver-rules=MAP *.test 127.0.0.1".into(),
            format!("--user-data-dir={}", profile.display()),
        ];
        if let Some(ua) = user_agent {
            args.push(format!("--user-agent={ua}"));
        }
        let capabilities = json!({
            "goog:chromeOptions": { "binary": CHROMIUM, "args": args },
            "goog:loggingPrefs": { "browser": "ALL" },
        });
        let serde_json::Value::Object(capabilities) = capabilities else {
            unreachable!()
        };
        ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(capabilities)
            .connect(&self.url)
            .await
            .expect("a Chromium session")
    }
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// chromedriver's own command for the browser's console log (`POST /session/{id}/se/log`).
#[derive(Debug)]
struct BrowserLog;

impl fantoccini::wd::WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            http::Method::POST,
            Some(json!({"type": "browser"}).to_string()),
        )
    }
}

/// The console messages at warning level or above since the last call (chromedriver hands each
/// message out once).
async fn console_problems(client: &Client) -> Vec<String> {
    let log = client
        .issue_cmd(BrowserLog)
        .await
        .expect("the browser's log");
    log.as_array()
        .expect("a list of log entries")
        .iter()
        .filter(|entry| entry["level"] == "SEVERE" || entry["level"] == "WARNING")
        .map(|entry| entry["message"].to_string())
        .collect()
}

/// What `#count` shows, once the page's own fetch has answered.
async fn shown_count(client: &Client) -> String {
    client.execute("showCount()", vec![]).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let text = client
            .find(Locator::Id("count"))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if text != "…" {
            return text;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the page never showed its count"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A page's count on the shards, or 0.
fn count(shards: &RedisShards, page: &str) -> u64 {
    stored_count(support::home_shard(shards, page), page).unwrap_or(0)
}

#[test]
fn a_page_on_another_origin_counts_its_views_reads_its_count_and_bots_and_other_sites_do_not() {
    let shards = RedisShards::start(2).unwrap();
    // The site first (its origin is what Tally allows), then Tally, then the site's page (which
    // names Tally's origin).
    let site = SiteServer::start();
    let port = site.addr.port();
    let host = tally_host(
        &shards,
        &[
            ("cors_allowed_origins", format!("http://site.test:{port}")),
            ("allowed_sites", "site.test, localhost".into()),
        ],
    );
    let tally = format!("http://tally.test:{}", host.addr().port());
    site.set_html(site_page(&tally));

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();
    runtime.block_on(async {
        let person = driver
            .session(Some(PERSON_UA), &profiles.path().join("person"))
            .await;

        // A page view, then two single-page navigations: exactly one count each.
        person
            .goto(&format!("http://site.test:{port}/docs/intro"))
            .await
            .unwrap();
        eventually(Duration::from_secs(20), || {
            (count(&shards, "docs/intro") == 1).then_some(())
        });
        for path in ["/docs/install", "/pricing"] {
            person
                .execute(&format!("history.pushState({{}}, '', '{path}')"), vec![])
                .await
                .unwrap();
        }
        eventually(Duration::from_secs(20), || {
            (count(&shards, "docs/install") == 1 && count(&shards, "pricing") == 1).then_some(())
        });
        // Back to the page before: a view of it again (the tracker follows popstate).
        person.back().await.unwrap();
        eventually(Duration::from_secs(20), || {
            (count(&shards, "docs/install") == 2).then_some(())
        });
        assert_eq!(count(&shards, "docs/intro"), 1, "each view counted once");
        assert_eq!(count(&shards, "pricing"), 1, "each view counted once");

        // The page reads its own count cross-origin and shows it.
        assert_eq!(shown_count(&person).await, "2");
        assert_eq!(person.current_url().await.unwrap().path(), "/docs/install");
        let png = person.screenshot().await.unwrap();
        let dir = workspace().join("target/browser");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("site-page.png"), png).unwrap();

        // A site that is not allowed: its view is refused, and it cannot read counts.
        person
            .goto(&format!("http://evil.test:{port}/docs/intro"))
            .await
            .unwrap();
        assert_eq!(shown_count(&person).await, "unavailable");
        // On localhost the tracker sends nothing at all (the site allows localhost, so a view
        // sent from there would have counted).
        person
            .goto(&format!("http://localhost:{port}/docs/intro"))
            .await
            .unwrap();
        assert_eq!(shown_count(&person).await, "unavailable");
        wait_quiet(&host);
        assert_eq!(count(&shards, "docs/intro"), 1);
        person.close().await.unwrap();

        // A headless browser (its own User-Agent): not a visit, but a bot view of the page.
        let bot = driver.session(None, &profiles.path().join("bot")).await;
        bot.goto(&format!("http://site.test:{port}/pricing"))
            .await
            .unwrap();
        eventually(Duration::from_secs(20), || {
            let read = get(&host.url("/visits/pricing")).json();
            (read["bots_today"] == 1).then_some(())
        });
        bot.close().await.unwrap();
    });
    // Nothing the refused site, localhost or the bot sent was counted.
    assert_eq!(count(&shards, "docs/intro"), 1);
    assert_eq!(count(&shards, "docs/install"), 2);
    assert_eq!(count(&shards, "pricing"), 1);
}

/// Runs `script` (a function body) in the page until it returns something other than `null`,
/// and returns that (up to 20 s).
async fn until_js(client: &Client, script: &str) -> serde_json::Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    loop {
        let value = client.execute(script, vec![]).await.unwrap();
        if !value.is_null() {
            return value;
        }
        if std::time::Instant::now() > deadline {
            let state = client
                .execute(
                    "return {errors: window.__tallyErrors || null, failed: window.__tallyFailed || null, \
                     text: document.body ? document.body.innerText.slice(0, 400) : null}",
                    vec![],
                )
                .await;
            let console = console_problems(client).await;
            panic!("never true in the page: {script}\npage: {state:?}\nconsole: {console:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// `n` as the dashboard shows it (`toLocaleString("en")`: thousands separated by commas).
fn en(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// 30 days of visits to six pages (server batches that name their time), today's visitors
/// from three sources, and two metric types.
fn seed_dashboard(host: &tally_host::local::LocalHost) {
    const DAY_MS: i64 = 86_400_000;
    let today = support::now_ms() / DAY_MS;
    let pages = [
        "home",
        "blog/launch",
        "blog/notes",
        "docs/install",
        "pricing",
        "about",
    ];
    let mut entries = Vec::new();
    for back in 1..30 {
        for (i, page) in pages.iter().enumerate() {
            let count = ((back * 7 + i as i64 * 13) % 40 + 5 * (6 - i as i64)) as u64;
            let at = tally_core::rfc3339::format_unix_ms((today - back) * DAY_MS + 9 * 3_600_000);
            entries.push(json!({"page": page, "count": count, "at": at}));
        }
    }
    for chunk in entries.chunks(100) {
        let body = json!({ "visits": chunk }).to_string();
        let reply = support::post_with(&host.url("/visit"), &[], Some(&body));
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Today: visitors forwarded by a server with where they came from.
    for i in 0..24 {
        let ua = PERSON_UA.replace("156.0.0.0", &format!("156.0.{i}.0"));
        let source = [
            "https://news.example.com/item",
            "https://www.search.example/q",
            "https://friends.example/",
        ][i % 3];
        let page = pages[i % 4];
        let reply = support::post_with(
            &host.url(&format!("/visit/{page}")),
            &[("user-agent", ua.as_str()), ("referer", source)],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let now = support::now_ms();
    let samples: Vec<serde_json::Value> = (0..40)
        .map(|i| {
            let at = tally_core::rfc3339::format_unix_ms(now - (40 - i) * 60_000);
            [
                json!({"timestamp": at, "value": 20.0 + (i % 7) as f64, "type": "cpu"}),
                json!({"timestamp": at, "value": 512.0 + i as f64, "type": "memory_mb"}),
            ]
        })
        .flat_map(|pair| pair.into_iter())
        .collect();
    let reply = support::post(
        &host.url("/metrics"),
        "application/json",
        &serde_json::Value::from(samples).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// The 30 days ending today, as the dashboard's default range asks for them.
fn last_30_days() -> String {
    const DAY_MS: i64 = 86_400_000;
    let today = support::now_ms() / DAY_MS;
    let day = |d: i64| tally_core::rfc3339::format_unix_ms(d * DAY_MS)[..10].to_string();
    format!("from={}&to={}", day(today - 29), day(today))
}

/// Checks that what the open dashboard shows is what the API answers.
async fn assert_dashboard_shows_the_api(
    client: &Client,
    host: &tally_host::local::LocalHost,
    auth: &[(&str, &str)],
) {
    let range = last_30_days();
    let stats = support::get_with(&host.url(&format!("/stats?{range}")), auth).json();
    let shown = client
        .execute(
            "return {visits: document.getElementById('visits').textContent, \
             uniques: document.getElementById('uniques').textContent, \
             pages: Array.from(document.querySelectorAll('#pages tr')).map(r => [r.cells[0].textContent, r.cells[1].textContent]), \
             sources: Array.from(document.querySelectorAll('#sources tr')).map(r => [r.cells[0].textContent, r.cells[1].textContent]), \
             series: window.__tallyCharts.chart.data.slice(1)}",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(shown["visits"], en(stats["visits"].as_u64().unwrap()));
    assert_eq!(shown["uniques"], en(stats["uniques"].as_u64().unwrap()));
    let rows = |list: &serde_json::Value, name: &str| -> Vec<serde_json::Value> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|p| json!([p[name], en(p["count"].as_u64().unwrap())]))
            .collect()
    };
    assert_eq!(
        shown["pages"].as_array().unwrap(),
        &rows(&stats["top_pages"], "page")
    );
    assert_eq!(
        shown["sources"].as_array().unwrap(),
        &rows(&stats["top_sources"], "host")
    );
    let series = support::get_with(&host.url(&format!("/stats/history?{range}")), auth).json();
    let points = series["points"].as_array().unwrap();
    assert_eq!(points.len(), 30);
    let visits: Vec<serde_json::Value> = points.iter().map(|p| p["visits"].clone()).collect();
    let uniques: Vec<serde_json::Value> = points.iter().map(|p| p["uniques"].clone()).collect();
    assert_eq!(shown["series"], json!([visits, uniques]));
}

#[test]
fn the_dashboard_shows_what_the_api_answers_on_a_desktop_and_a_phone() {
    let shards = RedisShards::start(2).unwrap();
    let host = tally_host(&shards, &[]);
    seed_dashboard(&host);
    let admin_key = "dashboard-test-key";
    let private = tally_host(
        &shards,
        &[
            ("dashboard_access", "admin".into()),
            ("admin_key", admin_key.into()),
        ],
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let driver = Driver::start();
    let profiles = tempfile::tempdir().unwrap();
    let out = workspace().join("target/browser");
    std::fs::create_dir_all(&out).unwrap();
    runtime.block_on(async {
        let client = driver
            .session(Some(PERSON_UA), &profiles.path().join("desktop"))
            .await;
        client.set_window_size(1280, 1100).await.unwrap();
        client.goto(&host.url("/dashboard")).await.unwrap();
        let first_render_ms = until_js(
            &client,
            "return window.__tallyLoaded ? window.__tallyRendered : null",
        )
        .await
        .as_f64()
        .unwrap();
        // Where the time went: each file's and API call's start and end, after navigation.
        let loads = client
            .execute(
                "return performance.getEntriesByType('resource').map(e => \
                 [new URL(e.name).pathname + new URL(e.name).search.slice(0, 20), Math.round(e.startTime), Math.round(e.responseEnd)])",
                vec![],
            )
            .await
            .unwrap();
        let navigation = client
            .execute(
                "var n = performance.getEntriesByType('navigation')[0]; \
                 return {response_end: Math.round(n.responseEnd), dom_content_loaded: Math.round(n.domContentLoadedEventEnd), app_started: Math.round(window.__tallyStarted)}",
                vec![],
            )
            .await
            .unwrap();
        let errors = client
            .execute("return [window.__tallyErrors, window.__tallyFailed || null]", vec![])
            .await
            .unwrap();
        assert_eq!(errors, json!([[], null]));
        assert_dashboard_shows_the_api(&client, &host, &[]).await;

        // Every metric type, with its daily summary.
        let metrics = client
            .execute(
                "return Array.from(document.querySelectorAll('#metrics .metric')).map(m => m.textContent)",
                vec![],
            )
            .await
            .unwrap();
        let metrics: Vec<&str> = metrics.as_array().unwrap().iter().map(|m| m.as_str().unwrap()).collect();
        assert_eq!(metrics.len(), 2, "{metrics:?}");
        assert!(metrics[0].starts_with("cpu") && metrics[0].contains("count 40"), "{metrics:?}");
        assert!(metrics[1].starts_with("memory_mb") && metrics[1].contains("latest 551"), "{metrics:?}");

        // Opened again (what a returning owner sees: the files revalidated by ETag, the
        // browser's compiled-code cache warm), five times.
        let mut again_ms = Vec::new();
        for _ in 0..5 {
            client.goto(&host.url("/dashboard")).await.unwrap();
            let ms = until_js(
                &client,
                "return window.__tallyLoaded ? window.__tallyRendered : null",
            )
            .await;
            again_ms.push(ms.as_f64().unwrap().round());
        }
        again_ms.sort_by(f64::total_cmp);

        // A page's own history, on click.
        client
            .execute("document.querySelector('#pages tr').click()", vec![])
            .await
            .unwrap();
        let drawn = until_js(
            &client,
            "var c = window.__tallyCharts['page-chart']; return c ? c.data[1] : null",
        )
        .await;
        let top = client
            .execute("return document.querySelector('#pages td').textContent", vec![])
            .await
            .unwrap();
        let history = get(&host.url(&format!("/visits/{}/history?{}", top.as_str().unwrap(), last_30_days()))).json();
        let expected: Vec<serde_json::Value> =
            history.as_array().unwrap().iter().map(|p| p["visits"].clone()).collect();
        assert_eq!(drawn, json!(expected));
        std::fs::write(out.join("dashboard.png"), client.screenshot().await.unwrap()).unwrap();

        // By hour: the last 48 hours.
        client
            .execute(
                "var s = document.getElementById('interval'); s.value = 'hour'; \
                 s.dispatchEvent(new Event('change'))",
                vec![],
            )
            .await
            .unwrap();
        let hours = until_js(
            &client,
            "return window.__tallyLoaded >= 2 ? window.__tallyCharts.chart.data[1] : null",
        )
        .await;
        let hourly = get(&host.url("/stats/history?interval=hour")).json();
        let expected: Vec<serde_json::Value> =
            hourly["points"].as_array().unwrap().iter().map(|p| p["visits"].clone()).collect();
        assert_eq!(hours, json!(expected));

        // A phone's width: everything fits, nothing scrolls sideways.
        client.set_window_size(390, 844).await.unwrap();
        let fits = until_js(
            &client,
            "return window.innerWidth <= 400 ? document.documentElement.scrollWidth <= window.innerWidth : null",
        )
        .await;
        assert_eq!(fits, json!(true));
        std::fs::write(out.join("dashboard-phone.png"), client.screenshot().await.unwrap()).unwrap();
        assert_eq!(console_problems(&client).await, Vec::<String>::new());

        // Admin-only: the page asks for the key, a wrong one is refused, the right one opens it.
        client.set_window_size(1280, 1100).await.unwrap();
        client.goto(&private.url("/dashboard")).await.unwrap();
        until_js(&client, "return window.__tallyFailed ? true : null").await;
        for (key, opens) in [("not-the-key", false), (admin_key, true)] {
            let form = client.find(Locator::Id("key")).await.unwrap();
            assert!(form.is_displayed().await.unwrap());
            client.find(Locator::Id("secret")).await.unwrap().send_keys(key).await.unwrap();
            client
                .execute("window.__tallyFailed = null; document.querySelector('#key button').click()", vec![])
                .await
                .unwrap();
            let done = until_js(
                &client,
                "return window.__tallyFailed ? 'failed' : (window.__tallyLoaded ? 'loaded' : null)",
            )
            .await;
            assert_eq!(done, json!(if opens { "loaded" } else { "failed" }));
        }
        assert_dashboard_shows_the_api(&client, &private, &[("authorization", &format!("Bearer {admin_key}"))]).await;
        // The 401s and 403s the page met on the way are on the console as failed loads; nothing
        // else is.
        let problems = console_problems(&client).await;
        assert!(
            problems.iter().all(|p| p.contains("status of 401") || p.contains("status of 403")),
            "{problems:?}"
        );
        client.close().await.unwrap();

        let timing = json!({
            "first_render_ms": first_render_ms.round(),
            "opened_again_ms": again_ms,
            "view": "30 days, 2 shards, 6 pages",
            "navigation": navigation,
            "loads": loads,
        });
        std::fs::write(out.join("dashboard-timing.json"), timing.to_string()).unwrap();
        eprintln!(
            "dashboard: 30-day view rendered {first_render_ms:.0} ms after the first navigation \
             (a new browser), {:.0} ms (median of 5) when opened again; details in {}",
            again_ms[2],
            out.join("dashboard-timing.json").display()
        );
    });
}
