//! The HTTP front door: routes a request like Spin's HTTP trigger, sets the `spin-*` headers,
//! runs the component, and logs one line per request.
//!
//! Where this host is stricter than Spin it says so: request headers named `spin-*` sent by the
//! client are removed before the host sets its own (Spin would pass both, and a guest reading
//! the first value could be fooled), and a `Content-Length` over the configured limit is answered
//! 413 before any instance is created.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{header, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Body as _;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;

use crate::runtime::{Application, Dispatch};

/// Spin's reserved path prefix; `health` under it answers `OK` without running a component.
const WELL_KNOWN_PREFIX: &str = "/.well-known/spin/";

/// Front-door settings.
#[derive(Clone, Debug)]
pub struct ServerOptions {
    /// Requests whose declared body is larger are refused with 413.
    pub max_request_body_bytes: u64,
    /// Print one line per request on stdout.
    pub log_requests: bool,
    /// On shutdown, how long requests already being served may take to finish before their
    /// connections are closed.
    pub shutdown_grace: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            max_request_body_bytes: 1 << 20,
            log_requests: true,
            shutdown_grace: Duration::from_secs(10),
        }
    }
}

/// An application behind an HTTP front door.
pub struct Server {
    app: Arc<Application>,
    options: ServerOptions,
}

/// The response type the front door produces.
pub type HostResponse = Response<HyperOutgoingBody>;

impl Server {
    /// Wraps a loaded application.
    pub fn new(app: Arc<Application>, options: ServerOptions) -> Arc<Self> {
        Arc::new(Self { app, options })
    }

    /// The application served.
    pub fn app(&self) -> &Application {
        &self.app
    }

    /// Accepts connections until `shutdown` resolves; each connection is served on its own task.
    ///
    /// Then stops gracefully, as Kubernetes expects of a pod it stops: the listener is closed
    /// at once (new connections are refused), every request already being served is finished
    /// and answered (its connection then closes instead of waiting for another request), and
    /// after `shutdown_grace` whatever is still open is closed, saying how many.
    pub async fn serve(
        self: Arc<Self>,
        listener: TcpListener,
        shutdown: impl std::future::Future<Output = ()>,
    ) -> anyhow::Result<()> {
        tokio::pin!(shutdown);
        let graceful = GracefulShutdown::new();
        let open = Arc::new(AtomicUsize::new(0));
        loop {
            let (stream, client_addr) = tokio::select! {
                accepted = listener.accept() => accepted?,
                () = &mut shutdown => break,
            };
            let _ = stream.set_nodelay(true);
            let server = self.clone();
            let service = hyper::service::service_fn(move |req| {
                let server = server.clone();
                async move { Ok::<_, Infallible>(server.handle(req, client_addr).await) }
            });
            let connection = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .serve_connection(TokioIo::new(stream), service);
            let connection = graceful.watch(connection);
            let open = open.clone();
            open.fetch_add(1, Ordering::Relaxed);
            tokio::spawn(async move {
                let _ = connection.await;
                open.fetch_sub(1, Ordering::Relaxed);
            });
        }
        drop(listener);
        let serving = open.load(Ordering::Relaxed);
        eprintln!(
            "tally-host: no longer accepting; finishing {serving} open connection{}",
            if serving == 1 { "" } else { "s" }
        );
        let grace = self.options.shutdown_grace;
        if tokio::time::timeout(grace, graceful.shutdown())
            .await
            .is_err()
        {
            let left = open.load(Ordering::Relaxed);
            eprintln!(
                "tally-host: closed {left} connection{} still open after the {} s grace",
                if left == 1 { "" } else { "s" },
                grace.as_secs_f64()
            );
        }
        Ok(())
    }

    /// Handles one request from `client_addr`.
    pub async fn handle(&self, req: Request<Incoming>, client_addr: SocketAddr) -> HostResponse {
        let started = Instant::now();
        let method = req.method().clone();
        let path = req.uri().path().to_string();
        let (component, response) = self.route_and_run(req, client_addr).await;
        if self.options.log_requests {
            log_line(
                &method,
                &path,
                component.as_deref(),
                response.status(),
                started,
            );
        }
        response
    }

