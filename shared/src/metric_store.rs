//! How metric samples are stored on a shard, so that a summary costs the same three Redis
//! commands, and moves the same bytes, whether a type holds ten samples or ten million.
//!
//! Everything about a type lives on the shard its name hashes to:
//!
//! - Three strings of packed [`Bucket`]s ([`BUCKET_BYTES`] each; see [`Bucket::to_bytes`]):
//!   `tally:m:<type>:all` (one bucket: every sample ever ingested), `tally:m:<type>:minutes`
//!   (a ring of [`MINUTE_RING`] one-minute slots) and `tally:m:<type>:hours` (a ring of
//!   [`HOUR_RING`] one-hour slots). A ring is created at its full size, empty slots zeroed.
//!   Ingest folds each request's samples into them atomically (`ingest_metrics.lua`, which
//!   reads and writes slots with Lua's `struct`); a summary reads one of them whole with the
//!   server's clock (`read_metric.lua`) and folds the slots inside the window.
//! - `tally:m:<type>:samples`, a sorted set of the newest samples by timestamp (at most the
//!   configured number per type), for listing. Members are `<sequence>:<value>`.
//!
//! And per shard, [`RECENT_KEY`]: the newest [`RECENT_KEEP`] samples of every type, members
//! `<type>:<sequence>:<value>`, so listing without a type costs one command per shard.
//!
//! The rings bound the buckets: a minute bucket lives until its slot is reused [`MINUTE_RING`]
//! minutes later, an hour bucket [`HOUR_RING`] hours later. Each ring is larger than its
//! window by the room future-stamped samples need, so a bucket a summary may still read is
//! never overwritten. Every key a type has expires a configurable number of days
//! ([`retention_days`]) after the type's last ingest, so types no one writes any more, with
//! their all-time bucket, go away.

use std::collections::BTreeMap;

use crate::api::{MetricSample, Period, ServedVia, SummaryReply, HOUR_MS, MINUTE_MS};
use crate::rfc3339;
use crate::validation::{ValidSample, MAX_LIST_LIMIT};

/// The per-shard set of the newest samples of every type.
pub const RECENT_KEY: &str = "tally:metrics:recent";
/// Samples kept in [`RECENT_KEY`]: enough for the largest list.
pub const RECENT_KEEP: u64 = MAX_LIST_LIMIT as u64;
/// Minute buckets kept per type: the hourly window (60) plus 15 minutes of room ahead.
pub const MINUTE_RING: i64 = 75;
/// Hour buckets kept per type: the daily window (24) plus 2 hours of room ahead.
pub const HOUR_RING: i64 = 26;
/// Samples kept per type for listing when the `metrics_samples_per_type` variable is unset.
pub const DEFAULT_SAMPLES_PER_TYPE: u64 = 10_000;
/// Fewest samples kept per type: a full list of one type must be possible.
pub const MIN_SAMPLES_PER_TYPE: u64 = MAX_LIST_LIMIT as u64;
/// Most samples kept per type.
pub const MAX_SAMPLES_PER_TYPE: u64 = 10_000_000;

/// Days a type's keys outlive its last ingest when `metrics_retention_days` is unset.
pub const DEFAULT_RETENTION_DAYS: u64 = 30;
/// Longest `metrics_retention_days` (ten years).
pub const MAX_RETENTION_DAYS: u64 = 3_650;

/// A stored reply that does not have the expected shape.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreError(pub String);

/// Bytes of one packed [`Bucket`].
pub const BUCKET_BYTES: usize = 56;

/// The string of packed buckets a summary of `period` reads: the all-time bucket, the minute
/// ring (hourly) or the hour ring (daily).
pub fn buckets_key(metric_type: &str, period: Period) -> String {
    let ring = match period {
        Period::All => "all",
        Period::Hourly => "minutes",
        Period::Daily => "hours",
    };
    format!("tally:m:{metric_type}:{ring}")
}

/// The sorted set of a type's newest samples.
pub fn samples_key(metric_type: &str) -> String {
    format!("tally:m:{metric_type}:samples")
}

/// Reads the `metrics_samples_per_type` variable (absent or blank: the default).
pub fn samples_per_type(raw: Option<&str>) -> Result<u64, String> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_SAMPLES_PER_TYPE);
    };
    match text.parse::<u64>() {
        Ok(n) if (MIN_SAMPLES_PER_TYPE..=MAX_SAMPLES_PER_TYPE).contains(&n) => Ok(n),
        _ => Err(format!(
            "metrics_samples_per_type must be a whole number from {MIN_SAMPLES_PER_TYPE} to \
             {MAX_SAMPLES_PER_TYPE}, not {text:?}"
        )),
    }
}

