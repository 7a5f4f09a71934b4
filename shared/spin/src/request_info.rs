//! Reading what a component needs from a Spin request: path-info, query parameters, headers,
//! the client's address.

use std::net::IpAddr;

use crate::http_io::Request;
use tally_core::client_identity::{client_ip, parse_trusted_proxies};
use tally_core::validation::{self, ValidationError};

use crate::respond::Failure;

/// A header's value as text, if present and valid UTF-8 (the first one).
pub fn header<'a>(req: &'a Request, name: &'a str) -> Option<&'a str> {
    req.header_values(name).next()
}

/// The `Idempotency-Key` header, checked (`validation::idempotency_key`). A value that is not
/// UTF-8 is refused like any other bad key, not taken for no key (schemathesis sent
/// `Idempotency-Key: \xd7\xf8\x9b` and the visit was recorded without one).
pub fn idempotency_key(req: &Request) -> Result<Option<&str>, ValidationError> {
    match header(req, "idempotency-key") {
        Some(raw) => validation::idempotency_key(raw).map(Some),
        None if req.has_header("idempotency-key") => Err(ValidationError::IdempotencyKeyInvalid),
        None => Ok(None),
    }
}

/// The last value of a header: for headers the platform appends (`spin-client-addr`), the last
/// one is the platform's even if a client sent its own.
pub fn last_header<'a>(req: &'a Request, name: &'a str) -> Option<&'a str> {
    req.header_values(name).last()
}

/// Every value of a header, joined with commas in order (how a list-valued header such as
/// `X-Forwarded-For` reads when a proxy chain split it over several lines).
pub fn joined_header(req: &Request, name: &str) -> Option<String> {
    let values: Vec<&str> = req.header_values(name).collect();
    (!values.is_empty()).then(|| values.join(","))
}

/// The part of the path after the component's route prefix (`spin-path-info`), as sent.
/// Fetched on its own, so a request that needs no other header (a cached read) never has the
/// whole header list copied into the component.
pub fn path_info(req: &Request) -> String {
    req.last_header_value("spin-path-info").unwrap_or_default()
}

/// The client's address: the connecting peer from `spin-client-addr`, or, when that peer is in
/// the `trusted_proxies` variable, the right-most untrusted hop of `X-Forwarded-For`. Rate
/// limiting and unique-visitor counting both use this, so they agree on who the client is.
/// Without an `X-Forwarded-For` header the peer is the client whoever the proxies are, so the
/// variable is not read.
pub fn client_address(req: &Request) -> Result<IpAddr, Failure> {
    let peer: IpAddr = peer_ip(req).parse().unwrap_or(IpAddr::from([0, 0, 0, 0]));
    let Some(forwarded) = joined_header(req, "x-forwarded-for") else {
        return Ok(peer);
    };
    let trusted = crate::config::var("trusted_proxies").unwrap_or_default();
    let trusted = parse_trusted_proxies(&trusted)
        .map_err(|err| Failure::misconfigured(format!("trusted_proxies: {}", err.0)))?;
    Ok(client_ip(peer, Some(&forwarded), &trusted))
}

/// The connecting peer's IP address, without the port, from `spin-client-addr`.
fn peer_ip(req: &Request) -> &str {
    let addr = last_header(req, "spin-client-addr").unwrap_or("");
    match addr.rsplit_once(':') {
        Some((ip, port)) if port.bytes().all(|b| b.is_ascii_digit()) => {
            ip.trim_start_matches('[').trim_end_matches(']')
        }
        _ => addr,
    }
}

/// A query parameter's decoded value (the first one).
pub fn query_param(req: &Request, name: &str) -> Option<String> {
    form_urlencoded::parse(req.query().as_bytes())
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// Milliseconds since the Unix epoch on this node's clock.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// A random number (WASI's random source; 0 when there is none).
pub fn random_u32() -> u32 {
    let mut buf = [0u8; 4];
    getrandom::fill(&mut buf).map_or(0, |()| u32::from_le_bytes(buf))
}

/// Random hex for salts and ids (WASI's secure random source).
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    if getrandom::fill(&mut buf).is_err() {
        // No entropy source is a platform fault; a fixed salt only weakens unique counting.
        return String::new();
    }
    hex::encode(buf)
}
