//! `tally-host`: serve a Spin application locally, optionally with its own Redis shards.
//!
//! `tally-host --shards 2` starts two redis-server shards on free loopback ports, points the
//! application's `shards` variable at them, and serves http://127.0.0.1:3000 until Ctrl-C or
//! SIGTERM; then it stops accepting, finishes the requests it is serving (within
//! `--shutdown-grace`), writes out the components' last log lines, stops the shards and exits 0.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use tally_host::runtime::{Application, HostOptions, MemoryReset};
use tally_host::server::{Server, ServerOptions};
use tally_host::shards::RedisShards;
use tally_host::spin_kv::KeyValueBackend;
use tally_host::spin_redis::RedisPolicy;

/// Serve a Spin application on wasmtime, the way `spin up` would.
#[derive(Parser, Debug)]
#[command(name = "tally-host", version)]
struct Args {
    /// The Spin manifest.
    #[arg(long, default_value = "spin.toml")]
    manifest: PathBuf,
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:3000")]
    listen: SocketAddr,
    /// Start this many local redis-server shards and set the `shards` variable to them.
    #[arg(long, default_value_t = 0)]
    shards: usize,
    /// Keep Redis connections open across requests (one per address and worker thread).
    /// Faster, but not what Spin does: by default every request opens its own, as on Spin.
    #[arg(long)]
    redis_reuse: bool,
    /// Where the `default` key-value store lives: `sqlite` (a file in the state directory, as
    /// Spin's default store) or `memory` (gone when the host stops; faster than Spin).
    #[arg(long, value_enum, default_value_t = KvKind::Sqlite)]
    kv: KvKind,
    /// How pooled instance memory is reset between requests: `spin` (the first 2 MiB zeroed
    /// or restored with memset, as Spin configures wasmtime) or `dirty-pages` (only the pages
    /// an instance wrote; faster, not what Spin does).
    #[arg(long, value_enum, default_value_t = ResetKind::Spin)]
    memory_reset: ResetKind,
    /// The state directory for the SQLite key-value store (default: `.spin` beside the
    /// manifest, as Spin's `--state-dir`; with `--shards`, a temporary directory removed with
    /// the shards' data).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Redis connect timeout in milliseconds.
    #[arg(long, default_value_t = 1000)]
    redis_connect_timeout_ms: u64,
    /// Redis command timeout in milliseconds.
    #[arg(long, default_value_t = 2000)]
    redis_command_timeout_ms: u64,
    /// A PEM file of the private CA that rediss:// shards' certificates are signed by
    /// (default: the system's trusted roots).
    #[arg(long)]
    redis_ca_file: Option<PathBuf>,
    /// Allocate instances on demand instead of from the pooling allocator.
    #[arg(long)]
    no_pooling: bool,
    /// Do not print a line per request.
    #[arg(long)]
    quiet: bool,
    /// On SIGTERM or SIGINT, how many seconds requests already being served may take to
    /// finish; connections still open after it are closed.
    #[arg(long, default_value_t = 10)]
    shutdown_grace: u64,
    /// One multi-threaded tokio runtime for all connections instead of one single-threaded
    /// runtime per core, each accepting on its own `SO_REUSEPORT` listener.
    #[arg(long)]
    multi_thread_runtime: bool,
    /// Worker threads (one runtime and listener each, or the multi-threaded runtime's
    /// workers); default: one per core.
    #[arg(long)]
    workers: Option<usize>,
}

/// `--kv`: the default key-value store's backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum KvKind {
    /// A SQLite file, as Spin's default store.
    Sqlite,
    /// The host's memory.
    Memory,
}

/// `--memory-reset`: how pooled instance memory is made fresh.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum ResetKind {
    /// As Spin configures wasmtime.
    Spin,
    /// Only the pages an instance dirtied.
    DirtyPages,
}

