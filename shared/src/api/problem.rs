//! RFC 9457 problem details: every error answer's body, built in one place.
//!
//! Each kind of error has a stable `type` URI ([`PROBLEM_TYPE_BASE`] + a slug) and its HTTP
//! status. Details never carry stack traces, internal addresses or secrets; validation errors
//! add their stable machine `code` as an extension member.

use serde::{Deserialize, Serialize};

use crate::validation::ValidationError;

/// The media type of problem bodies.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// Prefix of every problem `type`. It is an identifier: clients compare it, they need not
/// dereference it.
pub const PROBLEM_TYPE_BASE: &str = "https://tally.dev/problems/";

/// The kinds of error Tally answers with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// 400: the request is malformed (bad JSON, bad page id, bad query parameter).
    InvalidRequest,
    /// 404: no such route or resource.
    NotFound,
    /// 405: the route exists with other methods.
    MethodNotAllowed,
    /// 413: the body, or the batch, is too large.
    TooLarge,
    /// 413: the request costs more than the rate limit's whole capacity, so it can never pass;
    /// split it.
    CostExceedsCapacity,
    /// 415: the body is not JSON.
    UnsupportedMediaType,
    /// 422: the body is well-formed JSON but its content is invalid.
    ValidationFailed,
    /// 429: rate limited; see the rate-limit headers.
    RateLimited,
    /// 503: a shard the request needs is unreachable or its breaker is open.
    ShardUnavailable,
    /// 500: an unexpected failure (details are logged, never returned).
    Internal,
    /// 422: an `Idempotency-Key` was reused with a different request.
    IdempotencyConflict,
    /// 401: a server-side write without one of the configured API keys.
    Unauthorized,
    /// 403: a browser write from a site that is not allowed, or a preflight from an origin
    /// that is not.
    Forbidden,
}

impl ProblemKind {
    /// Every kind, for exhaustive tests.
    pub const ALL: [ProblemKind; 13] = [
        ProblemKind::InvalidRequest,
        ProblemKind::NotFound,
        ProblemKind::MethodNotAllowed,
        ProblemKind::TooLarge,
        ProblemKind::CostExceedsCapacity,
        ProblemKind::UnsupportedMediaType,
        ProblemKind::ValidationFailed,
        ProblemKind::RateLimited,
        ProblemKind::ShardUnavailable,
        ProblemKind::Internal,
        ProblemKind::IdempotencyConflict,
        ProblemKind::Unauthorized,
        ProblemKind::Forbidden,
    ];

    /// The stable slug ending the `type` URI.
    pub fn slug(self) -> &'static str {
        match self {
            ProblemKind::InvalidRequest => "invalid-request",
            ProblemKind::NotFound => "not-found",
            ProblemKind::MethodNotAllowed => "method-not-allowed",
            ProblemKind::TooLarge => "too-large",
            ProblemKind::CostExceedsCapacity => "cost-exceeds-capacity",
            ProblemKind::UnsupportedMediaType => "unsupported-media-type",
            ProblemKind::ValidationFailed => "validation-failed",
            ProblemKind::RateLimited => "rate-limited",
            ProblemKind::ShardUnavailable => "shard-unavailable",
            ProblemKind::Internal => "internal-error",
            ProblemKind::IdempotencyConflict => "idempotency-conflict",
            ProblemKind::Unauthorized => "unauthorized",
            ProblemKind::Forbidden => "forbidden",
        }
    }

    /// The HTTP status.
    pub fn status(self) -> u16 {
        match self {
            ProblemKind::InvalidRequest => 400,
            ProblemKind::NotFound => 404,
            ProblemKind::MethodNotAllowed => 405,
            ProblemKind::TooLarge | ProblemKind::CostExceedsCapacity => 413,
            ProblemKind::UnsupportedMediaType => 415,
            ProblemKind::ValidationFailed => 422,
            ProblemKind::RateLimited => 429,
            ProblemKind::ShardUnavailable => 503,
            ProblemKind::Internal => 500,
            ProblemKind::IdempotencyConflict => 422,
            ProblemKind::Unauthorized => 401,
            ProblemKind::Forbidden => 403,
        }
    }

    /// A short, fixed summary of the kind (RFC 9457 `title`).
    pub fn title(self) -> &'static str {
        match self {
            ProblemKind::InvalidRequest => "Invalid request",
            ProblemKind::NotFound => "Not found",
            ProblemKind::MethodNotAllowed => "Method not allowed",
            ProblemKind::TooLarge => "Request too large",
            ProblemKind::CostExceedsCapacity => "Request exceeds the rate limit's capacity",
            ProblemKind::UnsupportedMediaType => "Unsupported media type",
            ProblemKind::ValidationFailed => "Validation failed",
            ProblemKind::RateLimited => "Too many requests",
            ProblemKind::ShardUnavailable => "Storage temporarily unavailable",
            ProblemKind::Internal => "Internal error",
            ProblemKind::IdempotencyConflict => "Idempotency key reused with a different request",
            ProblemKind::Unauthorized => "Credentials required",
            ProblemKind::Forbidden => "Not allowed from this site",
        }
    }

    /// The full `type` URI.
    pub fn type_uri(self) -> String {
        format!("{PROBLEM_TYPE_BASE}{}", self.slug())
    }
}

