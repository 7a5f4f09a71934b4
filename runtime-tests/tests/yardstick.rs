//! The yardsticks `scripts/bench-spin` measures routes against: a bare spin-sdk component that
//! must cost exactly one Redis connection and one `INCR` per counted request, and one
//! key-value read per cached read.

mod support;

use support::{io_of, post_with, start, workspace};
use tally_host::shards::RedisShards;

#[test]
fn the_yardstick_counts_with_one_connection_and_one_incr_per_request() {
    let shards = RedisShards::start(1).unwrap();
    let address = format!("redis://127.0.0.1:{}", shards.shards()[0].port());
    let manifest = workspace().join("runtime-tests/yardstick/spin.toml");
    let host = start(&manifest, &[("redis_url", address)]);
    for expected in 1..=3 {
        let (reply, io) = io_of(&host, || post_with(&host.url("/incr/home"), &[], None));
        assert_eq!(
            (reply.status, reply.body.as_str()),
            (200, expected.to_string().as_str())
        );
        assert_eq!(
            (io.redis_connects, io.redis_commands, io.kv_reads),
            (1, 1, 0),
            "{io:?}"
        );
    }
}

#[test]
fn the_cached_read_yardstick_is_one_key_value_read() {
    let shards = RedisShards::start(1).unwrap();
    let address = format!("redis://127.0.0.1:{}", shards.shards()[0].port());
    let manifest = workspace().join("runtime-tests/yardstick/spin.toml");
    let host = start(&manifest, &[("redis_url", address)]);
    let (reply, io) = io_of(&host, || support::get(&host.url("/kv/home")));
    assert_eq!((reply.status, reply.body.as_str()), (200, ""));
    assert_eq!(
        (io.kv_reads, io.kv_writes, io.redis_connects),
        (1, 0, 0),
        "{io:?}"
    );
}
