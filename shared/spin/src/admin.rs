//! What only the deployment's administrator may do, with the secret `admin_key` as
//! `Authorization: Bearer <key>`: export every page's history or every retained metric sample
//! (`GET /export`), and erase a page everywhere (`DELETE /visits/{page}`). Without `admin_key`
//! set, both are refused (403); without a key 401, with another key 403. Both are noted in the
//! request's log line (never the key).
//!
//! An export streams: each shard is read in chunks through `ZSCAN` and `SCAN` cursors and each
//! chunk is written out before the next is asked for, so a node holds one chunk at a time
//! whatever the data's size. A shard that fails midway ends the export with a last line saying
//! which (the status line was sent long before).

use spin_sdk::redis::{Connection, RedisParameter};
use tally_core::api::ProblemKind;
use tally_core::api_keys::{bearer_token, key_hash};
use tally_core::config::{DashboardAccess, ShardConfig};
use tally_core::export::{self, DayRow, Format};
use tally_core::history::{Interval, Range};
use tally_core::metric_store::Listed;
use tally_core::scripts::{ERASE_PAGE, EXPORT_DAY};
use tally_core::validation::{PageId, ValidationError};

use crate::config::{self, non_empty_var};
use crate::http_io::{BodyWriter, Request, Response, Sink};
use crate::request_info::{header, now_ms, query_param};
use crate::respond::{self, Failure};
use crate::shard_io::{self, ShardError};

/// Pages per `ZSCAN` chunk of an export.
const EXPORT_CHUNK: usize = 500;
/// Samples per `ZRANGE` chunk of a metrics export.
const SAMPLES_CHUNK: i64 = 1_000;

/// Whether the request carries the deployment's `admin_key`.
pub fn require_admin(req: &Request) -> Result<(), Failure> {
    let Some(expected) = non_empty_var("admin_key") else {
        return Err(Failure::new(
            ProblemKind::Forbidden,
            "admin actions are disabled: set the admin_key variable",
        ));
    };
    let Some(presented) = header(req, "authorization").and_then(bearer_token) else {
        return Err(Failure::new(
            ProblemKind::Unauthorized,
            "send the deployment's admin key as Authorization: Bearer <key>",
        )
        .with_header("www-authenticate", "Bearer realm=\"tally-admin\""));
    };
    // Compared as hashes: equal-length values, whatever was sent.
    if key_hash(presented) != key_hash(&expected) {
        return Err(Failure::new(
            ProblemKind::Forbidden,
            "that is not the admin key",
        ));
    }
    crate::request_log::note_admin();
    Ok(())
}

/// Whether the request may read the dashboard's data: anyone when `dashboard_access` is
/// `public` (the default), only with the admin key when it is `admin`.
pub fn require_dashboard_access(req: &Request) -> Result<(), Failure> {
    let raw = config::var("dashboard_access").ok();
    match DashboardAccess::parse(raw.as_deref()).map_err(Failure::misconfigured)? {
        DashboardAccess::Public => Ok(()),
        DashboardAccess::Admin => require_admin(req),
    }
}

