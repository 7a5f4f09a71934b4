//! CORS as the Fetch standard defines it, for the origins a deployment allows
//! (`cors_allowed_origins`): which origin a response may name in
//! `Access-Control-Allow-Origin`, and what a preflight is answered.
//!
//! Origins are compared in their serialized form (`scheme://host[:port]`, lower-case, the
//! scheme's default port omitted), parsed with the `http` crate's URI parser, so
//! `https://Example.com:443` in the configuration allows the `Origin: https://example.com` a
//! browser sends. The browser decides what to do with the answer; the server only grants or
//! does not.

use std::fmt;

/// Methods Tally's routes accept from browsers (each route answers 405 for the ones it does not
/// take): what a preflight grants.
pub const ALLOWED_METHODS: &str = "GET, HEAD, POST";

/// Request headers a browser may send beyond the CORS-safelisted ones.
pub const ALLOWED_HEADERS: [&str; 3] = ["content-type", "idempotency-key", "authorization"];

/// Response headers a page's script may read beyond the safelisted ones.
pub const EXPOSED_HEADERS: &str = "RateLimit, RateLimit-Policy, X-RateLimit-Limit, \
X-RateLimit-Remaining, X-RateLimit-Reset, Retry-After, X-RateLimit-Status, Age";

/// How long a browser may cache a preflight's answer (Chromium caps it at 2 hours).
pub const MAX_AGE_S: u32 = 7_200;

/// Which origins may read Tally's answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CorsPolicy {
    /// No origin: answers carry no CORS headers (the default).
    None,
    /// Any origin (`*`), without credentials.
    Any,
    /// Exactly these origins, serialized.
    Origins(Vec<String>),
}

/// A `cors_allowed_origins` entry that is not an origin.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CorsConfigError(pub String);

