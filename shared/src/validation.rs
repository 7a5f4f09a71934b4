//! What input Tally accepts, decided in one place with one error type.
//!
//! Every component validates the same things (page ids, metric samples, batch and body sizes,
//! query parameters); doing it here keeps the rules identical everywhere and testable natively.
//! [`ValidationError`] carries a stable machine code ([`ValidationError::code`]) and a human
//! message; the API layer turns it into an RFC 9457 problem in one place.
//!
//! # Page ids: the one normal form
//!
//! A page id arrives percent-encoded in a path (`/visit/blog%2Fpost`), as a JSON string in a
//! batch, or as the path the tracker read from `location.pathname` (`/blog/post/`). Every route
//! puts it through [`page_id`], so one page has one id however it was sent:
//!
//! 1. Anything from the first `?` or `#` of the input as sent is dropped: query strings and
//!    fragments do not make another page (`/a?utm_source=x` is `a`). An encoded `%3F` or `%23`
//!    is part of the id.
//! 2. Percent-decoding, once (`%2F` becomes `/`; `+` stays `+`). A `%` not followed by two hex
//!    digits is refused, and the decoded bytes must be UTF-8.
//! 3. **Normal form**: the id is the path's non-empty segments joined by `/`: no leading or
//!    trailing slash and no empty segment (`/blog//a/` is `blog/a`); a last segment
//!    `index.html` or `index.htm` is dropped (`/blog/index.html` is `blog`); what is left of
//!    a path of nothing but slashes (or `index.html`) is the site's root, whose id is `/`. Case,
//!    dots and every other character are kept.
//! 4. Checks: the input is not empty, the id is 1 to 256 bytes with no control character
//!    (Unicode `Cc`).
//!
//! Ids recorded before this rule (when one leading slash was dropped and nothing else, so
//! `/visit/%2Fhome` recorded `/home` and `a/` recorded `a/`) keep their counts under the old
//! id; only ids with a leading or trailing slash other than `/`, or an empty segment, are
//! affected, and no route writes such an id any more.

use std::borrow::Cow;
use std::fmt;

use crate::rfc3339;

/// Longest page id, in bytes after decoding and normalization.
pub const MAX_PAGE_ID_BYTES: usize = 256;
/// Most visits in one batch request.
pub const MAX_BATCH_VISITS: usize = 1_000;
/// Largest request body accepted by `POST /visit`, in bytes (64 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Largest request body accepted by `POST /metrics`, in bytes (256 KiB: room for 1,000
/// samples with long type names).
pub const MAX_METRICS_BODY_BYTES: usize = 256 * 1024;
/// The largest body any endpoint accepts: a component reads no more of a request than this
/// (plus one byte, to tell "too large").
pub const MAX_REQUEST_BODY_BYTES: usize = if MAX_BODY_BYTES > MAX_METRICS_BODY_BYTES {
    MAX_BODY_BYTES
} else {
    MAX_METRICS_BODY_BYTES
};
/// Most samples in one `POST /metrics` array.
pub const MAX_BATCH_SAMPLES: usize = 1_000;
/// Largest `count` of one batch entry.
pub const MAX_COUNT_PER_VISIT: u64 = 1_000;
/// Longest metric type name.
pub const MAX_METRIC_TYPE_BYTES: usize = 64;
/// How far in the future a metric timestamp may be, in milliseconds (5 minutes).
pub const MAX_FUTURE_SKEW_MS: i64 = 5 * 60 * 1_000;
/// Metrics listed when `limit` is absent.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// Largest `limit` for listing metrics.
pub const MAX_LIST_LIMIT: usize = 1_000;
/// Longest `Idempotency-Key` accepted.
pub const MAX_IDEMPOTENCY_KEY_BYTES: usize = 128;
/// Most pages `GET /visits?top=N` returns.
pub const MAX_TOP_PAGES: usize = 100;
/// Longest badge label, in characters.
pub const MAX_BADGE_LABEL_CHARS: usize = 64;

