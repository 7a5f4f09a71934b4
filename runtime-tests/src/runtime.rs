//! The application loaded into wasmtime, the way Spin loads it.
//!
//! At start-up: read `spin.toml`, resolve variables (a required variable without a value is an
//! error now, not at request time), check every component's `allowed_outbound_hosts` and
//! key-value labels, compile each component once and pre-instantiate it against a linker that
//! offers exactly what Spin offers. Per request: a fresh `Store` and a fresh instance from the
//! pooling allocator, dropped when the response body is done.

use std::collections::{BTreeSet, HashMap};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use spin_rules::allowed_hosts::AllowedHosts;
use spin_rules::manifest::App;
use spin_rules::routes::{RouteMatch, Router};
use spin_rules::variables::Resolver;
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Engine, InstanceAllocationStrategy, PoolingAllocationConfig, Store};
use wasmtime::{StoreLimits, StoreLimitsBuilder};
use wasmtime_wasi::p2::pipe::MemoryOutputPipe;
use wasmtime_wasi_http::p2::bindings::http::types::Scheme;
use wasmtime_wasi_http::p2::bindings::ProxyPre;
use wasmtime_wasi_http::p2::body::HyperOutgoingBody;
use wasmtime_wasi_http::WasiHttpView;

use crate::component_log::ComponentLog;
use crate::io_counts::{IoSnapshot, IoTotals};
use crate::spin_kv::{KeyValueAccess, KeyValueBackend, KeyValueStores};
use crate::spin_redis::{RedisAccess, RedisConnector, RedisPolicy};
use crate::spin_variables::{ComponentVariables, VariablesAccess};
use crate::state::RequestState;
use crate::{bindings, compile_cache};

/// How often the epoch ticks; request deadlines are counted in ticks.
const EPOCH_TICK: Duration = Duration::from_millis(10);

/// Linear memory kept resident (and reset with memset) per pooled slot, as Spin keeps it.
const KEEP_RESIDENT_BYTES: usize = 2 << 20;
/// Table memory kept resident per pooled slot, as Spin keeps it.
const TABLE_KEEP_RESIDENT_BYTES: usize = 512 << 10;
/// Decommits batched together when memory beyond the resident part must be returned.
const DECOMMIT_BATCH: usize = 16;

/// How a pooled instance slot's memory is made fresh for the next request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum MemoryReset {
    /// As Spin v4.0.2 configures wasmtime's pooling allocator: the first 2 MiB of linear memory
    /// (and 512 KiB of tables) stay resident and are zeroed or restored from the module's
    /// data with memset/memcpy, as far as the instance's memory reaches. So a component that
    /// starts with, or grows to, more memory pays for it on every request, here as on Spin.
    #[default]
    LikeSpin,
    /// Only the pages the instance dirtied are reset (Linux 6.7+ `PAGEMAP_SCAN`; elsewhere as
    /// `LikeSpin`): cheaper, and blind to a component's memory size. Not what Spin does.
    DirtyPages,
}

/// Host settings that are not part of the Spin application.
#[derive(Clone, Debug)]
pub struct HostOptions {
    /// Outbound Redis time bounds and connection reuse.
    pub redis: RedisPolicy,
    /// Instances that may exist at once (the pooling allocator's slots).
    pub max_instances: u32,
    /// Linear memory one instance may grow to.
    pub max_instance_memory_bytes: usize,
    /// Wall-clock bound on one request's guest execution.
    pub request_timeout: Duration,
    /// Use the pooling allocator (faster instantiation); off allocates on demand.
    pub pooling: bool,
    /// Collect the components' stdout here instead of the host's (tests read log lines).
    pub captured_stdout: Option<MemoryOutputPipe>,
    /// Collect the components' stderr here instead of the host's (tests keep their output
    /// readable).
    pub captured_stderr: Option<MemoryOutputPipe>,
    /// Where the `default` key-value store lives: a SQLite file as on Spin (default), or memory.
    pub key_value: KeyValueBackend,
    /// How pooled instance memory is reset between requests.
    pub memory_reset: MemoryReset,
}

impl Default for HostOptions {
    fn default() -> Self {
        Self {
            redis: RedisPolicy::default(),
            max_instances: 256,
            max_instance_memory_bytes: 64 << 20,
            request_timeout: Duration::from_secs(30),
            pooling: true,
            captured_stdout: None,
            captured_stderr: None,
            key_value: KeyValueBackend::default(),
            memory_reset: MemoryReset::default(),
        }
    }
}

/// One component, compiled and pre-instantiated, with its capabilities.
struct LoadedComponent {
    pre: ProxyPre<RequestState>,
    allowed_hosts: Arc<AllowedHosts>,
    key_value_stores: Arc<BTreeSet<String>>,
    variables: Arc<ComponentVariables>,
}

/// A loaded Spin application ready to serve requests.
pub struct Application {
    engine: Engine,
    router: Router,
    components: HashMap<String, LoadedComponent>,
    kv: Arc<KeyValueStores>,
    redis: Arc<RedisConnector>,
    io: Arc<IoTotals>,
    options: HostOptions,
    log: ComponentLog,
    _epoch_ticker: Ticker,
    _log_flusher: Ticker,
}

