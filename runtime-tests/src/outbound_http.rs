//! Outbound HTTP from components is refused.
//!
//! Spin allows outbound HTTP only to hosts in `allowed_outbound_hosts`; no Tally component lists
//! an HTTP host, and this host does not implement outbound HTTP, so every outgoing request is
//! answered with `HTTP-request-denied`, the error Spin gives for a host that is not allowed.

use wasmtime_wasi_http::{Error, RequestOptions, WasiHttpHooks};

/// Hooks that deny every outgoing request.
#[derive(Debug, Default)]
pub struct DenyOutboundHttp;

type SendFuture = Box<
    dyn std::future::Future<
            Output = Result<
                (
                    http::Response<wasmtime_wasi_http::WasiBody>,
                    Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
                ),
                Error,
            >,
        > + Send,
>;

impl WasiHttpHooks for DenyOutboundHttp {
    /// wasmtime's default list, checked directly: the default method builds a shared closure
    /// for every header a component sets.
    fn is_forbidden_header(&mut self, name: &http::HeaderName) -> bool {
        wasmtime_wasi_http::DEFAULT_FORBIDDEN_HEADERS.contains(name)
    }

    fn send_request(
        &mut self,
        _request: http::Request<wasmtime_wasi_http::WasiBody>,
        _options: Option<RequestOptions>,
        _fut: Box<dyn std::future::Future<Output = Result<(), Error>> + Send>,
    ) -> SendFuture {
        Box::new(async { Err(Error::HttpRequestDenied) })
    }
}
