//! `tally-reshard`: moves Tally's data when the `shards` list changes, or reports what would
//! move.
//!
//! ```text
//! tally-reshard --from "a=redis://…,b=redis://…" --to "a=redis://…,b=redis://…,c=redis://…" [--dry-run]
//! ```
//!
//! Walks every shard of the old list with `SCAN` (and `ZSCAN`/`HSCAN` inside keys that hold
//! many pages or metric types) and classifies each key (`tally_core::reshard`). Data whose
//! owner (page, metric type) lives elsewhere in the new list moves there; a removed shard's
//! share of the site's numbers goes to its heir. Rate-limit buckets and idempotency records
//! stay where they are: they expire within a day.
//!
//! A move goes in units (a page's count, one day's entry of a page, a page's hours or visitors
//! that day, a metric type's keys), in batches:
//! 1. the destination absorbs the batch atomically, journaling each unit it applies
//!    (`absorb_moved.lua`); a unit already journaled is skipped;
//! 2. the source drops the batch atomically (`release_moved.lua`);
//! 3. the destination deletes the batch's journal entries.
//!
//! Killed at any point and run again, it applies every unit exactly once: at start it looks
//! for journal entries left by a previous run and finishes their units (step 2 if the unit is
//! still on the source, then step 3). `--dry-run` only reads, and reports per pair of shards
//! the pages, metric types, keys, members and bytes that would move.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use clap::Parser;
use redis::Connection;
use tally_core::config::{parse_shard_list, ShardConfig};
use tally_core::reshard::{
    classify, journal_key, parse_journal_key, recent_member_type, KeyKind, Reshard,
};
use tally_core::scripts::{ABSORB_MOVED, RELEASE_MOVED};

/// Move Tally's data to match a new shard list.
#[derive(Parser, Debug)]
#[command(version, about)]
struct Args {
    /// The current `shards` list (`name=redis://…,…`).
    #[arg(long)]
    from: String,
    /// The new `shards` list.
    #[arg(long)]
    to: String,
    /// Only report what would move; change nothing.
    #[arg(long)]
    dry_run: bool,
    /// At most this many units moved (or, with --dry-run, keys read) per second (0: no limit).
    #[arg(long, default_value_t = 0)]
    rate: u64,
    /// Units per batch (one round trip to each shard per batch).
    #[arg(long, default_value_t = 200)]
    batch: usize,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
}

/// What moves from one shard to another.
#[derive(Default, Debug)]
struct PairReport {
    pages: BTreeSet<String>,
    metric_types: BTreeSet<String>,
    /// Units: whole keys, or members and fields of shared keys.
    units: u64,
    /// Approximate bytes (`MEMORY USAGE`; shared keys pro rata of their members).
    bytes: u64,
}

#[derive(Default, Debug, serde::Serialize)]
struct ShardReport {
    keys_read: u64,
    /// Idempotency records (kept 24 h): not moved, they expire.
    idempotency_records: u64,
    /// Rate-limit buckets: not moved, a bucket refills within its period.
    rate_buckets: u64,
    /// Keys Tally does not write.
    unknown_keys: u64,
    /// Metric keys left in place because their type already has data on its new shard.
    refused: Vec<String>,
}

/// One unit of data to move.
struct Unit {
    to: String,
    /// Page or metric type, for the report.
    owner: Owner,
    /// `absorb_moved.lua`'s five values.
    kind: &'static str,
    key: String,
    member: Option<String>,
    value: Vec<u8>,
    expire_at_ms: Option<i64>,
    /// How the source drops it: `zrem`, `hdel` or `del`.
    release: &'static str,
    bytes: u64,
}

