//! `fermyon:spin/variables@2.0.0`: a component reads its own variables, resolved like Spin
//! (component template → application variable → `SPIN_VARIABLE_*` or default).

use std::sync::Arc;

use spin_rules::variables::{Resolver, VariableError};

use crate::bindings::variables::{Error, Host};
use crate::state::RequestState;

/// What a request's instance may read.
pub struct VariablesAccess {
    /// The application's resolver, prepared at start-up.
    pub resolver: Arc<Resolver>,
    /// Whose variables these are.
    pub component_id: Arc<str>,
}

impl Host for RequestState {
    async fn get(&mut self, name: String) -> wasmtime::Result<Result<String, Error>> {
        let access = &self.variables;
        Ok(access
            .resolver
            .resolve(&access.component_id, &name)
            .map_err(|err| match err {
                VariableError::InvalidName(m) => Error::InvalidName(m),
                VariableError::Undefined(m) => Error::Undefined(m),
                VariableError::Provider(m) => Error::Provider(m),
                VariableError::Other(m) => Error::Other(m),
            }))
    }
}
