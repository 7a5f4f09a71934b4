//! The rate-limit response headers, formatted in one place.
//!
//! Every answer subject to a rate limit carries the IETF headers
//! (draft-ietf-httpapi-ratelimit-headers, structured-field form) and the legacy ones:
//!
//! ```text
//! RateLimit-Policy: "default";q=100;w=60
//! RateLimit: "default";r=42;t=7
//! X-RateLimit-Limit: 100
//! X-RateLimit-Remaining: 42
//! X-RateLimit-Reset: 7
//! Retry-After: 3            (only when the request was refused)
//! ```
//!
//! For a token bucket, the quota `q` is the capacity, the window `w` the time to refill an
//! empty bucket, and `t` (and `X-RateLimit-Reset`) the seconds until the bucket is full again.
//! Seconds are rounded up, so a client that waits that long is never refused for being early.

use crate::token_bucket::{BucketParams, Decision};

/// What the headers say, in seconds.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RateLimitInfo {
    /// The policy's name (printable ASCII; other characters are dropped when formatting).
    pub policy: String,
    /// Requests (tokens) allowed per window.
    pub limit: u64,
    /// The window, in seconds.
    pub window_s: u64,
    /// Tokens left.
    pub remaining: u64,
    /// Seconds until the quota is fully restored.
    pub reset_s: u64,
    /// Seconds to wait before retrying, when refused.
    pub retry_after_s: Option<u64>,
}

impl RateLimitInfo {
    /// The headers' content for a token-bucket decision under `params`.
    pub fn from_decision(policy: &str, params: &BucketParams, decision: &Decision) -> Self {
        let window_ms = params.capacity_units().div_ceil(params.refill_tokens());
        RateLimitInfo {
            policy: policy.to_owned(),
            limit: params.capacity(),
            window_s: window_ms.div_ceil(1_000),
            remaining: decision.remaining,
            reset_s: decision.reset_ms.div_ceil(1_000),
            retry_after_s: (!decision.allowed)
                .then(|| decision.retry_after_ms.div_ceil(1_000).max(1)),
        }
    }
}

/// The rate-limit headers as (name, value) pairs, in a fixed order. Built on every limited
/// request, so numbers are written with `itoa` rather than the formatting machinery.
pub fn rate_limit_headers(info: &RateLimitInfo) -> Vec<(&'static str, String)> {
    let policy = sf_string(&info.policy);
    let mut headers = vec![
        (
            "RateLimit-Policy",
            sf_item(&policy, ("q", info.limit), ("w", info.window_s)),
        ),
        (
            "RateLimit",
            sf_item(&policy, ("r", info.remaining), ("t", info.reset_s)),
        ),
        ("X-RateLimit-Limit", number(info.limit)),
        ("X-RateLimit-Remaining", number(info.remaining)),
        ("X-RateLimit-Reset", number(info.reset_s)),
    ];
    if let Some(retry_after_s) = info.retry_after_s {
        headers.push(("Retry-After", number(retry_after_s)));
    }
    headers
}

/// An RFC 8941 item with two integer parameters: `<item>;<a>=<n>;<b>=<m>`.
fn sf_item(item: &str, (a, n): (&str, u64), (b, m): (&str, u64)) -> String {
    [item, ";", a, "=", &number(n), ";", b, "=", &number(m)].concat()
}

/// A number in decimal.
fn number(n: u64) -> String {
    itoa::Buffer::new().format(n).to_string()
}

/// An RFC 8941 sf-string: quoted, `"` and `\` escaped, only printable ASCII kept.
fn sf_string(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars().filter(|c| (' '..='~').contains(c)) {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::token_bucket::{decide, BucketState};

    fn header<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn allowed_request_gets_policy_and_remaining_but_no_retry_after() {
        let params = BucketParams::per_minute(100).unwrap();
        let d = decide(None, 0, 58, &params).unwrap();
        let headers = rate_limit_headers(&RateLimitInfo::from_decision("default", &params, &d));
        assert_eq!(
            header(&headers, "RateLimit-Policy"),
            Some(r#""default";q=100;w=60"#)
        );
        assert_eq!(
            header(&headers, "RateLimit"),
            Some(r#""default";r=42;t=35"#)
        );
        assert_eq!(header(&headers, "X-RateLimit-Limit"), Some("100"));
        assert_eq!(header(&headers, "X-RateLimit-Remaining"), Some("42"));
        assert_eq!(header(&headers, "X-RateLimit-Reset"), Some("35"));
        assert_eq!(header(&headers, "Retry-After"), None);
    }

    #[test]
    fn refused_request_gets_retry_after_rounded_up() {
        let params = BucketParams::per_second(10).unwrap();
        let empty = BucketState {
            level_units: 0,
            last_ms: 0,
        };
        let d = decide(Some(empty), 0, 1, &params).unwrap();
        let headers = rate_limit_headers(&RateLimitInfo::from_decision("api", &params, &d));
        assert_eq!(header(&headers, "Retry-After"), Some("1"));
        assert_eq!(header(&headers, "RateLimit"), Some(r#""api";r=0;t=1"#));
        assert_eq!(headers.last().unwrap().0, "Retry-After");
    }

    #[test]
    fn policy_names_are_valid_sf_strings() {
        assert_eq!(sf_string(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(sf_string("é\n x"), r#"" x""#);
    }
}
