//! `fermyon:spin/key-value@2.0.0`: the node-local key-value store.
//!
//! Like Spin, a component may open only the stores its manifest lists in `key_value_stores`
//! (`access-denied` otherwise), and the only store that exists without runtime configuration is
//! `default`, shared by every component of the application on this node.
//!
//! By default the store is what Spin's default store is (spinframework/spin v4.0.2,
//! `crates/key-value-spin`): one SQLite file, `sqlite_key_value.db` in the state directory
//! (`.spin/` beside the manifest unless `--state-dir` says otherwise), one table
//! `spin_key_value (store, key, value)` keyed by `(store, key)`, SQLite's default settings
//! (rollback journal, `synchronous = FULL`: every `set` and `delete` is its own durable
//! transaction), the same statements, and one connection behind a lock, used on the request's
//! own thread (Spin's `block_in_place`). So a request that writes pays here what it pays on Spin,
//! and the store survives restarts as Spin's does. [`KeyValueBackend::Memory`] keeps the entries
//! in the host's memory instead: faster, gone when the host stops, never the default.

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use anyhow::{bail, Context};
use wasmtime::component::Resource;

use crate::bindings::key_value::{Error, Host, HostStore};
use crate::state::RequestState;

/// The label of the store that exists without runtime configuration.
pub const DEFAULT_STORE: &str = "default";

/// The default store's file name in the state directory, as Spin names it.
pub const SQLITE_FILE: &str = "sqlite_key_value.db";

/// Largest value the host hands a guest, like Spin's `MAX_HOST_BUFFERED_BYTES`.
const MAX_VALUE_BYTES: usize = 128 << 20;

/// Where the `default` store keeps its entries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyValueBackend {
    /// A SQLite file, as Spin's default store: `sqlite_key_value.db` in `state_dir`
    /// (`None`: `.spin` in the manifest's directory, Spin's default).
    Sqlite {
        /// The state directory, created if missing.
        state_dir: Option<PathBuf>,
    },
    /// The host process's memory: persists across requests, gone when the host stops.
    Memory,
}

impl Default for KeyValueBackend {
    fn default() -> Self {
        KeyValueBackend::Sqlite { state_dir: None }
    }
}

/// The entries of every store, whatever holds them. Errors become the guest's `other`.
trait Entries: Send + Sync {
    fn get(&self, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>>;
    fn set(&self, store: &str, key: &str, value: &[u8]) -> anyhow::Result<()>;
    fn delete(&self, store: &str, key: &str) -> anyhow::Result<()>;
    fn keys(&self, store: &str) -> anyhow::Result<Vec<String>>;
}

/// Entries in memory, per store label.
#[derive(Default)]
struct MemoryEntries(RwLock<HashMap<String, HashMap<String, Vec<u8>>>>);

impl Entries for MemoryEntries {
    fn get(&self, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        let stores = self.0.read().unwrap();
        Ok(stores.get(store).and_then(|s| s.get(key)).cloned())
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        let mut stores = self.0.write().unwrap();
        let entries = stores.entry(store.to_string()).or_default();
        entries.insert(key.to_string(), value.to_vec());
        Ok(())
    }

    fn delete(&self, store: &str, key: &str) -> anyhow::Result<()> {
        if let Some(entries) = self.0.write().unwrap().get_mut(store) {
            entries.remove(key);
        }
        Ok(())
    }

    fn keys(&self, store: &str) -> anyhow::Result<Vec<String>> {
        let stores = self.0.read().unwrap();
        Ok(stores
            .get(store)
            .map(|s| s.keys().cloned().collect())
            .unwrap_or_default())
    }
}

/// Entries in a SQLite file, laid out and written exactly as Spin's default store does.
struct SqliteEntries(Mutex<rusqlite::Connection>);

impl SqliteEntries {
    fn open(path: &Path) -> anyhow::Result<Self> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating the state directory {}", dir.display()))?;
        }
        let conn = rusqlite::Connection::open(path)
            .with_context(|| format!("opening the key-value store {}", path.display()))?;
        conn.execute(
            "CREATE TABLE IF NOT EXISTS spin_key_value (
                 store TEXT NOT NULL,
                 key   TEXT NOT NULL,
                 value BLOB NOT NULL,
                 PRIMARY KEY (store, key)
             )",
            [],
        )
        .with_context(|| format!("creating the key-value table in {}", path.display()))?;
        Ok(Self(Mutex::new(conn)))
    }

    /// Runs `work` on the connection on this thread, as Spin does (`block_in_place` on a
    /// multi-threaded runtime, so the runtime moves its other tasks away; a single-threaded
    /// runtime simply waits, which is what a blocking SQLite call costs it).
    fn with<T>(
        &self,
        work: impl FnOnce(&rusqlite::Connection) -> rusqlite::Result<T>,
    ) -> anyhow::Result<T> {
        let run = || work(&self.0.lock().unwrap()).map_err(anyhow::Error::from);
        match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
            Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(run),
            _ => run(),
        }
    }
}

