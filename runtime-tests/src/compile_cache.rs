//! Compiles each component file once per process.
//!
//! Compiling a component with Cranelift costs about half a second; tests load the same files
//! into many applications. The first load compiles and keeps the serialized artifact, keyed
//! by the file (path, length, modification time) and the engine's compatibility hash; later
//! loads deserialize it, which takes milliseconds. A production host loads each file once, so
//! the cache costs it nothing but one copy of each artifact.

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use anyhow::{Context, Result};
use wasmtime::component::Component;
use wasmtime::Engine;

#[derive(Clone, PartialEq, Eq, Hash)]
struct Key {
    path: PathBuf,
    len: u64,
    modified: SystemTime,
    engine: u64,
}

fn artifacts() -> &'static Mutex<HashMap<Key, Arc<Vec<u8>>>> {
    static ARTIFACTS: OnceLock<Mutex<HashMap<Key, Arc<Vec<u8>>>>> = OnceLock::new();
    ARTIFACTS.get_or_init(Default::default)
}

/// Loads the component at `path` for `engine`, compiling it only if this process has not
/// compiled the same file for a compatible engine before.
pub fn load(engine: &Engine, path: &Path) -> Result<Component> {
    let meta = std::fs::metadata(path).with_context(|| format!("reading {}", path.display()))?;
    let mut hasher = DefaultHasher::new();
    engine.precompile_compatibility_hash().hash(&mut hasher);
    let key = Key {
        path: path.to_path_buf(),
        len: meta.len(),
        modified: meta.modified()?,
        engine: hasher.finish(),
    };
    let cached = artifacts().lock().unwrap().get(&key).cloned();
    if let Some(bytes) = cached {
        // SAFETY: the bytes were produced by `Component::serialize` in this process for an
        // engine with the same compatibility hash; nothing else writes to the cache.
        return unsafe { Component::deserialize(engine, bytes.as_slice()) }
            .map_err(anyhow::Error::from);
    }
    let component = Component::from_file(engine, path).map_err(anyhow::Error::from)?;
    let bytes = component.serialize().map_err(anyhow::Error::from)?;
    artifacts().lock().unwrap().insert(key, Arc::new(bytes));
    Ok(component)
}
