//! `allowed_outbound_hosts`: which network addresses a component may connect to.
//!
//! Spin denies every outbound connection (HTTP, Redis, databases, …) that no entry of the
//! component's `allowed_outbound_hosts` allows. A host that allowed more would hide a
//! missing permission that breaks the application under real Spin, so this module follows
//! Spin's `allowed_hosts.rs`: entry syntax `<scheme>://<host>[:<port>]` with `*`
//! wildcards, `*.domain` subdomains, CIDR blocks, `self`, port ranges, default ports per
//! scheme, `{{ variable }}` templates, and the parsing of the URLs being checked.

use std::net::IpAddr;

use ipnet::IpNet;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use url::Host;

use crate::variables::{Template, VariableSource};

/// An invalid `allowed_outbound_hosts` configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct AllowedHostsError(pub String);

fn err<T>(msg: impl Into<String>) -> Result<T, AllowedHostsError> {
    Err(AllowedHostsError(msg.into()))
}

/// The port Spin assumes for a scheme when an entry or a URL gives none.
pub fn well_known_port(scheme: &str) -> Option<u16> {
    match scheme {
        "postgres" => Some(5432),
        "mysql" => Some(3306),
        "redis" => Some(6379),
        "mqtt" => Some(1883),
        "http" => Some(80),
        "https" => Some(443),
        _ => None,
    }
}

/// The scheme part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SchemeRule {
    /// `*://`
    Any,
    /// One scheme, compared exactly (so `HTTP://` never matches: URL schemes are lower-case).
    Exact(String),
}

impl SchemeRule {
    fn parse(scheme: &str) -> Result<Self, String> {
        if scheme == "*" {
            return Ok(Self::Any);
        }
        if scheme.starts_with('{') {
            return Err("scheme lists are not supported".into());
        }
        if scheme.chars().any(|c| !c.is_alphabetic()) {
            return Err("only alphabetic characters are allowed".into());
        }
        Ok(Self::Exact(scheme.to_string()))
    }

    fn allows(&self, scheme: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(s) => s == scheme,
        }
    }
}

/// The host part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostRule {
    /// `*`: any host.
    Any,
    /// `*.example.com`: any subdomain (stored as `.example.com`), not the domain itself.
    AnySubdomain(String),
    /// `self` or `self.alt`: relative requests to the application itself.
    ToSelf,
    /// One host name or IP address.
    Literal(Host),
    /// An IP network, `10.0.0.0/8` (host bits are dropped: `127.0.0.1/24` is `127.0.0.0/24`).
    Cidr(IpNet),
}

impl HostRule {
    fn parse(host: &str) -> Result<Self, String> {
        let host = host.trim();
        if host == "*" {
            return Ok(Self::Any);
        }
        if host == "self" || host == "self.alt" {
            return Ok(Self::ToSelf);
        }
        if host.starts_with('{') {
            if !host.ends_with('}') {
                return Err("unterminated host list".into());
            }
            return Err("host lists are not yet supported".into());
        }
        if let Some(net) = parse_cidr(host) {
            return Ok(Self::Cidr(net));
        }
        let host = host.strip_suffix('/').unwrap_or(host);
        if host.contains('/') {
            return Err("must not include a path".into());
        }
        if let Some(domain) = host.strip_prefix("*.") {
            if domain.contains('*') {
                return Err("wildcards are allowed only as prefixes".into());
            }
            return match Host::parse(domain) {
                Ok(Host::Domain(d)) => Ok(Self::AnySubdomain(format!(".{d}"))),
                Ok(_) => Err("wildcard suffix must be a domain".into()),
                Err(e) => Err(format!("invalid wildcard host \"*.{domain}\": {e}")),
            };
        }
        if host.contains('*') {
            return Err("wildcards are allowed only as subdomains".into());
        }
        Host::parse(host)
            .map(Self::Literal)
            .map_err(|e| e.to_string())
    }

    fn allows(&self, host: &str) -> bool {
        let Ok(host) = Host::parse(host) else {
            return false;
        };
        match (self, host) {
            (Self::Any, _) => true,
            (Self::AnySubdomain(suffix), Host::Domain(d)) => d.ends_with(suffix.as_str()),
            (Self::Literal(literal), host) => host == *literal,
            (Self::Cidr(net), Host::Ipv4(ip)) => net.contains(&IpAddr::V4(ip)),
            (Self::Cidr(net), Host::Ipv6(ip)) => net.contains(&IpAddr::V6(ip)),
            (Self::AnySubdomain(_), _) | (Self::Cidr(_), Host::Domain(_)) | (Self::ToSelf, _) => {
                false
            }
        }
    }
}