/// Everything that can be wrong with input.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ValidationError {
    /// The page id is empty after decoding.
    PageIdEmpty,
    /// The page id is longer than [`MAX_PAGE_ID_BYTES`].
    PageIdTooLong,
    /// The page id has a `%` not followed by two hex digits.
    PageIdBadEncoding,
    /// The decoded page id is not UTF-8.
    PageIdNotUtf8,
    /// The page id contains a control character.
    PageIdControlChar,
    /// The metric value is NaN or infinite.
    MetricValueNotFinite,
    /// The metric type is not `[a-z0-9_.-]{1,64}`.
    MetricTypeInvalid,
    /// The metric timestamp is not RFC 3339.
    MetricTimestampInvalid,
    /// The metric timestamp is more than 5 minutes ahead of the server's clock.
    MetricTimestampInFuture,
    /// A batch without visits.
    BatchEmpty,
    /// A batch with more than [`MAX_BATCH_VISITS`] visits.
    BatchTooLarge,
    /// A batch entry's count is 0 or above [`MAX_COUNT_PER_VISIT`].
    VisitCountInvalid,
    /// A body larger than [`MAX_BODY_BYTES`].
    BodyTooLarge,
    /// The `limit` query parameter is not 1 to [`MAX_LIST_LIMIT`].
    LimitInvalid,
    /// The `period` query parameter is not `all`, `daily` or `hourly`.
    PeriodInvalid,
    /// The `Idempotency-Key` header is not 1 to 128 visible ASCII characters.
    IdempotencyKeyInvalid,
    /// The `top` query parameter is not 1 to [`MAX_TOP_PAGES`].
    TopInvalid,
    /// A badge `label` or `color` parameter is not acceptable.
    BadgeParamInvalid,
    /// A `POST /visit` body with both or neither of `visits` and `page`.
    VisitBodyShape,
    /// A page view's `referrer` is not a host name.
    ReferrerInvalid,
    /// A history range (`from`, `to`, `interval`) is malformed, backwards, in the future or
    /// longer than the history kept.
    RangeInvalid,
    /// A paging `cursor` is not one this API gave out.
    CursorInvalid,
    /// A batch entry's `at` is not RFC 3339, is in the future, or is older than the history
    /// kept.
    VisitTimeInvalid,
    /// An export's `format` or `what` is not one Tally writes.
    ExportInvalid,
}

impl ValidationError {
    /// Every variant, for exhaustive tests and documentation.
    pub const ALL: [ValidationError; 24] = [
        ValidationError::PageIdEmpty,
        ValidationError::PageIdTooLong,
        ValidationError::PageIdBadEncoding,
        ValidationError::PageIdNotUtf8,
        ValidationError::PageIdControlChar,
        ValidationError::MetricValueNotFinite,
        ValidationError::MetricTypeInvalid,
        ValidationError::MetricTimestampInvalid,
        ValidationError::MetricTimestampInFuture,
        ValidationError::BatchEmpty,
        ValidationError::BatchTooLarge,
        ValidationError::VisitCountInvalid,
        ValidationError::BodyTooLarge,
        ValidationError::LimitInvalid,
        ValidationError::PeriodInvalid,
        ValidationError::IdempotencyKeyInvalid,
        ValidationError::TopInvalid,
        ValidationError::BadgeParamInvalid,
        ValidationError::VisitBodyShape,
        ValidationError::ReferrerInvalid,
        ValidationError::RangeInvalid,
        ValidationError::CursorInvalid,
        ValidationError::VisitTimeInvalid,
        ValidationError::ExportInvalid,
    ];