/// Reads the `metrics_retention_days` variable (absent or blank: the default), 1 to
/// [`MAX_RETENTION_DAYS`].
pub fn retention_days(raw: Option<&str>) -> Result<u64, String> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(DEFAULT_RETENTION_DAYS);
    };
    match text.parse::<u64>() {
        Ok(n) if (1..=MAX_RETENTION_DAYS).contains(&n) => Ok(n),
        _ => Err(format!(
            "metrics_retention_days must be a whole number from 1 to {MAX_RETENTION_DAYS}, \
             not {text:?}"
        )),
    }
}

/// How long a shard keeps what it stores for a type: the newest samples per type, and days
/// after the type's last ingest.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Retention {
    /// Samples kept per type for listing.
    pub samples_per_type: u64,
    /// Days every key of a type outlives its last ingest.
    pub days: u64,
}

/// Count, sum, min, max and latest of some samples.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Aggregate {
    /// Number of samples.
    pub count: u64,
    /// Sum of their values.
    pub sum: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
    /// Newest timestamp, Unix ms.
    pub latest_ms: i64,
    /// The value at `latest_ms` (the later sample on ties).
    pub latest: f64,
}

impl Aggregate {
    /// One sample.
    pub fn of(timestamp_ms: i64, value: f64) -> Self {
        Aggregate {
            count: 1,
            sum: value,
            min: value,
            max: value,
            latest_ms: timestamp_ms,
            latest: value,
        }
    }

    /// Folds in `later`, whose samples were ingested after these: it wins a tie for latest.
    pub fn merge(&mut self, later: &Aggregate) {
        self.count += later.count;
        self.sum += later.sum;
        self.min = self.min.min(later.min);
        self.max = self.max.max(later.max);
        if later.latest_ms >= self.latest_ms {
            self.latest_ms = later.latest_ms;
            self.latest = later.latest;
        }
    }
}

/// An aggregate stored under an index: the minute or hour number since the Unix epoch for
/// ring buckets, 0 for the all-time bucket.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Bucket {
    /// Minute or hour number (0 for all-time).
    pub index: i64,
    /// The samples' aggregate.
    pub aggregate: Aggregate,
}

impl Bucket {
    /// The packed form the scripts read with Lua's `struct` (format `<i8i8dddi8d`): index,
    /// count, sum, min, max, latest_ms, latest, each 8 bytes little-endian. Exact: floats
    /// keep their bits.
    pub fn to_bytes(&self) -> [u8; BUCKET_BYTES] {
        let a = &self.aggregate;
        let words = [
            self.index.to_le_bytes(),
            a.count.to_le_bytes(),
            a.sum.to_le_bytes(),
            a.min.to_le_bytes(),
            a.max.to_le_bytes(),
            a.latest_ms.to_le_bytes(),
            a.latest.to_le_bytes(),
        ];
        let mut out = [0; BUCKET_BYTES];
        for (chunk, word) in out.chunks_exact_mut(8).zip(words) {
            chunk.copy_from_slice(&word);
        }
        out
    }

    /// Reads one packed bucket; `None` for an empty slot (count 0).
    pub fn from_bytes(bytes: &[u8; BUCKET_BYTES]) -> Option<Self> {
        let word = |n: usize| -> [u8; 8] { bytes[n * 8..n * 8 + 8].try_into().unwrap() };
        let count = u64::from_le_bytes(word(1));
        (count > 0).then(|| Bucket {
            index: i64::from_le_bytes(word(0)),
            aggregate: Aggregate {
                count,
                sum: f64::from_le_bytes(word(2)),
                min: f64::from_le_bytes(word(3)),
                max: f64::from_le_bytes(word(4)),
                latest_ms: i64::from_le_bytes(word(5)),
                latest: f64::from_le_bytes(word(6)),
            },
        })
    }
}

/// Reads a string of packed buckets (a ring or the all-time bucket), skipping empty slots.
pub fn unpack_buckets(bytes: &[u8]) -> Result<Vec<Bucket>, StoreError> {
    let (slots, rest) = bytes.as_chunks::<BUCKET_BYTES>();
    if !rest.is_empty() {
        return Err(StoreError(format!(
            "{} bytes of buckets is not a whole number of {BUCKET_BYTES}-byte slots",
            bytes.len()
        )));
    }
    Ok(slots.iter().filter_map(Bucket::from_bytes).collect())
}