/// `addr/prefix` → network with host bits cleared; anything else (a bare address, a bad
/// prefix length) is not a CIDR. An address containing `:` is read as IPv6.
fn parse_cidr(s: &str) -> Option<IpNet> {
    let (addr, prefix) = s.split_once('/')?;
    if addr.is_empty() || prefix.is_empty() {
        return None;
    }
    let addr: IpAddr = if addr.contains(':') {
        IpAddr::V6(addr.parse().ok()?)
    } else {
        IpAddr::V4(addr.parse().ok()?)
    };
    let prefix: u8 = prefix.parse().ok()?;
    IpNet::new(addr, prefix).ok().map(|n| n.trunc())
}

/// The port part of an entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PortRule {
    /// `:*`
    Any,
    /// One port (explicit, or the scheme's well-known port when omitted).
    Port(u16),
    /// `:a..b`: ports `a` up to but not including `b`.
    Range(u16, u16),
}

impl PortRule {
    fn parse(port: &str, scheme: &str) -> Result<Self, String> {
        if port.is_empty() {
            return well_known_port(scheme).map(Self::Port).ok_or_else(|| {
                format!("no port was provided and the scheme {scheme:?} does not have a known default port number")
            });
        }
        if port == "*" {
            return Ok(Self::Any);
        }
        if port.starts_with('{') {
            return Err("port lists are not yet supported".into());
        }
        if let Some((start, end)) = port.split_once("..") {
            let bad = || format!("port range {port:?} contains non-number");
            let start = start.parse().map_err(|_| bad())?;
            let end = end.parse().map_err(|_| bad())?;
            return Ok(Self::Range(start, end));
        }
        port.parse()
            .map(Self::Port)
            .map_err(|_| format!("port {port:?} is not a number"))
    }

    fn allows(&self, port: Option<u16>, scheme: &str) -> bool {
        let port = match self {
            Self::Any => return true,
            _ => match port.or_else(|| well_known_port(scheme)) {
                Some(p) => p,
                None => return false,
            },
        };
        match self {
            Self::Any => true,
            Self::Port(p) => *p == port,
            Self::Range(start, end) => (*start..*end).contains(&port),
        }
    }
}

/// One parsed `allowed_outbound_hosts` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    /// The entry as written (after template resolution).
    pub original: String,
    /// The scheme rule.
    pub scheme: SchemeRule,
    /// The host rule.
    pub host: HostRule,
    /// The port rule.
    pub port: PortRule,
}

impl AllowedHost {
    /// Parses one entry (no templates).
    pub fn parse(entry: &str) -> Result<Self, AllowedHostsError> {
        let url = entry.trim();
        let Some((scheme, rest)) = url.split_once("://") else {
            return match url {
                "*" | ":" | "" | "?" => err(format!(
                    "{url:?} is not an allowed outbound host format.\nHosts must be in the form \
                     <scheme>://<host>[:<port>], with '*' wildcards allowed for each.\nIf you \
                     intended to allow all outbound networking, you can use '*://*:*' - this \
                     will obviate all network sandboxing."
                )),
                _ => err(format!(
                    "{url:?} does not contain a scheme (e.g., 'http://' or '*://')"
                )),
            };
        };
        // Split host and port at the last ':', unless the whole rest is a host (IPv6, CIDR).
        let (host, port) = match rest.rsplit_once(':') {
            None => (rest, ""),
            Some((h, "")) => (h, ""),
            Some((h, tail)) => {
                if HostRule::parse(rest).is_ok() {
                    (rest, "")
                } else {
                    let port = match tail.split_once('/') {
                        Some((port, path)) => {
                            if !path.is_empty() {
                                return err(format!("{url:?} has a path but is not allowed to"));
                            }
                            port
                        }
                        None => tail,
                    };
                    (h, port)
                }
            }
        };
        let port = PortRule::parse(port, scheme)
            .map_err(|e| AllowedHostsError(format!("Invalid allowed host port {port:?}: {e}")))?;
        let scheme_rule = SchemeRule::parse(scheme).map_err(|e| {
            AllowedHostsError(format!("Invalid allowed host scheme {scheme:?}: {e}"))
        })?;
        let host = HostRule::parse(host)
            .map_err(|e| AllowedHostsError(format!("Invalid allowed host {host:?}: {e}")))?;
        Ok(Self {
            original: entry.to_string(),
            scheme: scheme_rule,
            host,
            port,
        })
    }

