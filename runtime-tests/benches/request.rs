//! Per-request cost of the host on a route that does no I/O (`GET /health/live`): a fresh
//! instance from the pre-instantiated component, the guest's handler, and the response body,
//! in-process (no TCP). Printed next to a native handler doing the same work, the yardstick
//! for the "Wasm tax". Run: `cargo bench -p tally-host --bench request`.

use std::path::Path;
use std::time::Duration;

use bytes::Bytes;
use criterion::{criterion_group, criterion_main, Criterion};
use http_body_util::{BodyExt, Empty, Full};
use tally_host::runtime::{Application, Dispatch, HostOptions, MemoryReset};

/// The allocator the `tally-host` binary uses.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The app's manifest, or `TALLY_BENCH_MANIFEST` (to compare component builds side by side).
fn manifest() -> std::path::PathBuf {
    if let Some(other) = std::env::var_os("TALLY_BENCH_MANIFEST") {
        return other.into();
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .join("spin.toml")
}

fn request() -> hyper::Request<Empty<Bytes>> {
    hyper::Request::builder()
        .uri("http://127.0.0.1:3000/health/live")
        .header("host", "127.0.0.1:3000")
        .body(Empty::new())
        .unwrap()
}

fn bench_wasm(c: &mut Criterion, name: &str, options: HostOptions) {
    let app = Application::load_with_env(&manifest(), options, |name| {
        (name == "SPIN_VARIABLE_SHARDS").then(|| "a=redis://127.0.0.1:1".to_string())
    })
    .expect("components built (scripts/test builds them)");
    let route = app.router().route("/health/live").expect("route");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    c.bench_function(name, |b| {
        b.to_async(&runtime).iter(|| async {
            match app.dispatch(&route, request()).await {
                Dispatch::Answered(resp) => {
                    assert_eq!(resp.status(), 200);
                    resp.into_body().collect().await.unwrap().to_bytes()
                }
                Dispatch::Failed(err) => panic!("{err:#}"),
            }
        })
    });
}

fn native_handler(_req: hyper::Request<Empty<Bytes>>) -> hyper::Response<Full<Bytes>> {
    let mut resp = hyper::Response::new(Full::new(Bytes::from_static(b"{\"status\":\"live\"}")));
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    resp
}

fn host_request(c: &mut Criterion) {
    // As the tally-host binary does: no backtrace capture for library errors.
    std::env::set_var("RUST_LIB_BACKTRACE", "0");
    bench_wasm(
        c,
        "wasm instantiate+handle /health/live (pooling, memory reset as Spin)",
        HostOptions::default(),
    );
    bench_wasm(
        c,
        "wasm instantiate+handle /health/live (pooling, dirty pages reset)",
        HostOptions {
            memory_reset: MemoryReset::DirtyPages,
            ..HostOptions::default()
        },
    );
    bench_wasm(
        c,
        "wasm instantiate+handle /health/live (on-demand allocator)",
        HostOptions {
            pooling: false,
            ..HostOptions::default()
        },
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    c.bench_function("native handler /health/live (yardstick)", |b| {
        b.to_async(&runtime).iter(|| async {
            native_handler(request())
                .into_body()
                .collect()
                .await
                .unwrap()
                .to_bytes()
        })
    });
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));
    targets = host_request
}
criterion_main!(benches);
