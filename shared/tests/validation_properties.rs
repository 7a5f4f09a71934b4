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
    fn plain_ids_are_their_segments_joined(raw in "[a-zA-Z0-9._~/-]{1,256}") {
        let id = page_id(&raw).unwrap();
        let mut segments: Vec<&str> = raw.split('/').filter(|s| !s.is_empty()).collect();
        if matches!(segments.last(), Some(&"index.html") | Some(&"index.htm")) {
            segments.pop();
        }
        let expected = if segments.is_empty() { "/".to_string() } else { segments.join("/") };
        prop_assert_eq!(id.as_str(), expected);
    }

    #[test]
    fn the_normal_form_is_a_fixed_point(raw in "[a-zA-Z0-9._~/ -]{1,200}") {
        // An id without `%`, `?` or `#` in it normalizes to itself: ids read back from the
        // store, or sent again by a client, name the same page.
        let id = page_id(&raw).unwrap();
        prop_assert_eq!(page_id(id.as_str()).unwrap(), id);
    }

    #[test]
    fn slashes_query_and_fragment_never_change_the_page(
        segments in proptest::collection::vec("[a-z0-9._-]{1,12}", 1..6),
        lead in "/{0,2}",
        trail in "/{0,2}",
        tail in "(\\?[a-z=&]{0,10})?(#[a-z]{0,6})?",
    ) {
        let plain = segments.join("/");
        let dressed = format!("{lead}{}{trail}{tail}", segments.join("//"));
        prop_assert_eq!(page_id(&dressed), page_id(&plain));
    }

    #[test]
    fn percent_encoding_any_printable_id_decodes_back(raw in "[ -~]{1,80}") {
        // Encoding every byte (so `?` and `#` are part of the id) equals sending it with only
        // `%`, `?` and `#` escaped.
        let encoded: String = raw.bytes().map(|b| format!("%{b:02X}")).collect();
        let escaped = raw.replace('%', "%25").replace('?', "%3F").replace('#', "%23");
        prop_assert_eq!(page_id(&encoded), page_id(&escaped));
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