    /// A stable machine-readable code; clients may match on it, so never change one.
    pub fn code(self) -> &'static str {
        match self {
            ValidationError::PageIdEmpty => "page_id_empty",
            ValidationError::PageIdTooLong => "page_id_too_long",
            ValidationError::PageIdBadEncoding => "page_id_bad_encoding",
            ValidationError::PageIdNotUtf8 => "page_id_not_utf8",
            ValidationError::PageIdControlChar => "page_id_control_char",
            ValidationError::MetricValueNotFinite => "metric_value_not_finite",
            ValidationError::MetricTypeInvalid => "metric_type_invalid",
            ValidationError::MetricTimestampInvalid => "metric_timestamp_invalid",
            ValidationError::MetricTimestampInFuture => "metric_timestamp_in_future",
            ValidationError::BatchEmpty => "batch_empty",
            ValidationError::BatchTooLarge => "batch_too_large",
            ValidationError::VisitCountInvalid => "visit_count_invalid",
            ValidationError::BodyTooLarge => "body_too_large",
            ValidationError::LimitInvalid => "limit_invalid",
            ValidationError::PeriodInvalid => "period_invalid",
            ValidationError::IdempotencyKeyInvalid => "idempotency_key_invalid",
            ValidationError::TopInvalid => "top_invalid",
            ValidationError::BadgeParamInvalid => "badge_param_invalid",
            ValidationError::VisitBodyShape => "visit_body_shape",
            ValidationError::ReferrerInvalid => "referrer_invalid",
            ValidationError::RangeInvalid => "range_invalid",
            ValidationError::CursorInvalid => "cursor_invalid",
            ValidationError::VisitTimeInvalid => "visit_time_invalid",
            ValidationError::ExportInvalid => "export_invalid",
        }
    }

    /// A message for people; it never echoes the input.
    pub fn message(self) -> &'static str {
        match self {
            ValidationError::PageIdEmpty => "The page id is empty.",
            ValidationError::PageIdTooLong => "The page id is longer than 256 bytes.",
            ValidationError::PageIdBadEncoding => {
                "The page id has a '%' that is not followed by two hexadecimal digits."
            }
            ValidationError::PageIdNotUtf8 => "The page id does not decode to UTF-8 text.",
            ValidationError::PageIdControlChar => "The page id contains a control character.",
            ValidationError::MetricValueNotFinite => "The metric value must be a finite number.",
            ValidationError::MetricTypeInvalid => {
                "The metric type must be 1 to 64 characters of a-z, 0-9, '_', '.' or '-'."
            }
            ValidationError::MetricTimestampInvalid => {
                "The timestamp must be an RFC 3339 date-time such as 2024-05-01T12:00:00Z."
            }
            ValidationError::MetricTimestampInFuture => {
                "The timestamp is more than 5 minutes in the future."
            }
            ValidationError::BatchEmpty => "The batch is empty.",
            ValidationError::BatchTooLarge => "A batch may carry at most 1000 entries.",
            ValidationError::VisitCountInvalid => "A visit count must be between 1 and 1000.",
            ValidationError::BodyTooLarge => "The request body is larger than this endpoint accepts (64 KiB for /visit, 256 KiB for /metrics).",
            ValidationError::LimitInvalid => "The limit must be a whole number from 1 to 1000.",
            ValidationError::PeriodInvalid => "The period must be all, daily or hourly.",
            ValidationError::IdempotencyKeyInvalid => {
                "The Idempotency-Key header must be 1 to 128 visible ASCII characters."
            }
            ValidationError::TopInvalid => "top must be a whole number from 1 to 100.",
            ValidationError::BadgeParamInvalid => {
                "A badge label must be 1 to 64 characters without control characters; a color \
                 a name of 1 to 20 letters or a 3- or 6-digit hex code."
            }
            ValidationError::VisitBodyShape => {
                "Send either a batch {\"visits\":[...]} or one page view {\"page\":\"/path\"}."
            }
            ValidationError::ReferrerInvalid => {
                "The referrer must be a host name such as news.example.com, or empty."
            }
            ValidationError::RangeInvalid => {
                "from and to must be dates (2026-11-01) or RFC 3339 times, from not after to, \
                 nothing in the future, at most history_days days (interval=day) or 48 hours \
                 (interval=hour); interval is day or hour."
            }
            ValidationError::CursorInvalid => {
                "The cursor must be one given by a previous page of this list."
            }
            ValidationError::VisitTimeInvalid => {
                "A visit's at must be an RFC 3339 time, not in the future and within the \
                 history kept (history_days)."
            }
            ValidationError::ExportInvalid => {
                "format must be csv or ndjson, what must be visits or metrics, and from and to \
                 select days of visits only (a metrics export has every sample kept)."
            }
        }
    }
}

