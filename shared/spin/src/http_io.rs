//! The component's HTTP edge, on `wasi:http` directly.
//!
//! Spin SDK's `Request`/`Response` conversions cost about a third of a small request here: they
//! copy every header into a map, parse the URI, and drive the body through the async executor
//! with a host call per poll. This edge reads what Tally uses (method, path and query, the
//! header list, and, only when a handler asks for it, a body capped at the largest one any
//! endpoint accepts) and writes the response with one header list, one blocking write per
//! 4 KiB and one `finish`.
//!
//! Every component's `wasi:http/incoming-handler` export is [`serve`]: it reads the request,
//! runs the component's handler, sends the response, then writes the request's log line.

use std::cell::OnceCell;
use std::time::Instant;

use spin_sdk::http::{Fields, IncomingRequest, Method, OutgoingBody};
use spin_sdk::http::{OutgoingResponse, ResponseOutparam};
use tally_core::validation::MAX_REQUEST_BODY_BYTES;
use wasi::io::streams::{OutputStream, StreamError};

use crate::request_log;

/// The most one `wasi:io` stream call reads or writes.
const IO_CHUNK_BYTES: usize = 4096;

/// Bytes of an oversized body read and discarded beyond the cap, so an ordinary client that
/// sent one gets its 413 rather than a reset connection; past this the rest is left unread.
const DISCARD_LIMIT_BYTES: usize = 4 * MAX_REQUEST_BODY_BYTES;

/// An incoming request as the components see it. The header list and the body are read on
/// first use: most routes never need a body (a single visit, every GET), and a probe needs no
/// header but the matched route, so neither pays for what it does not read (the list costs
/// the host an allocation in the component per name and per value).
pub struct Request {
    incoming: IncomingRequest,
    method: Method,
    path_with_query: String,
    headers: OnceCell<Vec<(String, Vec<u8>)>>,
    body: OnceCell<Option<Vec<u8>>>,
}

impl Request {
    /// Reads the request's head: method and path with query.
    fn read(incoming: IncomingRequest) -> Self {
        Self {
            method: incoming.method(),
            path_with_query: incoming.path_with_query().unwrap_or_else(|| "/".into()),
            incoming,
            headers: OnceCell::new(),
            body: OnceCell::new(),
        }
    }

    /// The request method.
    pub fn method(&self) -> &Method {
        &self.method
    }

    /// The path, without the query.
    pub fn path(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or(self.path_with_query.as_str(), |(path, _)| path)
    }

    /// The query string without the `?` (empty when there is none).
    pub fn query(&self) -> &str {
        self.path_with_query
            .split_once('?')
            .map_or("", |(_, query)| query)
    }

    /// Whether the request carries the header `name` at all (UTF-8 or not).
    pub fn has_header(&self, name: &str) -> bool {
        self.header_list()
            .iter()
            .any(|(n, _)| n.eq_ignore_ascii_case(name))
    }

    /// Every value of the header `name` that is valid UTF-8, in the order received.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.header_list()
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .filter_map(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// The last valid UTF-8 value of the header `name`. When nothing has needed the whole
    /// header list, only this header is fetched.
    pub fn last_header_value(&self, name: &str) -> Option<String> {
        if self.headers.get().is_some() {
            return self.header_values(name).last().map(str::to_owned);
        }
        // Field names compare case-insensitively in `wasi:http`: no lowercasing needed.
        let fields = self.incoming.headers();
        let values = fields.get(name);
        values
            .into_iter()
            .rev()
            .find_map(|value| String::from_utf8(value).ok())
    }

    /// The header list, read on first use.
    fn header_list(&self) -> &[(String, Vec<u8>)] {
        self.headers
            .get_or_init(|| self.incoming.headers().entries())
    }

    /// The body as received, read on first use (GET and HEAD bodies are ignored), at most
    /// [`MAX_REQUEST_BODY_BYTES`] + 1 bytes of it: enough for every endpoint to tell "too
    /// large". `None` when the body could not be read.
    pub fn body(&self) -> Option<&[u8]> {
        self.body
            .get_or_init(|| match self.method {
                Method::Get | Method::Head => Some(Vec::new()),
                _ => read_body(&self.incoming),
            })
            .as_deref()
    }
}

/// A response as the components build it: a status, header lines in order, a body.
pub struct Response {
    status: u16,
    /// Kept in the form `wasi:http` takes, so sending copies nothing.
    headers: Vec<(String, Vec<u8>)>,
    body: Vec<u8>,
    /// A body written while it is sent (an export), after `body`.
    stream: Option<BodyWriter>,
}

/// Writes a streamed body through the [`Sink`] it is given, chunk by chunk, so no more than a
/// chunk is held at a time; it stops early when the sink refuses (the client went away).
pub type BodyWriter = Box<dyn FnOnce(&mut Sink<'_>)>;

/// Where a streamed body goes: the response's output stream.
pub struct Sink<'a> {
    stream: &'a OutputStream,
    failed: bool,
}

impl Sink<'_> {
    /// Writes `bytes`; false once the client can no longer be written to.
    pub fn write(&mut self, bytes: &[u8]) -> bool {
        if !self.failed && write_all(self.stream, bytes).is_err() {
            self.failed = true;
        }
        !self.failed
    }
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("headers", &self.headers)
            .field("body_bytes", &self.body.len())
            .field("streamed", &self.stream.is_some())
            .finish()
    }
}

