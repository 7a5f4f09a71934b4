//! Finds the dashboard's JavaScript dependencies that `scripts/lib.sh` (`ensure_js_deps`)
//! installs from the npm registry with `npm ci`, pinned by `js/package-lock.json`, and hands
//! their paths to the component as compile-time environment variables.
//!
//! The folder is `target/js/node_modules` at the workspace root, or `$TALLY_JS_DIR`.

use std::path::PathBuf;

/// (environment variable, file under `node_modules`).
const FILES: &[(&str, &str)] = &[
    ("UPLOT_JS", "uplot/dist/uPlot.iife.min.js"),
    ("UPLOT_CSS", "uplot/dist/uPlot.min.css"),
    ("UPLOT_LICENSE", "uplot/LICENSE"),
];

fn main() {
    println!("cargo:rerun-if-env-changed=TALLY_JS_DIR");
    println!("cargo:rerun-if-changed=js/package-lock.json");
    let modules = match std::env::var_os("TALLY_JS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
            manifest.join("../../target/js/node_modules")
        }
    };
    for (var, file) in FILES {
        let path = modules.join(file);
        let Ok(path) = path.canonicalize() else {
            panic!(
                "{} is missing: the dashboard's JavaScript is installed with npm ci by \
                 scripts/lib.sh (scripts/run and scripts/test run it)",
                path.display()
            );
        };
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}