impl fmt::Display for ValidationError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for ValidationError {}

/// A validated, normalized page id (see the module docs for the rule).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PageId(String);

impl PageId {
    /// The normalized id.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The normalized id, owned.
    pub fn into_string(self) -> String {
        self.0
    }
}

impl fmt::Display for PageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The file names that stand for their directory as a page's last segment.
const INDEX_FILES: [&str; 2] = ["index.html", "index.htm"];

/// The id of a site's root page.
pub const ROOT_PAGE: &str = "/";

/// Decodes, normalizes and checks a page id (see the module docs for the normal form).
pub fn page_id(raw: &str) -> Result<PageId, ValidationError> {
    // Each decoded byte takes at most 3 input bytes; slashes around it are dropped.
    if raw.len() > 3 * MAX_PAGE_ID_BYTES + 64 {
        return Err(ValidationError::PageIdTooLong);
    }
    let path = raw.split(['?', '#']).next().unwrap_or_default();
    if path.is_empty() {
        return Err(ValidationError::PageIdEmpty);
    }
    let decoded = percent_decode(path)?;
    let mut segments: Vec<&str> = decoded.split('/').filter(|s| !s.is_empty()).collect();
    if segments
        .last()
        .is_some_and(|last| INDEX_FILES.contains(last))
    {
        segments.pop();
    }
    let id = if segments.is_empty() {
        ROOT_PAGE.to_owned()
    } else {
        segments.join("/")
    };
    if id.len() > MAX_PAGE_ID_BYTES {
        return Err(ValidationError::PageIdTooLong);
    }
    if id.chars().any(char::is_control) {
        return Err(ValidationError::PageIdControlChar);
    }
    Ok(PageId(id))
}

/// Percent-decodes strictly: every `%` must start an escape of two hex digits (the
/// `percent-encoding` crate passes a malformed escape through as is), and the result must be
/// UTF-8.
fn percent_decode(raw: &str) -> Result<Cow<'_, str>, ValidationError> {
    let bytes = raw.as_bytes();
    let malformed = bytes.iter().enumerate().any(|(i, &b)| {
        b == b'%'
            && !bytes
                .get(i + 1..i + 3)
                .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if malformed {
        return Err(ValidationError::PageIdBadEncoding);
    }
    percent_encoding::percent_decode(bytes)
        .decode_utf8()
        .map_err(|_| ValidationError::PageIdNotUtf8)
}

/// The start of the hour (Unix seconds) of a batch entry's `at`: RFC 3339, at most
/// [`MAX_FUTURE_SKEW_MS`] ahead of `now_ms`, and within the last `history_days` days.
pub fn visit_hour(raw: &str, now_ms: i64, history_days: u32) -> Result<i64, ValidationError> {
    let at_ms = rfc3339::parse_unix_ms(raw).map_err(|_| ValidationError::VisitTimeInvalid)?;
    let oldest_ms = now_ms - i64::from(history_days) * 86_400_000;
    if at_ms > now_ms + MAX_FUTURE_SKEW_MS || at_ms < oldest_ms {
        return Err(ValidationError::VisitTimeInvalid);
    }
    Ok(at_ms.div_euclid(3_600_000) * 3_600)
}

/// The largest page-view body accepted (a page view is a path and a host name).
pub const MAX_PAGE_VIEW_BYTES: usize = 4 * 1024;

/// A page view's referrer, checked: the host of the page the visitor came from (lower-case),
/// or `None` when there is none. A full URL is refused: the tracker sends only the host.
pub fn referrer_host(raw: Option<&str>) -> Result<Option<String>, ValidationError> {
    match raw.map(str::trim).filter(|r| !r.is_empty()) {
        None => Ok(None),
        Some(host) if crate::allowed_sites::is_host_name(host) => {
            Ok(Some(host.to_ascii_lowercase()))
        }
        Some(_) => Err(ValidationError::ReferrerInvalid),
    }
}

/// A metric sample that passed validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidSample {
    /// When the sample was taken, in Unix milliseconds.
    pub timestamp_ms: i64,
    /// The measured value (finite).
    pub value: f64,
    /// The metric type, `[a-z0-9_.-]{1,64}`.
    pub metric_type: String,
}