/// A routed request's outcome before it becomes an HTTP response.
pub enum Dispatch {
    /// The component answered (its status may be anything).
    Answered(hyper::Response<HyperOutgoingBody>),
    /// The component trapped or never answered: Spin answers 500.
    Failed(anyhow::Error),
}

impl Application {
    /// Loads `spin.toml`, resolving variables with `SPIN_VARIABLE_*` from the process
    /// environment.
    pub fn load(manifest: &Path, options: HostOptions) -> Result<Self> {
        Self::load_with_env(manifest, options, |name| std::env::var(name).ok())
    }

    /// Loads `spin.toml`, resolving `SPIN_VARIABLE_*` through `env` (tests inject values here
    /// instead of mutating the process environment).
    pub fn load_with_env(
        manifest: &Path,
        options: HostOptions,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self> {
        let app = App::load(manifest)
            .with_context(|| format!("loading Spin manifest {}", manifest.display()))?;
        let resolver = Arc::new(Resolver::new(&app, env)?);
        resolver.ensure_required_resolvable()?;
        let router = Router::build(&app)?;

        let engine = build_engine(&options)?;
        let linker = anyhow_of(build_linker(&engine))?;
        let app_dir = manifest.parent().unwrap_or(Path::new("."));
        let kv = Arc::new(KeyValueStores::with_default_store(
            &options.key_value,
            app_dir,
        )?);

        let mut components = HashMap::new();
        for (id, decl) in &app.components {
            kv.check_labels(id, &decl.key_value_stores)?;
            let allowed_hosts = AllowedHosts::parse(&decl.allowed_outbound_hosts, &resolver)
                .with_context(|| format!("component {id:?}: invalid allowed_outbound_hosts"))?;
            let component = compile_cache::load(&engine, &decl.source).with_context(|| {
                format!(
                    "component {id:?}: cannot load {} (build the components first)",
                    decl.source.display()
                )
            })?;
            let pre = anyhow_of(linker.instantiate_pre(&component).and_then(ProxyPre::new))
                .with_context(|| format!("component {id:?} is not an HTTP component"))?;
            components.insert(
                id.clone(),
                LoadedComponent {
                    pre,
                    allowed_hosts: Arc::new(allowed_hosts),
                    key_value_stores: Arc::new(decl.key_value_stores.iter().cloned().collect()),
                    variables: Arc::new(ComponentVariables::render(
                        resolver.clone(),
                        id,
                        decl.variables.keys(),
                    )),
                },
            );
        }
        let redis = Arc::new(RedisConnector::new(options.redis.clone()));
        let log = ComponentLog::default();
        let epoch_engine = engine.clone();
        let epoch_ticker = Ticker::start("tally-epoch", move || epoch_engine.increment_epoch());
        // Its own thread: a stdout that blocks (a full pipe) must not stop the epoch, or
        // request deadlines would stop firing.
        let flushed = log.clone();
        let log_flusher = Ticker::start("tally-log", move || flushed.flush());
        Ok(Self {
            engine,
            router,
            components,
            kv,
            redis,
            io: Arc::default(),
            options,
            log,
            _epoch_ticker: epoch_ticker,
            _log_flusher: log_flusher,
        })
    }

    /// The application's router.
    pub fn router(&self) -> &Router {
        &self.router
    }

    /// The node-local key-value stores (for inspection in tests).
    pub fn key_value_stores(&self) -> &KeyValueStores {
        &self.kv
    }

    /// What every finished instance asked of the key-value store and Redis, summed.
    pub fn io_totals(&self) -> IoSnapshot {
        self.io.snapshot()
    }

    /// Writes out the components' buffered stdout now (it is also written every 10 ms
    /// and when the application is dropped).
    pub fn flush_log(&self) {
        self.log.flush();
    }

    /// The options the host runs with.
    pub fn options(&self) -> &HostOptions {
        &self.options
    }

    /// Runs the matched component on a prepared request (Spin headers already set).
    pub async fn dispatch<B>(&self, route: &RouteMatch, req: hyper::Request<B>) -> Dispatch
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        match self.run_component(route.component_id(), req).await {
            Ok(resp) => Dispatch::Answered(resp),
            Err(err) => Dispatch::Failed(err),
        }
    }

    async fn run_component<B>(
        &self,
        component_id: &str,
        req: hyper::Request<B>,
    ) -> Result<hyper::Response<HyperOutgoingBody>>
    where
        B: hyper::body::Body<Data = bytes::Bytes> + Send + 'static,
        B::Error: Into<wasmtime_wasi_http::Error>,
    {
        let component = self
            .components
            .get(component_id)
            .with_context(|| format!("unknown component {component_id:?}"))?;
        let mut store = self.new_store(component);
        let proxy = component.pre.instantiate_async(&mut store).await?;
        let request = store
            .data_mut()
            .http()
            .new_incoming_request(Scheme::Http, req)?;
        let (sender, receiver) = tokio::sync::oneshot::channel();
        let outparam = store.data_mut().http().new_response_outparam(sender)?;

        let totals = self.io.clone();
        totals.start();
        let task = tokio::task::spawn(async move {
            let handled = proxy
                .wasi_http_incoming_handler()
                .call_handle(&mut store, request, outparam)
                .await;
            totals.add(&store.data().io);
            handled
        });
        match receiver.await {
            Ok(Ok(resp)) => Ok(resp),
            Ok(Err(code)) => Err(anyhow::anyhow!("component answered with error {code:?}")),
            Err(_) => {
                let err = match task.await {
                    Ok(Ok(())) => anyhow::anyhow!("component never set a response"),
                    Ok(Err(err)) => anyhow::Error::from(err),
                    Err(join) => join.into(),
                };
                Err(err.context(format!("component {component_id:?} failed")))
            }
        }
    }

