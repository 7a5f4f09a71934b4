//! Migration mode: while the `shards_previous` variable holds the shard list before a change,
//! data whose owner (a page, a metric type, a removed shard's share of the site) moved lives
//! partly on its old shard, until the migrator (`tally-reshard`) has moved it, and partly on
//! its new one, where every write goes.
//!
//! A read never combines the two halves itself: before it reads the new owner, it hands over
//! the units it is about to read (`tally_core::reshard`'s three steps: the old shard takes
//! them off into an outbox and returns every outbox of these owners, the new shard absorbs
//! each outbox once, the old shard deletes them). So the new owner holds everything the read
//! needs, and the normal read answers: counts added up, HyperLogLogs and metric buckets
//! merged, nothing twice (each outbox is absorbed once, by id) and nothing missed (an outbox
//! a killed request left is found by the next hand-off of its owner). Once an owner has moved,
//! a hand-off finds nothing and costs one round trip to the old shard.
//!
//! Without `shards_previous` nothing here reads a variable more than once or calls a shard.

use std::cell::OnceCell;
use std::collections::BTreeMap;
use std::rc::Rc;

use tally_core::config::ShardConfig;
use tally_core::reshard::{handoff_args, parse_handoff_reply, Migration, Owner, Unit};
use tally_core::scripts::{ABSORB_MOVED, HANDOFF, RELEASE_MOVED};
use tally_core::visit_store;

use crate::config;
use crate::respond::Failure;
use crate::shard_io::{self, ShardError};

/// A running migration, with the addresses of the shards before it.
pub struct Migrating {
    /// Where owners go.
    pub migration: Migration,
    /// The `shards_previous` list.
    pub previous: Vec<ShardConfig>,
}

impl Migrating {
    /// The shard named `name`, in the new list or the old one.
    fn shard(&self, name: &str) -> Result<ShardConfig, Failure> {
        let placement = config::placement()?;
        placement
            .shards()
            .iter()
            .chain(self.previous.iter())
            .find(|s| s.name == name)
            .cloned()
            .ok_or_else(|| {
                Failure::misconfigured(format!(
                    "an outbox names shard {name}, which neither shards nor shards_previous lists"
                ))
            })
    }

    /// The shards being removed (they still hold data until the migrator is done).
    pub fn removed_shards(&self) -> Vec<ShardConfig> {
        self.migration
            .removed()
            .filter_map(|(name, _)| self.previous.iter().find(|s| s.name == name).cloned())
            .collect()
    }
}

/// The running migration, if `shards_previous` is set: read and checked once per request.
pub fn current() -> Result<Option<Rc<Migrating>>, Failure> {
    thread_local! {
        static MIGRATION: OnceCell<Option<Rc<Migrating>>> = const { OnceCell::new() };
    }
    if let Some(known) = MIGRATION.with(|m| m.get().cloned()) {
        return Ok(known);
    }
    let migrating = match config::non_empty_var("shards_previous") {
        None => None,
        Some(raw) => {
            let bad =
                |err: String| Failure::misconfigured(format!("variable shards_previous: {err}"));
            let previous =
                tally_core::config::parse_shard_list(&raw).map_err(|e| bad(format!("{e}")))?;
            let placement = config::placement()?;
            let current = placement.shards();
            let pairs = |list: &[ShardConfig]| {
                list.iter()
                    .map(|s| (s.name.clone(), s.url.clone()))
                    .collect::<Vec<_>>()
            };
            Migration::new(&pairs(&previous), &pairs(current))
                .map_err(bad)?
                .map(|migration| {
                    Rc::new(Migrating {
                        migration,
                        previous,
                    })
                })
        }
    };
    MIGRATION.with(|m| m.set(migrating.clone()).ok());
    Ok(migrating)
}

/// Hands over to their new shards the units of the `owners` a read is about to read (no-op
/// outside a migration, where `owners` is not even called, and for owners that stay). One
/// hand-off per pair of shards.
pub fn hand_over(owners: impl FnOnce() -> Vec<(Owner, Vec<Unit>)>) -> Result<(), Failure> {
    let Some(migrating) = current()? else {
        return Ok(());
    };
    let owners = owners();
    let mut pairs: BTreeMap<(String, String), (Vec<Owner>, Vec<Unit>)> = BTreeMap::new();
    for (owner, units) in owners {
        let route = match owner.placed_by() {
            Some(bytes) => migrating
                .migration
                .moves(bytes)
                .map(|m| vec![(m.from.to_string(), m.to.to_string())])
                .unwrap_or_default(),
            None => migrating
                .migration
                .removed()
                .map(|(from, heir)| (from.to_string(), heir.to_string()))
                .collect(),
        };
        for pair in route {
            let entry = pairs.entry(pair).or_default();
            entry.0.push(owner.clone());
            entry.1.extend(units.iter().cloned());
        }
    }
    for ((from, to), (owners, units)) in pairs {
        let source = migrating.shard(&from)?;
        move_units(&migrating, &source, &to, &owners, &units)?;
    }
    Ok(())
}

