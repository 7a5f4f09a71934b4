//! The node's default key-value store, opened at most once per request (an instance serves
//! exactly one request) and shared by the caches, the breakers and the limiter. A store that
//! cannot be opened or used reads as empty and ignores writes: node-local state is an
//! optimisation, never a reason to fail a request.

use std::cell::OnceCell;

use spin_sdk::key_value::Store;

thread_local! {
    static STORE: OnceCell<Option<Store>> = const { OnceCell::new() };
}

fn with<T>(work: impl FnOnce(&Store) -> Option<T>) -> Option<T> {
    STORE.with(|cell| {
        cell.get_or_init(|| Store::open_default().ok())
            .as_ref()
            .and_then(work)
    })
}

/// The value under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    with(|store| store.get(key).ok().flatten())
}

/// Whether `key` holds a value.
pub fn exists(key: &str) -> bool {
    with(|store| store.exists(key).ok()).unwrap_or(false)
}

/// Stores `value` under `key`.
pub fn set(key: &str, value: &[u8]) {
    with(|store| store.set(key, value).ok());
}

/// Removes `key`.
pub fn delete(key: &str) {
    with(|store| store.delete(key).ok());
}
