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
