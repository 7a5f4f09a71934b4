//! `tally-reshard`: moves Tally's data when the `shards` list changes, or reports what would
//! move.
//!
//! ```text
//! tally-reshard --from "a=redis://…,b=redis://…" --to "a=redis://…,b=redis://…,c=redis://…" [--dry-run]
//! ```
//!
//! Run it while the app is deployed with `shards` set to the `--to` list and `shards_previous`
//! to the `--from` list (migration mode: see `tally_spin::migration`). It walks every shard of
//! the old list with `SCAN` (and `ZSCAN`/`HSCAN` inside keys that hold many pages or metric
//! types) and classifies each key (`tally_core::reshard`). Data whose owner (a page, a metric
//! type, a rate-limit bucket) lives elsewhere in the new list moves there; a removed shard's
//! share of the site's numbers goes to its heir. Idempotency records stay: they expire within
//! a day, and the app consults them on the old shards while `shards_previous` is set.
//!
//! Data moves by the same three steps the app uses when a read needs data that has not moved
//! yet, a batch of units at a time: the source takes them off into an outbox
//! (`handoff.lua`), the destination absorbs the outbox once, journaled by its id
//! (`absorb_moved.lua`), the source deletes it (`release_moved.lua`). Killed at any point and
//! run again, it counts every unit once: it starts (and ends) by finishing every outbox left
//! on the old shards, by itself or by a request. `--dry-run` only reads, and reports per pair
//! of shards the pages, metric types, units and bytes that would move.

use std::collections::{BTreeMap, BTreeSet};
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use clap::Parser;
use redis::Connection;
use tally_core::config::{parse_shard_list, ShardConfig};
use tally_core::reshard::{
    bucket_units, classify, handoff_args, metric_type_units, parse_handoff_reply,
    recent_member_type, site_day_units, KeyKind, Migration, Outbox, Owner, Reshard, Take, Unit,
    OUTBOX_PREFIX,
};
use tally_core::scripts::{ABSORB_MOVED, HANDOFF, RELEASE_MOVED};

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
    /// Units per batch (three round trips per batch).
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
    /// Keys Tally does not write.
    unknown_keys: u64,
    /// Outboxes a previous run or a request had left, finished.
    outboxes_finished: u64,
}

/// One unit of data to move.
struct Pending {
    to: String,
    owner: Owner,
    unit: Unit,
    bytes: u64,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let from = parse_shard_list(&args.from).context("--from")?;
    let to = parse_shard_list(&args.to).context("--to")?;
    let pairs = |list: &[ShardConfig]| {
        list.iter()
            .map(|s| (s.name.clone(), s.url.clone()))
            .collect::<Vec<_>>()
    };
    // The app's own check: one change at a time, names keep their addresses.
    Migration::new(&pairs(&from), &pairs(&to)).map_err(anyhow::Error::msg)?;
    let names = |list: &[ShardConfig]| list.iter().map(|s| s.name.clone()).collect::<Vec<_>>();
    let plan = Reshard::new(&names(&from), &names(&to)).context("the shard lists")?;
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
    for shard in from.iter().chain(to.iter()) {
        if !mover.destinations.contains_key(&shard.name) {
            mover
                .destinations
                .insert(shard.name.clone(), connect(shard)?);
        }
    }
    let started = Instant::now();
    let mut shards: BTreeMap<String, ShardReport> = BTreeMap::new();
    if !args.dry_run {
        for source in &from {
            let finished = mover.finish_outboxes(&source.name)?;
            if finished > 0 {
                eprintln!(
                    "tally-reshard: finished {finished} outboxes left on {} by a previous run or a request",
                    source.name
                );
            }
            shards
                .entry(source.name.clone())
                .or_default()
                .outboxes_finished += finished;
        }
    }
    for source in &from {
        let report = shards.entry(source.name.clone()).or_default();
        mover
            .walk(source, report)
            .with_context(|| format!("shard {} ({})", source.name, source.display_address()))?;
    }
    if !args.dry_run {
        // Requests may have left an outbox while the walk ran (killed between two steps).
        for source in &from {
            let finished = mover.finish_outboxes(&source.name)?;
            shards
                .entry(source.name.clone())
                .or_default()
                .outboxes_finished += finished;
        }
    }
    mover.progress.done();
    report(&args, &mover, &shards, started.elapsed());
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
            "shard {name}: {} keys read; left in place: {} idempotency records (they expire in a day), {} keys not Tally's",
            r.keys_read, r.idempotency_records, r.unknown_keys
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
            "done in {:.1} s ({} units moved): every key is on its shard in the new list. \
             It is safe to clear shards_previous now (deploy with shards = the new list and shards_previous empty).",
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
    /// A connection to every shard of both lists, by name.
    destinations: BTreeMap<String, Connection>,
    moved: u64,
}

