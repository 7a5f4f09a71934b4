//! Deployment configuration that arrives as text (Spin variables) and must be validated once:
//! the shard list.
//!
//! The `shards` variable is a comma-separated list of `name=url` pairs, for example
//! `a=redis://10.0.0.5:6379,b=redis://:secret@10.0.0.6:6379`. Names identify shards for
//! hashing (reordering the list moves no key), so they must be unique and stable.

use std::fmt;

/// Longest accepted shard name.
pub const MAX_SHARD_NAME_LEN: usize = 32;
/// Most shards a deployment may list.
pub const MAX_SHARDS: usize = 64;

/// One shard as configured: its stable name and the Redis URL to reach it.
#[derive(Clone, PartialEq, Eq)]
pub struct ShardConfig {
    /// Stable name (`[a-z0-9_-]{1,32}`), used for hashing and in `served_via`.
    pub name: String,
    /// `redis://[:password@]host[:port][/db]`; may carry a secret, so never log it: use
    /// [`ShardConfig::display_address`].
    pub url: String,
}

impl ShardConfig {
    /// The URL without any password, safe to show in health output and logs.
    pub fn display_address(&self) -> String {
        redact_url(&self.url)
    }
}

impl fmt::Debug for ShardConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ShardConfig")
            .field("name", &self.name)
            .field("url", &self.display_address())
            .finish()
    }
}

/// Why a shard list was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ShardListError {
    /// The list names no shard.
    Empty,
    /// More than [`MAX_SHARDS`] shards.
    TooMany(usize),
    /// An entry is not `name=url`.
    Malformed(String),
    /// A name is empty, too long or uses characters outside `[a-z0-9_-]`.
    BadName(String),
    /// A URL is not `redis://…` or `rediss://…` with a host.
    BadUrl(String),
    /// A `rediss://` URL without a port (TLS has no default Redis port, for Spin either).
    TlsWithoutPort(String),
    /// Two entries share a name.
    Duplicate(String),
}

impl fmt::Display for ShardListError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => write!(f, "no shard is listed"),
            Self::TooMany(n) => write!(f, "{n} shards listed; at most {MAX_SHARDS} are allowed"),
            Self::Malformed(entry) => write!(f, "entry {entry:?} is not name=redis://host:port"),
            Self::BadName(name) => write!(
                f,
                "shard name {name:?} must be 1-{MAX_SHARD_NAME_LEN} characters of [a-z0-9_-]"
            ),
            Self::BadUrl(name) => write!(f, "shard {name:?} needs a redis://host[:port] URL"),
            Self::TlsWithoutPort(name) => write!(
                f,
                "shard {name:?}: a rediss:// URL needs an explicit port (rediss://host:6380)"
            ),
            Self::Duplicate(name) => write!(f, "shard name {name:?} is listed twice"),
        }
    }
}

impl std::error::Error for ShardListError {}

/// Parses and validates the `shards` variable.
pub fn parse_shard_list(raw: &str) -> Result<Vec<ShardConfig>, ShardListError> {
    let mut shards: Vec<ShardConfig> = Vec::new();
    for entry in raw.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (name, url) = entry
            .split_once('=')
            .ok_or_else(|| ShardListError::Malformed(redact_url(entry)))?;
        let (name, url) = (name.trim(), url.trim());
        if !valid_name(name) {
            return Err(ShardListError::BadName(name.to_string()));
        }
        if !valid_redis_url(url) {
            return Err(ShardListError::BadUrl(name.to_string()));
        }
        if url.starts_with("rediss://") && explicit_port(url).is_none() {
            return Err(ShardListError::TlsWithoutPort(name.to_string()));
        }
        if shards.iter().any(|s| s.name == name) {
            return Err(ShardListError::Duplicate(name.to_string()));
        }
        shards.push(ShardConfig {
            name: name.to_string(),
            url: url.to_string(),
        });
    }
    match shards.len() {
        0 => Err(ShardListError::Empty),
        n if n > MAX_SHARDS => Err(ShardListError::TooMany(n)),
        _ => Ok(shards),
    }
}

fn valid_name(name: &str) -> bool {
    (1..=MAX_SHARD_NAME_LEN).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn valid_redis_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("redis://")
        .or_else(|| url.strip_prefix("rediss://"))
    else {
        return false;
    };
    let authority = rest.split('/').next().unwrap_or("");
    let host_port = authority.rsplit('@').next().unwrap_or("");
    !host_port.is_empty() && !host_port.starts_with(':')
}

/// The port a `scheme://[userinfo@]host[:port][/db]` URL names, if it names one.
fn explicit_port(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let authority = rest.split('/').next()?;
    let host_port = authority.rsplit('@').next()?;
    // An IPv6 literal's colons are inside brackets.
    let after_host = match host_port.rfind(']') {
        Some(end) => &host_port[end + 1..],
        None => host_port,
    };
    after_host
        .rsplit_once(':')
        .map(|(_, port)| port)
        .filter(|p| !p.is_empty())
}

