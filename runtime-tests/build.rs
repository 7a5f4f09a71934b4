//! Generates the host bindings for the Spin interfaces Tally's components import.
//!
//! The WIT comes from the `spin-sdk` crate the components are built with (its version is read
//! from the workspace's `Cargo.lock`), so the host implements exactly the interfaces the guests
//! import. Only the three interface files the components use (`redis`, `key-value`,
//! `variables` of `fermyon:spin@2.0.0`, which depend on nothing else) are copied into a small
//! WIT package under `OUT_DIR`: `bindgen!` over spin-sdk's whole WIT folder would parse its
//! WASI 0.3 packages too, whose `stream`/`future` types need wasmtime's
//! `component-model-async` feature. The generated file holds one `bindgen!` invocation.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The `fermyon:spin@2.0.0` interface files the components import.
const INTERFACES: [&str; 3] = ["redis.wit", "key-value.wit", "variables.wit"];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().expect("workspace root");
    let lock = workspace.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());

    let version = spin_sdk_version(&lock);
    let spin = locate_wit(workspace, &version)
        .join("deps")
        .join("spin@2.0.0");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    let wit = out.join("spin-wit");
    std::fs::create_dir_all(&wit).expect("creating the WIT folder");
    std::fs::write(wit.join("package.wit"), "package fermyon:spin@2.0.0;\n")
        .expect("writing package.wit");
    for file in INTERFACES {
        let src = spin.join(file);
        println!("cargo:rerun-if-changed={}", src.display());
        std::fs::copy(&src, wit.join(file))
            .unwrap_or_else(|e| panic!("copying {}: {e}", src.display()));
    }

    let bindings = format!(
        r#"wasmtime::component::bindgen!({{
    path: {path:?},
    interfaces: "
        import fermyon:spin/redis@2.0.0;
        import fermyon:spin/key-value@2.0.0;
        import fermyon:spin/variables@2.0.0;
    ",
    imports: {{ default: async | trappable }},
    with: {{
        "fermyon:spin/redis.connection": crate::spin_redis::RedisConnection,
        "fermyon:spin/key-value.store": crate::spin_kv::OpenStore,
    }},
}});
"#,
        path = wit.display().to_string()
    );
    std::fs::write(out.join("spin_bindings.rs"), bindings).expect("writing spin_bindings.rs");
}
/// The `spin-sdk` version pinned in `Cargo.lock`.
fn spin_sdk_version(lock: &Path) -> String {
    let text = std::fs::read_to_string(lock).expect("reading Cargo.lock");
    let mut lines = text.lines();
    while let Some(line) = lines.next() {
        if line.trim() == r#"name = "spin-sdk""# {
            let version = lines.next().expect("version line after spin-sdk");
            return version
                .trim()
                .trim_start_matches("version = ")
                .trim_matches('"')
                .to_string();
        }
    }
    panic!("spin-sdk is not in Cargo.lock");
}

/// Finds `spin-sdk-<version>/wit` in cargo's registry sources, fetching once if missing.
fn locate_wit(workspace: &Path, version: &str) -> PathBuf {
    if let Some(found) = find_in_registry(version) {
        return found;
    }
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .arg("fetch")
        .arg("--manifest-path")
        .arg(workspace.join("Cargo.toml"))
        .status()
        .expect("running cargo fetch");
    assert!(status.success(), "cargo fetch failed");
    find_in_registry(version).unwrap_or_else(|| panic!("spin-sdk-{version} source not found"))
}

fn find_in_registry(version: &str) -> Option<PathBuf> {
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))?;
    let src = cargo_home.join("registry").join("src");
    std::fs::read_dir(src).ok()?.flatten().find_map(|index| {
        let wit = index.path().join(format!("spin-sdk-{version}")).join("wit");
        wit.is_dir().then_some(wit)
    })
}
