//! Talking to Redis shards through Spin's outbound Redis interface: at most one connection per
//! shard per request (Spin keeps none between requests, so each `open` is a new TCP connection:
//! a request that calls a shard twice, such as a visit whose limiter bucket and page live on
//! the same shard, reuses the first), scripts by `EVALSHA` with `EVAL` on `NOSCRIPT`, replies
//! checked for the shape the caller expects.

use std::cell::RefCell;
use std::rc::Rc;

use spin_sdk::redis::{Connection, RedisParameter, RedisResult};
use tally_core::config::ShardConfig;
use tally_core::hashing::ShardSet;
use tally_core::scripts::Script;

use crate::respond::Failure;
use crate::{breaker_io, request_log};

/// Why a shard call failed.
#[derive(Debug)]
pub enum ShardError {
    /// The shard could not be reached or did not answer.
    Unreachable(String),
    /// It answered something Tally does not expect (a bug, or someone else's data).
    Protocol(String),
    /// This node's breaker for the shard is open: not called at all.
    BreakerOpen {
        /// When the breaker lets a probe through.
        retry_after_ms: u64,
    },
}

impl ShardError {
    /// The client's answer: 503 with `Retry-After` for an unreachable shard or an open breaker
    /// (retry when it lets a probe through), 500 for a protocol error.
    pub fn into_failure(self, shard: &str) -> Failure {
        match self {
            ShardError::Unreachable(detail) => {
                eprintln!(
                    "{}",
                    serde_json::json!({"level":"warn","shard":shard,"msg":detail})
                );
                Failure::new(
                    tally_core::api::ProblemKind::ShardUnavailable,
                    format!("storage shard {shard} is unavailable; retry shortly"),
                )
                .with_header("retry-after", "1")
            }
            ShardError::Protocol(detail) => {
                Failure::misconfigured(format!("shard {shard} answered unexpectedly: {detail}"))
            }
            ShardError::BreakerOpen { retry_after_ms } => Failure::new(
                tally_core::api::ProblemKind::ShardUnavailable,
                format!("storage shard {shard} is failing; retry shortly"),
            )
            .with_header(
                "retry-after",
                retry_after_ms.div_ceil(1000).max(1).to_string(),
            ),
        }
    }
}

/// The configured shards and the hashing over their names, built once per request.
pub struct Placement {
    shards: Vec<ShardConfig>,
    set: ShardSet,
}

impl Placement {
    /// Placement over the configured shards.
    pub fn new(shards: Vec<ShardConfig>) -> Result<Self, Failure> {
        let names: Vec<&str> = shards.iter().map(|s| s.name.as_str()).collect();
        let set = ShardSet::uniform(&names)
            .map_err(|err| Failure::misconfigured(format!("shards: {err:?}")))?;
        Ok(Self { shards, set })
    }

    /// The shard a key lives on.
    pub fn shard_for(&self, key: &[u8]) -> &ShardConfig {
        self.by_name(self.set.shard_for(key).name())
    }

    /// A batch grouped by owning shard (the core's `group_by_shard`: each key hashed once,
    /// shards in order, items in batch order), for one round trip per shard touched.
    pub fn group_by_shard<'i, T>(
        &self,
        items: &'i [T],
        key: impl Fn(&T) -> &[u8],
    ) -> Vec<(&ShardConfig, Vec<&'i T>)> {
        self.set
            .group_by_shard(items, key)
            .into_iter()
            .map(|group| (self.by_name(group.shard.name()), group.items))
            .collect()
    }

    /// A configured shard by name.
    pub fn by_name(&self, name: &str) -> &ShardConfig {
        self.shards
            .iter()
            .find(|s| s.name == name)
            .expect("placement only names configured shards")
    }

    /// Every configured shard.
    pub fn shards(&self) -> &[ShardConfig] {
        &self.shards
    }

    /// The hashing.
    pub fn set(&self) -> &ShardSet {
        &self.set
    }
}

/// Runs `work` on this request's connection to `shard` (opened on first use) through this
/// node's circuit breaker for it: an open breaker fails fast without connecting; the outcome
/// (reachable or not) is recorded. Every component's shard calls go through here.
pub fn call<T>(
    shard: &ShardConfig,
    work: impl FnOnce(&Connection) -> Result<T, ShardError>,
) -> Result<T, ShardError> {
    request_log::note_shard(&shard.name);
    let before = breaker_io::admit(&shard.name).map_err(|retry_after_ms| {
        request_log::note_breaker_open(&shard.name);
        ShardError::BreakerOpen { retry_after_ms }
    })?;
    let result = connection(shard).and_then(|conn| work(&conn));
    let reachable = !matches!(result, Err(ShardError::Unreachable(_)));
    if !reachable {
        forget_connection(&shard.name);
    }
    breaker_io::record(&shard.name, &before, reachable);
    result
}

thread_local! {
    /// This request's open connections by shard name. An instance serves one request, so
    /// they are dropped with it.
    static CONNECTIONS: RefCell<Vec<(String, Rc<Connection>)>> = const { RefCell::new(Vec::new()) };
}

/// This request's connection to `shard`, opened on first use.
fn connection(shard: &ShardConfig) -> Result<Rc<Connection>, ShardError> {
    let open_already = CONNECTIONS.with(|c| {
        c.borrow()
            .iter()
            .find(|(name, _)| *name == shard.name)
            .map(|(_, conn)| conn.clone())
    });
    if let Some(conn) = open_already {
        return Ok(conn);
    }
    let conn = Rc::new(open(shard)?);
    CONNECTIONS.with(|c| c.borrow_mut().push((shard.name.clone(), conn.clone())));
    Ok(conn)
}

