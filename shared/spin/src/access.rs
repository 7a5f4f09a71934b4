//! Who may write what: the one place that reads `api_keys` and `allowed_sites`.
//!
//! - A **server write** (a batch of visits, a metric ingest) needs one of the configured API
//!   keys when `api_keys` is set: 401 with `WWW-Authenticate` otherwise, before the limiter is
//!   asked, so an unknown key never gets a bucket.
//! - A **browser write** (a page view, a single visit, a counting pixel) is accepted from a
//!   page whose site is in `allowed_sites` (the host of its `Origin`, or without one of its
//!   `Referer`), or with a configured key (a server writing for a site): 403 otherwise.
//! - A request comes **from a page** when it carries an `Origin` or a `Referer`: what bot
//!   filtering looks at for single visits (page views and pixels always come from pages).

use std::cell::OnceCell;
use std::rc::Rc;

use tally_core::allowed_sites::AllowedSites;
use tally_core::api::ProblemKind;
use tally_core::api_keys::{bearer_token, ApiKeys, KeyEntry};
use tally_core::cors::{serialize_origin, url_host};

use crate::config::{non_empty_var, var};
use crate::http_io::Request;
use crate::request_info::header;
use crate::respond::Failure;

/// The configured keys, parsed once per request (`api_keys`).
fn api_keys() -> Result<Rc<ApiKeys>, Failure> {
    thread_local! {
        static KEYS: OnceCell<Rc<ApiKeys>> = const { OnceCell::new() };
    }
    if let Some(keys) = KEYS.with(|k| k.get().cloned()) {
        return Ok(keys);
    }
    let raw = var("api_keys").unwrap_or_default();
    let keys = Rc::new(
        ApiKeys::parse(&raw).map_err(|err| Failure::misconfigured(format!("api_keys: {err}")))?,
    );
    KEYS.with(|k| k.set(keys.clone()).ok());
    Ok(keys)
}

/// The key the request presents: `Authorization: Bearer <key>`, or the deployment's
/// `api_key_header` when it names one.
fn presented_key(req: &Request) -> Option<String> {
    if let Some(token) = header(req, "authorization").and_then(bearer_token) {
        return Some(token.to_string());
    }
    let name = non_empty_var("api_key_header")?;
    header(req, &name)
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_string)
}

/// The configured key the request presents, if any (an unknown key is no key).
pub fn known_key(req: &Request) -> Result<Option<KeyEntry>, Failure> {
    let Some(presented) = presented_key(req) else {
        return Ok(None);
    };
    Ok(api_keys()?.find(&presented).cloned())
}

/// A server write: allowed when no keys are configured, or with a configured key.
pub fn require_server_key(req: &Request) -> Result<(), Failure> {
    if !api_keys()?.is_enabled() || known_key(req)?.is_some() {
        return Ok(());
    }
    let (detail, error) = match presented_key(req) {
        None => (
            "send one of the deployment's API keys as Authorization: Bearer <key>",
            "",
        ),
        Some(_) => (
            "the API key is not one of this deployment's keys",
            ", error=\"invalid_token\"",
        ),
    };
    Err(Failure::new(ProblemKind::Unauthorized, detail)
        .with_header("www-authenticate", format!("Bearer realm=\"tally\"{error}")))
}

/// A browser write: allowed from a page of a listed site, with a configured key, or from
/// anywhere when `allowed_sites` is empty.
pub fn require_allowed_site(req: &Request) -> Result<(), Failure> {
    let raw = var("allowed_sites").unwrap_or_default();
    let sites = AllowedSites::parse(&raw)
        .map_err(|err| Failure::misconfigured(format!("allowed_sites: {err}")))?;
    if sites.allows_any() {
        return Ok(());
    }
    if page_host(req).is_some_and(|host| sites.allows(&host)) || known_key(req)?.is_some() {
        return Ok(());
    }
    Err(Failure::new(
        ProblemKind::Forbidden,
        "visits are recorded only from the sites this deployment allows (allowed_sites)",
    ))
}

/// The host of the page a request came from: its `Origin`'s, or without one its `Referer`'s.
pub fn page_host(req: &Request) -> Option<String> {
    match header(req, "origin") {
        Some(origin) => serialize_origin(origin).and_then(|o| url_host(&o)),
        None => header(req, "referer").and_then(url_host),
    }
}

/// Whether the request comes from a web page (it carries an `Origin` or a `Referer`).
pub fn from_a_page(req: &Request) -> bool {
    header(req, "origin").is_some() || header(req, "referer").is_some()
}
