//! Which Redis shard owns a key: rendezvous (highest-random-weight) hashing over named shards.
//!
//! A component instance lives for one request, so whatever the placement scheme builds is paid
//! on every request. Rendezvous hashing builds almost nothing: per shard, one seed derived from
//! its name (computed once, in [`ShardSet::new`]), and per lookup the key is hashed once and
//! scored against each shard with a few integer operations. Shards are identified by name, not
//! by position, so reordering the configuration moves no key; adding a shard moves only the keys
//! the new shard wins; removing one moves only the keys it owned.
//!
//! # The hash, fixed forever
//!
//! Placement must never change across platforms, builds or crate upgrades, so every step is a
//! specified function (never Rust's randomly keyed `DefaultHasher`):
//!
//! 1. `key_hash = XXH3-64(key, seed = 0)` ([`key_hash`]).
//! 2. `shard_seed = XXH3-64(shard name as UTF-8, seed = 0)`.
//! 3. `score = fmix64(key_hash XOR shard_seed)`, where `fmix64` is MurmurHash3's 64-bit
//!    finalizer ([`fmix64`]).
//! 4. Without weights (or with all weights equal) the shard with the highest `score` wins.
//!    With weights, the shard with the smallest `-ln(u) / weight` wins, where
//!    `u = ((score >> 11) + 0.5) / 2^53` lies strictly inside (0, 1). That is the classic
//!    weighted rendezvous rule: each shard wins a share of keys proportional to its weight.
//!    The logarithm is [`portable_ln`], built from IEEE-754 additions, multiplications and
//!    divisions only, so it gives the same bits on every platform (no `libm` differences).
//! 5. Exact ties (vanishingly rare) go to the shard whose name sorts first.

use std::fmt;

use xxhash_rust::xxh3::xxh3_64;

/// Hashes a key once for placement: XXH3-64 with seed 0.
///
/// Exposed so a caller that already hashed a key can place it with
/// [`ShardSet::index_for_hash`] without hashing again.
#[inline]
pub fn key_hash(key: &[u8]) -> u64 {
    xxh3_64(key)
}

/// MurmurHash3's 64-bit finalizer: a bijective mixer with full avalanche.
///
/// Constants are those of MurmurHash3 (Austin Appleby, public domain).
#[inline]
pub fn fmix64(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^= x >> 33;
    x
}

/// Natural logarithm of a positive, finite, normal `x`, using only IEEE-754 basic operations.
///
/// `x = m * 2^e` with `m` in `[sqrt(2)/2, sqrt(2))`; then `ln(x) = e*ln(2) + 2*atanh(s)` with
/// `s = (m-1)/(m+1)`, `|s| < 0.172`, summed as an odd series to `s^11` (absolute error below
/// 3e-11, ample for weighting; what matters is that it is deterministic). Basic operations
/// are correctly rounded everywhere, so the result is
/// bit-identical on every platform, unlike `f64::ln`, which may call the platform's `libm`.
/// Only called with values in (0, 1] by the weighted rule.
pub fn portable_ln(x: f64) -> f64 {
    const LN_2: f64 = std::f64::consts::LN_2;
    const SQRT_2: f64 = std::f64::consts::SQRT_2;
    let bits = x.to_bits();
    let mut exponent = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut mantissa = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if mantissa > SQRT_2 {
        mantissa /= 2.0;
        exponent += 1;
    }
    let s = (mantissa - 1.0) / (mantissa + 1.0);
    let s2 = s * s;
    // Horner form of 1 + s2/3 + s2^2/5 + s2^3/7 + s2^4/9 + s2^5/11.
    let series = 1.0
        + s2 * (1.0 / 3.0
            + s2 * (1.0 / 5.0 + s2 * (1.0 / 7.0 + s2 * (1.0 / 9.0 + s2 * (1.0 / 11.0)))));
    exponent as f64 * LN_2 + 2.0 * s * series
}

/// Shrinks the `1 - u` lower bound of `-ln(u)` by far more than `portable_ln`'s relative error
/// (below 1e-10), so pruning never skips a shard that could win.
const LOWER_BOUND_MARGIN: f64 = 1.0 - 1e-6;

