//! Shard placement measured over 1,000,000 random keys (fixed seed, so results repeat):
//! balance, movement when shards are added or removed, order independence and weights.
//!
//! These tests hash a million keys several times; they take a few seconds in a debug build
//! and well under a second with `cargo test --release`.

use rand::rngs::StdRng;
use rand::{Rng as _, SeedableRng};
use std::sync::OnceLock;

use tally_core::hashing::{key_hash, ShardSet, ShardSpec};

const KEYS: usize = 1_000_000;
const SHARD_COUNTS: [usize; 5] = [2, 3, 4, 8, 16];

/// The hashes of 1,000,000 random 16-byte keys, computed once per test binary.
fn key_hashes() -> &'static [u64] {
    static HASHES: OnceLock<Vec<u64>> = OnceLock::new();
    HASHES.get_or_init(|| {
        let mut rng = StdRng::seed_from_u64(0x7a11_7a11);
        (0..KEYS)
            .map(|_| {
                let mut key = [0u8; 16];
                key[..8].copy_from_slice(&rng.random::<u64>().to_le_bytes());
                key[8..].copy_from_slice(&rng.random::<u64>().to_le_bytes());
                key_hash(&key)
            })
            .collect()
    })
}

fn names(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("shard-{i}")).collect()
}

/// The owning shard's name for every key.
fn placement(set: &ShardSet) -> Vec<&str> {
    key_hashes()
        .iter()
        .map(|&h| set.shard(set.index_for_hash(h)).name())
        .collect()
}

fn loads(set: &ShardSet) -> Vec<usize> {
    let mut counts = vec![0; set.len()];
    for &h in key_hashes() {
        counts[set.index_for_hash(h)] += 1;
    }
    counts
}

#[test]
fn load_is_balanced_within_five_percent_of_the_mean() {
    for n in SHARD_COUNTS {
        let set = ShardSet::uniform(&names(n)).unwrap();
        let counts = loads(&set);
        let mean = KEYS as f64 / n as f64;
        let max = *counts.iter().max().unwrap() as f64;
        eprintln!("{n} shards: max/mean load = {:.4}", max / mean);
        assert!(
            max / mean <= 1.05,
            "{n} shards: max/mean = {:.4} ({counts:?})",
            max / mean
        );
    }
}

#[test]
fn adding_a_shard_moves_few_keys_and_only_onto_it() {
    for n in SHARD_COUNTS {
        let before = ShardSet::uniform(&names(n)).unwrap();
        let after = ShardSet::uniform(&names(n + 1)).unwrap();
        let new_name = format!("shard-{n}");
        let (old, new) = (placement(&before), placement(&after));
        let mut moved = 0;
        for (was, is) in old.iter().zip(&new) {
            if was != is {
                moved += 1;
                assert_eq!(*is, new_name, "a key moved between old shards");
            }
        }
        let fraction = moved as f64 / KEYS as f64;
        let bound = 1.1 / (n + 1) as f64;
        eprintln!(
            "{n} -> {} shards: moved {fraction:.4} (bound {bound:.4})",
            n + 1
        );
        assert!(
            fraction <= bound,
            "{n}->{}: moved {fraction:.4} > {bound:.4}",
            n + 1
        );
        assert!(fraction > 0.0);
    }
}

#[test]
fn removing_a_shard_moves_only_its_keys() {
    for n in SHARD_COUNTS {
        let all = names(n);
        let removed = &all[n / 2];
        let remaining: Vec<&String> = all.iter().filter(|name| *name != removed).collect();
        let before = ShardSet::uniform(&all).unwrap();
        let after = ShardSet::uniform(&remaining).unwrap();
        for (was, is) in placement(&before).iter().zip(placement(&after)) {
            if *was != removed.as_str() {
                assert_eq!(*was, is, "a key not on the removed shard moved");
            }
        }
    }
}

#[test]
fn reordering_the_configuration_moves_nothing() {
    let forward = names(8);
    let mut shuffled = forward.clone();
    shuffled.reverse();
    shuffled.swap(1, 5);
    let a = ShardSet::uniform(&forward).unwrap();
    let b = ShardSet::uniform(&shuffled).unwrap();
    assert_eq!(placement(&a), placement(&b));
}

#[test]
fn weights_are_honoured_proportionally() {
    let weights = [1u32, 2, 3, 4];
    let set = ShardSet::new(
        weights
            .iter()
            .enumerate()
            .map(|(i, &w)| ShardSpec::weighted(format!("w-{i}"), w)),
    )
    .unwrap();
    let counts = loads(&set);
    let total_weight: u32 = weights.iter().sum();
    for (shard, &count) in set.shards().iter().zip(&counts) {
        let expected = KEYS as f64 * f64::from(shard.weight()) / f64::from(total_weight);
        let ratio = count as f64 / expected;
        eprintln!(
            "weight {}: {count} keys, {ratio:.4} of its share",
            shard.weight()
        );
        assert!(
            (0.98..=1.02).contains(&ratio),
            "{}: {count} keys, expected {expected:.0}",
            shard.name()
        );
    }
}

#[test]
fn adding_a_weighted_shard_moves_keys_only_onto_it() {
    let base = [ShardSpec::weighted("a", 1), ShardSpec::weighted("b", 3)];
    let before = ShardSet::new(base.clone()).unwrap();
    let after = ShardSet::new(base.into_iter().chain([ShardSpec::weighted("c", 2)])).unwrap();
    let mut moved = 0;
    for (was, is) in placement(&before).iter().zip(placement(&after)) {
        if *was != is {
            moved += 1;
            assert_eq!(is, "c");
        }
    }
    // c has weight 2 of 6: a third of the keys.
    let fraction = moved as f64 / KEYS as f64;
    assert!((fraction - 1.0 / 3.0).abs() < 0.01, "moved {fraction:.4}");
}