    async fn route_and_run(
        &self,
        req: Request<Incoming>,
        client_addr: SocketAddr,
    ) -> (Option<String>, HostResponse) {
        let path = req.uri().path().to_string();
        if let Some(well_known) = path.strip_prefix(WELL_KNOWN_PREFIX) {
            let resp = match well_known {
                "health" => plain(StatusCode::OK, "OK"),
                _ => plain(StatusCode::NOT_FOUND, ""),
            };
            return (None, resp);
        }
        let Some(route) = self.app.router().route(&path) else {
            return (None, plain(StatusCode::NOT_FOUND, ""));
        };
        let component = route.component_id().to_string();
        if declared_length(&req).is_some_and(|n| n > self.options.max_request_body_bytes) {
            return (Some(component), plain(StatusCode::PAYLOAD_TOO_LARGE, ""));
        }
        let req = match prepare_request(req, &route, client_addr) {
            Ok(req) => req,
            Err(reason) => return (Some(component), plain(StatusCode::BAD_REQUEST, reason)),
        };
        let resp = match self.app.dispatch(&route, req).await {
            Dispatch::Answered(resp) => resp,
            Dispatch::Failed(err) => {
                eprintln!("tally-host: component {component:?} failed: {err:#}");
                plain(StatusCode::INTERNAL_SERVER_ERROR, "")
            }
        };
        (Some(component), resp)
    }
}

/// Sets the absolute URI and the `spin-*` headers the way Spin's HTTP trigger does.
fn prepare_request(
    req: Request<Incoming>,
    route: &spin_rules::routes::RouteMatch,
    client_addr: SocketAddr,
) -> Result<Request<Incoming>, &'static str> {
    let (mut parts, body) = req.into_parts();
    let authority = request_authority(&parts)?;
    let path_and_query = parts
        .uri
        .path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into());
    let full_url = format!("http://{authority}{path_and_query}");
    parts.uri = http::Uri::builder()
        .scheme("http")
        .authority(authority.as_str())
        .path_and_query(path_and_query.as_str())
        .build()
        .map_err(|_| "invalid request URI")?;

    let headers = &mut parts.headers;
    headers.remove(header::CONNECTION);
    let forged: Vec<_> = headers
        .keys()
        .filter(|name| name.as_str().starts_with("spin-"))
        .cloned()
        .collect();
    for name in forged {
        headers.remove(name);
    }
    for (name, value) in spin_rules::routes::spin_request_headers(route, &full_url, client_addr) {
        let (Ok(name), Ok(value)) = (
            header::HeaderName::from_bytes(name.as_bytes()),
            HeaderValue::from_str(&value),
        ) else {
            continue;
        };
        headers.append(name, value);
    }
    Ok(Request::from_parts(parts, body))
}

/// The request's authority from its URI or `Host` header, which must agree when both exist.
fn request_authority(parts: &http::request::Parts) -> Result<String, &'static str> {
    let from_header = parts
        .headers
        .get(header::HOST)
        .map(|h| h.to_str().map_err(|_| "Host header is not valid UTF-8"))
        .transpose()?
        .map(|h| {
            h.parse::<http::uri::Authority>()
                .map_err(|_| "Host header is not a valid authority")
        })
        .transpose()?;
    match (from_header, parts.uri.authority()) {
        (None, None) => Err("no Host header in request"),
        (Some(a), None) => Ok(a.to_string()),
        (None, Some(a)) => Ok(a.to_string()),
        (Some(a), Some(b)) if &a == b => Ok(a.to_string()),
        (Some(_), Some(_)) => Err("authority in Host header does not match the request URI"),
    }
}

fn declared_length<B>(req: &Request<B>) -> Option<u64> {
    req.headers()
        .get(header::CONTENT_LENGTH)?
        .to_str()
        .ok()?
        .parse()
        .ok()
}

/// A host-generated response with a plain-text body.
fn plain(status: StatusCode, body: &'static str) -> HostResponse {
    let body = Full::new(Bytes::from_static(body.as_bytes()))
        .map_err(|never| match never {})
        .boxed_unsync();
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    if !resp.body().is_end_stream() {
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
    }
    resp
}

fn log_line(
    method: &http::Method,
    path: &str,
    component: Option<&str>,
    status: StatusCode,
    started: Instant,
) {
    let line = serde_json::json!({
        "source": "tally-host",
        "method": method.as_str(),
        "path": path,
        "component": component,
        "status": status.as_u16(),
        "duration_us": started.elapsed().as_micros() as u64,
    });
    println!("{line}");
}
