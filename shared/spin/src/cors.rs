//! CORS around every component's handler (`http_io::serve` calls [`around`]), per the Fetch
//! standard and `cors_allowed_origins` (see `tally_core::cors`):
//!
//! - an `OPTIONS` preflight from an allowed origin is answered here, 204 with the grant, without
//!   running the handler: no Redis, no rate limit; one from another origin gets 403 and no CORS
//!   header (the browser blocks it); with CORS not configured, `OPTIONS` reaches the handler,
//!   which answers 405 as it always did;
//! - an answer to a request from an allowed origin names it in `Access-Control-Allow-Origin`
//!   and exposes the rate-limit headers;
//! - every answer says `Vary: Origin`, so a shared cache never hands one origin's grant to
//!   another; that costs nothing, while telling whether CORS is on would cost a variable read
//!   on requests that carry no `Origin` at all.

use spin_sdk::http::Method;
use tally_core::api::ProblemKind;
use tally_core::cors::{allowed_headers, CorsPolicy, ALLOWED_METHODS, EXPOSED_HEADERS, MAX_AGE_S};

use crate::config::{non_empty_var, var};
use crate::http_io::{Request, Response};
use crate::respond::Failure;

/// Runs `handler` for `req` with CORS around it.
pub fn around(req: &Request, handler: impl FnOnce(&Request) -> Response) -> Response {
    let origin = req.last_header_value("origin");
    let mut resp = match (req.method(), origin.as_deref()) {
        (Method::Options, Some(origin)) => match policy() {
            Ok(policy) if policy.is_enabled() => preflight(&policy, origin),
            Ok(_) => handler(req),
            Err(failure) => failure.into_response(),
        },
        (_, Some(origin)) => {
            let mut resp = handler(req);
            if let Some(allow) = policy().ok().and_then(|p| p.allow_origin(origin)) {
                resp.set_header("access-control-allow-origin", allow.as_str());
                resp.set_header("access-control-expose-headers", EXPOSED_HEADERS);
            }
            resp
        }
        (_, None) => handler(req),
    };
    resp.set_header("vary", "Origin");
    resp
}

/// The answer to a preflight from `origin`.
fn preflight(policy: &CorsPolicy, origin: &str) -> Response {
    let Some(allow) = policy.allow_origin(origin) else {
        return Failure::new(
            ProblemKind::Forbidden,
            "this origin may not call this API from a browser (cors_allowed_origins)",
        )
        .into_response();
    };
    let api_key_header = non_empty_var("api_key_header");
    Response::new(204, Vec::new())
        .with_header("access-control-allow-origin", allow.as_str())
        .with_header("access-control-allow-methods", ALLOWED_METHODS)
        .with_header(
            "access-control-allow-headers",
            allowed_headers(api_key_header.as_deref()),
        )
        .with_header("access-control-max-age", MAX_AGE_S.to_string())
}

/// `cors_allowed_origins`, parsed (an unreadable value is a deployment error: 500).
fn policy() -> Result<CorsPolicy, Failure> {
    let raw = var("cors_allowed_origins").unwrap_or_default();
    CorsPolicy::parse(&raw)
        .map_err(|err| Failure::misconfigured(format!("cors_allowed_origins: {err}")))
}
