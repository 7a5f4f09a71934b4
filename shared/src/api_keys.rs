//! API keys for server-side writers (`api_keys`): the deployment stores only the keys'
//! SHA-256 hashes, never a key itself, each optionally with a rate-limit policy of its own.
//!
//! `api_keys` is a comma-separated list of `<sha256 hex>[=<policy>]`, e.g.
//! `9f86d0…0a08=6000/60s burst 6000,60303a…e7d3`; make a hash with
//! `printf %s "$KEY" | sha256sum`. A request presents its key as `Authorization: Bearer <key>`
//! (or in the `api_key_header` the deployment names). Only a configured key identifies a
//! client to the limiter: an unknown key is no key, so sending a new value on every request
//! never buys a fresh bucket.

use std::fmt;

use sha2::{Digest, Sha256};

use crate::rate_policy::parse_policy;
use crate::token_bucket::BucketParams;

/// One configured key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeyEntry {
    /// The key's SHA-256, hex.
    hash: String,
    /// Its own rate-limit policy: `None` for the route class's default, `Some(None)` for no
    /// limit (`off`), `Some(Some(params))` for its own bucket size and rate.
    pub policy: Option<Option<BucketParams>>,
}

impl KeyEntry {
    /// A short, stable, non-secret name for the key: the first 16 hex digits of its hash (for
    /// rate-limit identities and logs).
    pub fn id(&self) -> &str {
        &self.hash[..16]
    }
}

/// The configured keys.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ApiKeys(Vec<KeyEntry>);

/// An `api_keys` entry that cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiKeysConfigError(pub String);

impl fmt::Display for ApiKeysConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl ApiKeys {
    /// Parses `api_keys` (empty: no keys, server-side writes need none).
    pub fn parse(raw: &str) -> Result<Self, ApiKeysConfigError> {
        raw.split(',')
            .map(str::trim)
            .filter(|entry| !entry.is_empty())
            .enumerate()
            .map(|(index, entry)| {
                let (hash, policy) = match entry.split_once('=') {
                    Some((hash, policy)) => (hash.trim(), Some(policy.trim())),
                    None => (entry, None),
                };
                let hash = hash.to_ascii_lowercase();
                if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                    // The entry is a secret's hash: never echo it.
                    return Err(ApiKeysConfigError(format!(
                        "api_keys entry {} is not a SHA-256 hash in hex (64 digits); make one \
                         with: printf %s \"$KEY\" | sha256sum",
                        index + 1
                    )));
                }
                let policy = policy
                    .map(|p| {
                        parse_policy(p).map_err(|err| {
                            ApiKeysConfigError(format!("api_keys entry {}: {}", index + 1, err.0))
                        })
                    })
                    .transpose()?;
                Ok(KeyEntry { hash, policy })
            })
            .collect::<Result<Vec<_>, _>>()
            .map(ApiKeys)
    }

    /// Whether any key is configured (then server-side writes need one).
    pub fn is_enabled(&self) -> bool {
        !self.0.is_empty()
    }

    /// The entry of a presented key, if it is one of the configured keys.
    pub fn find(&self, presented: &str) -> Option<&KeyEntry> {
        if self.0.is_empty() || presented.is_empty() || presented.len() > MAX_KEY_BYTES {
            return None;
        }
        let hash = hex::encode(Sha256::digest(presented.as_bytes()));
        self.0.iter().find(|entry| entry.hash == hash)
    }
}

/// The longest key looked up (longer ones are not keys).
pub const MAX_KEY_BYTES: usize = 256;

/// The key in an `Authorization: Bearer <key>` header value.
pub fn bearer_token(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

/// SHA-256 of `key`, hex: what `api_keys` holds for it.
pub fn key_hash(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // printf %s test-key-1 | sha256sum
    const KEY_1: &str = "test-key-1";

    #[test]
    fn only_configured_keys_are_found() {
        let keys = ApiKeys::parse(&format!("{}, {}=off", key_hash(KEY_1), key_hash("k2"))).unwrap();
        assert!(keys.is_enabled());
        let found = keys.find(KEY_1).unwrap();
        assert_eq!(found.policy, None);
        assert_eq!(found.id(), &key_hash(KEY_1)[..16]);
        assert_eq!(keys.find("k2").unwrap().policy, Some(None));
        for unknown in ["test-key-2", "", "TEST-KEY-1", &key_hash(KEY_1)] {
            assert_eq!(keys.find(unknown), None, "{unknown}");
        }
    }

    #[test]
    fn a_key_may_carry_its_own_policy() {
        let raw = format!("{}=6000/60s burst 6000", key_hash(KEY_1).to_uppercase());
        let keys = ApiKeys::parse(&raw).unwrap();
        let params = keys.find(KEY_1).unwrap().policy.unwrap().unwrap();
        assert_eq!(params.capacity(), 6000);
    }

    #[test]
    fn bad_entries_are_errors_that_never_echo_the_entry() {
        let secretish = "my-plaintext-key";
        let err = ApiKeys::parse(secretish).unwrap_err();
        assert!(!err.0.contains(secretish), "{}", err.0);
        assert!(ApiKeys::parse(&format!("{}=lots", key_hash(KEY_1))).is_err());
        assert_eq!(ApiKeys::parse(" , ").unwrap(), ApiKeys::default());
        assert!(!ApiKeys::default().is_enabled());
        assert_eq!(ApiKeys::default().find(KEY_1), None);
    }

    #[test]
    fn bearer_tokens_are_read_from_authorization() {
        assert_eq!(bearer_token("Bearer abc"), Some("abc"));
        assert_eq!(bearer_token("bearer  abc "), Some("abc"));
        assert_eq!(bearer_token("Basic abc"), None);
        assert_eq!(bearer_token("Bearer "), None);
        assert_eq!(bearer_token("abc"), None);
    }
}