#[derive(Clone)]
enum Owner {
    Page(String),
    Type(String),
    Site,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let from = parse_shard_list(&args.from).context("--from")?;
    let to = parse_shard_list(&args.to).context("--to")?;
    let names = |list: &[ShardConfig]| list.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let plan = Reshard::new(&names(&from), &names(&to)).context("the shard lists")?;
    for shard in &to {
        if let Some(old) = from.iter().find(|s| s.name == shard.name) {
            if old.url != shard.url {
                bail!(
                    "shard {} has another address in --to; a shard's name is its identity",
                    shard.name
                );
            }
        }
    }
    let mut mover = Mover {
        plan,
        dry_run: args.dry_run,
        batch: args.batch.max(1),
        pace: Pace::new(args.rate),
        pairs: BTreeMap::new(),
        progress: Progress::new(),
        destinations: BTreeMap::new(),
        moved: 0,
    };
    for shard in &to {
        mover
            .destinations
            .insert(shard.name.clone(), connect(shard)?);
    }
    let started = Instant::now();
    if !args.dry_run {
        for source in &from {
            let finished = mover.recover(source)?;
            if finished > 0 {
                eprintln!(
                    "tally-reshard: finished {finished} units a previous run had moved from {}",
                    source.name
                );
            }
        }
    }
    let mut shards = BTreeMap::new();
    for source in &from {
        let report = mover
            .walk(source)
            .with_context(|| format!("shard {} ({})", source.name, source.display_address()))?;
        shards.insert(source.name.clone(), report);
    }
    mover.progress.done();
    report(&args, &mover, &shards, started.elapsed());
    let refused: usize = shards.values().map(|r| r.refused.len()).sum();
    if refused > 0 {
        bail!("{refused} metric keys were left in place: their types already have data on their new shard");
    }
    Ok(())
}

