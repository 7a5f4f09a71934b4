//! Static assets served by Tally itself (the tracker, and any page or document a component
//! ships): the one mechanism, so that a new asset is a line in a table, not a new handler.
//!
//! An [`Asset`] is compiled into the component with its ETag (XXH3-64 of its bytes, computed at
//! compile time): `GET`/`HEAD` answer it with `Cache-Control: public, max-age=3600` and the
//! ETag; a request whose `If-None-Match` names the ETag gets `304` and no body. No Redis, no
//! key-value store, no rate limit: an asset costs what answering `/health/live` costs.

use spin_sdk::http::Method;
use tally_core::api::ProblemKind;

use crate::http_io::{Request, Response};
use crate::respond::{self, Failure};

/// One static asset.
#[derive(Clone, Copy, Debug)]
pub struct Asset {
    /// The path it is served at (`/tally.js`).
    pub path: &'static str,
    /// Its `Content-Type`.
    pub content_type: &'static str,
    /// Its bytes.
    pub body: &'static [u8],
    /// XXH3-64 of the bytes.
    pub hash: u64,
    /// Further headers it is always served with (a page's `Content-Security-Policy`).
    pub headers: &'static [(&'static str, &'static str)],
}

impl Asset {
    /// An asset whose hash is computed at compile time (use it in a `const`).
    pub const fn new(path: &'static str, content_type: &'static str, body: &'static [u8]) -> Self {
        Asset {
            path,
            content_type,
            body,
            hash: xxhash_rust::const_xxh3::xxh3_64(body),
            headers: &[],
        }
    }

    /// The same asset, served with `headers` as well.
    pub const fn with_headers(self, headers: &'static [(&'static str, &'static str)]) -> Self {
        Asset { headers, ..self }
    }

    /// The strong ETag, quoted.
    pub fn etag(&self) -> String {
        let mut tag = String::with_capacity(18);
        tag.push('"');
        tag.push_str(&hex::encode(self.hash.to_be_bytes()));
        tag.push('"');
        tag
    }
}

/// How long browsers and caches keep an asset before asking again (with its ETag).
const MAX_AGE_S: u32 = 3_600;

/// Answers `req` from `assets` by path: 404 for a path not in the table, 405 for a method
/// other than `GET`/`HEAD`.
pub fn serve(req: &Request, assets: &[Asset]) -> Response {
    respond::outcome(answer(req, assets))
}

fn answer(req: &Request, assets: &[Asset]) -> Result<Response, Failure> {
    respond::require_method(req.method(), &[Method::Get, Method::Head])?;
    let asset = assets
        .iter()
        .find(|a| a.path == req.path())
        .ok_or_else(|| Failure::new(ProblemKind::NotFound, "no such asset"))?;
    let etag = asset.etag();
    let fresh = req
        .last_header_value("if-none-match")
        .is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag || t.trim() == "*"));
    let (status, body) = match (fresh, req.method()) {
        (true, _) => (304, Vec::new()),
        (false, Method::Head) => (200, Vec::new()),
        (false, _) => (200, asset.body.to_vec()),
    };
    let mut resp = Response::new(status, body)
        .with_header("etag", etag)
        .with_header("cache-control", format!("public, max-age={MAX_AGE_S}"))
        .with_header("x-content-type-options", "nosniff");
    if status == 200 {
        resp.set_header("content-type", asset.content_type);
    }
    for (name, value) in asset.headers {
        resp.set_header(name, *value);
    }
    Ok(resp)
}
