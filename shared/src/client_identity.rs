//! Who a request comes from, for rate limiting: an API key when the deployment names a header
//! for it and the request carries one, otherwise the client's IP address.
//!
//! `X-Forwarded-For` is honoured only when the immediate peer is a configured trusted proxy;
//! then the chain is read from the right and the first address that is not a trusted proxy is
//! the client. A client cannot impersonate another by prepending addresses: everything left of
//! the first untrusted hop is ignored.

use std::net::IpAddr;

use ipnet::IpNet;

/// Why a trusted-proxy list was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TrustedProxiesError(pub String);

/// Parses a comma-separated list of CIDR networks or single addresses (`10.0.0.0/8, ::1`).
pub fn parse_trusted_proxies(raw: &str) -> Result<Vec<IpNet>, TrustedProxiesError> {
    raw.split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|entry| {
            entry
                .parse::<IpNet>()
                .or_else(|_| entry.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| TrustedProxiesError(format!("{entry:?} is not an address or CIDR")))
        })
        .collect()
}

/// The client's address given the peer that connected and its `X-Forwarded-For` header.
pub fn client_ip(peer: IpAddr, forwarded_for: Option<&str>, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let Some(chain) = forwarded_for else {
        return peer;
    };
    let mut client = peer;
    for hop in chain.rsplit(',').map(str::trim) {
        match hop.parse::<IpAddr>() {
            Ok(ip) if is_trusted(&ip) => client = ip,
            Ok(ip) => return ip,
            // Garbage from here on was not written by a proxy we trust.
            Err(_) => return client,
        }
    }
    client
}

/// A rate-limit identity: what the bucket is keyed by, never raw (keys are hashed).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Identity {
    /// A caller presenting one of the configured API keys, by the key's id (see
    /// `api_keys::KeyEntry::id`); never an unknown key.
    ApiKey(String),
    /// A caller known by its address.
    Address(IpAddr),
    /// Not a caller but a page: badges are limited per page (see `RouteClass::Badges`).
    Page(String),
}

impl Identity {
    /// A stable, non-reversible key for this identity, safe to use in Redis and key-value keys
    /// and in logs: XXH3-128, as hex, of a tagged binary form (`key\0` and the key's bytes,
    /// `ip4\0` or `ip6\0` and the address's octets; no text formatting on the request path).
    pub fn hashed(&self) -> String {
        let (v4, v6);
        let (tag, bytes): (&[u8], &[u8]) = match self {
            Identity::ApiKey(key) => (b"key\0", key.as_bytes()),
            Identity::Page(page) => (b"page\0", page.as_bytes()),
            Identity::Address(IpAddr::V4(ip)) => {
                v4 = ip.octets();
                (b"ip4\0", &v4)
            }
            Identity::Address(IpAddr::V6(ip)) => {
                v6 = ip.octets();
                (b"ip6\0", &v6)
            }
        };
        let tagged = [tag, bytes].concat();
        hex::encode(xxhash_rust::xxh3::xxh3_128(&tagged).to_be_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn trusted() -> Vec<IpNet> {
        parse_trusted_proxies("10.0.0.0/8, 192.168.1.1").unwrap()
    }

    #[test]
    fn an_untrusted_peer_is_the_client_whatever_it_forwards() {
        assert_eq!(
            client_ip(ip("203.0.113.5"), Some("198.51.100.1"), &trusted()),
            ip("203.0.113.5")
        );
    }

    #[test]
    fn a_trusted_peer_names_the_rightmost_untrusted_hop() {
        let chain = "198.51.100.1, 203.0.113.7, 10.1.2.3";
        assert_eq!(
            client_ip(ip("10.0.0.1"), Some(chain), &trusted()),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_forged_prefix_cannot_impersonate_another_client() {
        // The client sent "X-Forwarded-For: 198.51.100.99"; the proxy appended its peer.
        let chain = "198.51.100.99, 203.0.113.7";
        assert_eq!(
            client_ip(ip("192.168.1.1"), Some(chain), &trusted()),
            ip("203.0.113.7")
        );
    }

    #[test]
    fn a_trusted_peer_without_the_header_is_the_client() {
        assert_eq!(client_ip(ip("10.0.0.1"), None, &trusted()), ip("10.0.0.1"));
    }

    #[test]
    fn garbage_in_the_chain_stops_the_walk() {
        assert_eq!(
            client_ip(
                ip("10.0.0.1"),
                Some("1.2.3.4, nonsense, 10.0.0.2"),
                &trusted()
            ),
            ip("10.0.0.2")
        );
    }

    #[test]
    fn trusted_proxy_lists_parse_and_refuse_garbage() {
        assert_eq!(parse_trusted_proxies("").unwrap(), vec![]);
        assert_eq!(parse_trusted_proxies("::1").unwrap().len(), 1);
        assert!(parse_trusted_proxies("10.0.0.0/33").is_err());
    }

    #[test]
    fn identities_hash_apart_and_never_show_the_raw_value() {
        let a = Identity::Address(ip("1.2.3.4")).hashed();
        let k = Identity::ApiKey("1.2.3.4".into()).hashed();
        assert_ne!(a, k);
        assert!(!a.contains("1.2.3.4"));
    }

    #[test]
    fn hashed_identities_are_stable_and_distinct() {
        assert_eq!(
            Identity::Address(ip("1.2.3.4")).hashed(),
            format!(
                "{:032x}",
                xxhash_rust::xxh3::xxh3_128(b"ip4\x00\x01\x02\x03\x04")
            )
        );
        let forms = [
            Identity::Address(ip("1.2.3.4")),
            Identity::Address(ip("::ffff:1.2.3.4")),
            Identity::Address(ip("::1")),
            Identity::ApiKey("1.2.3.4".into()),
            Identity::ApiKey(String::from_utf8(vec![1, 2, 3, 4]).unwrap()),
        ];
        let hashes: std::collections::BTreeSet<String> =
            forms.iter().map(Identity::hashed).collect();
        assert_eq!(hashes.len(), forms.len());
        assert!(hashes.iter().all(|h| h.len() == 32));
    }
}