/// Checks a metric type name: `[a-z0-9_.-]{1,64}`.
pub fn metric_type(name: &str) -> Result<&str, ValidationError> {
    let allowed = |c: u8| matches!(c, b'a'..=b'z' | b'0'..=b'9' | b'_' | b'.' | b'-');
    if name.is_empty() || name.len() > MAX_METRIC_TYPE_BYTES || !name.bytes().all(allowed) {
        return Err(ValidationError::MetricTypeInvalid);
    }
    Ok(name)
}

/// Checks a metric sample against the clock reading `now_ms` (Unix ms, from the caller).
pub fn metric_sample(
    timestamp: &str,
    value: f64,
    metric_type_name: &str,
    now_ms: i64,
) -> Result<ValidSample, ValidationError> {
    if !value.is_finite() {
        return Err(ValidationError::MetricValueNotFinite);
    }
    let metric_type = metric_type(metric_type_name)?;
    let timestamp_ms =
        rfc3339::parse_unix_ms(timestamp).map_err(|_| ValidationError::MetricTimestampInvalid)?;
    if timestamp_ms.saturating_sub(now_ms) > MAX_FUTURE_SKEW_MS {
        return Err(ValidationError::MetricTimestampInFuture);
    }
    Ok(ValidSample {
        timestamp_ms,
        value,
        metric_type: metric_type.to_owned(),
    })
}

/// Checks the number of entries in a batch against the endpoint's `limit`
/// ([`MAX_BATCH_VISITS`] or [`MAX_BATCH_SAMPLES`]): 1 to `limit`.
pub fn batch_len(entries: usize, limit: usize) -> Result<(), ValidationError> {
    match entries {
        0 => Err(ValidationError::BatchEmpty),
        n if n > limit => Err(ValidationError::BatchTooLarge),
        _ => Ok(()),
    }
}

/// Checks one batch entry's count: 1 to [`MAX_COUNT_PER_VISIT`].
pub fn visit_count(count: u64) -> Result<u64, ValidationError> {
    if (1..=MAX_COUNT_PER_VISIT).contains(&count) {
        Ok(count)
    } else {
        Err(ValidationError::VisitCountInvalid)
    }
}

/// Checks a body's size in bytes against the endpoint's `limit` (call it before parsing).
pub fn body_size(bytes: usize, limit: usize) -> Result<(), ValidationError> {
    if bytes > limit {
        Err(ValidationError::BodyTooLarge)
    } else {
        Ok(())
    }
}