/// Hands over the `units` of one page (see [`hand_over`]).
pub fn hand_over_page(page: &str, units: impl FnOnce() -> Vec<Unit>) -> Result<(), Failure> {
    hand_over(|| vec![(Owner::Page(page.to_string()), units())])
}

/// Hands over a metric type's buckets and samples (a summary or a list of it reads them).
pub fn hand_over_metric_type(metric_type: &str) -> Result<(), Failure> {
    hand_over(|| {
        vec![(
            Owner::MetricType(metric_type.to_string()),
            tally_core::reshard::metric_type_units(metric_type),
        )]
    })
}

/// The three steps for one pair of shards.
fn move_units(
    migrating: &Migrating,
    source: &ShardConfig,
    to: &str,
    owners: &[Owner],
    units: &[Unit],
) -> Result<(), Failure> {
    let args = handoff_args(&source.name, to, owners, units);
    let outboxes = shard_io::call(source, |conn| {
        let reply = shard_io::eval_binaries(conn, &HANDOFF, &[], args)?;
        parse_handoff_reply(reply).map_err(ShardError::Protocol)
    })
    .map_err(|err| err.into_failure(&source.name))?;
    if outboxes.is_empty() {
        return Ok(());
    }
    let mut ids = Vec::with_capacity(outboxes.len());
    for outbox in &outboxes {
        let destination = migrating.shard(&outbox.destination)?;
        shard_io::call(&destination, |conn| {
            shard_io::eval_ints(conn, &ABSORB_MOVED, &[], outbox.absorb_args())
        })
        .map_err(|err| err.into_failure(&destination.name))?;
        ids.push(outbox.id.as_bytes().to_vec());
    }
    shard_io::call(source, |conn| {
        shard_io::eval_ints(conn, &RELEASE_MOVED, &[], ids)
    })
    .map_err(|err| err.into_failure(&source.name))?;
    Ok(())
}

/// The shards a read across the site asks: every shard of `shards`, and while shards are
/// being removed, those too (what they hold has not all moved yet).
pub fn readable_shards() -> Result<Vec<ShardConfig>, Failure> {
    let mut shards = config::placement()?.shards().to_vec();
    if let Some(migrating) = current()? {
        shards.extend(migrating.removed_shards());
    }
    Ok(shards)
}

/// Of pages that a ranked list read from `shard`, those the shard no longer owns (empty
/// outside a migration): they are handed over and the lists read again.
pub fn misplaced<'p>(
    shard: &str,
    pages: impl Iterator<Item = &'p str>,
) -> Result<Vec<String>, Failure> {
    if current()?.is_none() {
        return Ok(Vec::new());
    }
    let placement = config::placement()?;
    Ok(pages
        .filter(|page| placement.shard_for(page.as_bytes()).name != shard)
        .map(str::to_string)
        .collect())
}

/// What a request with an `Idempotency-Key` finds on the shards its pages left.
#[derive(Debug, PartialEq, Eq)]
pub enum Earlier {
    /// No shard a page left holds its record: record it as usual.
    Unseen,
    /// A shard a page left holds its record: it was applied under the previous list, and is
    /// answered as a replay (with the pages' counts now) instead of being applied again.
    Applied,
    /// A shard a page left holds the key for another request.
    Conflict,
}

/// Looks for the record of `idempotency_key` on the previous shards of the `pages` that moved
/// (a retry whose first attempt was answered before the switch finds its record there, not on
/// the pages' new shards). Outside a migration, or without a key, it asks nothing.
pub fn earlier_attempt<'p>(
    idempotency_key: Option<&str>,
    fingerprint: &str,
    pages: impl Iterator<Item = &'p str>,
) -> Result<Earlier, Failure> {
    let (Some(key), Some(migrating)) = (idempotency_key, current()?) else {
        return Ok(Earlier::Unseen);
    };
    let mut left: Vec<&str> = pages
        .filter_map(|page| migrating.migration.moves(page.as_bytes()).map(|m| m.from))
        .collect();
    left.sort_unstable();
    left.dedup();
    let record = visit_store::idempotency_record_key(key);
    for name in left {
        let shard = migrating.shard(name)?;
        let args = [
            spin_sdk::redis::RedisParameter::Binary(record.as_bytes().to_vec()),
            spin_sdk::redis::RedisParameter::Binary(
                visit_store::IDEMPOTENCY_FINGERPRINT_FIELD
                    .as_bytes()
                    .to_vec(),
            ),
        ];
        let seen = shard_io::call(&shard, |conn| {
            shard_io::binaries_or_nil(conn, "HMGET", &args)
        })
        .map_err(|err| err.into_failure(&shard.name))?;
        match seen.into_iter().next().flatten() {
            Some(f) if f == fingerprint.as_bytes() => return Ok(Earlier::Applied),
            Some(_) => return Ok(Earlier::Conflict),
            None => {}
        }
    }
    Ok(Earlier::Unseen)
}
