//! `tally-reshard` against real shards filled through Tally. A dry run reports exactly the
//! pages and metric types the hashing moves, per pair of shards, and changes nothing. A move
//! (adding a shard, then removing one), killed with SIGKILL halfway and run again, leaves every
//! count, history, visitor count, top list and summary as it was, and no key on a shard that
//! does not own it.

mod support;

use std::collections::BTreeMap;
use std::process::Command;

use support::{post, post_with, redis, tally_host};
use tally_core::reshard::Reshard;
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

/// Everything a reader can see, without where it was served from.
fn view(
    host: &tally_host::local::LocalHost,
    pages: &[String],
    types: &[String],
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
    out.insert("stats".into(), json(&format!("/stats?from={from}&top=100")));
    out.insert("site".into(), json(&format!("/stats/history?from={from}")));
    out.insert("top".into(), json("/visits?top=100"));
    out.insert("top2".into(), json("/visits?top=100&cursor=100"));
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

/// No journal entry is left, and a dry run over the new list finds nothing to move.
fn settled(shards: &[&Shard]) {
    for shard in shards {
        let journals: Vec<String> = redis::cmd("KEYS")
            .arg("tally:mv:*")
            .query(&mut redis(shard))
            .unwrap();
        assert!(
            journals.is_empty(),
            "left on {}: {journals:?}",
            shard.name()
        );
    }
    let report = dry_run(shards, shards);
    assert!(moves(&report).is_empty(), "{report}");
    assert!(report["moves"].as_array().unwrap().is_empty(), "{report}");
}

#[test]
fn adding_then_removing_a_shard_killed_halfway_keeps_everything_exact() {
    let shards = RedisShards::start(3).unwrap();
    let [a, b, c] = [0, 1, 2].map(|i| &shards.shards()[i]);
    let trusted = ("trusted_proxies", "127.0.0.1/32".to_string());
    let host = tally_host(&shards, &[("shards", list(&[a, b])), trusted.clone()]);
    let (pages, types) = fill(&host);
    let reference = view(&host, &pages, &types);
    drop(host);

    // The states a run killed between its steps leaves, made by hand: a page's count absorbed
    // on c (journaled) but still on its source; and a journal entry whose unit has already
    // left its source. Neither may count twice or stay behind.
    let plan = Reshard::new(&["a", "b"], &["a", "b", "c"]).unwrap();
    let moving = pages
        .iter()
        .find(|p| plan.moves(p.as_bytes()).is_some())
        .unwrap();
    let from = plan.moves(moving.as_bytes()).unwrap().from;
    let source = if from == "a" { a } else { b };
    let count: i64 = redis::cmd("ZSCORE")
        .arg("tally:pages")
        .arg(moving)
        .query(&mut redis(source))
        .unwrap();
    let absorbed: Vec<i64> = redis::cmd("EVAL")
        .arg(tally_core::scripts::ABSORB_MOVED.source)
        .arg(0)
        .arg(from)
        .arg("zincr")
        .arg("tally:pages")
        .arg(moving)
        .arg(count)
        .arg("")
        .query(&mut redis(c))
        .unwrap();
    assert_eq!(absorbed[0], 1);
    let stale = tally_core::reshard::journal_key(from, "tally:pd:1", Some("gone"));
    redis::cmd("SET")
        .arg(&stale)
        .arg(1)
        .query::<()>(&mut redis(c))
        .unwrap();

    // Adding c.
    move_killed_halfway(&[a, b], &[a, b, c]);
    assert!(
        snapshot(c).keys().any(|k| k.starts_with("tally:pd:")),
        "nothing reached c"
    );
    let host = tally_host(&shards, &[("shards", list(&[a, b, c])), trusted.clone()]);
    assert_eq!(view(&host, &pages, &types), reference);
    drop(host);
    settled(&[a, b, c]);

    // Removing b.
    move_killed_halfway(&[a, b, c], &[a, c]);
    let left: Vec<String> = snapshot(b)
        .into_keys()
        .filter(|k| !k.starts_with("tally:idem:") && !k.starts_with("tally:tb:"))
        .collect();
    assert!(left.is_empty(), "left on the removed shard: {left:?}");
    let host = tally_host(&shards, &[("shards", list(&[a, c])), trusted]);
    assert_eq!(view(&host, &pages, &types), reference);
    drop(host);
    settled(&[a, c]);
}
