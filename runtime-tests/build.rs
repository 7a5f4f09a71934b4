//! Generates the host bindings for the Spin interfaces Tally's components import.
//!
//! The WIT comes from the `spin-sdk` crate the components are built with (its version is read
//! from the workspace's `Cargo.lock`), so the host implements exactly the interfaces the guests
//! import. The generated file holds one `bindgen!` invocation pointing at that WIT.

use std::path::{Path, PathBuf};
use std::process::Command;

fn main() {
    let manifest_dir = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let workspace = manifest_dir.parent().expect("workspace root");
    let lock = workspace.join("Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());

    let version = spin_sdk_version(&lock);
    let wit = locate_wit(workspace, &version);
    println!("cargo:rerun-if-changed={}", wit.display());

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
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("spin_bindings.rs");
    std::fs::write(out, bindings).expect("writing spin_bindings.rs");
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
