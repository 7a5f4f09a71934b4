//! The per-request store data: everything one component instance can reach, dropped with the
//! request. WASI gets no preopened directories, no environment and no network sockets; stdout
//! and stderr go to the host's own (stdout can be captured in memory for tests).

use wasmtime::component::ResourceTable;
use wasmtime::StoreLimits;
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

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
}

impl RequestState {
    /// State for one instance with the given capabilities.
    pub fn new(
        redis: RedisAccess,
        kv: KeyValueAccess,
        variables: VariablesAccess,
        limits: StoreLimits,
        captured_stdout: Option<&MemoryOutputPipe>,
    ) -> Self {
        let mut builder = WasiCtx::builder();
        builder.inherit_stderr();
        match captured_stdout {
            Some(pipe) => builder.stdout(pipe.clone()),
            None => builder.inherit_stdout(),
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
