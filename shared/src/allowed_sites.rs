//! Which sites may record visits from a browser (`allowed_sites`): a page view, a single visit
//! or a counting pixel is accepted only when the host of its `Origin` (or, without one, its
//! `Referer`) is listed, so another site cannot inflate a site's counts from its own pages.
//!
//! Entries are host names (`example.com`) or a wildcard for every subdomain
//! (`*.example.com`, which does not match `example.com` itself). An empty list allows every
//! site, which keeps local use simple; production deployments set it.

use std::fmt;

/// The sites a deployment accepts browser writes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AllowedSites(Vec<Site>);

#[derive(Clone, Debug, PartialEq, Eq)]
enum Site {
    Exact(String),
    /// `*.example.com`, kept as `.example.com`.
    Subdomains(String),
}

/// An `allowed_sites` entry that is not a host name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SitesConfigError(pub String);

impl fmt::Display for SitesConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AllowedSites {
    /// Parses `allowed_sites`: comma-separated host names or `*.` wildcards; empty allows all.
    pub fn parse(raw: &str) -> Result<Self, SitesConfigError> {
        raw.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|entry| {
                let lower = entry.to_ascii_lowercase();
                let (site, host) = match lower.strip_prefix("*.") {
                    Some(rest) => (Site::Subdomains(format!(".{rest}")), rest.to_string()),
                    None => (Site::Exact(lower.clone()), lower),
                };
                if is_host_name(&host) {
                    Ok(site)
                } else {
                    Err(SitesConfigError(format!(
                        "{entry:?} is not a host name (e.g. example.com or *.example.com)"
                    )))
                }
            })
            .collect::<Result<Vec<_>, _>>()
            .map(AllowedSites)
    }

    /// Whether no site is listed (then every site is allowed).
    pub fn allows_any(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether a write from a page on `host` (already lower-case, without port) is allowed.
    pub fn allows(&self, host: &str) -> bool {
        self.allows_any()
            || self.0.iter().any(|site| match site {
                Site::Exact(name) => name == host,
                Site::Subdomains(suffix) => {
                    host.len() > suffix.len() && host.ends_with(suffix.as_str())
                }
            })
    }
}

/// A DNS host name or an IP literal as browsers put them in origins: labels of letters,
/// digits and hyphens (or an IPv4 address), at most 253 bytes; an IPv6 literal in brackets.
pub fn is_host_name(host: &str) -> bool {
    if host.starts_with('[') {
        return host.ends_with(']')
            && host[1..host.len() - 1]
                .parse::<std::net::Ipv6Addr>()
                .is_ok();
    }
    !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_list_allows_every_site() {
        let sites = AllowedSites::parse(" ").unwrap();
        assert!(sites.allows_any());
        assert!(sites.allows("anything.test"));
    }

    #[test]
    fn listed_hosts_and_subdomain_wildcards_match_and_nothing_else() {
        let sites = AllowedSites::parse("Example.com, *.blog.example.org").unwrap();
        assert!(sites.allows("example.com"));
        assert!(sites.allows("a.blog.example.org"));
        assert!(sites.allows("x.y.blog.example.org"));
        for refused in [
            "www.example.com",
            "blog.example.org",
            "evilblog.example.org",
            "example.com.evil.test",
            "notexample.com",
            "",
        ] {
            assert!(!sites.allows(refused), "{refused}");
        }
    }

    #[test]
    fn entries_that_are_not_host_names_are_errors() {
        for bad in [
            "https://example.com",
            "example.com/blog",
            "exa mple.com",
            "-bad.com",
            "*",
            "*.",
            "a..b",
        ] {
            assert!(AllowedSites::parse(bad).is_err(), "{bad}");
        }
        assert!(AllowedSites::parse("127.0.0.1, [::1], localhost").is_ok());
    }
}
