//! Rate limiting, one code path for every component: identify the client, look for a block
//! this node remembers, else ask the token bucket on the shard the identity hashes to (one
//! atomic round trip on the Redis server's clock), and format the headers.
//!
//! The limiter guards what clients share: the shards. A read answered from this node's cache
//! calls no shard, so it is admitted without a charge ([`uncharged`]): charging it would cost
//! a Redis round trip (and on Spin a variable read and a key-value read) to protect nothing,
//! since it costs the node no more than the 429 a blocked client gets from its remembered
//! block. So a client's reads reach the shards at most at its `rate_limit_reads` rate, and
//! each page is refreshed on a node at most once per `cache_ttl_ms` whoever asks; a blocked
//! client may still read what the cache holds.

use crate::http_io::{Request, Response};
use tally_core::api::{rate_limit_headers, ProblemKind, RateLimitInfo};
use tally_core::client_identity::Identity;
use tally_core::rate_policy::{block_key, bucket_key, parse_policy, FailMode, RouteClass};
use tally_core::scripts::TOKEN_BUCKET;
use tally_core::token_bucket::{BucketError, BucketParams};
use tally_core::token_bucket_script::{parse_reply, script_args, ScriptError};
use tally_core::validation::PageId;

use crate::access;
use crate::config::non_empty_var;
use crate::request_info::{client_address, now_ms};
use crate::respond::Failure;
use crate::shard_io::{self, ShardError};
use crate::{node_store, request_log};

/// What the limiter decided, for the response and the log line.
#[derive(Debug, Default)]
pub struct Admitted {
    /// Headers every answer of a limited route carries.
    pub headers: Vec<(String, String)>,
    /// `allowed`, `off`, or the fail mode used when the limiter was unavailable.
    pub outcome: &'static str,
}

/// Answers a request with a rate-limited handler: `answer` calls [`admit`] and leaves what it
/// decided in the [`Admitted`] it is given, so the response, or the problem answered instead,
/// carries the limiter's headers.
pub fn limited(
    req: &Request,
    answer: impl FnOnce(&Request, &mut Admitted) -> Result<Response, Failure>,
) -> Response {
    let mut limit = Admitted::default();
    let resp = crate::respond::outcome(answer(req, &mut limit));
    crate::respond::with_headers(resp, &limit.headers)
}

/// Admits the request at `cost` tokens in `class`, or answers 429 (or 413 when the cost can
/// never fit, or 503 when the limiter is unavailable and the mode is fail-closed).
pub fn admit(req: &Request, class: RouteClass, cost: u64) -> Result<Admitted, Failure> {
    // A configured key is the client, with its own policy when it has one; any other request
    // is its address (an unknown key is no key: rotating values buys no fresh bucket).
    let key = access::known_key(req)?;
    let params = match key.as_ref().and_then(|k| k.policy) {
        Some(own) => own,
        None => class_policy(class)?,
    };
    let Some(params) = params else {
        return Ok(off());
    };
    let identity = match key {
        Some(key) => Identity::ApiKey(key.id().to_string()),
        None => Identity::Address(client_address(req)?),
    };
    charge(class, &params, &identity.hashed(), cost)
}

/// Admits a badge that must ask the shard, charged to the page's own bucket
/// (`rate_limit_badges`) rather than the reader's: image proxies fetch badges for many
/// readers from a few addresses.
pub fn admit_badge(page: &PageId) -> Result<Admitted, Failure> {
    match class_policy(RouteClass::Badges)? {
        None => Ok(off()),
        Some(params) => {
            let identity = Identity::Page(page.as_str().to_string()).hashed();
            charge(RouteClass::Badges, &params, &identity, 1)
        }
    }
}

/// The class's policy from its variable (`None`: off or unset).
fn class_policy(class: RouteClass) -> Result<Option<BucketParams>, Failure> {
    let policy_var = class.policy_variable();
    match non_empty_var(policy_var).map(|raw| parse_policy(&raw)) {
        None => Ok(None),
        Some(Ok(params)) => Ok(params),
        Some(Err(err)) => Err(Failure::misconfigured(format!("{policy_var}: {}", err.0))),
    }
}

fn off() -> Admitted {
    Admitted {
        headers: Vec::new(),
        outcome: "off",
    }
}

