//! Spin's application rules, as pure functions.
//!
//! The Spin CLI cannot be installed where Tally's runtime tests run, so Tally runs its
//! Spin components on its own wasmtime-based host. For that host to be a faithful stand-in,
//! everything that decides *what* Spin does with an application — how the manifest is read,
//! which component a request is routed to and which `spin-*` headers it receives, how
//! variables resolve, and which outbound addresses a component may reach — lives here, as
//! synchronous functions with no I/O other than reading the manifest file, each one checked
//! by unit tests against the behaviour of Spin's own source.
//!
//! Modules:
//! - [`manifest`]: Spin manifest v2 (`spin.toml`) parsing and validation.
//! - [`routes`]: HTTP routing with Spin's syntax and precedence, and the `spin-*` request headers.
//! - [`variables`]: application/component variables, templates and providers.
//! - [`allowed_hosts`]: `allowed_outbound_hosts` parsing and matching.
//! - [`ids`]: the identifier rules the manifest enforces (component ids, variable names, …).

#![deny(missing_docs)]

pub mod allowed_hosts;
pub mod ids;
pub mod manifest;
pub mod routes;
pub mod variables;

pub use allowed_hosts::{AllowedHosts, AllowedHostsError};
pub use manifest::{
    App, BuildDecl, ComponentDecl, FileMount, HttpRoute, ManifestError, VariableDecl,
};
pub use routes::{spin_request_headers, RouteError, RouteMatch, Router};
pub use variables::{EnvProvider, Resolver, Template, VariableError, VariableProvider};
