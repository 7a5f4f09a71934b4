//! Changing the shard list through Tally, on real shards. A dry run of `tally-reshard`
//! reports exactly the pages and metric types the hashing moves, per pair of shards, and
//! changes nothing. A move (adding a shard, then removing one), killed with SIGKILL halfway and
//! run again, leaves every count, history, visitor count, top list and summary as it was, and
//! no key on a shard that does not own it. And the same online: the app in migration mode
//! (`shards_previous`) under a concurrent visit and metric load, read all along, never reads a
//! count lower than the visits it has acknowledged, and ends with every count equal to them.

mod support;

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use support::{post, post_with, redis, tally_host};
use tally_core::reshard::{
    handoff_args, page_rank_units, parse_handoff_reply, Outbox, Owner, Reshard,
};
use tally_host::shards::{RedisShards, Shard};

/// Every key of a shard with its `DUMP`, to compare before and after.
fn snapshot(shard: &Shard) -> BTreeMap<String, Vec<u8>> {
    let mut conn = redis(shard);
    let keys: Vec<String> = redis::cmd("KEYS").arg("*").query(&mut conn).unwrap();
    keys.into_iter()
        .map(|k| {
            let dump: Vec<u8> = redis::cmd("DUMP").arg(&k).query(&mut conn).unwrap();
            (k, dump)
        })
        .collect()
}

fn list(shards: &[&Shard]) -> String {
    shards
        .iter()
        .map(|s| format!("{}={}", s.name(), s.url()))
        .collect::<Vec<_>>()
        .join(",")
}

fn dry_run(from: &[&Shard], to: &[&Shard]) -> serde_json::Value {
    let out = Command::new(env!("CARGO_BIN_EXE_tally-reshard"))
        .args([
            "--from",
            &list(from),
            "--to",
            &list(to),
            "--dry-run",
            "--json",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// (from, to) → (pages, metric types) in a report.
fn moves(report: &serde_json::Value) -> BTreeMap<(String, String), (u64, u64)> {
    report["moves"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                (
                    m["from"].as_str().unwrap().to_string(),
                    m["to"].as_str().unwrap().to_string(),
                ),
                (
                    m["pages"].as_u64().unwrap(),
                    m["metric_types"].as_u64().unwrap(),
                ),
            )
        })
        .collect()
}

/// What the hashing says should move, for the pages and types recorded.
fn expected(
    before: &[&str],
    after: &[&str],
    pages: &[String],
    types: &[String],
) -> BTreeMap<(String, String), (u64, u64)> {
    let plan = Reshard::new(before, after).unwrap();
    let mut out: BTreeMap<(String, String), (u64, u64)> = BTreeMap::new();
    for page in pages {
        if let Some(m) = plan.moves(page.as_bytes()) {
            out.entry((m.from.into(), m.to.into())).or_default().0 += 1;
        }
    }
    for t in types {
        if let Some(m) = plan.moves(t.as_bytes()) {
            out.entry((m.from.into(), m.to.into())).or_default().1 += 1;
        }
    }
    out
}

#[test]
fn a_dry_run_reports_exactly_what_moves_and_changes_nothing() {
    let shards = RedisShards::start(3).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| &shards.shards()[i]);
    let host = tally_host(&shards, &[("shards", list(&[a, b]))]);

    let (pages, types) = fill(&host);

    let before: Vec<_> = [a, b, c].iter().map(|s| snapshot(s)).collect();

    // Adding c.
    let report = dry_run(&[a, b], &[a, b, c]);
    let want = expected(&["a", "b"], &["a", "b", "c"], &pages, &types);
    assert!(!want.is_empty());
    assert_eq!(moves(&report), want, "{report}");

    // Removing b.
    let report = dry_run(&[a, b], &[a]);
    let mut want = expected(&["a", "b"], &["a"], &pages, &types);
    assert_eq!(want.len(), 1, "everything on b goes to a");
    let got = moves(&report);
    assert_eq!(got, std::mem::take(&mut want), "{report}");
    // b's share of the site's numbers goes too.
    let b_to_a = report["moves"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["from"] == "b")
        .unwrap();
    assert!(b_to_a["units"].as_u64().unwrap() > 0, "{report}");
    assert!(b_to_a["bytes"].as_u64().unwrap() > 0, "{report}");

    let after: Vec<_> = [a, b, c].iter().map(|s| snapshot(s)).collect();
    assert_eq!(before, after, "a dry run changed a shard");
}