fn main() -> Result<()> {
    let args = Args::parse();
    // Library errors (wasmtime's, including the ordinary end-of-stream ones every request
    // raises) must not capture a backtrace each: that alone costs tens of microseconds per
    // request when RUST_BACKTRACE is set. Panics still honour RUST_BACKTRACE.
    if std::env::var_os("RUST_LIB_BACKTRACE").is_none() {
        std::env::set_var("RUST_LIB_BACKTRACE", "0");
    }
    // Shards are started on the main thread, which lives as long as they must.
    let shards = match args.shards {
        0 => None,
        n => Some(RedisShards::start(n).context("starting local Redis shards")?),
    };
    let shard_list = shards.as_ref().map(RedisShards::shard_list);
    // Shards started here hold temporary data; so does the node-local state that caches it
    // (counts, breaker views, remembered blocks), unless a state directory is named.
    let temporary_state = match (&shards, &args.state_dir) {
        (Some(_), None) => Some(tempfile::Builder::new().prefix("tally-state-").tempdir()?),
        _ => None,
    };
    let state_dir = args
        .state_dir
        .clone()
        .or_else(|| temporary_state.as_ref().map(|d| d.path().to_path_buf()));

    let options = HostOptions {
        redis: RedisPolicy {
            reuse_connections: args.redis_reuse,
            connect_timeout: Duration::from_millis(args.redis_connect_timeout_ms),
            command_timeout: Duration::from_millis(args.redis_command_timeout_ms),
            tls_root_cert: match &args.redis_ca_file {
                Some(path) => Some(Arc::new(std::fs::read(path).with_context(|| {
                    format!("reading the Redis CA file {}", path.display())
                })?)),
                None => None,
            },
        },
        pooling: !args.no_pooling,
        memory_reset: match args.memory_reset {
            ResetKind::Spin => MemoryReset::LikeSpin,
            ResetKind::DirtyPages => MemoryReset::DirtyPages,
        },
        key_value: match args.kv {
            KvKind::Sqlite => KeyValueBackend::Sqlite { state_dir },
            KvKind::Memory => KeyValueBackend::Memory,
        },
        ..HostOptions::default()
    };
    let app = Application::load_with_env(&args.manifest, options, move |name| {
        match (name, &shard_list) {
            ("SPIN_VARIABLE_SHARDS", Some(list)) => Some(list.clone()),
            _ => std::env::var(name).ok(),
        }
    })?;

    let app = Arc::new(app);
    if args.multi_thread_runtime {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        if let Some(workers) = args.workers {
            builder.worker_threads(workers.max(1));
        }
        let runtime = builder.enable_all().build()?;
        runtime.block_on(serve(args, app.clone(), shards.as_ref()))?;
    } else {
        serve_per_core(args, app.clone(), shards.as_ref())?;
    }
    // The components' last log lines, before the shards go.
    app.flush_log();
    drop(shards);
    drop(temporary_state);
    eprintln!("tally-host: stopped after {}", app.io_totals().summary());
    Ok(())
}

async fn serve(args: Args, app: Arc<Application>, shards: Option<&RedisShards>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("listening on {}", args.listen))?;
    let addr = listener.local_addr()?;
    print_banner(addr, shards, &app_info(&app));
    server(&args, app).serve(listener, shutdown_signal()).await
}

/// The HTTP server over the loaded app, logging a line per request unless `--quiet`.
fn server(args: &Args, app: Arc<Application>) -> Arc<Server> {
    Server::new(
        app,
        ServerOptions {
            log_requests: !args.quiet,
            shutdown_grace: Duration::from_secs(args.shutdown_grace),
            ..ServerOptions::default()
        },
    )
}

