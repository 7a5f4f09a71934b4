//! The token-bucket Lua script against its Rust specification, on a real redis-server.
//!
//! Random sequences (fixed seed, so a failure repeats) of parameters, costs and clock steps,
//! including backwards jumps, huge idle gaps and values at the exactness bound, go through
//! both `tally_core::token_bucket::decide` and the script (EVALSHA via `redis::Script`, with
//! the script's optional "now" argument). Every decision, remaining count and stored state
//! must be identical; a cost above capacity must be refused by both and leave the stored
//! state untouched.

use anyhow::Result;
use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use redis::{Commands, Connection, Script};
use tally_core::token_bucket::{decide, BucketParams, BucketState, Decision, MAX_SCALED_UNITS};
use tally_core::token_bucket_script::{
    parse_reply, script_args, ScriptError, KEY_GRACE_MS, TOKEN_BUCKET_LUA,
};
use tally_host::shards::RedisShards;

/// A fixed-seed generator with the two draws the scenarios need.
struct Rng(StdRng);

impl Rng {
    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        self.0.random_range(lo..=hi)
    }

    /// A value spread over magnitudes: 1..=10^k for a random k up to `max_digits`.
    fn magnitude(&mut self, max_digits: u32) -> u64 {
        let digits = self.range(0, u64::from(max_digits)) as u32;
        self.range(1, 10u64.pow(digits))
    }
}

/// Random but valid parameters, sometimes pushed to the exactness bound.
fn random_params(rng: &mut Rng) -> BucketParams {
    loop {
        let candidate = match rng.range(0, 5) {
            // Typical API limits.
            0 | 1 => BucketParams::new(rng.magnitude(4), rng.magnitude(4), rng.magnitude(5)),
            // Fractional rates: a few tokens per long period.
            2 => BucketParams::new(
                rng.magnitude(3),
                rng.range(1, 3),
                rng.range(1_000, 86_400_000),
            ),
            // Capacity at the 2^52 bound.
            3 => {
                let period = rng.magnitude(6);
                BucketParams::new(MAX_SCALED_UNITS / period, rng.magnitude(15), period)
            }
            // Huge refill amounts.
            4 => BucketParams::new(rng.magnitude(6), MAX_SCALED_UNITS - rng.range(0, 1000), 1),
            _ => BucketParams::new(rng.magnitude(9), rng.magnitude(9), rng.magnitude(3)),
        };
        if let Ok(params) = candidate {
            return params;
        }
    }
}

/// The next clock reading: mostly small steps, sometimes none, huge or backwards.
fn next_now(rng: &mut Rng, now: u64) -> u64 {
    match rng.range(0, 9) {
        0 => now,
        1 => now.saturating_sub(rng.magnitude(6)).max(1),
        2 => now + rng.magnitude(11),
        _ => now + rng.magnitude(4),
    }
}

fn random_cost(rng: &mut Rng, params: &BucketParams) -> u64 {
    let capacity = params.capacity();
    match rng.range(0, 9) {
        0 => capacity + rng.magnitude(3),
        1 => capacity,
        2 => 0,
        _ => {
            let typical = 1 + rng.magnitude(3);
            rng.range(1, capacity.min(typical))
        }
    }
}

/// The bucket as stored by the script, `"<level> <last>"`, if the key exists.
fn stored(con: &mut Connection, key: &str) -> Result<Option<BucketState>> {
    let text: Option<String> = redis::cmd("GET").arg(key).query(con)?;
    Ok(text.map(|text| {
        let (level, last) = text.split_once(' ').expect("two numbers");
        BucketState {
            level_units: level.parse().expect("a level"),
            last_ms: last.parse().expect("a timestamp"),
        }
    }))
}

fn run_script(
    script: &Script,
    con: &mut Connection,
    key: &str,
    params: &BucketParams,
    cost: u64,
    now_ms: Option<u64>,
) -> Result<Result<Decision, ScriptError>> {
    let mut invocation = script.key(key);
    for arg in script_args(params, cost, now_ms) {
        invocation.arg(arg);
    }
    let reply: Vec<i64> = invocation.invoke(con)?;
    Ok(parse_reply(&reply, cost, params))
}

#[test]
fn lua_script_matches_rust_decisions_bit_for_bit() -> Result<()> {
    let shards = RedisShards::start(1)?;
    let mut con = shards.shards()[0].client()?.get_connection()?;
    let script = Script::new(TOKEN_BUCKET_LUA);
    let mut rng = Rng(StdRng::seed_from_u64(0x7a11_b0c4));
    let (mut decisions, mut refusals, mut allowed) = (0, 0, 0);

    for scenario in 0..400 {
        let params = random_params(&mut rng);
        let key = format!("tally:test:bucket:{scenario}");
        let mut rust_state: Option<BucketState> = None;
        let mut now = rng.range(1, 1 << 42);
        for step in 0..40 {
            now = next_now(&mut rng, now);
            let cost = random_cost(&mut rng, &params);
            let context =
                format!("scenario {scenario} step {step}: {params:?} cost {cost} now {now}");
            let before = stored(&mut con, &key)?;
            let lua = run_script(&script, &mut con, &key, &params, cost, Some(now))?;
            match decide(rust_state, now, cost, &params) {
                Ok(rust) => {
                    assert_eq!(lua, Ok(rust), "{context}");
                    assert_eq!(stored(&mut con, &key)?, Some(rust.next_state), "{context}");
                    let ttl_ms: i64 = con.pttl(&key)?;
                    let max_ttl = rust.reset_ms + KEY_GRACE_MS;
                    assert!(
                        ttl_ms > 0 && ttl_ms as u64 <= max_ttl,
                        "{context}: pttl {ttl_ms}"
                    );
                    rust_state = Some(rust.next_state);
                    decisions += 1;
                    allowed += usize::from(rust.allowed);
                }
                Err(rust_err) => {
                    assert_eq!(lua, Err(ScriptError::Bucket(rust_err)), "{context}");
                    assert_eq!(stored(&mut con, &key)?, before, "{context}: state changed");
                    refusals += 1;
                }
            }
        }
    }
    assert!(decisions > 10_000 && refusals > 500 && allowed > 1_000 && allowed < decisions);
    Ok(())
}

#[test]
fn cost_above_capacity_on_a_new_bucket_writes_nothing() -> Result<()> {
    let shards = RedisShards::start(1)?;
    let mut con = shards.shards()[0].client()?.get_connection()?;
    let script = Script::new(TOKEN_BUCKET_LUA);
    let params = BucketParams::per_second(10)?;
    let lua = run_script(&script, &mut con, "fresh", &params, 11, Some(1_000))?;
    assert_eq!(
        lua,
        Err(ScriptError::Bucket(
            decide(None, 1_000, 11, &params).unwrap_err()
        ))
    );
    let exists: bool = con.exists("fresh")?;
    assert!(!exists);
    Ok(())
}

#[test]
fn without_a_test_clock_the_script_uses_redis_time() -> Result<()> {
    let shards = RedisShards::start(1)?;
    let mut con = shards.shards()[0].client()?.get_connection()?;
    let script = Script::new(TOKEN_BUCKET_LUA);
    let params = BucketParams::per_second(10)?;
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query(&mut con)?;
    let server_ms = seconds * 1_000 + micros / 1_000;
    let decision = run_script(&script, &mut con, "live", &params, 1, None)??;
    assert!(decision.allowed);
    assert_eq!(decision.remaining, 9);
    let last = decision.next_state.last_ms;
    assert!(
        last >= server_ms && last < server_ms + 5_000,
        "{last} vs {server_ms}"
    );
    Ok(())
}