/// The key's score for a shard as a number strictly inside (0, 1): `((score >> 11) + 0.5) / 2^53`.
#[inline]
fn unit_score(hash: u64, seed: u64) -> f64 {
    let score = fmix64(hash ^ seed);
    ((score >> 11) as f64 + 0.5) * (1.0 / 9_007_199_254_740_992.0)
}

/// One shard as configured: a unique name and a relative weight (1 = normal share).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSpec {
    /// The shard's name, e.g. `"a"`; it is what placement depends on, so renaming moves keys.
    pub name: String,
    /// Relative share of keys; a shard of weight 2 gets twice the keys of a shard of weight 1.
    pub weight: u32,
}

impl ShardSpec {
    /// A shard with weight 1.
    pub fn named(name: impl Into<String>) -> Self {
        ShardSpec {
            name: name.into(),
            weight: 1,
        }
    }

    /// A shard with the given relative weight.
    pub fn weighted(name: impl Into<String>, weight: u32) -> Self {
        ShardSpec {
            name: name.into(),
            weight,
        }
    }
}

/// A shard of a built [`ShardSet`]: its name, weight and precomputed seed.
#[derive(Clone, Debug, PartialEq)]
pub struct Shard {
    name: String,
    weight: u32,
    seed: u64,
    inverse_weight: f64,
}

impl Shard {
    /// The shard's configured name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The shard's relative weight.
    pub fn weight(&self) -> u32 {
        self.weight
    }
}

/// Why a shard configuration was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardSetError {
    /// No shard was configured.
    Empty,
    /// A shard has an empty name.
    EmptyName,
    /// Two shards share a name.
    DuplicateName(String),
    /// A shard has weight 0.
    ZeroWeight(String),
}

impl fmt::Display for ShardSetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ShardSetError::Empty => write!(f, "no shard configured"),
            ShardSetError::EmptyName => write!(f, "a shard has an empty name"),
            ShardSetError::DuplicateName(name) => write!(f, "shard name {name:?} is used twice"),
            ShardSetError::ZeroWeight(name) => write!(f, "shard {name:?} has weight 0"),
        }
    }
}

impl std::error::Error for ShardSetError {}

/// The configured shards, sorted by name, with per-shard seeds computed once.
///
/// Indices returned by lookups refer to this name-sorted order ([`ShardSet::shard`]), so they
/// do not depend on the order of the configuration either.
#[derive(Clone, Debug, PartialEq)]
pub struct ShardSet {
    shards: Vec<Shard>,
    weighted: bool,
}

/// The keys of one batch that live on one shard.
#[derive(Debug, PartialEq)]
pub struct ShardGroup<'s, 'i, T> {
    /// Index of the shard in its [`ShardSet`].
    pub shard_index: usize,
    /// The shard itself.
    pub shard: &'s Shard,
    /// The batch's items placed on this shard, in their original order.
    pub items: Vec<&'i T>,
}

impl ShardSet {
    /// Builds the set: validates names and weights and precomputes each shard's seed.
    pub fn new(specs: impl IntoIterator<Item = ShardSpec>) -> Result<Self, ShardSetError> {
        let mut shards = Vec::new();
        for spec in specs {
            if spec.name.is_empty() {
                return Err(ShardSetError::EmptyName);
            }
            if spec.weight == 0 {
                return Err(ShardSetError::ZeroWeight(spec.name));
            }
            shards.push(Shard {
                seed: key_hash(spec.name.as_bytes()),
                inverse_weight: 1.0 / f64::from(spec.weight),
                weight: spec.weight,
                name: spec.name,
            });
        }
        if shards.is_empty() {
            return Err(ShardSetError::Empty);
        }
        shards.sort_by(|a, b| a.name.cmp(&b.name));
        if let Some(pair) = shards.windows(2).find(|pair| pair[0].name == pair[1].name) {
            return Err(ShardSetError::DuplicateName(pair[0].name.clone()));
        }
        let weighted = shards.iter().any(|s| s.weight != shards[0].weight);
        Ok(ShardSet { shards, weighted })
    }

