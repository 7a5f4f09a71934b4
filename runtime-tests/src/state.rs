//! The per-request store data: everything one component instance can reach, dropped with the
//! request. WASI gets no preopened directories, no environment and no network sockets; stdout
//! and stderr go to the host's own (stdout through the buffered
//! [`ComponentLog`](crate::component_log::ComponentLog)), or are captured in memory for tests.

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::cli::StdoutStream;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::io_counts::RequestIo;
use crate::outbound_http::DenyOutboundHttp;
use crate::spin_kv::KeyValueAccess;
use crate::spin_redis::RedisAccess;
use crate::spin_variables::VariablesAccess;

/// The data of one request's `Store`.
pub struct RequestState {
    pub(crate) table: ResourceTable,
    wasi: WasiCtx,
    http: WasiHttpCtx,
    hooks: DenyOutboundHttp,
    pub(crate) limits: StoreLimits,
    pub(crate) redis: RedisAccess,
    pub(crate) kv: KeyValueAccess,
    pub(crate) variables: VariablesAccess,
    /// What this instance has asked of the key-value store and Redis so far.
    pub(crate) io: RequestIo,
}

impl RequestState {
    /// State for one instance with the given capabilities.
    pub fn new(
        redis: RedisAccess,
        kv: KeyValueAccess,
        variables: VariablesAccess,
        limits: StoreLimits,
        stdout: impl StdoutStream + 'static,
        stderr: Option<MemoryOutputPipe>,
    ) -> Self {
        let mut builder = WasiCtx::builder();
        builder.stdout(stdout);
        match stderr {
            Some(pipe) => builder.stderr(pipe),
            None => builder.inherit_stderr(),
        };
        let wasi = builder.build();
        Self {
            table: ResourceTable::new(),
            wasi,
            http: WasiHttpCtx::new(),
            hooks: DenyOutboundHttp,
            limits,
            redis,
            kv,
            variables,
            io: RequestIo::default(),
        }
    }
}

impl WasiView for RequestState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

impl WasiHttpView for RequestState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.hooks,
        }
    }
}