/// One single-threaded runtime per core, each with its own listener on the same address
/// (`SO_REUSEPORT`: the kernel spreads connections over them). A request, its instance and its
/// response body then stay on one thread, with no cross-thread wake-ups.
fn serve_per_core(args: Args, app: Arc<Application>, shards: Option<&RedisShards>) -> Result<()> {
    let threads = args
        .workers
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .max(1);
    let info = app_info(&app);
    let server = server(&args, app);
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let mut addr = args.listen;
    // With SO_REUSEPORT alone, a second tally-host on the same port would silently share this
    // one's traffic. Bind once without it first, so an address in use fails as it always did.
    if addr.port() != 0 {
        drop(std::net::TcpListener::bind(addr).with_context(|| format!("listening on {addr}"))?);
    }
    let mut workers = Vec::with_capacity(threads);
    for index in 0..threads {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let listener = runtime.block_on(async { reuseport_listener(addr) })?;
        // Later listeners join the first one's port (which may have been chosen by the kernel).
        addr = listener.local_addr()?;
        let server = server.clone();
        let mut stopped = stopped.clone();
        workers.push(
            std::thread::Builder::new()
                .name(format!("tally-worker-{index}"))
                .spawn(move || {
                    let shutdown = async move {
                        let _ = stopped.wait_for(|stop| *stop).await;
                    };
                    runtime.block_on(server.serve(listener, shutdown))
                })?,
        );
    }
    print_banner(addr, shards, &info);
    let signals = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    signals.block_on(shutdown_signal());
    let _ = stop.send(true);
    for worker in workers {
        worker
            .join()
            .map_err(|_| anyhow::anyhow!("a worker thread panicked"))??;
    }
    Ok(())
}

fn reuseport_listener(addr: SocketAddr) -> Result<tokio::net::TcpListener> {
    let socket = match addr {
        SocketAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
        SocketAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
    };
    socket.set_reuseaddr(true)?;
    socket.set_reuseport(true)?;
    socket
        .bind(addr)
        .with_context(|| format!("listening on {addr}"))?;
    Ok(socket.listen(1024)?)
}

/// What the banner says about the host's own settings.
fn app_info(app: &Application) -> String {
    let redis = if app.options().redis.reuse_connections {
        "reused across requests (--redis-reuse)"
    } else {
        "a fresh connection per request, as on Spin"
    };
    let reset = match app.options().memory_reset {
        MemoryReset::LikeSpin => "the first 2 MiB zeroed or restored per request, as on Spin",
        MemoryReset::DirtyPages => "only dirtied pages reset (--memory-reset dirty-pages)",
    };
    format!(
        "tally-host: key-value store {}\ntally-host: Redis connections: {redis}\n\
         tally-host: instance memory: {reset}",
        app.key_value_stores().location()
    )
}

fn print_banner(addr: SocketAddr, shards: Option<&RedisShards>, info: &str) {
    eprintln!("{info}");
    if let Some(shards) = shards {
        for shard in shards.shards() {
            eprintln!(
                "tally-host: shard {} = redis://127.0.0.1:{} (data in {})",
                shard.name(),
                shard.port(),
                shard.dir().display()
            );
        }
    }
    eprintln!("tally-host: serving http://{addr}");
    for route in [
        "/visit/...",
        "/visits/...",
        "/metrics",
        "/summary",
        "/health",
        "/stats",
        "/export",
        "/tally.js",
        "/dashboard",
        "/openapi.json",
    ] {
        eprintln!("  http://{addr}{route}");
    }
    eprintln!("try: curl -s http://{addr}/health");
    eprintln!("     curl -s -X POST http://{addr}/visit/home");
    eprintln!("     curl -s http://{addr}/visits/home");
    eprintln!(
        "     curl -s -X POST http://{addr}/metrics -H 'content-type: application/json' \\\n          \
         -d '{{\"timestamp\":\"'$(date -u +%FT%TZ)'\",\"value\":1.5,\"type\":\"cpu\"}}'"
    );
    eprintln!("     curl -s 'http://{addr}/summary?type=cpu&period=hourly'");
    eprintln!("     open http://{addr}/dashboard in a browser");
    eprintln!("stop with Ctrl-C");
}

async fn shutdown_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing the SIGTERM handler");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    eprintln!("tally-host: shutting down");
}

/// mimalloc: a request makes a few hundred small allocations (wasmtime's store and resource
/// tables, `wasi:http` fields, hyper); +14% req/s over glibc's malloc on `/health/live`.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;