/// Fills shards through a host: five past days of batches over 120 pages, today's single
/// visits (visitors, hours) to 40 of them, 12 metric types. Returns the pages and types.
fn fill(host: &tally_host::local::LocalHost) -> (Vec<String>, Vec<String>) {
    let today = support::now_ms() / support::DAY_MS;
    let pages: Vec<String> = (0..120).map(|i| format!("blog/post-{i}")).collect();
    for back in 1..=5 {
        let at = tally_core::rfc3339::format_unix_ms((today - back) * support::DAY_MS + 36_000_000);
        let batch = serde_json::json!({
            "visits": pages.iter().enumerate()
                .map(|(i, p)| serde_json::json!({"page": p, "count": 1 + (i as i64 * back) % 7, "at": at}))
                .collect::<Vec<_>>()
        });
        let reply = post(&host.url("/visit"), "application/json", &batch.to_string());
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    for (i, page) in pages.iter().take(40).enumerate() {
        let forwarded = format!("203.0.113.{}", i % 20 + 1);
        let reply = post_with(
            &host.url(&format!("/visit/{page}?referrer=site{}.example", i % 3)),
            &[("x-forwarded-for", forwarded.as_str())],
            None,
        );
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    let types: Vec<String> = (0..12).map(|i| format!("type{i}")).collect();
    let now = support::now_ms();
    let samples: Vec<_> = types
        .iter()
        .enumerate()
        .flat_map(|(i, t)| {
            (0..5).map(move |k| {
                serde_json::json!({"timestamp": tally_core::rfc3339::format_unix_ms(now - k * 60_000),
                    "value": i as f64 + k as f64 / 2.0, "type": t})
            })
        })
        .collect();
    let reply = post(
        &host.url("/metrics"),
        "application/json",
        &serde_json::Value::from(samples).to_string(),
    );
    assert_eq!(reply.status, 201, "{}", reply.body);
    (pages, types)
}

/// Everything a reader can see, without where it was served from: with `site`, the site's
/// numbers and rankings too.
fn view(
    host: &tally_host::local::LocalHost,
    pages: &[String],
    types: &[String],
    site: bool,
) -> serde_json::Value {
    let from = support::date(support::now_ms() / support::DAY_MS - 6);
    let json = |path: &str| {
        let reply = support::get(&host.url(path));
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let mut value = reply.json();
        if let Some(map) = value.as_object_mut() {
            map.remove("served_via");
        }
        value
    };
    let mut out = serde_json::Map::new();
    for page in pages {
        out.insert(format!("count {page}"), json(&format!("/visits/{page}")));
    }
    for page in pages.iter().step_by(10) {
        out.insert(
            format!("history {page}"),
            json(&format!("/visits/{page}/history?from={from}")),
        );
    }
    if site {
        out.insert("stats".into(), json(&format!("/stats?from={from}&top=100")));
        out.insert("site".into(), json(&format!("/stats/history?from={from}")));
        out.insert("top".into(), json("/visits?top=100"));
        out.insert("top2".into(), json("/visits?top=100&cursor=100"));
    }
    for t in types {
        out.insert(
            format!("summary {t}"),
            json(&format!("/summary?type={t}&period=all")),
        );
        out.insert(format!("list {t}"), json(&format!("/metrics?type={t}")));
    }
    out.into()
}

/// Runs the migrator with a slow rate, kills it with SIGKILL once it has moved something,
/// then runs it again to the end.
fn move_killed_halfway(from: &[&Shard], to: &[&Shard]) {
    use std::io::BufRead;
    let mut first = Command::new(env!("CARGO_BIN_EXE_tally-reshard"))
        .args([
            "--from",
            &list(from),
            "--to",
            &list(to),
            "--rate",
            "150",
            "--batch",
            "10",
        ])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(first.stderr.take().unwrap());
    let mut killed = false;
    for line in stderr.lines() {
        let line = line.unwrap();
        let moved: u64 = line
            .split(", ")
            .find_map(|part| part.strip_suffix(" units moved")?.parse().ok())
            .unwrap_or(0);
        if moved > 0 {
            first.kill().unwrap(); // SIGKILL
            killed = true;
            break;
        }
    }
    first.wait().unwrap();
    assert!(killed, "the first run ended before it moved anything");
    let second = Command::new(env!("CARGO_BIN_EXE_tally-reshard"))
        .args(["--from", &list(from), "--to", &list(to)])
        .output()
        .unwrap();
    assert!(
        second.status.success(),
        "{}{}",
        String::from_utf8_lossy(&second.stdout),
        String::from_utf8_lossy(&second.stderr)
    );
}

/// No outbox is left, and a dry run over the new list finds nothing to move: no key is on a
/// shard that does not own it.
fn settled(shards: &[&Shard]) {
    for shard in shards {
        let outboxes: Vec<String> = redis::cmd("KEYS")
            .arg("tally:out:*")
            .query(&mut redis(shard))
            .unwrap();
        assert!(
            outboxes.is_empty(),
            "left on {}: {outboxes:?}",
            shard.name()
        );
    }
    let report = dry_run(shards, shards);
    assert!(report["moves"].as_array().unwrap().is_empty(), "{report}");
}

/// Runs `handoff.lua` by hand: `page`'s count off `source` towards `to`; returns the
/// outboxes it answers.
fn hand_off(source: &Shard, to: &str, page: &str) -> Vec<Outbox> {
    let owner = Owner::Page(page.to_string());
    let args = handoff_args(source.name(), to, &[owner], &page_rank_units(page, None));
    let reply: Vec<Vec<u8>> = redis::cmd("EVAL")
        .arg(tally_core::scripts::HANDOFF.source)
        .arg(0)
        .arg(args)
        .query(&mut redis(source))
        .unwrap();
    parse_handoff_reply(reply).unwrap()
}

#[test]
fn adding_then_removing_a_shard_killed_halfway_keeps_everything_exact() {
    let shards = RedisShards::start(3).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| &shards.shards()[i]);
    let trusted = ("trusted_proxies", "127.0.0.1/32".to_string());
    let host = tally_host(&shards, &[("shards", list(&[a, b])), trusted.clone()]);
    let (pages, types) = fill(&host);
    let reference = view(&host, &pages, &types, true);
    drop(host);

    // The states a hand-off killed between its steps leaves, made by hand: a page's count
    // taken into an outbox on its source and never absorbed; another's absorbed on c but its
    // outbox never deleted. Neither may be lost, count twice or stay behind.
    let plan = Reshard::new(&["a", "b"], &["a", "b", "c"]).unwrap();
    let mut moving = pages.iter().filter(|p| plan.moves(p.as_bytes()).is_some());
    let source_of = |page: &str| match plan.moves(page.as_bytes()).unwrap().from {
        "a" => a,
        _ => b,
    };
    let stranded = moving.next().unwrap();
    let boxes = hand_off(source_of(stranded), "c", stranded);
    assert_eq!(boxes.len(), 1);
    let absorbed = moving.next().unwrap();
    let boxes = hand_off(source_of(absorbed), "c", absorbed);
    let applied: i64 = redis::cmd("EVAL")
        .arg(tally_core::scripts::ABSORB_MOVED.source)
        .arg(0)
        .arg(boxes[0].absorb_args())
        .query(&mut redis(c))
        .unwrap();
    assert_eq!(applied, 1);

    // Adding c.
    move_killed_halfway(&[a, b], &[a, b, c]);
    assert!(
        snapshot(c).keys().any(|k| k.starts_with("tally:pd:")),
        "nothing reached c"
    );
    let host = tally_host(&shards, &[("shards", list(&[a, b, c])), trusted.clone()]);
    assert_eq!(view(&host, &pages, &types, true), reference);
    drop(host);
    settled(&[a, b, c]);

    // Removing b.
    move_killed_halfway(&[a, b, c], &[a, c]);
    let left: Vec<String> = snapshot(b)
        .into_keys()
        .filter(|k| {
            !k.starts_with("tally:idem:") && k != "tally:outseq" && !k.starts_with("tally:mv:")
        })
        .collect();
    assert!(left.is_empty(), "left on the removed shard: {left:?}");
    let host = tally_host(&shards, &[("shards", list(&[a, c])), trusted]);
    assert_eq!(view(&host, &pages, &types, true), reference);
    drop(host);
    settled(&[a, c]);
}

/// Pages the load visits, and metric types it ingests.
const LOAD_PAGES: usize = 24;
const LOAD_TYPES: usize = 6;

/// A concurrent visit and metric load through whichever hosts `targets` names, and a reader
/// that checks, all along, that no count read is lower than the visits acknowledged before
/// the read began.
struct Load {
    stop: AtomicBool,
    /// Hosts the writers alternate between (more than one while a deploy rolls out).
    targets: RwLock<Vec<String>>,
    /// The host the reader asks.
    reader: RwLock<String>,
    acked: Vec<AtomicU64>,
    writes: AtomicU64,
    reads: AtomicU64,
    /// Requests each thread has finished (two writers, the metric writer, the reader).
    done: [AtomicU64; 4],
    /// Acknowledged samples per type: (value, timestamp ms).
    samples: Mutex<BTreeMap<String, Vec<f64>>>,
    failures: Mutex<Vec<String>>,
}

impl Load {
    fn page(i: usize) -> String {
        format!("load/p-{i}")
    }

    fn start(url: String) -> (Arc<Self>, Vec<std::thread::JoinHandle<()>>) {
        let load = Arc::new(Load {
            stop: AtomicBool::new(false),
            targets: RwLock::new(vec![url.clone()]),
            reader: RwLock::new(url),
            acked: (0..LOAD_PAGES).map(|_| AtomicU64::new(0)).collect(),
            writes: AtomicU64::new(0),
            reads: AtomicU64::new(0),
            done: Default::default(),
            samples: Mutex::new(BTreeMap::new()),
            failures: Mutex::new(Vec::new()),
        });
        let mut threads = Vec::new();
        for w in 0..2 {
            let load = load.clone();
            threads.push(std::thread::spawn(move || {
                let mut n = w;
                while !load.stop.load(Ordering::SeqCst) {
                    let i = n % LOAD_PAGES;
                    let target = {
                        let targets = load.targets.read().unwrap();
                        targets[n % targets.len()].clone()
                    };
                    let reply = post_with(&format!("{target}/visit/{}", Load::page(i)), &[], None);
                    if reply.status == 200 {
                        load.acked[i].fetch_add(1, Ordering::SeqCst);
                    } else {
                        load.fail(format!("visit: {} {}", reply.status, reply.body));
                    }
                    load.writes.fetch_add(1, Ordering::SeqCst);
                    load.done[w].fetch_add(1, Ordering::SeqCst);
                    n += 2;
                }
            }));
        }
        let metrics = load.clone();
        threads.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !metrics.stop.load(Ordering::SeqCst) {
                let metric_type = format!("load-t{}", n % LOAD_TYPES);
                let value = (n % 97) as f64 / 4.0;
                let body = serde_json::json!([{"type": metric_type, "value": value,
                    "timestamp": tally_core::rfc3339::format_unix_ms(support::now_ms())}]);
                let target = metrics.targets.read().unwrap()[0].clone();
                let reply = post(
                    &format!("{target}/metrics"),
                    "application/json",
                    &body.to_string(),
                );
                if reply.status == 201 {
                    metrics
                        .samples
                        .lock()
                        .unwrap()
                        .entry(metric_type)
                        .or_default()
                        .push(value);
                } else {
                    metrics.fail(format!("ingest: {} {}", reply.status, reply.body));
                }
                metrics.done[2].fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
        let reader = load.clone();
        threads.push(std::thread::spawn(move || {
            let mut n = 0usize;
            while !reader.stop.load(Ordering::SeqCst) {
                let i = (n * 7) % LOAD_PAGES;
                let before = reader.acked[i].load(Ordering::SeqCst);
                let url = reader.reader.read().unwrap().clone();
                let reply = support::get(&format!("{url}/visits/{}", Load::page(i)));
                if reply.status != 200 {
                    reader.fail(format!("read: {} {}", reply.status, reply.body));
                } else {
                    let count = reply.json()["count"].as_u64().unwrap();
                    if count < before {
                        reader.fail(format!(
                            "{} read {count}, but {before} visits were acknowledged before the read",
                            Load::page(i)
                        ));
                    }
                }
                reader.reads.fetch_add(1, Ordering::SeqCst);
                reader.done[3].fetch_add(1, Ordering::SeqCst);
                n += 1;
            }
        }));
        (load, threads)
    }

    fn fail(&self, what: String) {
        let mut failures = self.failures.lock().unwrap();
        if failures.len() < 20 {
            failures.push(what);
        }
    }

    /// Waits until the writers have sent `n` more visits and the reader has made `n` more
    /// reads, and every thread has finished two more requests: so each has started one since
    /// the last `point_to`, and no request is still going to a host no longer named.
    fn run_for(&self, n: u64) {
        let (writes, reads) = (
            self.writes.load(Ordering::SeqCst),
            self.reads.load(Ordering::SeqCst),
        );
        let done: Vec<u64> = self.done.iter().map(|d| d.load(Ordering::SeqCst)).collect();
        support::eventually(Duration::from_secs(60), || {
            (self.writes.load(Ordering::SeqCst) >= writes + n
                && self.reads.load(Ordering::SeqCst) >= reads + n
                && self
                    .done
                    .iter()
                    .zip(&done)
                    .all(|(now, before)| now.load(Ordering::SeqCst) >= before + 2))
            .then_some(())
        });
    }

    fn point_to(
        &self,
        writers: &[&tally_host::local::LocalHost],
        reader: &tally_host::local::LocalHost,
    ) {
        *self.targets.write().unwrap() = writers.iter().map(|h| h.url("")).collect();
        *self.reader.write().unwrap() = reader.url("");
    }

    fn finish(&self, threads: Vec<std::thread::JoinHandle<()>>) {
        self.stop.store(true, Ordering::SeqCst);
        for t in threads {
            t.join().unwrap();
        }
        let failures = self.failures.lock().unwrap();
        assert!(failures.is_empty(), "{failures:#?}");
    }
}

/// Every page's count equals its reference (`count` for the filled pages, the acknowledged
/// visits for the load's), the ranking lists each page once with that count, and each load
/// type's summary equals one computed from the acknowledged samples.
fn check_exact(
    host: &tally_host::local::LocalHost,
    load: &Load,
    pages: &[String],
    types: &[String],
    reference: &serde_json::Value,
) {
    assert_eq!(&view(host, pages, types, false), reference);
    let mut want: BTreeMap<String, u64> = pages
        .iter()
        .map(|p| {
            (
                p.clone(),
                reference[format!("count {p}")]["count"].as_u64().unwrap(),
            )
        })
        .collect();
    for (i, acked) in load.acked.iter().enumerate() {
        let acked = acked.load(Ordering::SeqCst);
        let page = Load::page(i);
        let got = support::get(&host.url(&format!("/visits/{page}"))).json()["count"].clone();
        assert_eq!(got, acked, "{page}");
        want.insert(page, acked);
    }
    let mut seen = BTreeMap::new();
    let mut path = "/visits?top=50".to_string();
    loop {
        let ranked = support::get(&host.url(&path)).json();
        for entry in ranked["pages"].as_array().expect("a ranking") {
            let page = entry["page"].as_str().unwrap().to_string();
            let count = entry["count"].as_u64().unwrap();
            assert!(
                seen.insert(page.clone(), count).is_none(),
                "{page} ranked twice"
            );
        }
        match ranked["next_cursor"].as_str() {
            Some(cursor) => path = format!("/visits?top=50&cursor={cursor}"),
            None => break,
        }
    }
    assert_eq!(seen, want, "the ranking");
    for (metric_type, values) in load.samples.lock().unwrap().iter() {
        let summary =
            support::get(&host.url(&format!("/summary?type={metric_type}&period=all"))).json();
        let min = values.iter().cloned().fold(f64::INFINITY, f64::min);
        let max = values.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let mean = values.iter().sum::<f64>() / values.len() as f64;
        assert_eq!(summary["count"], values.len(), "{metric_type}: {summary}");
        assert_eq!(summary["min_value"], min, "{metric_type}: {summary}");
        assert_eq!(summary["max_value"], max, "{metric_type}: {summary}");
        let avg = summary["average_value"].as_f64().unwrap();
        assert!(
            (avg - mean).abs() < 1e-9,
            "{metric_type}: {summary} vs {mean}"
        );
    }
}

#[test]
fn online_add_then_remove_under_load_never_reads_low_and_ends_exact() {
    let shards = RedisShards::start(3).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| &shards.shards()[i]);
    let trusted = ("trusted_proxies", "127.0.0.1/32".to_string());
    // Every read asks the shards: a cached count may be older than an acknowledgement.
    let fresh = [
        trusted,
        ("cache_ttl_ms", "0".to_string()),
        ("summary_cache_ttl_ms", "0".to_string()),
    ];
    let host_for = |now: &[&Shard], previous: Option<&[&Shard]>| {
        let mut vars = vec![("shards", list(now))];
        if let Some(previous) = previous {
            vars.push(("shards_previous", list(previous)));
        }
        vars.extend(fresh.iter().cloned());
        tally_host(&shards, &vars)
    };
    let old = host_for(&[a, b], None);
    let (pages, types) = fill(&old);
    let reference = view(&old, &pages, &types, false);
    let site_visits = |host: &tally_host::local::LocalHost| {
        let from = support::date(support::now_ms() / support::DAY_MS - 6);
        let stats = support::get(&host.url(&format!("/stats?from={from}"))).json();
        stats["visits"].as_u64().unwrap()
    };
    let filled = site_visits(&old);
    let (load, threads) = Load::start(old.url(""));
    load.run_for(300);

    // Adding c: the new deploy rolls out (both nodes write), then is alone.
    let migrating = host_for(&[a, b, c], Some(&[a, b]));
    load.point_to(&[&old, &migrating], &migrating);
    load.run_for(200);
    load.point_to(&[&migrating], &migrating);
    load.run_for(20);
    drop(old);
    move_killed_halfway(&[a, b], &[a, b, c]);
    load.run_for(200);
    let done = host_for(&[a, b, c], None);
    load.point_to(&[&done], &done);
    load.run_for(20);
    drop(migrating);
    load.run_for(200);

    // Removing b the same way.
    let migrating = host_for(&[a, c], Some(&[a, b, c]));
    load.point_to(&[&done, &migrating], &migrating);
    load.run_for(200);
    load.point_to(&[&migrating], &migrating);
    load.run_for(20);
    drop(done);
    move_killed_halfway(&[a, b, c], &[a, c]);
    load.run_for(200);
    load.finish(threads);
    eprintln!(
        "load: {} visits, {} reads checked",
        load.writes.load(Ordering::SeqCst),
        load.reads.load(Ordering::SeqCst)
    );
    drop(migrating);

    let done = host_for(&[a, c], None);
    check_exact(&done, &load, &pages, &types, &reference);
    // The removed shard's share of the site's visits went to the shard that stays.
    let acked: u64 = load.acked.iter().map(|a| a.load(Ordering::SeqCst)).sum();
    assert_eq!(site_visits(&done), filled + acked);
    settled(&[a, c]);
}

/// The first page of the form `<prefix>-<n>` that moves from `from` when `c` joins `a` and `b`.
fn moving_page(prefix: &str, from: &str) -> String {
    let plan = Reshard::new(&["a", "b"], &["a", "b", "c"]).unwrap();
    (0..)
        .map(|i| format!("{prefix}-{i}"))
        .find(|p| plan.moves(p.as_bytes()).is_some_and(|m| m.from == from))
        .unwrap()
}

#[test]
fn retries_and_rate_limits_keep_their_state_across_the_switch() {
    let shards = RedisShards::start(3).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| &shards.shards()[i]);
    let limited = [
        ("trusted_proxies", "127.0.0.1/32".to_string()),
        ("rate_limit_writes", "3/60s burst 3".to_string()),
    ];
    let with = |vars: &[(&'static str, String)]| {
        let mut all = vars.to_vec();
        all.extend(limited.iter().cloned());
        tally_host(&shards, &all)
    };
    let old = with(&[("shards", list(&[a, b]))]);
    let migrating = with(&[
        ("shards", list(&[a, b, c])),
        ("shards_previous", list(&[a, b])),
    ]);
    let visit = |host: &tally_host::local::LocalHost, page: &str, key: &str, client: &str| {
        let mut headers = vec![("x-forwarded-for", client)];
        if !key.is_empty() {
            headers.push(("idempotency-key", key));
        }
        post_with(&host.url(&format!("/visit/{page}")), &headers, None)
    };

    // A retry whose first attempt was answered on the old shard is a replay, not a second
    // visit; the same key for another request is a conflict.
    let page = moving_page("retry", "a");
    let first = visit(&old, &page, "key-1", "198.51.100.1");
    assert_eq!(
        (first.status, first.json()["count"].clone()),
        (200, 1.into())
    );
    let retry = visit(&migrating, &page, "key-1", "198.51.100.2");
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["count"], 1, "the retry was applied again");
    let other = moving_page("other", "a");
    let conflict = visit(&migrating, &other, "key-1", "198.51.100.3");
    assert_eq!(conflict.status, 422, "{}", conflict.body);

    // A batch too.
    let pages = [moving_page("batch", "a"), moving_page("batch", "b")];
    let body = serde_json::json!({"visits": pages.iter()
        .map(|p| serde_json::json!({"page": p, "count": 1})).collect::<Vec<_>>()})
    .to_string();
    // (Each attempt from its own client: a batch costs a token per visit.)
    let send = |host: &tally_host::local::LocalHost, client: &str| {
        post_with(
            &host.url("/visit"),
            &[("idempotency-key", "batch-1"), ("x-forwarded-for", client)],
            Some(&body),
        )
    };
    assert_eq!(send(&old, "198.51.100.4").status, 200);
    let retry = send(&migrating, "198.51.100.5");
    assert_eq!(retry.status, 200, "{}", retry.body);
    assert_eq!(retry.json()["replayed"], true, "{}", retry.body);
    for page in &pages {
        let count =
            support::get(&migrating.url(&format!("/visits/{page}"))).json()["count"].clone();
        assert_eq!(count, 1, "{page} counted twice");
    }

    // A client whose bucket moves to c keeps it: having spent its 3 writes on the old
    // placement, it is refused on the new one.
    let plan = Reshard::new(&["a", "b"], &["a", "b", "c"]).unwrap();
    let buckets = |shard: &Shard| -> Vec<String> {
        redis::cmd("KEYS")
            .arg("tally:tb:*")
            .query(&mut redis(shard))
            .unwrap()
    };
    let mut known: Vec<String> = [a, b].iter().flat_map(|s| buckets(s)).collect();
    let client = (10..250)
        .map(|i| format!("203.0.113.{i}"))
        .find(|client| {
            let reply = visit(&old, "bucket-probe", "", client);
            assert_eq!(reply.status, 200, "{}", reply.body);
            let now: Vec<String> = [a, b].iter().flat_map(|s| buckets(s)).collect();
            let new: Vec<String> = now.iter().filter(|k| !known.contains(k)).cloned().collect();
            assert_eq!(new.len(), 1, "one new bucket per client: {new:?}");
            known = now;
            plan.moves(new[0].as_bytes()).is_some()
        })
        .expect("a client whose bucket moves");
    for _ in 0..2 {
        assert_eq!(visit(&old, "bucket-probe", "", &client).status, 200);
    }
    let refused = visit(&migrating, "bucket-probe", "", &client);
    assert_eq!(
        refused.status, 429,
        "the bucket started afresh on c: {}",
        refused.body
    );
}
