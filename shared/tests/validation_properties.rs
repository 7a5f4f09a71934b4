//! Property tests for input validation: arbitrary input never panics, and whatever is
//! accepted obeys the documented rules.

use proptest::prelude::*;
use tally_core::rfc3339::{format_unix_ms, parse_unix_ms};
use tally_core::validation::{metric_sample, page_id, MAX_FUTURE_SKEW_MS, MAX_PAGE_ID_BYTES};

proptest! {
    #[test]
    fn accepted_page_ids_obey_the_rules(raw in "\\PC{0,300}|[%0-9a-fA-F/]{0,40}|.{0,20}") {
        if let Ok(id) = page_id(&raw) {
            let s = id.as_str();
            prop_assert!(!s.is_empty() && s.len() <= MAX_PAGE_ID_BYTES);
            prop_assert!(!s.chars().any(char::is_control));
        }
    }

    #[test]
    fn plain_ids_without_percent_or_controls_are_kept(raw in "[a-zA-Z0-9._~/-]{1,256}") {
        let id = page_id(&raw).unwrap();
        let expected = if raw.len() > 1 { raw.strip_prefix('/').unwrap_or(&raw) } else { &raw };
        prop_assert_eq!(id.as_str(), expected);
    }

    #[test]
    fn percent_encoding_any_printable_id_decodes_back(raw in "[ -~]{1,80}") {
        let encoded: String = raw.bytes().map(|b| format!("%{b:02X}")).collect();
        prop_assert_eq!(page_id(&encoded), page_id(&raw.replace('%', "%25")));
    }

    #[test]
    fn any_timestamp_text_parses_or_errs_without_panic(text in "\\PC{0,40}") {
        let _ = parse_unix_ms(&text);
    }

    #[test]
    fn formatted_timestamps_parse_back(ms in -62_135_596_800_000i64..253_402_300_800_000) {
        prop_assert_eq!(parse_unix_ms(&format_unix_ms(ms)), Ok(ms));
    }

    #[test]
    fn future_bound_is_exact(now in 0i64..253_000_000_000_000, ahead in -1_000_000i64..1_000_000) {
        let ts = format_unix_ms(now + ahead);
        let result = metric_sample(&ts, 1.0, "cpu", now);
        prop_assert_eq!(result.is_ok(), ahead <= MAX_FUTURE_SKEW_MS);
    }
}
