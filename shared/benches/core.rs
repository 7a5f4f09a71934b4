//! Per-request costs of the core, in time per operation (criterion prints ns or µs per
//! iteration). Each benchmark's name carries its yardstick, the target from issue 3:
//! lookup at 16 shards <= 100 ns, token decision <= 50 ns, grouping 1,000 visits <= 100 µs.
//!
//! Run: `cargo bench -p tally-core -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use tally_core::api::BatchVisit;
use tally_core::breaker::{allow, step, BreakerParams, BreakerState, Event};
use tally_core::hashing::{ShardSet, ShardSpec};
use tally_core::token_bucket::{decide, BucketParams, BucketState};
use tally_core::validation::page_id;

fn shard_names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("shard-{i}")).collect()
}

fn shard_lookup(c: &mut Criterion) {
    let mut group = c.benchmark_group("shard_lookup (target <= 100 ns at 16)");
    let key = b"visits:/blog/2024/05/01/hello-world";
    for n in [2, 4, 16] {
        let set = ShardSet::uniform(&shard_names(n)).unwrap();
        group.bench_with_input(BenchmarkId::new("uniform", n), &set, |b, set| {
            b.iter(|| set.index_for(black_box(key)))
        });
    }
    let weighted =
        ShardSet::new((0..16).map(|i| ShardSpec::weighted(format!("shard-{i}"), 1 + i % 3)))
            .unwrap();
    group.bench_function(BenchmarkId::new("weighted", 16), |b| {
        b.iter(|| weighted.index_for(black_box(key)))
    });
    group.finish();
}

fn shard_set_build(c: &mut Criterion) {
    let names = shard_names(16);
    c.bench_function("shard_set_build/16 (paid once per request)", |b| {
        b.iter(|| ShardSet::uniform(black_box(&names)).unwrap())
    });
}

fn token_decision(c: &mut Criterion) {
    let params = BucketParams::per_second(100)
        .unwrap()
        .with_capacity(200)
        .unwrap();
    let state = Some(BucketState {
        level_units: 150_000,
        last_ms: 1_700_000_000_000,
    });
    c.bench_function("token_decision (target <= 50 ns)", |b| {
        b.iter(|| {
            decide(
                black_box(state),
                black_box(1_700_000_000_137),
                black_box(3),
                &params,
            )
        })
    });
}

fn breaker_transition(c: &mut Criterion) {
    let params = BreakerParams::default();
    let closed = BreakerState::Closed {
        consecutive_failures: 2,
        window_start_ms: 1_700_000_000_000,
        window_calls: 12,
        window_failures: 4,
    };
    let mut group = c.benchmark_group("breaker");
    group.bench_function("step_failure", |b| {
        b.iter(|| {
            step(
                black_box(&closed),
                Event::Failure,
                black_box(1_700_000_000_500),
                &params,
            )
        })
    });
    let open = BreakerState::Open {
        since_ms: 1_700_000_000_000,
        duration_ms: 1_000,
        openings: 1,
    };
    group.bench_function("allow_open", |b| {
        b.iter(|| allow(black_box(&open), black_box(1_700_000_000_500), &params))
    });
    group.finish();
}

fn page_validation(c: &mut Criterion) {
    let mut group = c.benchmark_group("page_id_validation");
    group.bench_function("plain", |b| {
        b.iter(|| page_id(black_box("/blog/2024/05/hello-world")))
    });
    group.bench_function("percent_encoded", |b| {
        b.iter(|| page_id(black_box("/blog/caf%C3%A9%20menu%2Fspecials")))
    });
    group.finish();
}

fn group_batch(c: &mut Criterion) {
    let visits: Vec<BatchVisit> = (0..1_000)
        .map(|i| BatchVisit {
            page: format!("/page/{}", i % 300),
            count: 1,
            at: None,
        })
        .collect();
    let mut group = c.benchmark_group("group_1000_visits (target <= 100 us)");
    for n in [4, 16] {
        let set = ShardSet::uniform(&shard_names(n)).unwrap();
        group.bench_with_input(BenchmarkId::new("shards", n), &set, |b, set| {
            b.iter(|| {
                set.group_by_shard(black_box(&visits), |v| v.page.as_bytes())
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(
    benches,
    shard_lookup,
    shard_set_build,
    token_decision,
    breaker_transition,
    page_validation,
    group_batch
);
criterion_main!(benches);
