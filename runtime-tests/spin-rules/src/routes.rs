//! HTTP routing with Spin's route syntax and precedence, and the `spin-*` request headers.
//!
//! Which component handles a request, and what it is told about the match (`spin-path-info`,
//! `spin-component-route`, …), are observable behaviour that guest code relies on. Spin
//! builds its router on the `routefinder` crate; so does this module, with the same
//! translation of Spin routes (`/x/...` → `/x/*`, base joining, trailing-slash handling),
//! so precedence is identical: exact segments beat `:params`, which beat wildcards, the
//! longest match wins, and among equally specific routes the first declared wins.

use std::collections::BTreeMap;
use std::fmt;
use std::net::SocketAddr;

use routefinder::Segment;

use crate::manifest::{App, HttpRoute};

/// The path prefix Spin reserves for itself (`/.well-known/spin/health`, `/.well-known/spin/info`).
pub const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// A route that cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct RouteError(pub String);

#[derive(Debug, Clone)]
struct Handler {
    component: String,
    based_route: String,
    raw_route: String,
}

/// Two routes with the same text: Spin keeps the later one (in the earlier one's place).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DuplicateRoute {
    /// The route, with the base (`/` for the root).
    pub route: String,
    /// The component whose route was replaced.
    pub replaced: String,
    /// The component that now has the route.
    pub effective: String,
}

/// Resolves request paths to components.
#[derive(Debug)]
pub struct Router {
    inner: routefinder::Router<Handler>,
    duplicates: Vec<DuplicateRoute>,
}

impl Router {
    /// A router for routes relative to the root (Spin now always uses base `/`).
    pub fn new(routes: &[HttpRoute]) -> Result<Self, RouteError> {
        Self::with_base("/", routes)
    }

    /// The router for an application's `[[trigger.http]]` routes.
    pub fn build(app: &App) -> Result<Self, RouteError> {
        Self::new(&app.http_routes)
    }

    /// A router whose routes are all under `base` (the deprecated `[application.trigger.http]
    /// base`). Routes with identical text are not an error: like Spin, the later one wins
    /// and the clash is listed in [`Router::duplicates`].
    pub fn with_base(base: &str, routes: &[HttpRoute]) -> Result<Self, RouteError> {
        // Keyed by raw route: a later duplicate takes the earlier one's place, like IndexMap.
        let mut entries: Vec<Handler> = Vec::new();
        let mut duplicates = Vec::new();
        for r in routes {
            let handler = Handler {
                component: r.component.clone(),
                based_route: based_route(base, &r.route),
                raw_route: r.route.clone(),
            };
            if let Some(slot) = entries.iter_mut().find(|e| e.raw_route == r.route) {
                duplicates.push(DuplicateRoute {
                    route: if slot.based_route.is_empty() {
                        "/".into()
                    } else {
                        slot.based_route.clone()
                    },
                    replaced: slot.component.clone(),
                    effective: handler.component.clone(),
                });
                *slot = handler;
            } else {
                entries.push(handler);
            }
        }
        let mut inner = routefinder::Router::new();
        for handler in entries {
            let spec = routefinder_spec(&handler.based_route).map_err(|e| {
                RouteError(format!(
                    "Error parsing route {} associated with component {}: {e}",
                    handler.based_route, handler.component
                ))
            })?;
            inner
                .add(spec, handler)
                .unwrap_or_else(|never| match never {});
        }
        Ok(Self { inner, duplicates })
    }

    /// The best route for a request path (the URI's path, still percent-encoded, without
    /// the query), or `None` (Spin answers 404).
    pub fn route(&self, path: &str) -> Option<RouteMatch> {
        let m = self.inner.best_match(path)?;
        let handler = m.handler();
        let captures = m.captures();
        Some(RouteMatch {
            component: handler.component.clone(),
            based_route: handler.based_route.clone(),
            raw_route: handler.raw_route.clone(),
            path: path.to_string(),
            named: captures
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wildcard: captures.wildcard().map(str::to_string),
        })
    }

    /// Routes whose text repeated an earlier route's (the earlier ones are unreachable).
    pub fn duplicates(&self) -> &[DuplicateRoute] {
        &self.duplicates
    }