/// One request's samples of one type, with the buckets they fold into.
#[derive(Clone, Debug, PartialEq)]
pub struct TypeBatch {
    /// The metric type.
    pub metric_type: String,
    /// `(timestamp_ms, value)` in request order.
    pub samples: Vec<(i64, f64)>,
    /// All of them.
    pub all: Aggregate,
    /// Per minute number.
    pub minutes: BTreeMap<i64, Aggregate>,
    /// Per hour number.
    pub hours: BTreeMap<i64, Aggregate>,
}

impl TypeBatch {
    fn new(metric_type: &str, timestamp_ms: i64, value: f64) -> Self {
        let one = Aggregate::of(timestamp_ms, value);
        TypeBatch {
            metric_type: metric_type.to_owned(),
            samples: vec![(timestamp_ms, value)],
            all: one,
            minutes: BTreeMap::from([(timestamp_ms.div_euclid(MINUTE_MS), one)]),
            hours: BTreeMap::from([(timestamp_ms.div_euclid(HOUR_MS), one)]),
        }
    }

    fn add(&mut self, timestamp_ms: i64, value: f64) {
        let one = Aggregate::of(timestamp_ms, value);
        self.samples.push((timestamp_ms, value));
        self.all.merge(&one);
        for (buckets, len) in [(&mut self.minutes, MINUTE_MS), (&mut self.hours, HOUR_MS)] {
            buckets
                .entry(timestamp_ms.div_euclid(len))
                .and_modify(|a| a.merge(&one))
                .or_insert(one);
        }
    }
}

/// Groups validated samples by type (types in name order, samples in request order).
pub fn plan(samples: &[ValidSample]) -> Vec<TypeBatch> {
    let mut by_type: BTreeMap<&str, TypeBatch> = BTreeMap::new();
    for s in samples {
        by_type
            .entry(&s.metric_type)
            .and_modify(|b| b.add(s.timestamp_ms, s.value))
            .or_insert_with(|| TypeBatch::new(&s.metric_type, s.timestamp_ms, s.value));
    }
    by_type.into_values().collect()
}

/// `KEYS` of `ingest_metrics.lua` for the batches going to one shard.
pub fn ingest_keys(batches: &[&TypeBatch]) -> Vec<String> {
    let mut keys = vec![RECENT_KEY.to_owned()];
    for b in batches {
        for period in [Period::All, Period::Hourly, Period::Daily] {
            keys.push(buckets_key(&b.metric_type, period));
        }
        keys.push(samples_key(&b.metric_type));
    }
    keys
}

/// `ARGV` of `ingest_metrics.lua` for the batches going to one shard.
pub fn ingest_args(batches: &[&TypeBatch], retention: Retention) -> Vec<Vec<u8>> {
    let mut args: Vec<Vec<u8>> = [
        retention.samples_per_type,
        RECENT_KEEP,
        MINUTE_RING as u64,
        HOUR_RING as u64,
        retention.days * 86_400_000,
    ]
    .iter()
    .map(|n| n.to_string().into_bytes())
    .collect();
    for b in batches {
        args.push(b.metric_type.clone().into_bytes());
        args.push(b.samples.len().to_string().into_bytes());
        for (timestamp_ms, value) in &b.samples {
            args.push(timestamp_ms.to_string().into_bytes());
            args.push(format!("{value:?}").into_bytes());
        }
        let all = Bucket {
            index: 0,
            aggregate: b.all,
        };
        args.push(all.to_bytes().to_vec());
        args.push(pack(&b.minutes));
        args.push(pack(&b.hours));
    }
    args
}

/// A batch's buckets of one ring, packed and concatenated in ascending index order.
fn pack(ring: &BTreeMap<i64, Aggregate>) -> Vec<u8> {
    ring.iter()
        .flat_map(|(&index, &aggregate)| Bucket { index, aggregate }.to_bytes())
        .collect()
}

/// The reply of `read_metric.lua`: the server's clock in Unix ms, and the buckets found.
pub fn parse_read_reply(reply: &[Vec<u8>]) -> Result<(i64, Vec<Bucket>), StoreError> {
    let [seconds, micros, packed] = reply else {
        return Err(StoreError(format!(
            "read_metric returned {} values",
            reply.len()
        )));
    };
    let clock = |bytes: &Vec<u8>| {
        std::str::from_utf8(bytes)
            .ok()
            .and_then(|t| t.parse::<i64>().ok())
            .ok_or_else(|| StoreError("read_metric returned a bad clock".into()))
    };
    let now_ms = clock(seconds)? * 1_000 + clock(micros)? / 1_000;
    Ok((now_ms, unpack_buckets(packed)?))
}