    /// True when this entry allows `url`.
    pub fn allows_url(&self, url: &OutboundUrl) -> bool {
        self.scheme.allows(&url.scheme)
            && self.host.allows(&url.host)
            && self.port.allows(url.port, &url.scheme)
    }

    /// True when this entry allows relative requests ("self") for one of `schemes`.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        schemes.iter().any(|s| self.scheme.allows(s))
            && matches!(self.host, HostRule::Any | HostRule::ToSelf)
    }
}

/// A component's parsed `allowed_outbound_hosts`. Empty means nothing is allowed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts {
    entries: Vec<AllowedHost>,
}

impl AllowedHosts {
    /// Parses a component's entries, rendering `{{ variable }}` templates with `variables`.
    /// A templated entry that renders to "", `http://` or `https://` is skipped (an
    /// optional endpoint left unset); a literal "" is an error. `insecure:allow-all` is
    /// refused.
    pub fn parse<S: AsRef<str>>(
        entries: &[S],
        variables: &(impl VariableSource + ?Sized),
    ) -> Result<Self, AllowedHostsError> {
        let mut parsed = Vec::new();
        for (entry, template) in Self::templates(entries)? {
            if template.is_literal() {
                parsed.push(AllowedHost::parse(entry)?);
                continue;
            }
            let rendered = template.render(variables).map_err(|e| {
                AllowedHostsError(format!("cannot resolve allowed host {entry:?}: {e}"))
            })?;
            if rendered.is_empty() || rendered == "http://" || rendered == "https://" {
                continue;
            }
            let host = AllowedHost::parse(&rendered).map_err(|e| {
                AllowedHostsError(format!(
                    "allowed host {entry:?} resolves to invalid {rendered:?}: {e}"
                ))
            })?;
            parsed.push(host);
        }
        Ok(Self { entries: parsed })
    }

    /// Checks entries without variable values (as Spin does when loading the manifest):
    /// literal entries must parse, templated ones must be valid templates.
    pub fn validate<S: AsRef<str>>(entries: &[S]) -> Result<(), AllowedHostsError> {
        for (entry, template) in Self::templates(entries)? {
            if template.is_literal() {
                AllowedHost::parse(entry)?;
            }
        }
        Ok(())
    }

    fn templates<S: AsRef<str>>(entries: &[S]) -> Result<Vec<(&str, Template)>, AllowedHostsError> {
        if entries.len() == 1 && entries[0].as_ref() == "insecure:allow-all" {
            return err(
                "'insecure:allow-all' is not allowed - use '*://*:*' instead if you really want \
                 to allow all outbound traffic'",
            );
        }
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref();
                Template::parse(e)
                    .map(|t| (e, t))
                    .map_err(|v| AllowedHostsError(format!("allowed host {e:?}: {v}")))
            })
            .collect()
    }

    /// The parsed entries.
    pub fn entries(&self) -> &[AllowedHost] {
        &self.entries
    }

    /// True when no entry is configured (every outbound connection is denied).
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when an outbound connection to `url` is allowed. `url` may lack a scheme
    /// (`127.0.0.1:6379`), in which case `scheme` is assumed; userinfo is ignored; a URL
    /// that cannot be parsed is not allowed.
    pub fn allows(&self, url: &str, scheme: &str) -> bool {
        match OutboundUrl::parse(url, scheme) {
            Ok(url) => self.allows_url(&url),
            Err(_) => false,
        }
    }

    /// [`AllowedHosts::allows`] for an already parsed URL.
    pub fn allows_url(&self, url: &OutboundUrl) -> bool {
        self.entries.iter().any(|e| e.allows_url(url))
    }

    /// True when relative requests (to the application itself) with one of `schemes` are
    /// allowed: an entry with host `self` or `*`.
    pub fn allows_relative(&self, schemes: &[&str]) -> bool {
        self.entries.iter().any(|e| e.allows_relative(schemes))
    }
}