/// Reads the `limit` query parameter: absent means [`DEFAULT_LIST_LIMIT`].
pub fn list_limit(raw: Option<&str>) -> Result<usize, ValidationError> {
    match raw {
        None => Ok(DEFAULT_LIST_LIMIT),
        Some(text) => match text.parse::<usize>() {
            Ok(n) if (1..=MAX_LIST_LIMIT).contains(&n) => Ok(n),
            _ => Err(ValidationError::LimitInvalid),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_page_id_is_kept() {
        assert_eq!(page_id("home").unwrap().as_str(), "home");
    }

    #[test]
    fn page_id_is_percent_decoded_once() {
        assert_eq!(
            page_id("blog%2Fpost%20one").unwrap().as_str(),
            "blog/post one"
        );
        assert_eq!(page_id("a%252F").unwrap().as_str(), "a%2F");
        assert_eq!(page_id("caf%C3%A9").unwrap().as_str(), "café");
        assert_eq!(page_id("a+b").unwrap().as_str(), "a+b");
    }

    #[test]
    fn slashes_around_and_between_segments_are_not_part_of_the_id() {
        for raw in ["a", "/a", "a/", "/a/", "//a//", "%2Fa", "/%2Fa", "%2Fa%2F"] {
            assert_eq!(page_id(raw).unwrap().as_str(), "a", "{raw}");
        }
        assert_eq!(page_id("/blog//a/").unwrap().as_str(), "blog/a");
        assert_eq!(page_id("blog%2Fa").unwrap(), page_id("/blog/a").unwrap());
    }

    #[test]
    fn the_root_is_slash_however_it_is_written() {
        for raw in [
            "/",
            "//",
            "%2F",
            "/index.html",
            "index.htm",
            "/?q=1",
            "/#top",
        ] {
            assert_eq!(page_id(raw).unwrap().as_str(), ROOT_PAGE, "{raw}");
        }
    }

    #[test]
    fn an_index_file_is_its_directory() {
        assert_eq!(page_id("/blog/index.html").unwrap().as_str(), "blog");
        assert_eq!(page_id("/blog/index.htm").unwrap().as_str(), "blog");
        assert_eq!(
            page_id("/blog/index.php").unwrap().as_str(),
            "blog/index.php"
        );
        assert_eq!(page_id("/index.html/a").unwrap().as_str(), "index.html/a");
    }

    #[test]
    fn query_strings_and_fragments_do_not_make_another_page() {
        assert_eq!(page_id("/a?utm_source=x").unwrap().as_str(), "a");
        assert_eq!(page_id("/a#section").unwrap().as_str(), "a");
        assert_eq!(page_id("/a/?x#y").unwrap().as_str(), "a");
        assert_eq!(
            page_id("a%3Fb").unwrap().as_str(),
            "a?b",
            "an encoded ? is kept"
        );
        assert_eq!(page_id("?x"), Err(ValidationError::PageIdEmpty));
        assert_eq!(page_id("#x"), Err(ValidationError::PageIdEmpty));
    }

    #[test]
    fn case_is_significant() {
        assert_ne!(page_id("Home").unwrap(), page_id("home").unwrap());
    }

    #[test]
    fn empty_page_id_is_refused() {
        assert_eq!(page_id(""), Err(ValidationError::PageIdEmpty));
    }

    #[test]
    fn page_id_length_is_counted_after_decoding() {
        let exactly = "a".repeat(256);
        assert!(page_id(&exactly).is_ok());
        assert!(page_id(&format!("/{exactly}")).is_ok());
        assert_eq!(
            page_id(&"a".repeat(257)),
            Err(ValidationError::PageIdTooLong)
        );
        assert!(page_id(&"%41".repeat(256)).is_ok());
        assert_eq!(
            page_id(&"%41".repeat(257)),
            Err(ValidationError::PageIdTooLong)
        );
        assert_eq!(
            page_id(&"é".repeat(129)),
            Err(ValidationError::PageIdTooLong)
        );
    }

    #[test]
    fn bad_percent_encoding_is_refused() {
        for raw in ["%", "a%2", "%zz", "%2g", "%%41"] {
            assert_eq!(
                page_id(raw),
                Err(ValidationError::PageIdBadEncoding),
                "{raw}"
            );
        }
    }

    #[test]
    fn non_utf8_page_id_is_refused() {
        assert_eq!(page_id("%FF"), Err(ValidationError::PageIdNotUtf8));
    }

    #[test]
    fn control_characters_are_refused() {
        for raw in ["a%00", "a%0A", "a\tb", "%7F", "%C2%85"] {
            assert_eq!(
                page_id(raw),
                Err(ValidationError::PageIdControlChar),
                "{raw}"
            );
        }
    }

    #[test]
    fn page_id_displays_and_converts() {
        let id = page_id("x").unwrap();
        assert_eq!(id.to_string(), "x");
        assert_eq!(id.into_string(), "x");
    }

    const NOW: i64 = 1_714_564_800_000; // 2024-05-01T12:00:00Z

    #[test]
    fn valid_metric_sample_is_accepted() {
        let s = metric_sample("2024-05-01T11:00:00Z", 1.5, "cpu.load_1-m", NOW).unwrap();
        assert_eq!(s.timestamp_ms, NOW - 3_600_000);
        assert_eq!(s.value, 1.5);
        assert_eq!(s.metric_type, "cpu.load_1-m");
    }

    #[test]
    fn metric_value_must_be_finite() {
        for value in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            assert_eq!(
                metric_sample("2024-05-01T11:00:00Z", value, "cpu", NOW),
                Err(ValidationError::MetricValueNotFinite)
            );
        }
    }

    #[test]
    fn metric_type_is_restricted() {
        assert!(metric_type(&"a".repeat(64)).is_ok());
        for bad in ["", "CPU", "cpu load", "cpu/x", "é"] {
            assert_eq!(
                metric_type(bad),
                Err(ValidationError::MetricTypeInvalid),
                "{bad}"
            );
        }
        assert_eq!(
            metric_type(&"a".repeat(65)),
            Err(ValidationError::MetricTypeInvalid)
        );
    }

    #[test]
    fn metric_timestamp_must_parse() {
        assert_eq!(
            metric_sample("yesterday", 1.0, "cpu", NOW),
            Err(ValidationError::MetricTimestampInvalid)
        );
    }

    #[test]
    fn metric_timestamp_may_be_at_most_five_minutes_ahead() {
        assert!(metric_sample("2024-05-01T12:05:00Z", 1.0, "cpu", NOW).is_ok());
        assert_eq!(
            metric_sample("2024-05-01T12:05:00.001Z", 1.0, "cpu", NOW),
            Err(ValidationError::MetricTimestampInFuture)
        );
    }

    #[test]
    fn batch_size_is_limited() {
        assert_eq!(
            batch_len(0, MAX_BATCH_VISITS),
            Err(ValidationError::BatchEmpty)
        );
        assert_eq!(batch_len(1, MAX_BATCH_VISITS), Ok(()));
        assert_eq!(batch_len(MAX_BATCH_VISITS, MAX_BATCH_VISITS), Ok(()));
        assert_eq!(
            batch_len(MAX_BATCH_VISITS + 1, MAX_BATCH_VISITS),
            Err(ValidationError::BatchTooLarge)
        );
    }

    #[test]
    fn visit_count_is_limited() {
        assert_eq!(visit_count(0), Err(ValidationError::VisitCountInvalid));
        assert_eq!(visit_count(3), Ok(3));
        assert_eq!(visit_count(1_001), Err(ValidationError::VisitCountInvalid));
    }

    #[test]
    fn body_size_is_limited() {
        assert_eq!(body_size(MAX_BODY_BYTES, MAX_BODY_BYTES), Ok(()));
        assert_eq!(
            body_size(MAX_BODY_BYTES + 1, MAX_BODY_BYTES),
            Err(ValidationError::BodyTooLarge)
        );
    }

    #[test]
    fn list_limit_defaults_and_bounds() {
        assert_eq!(list_limit(None), Ok(DEFAULT_LIST_LIMIT));
        assert_eq!(list_limit(Some("7")), Ok(7));
        for bad in ["0", "1001", "-1", "x", ""] {
            assert_eq!(
                list_limit(Some(bad)),
                Err(ValidationError::LimitInvalid),
                "{bad}"
            );
        }
    }

    #[test]
    fn codes_are_unique_snake_case_and_messages_present() {
        let mut codes: Vec<&str> = ValidationError::ALL.iter().map(|e| e.code()).collect();
        for e in ValidationError::ALL {
            assert!(e
                .code()
                .bytes()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_'));
            assert!(e.message().ends_with('.'));
            assert_eq!(e.to_string(), e.message());
        }
        codes.sort();
        codes.dedup();
        assert_eq!(codes.len(), ValidationError::ALL.len());
    }
}

/// Checks an `Idempotency-Key` header value: 1 to 128 visible ASCII characters (a UUID fits).
pub fn idempotency_key(raw: &str) -> Result<&str, ValidationError> {
    let ok = (1..=MAX_IDEMPOTENCY_KEY_BYTES).contains(&raw.len())
        && raw.bytes().all(|b| b.is_ascii_graphic());
    ok.then_some(raw)
        .ok_or(ValidationError::IdempotencyKeyInvalid)
}

/// Parses `top=N` for the most visited pages: 1 to [`MAX_TOP_PAGES`].
pub fn top_pages(raw: &str) -> Result<usize, ValidationError> {
    match raw.parse::<usize>() {
        Ok(n) if (1..=MAX_TOP_PAGES).contains(&n) => Ok(n),
        _ => Err(ValidationError::TopInvalid),
    }
}

/// Checks a badge label: 1 to 64 characters, no control characters.
pub fn badge_label(raw: &str) -> Result<&str, ValidationError> {
    let chars = raw.chars().count();
    let ok = (1..=MAX_BADGE_LABEL_CHARS).contains(&chars) && !raw.chars().any(char::is_control);
    ok.then_some(raw).ok_or(ValidationError::BadgeParamInvalid)
}

/// Checks a badge colour: a name of 1 to 20 ASCII letters, or a 3- or 6-digit hex code with an
/// optional leading `#`. Returns the value to put in the SVG (`#` added to hex codes).
pub fn badge_color(raw: &str) -> Result<String, ValidationError> {
    let hex = raw.strip_prefix('#').unwrap_or(raw);
    if matches!(hex.len(), 3 | 6) && hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Ok(format!("#{hex}"));
    }
    if (1..=20).contains(&raw.len()) && raw.bytes().all(|b| b.is_ascii_alphabetic()) {
        return Ok(raw.to_ascii_lowercase());
    }
    Err(ValidationError::BadgeParamInvalid)
}

#[cfg(test)]
mod request_parameter_tests {
    use super::*;

    #[test]
    fn idempotency_keys_are_visible_ascii_up_to_128() {
        assert!(idempotency_key("6f1c2a9e-1d2b-4c55-9a0e-2f8b1f7c9d11").is_ok());
        assert!(idempotency_key("").is_err());
        assert!(idempotency_key("has space").is_err());
        assert!(idempotency_key(&"k".repeat(129)).is_err());
        assert!(idempotency_key("caf\u{e9}").is_err());
    }

    #[test]
    fn top_is_one_to_a_hundred() {
        assert_eq!(top_pages("10"), Ok(10));
        assert_eq!(top_pages("0"), Err(ValidationError::TopInvalid));
        assert_eq!(top_pages("101"), Err(ValidationError::TopInvalid));
        assert_eq!(top_pages("x"), Err(ValidationError::TopInvalid));
    }

    #[test]
    fn badge_labels_and_colors_are_checked() {
        assert_eq!(badge_label("visits"), Ok("visits"));
        assert!(badge_label("").is_err());
        assert!(badge_label("a\nb").is_err());
        assert_eq!(badge_color("4c1").as_deref(), Ok("#4c1"));
        assert_eq!(badge_color("#00FF00").as_deref(), Ok("#00FF00"));
        assert_eq!(badge_color("Green").as_deref(), Ok("green"));
        assert!(badge_color("red\" onload=\"x").is_err());
        assert!(badge_color("12345").is_err());
    }
}