impl Entries for SqliteEntries {
    fn get(&self, store: &str, key: &str) -> anyhow::Result<Option<Vec<u8>>> {
        self.with(|conn| {
            conn.prepare_cached("SELECT value FROM spin_key_value WHERE store=$1 AND key=$2")?
                .query_map([store, key], |row| row.get::<_, Vec<u8>>(0))?
                .next()
                .transpose()
        })
    }

    fn set(&self, store: &str, key: &str, value: &[u8]) -> anyhow::Result<()> {
        self.with(|conn| {
            conn.prepare_cached(
                "INSERT INTO spin_key_value (store, key, value) VALUES ($1, $2, $3)
                 ON CONFLICT(store, key) DO UPDATE SET value=$3",
            )?
            .execute(rusqlite::params![store, key, value])
            .map(drop)
        })
    }

    fn delete(&self, store: &str, key: &str) -> anyhow::Result<()> {
        self.with(|conn| {
            conn.prepare_cached("DELETE FROM spin_key_value WHERE store=$1 AND key=$2")?
                .execute([store, key])
                .map(drop)
        })
    }

    fn keys(&self, store: &str) -> anyhow::Result<Vec<String>> {
        self.with(|conn| {
            conn.prepare_cached("SELECT key FROM spin_key_value WHERE store=$1")?
                .query_map([store], |row| row.get::<_, String>(0))?
                .collect()
        })
    }
}

/// Every store of the application on this node.
pub struct KeyValueStores {
    labels: BTreeSet<String>,
    entries: Arc<dyn Entries>,
    location: String,
}

impl std::fmt::Debug for KeyValueStores {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyValueStores")
            .field("labels", &self.labels)
            .field("location", &self.location)
            .finish()
    }
}

impl KeyValueStores {
    /// The stores a host without runtime configuration offers: `default` only, kept where
    /// `backend` says (`app_dir` is the manifest's directory, for Spin's default `.spin`).
    pub fn with_default_store(backend: &KeyValueBackend, app_dir: &Path) -> anyhow::Result<Self> {
        let (entries, location): (Arc<dyn Entries>, String) = match backend {
            KeyValueBackend::Memory => (
                Arc::new(MemoryEntries::default()),
                "in memory (gone when the host stops)".into(),
            ),
            KeyValueBackend::Sqlite { state_dir } => {
                let dir = state_dir.clone().unwrap_or_else(|| app_dir.join(".spin"));
                let path = dir.join(SQLITE_FILE);
                (
                    Arc::new(SqliteEntries::open(&path)?),
                    path.display().to_string(),
                )
            }
        };
        Ok(Self {
            labels: BTreeSet::from([DEFAULT_STORE.to_string()]),
            entries,
            location,
        })
    }

    /// Where the default store's entries are, for the start-up banner.
    pub fn location(&self) -> &str {
        &self.location
    }

    /// Checks at start-up that every label a component names exists, as Spin does.
    pub fn check_labels<'a>(
        &self,
        component: &str,
        labels: impl IntoIterator<Item = &'a String>,
    ) -> anyhow::Result<()> {
        for label in labels {
            if !self.labels.contains(label) {
                bail!(
                    "component {component:?} uses key-value store {label:?}, which is not defined \
                     (only \"{DEFAULT_STORE}\" exists without runtime configuration)"
                );
            }
        }
        Ok(())
    }

    /// Reads a value directly (for tests and diagnostics).
    pub fn peek(&self, label: &str, key: &str) -> Option<Vec<u8>> {
        self.entries.get(label, key).ok().flatten()
    }
}

/// The host side of a guest's open `store` resource: its label.
pub struct OpenStore {
    label: String,
}

/// What a request's instance may open.
pub struct KeyValueAccess {
    /// All stores on this node.
    pub stores: Arc<KeyValueStores>,
    /// Labels from the component's `key_value_stores`.
    pub allowed: Arc<BTreeSet<String>>,
}

/// A store failure as the guest sees it (Spin logs it and answers `other`).
fn other(err: anyhow::Error) -> Error {
    eprintln!("tally-host: key-value store error: {err:#}");
    Error::Other(err.to_string())
}

impl RequestState {
    fn store_label(&self, store: &Resource<OpenStore>) -> wasmtime::Result<String> {
        Ok(self.table.get(store)?.label.clone())
    }

    fn entries(&self) -> Arc<dyn Entries> {
        self.kv.stores.entries.clone()
    }
}

impl Host for RequestState {}