/// Characters `urlencoding::encode` leaves alone: ASCII alphanumerics and `-_.~`.
const USERINFO_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// An outbound address as Spin reads it for the allowed-hosts check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundUrl {
    /// The URL's scheme (lower-case).
    pub scheme: String,
    /// The host (IPv6 in brackets, domains lower-cased).
    pub host: String,
    /// The explicit port, or `None` when absent or the scheme's URL default (`http://x:80`).
    pub port: Option<u16>,
}

impl OutboundUrl {
    /// Parses `url`. Userinfo is percent-encoded first (so passwords with `#`, `/`, `@`
    /// do not break parsing); when the result is not a URL with a host, `<scheme>://` is
    /// prepended and parsing retried.
    pub fn parse(url: &str, scheme: &str) -> Result<Self, AllowedHostsError> {
        let mut url = url.to_string();
        if let Some(at) = url.find('@') {
            let scheme_end = url.find("://").map(|i| i + 3).unwrap_or(0);
            let path_start = url[scheme_end..]
                .find('/')
                .map(|i| i + scheme_end)
                .unwrap_or(usize::MAX);
            if scheme_end <= at && at < path_start {
                let encoded = utf8_percent_encode(&url[scheme_end..at], USERINFO_ENCODE);
                url = format!("{}{encoded}{}", &url[..scheme_end], &url[at..]);
            }
        }
        let parsed = match url::Url::parse(&url) {
            Ok(u) if u.has_host() => u,
            first => match url::Url::parse(&format!("{scheme}://{url}")) {
                Ok(u) => u,
                Err(second) => {
                    let e = first.err().map_or(second.to_string(), |e| e.to_string());
                    return err(format!("cannot parse outbound URL {url:?}: {e}"));
                }
            },
        };
        let Some(host) = parsed.host_str() else {
            return err(format!("{url:?} does not have a host component"));
        };
        Ok(Self {
            scheme: parsed.scheme().to_string(),
            host: host.to_string(),
            port: parsed.port(),
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn hosts(entries: &[&str]) -> AllowedHosts {
        AllowedHosts::parse(entries, &vars(&[]))
            .unwrap_or_else(|e| panic!("{entries:?} should parse: {e}"))
    }

    fn entry(e: &str) -> AllowedHost {
        AllowedHost::parse(e).unwrap_or_else(|err| panic!("{e}: {err}"))
    }

    fn literal(h: &str) -> HostRule {
        HostRule::Literal(Host::parse(h).unwrap())
    }

    // --- the matching table ---

    #[test]
    fn entries_times_urls_table() {
        let cases: &[(&str, &str, &str, bool)] = &[
            // entry, url, scheme, allowed
            (
                "redis://127.0.0.1:6379",
                "redis://127.0.0.1:6379",
                "redis",
                true,
            ),
            ("redis://127.0.0.1:6379", "redis://127.0.0.1", "redis", true),
            (
                "redis://127.0.0.1:6379",
                "redis://127.0.0.1:6380",
                "redis",
                false,
            ),
            (
                "redis://127.0.0.1",
                "redis://127.0.0.1:6379/0",
                "redis",
                true,
            ),
            (
                "redis://127.0.0.1",
                "redis://:password@127.0.0.1:6380/0",
                "redis",
                false,
            ),
            (
                "redis://127.0.0.1:6380",
                "redis://:password@127.0.0.1:6380/0",
                "redis",
                true,
            ),
            (
                "redis://127.0.0.1:6380",
                "redis://user:p#ss@w@rd@127.0.0.1:6380",
                "redis",
                true,
            ),
            // Spin's userinfo encoding stops at the first '/', so a '/' in a password
            // breaks parsing (a limitation Spin's source notes).
            (
                "redis://127.0.0.1:6380",
                "redis://user:p#ss/w@rd@127.0.0.1:6380",
                "redis",
                false,
            ),
            ("redis://127.0.0.1:*", "redis://127.0.0.1:1", "redis", true),
            (
                "redis://127.0.0.1",
                "redis://localhost:6379",
                "redis",
                false,
            ),
            (
                "redis://localhost",
                "redis://127.0.0.1:6379",
                "redis",
                false,
            ),
            ("redis://127.0.0.1:6379", "127.0.0.1:6379", "redis", true),
            (
                "redis://127.0.0.1:6379",
                "rediss://127.0.0.1:6379",
                "redis",
                false,
            ),
            (
                "*://127.0.0.1:6379",
                "rediss://127.0.0.1:6379",
                "rediss",
                true,
            ),
            ("*://*:*", "anything://example.com:1", "x", true),
            ("http://*", "http://example.com", "http", true),
            ("http://*", "http://example.com:8080", "http", false),
            ("http://*:*", "http://example.com:8080", "http", true),
            (
                "https://example.com",
                "https://example.com/path?q=1",
                "https",
                true,
            ),
            (
                "https://example.com",
                "https://example.com:443",
                "https",
                true,
            ),
            ("https://example.com", "http://example.com", "http", false),
            ("https://example.com", "https://EXAMPLE.com", "https", true),
            (
                "https://example.com",
                "https://sub.example.com",
                "https",
                false,
            ),
            ("http://*.example.com", "http://a.example.com", "http", true),
            (
                "http://*.example.com",
                "http://a.b.example.com/x",
                "http",
                true,
            ),
            ("http://*.example.com", "http://example.com", "http", false),
            (
                "http://*.example.com",
                "http://myexample.com",
                "http",
                false,
            ),
            ("http://*.example.com", "http://127.0.0.1", "http", false),
            ("http://10.0.0.0/8", "http://10.1.2.3", "http", true),
            ("http://10.0.0.0/8", "http://11.1.2.3", "http", false),
            ("http://10.0.0.0/8", "http://example.com", "http", false),
            (
                "*://127.0.0.1/24:63551",
                "tcp://127.0.0.1:63551",
                "tcp",
                true,
            ),
            (
                "*://127.0.0.1/24:63551",
                "tcp://127.0.0.200:63551",
                "tcp",
                true,
            ),
            (
                "*://127.0.0.1/24:63551",
                "tcp://127.0.1.1:63551",
                "tcp",
                false,
            ),
            ("http://[::1]", "http://[::1]/some/path", "http", true),
            ("http://[::1]", "http://[::1]:80", "http", true),
            ("http://[::1]", "http://[::2]", "http", false),
            ("http://[::1]", "http://[::1]:81", "http", false),
            (
                "http://2001:db8::/32",
                "http://[2001:db8:abcd::1]/x",
                "http",
                true,
            ),
            (
                "http://2001:db8::/32",
                "http://[2001:db9::1]",
                "http",
                false,
            ),
            ("mysql://db:3300..3310", "mysql://db:3305", "mysql", true),
            ("mysql://db:3300..3310", "mysql://db:3310", "mysql", false),
            ("mysql://db:3300..3310", "mysql://db", "mysql", true), // 3306 is in range,
            ("postgres://db", "postgres://db", "postgres", true),
            ("mqtt://broker", "mqtt://broker:1883", "mqtt", true),
            (
                "mysql://xyz.com",
                "mysql://user:pass#word@xyz.com",
                "mysql",
                true,
            ),
            (
                "mysql://xyz.com",
                "user%3Apass%23word@xyz.com",
                "mysql",
                true,
            ),
        ];
        for (e, url, scheme, expected) in cases {
            let h = hosts(&[e]);
            assert_eq!(
                h.allows(url, scheme),
                *expected,
                "entry {e:?}, url {url:?}, scheme {scheme:?}"
            );
        }
    }

    #[test]
    fn no_entries_allow_nothing() {
        let h = hosts(&[]);
        assert!(h.is_empty());
        assert!(!h.allows("http://example.com", "http"));
    }

    #[test]
    fn any_entry_may_allow() {
        let h = hosts(&["redis://a:1", "redis://b:2"]);
        assert!(h.allows("redis://b:2", "redis"));
        assert!(!h.allows("redis://a:2", "redis"));
    }

    #[test]
    fn unparsable_url_is_not_allowed() {
        let h = hosts(&["*://*:*"]);
        assert!(!h.allows("", "http"));
        assert!(!h.allows(":", "http"));
    }

    #[test]
    fn scheme_argument_is_only_a_fallback_for_urls_without_one() {
        let h = hosts(&["http://example.com"]);
        assert!(h.allows("http://example.com", "redis"));
        assert!(h.allows("example.com", "http"));
        assert!(!h.allows("example.com", "redis"));
    }

    #[test]
    fn url_without_port_for_scheme_without_default_matches_only_any_port() {
        assert!(!hosts(&["tcp://h:80"]).allows("tcp://h", "tcp"));
        assert!(hosts(&["tcp://h:*"]).allows("tcp://h", "tcp"));
    }

    #[test]
    fn rediss_has_no_default_port_so_entries_and_urls_name_one() {
        // Spin knows no well-known port for rediss: an entry without one does not parse...
        let err = AllowedHosts::parse(&["rediss://cache.example.com"], &vars(&[])).unwrap_err();
        assert!(err.0.contains("no port was provided"), "{}", err.0);
        // ...and a URL without one is allowed only by an entry for any port.
        let h = hosts(&["rediss://cache.example.com:6380"]);
        assert!(h.allows("rediss://:pw@cache.example.com:6380", "rediss"));
        assert!(!h.allows("rediss://cache.example.com", "rediss"));
        assert!(!h.allows("redis://cache.example.com:6380", "redis"));
        // Tally's manifest lists both schemes for the same hosts.
        let h = hosts(&["redis://*.example.com:6379", "rediss://*.example.com:6379"]);
        assert!(h.allows("rediss://a.example.com:6379", "rediss"));
        assert!(h.allows("redis://a.example.com:6379", "redis"));
    }

    #[test]
    fn uppercase_entry_scheme_never_matches() {
        assert!(!hosts(&["HTTP://example.com:80"]).allows("http://example.com", "http"));
    }

    #[test]
    fn relative_requests_need_self_or_any_host() {
        assert!(hosts(&["http://self"]).allows_relative(&["http"]));
        assert!(hosts(&["http://self.alt"]).allows_relative(&["http", "https"]));
        assert!(hosts(&["*://*:*"]).allows_relative(&["https"]));
        assert!(!hosts(&["https://self"]).allows_relative(&["http"]));
        assert!(!hosts(&["http://localhost"]).allows_relative(&["http"]));
        assert!(!hosts(&["http://self"]).allows("http://self", "http"));
    }

    // --- entry parsing ---

    #[test]
    fn omitted_port_is_the_schemes_well_known_port() {
        for (e, port) in [
            ("http://h", 80),
            ("https://h", 443),
            ("redis://h", 6379),
            ("postgres://h", 5432),
            ("mysql://h", 3306),
            ("mqtt://h", 1883),
        ] {
            assert_eq!(entry(e).port, PortRule::Port(port), "{e}");
        }
    }

    #[test]
    fn omitted_port_for_scheme_without_default_is_an_error() {
        for e in ["tcp://h", "*://example.com", "rediss://h", "postgresql://h"] {
            let msg = AllowedHost::parse(e).unwrap_err().0;
            assert!(
                msg.contains("does not have a known default port"),
                "{e}: {msg}"
            );
        }
    }

    #[test]
    fn explicit_ports_wildcards_and_ranges_parse() {
        assert_eq!(entry("http://h:4444").port, PortRule::Port(4444));
        assert_eq!(entry("http://h:*").port, PortRule::Any);
        assert_eq!(
            entry("http://h:8000..9000").port,
            PortRule::Range(8000, 9000)
        );
        assert_eq!(entry("http://h:8080/").port, PortRule::Port(8080));
    }

    #[test]
    fn hosts_parse_into_their_kinds() {
        assert_eq!(entry("http://*").host, HostRule::Any);
        assert_eq!(entry("http://self").host, HostRule::ToSelf);
        assert_eq!(entry("http://self.alt").host, HostRule::ToSelf);
        assert_eq!(
            entry("http://*.Example.COM").host,
            HostRule::AnySubdomain(".example.com".into())
        );
        assert_eq!(
            entry("http://spin.fermyon.dev").host,
            literal("spin.fermyon.dev")
        );
        assert_eq!(
            entry("http://spin.fermyon.dev/").host,
            literal("spin.fermyon.dev")
        );
        assert_eq!(entry("http://127.0.0.1").host, literal("127.0.0.1"));
        assert_eq!(
            entry("http://127.0.0.1/24").host,
            HostRule::Cidr("127.0.0.0/24".parse().unwrap())
        );
    }

    #[test]
    fn schemes_parse_into_their_kinds() {
        assert_eq!(entry("*://h:1").scheme, SchemeRule::Any);
        assert_eq!(entry("redis://h").scheme, SchemeRule::Exact("redis".into()));
    }

    #[test]
    fn ipv6_literals_and_cidrs_parse_with_and_without_port() {
        for (e, host, port) in [
            ("http://[::1]", literal("[::1]"), PortRule::Port(80)),
            ("https://[::1]", literal("[::1]"), PortRule::Port(443)),
            (
                "http://[2001:db8::1]:443",
                literal("[2001:db8::1]"),
                PortRule::Port(443),
            ),
            ("http://[::1]:*", literal("[::1]"), PortRule::Any),
            (
                "http://[::1]:8000..9000",
                literal("[::1]"),
                PortRule::Range(8000, 9000),
            ),
            ("http://[::1]:8080/", literal("[::1]"), PortRule::Port(8080)),
            (
                "http://ff00::/8",
                HostRule::Cidr("ff00::/8".parse().unwrap()),
                PortRule::Port(80),
            ),
            (
                "http://::1/128",
                HostRule::Cidr("::1/128".parse().unwrap()),
                PortRule::Port(80),
            ),
            (
                "http://2001:db8::/32:443",
                HostRule::Cidr("2001:db8::/32".parse().unwrap()),
                PortRule::Port(443),
            ),
        ] {
            let parsed = entry(e);
            assert_eq!((parsed.host, parsed.port), (host, port), "{e}");
        }
    }

    #[test]
    fn entries_spin_rejects_are_rejected() {
        for bad in [
            "http://example.com:notaport",
            "http://example.com:8080..70000",
            "http://self:notaport",
            "http://*:notaport",
            "http://127.0.0.1:notaport",
            "http://[::1]:notaport",
            "http://*.example.com:8080..",
            "http://*.example.com:8O8O",
            "http://example.com:8080/p",
            "http://*.example.com/p",
            "http://127.0.0.0/24/p",
            "http://[::1]/foo",
            "http://ff00::/8/extra",
            "http://[::1",
            "http://[::1]junk",
            "http://[::1]::80",
            "http://*.",
            "http://*.:8080",
            "http://example%.com",
            "http://exa[mple.com",
            r"http://exa\mple.com",
            "http://example.com:80:90",
            "http://example.com//",
            "http://*.127.0.0.1",
            "http://*.[::1]",
            "http://ex*ample.com",
            "http://*.*.example.com",
            "ht-tp://example.com:80",
            "{http,https}://example.com:80",
            "http://{a,b}",
            "http://a:{80,81}",
            "example.com:8080",
            "[::1]:8080",
            "*",
            "",
        ] {
            assert!(
                AllowedHost::parse(bad).is_err(),
                "{bad:?} should be rejected"
            );
        }
    }

    #[test]
    fn entry_without_scheme_explains_the_format() {
        let msg = AllowedHost::parse("example.com").unwrap_err().0;
        assert!(msg.contains("does not contain a scheme"), "{msg}");
        let msg = AllowedHost::parse("*").unwrap_err().0;
        assert!(msg.contains("'*://*:*'"), "{msg}");
    }

    #[test]
    fn invalid_port_message_names_the_port() {
        let msg = AllowedHost::parse("http://example.com:99999")
            .unwrap_err()
            .0;
        assert!(
            msg.starts_with("Invalid allowed host port \"99999\""),
            "{msg}"
        );
    }

    #[test]
    fn insecure_allow_all_is_rejected() {
        let e = AllowedHosts::parse(&["insecure:allow-all"], &vars(&[])).unwrap_err();
        assert!(e.0.contains("'*://*:*'"), "{e}");
        assert!(AllowedHosts::validate(&["insecure:allow-all"]).is_err());
        assert!(AllowedHosts::parse(&["http://a", "insecure:allow-all"], &vars(&[])).is_err());
    }

    #[test]
    fn one_invalid_entry_fails_the_whole_list() {
        assert!(AllowedHosts::parse(&["http://x.y", "zootle! wurdl!"], &vars(&[])).is_err());
    }

    // --- templates ---

    #[test]
    fn templates_are_resolved_through_variables() {
        let v = vars(&[("host", "example.com"), ("port", "1234")]);
        let h = AllowedHosts::parse(&["http://{{ host }}:{{ port }}"], &v).unwrap();
        assert!(h.allows("http://example.com:1234", "http"));
        assert!(!h.allows("http://example.com", "http"));
    }

    #[test]
    fn whole_entry_may_come_from_a_variable() {
        let v = vars(&[("redis_url", "redis://127.0.0.1:6380")]);
        let h = AllowedHosts::parse(&["{{ redis_url }}"], &v).unwrap();
        assert!(h.allows("redis://127.0.0.1:6380/0", "redis"));
    }

    #[test]
    fn templated_entry_resolving_to_empty_is_skipped() {
        let v = vars(&[("one", ""), ("two", "")]);
        let h = AllowedHosts::parse(
            &[
                "https://{{ one }}",
                "{{ two }}",
                "http://{{one}}",
                "https://three",
            ],
            &v,
        )
        .unwrap();
        assert_eq!(h.entries().len(), 1);
        assert_eq!(h.entries()[0].host, literal("three"));
    }

    #[test]
    fn literal_empty_entry_is_an_error() {
        assert!(AllowedHosts::parse(&[""], &vars(&[])).is_err());
    }

    #[test]
    fn templated_entry_resolving_to_garbage_is_an_error_naming_both() {
        let v = vars(&[("dbhost", "zoinks, Scooby!")]);
        let e = AllowedHosts::parse(&["http://{{ dbhost }}"], &v).unwrap_err();
        assert!(
            e.0.contains("{{ dbhost }}") && e.0.contains("zoinks"),
            "{e}"
        );
    }

    #[test]
    fn template_with_unknown_variable_is_an_error() {
        let e = AllowedHosts::parse(&["http://{{ nope }}"], &vars(&[])).unwrap_err();
        assert!(e.0.contains("nope"), "{e}");
    }

    #[test]
    fn template_with_unmatched_braces_is_an_error() {
        assert!(AllowedHosts::parse(&["http://{{ host"], &vars(&[])).is_err());
        assert!(AllowedHosts::validate(&["http://{{ host"]).is_err());
    }

    #[test]
    fn validate_checks_literals_and_defers_templates() {
        AllowedHosts::validate(&["http://x.y", "*://my.db:*", "http://{{ dbhost }}"]).unwrap();
        assert!(AllowedHosts::validate(&["http://x.y", "}{ !!**"]).is_err());
    }

    #[test]
    fn resolver_is_a_variable_source_for_templates() {
        use crate::manifest::VariableDecl;
        use crate::variables::Resolver;
        let decls = BTreeMap::from([(
            "redis_host".to_string(),
            VariableDecl {
                default: Some("127.0.0.1".into()),
                required: false,
                secret: false,
            },
        )]);
        let r = std::sync::Arc::new(Resolver::with_providers(&decls, [], &[]).unwrap());
        let h = AllowedHosts::parse(&["redis://{{ redis_host }}"], &r).unwrap();
        assert!(h.allows("redis://127.0.0.1", "redis"));
    }

    // --- outbound URL parsing ---

    #[test]
    fn outbound_url_ignores_at_signs_in_paths_and_userinfo() {
        for url in [
            "https://example.com/file@0.1.0.json",
            "https://user:password@example.com/file@0.1.0.json",
            "https://user:pass#word@example.com/file@0.1.0.json",
            "https://user:password@example.com",
        ] {
            assert_eq!(
                OutboundUrl::parse(url, "https").unwrap().host,
                "example.com",
                "{url}"
            );
        }
    }

    #[test]
    fn outbound_url_drops_the_schemes_url_default_port() {
        assert_eq!(
            OutboundUrl::parse("http://h:80", "http").unwrap().port,
            None
        );
        assert_eq!(
            OutboundUrl::parse("redis://h:6379", "redis").unwrap().port,
            Some(6379)
        );
    }

    #[test]
    fn outbound_url_without_scheme_gets_the_given_one() {
        let u = OutboundUrl::parse("localhost:6379", "redis").unwrap();
        assert_eq!(
            (u.scheme.as_str(), u.host.as_str(), u.port),
            ("redis", "localhost", Some(6379))
        );
    }

    #[test]
    fn outbound_url_with_bad_host_is_reparsed_with_the_scheme_prepended() {
        // `http://exa mple.com` fails, so Spin retries `http://http://exa mple.com`,
        // whose host is `http`.
        let u = OutboundUrl::parse("http://exa mple.com", "http").unwrap();
        assert_eq!(u.host, "http");
        assert_eq!(OutboundUrl::parse("http://", "http").unwrap().host, "http");
        assert!(!hosts(&["http://exa.mple.com"]).allows("http://exa mple.com", "http"));
    }

    #[test]
    fn outbound_url_keeps_ipv6_brackets() {
        assert_eq!(
            OutboundUrl::parse("http://[::1]:8080", "http")
                .unwrap()
                .host,
            "[::1]"
        );
    }

    #[test]
    fn well_known_ports_are_spins() {
        assert_eq!(well_known_port("redis"), Some(6379));
        assert_eq!(well_known_port("rediss"), None);
        assert_eq!(well_known_port("tcp"), None);
    }
}