/// An RFC 9457 problem details object.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Stable URI identifying the kind.
    #[serde(rename = "type")]
    pub type_uri: String,
    /// Summary of the kind.
    pub title: String,
    /// The HTTP status, repeated in the body.
    pub status: u16,
    /// What went wrong with this request, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request path concerned, if useful.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// Extension: a stable machine code (the validation error's code).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Problem {
    /// A problem of `kind` with a detail message.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Problem {
            type_uri: kind.type_uri(),
            title: kind.title().to_owned(),
            status: kind.status(),
            detail: Some(detail.into()),
            instance: None,
            code: None,
        }
    }

    /// Adds the `instance` member (the request path).
    pub fn with_instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The JSON body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a problem always serializes")
    }
}

impl From<ValidationError> for Problem {
    fn from(err: ValidationError) -> Self {
        use ValidationError as V;
        let kind = match err {
            V::PageIdEmpty
            | V::PageIdTooLong
            | V::PageIdBadEncoding
            | V::PageIdNotUtf8
            | V::PageIdControlChar
            | V::LimitInvalid
            | V::IdempotencyKeyInvalid
            | V::TopInvalid
            | V::BadgeParamInvalid
            | V::RangeInvalid
            | V::CursorInvalid
            | V::ExportInvalid => ProblemKind::InvalidRequest,
            V::BodyTooLarge | V::BatchTooLarge => ProblemKind::TooLarge,
            V::MetricValueNotFinite
            | V::MetricTypeInvalid
            | V::MetricTimestampInvalid
            | V::MetricTimestampInFuture
            | V::BatchEmpty
            | V::PeriodInvalid
            | V::VisitCountInvalid
            | V::VisitBodyShape
            | V::ReferrerInvalid
            | V::VisitTimeInvalid => ProblemKind::ValidationFailed,
        };
        Problem {
            code: Some(err.code().to_owned()),
            ..Problem::new(kind, err.message())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn problem_serializes_per_rfc_9457() {
        let p = Problem::new(ProblemKind::NotFound, "No route for /nope.").with_instance("/nope");
        let value: serde_json::Value = serde_json::from_str(&p.to_json()).unwrap();
        assert_eq!(value["type"], "https://tally.dev/problems/not-found");
        assert_eq!(value["title"], "Not found");
        assert_eq!(value["status"], 404);
        assert_eq!(value["detail"], "No route for /nope.");
        assert_eq!(value["instance"], "/nope");
        assert!(value.get("code").is_none());
    }

    #[test]
    fn every_kind_has_a_distinct_type_and_a_listed_status() {
        let mut slugs: Vec<&str> = ProblemKind::ALL.iter().map(|k| k.slug()).collect();
        slugs.sort();
        slugs.dedup();
        assert_eq!(slugs.len(), ProblemKind::ALL.len());
        for kind in ProblemKind::ALL {
            assert!(
                [400, 401, 403, 404, 405, 413, 415, 422, 429, 500, 503].contains(&kind.status())
            );
            assert!(!kind.title().is_empty());
            assert!(kind.type_uri().starts_with(PROBLEM_TYPE_BASE));
        }
    }

    #[test]
    fn validation_errors_map_to_status_and_keep_their_code() {
        let p = Problem::from(ValidationError::PageIdTooLong);
        assert_eq!(p.status, 400);
        assert_eq!(p.code.as_deref(), Some("page_id_too_long"));
        assert_eq!(Problem::from(ValidationError::BodyTooLarge).status, 413);
        assert_eq!(
            Problem::from(ValidationError::MetricTimestampInFuture).status,
            422
        );
        for err in ValidationError::ALL {
            let p = Problem::from(err);
            assert_eq!(p.detail.as_deref(), Some(err.message()));
        }
    }
}