/// Drops this request's connection to a shard that failed, so a later call opens a new one.
fn forget_connection(shard: &str) {
    CONNECTIONS.with(|c| c.borrow_mut().retain(|(name, _)| name != shard));
}

/// Opens a new connection to `shard`, bypassing the breaker and this request's connections
/// (health probes use this: they time the connect).
pub fn open(shard: &ShardConfig) -> Result<Connection, ShardError> {
    Connection::open(&shard.url).map_err(|err| ShardError::Unreachable(err.to_string()))
}

/// Sends `PING` and checks for `PONG`.
pub fn ping(conn: &Connection) -> Result<(), ShardError> {
    match conn.execute("PING", &[]) {
        Ok(reply) if matches!(reply.as_slice(), [RedisResult::Status(s)] if s == "PONG") => Ok(()),
        Ok(other) => Err(ShardError::Protocol(format!("PING answered {other:?}"))),
        Err(err) => Err(ShardError::Unreachable(err.to_string())),
    }
}

/// Runs `script` with `keys` and `args`, returning its raw reply.
pub fn eval(
    conn: &Connection,
    script: &Script,
    keys: &[&str],
    args: Vec<Vec<u8>>,
) -> Result<Vec<RedisResult>, ShardError> {
    let mut params = Vec::with_capacity(keys.len() + args.len() + 2);
    params.push(RedisParameter::Binary(script.sha1.as_bytes().to_vec()));
    params.push(RedisParameter::Int64(keys.len() as i64));
    params.extend(
        keys.iter()
            .map(|k| RedisParameter::Binary(k.as_bytes().to_vec())),
    );
    params.extend(args.into_iter().map(RedisParameter::Binary));
    match conn.execute("EVALSHA", &params) {
        Err(spin_sdk::redis::Error::Other(msg)) if is_noscript(&msg) => {
            params[0] = RedisParameter::Binary(script.source.as_bytes().to_vec());
            conn.execute("EVAL", &params).map_err(classify)
        }
        other => other.map_err(classify),
    }
}

/// Runs `script` and reads every value of its reply with `read` (a protocol error when a
/// value is not of the expected kind).
fn eval_each<T>(
    conn: &Connection,
    script: &Script,
    keys: &[&str],
    args: Vec<Vec<u8>>,
    read: fn(RedisResult) -> Result<T, RedisResult>,
) -> Result<Vec<T>, ShardError> {
    eval(conn, script, keys, args)?
        .into_iter()
        .map(|r| {
            read(r).map_err(|other| {
                ShardError::Protocol(format!("{} returned {other:?}", script.name))
            })
        })
        .collect()
}

/// Runs `script` and reads its reply as integers.
pub fn eval_ints(
    conn: &Connection,
    script: &Script,
    keys: &[&str],
    args: Vec<Vec<u8>>,
) -> Result<Vec<i64>, ShardError> {
    eval_each(conn, script, keys, args, |r| match r {
        RedisResult::Int64(v) => Ok(v),
        other => Err(other),
    })
}

/// Runs `script` and reads its reply as binary strings.
pub fn eval_binaries(
    conn: &Connection,
    script: &Script,
    keys: &[&str],
    args: Vec<Vec<u8>>,
) -> Result<Vec<Vec<u8>>, ShardError> {
    eval_each(conn, script, keys, args, |r| match r {
        RedisResult::Binary(b) => Ok(b),
        other => Err(other),
    })
}

/// Two binary values that a reply alternates, such as a member and its score.
pub type BinaryPair = (Vec<u8>, Vec<u8>);

/// Runs a plain command and returns alternating pairs of binary values.
pub fn pairs(
    conn: &Connection,
    command: &str,
    args: &[RedisParameter],
) -> Result<Vec<BinaryPair>, ShardError> {
    let reply = conn.execute(command, args).map_err(classify)?;
    let mut values = reply.into_iter().map(|r| match r {
        RedisResult::Binary(b) => Ok(b),
        other => Err(ShardError::Protocol(format!(
            "{command} returned {other:?}"
        ))),
    });
    let mut out = Vec::new();
    while let Some(first) = values.next() {
        let second = values
            .next()
            .ok_or_else(|| ShardError::Protocol(format!("{command}: odd reply")))?;
        out.push((first?, second?));
    }
    Ok(out)
}

/// Runs a plain command whose reply is a list of binary values or nils (`MGET`).
pub fn binaries_or_nil(
    conn: &Connection,
    command: &str,
    args: &[RedisParameter],
) -> Result<Vec<Option<Vec<u8>>>, ShardError> {
    conn.execute(command, args)
        .map_err(classify)?
        .into_iter()
        .map(|r| match r {
            RedisResult::Binary(b) => Ok(Some(b)),
            RedisResult::Nil => Ok(None),
            other => Err(ShardError::Protocol(format!(
                "{command} returned {other:?}"
            ))),
        })
        .collect()
}

/// Whether an error says the shard does not have the script cached. Hosts word it
/// differently (`NOSCRIPT …`, `NoScript: …`), so the match ignores case.
fn is_noscript(message: &str) -> bool {
    message.to_ascii_lowercase().contains("noscript")
}

/// Server-side script or type errors are protocol errors; anything else means unreachable.
fn classify(err: spin_sdk::redis::Error) -> ShardError {
    match err {
        spin_sdk::redis::Error::Other(msg)
            if msg.contains("ERR") || msg.contains("WRONGTYPE") || msg.contains("script") =>
        {
            ShardError::Protocol(msg)
        }
        spin_sdk::redis::Error::TypeError => ShardError::Protocol("type error".into()),
        other => ShardError::Unreachable(other.to_string()),
    }
}