    /// True when a route is under [`WELL_KNOWN_PREFIX`], which Spin answers itself (so
    /// such a route is never reached).
    pub fn contains_reserved_route(&self) -> bool {
        self.inner
            .iter()
            .any(|(_, h)| h.based_route.starts_with(WELL_KNOWN_PREFIX))
    }

    /// `(route with base, component)` pairs, in the order they are tried.
    pub fn routes(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .iter()
            .map(|(_, h)| (h.based_route.as_str(), h.component.as_str()))
    }
}

/// Joins a base and a route the way Spin does: the route gets a leading `/` if it lacks
/// one, then one trailing `/` is removed from each. The root route `/` becomes "".
pub fn based_route(base: &str, route: &str) -> String {
    let route = if route.starts_with('/') {
        route.to_string()
    } else {
        format!("/{route}")
    };
    let strip = |s: &str| s.strip_suffix('/').unwrap_or(s).to_string();
    format!("{}{}", strip(base), strip(&route))
}

fn routefinder_spec(based_route: &str) -> Result<routefinder::RouteSpec, String> {
    let spec: routefinder::RouteSpec = match based_route.strip_suffix("/...") {
        Some(prefix) => format!("{prefix}/*").parse()?,
        None => based_route.parse()?,
    };
    // routefinder panics at match time on a wildcard that is not the last segment.
    let segments = spec.segments();
    if let Some(pos) = segments.iter().position(|s| matches!(s, Segment::Wildcard)) {
        if pos + 1 != segments.len() {
            return Err("a wildcard (`*` or `...`) must be the last segment".into());
        }
    }
    Ok(spec)
}

/// A request path matched to a route.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    component: String,
    based_route: String,
    raw_route: String,
    path: String,
    named: Vec<(String, String)>,
    wildcard: Option<String>,
}

impl RouteMatch {
    /// The component the request goes to.
    pub fn component_id(&self) -> &str {
        &self.component
    }

    /// The route as written in the manifest, joined to the base (`spin-matched-route`).
    pub fn based_route(&self) -> &str {
        &self.based_route
    }

    /// [`RouteMatch::based_route`] without a trailing `/...`.
    pub fn based_route_or_prefix(&self) -> &str {
        self.based_route
            .strip_suffix("/...")
            .unwrap_or(&self.based_route)
    }

    /// The route exactly as written in the manifest (`spin-raw-component-route`).
    pub fn raw_route(&self) -> &str {
        &self.raw_route
    }

    /// [`RouteMatch::raw_route`] without a trailing `/...` (`spin-component-route`).
    /// Only the `/...` spelling is stripped: a route written `/x/*` stays `/x/*`.
    pub fn raw_route_or_prefix(&self) -> &str {
        self.raw_route
            .strip_suffix("/...")
            .unwrap_or(&self.raw_route)
    }

    /// The request path that matched.
    pub fn path(&self) -> &str {
        &self.path
    }

    /// The part of the path matched by a trailing wildcard (`spin-path-info`), as Spin
    /// computes it: "" when nothing is left or the route has no wildcard, otherwise the
    /// rest with a leading `/`, and a trailing `/` when the request path ends with one
    /// (route `/foo/...`: `/foo` → "", `/foo/` → "/", `/foo/a` → "/a", `/foo/a/` → "/a/").
    pub fn trailing_wildcard(&self) -> String {
        let Some(rest) = &self.wildcard else {
            return String::new();
        };
        match (rest.is_empty(), self.path.ends_with('/')) {
            (true, false) => String::new(),
            (true, true) => "/".into(),
            (false, false) => format!("/{rest}"),
            (false, true) => format!("/{rest}/"),
        }
    }

    /// The values of the route's `:name` segments, by name (still percent-encoded). When
    /// a name repeats, the last segment's value wins.
    pub fn named_wildcards(&self) -> BTreeMap<String, String> {
        self.named.iter().cloned().collect()
    }
}

/// What Spin answers itself under [`WELL_KNOWN_PREFIX`], before routing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WellKnown {
    /// `/.well-known/spin/health`: 200 with body `OK`.
    Health,
    /// `/.well-known/spin/info`: application information as JSON.
    Info,
    /// Anything else under the prefix: 404, whatever the application's routes.
    NotFound,
}

