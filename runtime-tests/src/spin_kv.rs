//! `fermyon:spin/key-value@2.0.0`: the node-local key-value store.
//!
//! Like Spin, a component may open only the stores its manifest lists in `key_value_stores`
//! (`access-denied` otherwise), and the only store that exists without runtime configuration is
//! `default`, shared by every component of the application on this node. Spin's default store is
//! a SQLite file under `.spin/`; this host keeps it in memory for the life of the host process:
//! it persists across requests and instances, and is gone when the host stops. Tally keeps only
//! disposable node-local state there (read cache, breaker view), so that is the right trade.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, RwLock};

use anyhow::bail;
use wasmtime::component::Resource;

use crate::bindings::key_value::{Error, Host, HostStore};
use crate::state::RequestState;

/// The label of the store that exists without runtime configuration.
pub const DEFAULT_STORE: &str = "default";

type Entries = Arc<RwLock<HashMap<String, Vec<u8>>>>;

/// Every store of the application on this node, by label.
#[derive(Debug, Default)]
pub struct KeyValueStores {
    stores: HashMap<String, Entries>,
}

impl KeyValueStores {
    /// The stores a host without runtime configuration offers: `default` only.
    pub fn with_default_store() -> Self {
        let mut stores = HashMap::new();
        stores.insert(DEFAULT_STORE.to_string(), Entries::default());
        Self { stores }
    }

    /// Checks at start-up that every label a component names exists, as Spin does.
    pub fn check_labels<'a>(
        &self,
        component: &str,
        labels: impl IntoIterator<Item = &'a String>,
    ) -> anyhow::Result<()> {
        for label in labels {
            if !self.stores.contains_key(label) {
                bail!(
                    "component {component:?} uses key-value store {label:?}, which is not defined \
                     (only \"{DEFAULT_STORE}\" exists without runtime configuration)"
                );
            }
        }
        Ok(())
    }

    fn get(&self, label: &str) -> Option<Entries> {
        self.stores.get(label).cloned()
    }

    /// Reads a value directly (for tests and diagnostics).
    pub fn peek(&self, label: &str, key: &str) -> Option<Vec<u8>> {
        self.get(label)?.read().unwrap().get(key).cloned()
    }
}

/// The host side of a guest's open `store` resource.
pub struct OpenStore {
    entries: Entries,
}

/// What a request's instance may open.
pub struct KeyValueAccess {
    /// All stores on this node.
    pub stores: Arc<KeyValueStores>,
    /// Labels from the component's `key_value_stores`.
    pub allowed: Arc<BTreeSet<String>>,
}

impl RequestState {
    fn entries(&self, store: &Resource<OpenStore>) -> wasmtime::Result<Entries> {
        Ok(self.table.get(store)?.entries.clone())
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
        let Some(entries) = self.kv.stores.get(&label) else {
            return Ok(Err(Error::NoSuchStore));
        };
        Ok(Ok(self.table.push(OpenStore { entries })?))
    }

    async fn get(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Vec<u8>>, Error>> {
        let entries = self.entries(&store)?;
        let value = entries.read().unwrap().get(&key).cloned();
        Ok(Ok(value))
    }

    async fn set(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
        value: Vec<u8>,
    ) -> wasmtime::Result<Result<(), Error>> {
        let entries = self.entries(&store)?;
        entries.write().unwrap().insert(key, value);
        Ok(Ok(()))
    }

    async fn delete(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<(), Error>> {
        let entries = self.entries(&store)?;
        entries.write().unwrap().remove(&key);
        Ok(Ok(()))
    }

    async fn exists(
        &mut self,
        store: Resource<OpenStore>,
        key: String,
    ) -> wasmtime::Result<Result<bool, Error>> {
        let entries = self.entries(&store)?;
        let exists = entries.read().unwrap().contains_key(&key);
        Ok(Ok(exists))
    }

    async fn get_keys(
        &mut self,
        store: Resource<OpenStore>,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let entries = self.entries(&store)?;
        let keys = entries.read().unwrap().keys().cloned().collect();
        Ok(Ok(keys))
    }

    async fn drop(&mut self, store: Resource<OpenStore>) -> wasmtime::Result<()> {
        self.table.delete(store)?;
        Ok(())
    }
}