fn report(args: &Args, mover: &Mover, shards: &BTreeMap<String, ShardReport>, took: Duration) {
    let verb = if args.dry_run { "would move" } else { "moved" };
    if args.json {
        let pairs: Vec<_> = mover
            .pairs
            .iter()
            .map(|((from, to), r)| {
                serde_json::json!({"from": from, "to": to, "pages": r.pages.len(),
                    "metric_types": r.metric_types.len(), "units": r.units, "bytes": r.bytes})
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({"dry_run": args.dry_run, "moves": pairs, "shards": shards,
                "seconds": took.as_secs_f64()})
        );
        return;
    }
    for (name, r) in shards {
        println!(
            "shard {name}: {} keys read; left in place: {} idempotency records and {} rate-limit buckets (they expire), {} keys not Tally's",
            r.keys_read, r.idempotency_records, r.rate_buckets, r.unknown_keys
        );
    }
    if mover.pairs.is_empty() {
        println!("nothing {verb}: every key is on its shard in the new list");
    }
    for ((from, to), r) in &mover.pairs {
        println!(
            "{from} -> {to}: {verb} {} pages, {} metric types: {} units, about {} bytes",
            r.pages.len(),
            r.metric_types.len(),
            r.units,
            r.bytes
        );
    }
    if args.dry_run {
        println!("dry run: nothing was changed");
    } else {
        println!(
            "done in {:.1} s ({} units moved): every key is on its shard in the new list; deploy with shards set to it",
            took.as_secs_f64(),
            mover.moved
        );
    }
}

fn connect(shard: &ShardConfig) -> Result<Connection> {
    let client = redis::Client::open(shard.url.as_str())?;
    client
        .get_connection_with_timeout(Duration::from_secs(5))
        .with_context(|| {
            format!(
                "connecting to shard {} ({})",
                shard.name,
                shard.display_address()
            )
        })
}

struct Mover {
    plan: Reshard,
    dry_run: bool,
    batch: usize,
    pace: Pace,
    pairs: BTreeMap<(String, String), PairReport>,
    progress: Progress,
    destinations: BTreeMap<String, Connection>,
    moved: u64,
}

impl Mover {
    /// Finishes the units a previous run absorbed on a destination but may not have released
    /// from `source`; drops journal entries whose unit is gone from the source.
    fn recover(&mut self, source: &ShardConfig) -> Result<u64> {
        let mut src = connect(source)?;
        let mut finished = 0;
        let names: Vec<String> = self.destinations.keys().cloned().collect();
        for name in names {
            let dest = self.destinations.get_mut(&name).unwrap();
            let pattern = format!("tally:mv:{}:*", source.name);
            let journals: Vec<String> = scan_all(dest, &pattern)?;
            for journal in journals {
                let Some((_, key, member)) = parse_journal_key(&journal) else {
                    continue;
                };
                let release = match (classify(key), member) {
                    (KeyKind::BotsOfDay(_) | KeyKind::PageHours { .. }, Some(_)) => "hdel",
                    (KeyKind::SiteShare(_), Some(_)) if key.starts_with("tally:sd:") => "hdel",
                    (_, Some(_)) => "zrem",
                    (_, None) => "del",
                };
                let args: Vec<Vec<u8>> =
                    vec![release.into(), key.into(), member.unwrap_or("").into()];
                let removed: i64 = eval(&mut src, &RELEASE_MOVED, &args)?;
                finished += removed as u64;
                let dest = self.destinations.get_mut(&name).unwrap();
                redis::cmd("DEL").arg(&journal).query::<()>(dest)?;
            }
        }
        Ok(finished)
    }

    /// Walks one shard of the old list and moves (or counts) what belongs elsewhere.
    fn walk(&mut self, source: &ShardConfig) -> Result<ShardReport> {
        let mut src = connect(source)?;
        let mut report = ShardReport::default();
        let total: u64 = redis::cmd("DBSIZE").query(&mut src)?;
        let removed = self.plan.removes(&source.name);
        let mut pending: Vec<Unit> = Vec::new();
        let mut cursor: u64 = 0;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg("tally:*")
                .arg("COUNT")
                .arg(200)
                .query(&mut src)?;
            for key in &keys {
                report.keys_read += 1;
                let kind = classify(key);
                match &kind {
                    KeyKind::PageCounts
                    | KeyKind::PagesOfDay(_)
                    | KeyKind::BotsOfDay(_)
                    | KeyKind::RecentMetrics => {
                        let hash = matches!(kind, KeyKind::BotsOfDay(_));
                        let owner: fn(&str) -> Option<Owner> = match kind {
                            KeyKind::RecentMetrics => {
                                |m| recent_member_type(m).map(|t| Owner::Type(t.to_string()))
                            }
                            _ => |m| Some(Owner::Page(m.to_string())),
                        };
                        self.members(
                            &mut src,
                            key,
                            hash,
                            &source.name,
                            &mut pending,
                            &mut report,
                            owner,
                        )?
                    }
                    KeyKind::SiteShare(_) if removed => {
                        let heir = self.plan.heir(&source.name).to_string();
                        self.whole_key(&mut src, key, heir, Owner::Site, &mut pending)?;
                    }
                    KeyKind::PageHours { page: name, .. }
                    | KeyKind::PageVisitors { page: name, .. }
                    | KeyKind::Metric(name) => {
                        let to = self.plan.after_owner(name.as_bytes()).to_string();
                        if to != source.name {
                            let owner = match kind {
                                KeyKind::Metric(_) => Owner::Type(name.to_string()),
                                _ => Owner::Page(name.to_string()),
                            };
                            self.whole_key(&mut src, key, to, owner, &mut pending)?;
                        }
                    }
                    KeyKind::Idempotency => report.idempotency_records += 1,
                    KeyKind::RateBucket => report.rate_buckets += 1,
                    KeyKind::Unknown => report.unknown_keys += 1,
                    _ => {}
                }
                if pending.len() >= self.batch {
                    self.flush(&mut src, &source.name, &mut pending, &mut report)?;
                }
            }
            if self.dry_run {
                self.pace.tick(keys.len() as u64);
            }
            self.progress
                .show(&source.name, report.keys_read, total, self.moved);
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        self.flush(&mut src, &source.name, &mut pending, &mut report)?;
        Ok(report)
    }

    /// One unit per member (sorted sets) or field (hashes) whose owner moves.
    #[allow(clippy::too_many_arguments)]
    fn members(
        &mut self,
        src: &mut Connection,
        key: &str,
        hash: bool,
        here: &str,
        pending: &mut Vec<Unit>,
        report: &mut ShardReport,
        owner: impl Fn(&str) -> Option<Owner>,
    ) -> Result<()> {
        let expire_at_ms = expire_time(src, key)?;
        let key_bytes = memory_usage(src, key)?;
        let size: u64 = redis::cmd(if hash { "HLEN" } else { "ZCARD" })
            .arg(key)
            .query(src)?;
        let recent = matches!(classify(key), KeyKind::RecentMetrics);
        let mut cursor: u64 = 0;
        loop {
            let (next, items): (u64, Vec<String>) =
                redis::cmd(if hash { "HSCAN" } else { "ZSCAN" })
                    .arg(key)
                    .arg(cursor)
                    .arg("COUNT")
                    .arg(500)
                    .query(src)?;
            for item in items.chunks(2) {
                let Some(owner) = owner(&item[0]) else {
                    continue;
                };
                let owner_key = match &owner {
                    Owner::Page(p) | Owner::Type(p) => p.as_bytes(),
                    Owner::Site => continue,
                };
                let to = self.plan.after_owner(owner_key);
                if to == here {
                    continue;
                }
                pending.push(Unit {
                    to: to.to_string(),
                    owner,
                    kind: if hash {
                        "hincr"
                    } else if recent {
                        "zadd"
                    } else {
                        "zincr"
                    },
                    key: key.to_string(),
                    member: Some(item[0].clone()),
                    value: item[1].clone().into_bytes(),
                    expire_at_ms,
                    release: if hash { "hdel" } else { "zrem" },
                    bytes: key_bytes / size.max(1),
                });
            }
            // A key of many members moves in batches too (scanning on while members leave
            // it is safe: SCAN returns every member present from start to end).
            if pending.len() >= self.batch {
                self.flush(src, here, pending, report)?;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    /// The units of a whole key going to `to`: a hash's fields, a sorted set's members, a
    /// HyperLogLog, a number, or (metric types) the key as `DUMP`ed.
    fn whole_key(
        &mut self,
        src: &mut Connection,
        key: &str,
        to: String,
        owner: Owner,
        pending: &mut Vec<Unit>,
    ) -> Result<()> {
        let expire_at_ms = expire_time(src, key)?;
        let bytes = memory_usage(src, key)?;
        let kind: String = redis::cmd("TYPE").arg(key).query(src)?;
        let unit =
            |kind: &'static str, member: Option<String>, value: Vec<u8>, release, bytes| Unit {
                to: to.clone(),
                owner: owner.clone(),
                kind,
                key: key.to_string(),
                member,
                value,
                expire_at_ms,
                release,
                bytes,
            };
        match (&owner, kind.as_str()) {
            (Owner::Type(_), _) => {
                let dump: Vec<u8> = redis::cmd("DUMP").arg(key).query(src)?;
                pending.push(unit("restore", None, dump, "del", bytes));
            }
            (_, "hash") => {
                let fields: Vec<(String, String)> = redis::cmd("HGETALL").arg(key).query(src)?;
                let each = bytes / (fields.len() as u64).max(1);
                for (field, value) in fields {
                    pending.push(unit("hincr", Some(field), value.into_bytes(), "hdel", each));
                }
            }
            (_, "zset") => {
                let members: Vec<(String, String)> = redis::cmd("ZRANGE")
                    .arg(key)
                    .arg(0)
                    .arg(-1)
                    .arg("WITHSCORES")
                    .query(src)?;
                let each = bytes / (members.len() as u64).max(1);
                for (member, score) in members {
                    pending.push(unit(
                        "zincr",
                        Some(member),
                        score.into_bytes(),
                        "zrem",
                        each,
                    ));
                }
            }
            (_, "string") => {
                let value: Vec<u8> = redis::cmd("GET").arg(key).query(src)?;
                let kind = if value.starts_with(b"HYLL") {
                    "pfmerge"
                } else {
                    "setnx"
                };
                pending.push(unit(kind, None, value, "del", bytes));
            }
            _ => {}
        }
        Ok(())
    }

    /// Moves (or, in a dry run, counts) the pending units.
    fn flush(
        &mut self,
        src: &mut Connection,
        source: &str,
        pending: &mut Vec<Unit>,
        report: &mut ShardReport,
    ) -> Result<()> {
        let mut by_dest: BTreeMap<String, Vec<Unit>> = BTreeMap::new();
        for unit in pending.drain(..) {
            by_dest.entry(unit.to.clone()).or_default().push(unit);
        }
        for (to, units) in by_dest {
            let mut refused = BTreeSet::new();
            if !self.dry_run {
                let dest = self
                    .destinations
                    .get_mut(&to)
                    .with_context(|| format!("no connection to shard {to}"))?;
                let mut args: Vec<Vec<u8>> = vec![source.as_bytes().to_vec()];
                for u in &units {
                    args.push(u.kind.into());
                    args.push(u.key.clone().into_bytes());
                    args.push(u.member.clone().unwrap_or_default().into_bytes());
                    args.push(u.value.clone());
                    args.push(
                        u.expire_at_ms
                            .map(|t| t.to_string())
                            .unwrap_or_default()
                            .into_bytes(),
                    );
                }
                let reply: Vec<redis::Value> = eval(dest, &ABSORB_MOVED, &args)?;
                for value in reply.iter().skip(2) {
                    if let redis::Value::BulkString(key) = value {
                        refused.insert(String::from_utf8_lossy(key).into_owned());
                    }
                }
                let released: Vec<&Unit> =
                    units.iter().filter(|u| !refused.contains(&u.key)).collect();
                let mut args: Vec<Vec<u8>> = Vec::new();
                for u in &released {
                    args.push(u.release.into());
                    args.push(u.key.clone().into_bytes());
                    args.push(u.member.clone().unwrap_or_default().into_bytes());
                }
                if !args.is_empty() {
                    let _: i64 = eval(src, &RELEASE_MOVED, &args)?;
                    let journals: Vec<String> = released
                        .iter()
                        .map(|u| journal_key(source, &u.key, u.member.as_deref()))
                        .collect();
                    let dest = self.destinations.get_mut(&to).unwrap();
                    for chunk in journals.chunks(500) {
                        redis::cmd("DEL").arg(chunk).query::<()>(dest)?;
                    }
                }
                report.refused.extend(refused.iter().cloned());
            }
            let pair = self.pairs.entry((source.to_string(), to)).or_default();
            let mut moved = 0;
            for u in units.iter().filter(|u| !refused.contains(&u.key)) {
                moved += 1;
                pair.units += 1;
                pair.bytes += u.bytes;
                match &u.owner {
                    Owner::Page(p) => {
                        pair.pages.insert(p.clone());
                    }
                    Owner::Type(t) => {
                        pair.metric_types.insert(t.clone());
                    }
                    Owner::Site => {}
                }
            }
            if !self.dry_run {
                self.moved += moved;
                self.pace.tick(moved);
            }
        }
        Ok(())
    }
}

fn eval<T: redis::FromRedisValue>(
    conn: &mut Connection,
    script: &tally_core::scripts::Script,
    args: &[Vec<u8>],
) -> Result<T> {
    let mut cmd = redis::cmd("EVAL");
    cmd.arg(script.source).arg(0);
    for a in args {
        cmd.arg(a.as_slice());
    }
    cmd.query(conn)
        .with_context(|| format!("running {} on a shard", script.name))
}

fn scan_all(conn: &mut Connection, pattern: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(500)
            .query(conn)?;
        out.extend(keys);
        cursor = next;
        if cursor == 0 {
            return Ok(out);
        }
    }
}

/// The key's expiry as Unix ms, if it has one.
fn expire_time(conn: &mut Connection, key: &str) -> Result<Option<i64>> {
    let at: i64 = redis::cmd("PEXPIRETIME").arg(key).query(conn)?;
    Ok((at > 0).then_some(at))
}

fn memory_usage(conn: &mut Connection, key: &str) -> Result<u64> {
    let bytes: Option<u64> = redis::cmd("MEMORY")
        .arg("USAGE")
        .arg(key)
        .arg("SAMPLES")
        .arg(0)
        .query(conn)?;
    Ok(bytes.unwrap_or(0))
}

/// Paces work to `rate` units per second (0: unpaced).
struct Pace {
    rate: u64,
    started: Instant,
    done: u64,
}

impl Pace {
    fn new(rate: u64) -> Self {
        Self {
            rate,
            started: Instant::now(),
            done: 0,
        }
    }

    fn tick(&mut self, n: u64) {
        self.done += n;
        if self.rate > 0 {
            let due = Duration::from_secs_f64(self.done as f64 / self.rate as f64);
            let elapsed = self.started.elapsed();
            if due > elapsed {
                std::thread::sleep(due - elapsed);
            }
        }
    }
}

/// Progress on stderr: a bar redrawn in place on a terminal, a plain line a second otherwise.
struct Progress {
    terminal: bool,
    started: Instant,
    last: Option<Instant>,
}

impl Progress {
    fn new() -> Self {
        Self {
            terminal: std::io::stderr().is_terminal(),
            started: Instant::now(),
            last: None,
        }
    }

    fn show(&mut self, shard: &str, read: u64, total: u64, moved: u64) {
        let now = Instant::now();
        let every = if self.terminal {
            Duration::from_millis(100)
        } else {
            Duration::from_secs(1)
        };
        if self.last.is_some_and(|t| now - t < every) {
            return;
        }
        self.last = Some(now);
        let fraction = (read as f64 / total.max(1) as f64).min(1.0);
        let elapsed = self.started.elapsed().as_secs_f64();
        let eta = if fraction > 0.0 {
            format!("{:.0} s", elapsed * (1.0 - fraction) / fraction)
        } else {
            "?".into()
        };
        let mut err = std::io::stderr();
        if self.terminal {
            let filled = (fraction * 30.0) as usize;
            let _ = write!(
                err,
                "\r{shard} [{}{}] {read}/{total} keys read, {moved} units moved, ETA {eta}   ",
                "#".repeat(filled),
                " ".repeat(30 - filled)
            );
        } else {
            let _ = writeln!(
                err,
                "tally-reshard: shard {shard}: {read} of about {total} keys read, {moved} units moved, ETA {eta}"
            );
        }
    }

    fn done(&self) {
        if self.terminal && self.last.is_some() {
            eprintln!();
        }
    }
}
