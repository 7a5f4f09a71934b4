//! The HTTP contract: request and response bodies, problem details and rate-limit headers.
//!
//! Components and tests use these same types, so the wire format is defined once (DESIGN.md,
//! "API"). Seed-compatible fields stay as they were; additions are additive. Each file holds
//! one endpoint's bodies or one cross-cutting format.

mod health;
mod metrics;
mod problem;
mod rate_limit;
mod summary;
mod visit;

pub use health::{HealthReply, HealthStatus, ShardHealth};
pub use metrics::{is_array_body, MetricCreated, MetricSample, MetricsList};
pub use problem::{Problem, ProblemKind, PROBLEM_CONTENT_TYPE, PROBLEM_TYPE_BASE};
pub use rate_limit::{rate_limit_headers, RateLimitInfo};
pub use summary::{summarize, Period, SummaryReply, HOUR_MS, MINUTE_MS};
pub use visit::{
    BatchReply, BatchRequest, BatchVisit, FailedShard, IgnoredReply, PageViewReply, RecordedPage,
    ServedVia, VisitBody, VisitReply, VisitsReply,
};

/// The `status` value of successful replies (kept from the seed API).
pub const STATUS_SUCCESS: &str = "success";
