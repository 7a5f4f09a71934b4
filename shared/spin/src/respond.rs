//! Turning outcomes into HTTP responses, in one place: JSON bodies, RFC 9457 problems, 405s.

use serde::Serialize;
use spin_sdk::http::Method;

use crate::http_io::Response;
use tally_core::api::{Problem, ProblemKind, PROBLEM_CONTENT_TYPE};

/// A request that cannot be answered normally, with the problem to answer instead.
#[derive(Debug)]
pub struct Failure {
    /// What went wrong, as the client will see it.
    pub problem: Problem,
    /// Extra response headers (`Allow`, `Retry-After`, …).
    pub headers: Vec<(String, String)>,
}

impl Failure {
    /// A failure answered with `kind` and a human-readable detail.
    pub fn new(kind: ProblemKind, detail: impl Into<String>) -> Self {
        Self {
            problem: Problem::new(kind, detail),
            headers: Vec::new(),
        }
    }

    /// The deployment is misconfigured; the detail goes to the log, not to the client.
    pub fn misconfigured(detail: String) -> Self {
        eprintln!("{}", serde_json::json!({"level": "error", "msg": detail}));
        Self::new(
            ProblemKind::Internal,
            "the service is misconfigured; the operator has been told",
        )
    }

    /// The method is not one of `allowed`.
    pub fn method_not_allowed(allowed: &[Method]) -> Self {
        let list = allowed
            .iter()
            .map(|m| m.to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut failure = Self::new(
            ProblemKind::MethodNotAllowed,
            format!("this endpoint accepts {list}"),
        );
        failure.headers.push(("allow".into(), list));
        failure
    }

    /// Adds a response header.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// The HTTP response for this failure.
    pub fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem).unwrap_or_default();
        let mut resp = Response::new(self.problem.status, body)
            .with_header("content-type", PROBLEM_CONTENT_TYPE);
        for (name, value) in self.headers {
            resp.set_header(&name, value);
        }
        resp
    }
}

/// Fails with 405 unless the request's method is one of `allowed`.
pub fn require_method(method: &Method, allowed: &[Method]) -> Result<(), Failure> {
    if allowed.contains(method) {
        Ok(())
    } else {
        Err(Failure::method_not_allowed(allowed))
    }
}

/// A JSON response with `status`.
pub fn json<T: Serialize>(status: u16, body: &T) -> Response {
    json_bytes(status, serde_json::to_vec(body).unwrap_or_default())
}

/// A response with `status` and a body that is already JSON.
pub fn json_bytes(status: u16, body: Vec<u8>) -> Response {
    Response::new(status, body)
        .with_header("content-type", "application/json")
        .with_header("cache-control", "no-store")
}

/// The response for a handler's outcome.
pub fn outcome(result: Result<Response, Failure>) -> Response {
    result.unwrap_or_else(Failure::into_response)
}

impl From<tally_core::validation::ValidationError> for Failure {
    fn from(err: tally_core::validation::ValidationError) -> Self {
        Self {
            problem: Problem::from(err),
            headers: Vec::new(),
        }
    }
}

/// The request body, if it is JSON (415 otherwise) and at most `limit` bytes (413 otherwise).
pub fn json_body(req: &crate::http_io::Request, limit: usize) -> Result<&[u8], Failure> {
    body_of(req, limit, &["application/json"])
}

/// The request body of a route browsers write to: JSON sent as `application/json`, or as
/// `text/plain` (what `navigator.sendBeacon` sends for a string, and a type that needs no CORS
/// preflight); 415 for anything else, 413 above `limit` bytes.
pub fn json_or_text_body(req: &crate::http_io::Request, limit: usize) -> Result<&[u8], Failure> {
    body_of(req, limit, &["application/json", "text/plain"])
}

/// Whether the request's body is declared `application/json`.
pub fn is_json(req: &crate::http_io::Request) -> bool {
    media_type(req).eq_ignore_ascii_case("application/json")
}

/// The request's media type, without parameters.
fn media_type(req: &crate::http_io::Request) -> &str {
    let content_type = crate::request_info::header(req, "content-type").unwrap_or("");
    content_type.split(';').next().unwrap_or("").trim()
}

fn body_of<'r>(
    req: &'r crate::http_io::Request,
    limit: usize,
    media_types: &[&str],
) -> Result<&'r [u8], Failure> {
    let media_type = media_type(req);
    if !media_types
        .iter()
        .any(|t| media_type.eq_ignore_ascii_case(t))
    {
        return Err(Failure::new(
            ProblemKind::UnsupportedMediaType,
            format!("send the body as {}", media_types.join(" or ")),
        ));
    }
    let body = req.body().ok_or_else(|| {
        Failure::new(
            ProblemKind::InvalidRequest,
            "the request body could not be read",
        )
    })?;
    tally_core::validation::body_size(body.len(), limit)?;
    Ok(body)
}

/// Parses JSON: 400 for malformed JSON, 422 for JSON of the wrong shape or a number no
/// `f64` can hold (valid JSON, but not a finite value).
pub fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, Failure> {
    serde_json::from_slice(body).map_err(|err| {
        let out_of_range = err.to_string().starts_with("number out of range");
        let kind = match err.classify() {
            serde_json::error::Category::Data => ProblemKind::ValidationFailed,
            _ if out_of_range => ProblemKind::ValidationFailed,
            _ => ProblemKind::InvalidRequest,
        };
        Failure::new(kind, format!("the body is not a valid request: {err}"))
    })
}

/// The response with extra headers (rate-limit headers on every answer of a limited route).
pub fn with_headers(mut resp: Response, headers: &[(String, String)]) -> Response {
    for (name, value) in headers {
        resp.set_header(name, value);
    }
    resp
}
