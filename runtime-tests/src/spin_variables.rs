//! `fermyon:spin/variables@2.0.0`: a component reads its own variables, resolved like Spin
//! (component template → application variable → `SPIN_VARIABLE_*` or default).
//!
//! Every value is fixed once the host has started (providers are read at start-up), so each
//! component's variables are rendered once, at load; a request's read is then one map lookup.
//! Names the component does not declare go to the resolver, which gives Spin's error for them.

use std::collections::HashMap;
use std::sync::Arc;

use spin_rules::variables::{Resolver, VariableError};

use crate::bindings::variables::{Error, Host};
use crate::state::RequestState;

/// One component's variables, rendered at load.
pub struct ComponentVariables {
    resolver: Arc<Resolver>,
    component_id: String,
    rendered: HashMap<String, Result<String, VariableError>>,
}

impl ComponentVariables {
    /// Renders every variable `component_id` declares.
    pub fn render<'k>(
        resolver: Arc<Resolver>,
        component_id: &str,
        keys: impl IntoIterator<Item = &'k String>,
    ) -> Self {
        let rendered = keys
            .into_iter()
            .map(|key| (key.clone(), resolver.resolve(component_id, key)))
            .collect();
        Self {
            resolver,
            component_id: component_id.to_string(),
            rendered,
        }
    }

    /// The value of `key`, or Spin's error for it.
    pub fn get(&self, key: &str) -> Result<String, VariableError> {
        match self.rendered.get(key) {
            Some(value) => value.clone(),
            None => self.resolver.resolve(&self.component_id, key),
        }
    }
}

/// What a request's instance may read.
pub struct VariablesAccess {
    /// The component's variables.
    pub variables: Arc<ComponentVariables>,
}

impl Host for RequestState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        Ok(self
            .variables
            .variables
            .get(&name)
            .map_err(|err| match err {
                VariableError::InvalidName(m) => Error::InvalidName(m),
                VariableError::Undefined(m) => Error::Undefined(m),
                VariableError::Provider(m) => Error::Provider(m),
                VariableError::Other(m) => Error::Other(m),
            }))
    }
}
