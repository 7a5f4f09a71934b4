//! Computes the SHA-1 of every Lua script in `lua/` at build time, so components can call
//! `EVALSHA` without hashing the script on every request.

use std::fmt::Write as _;
use std::path::PathBuf;

fn main() {
    let lua = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap()).join("lua");
    println!("cargo:rerun-if-changed={}", lua.display());
    let mut names: Vec<_> = std::fs::read_dir(&lua)
        .expect("reading lua/")
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "lua"))
        .collect();
    names.sort();
    let mut out = String::new();
    for path in names {
        println!("cargo:rerun-if-changed={}", path.display());
        let source = std::fs::read(&path).expect("reading a script");
        let digest = sha1_smol::Sha1::from(&source).digest().to_string();
        let stem = path.file_stem().unwrap().to_string_lossy().to_uppercase();
        writeln!(
            out,
            "/// SHA-1 of `lua/{}`.",
            path.file_name().unwrap().to_string_lossy()
        )
        .unwrap();
        writeln!(out, "pub const {stem}_SHA1: &str = \"{digest}\";").unwrap();
    }
    let dest = PathBuf::from(std::env::var("OUT_DIR").unwrap()).join("script_digests.rs");
    std::fs::write(dest, out).expect("writing script_digests.rs");
}