impl Mover {
    fn conn(&mut self, name: &str) -> Result<&mut Connection> {
        self.destinations
            .get_mut(name)
            .with_context(|| format!("shard {name} is in neither list"))
    }

    /// Finishes every outbox on `source` (left by a killed run or request): absorbs each on
    /// its destination, then deletes it. Returns how many.
    fn finish_outboxes(&mut self, source: &str) -> Result<u64> {
        let ids: Vec<String> = scan_all(self.conn(source)?, &format!("{OUTBOX_PREFIX}*"))?
            .into_iter()
            .filter_map(|k| k.strip_prefix(OUTBOX_PREFIX).map(str::to_string))
            .collect();
        let mut outboxes = Vec::new();
        for id in ids {
            let items: Vec<Vec<u8>> = redis::cmd("LRANGE")
                .arg(format!("{OUTBOX_PREFIX}{id}"))
                .arg(0)
                .arg(-1)
                .query(self.conn(source)?)?;
            outboxes.extend(Outbox::from_stored(id, items));
        }
        let n = outboxes.len() as u64;
        self.settle(source, &outboxes)?;
        Ok(n)
    }

    /// Absorbs `outboxes` on their destinations, then deletes them from `source`.
    fn settle(&mut self, source: &str, outboxes: &[Outbox]) -> Result<()> {
        if outboxes.is_empty() {
            return Ok(());
        }
        for outbox in outboxes {
            let dest = self.conn(&outbox.destination)?;
            let _: i64 = eval(dest, &ABSORB_MOVED, &outbox.absorb_args())?;
        }
        let ids: Vec<Vec<u8>> = outboxes.iter().map(|o| o.id.clone().into_bytes()).collect();
        let src = self.conn(source)?;
        let _: i64 = eval(src, &RELEASE_MOVED, &ids)?;
        Ok(())
    }

    /// Walks one shard of the old list and moves (or counts) what belongs elsewhere.
    fn walk(&mut self, source: &ShardConfig, report: &mut ShardReport) -> Result<()> {
        let mut src = connect(source)?;
        let total: u64 = redis::cmd("DBSIZE").query(&mut src)?;
        let removed = self.plan.removes(&source.name);
        let mut pending: Vec<Pending> = Vec::new();
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
                    KeyKind::PageCounts | KeyKind::PagesOfDay(_) => {
                        self.members(&mut src, key, Take::Zscore, &source.name, &mut pending)?
                    }
                    KeyKind::BotsOfDay(_) => {
                        self.members(&mut src, key, Take::Hfield, &source.name, &mut pending)?
                    }
                    KeyKind::RecentMetrics => {
                        self.members(&mut src, key, Take::Zmember, &source.name, &mut pending)?
                    }
                    KeyKind::SiteShare(day) if removed => {
                        let heir = self.plan.heir(&source.name).to_string();
                        let bytes = memory_usage(&mut src, key)?;
                        for unit in site_day_units(*day).into_iter().filter(|u| u.key == *key) {
                            pending.push(Pending {
                                to: heir.clone(),
                                owner: Owner::SiteDay(*day),
                                unit,
                                bytes,
                            });
                        }
                    }
                    KeyKind::PageHours { page, .. } | KeyKind::PageVisitors { page, .. } => {
                        let take = match kind {
                            KeyKind::PageHours { .. } => Take::Hash,
                            _ => Take::Hll,
                        };
                        let owner = Owner::Page(page.to_string());
                        self.whole_key(&mut src, key, owner, take, &source.name, &mut pending)?;
                    }
                    KeyKind::Metric(metric_type) => {
                        if let Some(unit) = metric_type_units(metric_type)
                            .into_iter()
                            .find(|u| u.key == *key)
                        {
                            let owner = Owner::MetricType(metric_type.to_string());
                            self.whole_key(
                                &mut src,
                                key,
                                owner,
                                unit.take,
                                &source.name,
                                &mut pending,
                            )?;
                        }
                    }
                    KeyKind::RateBucket => {
                        let owner = Owner::Key(key.clone());
                        let take = bucket_units(key)[0].take;
                        self.whole_key(&mut src, key, owner, take, &source.name, &mut pending)?;
                    }
                    KeyKind::Idempotency => report.idempotency_records += 1,
                    KeyKind::Unknown => report.unknown_keys += 1,
                    _ => {}
                }
                if pending.len() >= self.batch {
                    self.flush(&source.name, &mut pending)?;
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
        self.flush(&source.name, &mut pending)?;
        Ok(())
    }