    fn new_store(&self, component: &LoadedComponent) -> Store<RequestState> {
        let redis = RedisAccess {
            allowed: component.allowed_hosts.clone(),
            connector: self.redis.clone(),
        };
        let kv = KeyValueAccess {
            stores: self.kv.clone(),
            allowed: component.key_value_stores.clone(),
        };
        let variables = VariablesAccess {
            variables: component.variables.clone(),
        };
        let limits = store_limits(&self.options);
        let stderr = self.options.captured_stderr.clone();
        let state = match &self.options.captured_stdout {
            Some(pipe) => RequestState::new(redis, kv, variables, limits, pipe.clone(), stderr),
            None => RequestState::new(redis, kv, variables, limits, self.log.clone(), stderr),
        };
        let mut store = Store::new(&self.engine, state);
        store.limiter(|state| &mut state.limits);
        let ticks = self.options.request_timeout.as_millis() / EPOCH_TICK.as_millis();
        store.set_epoch_deadline(ticks.max(1) as u64);
        store
    }
}

fn store_limits(options: &HostOptions) -> StoreLimits {
    StoreLimitsBuilder::new()
        .memory_size(options.max_instance_memory_bytes)
        .build()
}

/// Wasmtime has its own error type; the host reports `anyhow` errors.
fn anyhow_of<T>(result: wasmtime::Result<T>) -> Result<T> {
    result.map_err(anyhow::Error::from)
}

fn build_engine(options: &HostOptions) -> Result<Engine> {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    // The components use no component-model async (WASI 0.3) features: without the per-store
    // concurrency state each call and host call skips the task bookkeeping. (wasmtime's
    // `component-model-async` feature is not compiled in either; see the workspace Cargo.toml.)
    config.concurrency_support(false);
    // `TALLY_PERFMAP=1`: write /tmp/perf-<pid>.map so `perf report` names the guest's functions
    // (build the components with `CARGO_PROFILE_COMPONENT_STRIP=false` to keep their names).
    if std::env::var_os("TALLY_PERFMAP").is_some() {
        config.profiler(wasmtime::ProfilingStrategy::PerfMap);
    }
    if options.pooling {
        let slots = options.max_instances;
        let mut pool = PoolingAllocationConfig::default();
        pool.total_component_instances(slots)
            .total_core_instances(slots * 4)
            .total_memories(slots * 2)
            .total_tables(slots * 4)
            .total_stacks(slots)
            .max_memory_size(options.max_instance_memory_bytes)
            // Reset a freed instance's memory with memset instead of madvise (Spin's settings):
            // on small VMs each madvise costs TLB-shootdown IPIs.
            .linear_memory_keep_resident(KEEP_RESIDENT_BYTES)
            .table_keep_resident(TABLE_KEEP_RESIDENT_BYTES)
            .decommit_batch_size(DECOMMIT_BATCH)
            .pagemap_scan(match options.memory_reset {
                MemoryReset::LikeSpin => wasmtime::Enabled::No,
                MemoryReset::DirtyPages => wasmtime::Enabled::Auto,
            });
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
        config.memory_reservation(options.max_instance_memory_bytes as u64);
    }
    anyhow_of(Engine::new(&config)).context("configuring wasmtime")
}

/// A linker offering what Spin offers an HTTP component: WASI 0.2, `wasi:http`, and Spin's
/// Redis, key-value and variables interfaces. Anything else a component imports fails
/// pre-instantiation with a clear error at start-up.
fn build_linker(engine: &Engine) -> wasmtime::Result<Linker<RequestState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    bindings::redis::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |s| s)?;
    bindings::key_value::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |s| s)?;
    bindings::variables::add_to_linker::<_, HasSelf<RequestState>>(&mut linker, |s| s)?;
    Ok(linker)
}

/// A thread that runs `tick` every [`EPOCH_TICK`] (advancing the engine's epoch so request
/// deadlines fire; writing out the components' buffered stdout), and once more when dropped.
struct Ticker {
    stop: Option<std::sync::mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Ticker {
    fn start(name: &str, mut tick: impl FnMut() + Send + 'static) -> Self {
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    stopped.recv_timeout(EPOCH_TICK)
                {
                    tick();
                }
                tick();
            })
            .expect("spawning a ticker thread");
        Self {
            stop: Some(stop),
            thread: Some(thread),
        }
    }
}

impl Drop for Ticker {
    fn drop(&mut self) {
        self.stop.take();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