/// Removes the userinfo (password) from a URL-like string.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((scheme, rest)) => (Some(scheme), rest),
        None => (None, url),
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    let (authority, path) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => &authority[at + 1..],
        None => authority,
    };
    match scheme {
        Some(scheme) => format!("{scheme}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// Who may read the dashboard's data (`dashboard_access`): the site's visits over time, totals,
/// top pages and sources.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DashboardAccess {
    /// Anyone (the default): a public dashboard, like the counts themselves.
    Public,
    /// Only a holder of the `admin_key`.
    Admin,
}

impl DashboardAccess {
    /// Parses the variable (unset or blank: `public`).
    pub fn parse(raw: Option<&str>) -> Result<Self, String> {
        match raw.map(str::trim).unwrap_or("") {
            "" | "public" => Ok(DashboardAccess::Public),
            "admin" => Ok(DashboardAccess::Admin),
            other => Err(format!(
                "variable dashboard_access: {other:?} is neither public nor admin"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dashboard_access_is_public_unless_admin() {
        assert_eq!(DashboardAccess::parse(None), Ok(DashboardAccess::Public));
        assert_eq!(
            DashboardAccess::parse(Some(" ")),
            Ok(DashboardAccess::Public)
        );
        assert_eq!(
            DashboardAccess::parse(Some("public")),
            Ok(DashboardAccess::Public)
        );
        assert_eq!(
            DashboardAccess::parse(Some("admin")),
            Ok(DashboardAccess::Admin)
        );
        assert!(DashboardAccess::parse(Some("Admin")).is_err());
        assert!(DashboardAccess::parse(Some("private")).is_err());
    }

    #[test]
    fn parses_named_shards_in_order() {
        let shards = parse_shard_list("a=redis://127.0.0.1:6379, b=redis://h:1/2").unwrap();
        assert_eq!(shards.len(), 2);
        assert_eq!(shards[0].name, "a");
        assert_eq!(shards[1].url, "redis://h:1/2");
    }

    #[test]
    fn refuses_an_empty_list() {
        assert_eq!(parse_shard_list(" , "), Err(ShardListError::Empty));
    }

    #[test]
    fn refuses_duplicate_names() {
        let err = parse_shard_list("a=redis://h:1,a=redis://h:2").unwrap_err();
        assert_eq!(err, ShardListError::Duplicate("a".into()));
    }

    #[test]
    fn refuses_bad_names_and_urls() {
        assert!(matches!(
            parse_shard_list("A=redis://h"),
            Err(ShardListError::BadName(_))
        ));
        assert!(matches!(
            parse_shard_list("a=http://h"),
            Err(ShardListError::BadUrl(_))
        ));
        assert!(matches!(
            parse_shard_list("a=redis://:pw@"),
            Err(ShardListError::BadUrl(_))
        ));
        assert!(matches!(
            parse_shard_list("redis://h"),
            Err(ShardListError::Malformed(_))
        ));
    }

    #[test]
    fn refuses_too_many_shards() {
        let list: Vec<String> = (0..=MAX_SHARDS)
            .map(|i| format!("s{i}=redis://h"))
            .collect();
        assert_eq!(
            parse_shard_list(&list.join(",")),
            Err(ShardListError::TooMany(MAX_SHARDS + 1))
        );
    }

    #[test]
    fn display_address_and_debug_hide_the_password() {
        let shard = &parse_shard_list("a=redis://:s3cret@10.0.0.1:6379/0").unwrap()[0];
        assert_eq!(shard.display_address(), "redis://10.0.0.1:6379/0");
        assert!(!format!("{shard:?}").contains("s3cret"));
    }

    #[test]
    fn tls_shards_name_their_port() {
        let shards = parse_shard_list("a=rediss://:pw@cache.example.com:6380").unwrap();
        assert_eq!(shards[0].url, "rediss://:pw@cache.example.com:6380");
        assert!(parse_shard_list("a=rediss://[::1]:6380").is_ok());
        for bad in [
            "a=rediss://cache.example.com",
            "a=rediss://:pw@h/0",
            "a=rediss://[::1]",
        ] {
            assert_eq!(
                parse_shard_list(bad),
                Err(ShardListError::TlsWithoutPort("a".into())),
                "{bad}"
            );
        }
        // Plain redis:// keeps its default port.
        assert!(parse_shard_list("a=redis://cache.example.com").is_ok());
    }

    #[test]
    fn malformed_entry_errors_hide_the_password() {
        let err = parse_shard_list("redis://:s3cret@h").unwrap_err();
        assert!(!err.to_string().contains("s3cret"));
    }
}