impl fmt::Display for CorsConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl CorsPolicy {
    /// Parses `cors_allowed_origins`: empty for none, `*` for any, else comma-separated
    /// origins such as `https://example.com, https://www.example.com:8443`.
    pub fn parse(raw: &str) -> Result<Self, CorsConfigError> {
        let raw = raw.trim();
        if raw.is_empty() {
            return Ok(CorsPolicy::None);
        }
        if raw == "*" {
            return Ok(CorsPolicy::Any);
        }
        let origins = raw
            .split(',')
            .map(str::trim)
            .filter(|o| !o.is_empty())
            .map(|o| {
                serialize_origin(o).ok_or_else(|| {
                    CorsConfigError(format!(
                        "{o:?} is not an origin (scheme://host[:port], nothing after it)"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(CorsPolicy::Origins(origins))
    }

    /// What `Access-Control-Allow-Origin` may say to a request from `origin` (its `Origin`
    /// header), or `None` when that origin may not read the answer.
    pub fn allow_origin(&self, origin: &str) -> Option<AllowOrigin> {
        match self {
            CorsPolicy::None => None,
            CorsPolicy::Any => Some(AllowOrigin::Any),
            CorsPolicy::Origins(allowed) => {
                let origin = serialize_origin(origin)?;
                allowed
                    .contains(&origin)
                    .then_some(AllowOrigin::Origin(origin))
            }
        }
    }

    /// Whether any origin at all is allowed (a preflight is then answered by Tally rather than
    /// by the route, which would say 405).
    pub fn is_enabled(&self) -> bool {
        !matches!(self, CorsPolicy::None)
    }
}

/// The value of `Access-Control-Allow-Origin`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AllowOrigin {
    /// `*`.
    Any,
    /// The request's origin, echoed (serialized).
    Origin(String),
}

impl AllowOrigin {
    /// The header value.
    pub fn as_str(&self) -> &str {
        match self {
            AllowOrigin::Any => "*",
            AllowOrigin::Origin(origin) => origin,
        }
    }
}

/// The headers a preflight grants: `Access-Control-Allow-Headers` lists the safelisted extras
/// and, when the deployment reads API keys from a header of its own, that header.
pub fn allowed_headers(api_key_header: Option<&str>) -> String {
    let mut headers = ALLOWED_HEADERS.join(", ");
    if let Some(name) = api_key_header.map(str::trim).filter(|n| !n.is_empty()) {
        headers.push_str(", ");
        headers.push_str(&name.to_ascii_lowercase());
    }
    headers
}

/// The serialized form of an origin (`scheme://host[:port]`, lower-case, default port
/// omitted), or `None` for anything else: a path, a query, user info, a scheme other than
/// http(s), or the opaque origin `null`.
pub fn serialize_origin(raw: &str) -> Option<String> {
    let uri: http::Uri = raw.parse().ok()?;
    let scheme = uri.scheme_str()?.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "http" => 80,
        "https" => 443,
        _ => return None,
    };
    let authority = uri.authority()?;
    let has_path = uri.path_and_query().is_some_and(|pq| pq.as_str() != "/");
    if has_path || raw.ends_with('/') || authority.as_str().contains('@') {
        return None;
    }
    let host = authority.host().to_ascii_lowercase();
    if host.is_empty() {
        return None;
    }
    Some(match authority.port_u16() {
        Some(port) if port != default_port => format!("{scheme}://{host}:{port}"),
        _ => format!("{scheme}://{host}"),
    })
}

/// The host of a URL such as a `Referer` (lower-case, without port), or `None`.
pub fn url_host(raw: &str) -> Option<String> {
    let uri: http::Uri = raw.parse().ok()?;
    uri.scheme_str()?;
    let host = uri.host()?.to_ascii_lowercase();
    (!host.is_empty()).then_some(host)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_configuration_allows_no_origin() {
        let policy = CorsPolicy::parse("  ").unwrap();
        assert_eq!(policy, CorsPolicy::None);
        assert!(!policy.is_enabled());
        assert_eq!(policy.allow_origin("https://example.com"), None);
    }

    #[test]
    fn a_star_allows_every_origin_as_a_star() {
        let policy = CorsPolicy::parse("*").unwrap();
        assert_eq!(
            policy
                .allow_origin("https://anything.test")
                .unwrap()
                .as_str(),
            "*"
        );
    }

    #[test]
    fn listed_origins_are_echoed_in_their_serialized_form() {
        let policy = CorsPolicy::parse("https://Example.com:443, http://localhost:8080").unwrap();
        let allow = |o: &str| policy.allow_origin(o).map(|a| a.as_str().to_string());
        assert_eq!(
            allow("https://example.com").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            allow("HTTPS://EXAMPLE.COM").as_deref(),
            Some("https://example.com")
        );
        assert_eq!(
            allow("http://localhost:8080").as_deref(),
            Some("http://localhost:8080")
        );
        for refused in [
            "http://example.com",
            "https://example.com:8443",
            "https://evil.example.com",
            "https://example.com.evil.test",
            "null",
            "",
            "https://example.com/path",
        ] {
            assert_eq!(allow(refused), None, "{refused}");
        }
    }

    #[test]
    fn a_configured_entry_that_is_not_an_origin_is_an_error() {
        for bad in [
            "example.com",
            "https://example.com/",
            "https://example.com/app",
            "ftp://example.com",
            "https://user@example.com",
            "https://example.com?x=1",
        ] {
            assert!(CorsPolicy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn preflights_grant_the_api_key_header_when_there_is_one() {
        assert_eq!(
            allowed_headers(None),
            "content-type, idempotency-key, authorization"
        );
        assert_eq!(
            allowed_headers(Some("X-API-Key")),
            "content-type, idempotency-key, authorization, x-api-key"
        );
    }

    #[test]
    fn referer_hosts_are_read_without_port_or_case() {
        assert_eq!(
            url_host("https://Blog.Example.com:8443/a?b#c").as_deref(),
            Some("blog.example.com")
        );
        assert_eq!(url_host("/relative/path"), None);
        assert_eq!(url_host("not a url"), None);
    }
}
