//! How metric samples are stored on a shard, so that a summary costs the same three Redis
//! commands whether a type holds ten samples or ten million.
//!
//! Everything about a type lives on the shard its name hashes to:
//!
//! - `tally:m:<type>`, a hash of pre-aggregated [`Bucket`]s: `all` (every sample ever
//!   ingested), `m<slot>` (one minute each, a ring of [`MINUTE_RING`] slots) and `h<slot>`
//!   (one hour each, a ring of [`HOUR_RING`] slots). Ingest folds each request's samples into
//!   them atomically (`ingest_metrics.lua`); a summary reads `all`, or the ring the period uses
//!   plus the server's clock (`read_metric.lua`), and folds the buckets inside the window.
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

/// The hash of a type's buckets.
pub fn aggregates_key(metric_type: &str) -> String {
    format!("tally:m:{metric_type}")
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
    /// The stored text, `index count sum min max latest_ms latest`; floats in Rust's
    /// shortest round-trip form, which Lua's `tonumber` reads exactly.
    pub fn encode(&self) -> String {
        let a = &self.aggregate;
        format!(
            "{} {} {:?} {:?} {:?} {} {:?}",
            self.index, a.count, a.sum, a.min, a.max, a.latest_ms, a.latest
        )
    }

    /// Reads the stored text (as [`Bucket::encode`] or the ingest script writes it).
    pub fn decode(text: &str) -> Result<Self, StoreError> {
        let bad = || StoreError(format!("unreadable metric bucket {text:?}"));
        let fields: Vec<&str> = text.split(' ').collect();
        let [index, count, sum, min, max, latest_ms, latest] = fields[..] else {
            return Err(bad());
        };
        let float = |t: &str| t.parse::<f64>().map_err(|_| bad());
        let int = |t: &str| t.parse::<i64>().map_err(|_| bad());
        Ok(Bucket {
            index: int(index)?,
            aggregate: Aggregate {
                count: count.parse().map_err(|_| bad())?,
                sum: float(sum)?,
                min: float(min)?,
                max: float(max)?,
                latest_ms: int(latest_ms)?,
                latest: float(latest)?,
            },
        })
    }
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
        keys.push(aggregates_key(&b.metric_type));
        keys.push(samples_key(&b.metric_type));
    }
    keys
}

/// `ARGV` of `ingest_metrics.lua` for the batches going to one shard.
pub fn ingest_args(batches: &[&TypeBatch], retention: Retention) -> Vec<Vec<u8>> {
    let mut args: Vec<String> = vec![
        retention.samples_per_type.to_string(),
        RECENT_KEEP.to_string(),
        MINUTE_RING.to_string(),
        HOUR_RING.to_string(),
        (retention.days * 86_400_000).to_string(),
    ];
    for b in batches {
        args.push(b.metric_type.clone());
        args.push(b.samples.len().to_string());
        for (timestamp_ms, value) in &b.samples {
            args.push(timestamp_ms.to_string());
            args.push(format!("{value:?}"));
        }
        args.push(
            Bucket {
                index: 0,
                aggregate: b.all,
            }
            .encode(),
        );
        for ring in [&b.minutes, &b.hours] {
            args.push(ring.len().to_string());
            args.extend(
                ring.iter()
                    .map(|(&index, &aggregate)| Bucket { index, aggregate }.encode()),
            );
        }
    }
    args.into_iter().map(String::into_bytes).collect()
}

/// The hash fields a summary of `period` reads (`ARGV` of `read_metric.lua`).
pub fn summary_fields(period: Period) -> Vec<String> {
    match period {
        Period::All => vec!["all".to_owned()],
        Period::Hourly => (0..MINUTE_RING).map(|slot| format!("m{slot}")).collect(),
        Period::Daily => (0..HOUR_RING).map(|slot| format!("h{slot}")).collect(),
    }
}

/// The reply of `read_metric.lua`: the server's clock in Unix ms, and the buckets found.
pub fn parse_read_reply(reply: &[Vec<u8>]) -> Result<(i64, Vec<Bucket>), StoreError> {
    let text = |bytes: &Vec<u8>| {
        std::str::from_utf8(bytes)
            .map(str::to_owned)
            .map_err(|_| StoreError("read_metric returned non-UTF-8".into()))
    };
    let [seconds, micros, buckets @ ..] = reply else {
        return Err(StoreError(format!(
            "read_metric returned {} values",
            reply.len()
        )));
    };
    let clock = |bytes: &Vec<u8>| {
        text(bytes)?
            .parse::<i64>()
            .map_err(|_| StoreError("read_metric returned a bad clock".into()))
    };
    let now_ms = clock(seconds)? * 1_000 + clock(micros)? / 1_000;
    let buckets = buckets
        .iter()
        .map(|b| Bucket::decode(&text(b)?))
        .collect::<Result<_, _>>()?;
    Ok((now_ms, buckets))
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
                index: 28_000_000,
                aggregate: Aggregate::of(1_700_000_000_123, value),
            };
            assert_eq!(Bucket::decode(&b.encode()), Ok(b));
        }
        // As the script writes a merged sum (%.17g).
        let b = Bucket::decode("5 2 0.30000000000000004 0.1 0.2 7 0.2").unwrap();
        assert_eq!(b.aggregate.sum, 0.1 + 0.2);
        assert!(Bucket::decode("5 2 x 0.1 0.2 7 0.2").is_err());
        assert!(Bucket::decode("5 2 0.3 0.1 0.2 7").is_err());
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
            vec![RECENT_KEY, "tally:m:cpu", "tally:m:cpu:samples"]
        );
        let retention = Retention {
            samples_per_type: 5_000,
            days: 2,
        };
        let args: Vec<String> = ingest_args(&batches, retention)
            .into_iter()
            .map(|a| String::from_utf8(a).unwrap())
            .collect();
        assert_eq!(
            args,
            [
                "5000",
                "1000",
                "75",
                "26",
                "172800000",
                "cpu",
                "1",
                "120000",
                "1.5",
                "0 1 1.5 1.5 1.5 120000 1.5",
                "1",
                "2 1 1.5 1.5 1.5 120000 1.5",
                "1",
                "0 1 1.5 1.5 1.5 120000 1.5",
            ]
        );
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
        let reply = vec![
            b"1700000000".to_vec(),
            b"123456".to_vec(),
            b"0 1 2.0 2.0 2.0 5 2.0".to_vec(),
        ];
        let (now, buckets) = parse_read_reply(&reply).unwrap();
        assert_eq!(now, 1_700_000_000_123);
        assert_eq!(buckets.len(), 1);
        assert!(parse_read_reply(&reply[..1]).is_err());
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