    /// Builds a set of equally weighted shards from their names.
    pub fn uniform<S: AsRef<str>>(names: &[S]) -> Result<Self, ShardSetError> {
        Self::new(names.iter().map(|n| ShardSpec::named(n.as_ref())))
    }

    /// The shards, sorted by name.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard at `index` (as returned by [`ShardSet::index_for`]).
    ///
    /// # Panics
    /// If `index` is out of range.
    pub fn shard(&self, index: usize) -> &Shard {
        &self.shards[index]
    }

    /// Number of shards.
    pub fn len(&self) -> usize {
        self.shards.len()
    }

    /// Always false: a set has at least one shard.
    pub fn is_empty(&self) -> bool {
        self.shards.is_empty()
    }

    /// The shard that owns `key`.
    #[inline]
    pub fn shard_for(&self, key: &[u8]) -> &Shard {
        &self.shards[self.index_for(key)]
    }

    /// The index of the shard that owns `key`.
    #[inline]
    pub fn index_for(&self, key: &[u8]) -> usize {
        self.index_for_hash(key_hash(key))
    }

    /// The index of the shard that owns a key whose [`key_hash`] is `hash`.
    #[inline]
    pub fn index_for_hash(&self, hash: u64) -> usize {
        if self.weighted {
            self.weighted_winner(hash)
        } else {
            self.uniform_winner(hash)
        }
    }

    fn uniform_winner(&self, hash: u64) -> usize {
        // Shards are sorted by name, so keeping the first of equal scores favours the
        // name that sorts first.
        let mut best = 0;
        let mut best_score = fmix64(hash ^ self.shards[0].seed);
        for (i, shard) in self.shards.iter().enumerate().skip(1) {
            let score = fmix64(hash ^ shard.seed);
            if score > best_score {
                best = i;
                best_score = score;
            }
        }
        best
    }

    /// The weighted rule: the smallest `-ln(u) / weight` wins, ties to the lower index.
    ///
    /// Same answer as evaluating every shard (`weighted_winner_exhaustive`), but the
    /// logarithm is only computed where it can matter: `-ln(u) >= 1 - u`, so a shard whose
    /// `(1 - u) / weight` (shrunk by a margin far above `portable_ln`'s error) already exceeds
    /// the best cost cannot win, so only a few shards need a logarithm.
    fn weighted_winner(&self, hash: u64) -> usize {
        // Pass 1: the shard with the smallest lower bound is the likely winner.
        let lower_bound = |shard: &Shard| {
            let unit = unit_score(hash, shard.seed);
            (
                unit,
                (1.0 - unit) * shard.inverse_weight * LOWER_BOUND_MARGIN,
            )
        };
        let mut first = 0;
        let mut first_bound = f64::INFINITY;
        let mut first_unit = 0.5;
        for (i, shard) in self.shards.iter().enumerate() {
            let (unit, bound) = lower_bound(shard);
            if bound < first_bound {
                (first, first_bound, first_unit) = (i, bound, unit);
            }
        }
        // Pass 2: only shards whose bound does not exceed the best cost can win or tie.
        let mut best = first;
        let mut best_cost = -portable_ln(first_unit) * self.shards[first].inverse_weight;
        for (i, shard) in self.shards.iter().enumerate() {
            let (unit, bound) = lower_bound(shard);
            if i == first || bound > best_cost {
                continue;
            }
            let cost = -portable_ln(unit) * shard.inverse_weight;
            if cost < best_cost || (cost == best_cost && i < best) {
                best = i;
                best_cost = cost;
            }
        }
        best
    }

    /// The weighted rule evaluated on every shard: the definition the fast path must match.
    #[cfg(test)]
    fn weighted_winner_exhaustive(&self, hash: u64) -> usize {
        let mut best = 0;
        let mut best_cost = f64::INFINITY;
        for (i, shard) in self.shards.iter().enumerate() {
            let cost = -portable_ln(unit_score(hash, shard.seed)) * shard.inverse_weight;
            if cost < best_cost {
                best = i;
                best_cost = cost;
            }
        }
        best
    }