/// `GET /export?format=csv|ndjson&from=&to=[&what=visits|metrics]`.
pub fn export(req: &Request) -> Result<Response, Failure> {
    require_admin(req)?;
    let format = Format::parse(query_param(req, "format").as_deref())?;
    // In migration mode, shards being removed are exported too (what they hold has not all
    // moved yet); a page whose data is split between its old and new shard has a line from each.
    let shards = crate::migration::readable_shards()?;
    let (header_line, writer): (Vec<u8>, BodyWriter) = match query_param(req, "what").as_deref() {
        None | Some("visits") => {
            let range = Range::parse(
                query_param(req, "from").as_deref(),
                query_param(req, "to").as_deref(),
                Interval::Day,
                now_ms() as i64,
                config::history_days()?,
            )?;
            (
                export::visits_header(format),
                Box::new(move |sink: &mut Sink<'_>| export_visits(sink, &shards, &range, format)),
            )
        }
        // A range selects days of visits; a metrics export has every sample kept, so a
        // range there would be silently ignored: refused instead.
        Some("metrics")
            if ["from", "to"]
                .iter()
                .any(|p| query_param(req, p).is_some_and(|v| !v.is_empty())) =>
        {
            return Err(ValidationError::ExportInvalid.into())
        }
        Some("metrics") => (
            export::metrics_header(format),
            Box::new(move |sink: &mut Sink<'_>| export_metrics(sink, &shards, format)),
        ),
        Some(_) => return Err(ValidationError::ExportInvalid.into()),
    };
    let name = format!("tally-export.{}", format.extension());
    Ok(Response::streamed(
        200,
        Box::new(move |sink: &mut Sink<'_>| {
            if sink.write(&header_line) {
                writer(sink);
            }
        }),
    )
    .with_header("content-type", format.content_type())
    .with_header(
        "content-disposition",
        format!("attachment; filename=\"{name}\""),
    )
    .with_header("cache-control", "no-store"))
}

/// Every page's visits and uniques per day of `range`, shard by shard, day by day, chunk by
/// chunk.
fn export_visits(sink: &mut Sink<'_>, shards: &[ShardConfig], range: &Range, format: Format) {
    for shard in shards {
        let done = shard_io::call(shard, |conn| {
            for day in range.steps() {
                let date = range.label(day);
                let mut cursor = b"0".to_vec();
                loop {
                    let args = vec![
                        day.to_string().into_bytes(),
                        cursor.clone(),
                        EXPORT_CHUNK.to_string().into_bytes(),
                    ];
                    let reply = shard_io::eval_binaries(conn, &EXPORT_DAY, &[], args)?;
                    let (next, rows) = reply.split_first().ok_or_else(odd)?;
                    if rows.len() % 3 != 0 {
                        return Err(odd());
                    }
                    for row in rows.chunks(3) {
                        let line = export::line(
                            format,
                            &DayRow {
                                date: date.clone(),
                                page: String::from_utf8_lossy(&row[0]).into_owned(),
                                visits: number(&row[1]),
                                uniques: number(&row[2]),
                            },
                        );
                        if !sink.write(&line) {
                            return Ok(false);
                        }
                    }
                    if next.as_slice() == b"0" {
                        break;
                    }
                    cursor = next.clone();
                }
            }
            Ok(true)
        });
        if !finish_shard(sink, shard, done) {
            return;
        }
    }
}

/// Every retained metric sample, shard by shard, type by type, chunk by chunk.
fn export_metrics(sink: &mut Sink<'_>, shards: &[ShardConfig], format: Format) {
    for shard in shards {
        let done = shard_io::call(shard, |conn| {
            let mut cursor = b"0".to_vec();
            loop {
                let args = [
                    RedisParameter::Binary(cursor.clone()),
                    RedisParameter::Binary(b"MATCH".to_vec()),
                    RedisParameter::Binary(b"tally:m:*:samples".to_vec()),
                    RedisParameter::Binary(b"COUNT".to_vec()),
                    RedisParameter::Int64(100),
                ];
                let reply = binaries(conn, "SCAN", &args)?;
                let (next, keys) = reply.split_first().ok_or_else(odd)?;
                for key in keys {
                    if !export_type(sink, conn, key, format)? {
                        return Ok(false);
                    }
                }
                if next.as_slice() == b"0" {
                    return Ok(true);
                }
                cursor = next.clone();
            }
        });
        if !finish_shard(sink, shard, done) {
            return;
        }
    }
}

/// One type's retained samples, oldest first.
fn export_type(
    sink: &mut Sink<'_>,
    conn: &Connection,
    key: &[u8],
    format: Format,
) -> Result<bool, ShardError> {
    let key_text = String::from_utf8_lossy(key);
    let Some(metric_type) = key_text
        .strip_prefix("tally:m:")
        .and_then(|k| k.strip_suffix(":samples"))
    else {
        return Ok(true);
    };
    let mut start = 0i64;
    loop {
        let args = [
            RedisParameter::Binary(key.to_vec()),
            RedisParameter::Int64(start),
            RedisParameter::Int64(start + SAMPLES_CHUNK - 1),
            RedisParameter::Binary(b"WITHSCORES".to_vec()),
        ];
        let pairs = shard_io::pairs(conn, "ZRANGE", &args)?;
        for (member, score) in &pairs {
            let sample = Listed::parse(member, score, Some(metric_type))
                .map_err(|err| ShardError::Protocol(err.0))?
                .into_sample();
            if !sink.write(&export::metric_line(format, &sample)) {
                return Ok(false);
            }
        }
        if (pairs.len() as i64) < SAMPLES_CHUNK {
            return Ok(true);
        }
        start += SAMPLES_CHUNK;
    }
}

/// Whether the export goes on after a shard: a failed shard ends it with a line saying so.
fn finish_shard(sink: &mut Sink<'_>, shard: &ShardConfig, done: Result<bool, ShardError>) -> bool {
    match done {
        Ok(going_on) => going_on,
        Err(err) => {
            eprintln!(
                "{}",
                serde_json::json!({"level":"warn","msg":"export stopped","shard":shard.name,"error":format!("{err:?}")})
            );
            let _ = sink.write(
                format!(
                    "# export incomplete: shard {} could not be read\n",
                    shard.name
                )
                .as_bytes(),
            );
            false
        }
    }
}

/// `DELETE /visits/{page}`: the page erased on its shard, and what was removed.
pub fn erase(req: &Request, page: &PageId) -> Result<Response, Failure> {
    require_admin(req)?;
    let history_days = config::history_days()?;
    // In migration mode, what has not moved yet is handed over first, so it is erased too.
    crate::migration::hand_over_page(page.as_str(), || {
        let today = tally_core::history::day_of(now_ms() as i64);
        let first = today - i64::from(history_days) - 1;
        tally_core::reshard::page_units(page.as_str(), first..=today + 1)
    })?;
    let placement = config::placement()?;
    let shard = placement.shard_for(page.as_str().as_bytes());
    let args = vec![
        page.as_str().as_bytes().to_vec(),
        history_days.to_string().into_bytes(),
    ];
    let reply = shard_io::call(shard, |conn| {
        shard_io::eval_ints(conn, &ERASE_PAGE, &[], args)
    })
    .map_err(|err| err.into_failure(&shard.name))?;
    crate::node_cache::forget_page(page);
    let [visits, days, keys] = reply.as_slice() else {
        return Err(
            ShardError::Protocol("erase_page: wrong reply".into()).into_failure(&shard.name)
        );
    };
    eprintln!(
        "{}",
        serde_json::json!({"level":"info","msg":"page erased","shard":shard.name,"days":days})
    );
    Ok(respond::json(
        200,
        &serde_json::json!({
            "status": "erased",
            "page": page.as_str(),
            "visits_removed": visits,
            "days_removed": days,
            "keys_deleted": keys,
        }),
    ))
}

fn number(text: &[u8]) -> u64 {
    tally_core::visit_store::count_of(text).unwrap_or(0)
}

fn odd() -> ShardError {
    ShardError::Protocol("an export chunk of the wrong shape".into())
}

/// A plain command's reply as binary values (`SCAN`'s cursor and keys, flattened).
fn binaries(
    conn: &Connection,
    command: &str,
    args: &[RedisParameter],
) -> Result<Vec<Vec<u8>>, ShardError> {
    shard_io::binaries_or_nil(conn, command, args)?
        .into_iter()
        .map(|v| v.ok_or_else(odd))
        .collect()
}