/// The summary of the buckets inside `period`'s window when the server's clock reads `now_ms`.
pub fn summarize_buckets(
    metric_type: &str,
    period: Period,
    served_via: ServedVia,
    now_ms: i64,
    mut buckets: Vec<Bucket>,
) -> SummaryReply {
    let first_index = period
        .buckets()
        .map(|(len, count)| now_ms.div_euclid(len) - (count - 1));
    buckets.retain(|b| first_index.is_none_or(|first| b.index >= first));
    buckets.sort_by_key(|b| b.index);
    let total = buckets.iter().map(|b| b.aggregate).reduce(|mut acc, next| {
        acc.merge(&next);
        acc
    });
    SummaryReply {
        metric_type: metric_type.to_owned(),
        period,
        count: total.map_or(0, |a| a.count),
        average_value: total.map(|a| a.sum / a.count as f64),
        min_value: total.map(|a| a.min),
        max_value: total.map(|a| a.max),
        latest_value: total.map(|a| a.latest),
        served_via,
    }
}

/// A stored sample as listed.
#[derive(Clone, Debug, PartialEq)]
pub struct Listed {
    /// Unix ms.
    pub timestamp_ms: i64,
    /// The metric type.
    pub metric_type: String,
    /// The value.
    pub value: f64,
}

impl Listed {
    /// Reads a member and score of a samples set: `<seq>:<value>` of `metric_type`, or
    /// `<type>:<seq>:<value>` from [`RECENT_KEY`] when `metric_type` is `None`.
    pub fn parse(
        member: &[u8],
        score: &[u8],
        metric_type: Option<&str>,
    ) -> Result<Self, StoreError> {
        let bad = || {
            StoreError(format!(
                "unreadable sample {:?}",
                String::from_utf8_lossy(member)
            ))
        };
        let member = std::str::from_utf8(member).map_err(|_| bad())?;
        let (kind, rest) = match metric_type {
            Some(kind) => (kind, member),
            None => member.split_once(':').ok_or_else(bad)?,
        };
        let (_seq, value) = rest.split_once(':').ok_or_else(bad)?;
        let score = std::str::from_utf8(score).map_err(|_| bad())?;
        Ok(Listed {
            timestamp_ms: score.parse::<f64>().map_err(|_| bad())? as i64,
            metric_type: kind.to_owned(),
            value: value.parse().map_err(|_| bad())?,
        })
    }

    /// The API form; the timestamp in UTC with milliseconds.
    pub fn into_sample(self) -> MetricSample {
        MetricSample {
            timestamp: rfc3339::format_unix_ms(self.timestamp_ms),
            value: self.value,
            metric_type: self.metric_type,
        }
    }
}