impl HostStore for RequestState {
    async fn open(
        &mut self,
        label: String,
    ) -> wasmtime::Result<Result<Resource<OpenStore>, Error>> {
        if !self.kv.allowed.contains(&label) {
            return Ok(Err(Error::AccessDenied));
        }
        if !self.kv.stores.labels.contains(&label) {
            return Ok(Err(Error::NoSuchStore));
        }
        Ok(Ok(self.table.push(OpenStore { label })?))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let label = self.store_label(&store)?;
        self.io.kv_reads += 1;
        Ok(match self.entries().get(&label, &key) {
            Ok(Some(value)) if value.len() > MAX_VALUE_BYTES => Err(Error::Other(format!(
                "query result exceeds limit of {MAX_VALUE_BYTES} bytes"
            ))),
            Ok(value) => Ok(value),
            Err(err) => Err(other(err)),
        })
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.store_label(&store)?;
        self.io.kv_writes += 1;
        Ok(self.entries().set(&label, &key, &value).map_err(other))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let label = self.store_label(&store)?;
        self.io.kv_writes += 1;
        Ok(self.entries().delete(&label, &key).map_err(other))
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let label = self.store_label(&store)?;
        self.io.kv_reads += 1;
        Ok(self
            .entries()
            .get(&label, &key)
            .map(|v| v.is_some())
            .map_err(other))
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let label = self.store_label(&store)?;
        self.io.kv_reads += 1;
        Ok(self.entries().keys(&label).map_err(other))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_in(dir: &Path) -> KeyValueStores {
        let backend = KeyValueBackend::Sqlite {
            state_dir: Some(dir.to_path_buf()),
        };
        KeyValueStores::with_default_store(&backend, Path::new("/nonexistent")).unwrap()
    }

    #[test]
    fn the_sqlite_store_has_spins_file_table_and_durable_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let stores = sqlite_in(dir.path());
        stores.entries.set(DEFAULT_STORE, "k", b"v1").unwrap();
        stores.entries.set(DEFAULT_STORE, "k", b"v2").unwrap();
        // Another process (or Spin itself) reads the same file and layout.
        let conn = rusqlite::Connection::open(dir.path().join(SQLITE_FILE)).unwrap();
        let value: Vec<u8> = conn
            .query_row(
                "SELECT value FROM spin_key_value WHERE store = 'default' AND key = 'k'",
                [],
                |row| row.get(0),
            )
            .unwrap();
        assert_eq!(value, b"v2");
        // SQLite's defaults, as Spin leaves them: a rollback journal and a full sync on every
        // commit, so each set or delete is a durable write.
        let synchronous: i64 = conn
            .pragma_query_value(None, "synchronous", |row| row.get(0))
            .unwrap();
        let journal: String = conn
            .pragma_query_value(None, "journal_mode", |row| row.get(0))
            .unwrap();
        assert_eq!((synchronous, journal.as_str()), (2, "delete"));
    }

    #[test]
    fn the_sqlite_store_survives_a_restart_and_the_memory_store_does_not() {
        let dir = tempfile::tempdir().unwrap();
        sqlite_in(dir.path())
            .entries
            .set(DEFAULT_STORE, "kept", b"yes")
            .unwrap();
        assert_eq!(
            sqlite_in(dir.path()).peek(DEFAULT_STORE, "kept"),
            Some(b"yes".to_vec())
        );
        let memory =
            || KeyValueStores::with_default_store(&KeyValueBackend::Memory, dir.path()).unwrap();
        memory().entries.set(DEFAULT_STORE, "gone", b"x").unwrap();
        assert_eq!(memory().peek(DEFAULT_STORE, "gone"), None);
    }

    #[test]
    fn the_state_directory_defaults_to_dot_spin_beside_the_manifest() {
        let app_dir = tempfile::tempdir().unwrap();
        let stores =
            KeyValueStores::with_default_store(&KeyValueBackend::default(), app_dir.path())
                .unwrap();
        let expected = app_dir.path().join(".spin").join(SQLITE_FILE);
        assert!(expected.exists());
        assert_eq!(stores.location(), expected.display().to_string());
    }

    #[test]
    fn both_stores_get_set_delete_and_list_alike() {
        let dir = tempfile::tempdir().unwrap();
        for stores in [
            sqlite_in(dir.path()),
            KeyValueStores::with_default_store(&KeyValueBackend::Memory, dir.path()).unwrap(),
        ] {
            let e = &stores.entries;
            assert_eq!(e.get(DEFAULT_STORE, "a").unwrap(), None);
            e.set(DEFAULT_STORE, "a", b"1").unwrap();
            e.set("other", "a", b"2").unwrap();
            assert_eq!(e.get(DEFAULT_STORE, "a").unwrap(), Some(b"1".to_vec()));
            assert_eq!(e.keys(DEFAULT_STORE).unwrap(), ["a"]);
            e.delete(DEFAULT_STORE, "a").unwrap();
            e.delete(DEFAULT_STORE, "never-set").unwrap();
            assert_eq!(e.get(DEFAULT_STORE, "a").unwrap(), None);
            assert_eq!(e.get("other", "a").unwrap(), Some(b"2".to_vec()));
        }
    }
}