    /// Groups a batch by owning shard, hashing each item's key once.
    ///
    /// Groups come in shard order; items keep their batch order; shards with no item are left
    /// out. Used to send one round trip per shard touched.
    pub fn group_by_shard<'s, 'i, T, F>(
        &'s self,
        items: &'i [T],
        key: F,
    ) -> Vec<ShardGroup<'s, 'i, T>>
    where
        F: Fn(&T) -> &[u8],
    {
        let mut buckets: Vec<Vec<&'i T>> = vec![Vec::new(); self.shards.len()];
        for item in items {
            buckets[self.index_for(key(item))].push(item);
        }
        buckets
            .into_iter()
            .enumerate()
            .filter(|(_, items)| !items.is_empty())
            .map(|(shard_index, items)| ShardGroup {
                shard_index,
                shard: &self.shards[shard_index],
                items,
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_the_documented_xxh3_value() {
        // Reference values of XXH3-64 (seed 0), from the xxHash specification's test vectors.
        assert_eq!(key_hash(b""), 0x2d06_8005_38d3_94c2);
        assert_eq!(key_hash(b"a"), 0xe6c6_32b6_1e96_4e1f);
    }

    #[test]
    fn placement_is_pinned_forever() {
        // If this changes, every deployed key moves: never update these values casually.
        let set = ShardSet::uniform(&["a", "b", "c", "d"]).unwrap();
        let placed: Vec<&str> = ["home", "about", "/blog/1", "visits:x", "", "ünïcode"]
            .iter()
            .map(|k| set.shard_for(k.as_bytes()).name())
            .collect();
        assert_eq!(placed, PINNED_PLACEMENT);
    }

    const PINNED_PLACEMENT: [&str; 6] = ["d", "d", "d", "a", "a", "d"];

    #[test]
    fn portable_ln_matches_std_ln_closely() {
        for x in [
            1e-300,
            1e-16,
            0.001,
            0.1,
            0.5,
            std::f64::consts::FRAC_1_SQRT_2,
            0.7072,
            0.9,
            0.999_999,
            1.0,
            2.0,
            1e10,
        ] {
            let diff = (portable_ln(x) - x.ln()).abs();
            assert!(
                diff <= 3e-11 + 1e-15 * x.ln().abs(),
                "ln({x}) off by {diff}"
            );
        }
    }

    #[test]
    fn fmix64_is_murmur3_finalizer() {
        assert_eq!(fmix64(0), 0);
        assert_ne!(fmix64(1), fmix64(2));
    }

    #[test]
    fn empty_set_is_refused() {
        assert_eq!(ShardSet::uniform::<&str>(&[]), Err(ShardSetError::Empty));
    }

    #[test]
    fn duplicate_names_are_refused() {
        assert_eq!(
            ShardSet::uniform(&["a", "b", "a"]),
            Err(ShardSetError::DuplicateName("a".into()))
        );
    }

    #[test]
    fn empty_name_and_zero_weight_are_refused() {
        assert_eq!(ShardSet::uniform(&[""]), Err(ShardSetError::EmptyName));
        assert_eq!(
            ShardSet::new([ShardSpec::weighted("a", 0)]),
            Err(ShardSetError::ZeroWeight("a".into()))
        );
    }

    #[test]
    fn errors_read_well() {
        assert_eq!(ShardSetError::Empty.to_string(), "no shard configured");
        assert!(ShardSetError::DuplicateName("a".into())
            .to_string()
            .contains("\"a\""));
        assert!(ShardSetError::ZeroWeight("a".into())
            .to_string()
            .contains("weight 0"));
        assert!(ShardSetError::EmptyName.to_string().contains("empty"));
    }

    #[test]
    fn shards_are_sorted_by_name() {
        let set = ShardSet::uniform(&["c", "a", "b"]).unwrap();
        let names: Vec<&str> = set.shards().iter().map(Shard::name).collect();
        assert_eq!(names, ["a", "b", "c"]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        assert_eq!(set.shard(1).name(), "b");
        assert_eq!(set.shard(1).weight(), 1);
    }

    #[test]
    fn single_shard_owns_everything() {
        let set = ShardSet::uniform(&["only"]).unwrap();
        for key in ["a", "b", "c"] {
            assert_eq!(set.index_for(key.as_bytes()), 0);
        }
    }

    #[test]
    fn equal_weights_place_like_no_weights() {
        let plain = ShardSet::uniform(&["a", "b", "c"]).unwrap();
        let heavy = ShardSet::new(["a", "b", "c"].map(|n| ShardSpec::weighted(n, 5))).unwrap();
        for i in 0..1000u32 {
            let key = i.to_le_bytes();
            assert_eq!(plain.index_for(&key), heavy.index_for(&key));
        }
    }

    #[test]
    fn lookup_by_hash_equals_lookup_by_key() {
        let set = ShardSet::new([ShardSpec::named("a"), ShardSpec::weighted("b", 3)]).unwrap();
        for key in ["x", "y", "z"] {
            assert_eq!(
                set.index_for(key.as_bytes()),
                set.index_for_hash(key_hash(key.as_bytes()))
            );
        }
    }

    #[test]
    fn grouping_keeps_every_item_once_in_order_on_its_shard() {
        let set = ShardSet::uniform(&["a", "b", "c"]).unwrap();
        let pages: Vec<String> = (0..100).map(|i| format!("/page/{i}")).collect();
        let groups = set.group_by_shard(&pages, |p| p.as_bytes());
        let total: usize = groups.iter().map(|g| g.items.len()).sum();
        assert_eq!(total, pages.len());
        for group in &groups {
            assert!(!group.items.is_empty());
            assert_eq!(group.shard.name(), set.shard(group.shard_index).name());
            for item in &group.items {
                assert_eq!(set.index_for(item.as_bytes()), group.shard_index);
            }
            let positions: Vec<usize> = group
                .items
                .iter()
                .map(|item| pages.iter().position(|p| p == *item).unwrap())
                .collect();
            assert!(positions.windows(2).all(|w| w[0] < w[1]));
        }
        assert!(groups
            .windows(2)
            .all(|w| w[0].shard_index < w[1].shard_index));
    }

    #[test]
    fn pruned_weighted_lookup_equals_the_exhaustive_definition() {
        let sets = [
            ShardSet::new([ShardSpec::weighted("a", 1), ShardSpec::weighted("b", 100)]).unwrap(),
            ShardSet::new((0..16).map(|i| ShardSpec::weighted(format!("s{i}"), 1 + i % 5)))
                .unwrap(),
            ShardSet::new((0..40).map(|i| ShardSpec::weighted(format!("s{i}"), 1 + i))).unwrap(),
        ];
        for set in &sets {
            for i in 0..50_000u64 {
                let h = fmix64(i);
                assert_eq!(set.weighted_winner(h), set.weighted_winner_exhaustive(h));
            }
        }
    }

    #[test]
    fn every_one_of_many_weighted_shards_receives_keys() {
        let set = ShardSet::new((0..70).map(|i| ShardSpec::weighted(format!("s{i}"), 1 + i % 2)))
            .unwrap();
        let mut seen = [false; 70];
        for i in 0..10_000u64 {
            seen[set.index_for_hash(fmix64(i))] = true;
        }
        assert!(seen.iter().all(|&s| s));
    }

    #[test]
    fn weighted_placement_is_pinned_forever() {
        let set = ShardSet::new([
            ShardSpec::weighted("a", 1),
            ShardSpec::weighted("b", 2),
            ShardSpec::weighted("c", 3),
        ])
        .unwrap();
        let placed: Vec<&str> = ["home", "about", "/blog/1", "visits:x", "", "ünïcode"]
            .iter()
            .map(|k| set.shard_for(k.as_bytes()).name())
            .collect();
        assert_eq!(placed, PINNED_WEIGHTED_PLACEMENT);
    }

    const PINNED_WEIGHTED_PLACEMENT: [&str; 6] = ["b", "c", "c", "b", "a", "c"];

    #[test]
    fn grouping_an_empty_batch_gives_no_group() {
        let set = ShardSet::uniform(&["a"]).unwrap();
        let none: Vec<String> = Vec::new();
        assert!(set.group_by_shard(&none, |p| p.as_bytes()).is_empty());
    }
}