/// The newest `limit` samples of several lists that are each newest first (one per shard).
pub fn newest(lists: Vec<Vec<Listed>>, limit: usize) -> Vec<Listed> {
    let mut all: Vec<Listed> = lists.into_iter().flatten().collect();
    all.sort_by_key(|l| std::cmp::Reverse(l.timestamp_ms));
    all.truncate(limit);
    all
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::summarize;

    fn sample(metric_type: &str, timestamp_ms: i64, value: f64) -> ValidSample {
        ValidSample {
            timestamp_ms,
            value,
            metric_type: metric_type.into(),
        }
    }

    #[test]
    fn buckets_round_trip_exactly() {
        for value in [
            0.1,
            -0.0,
            1e300,
            -2.5e-300,
            123_456_789.125,
            f64::MIN_POSITIVE,
        ] {
            let b = Bucket {
                index: -28_000_000,
                aggregate: Aggregate::of(1_700_000_000_123, value),
            };
            let back = Bucket::from_bytes(&b.to_bytes()).unwrap();
            assert_eq!(back, b);
            assert_eq!(back.aggregate.min.to_bits(), value.to_bits());
        }
        // As Lua's struct.pack('<i8i8dddi8d', 5, 2, 0.1 + 0.2, 0.1, 0.2, 7, 0.2) writes it.
        let mut lua = Vec::new();
        lua.extend(5i64.to_le_bytes());
        lua.extend(2i64.to_le_bytes());
        for f in [0.1 + 0.2, 0.1, 0.2] {
            lua.extend(f64::to_le_bytes(f));
        }
        lua.extend(7i64.to_le_bytes());
        lua.extend(0.2f64.to_le_bytes());
        let b = Bucket::from_bytes(lua.as_slice().try_into().unwrap()).unwrap();
        assert_eq!((b.index, b.aggregate.count), (5, 2));
        assert_eq!(b.aggregate.sum, 0.1 + 0.2);
        assert_eq!((b.aggregate.latest_ms, b.aggregate.latest), (7, 0.2));
    }

    #[test]
    fn rings_unpack_skipping_empty_slots() {
        let b = Bucket {
            index: 9,
            aggregate: Aggregate::of(540_000, 2.0),
        };
        let mut ring = vec![0u8; 3 * BUCKET_BYTES];
        ring[BUCKET_BYTES..2 * BUCKET_BYTES].copy_from_slice(&b.to_bytes());
        assert_eq!(unpack_buckets(&ring), Ok(vec![b]));
        assert_eq!(unpack_buckets(&[]), Ok(vec![]));
        assert!(unpack_buckets(&ring[1..]).is_err());
    }

    #[test]
    fn plan_groups_by_type_and_bucket() {
        let t0 = 1_700_000_000_000 - 1_700_000_000_000 % HOUR_MS;
        let plan = plan(&[
            sample("cpu", t0 + 5, 1.0),
            sample("mem", t0, 7.0),
            sample("cpu", t0 + MINUTE_MS, 3.0),
            sample("cpu", t0 + 5, 2.0),
        ]);
        assert_eq!(plan.len(), 2);
        let cpu = &plan[0];
        assert_eq!(cpu.metric_type, "cpu");
        assert_eq!(
            cpu.samples,
            vec![(t0 + 5, 1.0), (t0 + MINUTE_MS, 3.0), (t0 + 5, 2.0)]
        );
        assert_eq!(cpu.all.count, 3);
        assert_eq!(cpu.all.latest, 3.0);
        assert_eq!(cpu.minutes.len(), 2);
        let first_minute = cpu.minutes[&(t0 / MINUTE_MS)];
        assert_eq!((first_minute.count, first_minute.sum), (2, 3.0));
        // A tie on the newest timestamp goes to the later sample.
        assert_eq!(first_minute.latest, 2.0);
        assert_eq!(cpu.hours.len(), 1);
        assert_eq!(plan[1].metric_type, "mem");
    }

    #[test]
    fn ingest_arguments_follow_the_script_layout() {
        let plan = plan(&[sample("cpu", 120_000, 1.5)]);
        let batches: Vec<&TypeBatch> = plan.iter().collect();
        assert_eq!(
            ingest_keys(&batches),
            vec![
                RECENT_KEY,
                "tally:m:cpu:all",
                "tally:m:cpu:minutes",
                "tally:m:cpu:hours",
                "tally:m:cpu:samples"
            ]
        );
        let retention = Retention {
            samples_per_type: 5_000,
            days: 2,
        };
        let args = ingest_args(&batches, retention);
        let text: Vec<String> = args[..9]
            .iter()
            .map(|a| String::from_utf8(a.clone()).unwrap())
            .collect();
        assert_eq!(
            text,
            [
                "5000",
                "1000",
                "75",
                "26",
                "172800000",
                "cpu",
                "1",
                "120000",
                "1.5"
            ]
        );
        let one = Aggregate::of(120_000, 1.5);
        let packed = |index| Bucket {
            index,
            aggregate: one,
        };
        assert_eq!(args.len(), 12);
        assert_eq!(args[9], packed(0).to_bytes());
        assert_eq!(args[10], packed(2).to_bytes());
        assert_eq!(args[11], packed(0).to_bytes());
    }

    #[test]
    fn summaries_fold_only_the_buckets_in_the_window() {
        let now = 100 * HOUR_MS + 30 * MINUTE_MS;
        let minute = |index: i64, value: f64| Bucket {
            index,
            aggregate: Aggregate::of(index * MINUTE_MS, value),
        };
        let now_minute = now / MINUTE_MS;
        let buckets = vec![
            minute(now_minute - 60, 100.0), // just outside
            minute(now_minute - 59, 1.0),   // first minute inside
            minute(now_minute + 2, 5.0),    // stamped ahead of the clock
            minute(now_minute, 3.0),
        ];
        let s = summarize_buckets("cpu", Period::Hourly, ServedVia::Cache, now, buckets);
        assert_eq!(s.count, 3);
        assert_eq!(s.average_value, Some(3.0));
        assert_eq!((s.min_value, s.max_value), (Some(1.0), Some(5.0)));
        assert_eq!(s.latest_value, Some(5.0));

        let empty = summarize_buckets("cpu", Period::Daily, ServedVia::Cache, now, vec![]);
        assert_eq!((empty.count, empty.average_value), (0, None));
    }

    #[test]
    fn bucketed_summary_matches_the_definition() {
        let now = 1_700_000_000_000i64;
        let samples: Vec<ValidSample> = (0..500)
            .map(|i| {
                sample(
                    "cpu",
                    now - (i * 7_919_993) % (30 * HOUR_MS),
                    (i % 37) as f64 / 8.0,
                )
            })
            .collect();
        let plan = plan(&samples);
        let batch = &plan[0];
        for period in [Period::All, Period::Daily, Period::Hourly] {
            let buckets: Vec<Bucket> = match period {
                Period::All => vec![Bucket {
                    index: 0,
                    aggregate: batch.all,
                }],
                Period::Daily => batch
                    .hours
                    .iter()
                    .map(|(&index, &aggregate)| Bucket { index, aggregate })
                    .collect(),
                Period::Hourly => batch
                    .minutes
                    .iter()
                    .map(|(&index, &aggregate)| Bucket { index, aggregate })
                    .collect(),
            };
            let start = period.window_start_ms(now).unwrap_or(i64::MIN);
            let reference = summarize(
                "cpu",
                period,
                ServedVia::Cache,
                samples
                    .iter()
                    .filter(|s| s.timestamp_ms >= start)
                    .map(|s| (s.timestamp_ms, s.value)),
            );
            let bucketed = summarize_buckets("cpu", period, ServedVia::Cache, now, buckets);
            assert_eq!(bucketed, reference, "{period:?}");
        }
    }

    #[test]
    fn read_reply_gives_the_clock_and_buckets() {
        let bucket = Bucket {
            index: 0,
            aggregate: Aggregate::of(5, 2.0),
        };
        let reply = vec![
            b"1700000000".to_vec(),
            b"123456".to_vec(),
            bucket.to_bytes().to_vec(),
        ];
        let (now, buckets) = parse_read_reply(&reply).unwrap();
        assert_eq!(now, 1_700_000_000_123);
        assert_eq!(buckets, vec![bucket]);
        let unknown = parse_read_reply(&[b"1".to_vec(), b"0".to_vec(), vec![]]);
        assert_eq!(unknown, Ok((1_000, vec![])));
        assert!(parse_read_reply(&reply[..2]).is_err());
        assert!(parse_read_reply(&[b"x".to_vec(), b"0".to_vec(), vec![]]).is_err());
    }

    #[test]
    fn listed_members_parse_and_merge_newest_first() {
        let typed = Listed::parse(b"00000000000000000007:2.5", b"1700000000000", Some("cpu"));
        assert_eq!(
            typed,
            Ok(Listed {
                timestamp_ms: 1_700_000_000_000,
                metric_type: "cpu".into(),
                value: 2.5
            })
        );
        let recent = Listed::parse(b"mem:00000000000000000001:-1e300", b"5", None).unwrap();
        assert_eq!((recent.metric_type.as_str(), recent.value), ("mem", -1e300));
        assert!(Listed::parse(b"nocolon", b"5", None).is_err());

        let at = |t: i64| Listed {
            timestamp_ms: t,
            metric_type: "x".into(),
            value: 0.0,
        };
        let merged = newest(vec![vec![at(9), at(4)], vec![at(7), at(1)]], 3);
        let times: Vec<i64> = merged.iter().map(|l| l.timestamp_ms).collect();
        assert_eq!(times, [9, 7, 4]);
        assert_eq!(at(0).into_sample().timestamp, "1970-01-01T00:00:00.000Z");
    }

    #[test]
    fn samples_per_type_is_bounded() {
        assert_eq!(samples_per_type(None), Ok(DEFAULT_SAMPLES_PER_TYPE));
        assert_eq!(samples_per_type(Some(" ")), Ok(DEFAULT_SAMPLES_PER_TYPE));
        assert_eq!(samples_per_type(Some("2000")), Ok(2_000));
        assert!(samples_per_type(Some("999")).is_err());
        assert!(samples_per_type(Some("lots")).is_err());
        assert_eq!(retention_days(None), Ok(DEFAULT_RETENTION_DAYS));
        assert_eq!(retention_days(Some("1")), Ok(1));
        assert!(retention_days(Some("0")).is_err());
        assert!(retention_days(Some("3651")).is_err());
    }
}