impl Response {
    /// A response with `status`, no headers and `body`.
    pub fn new(status: u16, body: Vec<u8>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
            stream: None,
        }
    }

    /// A response whose body `writer` writes while it is sent.
    pub fn streamed(status: u16, writer: BodyWriter) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: Vec::new(),
            stream: Some(writer),
        }
    }

    /// The response with the header `name` set to `value`.
    pub fn with_header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.set_header(name, value);
        self
    }

    /// Sets the header `name` to `value`, replacing any value it had.
    pub fn set_header(&mut self, name: &str, value: impl Into<String>) {
        self.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
        self.headers
            .push((name.to_string(), value.into().into_bytes()));
    }

    /// The status code.
    pub fn status(&self) -> u16 {
        self.status
    }
}

/// Reads the body up to the cap plus one byte, discarding (up to a bound) what follows; `None`
/// when the stream failed.
fn read_body(incoming: &IncomingRequest) -> Option<Vec<u8>> {
    let body = incoming.consume().ok()?;
    let stream = body.stream().ok()?;
    let mut kept = Vec::new();
    let mut seen = 0usize;
    loop {
        match stream.blocking_read(IO_CHUNK_BYTES as u64) {
            Ok(chunk) => {
                seen += chunk.len();
                let room = (MAX_REQUEST_BODY_BYTES + 1).saturating_sub(kept.len());
                kept.extend_from_slice(&chunk[..chunk.len().min(room)]);
                if seen > MAX_REQUEST_BODY_BYTES + DISCARD_LIMIT_BYTES {
                    break;
                }
            }
            Err(StreamError::Closed) => break,
            Err(_) => return None,
        }
    }
    // The stream is the body's child resource: it goes first. No trailers are read.
    drop(stream);
    drop(body);
    Some(kept)
}

/// Sends `resp` through `out`: one header list, the body in 4 KiB blocking writes, `finish`.
fn send(out: ResponseOutparam, resp: Response) {
    let Ok(headers) = Fields::from_list(&resp.headers) else {
        eprintln!("tally: the host refused a response header");
        return;
    };
    let response = OutgoingResponse::new(headers);
    // A new response's status is already 200: one host call less for most answers.
    if resp.status != 200 && response.set_status_code(resp.status).is_err() {
        eprintln!("tally: the host refused status {}", resp.status);
        return;
    }
    let Ok(body) = response.body() else {
        return;
    };
    out.set(response);
    write_body(body, &resp.body, resp.stream);
}

/// Writes `bytes`, then what `stream` writes, to the response body and finishes it.
fn write_body(body: OutgoingBody, bytes: &[u8], stream: Option<BodyWriter>) {
    if !bytes.is_empty() || stream.is_some() {
        let Ok(out) = body.write() else {
            return;
        };
        if write_all(&out, bytes).is_err() {
            return;
        }
        if let Some(writer) = stream {
            let mut sink = Sink {
                stream: &out,
                failed: false,
            };
            writer(&mut sink);
            if sink.failed {
                return;
            }
        }
    }
    let _ = OutgoingBody::finish(body, None);
}

/// Writes `bytes` to `stream` with one `blocking-write-and-flush` per 4 KiB (the most one call
/// takes): the response body, and the log line on stdout.
pub(crate) fn write_all(stream: &OutputStream, bytes: &[u8]) -> Result<(), StreamError> {
    bytes
        .chunks(IO_CHUNK_BYTES)
        .try_for_each(|chunk| stream.blocking_write_and_flush(chunk))
}

/// The component's request handler: reads the request, runs `handler` with CORS around it
/// (`cors::around`), sends its response and writes the request's log line.
pub fn serve(
    component: &str,
    incoming: IncomingRequest,
    out: ResponseOutparam,
    handler: impl FnOnce(&Request) -> Response,
) {
    let started = Instant::now();
    let req = Request::read(incoming);
    let resp = crate::cors::around(&req, handler);
    let status = resp.status();
    send(out, resp);
    request_log::write_line(component, &req, status, started);
}