    /// One unit per member (sorted sets) or field (hashes) whose owner moves.
    fn members(
        &mut self,
        src: &mut Connection,
        key: &str,
        take: Take,
        here: &str,
        pending: &mut Vec<Pending>,
    ) -> Result<()> {
        let hash = take == Take::Hfield;
        let key_bytes = memory_usage(src, key)?;
        let size: u64 = redis::cmd(if hash { "HLEN" } else { "ZCARD" })
            .arg(key)
            .query(src)?;
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
                let member = &item[0];
                let owner = if take == Take::Zmember {
                    match recent_member_type(member) {
                        Some(t) => Owner::MetricType(t.to_string()),
                        None => continue,
                    }
                } else {
                    Owner::Page(member.clone())
                };
                if let Some(to) = self.destination(here, &owner) {
                    let unit = Unit::new(take, key.to_string(), member);
                    let bytes = key_bytes / size.max(1);
                    pending.push(Pending {
                        to,
                        owner,
                        unit,
                        bytes,
                    });
                }
            }
            // A key of many members moves in batches too (scanning on while members leave
            // it is safe: SCAN returns every member present from start to end).
            if pending.len() >= self.batch {
                self.flush(here, pending)?;
            }
            cursor = next;
            if cursor == 0 {
                return Ok(());
            }
        }
    }

    /// A whole key whose owner may move.
    fn whole_key(
        &mut self,
        src: &mut Connection,
        key: &str,
        owner: Owner,
        take: Take,
        here: &str,
        pending: &mut Vec<Pending>,
    ) -> Result<()> {
        if let Some(to) = self.destination(here, &owner) {
            let unit = Unit::new(take, key.to_string(), "");
            let bytes = memory_usage(src, key)?;
            pending.push(Pending {
                to,
                owner,
                unit,
                bytes,
            });
        }
        Ok(())
    }

    /// The owner's shard in the new list, if that is not `here`.
    fn destination(&self, here: &str, owner: &Owner) -> Option<String> {
        let to = self.plan.after_owner(owner.placed_by().unwrap_or_default());
        (to != here).then(|| to.to_string())
    }

    /// Moves (or, in a dry run, counts) the pending units: per destination, one hand-off.
    fn flush(&mut self, source: &str, pending: &mut Vec<Pending>) -> Result<()> {
        let mut by_dest: BTreeMap<String, Vec<Pending>> = BTreeMap::new();
        for p in pending.drain(..) {
            by_dest.entry(p.to.clone()).or_default().push(p);
        }
        for (to, batch) in by_dest {
            if !self.dry_run {
                let owners: Vec<Owner> = batch
                    .iter()
                    .map(|p| p.owner.clone())
                    .collect::<BTreeSet<_>>()
                    .into_iter()
                    .collect();
                let units: Vec<Unit> = batch.iter().map(|p| p.unit.clone()).collect();
                let args = handoff_args(source, &to, &owners, &units);
                let reply: Vec<Vec<u8>> = eval(self.conn(source)?, &HANDOFF, &args)?;
                let outboxes = parse_handoff_reply(reply).map_err(anyhow::Error::msg)?;
                self.settle(source, &outboxes)?;
            }
            let pair = self.pairs.entry((source.to_string(), to)).or_default();
            for p in &batch {
                pair.units += 1;
                pair.bytes += p.bytes;
                match &p.owner {
                    Owner::Page(page) => {
                        pair.pages.insert(page.clone());
                    }
                    Owner::MetricType(t) => {
                        pair.metric_types.insert(t.clone());
                    }
                    _ => {}
                }
            }
            if !self.dry_run {
                self.moved += batch.len() as u64;
                self.pace.tick(batch.len() as u64);
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