/// Charges `cost` tokens to `identity`'s bucket in `class`: a remembered block answers 429
/// at once, else the token bucket on the identity's shard decides.
fn charge(
    class: RouteClass,
    params: &BucketParams,
    identity: &str,
    cost: u64,
) -> Result<Admitted, Failure> {
    let params = *params;
    let now = now_ms();

    if let Some(until_ms) = remembered_block(class, identity, now) {
        let retry_after_ms = until_ms - now;
        let info = RateLimitInfo {
            policy: class.name().to_string(),
            limit: params.capacity(),
            window_s: window_s(&params),
            remaining: 0,
            reset_s: retry_after_ms.div_ceil(1000),
            retry_after_s: Some(retry_after_ms.div_ceil(1000).max(1)),
        };
        request_log::note_limiter("blocked");
        return Err(refused(&info, "blocked (remembered)"));
    }

    let key = bucket_key(class, identity);
    // In migration mode a bucket that moved is handed over before it is charged, so no
    // client starts afresh on its new shard.
    // A hand-off that fails is a bucket shard that cannot be asked.
    let handed = crate::migration::hand_over(|| {
        vec![(
            tally_core::reshard::Owner::Key(key.clone()),
            tally_core::reshard::bucket_units(&key),
        )]
    });
    if handed.is_err() {
        return unavailable();
    }
    let placement = crate::config::placement()?;
    let shard = placement.shard_for(key.as_bytes());
    let args = script_args(&params, cost, None)
        .into_iter()
        .map(String::into_bytes)
        .collect();
    let reply = shard_io::call(shard, |conn| {
        shard_io::eval_ints(conn, &TOKEN_BUCKET, &[key.as_str()], args)
    });
    let decision = match reply {
        Ok(reply) => parse_reply(&reply, cost, &params),
        Err(err @ ShardError::Protocol(_)) => return Err(err.into_failure(&shard.name)),
        Err(_) => return unavailable(),
    };
    let decision = match decision {
        Ok(decision) => decision,
        Err(ScriptError::Bucket(BucketError::CostExceedsCapacity { cost, capacity })) => {
            return Err(Failure::new(
                ProblemKind::CostExceedsCapacity,
                format!("this request costs {cost} tokens but the limit holds at most {capacity}; split it"),
            ))
        }
        Err(err) => return Err(ShardError::Protocol(err.to_string()).into_failure(&shard.name)),
    };
    let info = RateLimitInfo::from_decision(class.name(), &params, &decision);
    if !decision.allowed {
        remember_block(class, identity, now + decision.retry_after_ms);
        request_log::note_limiter("refused");
        return Err(refused(&info, "refused"));
    }
    request_log::note_limiter("allowed");
    Ok(Admitted {
        headers: owned(rate_limit_headers(&info)),
        outcome: "allowed",
    })
}

/// Admits an answer that calls no shard, without asking the limiter (it reads no variable and
/// no remembered block): such an answer carries no rate-limit headers.
pub fn uncharged() -> Admitted {
    request_log::note_limiter("uncharged");
    Admitted {
        headers: Vec::new(),
        outcome: "uncharged",
    }
}

fn window_s(params: &BucketParams) -> u64 {
    params
        .capacity_units()
        .div_ceil(params.refill_tokens())
        .div_ceil(1000)
}

fn owned(headers: Vec<(&'static str, String)>) -> Vec<(String, String)> {
    headers
        .into_iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v))
        .collect()
}

fn refused(info: &RateLimitInfo, why: &str) -> Failure {
    let mut failure = Failure::new(
        ProblemKind::RateLimited,
        format!("too many requests ({why}); retry after the time in Retry-After"),
    );
    failure.headers.extend(owned(rate_limit_headers(info)));
    failure
}

/// The limiter's shard is unreachable or its breaker is open.
fn unavailable() -> Result<Admitted, Failure> {
    let mode = FailMode::parse(
        non_empty_var("rate_limit_fail_mode")
            .as_deref()
            .unwrap_or_default(),
    );
    request_log::note_limiter(mode.label());
    match mode {
        FailMode::Open => Ok(Admitted {
            headers: vec![("x-ratelimit-status".into(), mode.label().into())],
            outcome: mode.label(),
        }),
        FailMode::Closed => Err(Failure::new(
            ProblemKind::ShardUnavailable,
            "the rate limiter is unavailable; retry shortly",
        )
        .with_header("x-ratelimit-status", mode.label())
        .with_header("retry-after", "1")),
    }
}

fn remembered_block(class: RouteClass, identity: &str, now: u64) -> Option<u64> {
    let bytes = node_store::get(&block_key(class, identity))?;
    let until: u64 = std::str::from_utf8(&bytes).ok()?.parse().ok()?;
    (until > now).then_some(until)
}

fn remember_block(class: RouteClass, identity: &str, until_ms: u64) {
    node_store::set(&block_key(class, identity), until_ms.to_string().as_bytes());
}