/// Classifies a request path that Spin handles itself, or `None` when it goes to the router.
pub fn well_known(path: &str) -> Option<WellKnown> {
    let rest = path.strip_prefix(WELL_KNOWN_PREFIX)?;
    Some(match rest {
        "health" => WellKnown::Health,
        "info" => WellKnown::Info,
        _ => WellKnown::NotFound,
    })
}

/// The authority a request is for, as Spin decides it: the `Host` header, else the
/// request-target's authority; when both are present they must be equal (ignoring
/// ASCII case), and one of them must be present.
pub fn request_authority<'a>(
    host_header: Option<&'a str>,
    uri_authority: Option<&'a str>,
) -> Result<&'a str, RouteError> {
    match (host_header, uri_authority) {
        (None, None) => Err(RouteError("no 'Host' header present in request".into())),
        (Some(a), None) | (None, Some(a)) => Ok(a),
        (Some(h), Some(u)) if h.eq_ignore_ascii_case(u) => Ok(h),
        (Some(_), Some(_)) => Err(RouteError(
            "authority in 'Host' header does not match authority in URI".into(),
        )),
    }
}

/// The `spin-full-url` value: `<scheme>://<host><path-and-query>`, with the `Host` header
/// as host (`localhost` when absent) and the server's scheme (`http` or `https`).
pub fn full_url(scheme: &str, host_header: Option<&str>, path_and_query: &str) -> String {
    format!(
        "{scheme}://{}{path_and_query}",
        host_header.unwrap_or("localhost")
    )
}

/// The header name Spin uses for an environment-style key: `_` → `-`, lower-cased
/// (`SPIN_PATH_MATCH_PAGE_ID` → `spin-path-match-page-id`).
pub fn spin_header_name(key: &str) -> String {
    key.replace('_', "-").to_ascii_lowercase()
}

/// The headers Spin adds to a request before handing it to a component, in Spin's order:
/// `spin-path-info`, `spin-full-url`, `spin-matched-route`, `spin-base-path` (always `/`),
/// `spin-raw-component-route`, `spin-component-route`, `spin-client-addr`, then one
/// `spin-path-match-<name>` per `:name` segment. Spin appends these after the request's
/// own headers (it does not remove a client-sent `spin-*` header first).
pub fn spin_request_headers(
    m: &RouteMatch,
    full_url: &str,
    client_addr: SocketAddr,
) -> Vec<(String, String)> {
    let mut headers = vec![
        ("spin-path-info".to_string(), m.trailing_wildcard()),
        ("spin-full-url".to_string(), full_url.to_string()),
        (
            "spin-matched-route".to_string(),
            m.based_route().to_string(),
        ),
        ("spin-base-path".to_string(), "/".to_string()),
        (
            "spin-raw-component-route".to_string(),
            m.raw_route().to_string(),
        ),
        (
            "spin-component-route".to_string(),
            m.raw_route_or_prefix().to_string(),
        ),
        ("spin-client-addr".to_string(), client_addr.to_string()),
    ];
    for (name, value) in m.named_wildcards() {
        let key = format!("SPIN_PATH_MATCH_{}", name.to_ascii_uppercase());
        headers.push((spin_header_name(&key), value));
    }
    headers
}

impl fmt::Display for RouteMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} -> {} ({})",
            self.path, self.component, self.based_route
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router(routes: &[(&str, &str)]) -> Router {
        let routes: Vec<HttpRoute> = routes
            .iter()
            .map(|(route, component)| HttpRoute::new(*route, *component))
            .collect();
        Router::new(&routes).expect("routes should be valid")
    }

    fn target(r: &Router, path: &str) -> Option<String> {
        r.route(path).map(|m| m.component_id().to_string())
    }

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    fn addr() -> SocketAddr {
        "127.0.0.1:8777".parse().unwrap()
    }

    // --- precedence ---

    #[test]
    fn precedence_table() {
        let r = router(&[
            ("/...", "catch-all"),
            ("/api/...", "api-any"),
            ("/api/:id", "api-param"),
            ("/api/health", "api-exact"),
            ("/api/v1/...", "api-v1"),
            ("/", "root"),
            ("/files/:name.json", "json-file"),
        ]);
        for (path, expected) in [
            ("/", "root"),
            ("/api/health", "api-exact"),
            ("/api/42", "api-param"),
            ("/api/42/more", "api-any"),
            ("/api", "api-any"),
            ("/api/v1/x/y", "api-v1"),
            ("/api/v1", "api-v1"),
            ("/elsewhere", "catch-all"),
            ("/elsewhere/deep/path", "catch-all"),
            ("/files/report.json", "json-file"),
            ("/files/report.txt", "catch-all"),
        ] {
            assert_eq!(target(&r, path).as_deref(), Some(expected), "path {path}");
        }
    }

    #[test]
    fn router_for_an_app_uses_its_http_routes() {
        let app = App::parse(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\n\
             [[trigger.http]]\nroute = \"/visit\"\ncomponent = \"visit\"\n\
             [[trigger.http]]\nroute = { private = true }\ncomponent = \"hidden\"\n\
             [component.visit]\nsource = \"v.wasm\"\n[component.hidden]\nsource = \"h.wasm\"\n",
            std::path::Path::new("."),
        )
        .unwrap();
        let r = Router::build(&app).unwrap();
        assert_eq!(target(&r, "/visit").as_deref(), Some("visit"));
        assert_eq!(r.routes().count(), 1);
    }

    #[test]
    fn exact_route_matches_only_its_path() {
        let r = router(&[("/foo", "foo"), ("/foo/bar", "foobar")]);
        assert_eq!(target(&r, "/foo").as_deref(), Some("foo"));
        assert_eq!(target(&r, "/foo/bar").as_deref(), Some("foobar"));
        assert_eq!(target(&r, "/foo/baz"), None);
        assert_eq!(target(&r, "/"), None);
    }

    #[test]
    fn exact_beats_wildcard_regardless_of_order() {
        let r = router(&[("/...", "wildcard"), ("/one", "exact")]);
        assert_eq!(target(&r, "/one").as_deref(), Some("exact"));
        let r = router(&[("/one", "exact"), ("/...", "wildcard")]);
        assert_eq!(target(&r, "/one").as_deref(), Some("exact"));
    }

    #[test]
    fn exact_beats_param_beats_wildcard() {
        let r = router(&[("/a/...", "wild"), ("/a/:p", "param"), ("/a/b", "exact")]);
        assert_eq!(target(&r, "/a/b").as_deref(), Some("exact"));
        assert_eq!(target(&r, "/a/c").as_deref(), Some("param"));
        assert_eq!(target(&r, "/a/c/d").as_deref(), Some("wild"));
    }

    #[test]
    fn longest_wildcard_prefix_wins_regardless_of_order() {
        let routes = [
            ("/one/...", "one"),
            ("/one/two/...", "onetwo"),
            ("/one/two/three/...", "onetwothree"),
        ];
        let mut reversed = routes;
        reversed.reverse();
        for order in [routes, reversed] {
            let r = router(&order);
            assert_eq!(
                target(&r, "/one/two/three/four").as_deref(),
                Some("onetwothree")
            );
            assert_eq!(target(&r, "/one/two/x").as_deref(), Some("onetwo"));
            assert_eq!(target(&r, "/one/x").as_deref(), Some("one"));
        }
    }

    #[test]
    fn root_wildcard_catches_everything() {
        let r = router(&[("/...", "all")]);
        for path in ["/", "/foo/bar", "/abc/", "/a/b/c/d/e"] {
            assert_eq!(target(&r, path).as_deref(), Some("all"), "{path}");
        }
    }

    #[test]
    fn equally_specific_routes_go_to_the_first_declared() {
        let r = router(&[("/a/:x", "first"), ("/a/:y", "second")]);
        assert_eq!(target(&r, "/a/1").as_deref(), Some("first"));
    }

    #[test]
    fn wildcard_prefix_does_not_match_a_longer_segment() {
        let r = router(&[("/static/...", "static")]);
        assert_eq!(target(&r, "/staticfiles"), None);
        assert_eq!(target(&r, "/static").as_deref(), Some("static"));
    }

    #[test]
    fn star_suffix_is_a_wildcard_too() {
        let r = router(&[("/x/*", "x")]);
        let m = r.route("/x/a/b").unwrap();
        assert_eq!(m.component_id(), "x");
        assert_eq!(m.trailing_wildcard(), "/a/b");
        // Only the `/...` spelling is stripped from the component route.
        assert_eq!(m.raw_route_or_prefix(), "/x/*");
    }

    #[test]
    fn no_route_means_no_match() {
        let r = router(&[("/visit", "visit")]);
        assert!(r.route("/other").is_none());
        assert!(Router::new(&[]).unwrap().route("/").is_none());
    }

    // --- trailing slashes, odd paths ---

    #[test]
    fn exact_route_ignores_trailing_slash_in_the_request() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(target(&r, "/foo/").as_deref(), Some("foo"));
    }

    #[test]
    fn trailing_slash_in_the_route_is_ignored() {
        let r = router(&[("/foo/", "foo")]);
        let m = r.route("/foo").unwrap();
        assert_eq!(m.based_route(), "/foo");
        assert_eq!(m.raw_route(), "/foo/");
    }

    #[test]
    fn route_without_leading_slash_is_absolutised() {
        let r = router(&[("foo", "foo")]);
        let m = r.route("/foo").unwrap();
        assert_eq!(m.based_route(), "/foo");
        assert_eq!(m.raw_route(), "foo");
    }

    #[test]
    fn root_route_matches_only_the_root() {
        let r = router(&[("/", "root")]);
        let m = r.route("/").unwrap();
        assert_eq!(m.based_route(), "");
        assert_eq!(m.raw_route(), "/");
        assert_eq!(target(&r, "/x"), None);
    }

    #[test]
    fn repeated_slashes_at_the_edges_of_the_path_are_ignored() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(target(&r, "//foo//").as_deref(), Some("foo"));
    }

    #[test]
    fn percent_encoded_paths_are_matched_without_decoding() {
        let r = router(&[("/a%20b", "encoded"), ("/p/:name", "param")]);
        assert_eq!(target(&r, "/a%20b").as_deref(), Some("encoded"));
        assert_eq!(target(&r, "/a b"), None);
        let m = r.route("/p/hello%2Fworld").unwrap();
        assert_eq!(m.named_wildcards()["name"], "hello%2Fworld");
    }

    #[test]
    fn trailing_wildcard_follows_spins_trailing_slash_rule() {
        let r = router(&[("/test/...", "t")]);
        for (path, info) in [
            ("/test", ""),
            ("/test/", "/"),
            ("/test/hello", "/hello"),
            ("/test/hello/", "/hello/"),
            ("/test/a/b/c", "/a/b/c"),
        ] {
            assert_eq!(r.route(path).unwrap().trailing_wildcard(), info, "{path}");
        }
    }

    #[test]
    fn trailing_wildcard_of_root_wildcard_is_the_whole_path() {
        let r = router(&[("/...", "all")]);
        assert_eq!(r.route("/1/2/3").unwrap().trailing_wildcard(), "/1/2/3");
        assert_eq!(r.route("/").unwrap().trailing_wildcard(), "/");
    }

    #[test]
    fn exact_route_has_empty_trailing_wildcard() {
        let r = router(&[("/foo", "foo")]);
        assert_eq!(r.route("/foo/").unwrap().trailing_wildcard(), "");
    }

    #[test]
    fn named_wildcards_are_captured() {
        let r = router(&[("/1/:two/3", "a"), ("/x/:user_id/...", "b")]);
        assert_eq!(r.route("/1/2/3").unwrap().named_wildcards()["two"], "2");
        let m = r.route("/x/42/rest").unwrap();
        assert_eq!(m.named_wildcards()["user_id"], "42");
        assert_eq!(m.trailing_wildcard(), "/rest");
    }

    // --- build-time rules ---

    #[test]
    fn duplicate_route_text_keeps_the_last_and_is_reported() {
        let r = router(&[("/", "root"), ("/foo", "first"), ("/foo", "second")]);
        assert_eq!(target(&r, "/foo").as_deref(), Some("second"));
        assert_eq!(
            r.duplicates(),
            [DuplicateRoute {
                route: "/foo".into(),
                replaced: "first".into(),
                effective: "second".into()
            }]
        );
        let order: Vec<&str> = r.routes().map(|(_, c)| c).collect();
        assert_eq!(order.len(), 2);
    }

    #[test]
    fn duplicate_root_route_is_reported_as_slash() {
        let r = router(&[("/", "a"), ("/", "b")]);
        assert_eq!(r.duplicates()[0].route, "/");
    }

    #[test]
    fn unnamed_param_is_an_error_naming_route_and_component() {
        let err = Router::new(&[HttpRoute::new("/a/:", "comp")]).unwrap_err();
        assert_eq!(
            err.0,
            "Error parsing route /a/: associated with component comp: params must be named"
        );
    }

    #[test]
    fn wildcard_in_the_middle_is_an_error() {
        assert!(Router::new(&[HttpRoute::new("/a/*/b", "comp")]).is_err());
    }

    #[test]
    fn reserved_routes_are_detected() {
        assert!(router(&[("/.well-known/spin/...", "c")]).contains_reserved_route());
        assert!(router(&[("/.well-known/spin/fie", "c")]).contains_reserved_route());
        assert!(!router(&[("/.well-known/spindle/...", "c")]).contains_reserved_route());
        assert!(!router(&[("/.well-known/spin", "c")]).contains_reserved_route());
    }

    #[test]
    fn base_is_prepended_to_routes() {
        let routes = [HttpRoute::new("/foo", "foo"), HttpRoute::new("/...", "all")];
        let r = Router::with_base("/base/", &routes).unwrap();
        assert_eq!(target(&r, "/base/foo").as_deref(), Some("foo"));
        let m = r.route("/base/x").unwrap();
        assert_eq!(m.component_id(), "all");
        assert_eq!(m.based_route(), "/base/...");
        assert_eq!(m.based_route_or_prefix(), "/base");
        assert_eq!(m.raw_route(), "/...");
        assert_eq!(m.trailing_wildcard(), "/x");
    }

    #[test]
    fn based_route_joins_like_spin() {
        assert_eq!(based_route("/", "/"), "");
        assert_eq!(based_route("/", "/foo/"), "/foo");
        assert_eq!(based_route("/", "foo"), "/foo");
        assert_eq!(based_route("/api/", "/x/..."), "/api/x/...");
        assert_eq!(based_route("/api", "/"), "/api");
    }

    // --- well-known, authority, full URL ---

    #[test]
    fn well_known_paths_are_classified() {
        assert_eq!(
            well_known("/.well-known/spin/health"),
            Some(WellKnown::Health)
        );
        assert_eq!(well_known("/.well-known/spin/info"), Some(WellKnown::Info));
        assert_eq!(
            well_known("/.well-known/spin/other"),
            Some(WellKnown::NotFound)
        );
        assert_eq!(
            well_known("/.well-known/spin/health/"),
            Some(WellKnown::NotFound)
        );
        assert_eq!(well_known("/.well-known/spin"), None);
        assert_eq!(well_known("/health"), None);
    }

    #[test]
    fn authority_comes_from_host_header_or_uri() {
        assert_eq!(request_authority(Some("a:1"), None), Ok("a:1"));
        assert_eq!(request_authority(None, Some("b:2")), Ok("b:2"));
        assert_eq!(request_authority(Some("A:1"), Some("a:1")), Ok("A:1"));
        assert!(request_authority(Some("a:1"), Some("b:1")).is_err());
        assert!(request_authority(None, None).is_err());
    }

    #[test]
    fn full_url_uses_scheme_host_header_and_path_and_query() {
        assert_eq!(
            full_url(
                "https",
                Some("fermyon.dev"),
                "/foo/bar?key1=value1&key2=value2"
            ),
            "https://fermyon.dev/foo/bar?key1=value1&key2=value2"
        );
        assert_eq!(full_url("http", None, "/x"), "http://localhost/x");
    }

    // --- headers ---

    #[test]
    fn headers_for_wildcard_route() {
        let r = router(&[("/foo/...", "dummy")]);
        let m = r.route("/foo/bar").unwrap();
        let url = "https://fermyon.dev/foo/bar?key1=value1&key2=value2";
        let h = spin_request_headers(&m, url, addr());
        assert_eq!(
            h,
            vec![
                ("spin-path-info".into(), "/bar".into()),
                ("spin-full-url".into(), url.into()),
                ("spin-matched-route".into(), "/foo/...".into()),
                ("spin-base-path".into(), "/".into()),
                ("spin-raw-component-route".into(), "/foo/...".into()),
                ("spin-component-route".into(), "/foo".into()),
                ("spin-client-addr".into(), "127.0.0.1:8777".into()),
            ]
        );
    }

    #[test]
    fn headers_for_named_wildcard_route() {
        let r = router(&[("/foo/:userid/...", "dummy")]);
        let m = r.route("/foo/42/bar").unwrap();
        let h = spin_request_headers(&m, "https://fermyon.dev/foo/42/bar", addr());
        assert_eq!(header(&h, "spin-path-info"), Some("/bar"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/foo/:userid/..."));
        assert_eq!(header(&h, "spin-component-route"), Some("/foo/:userid"));
        assert_eq!(
            header(&h, "spin-raw-component-route"),
            Some("/foo/:userid/...")
        );
        assert_eq!(header(&h, "spin-path-match-userid"), Some("42"));
    }

    #[test]
    fn headers_for_exact_route() {
        let r = router(&[("/visit", "visit")]);
        let m = r.route("/visit").unwrap();
        let h = spin_request_headers(&m, "http://localhost:3000/visit", addr());
        assert_eq!(header(&h, "spin-path-info"), Some(""));
        assert_eq!(header(&h, "spin-matched-route"), Some("/visit"));
        assert_eq!(header(&h, "spin-component-route"), Some("/visit"));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/visit"));
        assert_eq!(header(&h, "spin-base-path"), Some("/"));
        assert_eq!(h.len(), 7);
    }

    #[test]
    fn headers_for_root_route_report_empty_matched_route() {
        let r = router(&[("/", "root")]);
        let m = r.route("/").unwrap();
        let h = spin_request_headers(&m, "http://localhost/", addr());
        assert_eq!(header(&h, "spin-matched-route"), Some(""));
        assert_eq!(header(&h, "spin-raw-component-route"), Some("/"));
        assert_eq!(header(&h, "spin-component-route"), Some("/"));
    }

    #[test]
    fn headers_for_root_wildcard() {
        let r = router(&[("/...", "all")]);
        let m = r.route("/a/b/").unwrap();
        let h = spin_request_headers(&m, "http://localhost/a/b/", addr());
        assert_eq!(header(&h, "spin-path-info"), Some("/a/b/"));
        assert_eq!(header(&h, "spin-matched-route"), Some("/..."));
        assert_eq!(header(&h, "spin-component-route"), Some(""));
    }

    #[test]
    fn path_match_header_names_convert_underscores_to_hyphens() {
        let r = router(&[("/p/:page_id/:userId", "c")]);
        let m = r.route("/p/7/u9").unwrap();
        let h = spin_request_headers(&m, "http://localhost/p/7/u9", addr());
        assert_eq!(header(&h, "spin-path-match-page-id"), Some("7"));
        assert_eq!(header(&h, "spin-path-match-userid"), Some("u9"));
    }

    #[test]
    fn client_addr_header_formats_ipv6_with_brackets() {
        let r = router(&[("/", "root")]);
        let m = r.route("/").unwrap();
        let ipv6: SocketAddr = "[::1]:4000".parse().unwrap();
        let h = spin_request_headers(&m, "http://localhost/", ipv6);
        assert_eq!(header(&h, "spin-client-addr"), Some("[::1]:4000"));
    }

    #[test]
    fn spin_header_name_lowercases_and_hyphenates() {
        assert_eq!(spin_header_name("SPIN_FULL_URL"), "spin-full-url");
        assert_eq!(
            spin_header_name("SPIN_RAW_COMPONENT_ROUTE"),
            "spin-raw-component-route"
        );
    }
}
