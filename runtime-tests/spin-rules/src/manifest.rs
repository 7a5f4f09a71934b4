//! Reading and validating a Spin manifest (`spin.toml`, `spin_manifest_version = 2`).
//!
//! The host needs the application's components, variables and HTTP routes, and it must
//! refuse the manifests Spin refuses: Spin reads the manifest into strict types (unknown
//! keys are errors almost everywhere), checks identifiers, then `spin up` checks variables,
//! routes, component references and `allowed_outbound_hosts` before serving. This module
//! does the same checks with messages naming the offending item, and accepts every key
//! Spin accepts. Features the host does not implement (remote component sources, component
//! dependencies, static responses, the WAGI executor) are refused explicitly rather than
//! silently ignored.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::allowed_hosts::AllowedHosts;
use crate::ids::{validate_kebab_id, validate_kebab_or_snake_id, validate_lower_snake_id};
use crate::routes::Router;
use crate::variables::{parse_declared_template, validate_key};

/// Why a manifest was refused.
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The manifest file could not be read.
    #[error("cannot read Spin manifest {path}: {source}")]
    Read {
        /// The manifest path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid TOML, does not follow the v2 schema, or breaks a rule.
    #[error("invalid Spin manifest: {0}")]
    Invalid(String),
}

fn invalid(msg: impl Into<String>) -> ManifestError {
    ManifestError::Invalid(msg.into())
}

/// A Spin application, as the host needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    /// `[application] name`.
    pub name: String,
    /// `[application] version` ("" when absent).
    pub version: String,
    /// The directory relative paths are resolved against: the manifest's directory.
    pub base_dir: PathBuf,
    /// `[variables]`, by name.
    pub variables: BTreeMap<String, VariableDecl>,
    /// `[component.<id>]`, plus components written inline in triggers, by id.
    pub components: BTreeMap<String, ComponentDecl>,
    /// The routable `[[trigger.http]]` entries, in manifest order.
    pub http_routes: Vec<HttpRoute>,
    /// Components of `[[trigger.http]]` entries with `route = { private = true }`: they
    /// exist (e.g. for service chaining) but no route reaches them.
    pub private_endpoints: Vec<String>,
    /// Trigger types other than `http` present in the manifest (the host serves HTTP only).
    pub other_trigger_types: Vec<String>,
}

/// One application variable declaration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableDecl {
    /// The value used when no provider has one.
    pub default: Option<String>,
    /// `required = true`: a provider must supply the value. Exactly one of `default` and
    /// `required` is set, as Spin demands.
    pub required: bool,
    /// `secret = true`: the value must not be logged.
    pub secret: bool,
}

/// One component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ComponentDecl {
    /// The component id (kebab-case).
    pub id: String,
    /// The Wasm file, resolved against [`App::base_dir`].
    pub source: PathBuf,
    /// `description` ("" when absent).
    pub description: String,
    /// `allowed_outbound_hosts` entries, unresolved (they may hold `{{ variable }}` templates).
    pub allowed_outbound_hosts: Vec<String>,
    /// `key_value_stores` labels.
    pub key_value_stores: Vec<String>,
    /// `sqlite_databases` labels.
    pub sqlite_databases: Vec<String>,
    /// `ai_models` names.
    pub ai_models: Vec<String>,
    /// Component variables: key → template over application variables.
    pub variables: BTreeMap<String, String>,
    /// `environment`: environment variables for the guest.
    pub environment: BTreeMap<String, String>,
    /// `files` to make available to the guest.
    pub files: Vec<FileMount>,
    /// `exclude_files` glob patterns.
    pub exclude_files: Vec<String>,
    /// `[component.<id>.build]`.
    pub build: Option<BuildDecl>,
}

/// One `files` entry of a component.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FileMount {
    /// A glob pattern relative to the application directory, mounted at the same path.
    Pattern(String),
    /// A host directory mounted at an absolute guest path.
    Placement {
        /// The host directory, relative to the application directory.
        source: String,
        /// The guest path.
        destination: String,
    },
}

/// `[component.<id>.build]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BuildDecl {
    /// The commands, run in order (`command` may be a string or a list).
    pub commands: Vec<String>,
    /// The working directory, relative to the application directory.
    pub workdir: Option<String>,
    /// `watch` globs.
    pub watch: Vec<String>,
}

/// A routable `[[trigger.http]]` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRoute {
    /// The route as written (`/visit`, `/api/:id`, `/static/...`).
    pub route: String,
    /// The component id the route leads to.
    pub component: String,
}

impl HttpRoute {
    /// A route to a component.
    pub fn new(route: impl Into<String>, component: impl Into<String>) -> Self {
        Self {
            route: route.into(),
            component: component.into(),
        }
    }
}

impl App {
    /// Reads and validates the manifest at `path`; relative paths in it are resolved
    /// against the manifest's directory.
    pub fn load(path: &Path) -> Result<App, ManifestError> {
        let text = std::fs::read_to_string(path).map_err(|source| ManifestError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let base_dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Self::parse(&text, &base_dir)
    }

    /// Parses and validates manifest text; relative paths are resolved against `base_dir`.
    pub fn parse(text: &str, base_dir: &Path) -> Result<App, ManifestError> {
        check_version(text)?;
        let raw: RawManifest = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
        build_app(raw, base_dir)
    }

    /// The component a routable or private HTTP trigger leads to, by id.
    pub fn component(&self, id: &str) -> Option<&ComponentDecl> {
        self.components.get(id)
    }
}

fn check_version(text: &str) -> Result<(), ManifestError> {
    #[derive(Deserialize)]
    struct Probe {
        spin_manifest_version: toml::Value,
    }
    let probe: Probe = toml::from_str(text).map_err(|e| invalid(e.to_string()))?;
    let v = probe.spin_manifest_version;
    if v.as_integer() == Some(2) {
        Ok(())
    } else if v.as_str() == Some("1") {
        Err(invalid(
            "manifest version 1 (`spin_manifest_version = \"1\"`) is not supported by this host; \
             convert it with `spin doctor` or write `spin_manifest_version = 2`",
        ))
    } else {
        Err(invalid(format!("invalid manifest version: {v}")))
    }
}

// ---------------------------------------------------------------------------------------
// The v2 schema, as Spin reads it: every table Spin reads with `deny_unknown_fields` does
// so here too. Identifiers are read as strings and checked afterwards for clearer messages.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    #[allow(dead_code)]
    spin_manifest_version: toml::Value,
    application: RawApplication,
    #[serde(default)]
    variables: BTreeMap<String, RawVariable>,
    #[serde(rename = "trigger")]
    triggers: BTreeMap<String, Vec<RawTrigger>>,
    #[serde(default, rename = "component")]
    components: BTreeMap<String, RawComponent>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawApplication {
    name: String,
    #[serde(default)]
    version: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    authors: Vec<String>,
    #[serde(default)]
    targets: Vec<toml::Value>,
    #[serde(default, rename = "trigger")]
    trigger_global_configs: BTreeMap<String, toml::Table>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawVariable {
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    required: bool,
    #[serde(default)]
    default: Option<String>,
    #[serde(default)]
    secret: bool,
}

#[derive(Deserialize)]
struct RawTrigger {
    #[serde(default)]
    id: String,
    #[serde(default)]
    component: Option<toml::Value>,
    #[serde(default)]
    components: Option<toml::Value>,
    #[serde(default)]
    dependencies: Option<toml::Value>,
    #[serde(flatten)]
    config: toml::Table,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct RawComponent {
    source: toml::Value,
    #[serde(default)]
    description: String,
    #[serde(default)]
    variables: BTreeMap<String, String>,
    #[serde(default)]
    environment: BTreeMap<String, String>,
    #[serde(default)]
    files: Vec<RawFileMount>,
    #[serde(default)]
    exclude_files: Vec<String>,
    #[serde(default)]
    allowed_http_hosts: Vec<String>,
    #[serde(default)]
    allowed_outbound_hosts: Vec<String>,
    #[serde(default)]
    key_value_stores: Vec<String>,
    #[serde(default)]
    sqlite_databases: Vec<String>,
    #[serde(default)]
    ai_models: Vec<String>,
    #[serde(default)]
    targets: Option<Vec<toml::Value>>,
    #[serde(default)]
    build: Option<RawBuild>,
    #[serde(default)]
    tool: BTreeMap<String, toml::Table>,
    #[serde(default)]
    dependencies_inherit_configuration: Option<bool>,
    #[serde(default)]
    dependencies: Option<toml::Table>,
    #[serde(default)]
    profile: Option<toml::Table>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawFileMount {
    Pattern(String),
    Placement(RawPlacement),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPlacement {
    source: String,
    destination: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBuild {
    command: RawCommands,
    #[serde(default)]
    workdir: Option<String>,
    #[serde(default)]
    watch: Vec<String>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawCommands {
    Single(String),
    Multiple(Vec<String>),
}

// ---------------------------------------------------------------------------------------

fn build_app(raw: RawManifest, base_dir: &Path) -> Result<App, ManifestError> {
    check_http_global_config(&raw.application.trigger_global_configs)?;

    let mut variables = BTreeMap::new();
    for (name, v) in raw.variables {
        validate_lower_snake_id(&name)
            .map_err(|e| invalid(format!("invalid variable name {name:?}: {e}")))?;
        validate_key(&name).map_err(|e| invalid(format!("invalid variable name: {e}")))?;
        if v.required == v.default.is_some() {
            return Err(invalid(format!(
                "variable `{name}` must be `required` OR have a `default`"
            )));
        }
        variables.insert(
            name,
            VariableDecl {
                default: v.default,
                required: v.required,
                secret: v.secret,
            },
        );
    }

    let mut components = BTreeMap::new();
    for (id, c) in raw.components {
        validate_kebab_id(&id).map_err(|e| invalid(format!("invalid component id {id:?}: {e}")))?;
        let decl = build_component(&id, c, base_dir)?;
        components.insert(id, decl);
    }

    let mut triggers = raw.triggers;
    assign_trigger_ids(&mut triggers);

    let mut http_routes = Vec::new();
    let mut private_endpoints = Vec::new();
    let mut other_trigger_types = Vec::new();
    for (trigger_type, list) in triggers {
        let is_http = trigger_type == "http";
        if !is_http && !list.is_empty() {
            other_trigger_types.push(trigger_type.clone());
        }
        for trigger in list {
            let id = trigger.id.clone();
            let context = |msg: String| invalid(format!("trigger `{trigger_type}` `{id}`: {msg}"));
            let component = match &trigger.component {
                None => None,
                Some(toml::Value::String(reference)) => {
                    validate_kebab_id(reference).map_err(|e| {
                        context(format!("invalid component reference {reference:?}: {e}"))
                    })?;
                    if !components.contains_key(reference) {
                        return Err(context(format!(
                            "refers to component `{reference}`, which is not defined \
                             (no [component.{reference}] table)"
                        )));
                    }
                    Some(reference.clone())
                }
                Some(value @ toml::Value::Table(_)) => {
                    let raw_component = RawComponent::deserialize(value.clone())
                        .map_err(|e| context(format!("inline component: {e}")))?;
                    let inline_id = inline_component_id(&id, &components);
                    let decl = build_component(&inline_id, raw_component, base_dir)?;
                    components.insert(inline_id.clone(), decl);
                    Some(inline_id)
                }
                Some(other) => {
                    return Err(context(format!(
                        "`component` must be a component id or an inline component table, not {}",
                        other.type_str()
                    )))
                }
            };
            if !is_http {
                continue;
            }
            if trigger.components.is_some() || trigger.dependencies.is_some() {
                return Err(context(
                    "`components` and `dependencies` on HTTP triggers are not supported by this host"
                        .into(),
                ));
            }
            match build_http_trigger(&trigger.config, component).map_err(context)? {
                HttpTarget::Route(route) => http_routes.push(route),
                HttpTarget::Private(component) => private_endpoints.push(component),
            }
        }
    }

    check_duplicate_routes(&http_routes)?;
    Router::new(&http_routes).map_err(|e| invalid(e.to_string()))?;

    for (id, c) in &components {
        for (key, template) in &c.variables {
            parse_declared_template(template, &variables)
                .map_err(|e| invalid(format!("component `{id}` variable `{key}`: {e}")))?;
        }
        AllowedHosts::validate(&c.allowed_outbound_hosts).map_err(|e| {
            invalid(format!(
                "component `{id}`: `allowed_outbound_hosts` is malformed: {e}"
            ))
        })?;
    }

    Ok(App {
        name: raw.application.name,
        version: raw.application.version,
        base_dir: base_dir.to_path_buf(),
        variables,
        components,
        http_routes,
        private_endpoints,
        other_trigger_types,
    })
}

/// `[application.trigger.http]` may only hold `base`, and Spin now refuses any base but `/`.
fn check_http_global_config(configs: &BTreeMap<String, toml::Table>) -> Result<(), ManifestError> {
    let Some(http) = configs.get("http") else {
        return Ok(());
    };
    for (key, value) in http {
        if key != "base" {
            return Err(invalid(format!(
                "[application.trigger.http]: unknown field `{key}`, expected `base`"
            )));
        }
        match value.as_str() {
            Some("/") => {}
            Some(_) => {
                return Err(invalid(
                    "This application is using the deprecated trigger 'base' field. \
                     The base must be prepended to each [[trigger.http]]'s 'route'.",
                ))
            }
            None => {
                return Err(invalid(
                    "[application.trigger.http]: `base` must be a string",
                ))
            }
        }
    }
    Ok(())
}

fn build_component(
    id: &str,
    c: RawComponent,
    base_dir: &Path,
) -> Result<ComponentDecl, ManifestError> {
    let context = |msg: String| invalid(format!("component `{id}`: {msg}"));
    let source = match &c.source {
        toml::Value::String(path) => base_dir.join(path),
        toml::Value::Table(t) if t.contains_key("url") || t.contains_key("registry") || t.contains_key("package") => {
            return Err(context(
                "only local file sources (`source = \"path/to/file.wasm\"`) are supported by this host"
                    .into(),
            ))
        }
        other => {
            return Err(context(format!(
                "`source` must be a path, a {{ url, digest }} table or a {{ registry, package, version }} table, not {other}"
            )))
        }
    };
    if !c.allowed_http_hosts.is_empty() {
        return Err(context(
            "`allowed_http_hosts` is deprecated and not supported by this host: \
             use `allowed_outbound_hosts` (e.g. \"https://example.com\")"
                .into(),
        ));
    }
    if c.dependencies.as_ref().is_some_and(|d| !d.is_empty()) {
        return Err(context(
            "component dependencies are not supported by this host".into(),
        ));
    }
    for label in c.key_value_stores.iter().chain(&c.sqlite_databases) {
        validate_kebab_or_snake_id(label)
            .map_err(|e| context(format!("invalid store label {label:?}: {e}")))?;
    }
    for key in c.variables.keys() {
        validate_lower_snake_id(key)
            .map_err(|e| context(format!("invalid variable name {key:?}: {e}")))?;
        validate_key(key).map_err(|e| context(e.to_string()))?;
    }
    let files = c
        .files
        .into_iter()
        .map(|f| match f {
            RawFileMount::Pattern(p) => FileMount::Pattern(p),
            RawFileMount::Placement(RawPlacement {
                source,
                destination,
            }) => FileMount::Placement {
                source,
                destination,
            },
        })
        .collect();
    let build = c.build.map(|b| BuildDecl {
        commands: match b.command {
            RawCommands::Single(c) => vec![c],
            RawCommands::Multiple(c) => c,
        },
        workdir: b.workdir,
        watch: b.watch,
    });
    Ok(ComponentDecl {
        id: id.to_string(),
        source,
        description: c.description,
        allowed_outbound_hosts: c.allowed_outbound_hosts,
        key_value_stores: c.key_value_stores,
        sqlite_databases: c.sqlite_databases,
        ai_models: c.ai_models,
        variables: c.variables,
        environment: c.environment,
        files,
        exclude_files: c.exclude_files,
        build,
    })
}

/// Gives every trigger without `id` the id Spin gives it: `<component>-<type>-trigger`
/// when it refers to a component by id and that is free, else `<type>-trigger<n>`.
fn assign_trigger_ids(triggers: &mut BTreeMap<String, Vec<RawTrigger>>) {
    let mut taken: BTreeSet<String> = triggers.values().flatten().map(|t| t.id.clone()).collect();
    for (trigger_type, list) in triggers.iter_mut() {
        let mut counter = 1;
        for trigger in list.iter_mut().filter(|t| t.id.is_empty()) {
            if let Some(toml::Value::String(component)) = &trigger.component {
                let candidate = format!("{component}-{trigger_type}-trigger");
                if taken.insert(candidate.clone()) {
                    trigger.id = candidate;
                    continue;
                }
            }
            trigger.id = loop {
                let candidate = format!("{trigger_type}-trigger{counter}");
                counter += 1;
                if taken.insert(candidate.clone()) {
                    break candidate;
                }
            };
        }
    }
}

/// The id Spin gives a component written inline in a trigger: `<trigger-id>-component`
/// when that is a valid, free id, else the first free `inline-component<n>`.
fn inline_component_id(trigger_id: &str, components: &BTreeMap<String, ComponentDecl>) -> String {
    let natural = format!("{trigger_id}-component");
    if validate_kebab_id(&natural).is_ok() && !components.contains_key(&natural) {
        return natural;
    }
    (1..)
        .map(|n| format!("inline-component{n}"))
        .find(|id| !components.contains_key(id))
        .expect("some inline-component<n> is free")
}

enum HttpTarget {
    Route(HttpRoute),
    Private(String),
}

fn build_http_trigger(
    config: &toml::Table,
    component: Option<String>,
) -> Result<HttpTarget, String> {
    for key in config.keys() {
        match key.as_str() {
            "route" | "executor" => {}
            "static_response" => {
                return Err("`static_response` is not supported by this host".into())
            }
            other => {
                return Err(format!(
                    "unknown field `{other}`, expected one of `component`, `static_response`, `route`, `executor`"
                ))
            }
        }
    }
    if let Some(executor) = config.get("executor") {
        let kind = executor
            .as_table()
            .and_then(|t| t.get("type"))
            .and_then(|t| t.as_str());
        match kind {
            Some("http" | "spin") => {}
            Some("wagi") => return Err("the WAGI executor is not supported by this host".into()),
            _ => {
                return Err(format!(
                    "`executor` must be {{ type = \"http\" }} (or \"spin\"), not {executor}"
                ))
            }
        }
    }
    let Some(component) = component else {
        return Err(
            "Triggers must specify either component or static_response - it has neither".into(),
        );
    };
    match config.get("route") {
        None => Err("missing field `route`".into()),
        Some(toml::Value::String(route)) => Ok(HttpTarget::Route(HttpRoute::new(route, component))),
        Some(toml::Value::Table(t)) => {
            if let Some(key) = t.keys().find(|k| *k != "private") {
                return Err(format!(
                    "route table: unknown field `{key}`, expected `private`"
                ));
            }
            match t.get("private").and_then(toml::Value::as_bool) {
                Some(true) => Ok(HttpTarget::Private(component)),
                Some(false) => Err(format!(
                    "route must be a string pattern or '{{ private = true }}': '{component}' has {{ private = false }}"
                )),
                None => Err("route must be a string pattern or '{ private = true }'".into()),
            }
        }
        Some(other) => Err(format!(
            "route must be a string pattern or '{{ private = true }}', not {}",
            other.type_str()
        )),
    }
}

/// Spin keeps the last of two triggers with the same route and logs that the others
/// "will never be used"; this host refuses such a manifest instead. Routes that differ
/// only by a trailing slash are the same route.
fn check_duplicate_routes(routes: &[HttpRoute]) -> Result<(), ManifestError> {
    let mut seen: BTreeMap<String, &HttpRoute> = BTreeMap::new();
    for route in routes {
        let key = crate::routes::based_route("/", &route.route);
        if let Some(first) = seen.insert(key, route) {
            return Err(invalid(format!(
                "duplicate HTTP route {:?}: used by component `{}` and component `{}`",
                route.route, first.component, route.component
            )));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "spin_manifest_version = 2\n[application]\nname = \"tally\"\n";

    fn parse(body: &str) -> Result<App, ManifestError> {
        App::parse(&format!("{HEADER}{body}"), Path::new("/app"))
    }

    fn err(body: &str) -> String {
        match parse(body) {
            Ok(_) => panic!("manifest should have been refused:\n{body}"),
            Err(e) => e.to_string(),
        }
    }

    const ONE_COMPONENT: &str = r#"
[[trigger.http]]
route = "/visit"
component = "visit"

[component.visit]
source = "target/visit.wasm"
"#;

    #[test]
    fn minimal_app_has_name_component_and_route() {
        let app = parse(ONE_COMPONENT).unwrap();
        assert_eq!(app.name, "tally");
        assert_eq!(app.base_dir, Path::new("/app"));
        assert_eq!(app.http_routes, vec![HttpRoute::new("/visit", "visit")]);
        let c = &app.components["visit"];
        assert_eq!(c.id, "visit");
        assert_eq!(c.source, Path::new("/app/target/visit.wasm"));
        assert!(app.variables.is_empty());
    }

    #[test]
    fn full_component_fields_are_read() {
        let app = parse(
            r#"
[variables]
redis_url = { default = "redis://127.0.0.1:6379" }
token = { required = true, secret = true }

[[trigger.http]]
route = "/visit/..."
component = "visit"

[component.visit]
source = "visit.wasm"
description = "counts visits"
allowed_outbound_hosts = ["redis://127.0.0.1:6379", "{{ redis_url }}"]
key_value_stores = ["default", "my-store"]
sqlite_databases = ["default"]
ai_models = ["llama2-chat"]
environment = { RUST_LOG = "info" }
files = ["static/*", { source = "assets", destination = "/assets" }]
exclude_files = ["**/secret"]
variables = { redis_url = "{{ redis_url }}", token = "Bearer {{ token }}" }

[component.visit.build]
command = ["cargo build", "wasm-opt"]
workdir = "components/visit"
watch = ["src/**/*.rs"]
"#,
        )
        .unwrap();
        assert_eq!(
            app.variables["redis_url"],
            VariableDecl {
                default: Some("redis://127.0.0.1:6379".into()),
                required: false,
                secret: false
            }
        );
        assert_eq!(
            app.variables["token"],
            VariableDecl {
                default: None,
                required: true,
                secret: true
            }
        );
        let c = &app.components["visit"];
        assert_eq!(c.description, "counts visits");
        assert_eq!(c.allowed_outbound_hosts.len(), 2);
        assert_eq!(c.key_value_stores, ["default", "my-store"]);
        assert_eq!(c.sqlite_databases, ["default"]);
        assert_eq!(c.ai_models, ["llama2-chat"]);
        assert_eq!(c.environment["RUST_LOG"], "info");
        assert_eq!(
            c.files,
            vec![
                FileMount::Pattern("static/*".into()),
                FileMount::Placement {
                    source: "assets".into(),
                    destination: "/assets".into()
                }
            ]
        );
        assert_eq!(c.exclude_files, ["**/secret"]);
        assert_eq!(c.variables["token"], "Bearer {{ token }}");
        assert_eq!(
            c.build,
            Some(BuildDecl {
                commands: vec!["cargo build".into(), "wasm-opt".into()],
                workdir: Some("components/visit".into()),
                watch: vec!["src/**/*.rs".into()],
            })
        );
    }

    #[test]
    fn single_build_command_is_a_list_of_one() {
        let app = parse(&format!(
            "{ONE_COMPONENT}[component.visit.build]\ncommand = \"cargo build\"\n"
        ))
        .unwrap();
        assert_eq!(
            app.components["visit"].build.as_ref().unwrap().commands,
            ["cargo build"]
        );
    }

    #[test]
    fn keys_spin_accepts_but_ignores_are_accepted() {
        let app = App::parse(
            r#"
spin_manifest_version = 2
[application]
name = "tally"
version = "1.2.3"
description = "d"
authors = ["me"]
targets = ["spin-up:3.3"]
[application.trigger.redis]
address = "redis://localhost"
[application.tool.lint]
level = "savage"

[[trigger.http]]
id = "visit-route"
route = "/visit"
component = "visit"
executor = { type = "http" }

[component.visit]
source = "visit.wasm"
dependencies_inherit_configuration = true
targets = ["spin-up:3.3"]
[component.visit.tool.clean]
command = "cargo clean"
[component.visit.profile.debug]
source = "debug.wasm"
"#,
            Path::new("."),
        )
        .unwrap();
        assert_eq!(app.version, "1.2.3");
        assert_eq!(app.components["visit"].source, Path::new("./visit.wasm"));
    }

    #[test]
    fn unknown_top_level_key_is_refused() {
        let e = err(&format!("{ONE_COMPONENT}\n[bogus]\nx = 1\n"));
        assert!(e.contains("unknown field `bogus`"), "{e}");
    }

    #[test]
    fn unknown_component_key_is_refused() {
        let e = err(&format!("{ONE_COMPONENT}allowed_hosts = [\"x\"]\n"));
        assert!(e.contains("unknown field `allowed_hosts`"), "{e}");
    }

    #[test]
    fn unknown_application_key_is_refused() {
        let e = App::parse(
            "spin_manifest_version = 2\n[application]\nname = \"a\"\nnmae = \"b\"\n[trigger]\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("unknown field `nmae`"), "{e}");
    }

    #[test]
    fn unknown_http_trigger_key_is_refused() {
        let e = err(
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nrout = \"/x\"\n[component.a]\nsource = \"a.wasm\"\n",
        );
        assert!(e.contains("unknown field `rout`"), "{e}");
    }

    #[test]
    fn missing_manifest_version_is_refused() {
        let e = App::parse("[application]\nname = \"a\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing field `spin_manifest_version`"), "{e}");
    }

    #[test]
    fn manifest_version_other_than_two_is_refused() {
        let e = App::parse("spin_manifest_version = \"0\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("invalid manifest version: \"0\""), "{e}");
        let e = App::parse("spin_manifest_version = \"1\"\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("version 1"), "{e}");
    }

    #[test]
    fn trigger_table_is_required() {
        let e = App::parse(HEADER, Path::new(".")).unwrap_err().to_string();
        assert!(e.contains("missing field `trigger`"), "{e}");
    }

    #[test]
    fn application_name_is_required() {
        let e = App::parse(
            "spin_manifest_version = 2\n[application]\n[trigger]\n",
            Path::new("."),
        )
        .unwrap_err()
        .to_string();
        assert!(e.contains("missing field `name`"), "{e}");
    }

    #[test]
    fn trigger_referring_to_undefined_component_is_refused() {
        let e = err("[[trigger.http]]\nroute = \"/\"\ncomponent = \"ghost\"\n");
        assert!(e.contains("`ghost`") && e.contains("not defined"), "{e}");
    }

    #[test]
    fn non_http_trigger_referring_to_undefined_component_is_refused() {
        let e = err(&format!(
            "{ONE_COMPONENT}[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"ghost\"\n"
        ));
        assert!(
            e.contains("trigger `redis`") && e.contains("`ghost`"),
            "{e}"
        );
    }

    #[test]
    fn other_trigger_types_are_reported() {
        let app = parse(&format!(
            "{ONE_COMPONENT}[[trigger.redis]]\nchannel = \"c\"\ncomponent = \"visit\"\n"
        ))
        .unwrap();
        assert_eq!(app.other_trigger_types, ["redis"]);
        assert_eq!(app.http_routes.len(), 1);
    }

    #[test]
    fn invalid_component_id_is_refused() {
        let e = err("[trigger]\n[component.bad_id]\nsource = \"a.wasm\"\n");
        assert!(
            e.contains("\"bad_id\"") && e.contains("words must be separated with '-', not '_'"),
            "{e}"
        );
    }

    #[test]
    fn invalid_component_reference_is_refused() {
        let e = err("[[trigger.http]]\nroute = \"/\"\ncomponent = \"1-2-3\"\n");
        assert!(e.contains("must start with an ASCII letter"), "{e}");
    }

    #[test]
    fn invalid_variable_name_is_refused() {
        let e = err("[trigger]\n[variables]\n\"bad+name\" = { required = true }\n");
        assert!(e.contains("\"bad+name\""), "{e}");
    }

    #[test]
    fn variable_name_with_word_starting_with_digit_is_refused() {
        let e = err("[trigger]\n[variables]\na_1 = { default = \"x\" }\n");
        assert!(e.contains("\"a_1\""), "{e}");
    }

    #[test]
    fn variable_with_default_and_required_is_refused() {
        let e = err("[trigger]\n[variables]\nx = { default = \"1\", required = true }\n");
        assert!(
            e.contains("variable `x` must be `required` OR have a `default`"),
            "{e}"
        );
    }

    #[test]
    fn variable_with_neither_default_nor_required_is_refused() {
        let e = err("[trigger]\n[variables]\nx = { secret = true }\n");
        assert!(
            e.contains("variable `x` must be `required` OR have a `default`"),
            "{e}"
        );
    }

    #[test]
    fn unknown_variable_key_is_refused() {
        let e = err("[trigger]\n[variables]\nx = { default = \"1\", optional = true }\n");
        assert!(e.contains("unknown field `optional`"), "{e}");
    }

    #[test]
    fn component_variable_with_invalid_name_is_refused() {
        let e = err(&format!("{ONE_COMPONENT}variables = {{ Bad = \"x\" }}\n"));
        assert!(
            e.contains("component `visit`") && e.contains("\"Bad\""),
            "{e}"
        );
    }

    #[test]
    fn component_variable_naming_undeclared_app_variable_is_refused() {
        let e = err(&format!(
            "{ONE_COMPONENT}variables = {{ url = \"{{{{ nope }}}}\" }}\n"
        ));
        assert!(
            e.contains("component `visit` variable `url`")
                && e.contains("unknown variable \"nope\""),
            "{e}"
        );
    }

    #[test]
    fn remote_component_source_is_refused() {
        let e = err(
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\n[component.a]\nsource = { url = \"https://x/a.wasm\", digest = \"sha256:00\" }\n",
        );
        assert!(
            e.contains("component `a`") && e.contains("only local file sources"),
            "{e}"
        );
    }

    #[test]
    fn registry_component_source_is_refused() {
        let e = err(
            "[trigger]\n[component.a]\nsource = { registry = \"ttl.sh\", package = \"a:b\", version = \"1.0.0\" }\n",
        );
        assert!(e.contains("only local file sources"), "{e}");
    }

    #[test]
    fn deprecated_allowed_http_hosts_is_refused_with_advice() {
        let e = err(&format!(
            "{ONE_COMPONENT}allowed_http_hosts = [\"example.com\"]\n"
        ));
        assert!(e.contains("use `allowed_outbound_hosts`"), "{e}");
    }

    #[test]
    fn component_dependencies_are_refused() {
        let e = err(&format!(
            "{ONE_COMPONENT}[component.visit.dependencies]\n\"a:b/c\" = \"1.0.0\"\n"
        ));
        assert!(e.contains("dependencies are not supported"), "{e}");
    }

    #[test]
    fn invalid_key_value_store_label_is_refused() {
        let e = err(&format!(
            "{ONE_COMPONENT}key_value_stores = [\"my store\"]\n"
        ));
        assert!(
            e.contains("\"my store\"") && e.contains("kebab-case or snake_case"),
            "{e}"
        );
    }

    #[test]
    fn malformed_literal_allowed_host_is_refused() {
        let e = err(&format!(
            "{ONE_COMPONENT}allowed_outbound_hosts = [\"example.com\"]\n"
        ));
        assert!(
            e.contains("component `visit`") && e.contains("does not contain a scheme"),
            "{e}"
        );
    }

    #[test]
    fn allowed_host_template_is_checked_only_for_syntax() {
        parse(&format!(
            "[variables]\nhost = {{ required = true }}\n{ONE_COMPONENT}allowed_outbound_hosts = [\"https://{{{{ host }}}}\"]\n"
        ))
        .unwrap();
        let e = err(&format!(
            "{ONE_COMPONENT}allowed_outbound_hosts = [\"https://{{{{ host\"]\n"
        ));
        assert!(e.contains("unmatched"), "{e}");
    }

    #[test]
    fn private_route_is_not_routed_but_recorded() {
        let app = parse(
            "[[trigger.http]]\nroute = { private = true }\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        )
        .unwrap();
        assert!(app.http_routes.is_empty());
        assert_eq!(app.private_endpoints, ["a"]);
    }

    #[test]
    fn route_private_false_is_refused() {
        let e = err(
            "[[trigger.http]]\nroute = { private = false }\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        );
        assert!(e.contains("{ private = false }"), "{e}");
    }

    #[test]
    fn missing_route_is_refused() {
        let e = err("[[trigger.http]]\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n");
        assert!(e.contains("missing field `route`"), "{e}");
    }

    #[test]
    fn http_trigger_without_component_is_refused() {
        let e = err("[[trigger.http]]\nroute = \"/\"\n");
        assert!(e.contains("either component or static_response"), "{e}");
    }

    #[test]
    fn static_response_is_refused_as_unsupported() {
        let e = err("[[trigger.http]]\nroute = \"/\"\nstatic_response = { status = 404 }\n");
        assert!(e.contains("`static_response` is not supported"), "{e}");
    }

    #[test]
    fn wagi_executor_is_refused_as_unsupported() {
        let e = err(
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"wagi\" }\n[component.a]\nsource = \"a.wasm\"\n",
        );
        assert!(e.contains("WAGI"), "{e}");
    }

    #[test]
    fn spin_executor_is_accepted() {
        parse(
            "[[trigger.http]]\nroute = \"/\"\ncomponent = \"a\"\nexecutor = { type = \"spin\" }\n[component.a]\nsource = \"a.wasm\"\n",
        )
        .unwrap();
    }

    #[test]
    fn duplicate_route_is_refused_naming_both_components() {
        let e = err(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/x\"\ncomponent = \"b\"\n[component.a]\nsource = \"a.wasm\"\n[component.b]\nsource = \"b.wasm\"\n",
        );
        assert!(
            e.contains("duplicate HTTP route \"/x\"") && e.contains("`a`") && e.contains("`b`"),
            "{e}"
        );
    }

    #[test]
    fn routes_differing_by_trailing_slash_are_duplicates() {
        let e = err(
            "[[trigger.http]]\nroute = \"/x\"\ncomponent = \"a\"\n[[trigger.http]]\nroute = \"/x/\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n",
        );
        assert!(e.contains("duplicate HTTP route"), "{e}");
    }

    #[test]
    fn unparsable_route_is_refused() {
        let e = err("[[trigger.http]]\nroute = \"/a/:/b\"\ncomponent = \"a\"\n[component.a]\nsource = \"a.wasm\"\n");
        assert!(e.contains("/a/:/b") && e.contains("component a"), "{e}");
    }

    #[test]
    fn base_slash_is_accepted_other_bases_are_refused() {
        let with_base = |base: &str| {
            App::parse(
                &format!("spin_manifest_version = 2\n[application]\nname = \"a\"\n[application.trigger.http]\nbase = \"{base}\"\n[trigger]\n"),
                Path::new("."),
            )
        };
        with_base("/").unwrap();
        let e = with_base("/api").unwrap_err().to_string();
        assert!(e.contains("deprecated trigger 'base'"), "{e}");
    }

    #[test]
    fn inline_component_gets_spins_generated_id() {
        let app =
            parse("[[trigger.http]]\nroute = \"/\"\ncomponent = { source = \"inline.wasm\" }\n")
                .unwrap();
        assert_eq!(
            app.http_routes,
            vec![HttpRoute::new("/", "http-trigger1-component")]
        );
        assert_eq!(
            app.components["http-trigger1-component"].source,
            Path::new("/app/inline.wasm")
        );
    }

    #[test]
    fn inline_component_of_trigger_with_id_is_named_after_it() {
        let app = parse(
            "[[trigger.http]]\nid = \"home\"\nroute = \"/\"\ncomponent = { source = \"inline.wasm\" }\n",
        )
        .unwrap();
        assert_eq!(app.http_routes[0].component, "home-component");
    }

    #[test]
    fn generated_trigger_ids_skip_taken_ones() {
        let mut triggers: BTreeMap<String, Vec<RawTrigger>> = toml::from_str(
            r#"
[[http]]
component = "a"
[[http]]
id = "http-trigger1"
component = { source = "x.wasm" }
[[http]]
component = { source = "y.wasm" }
[[http]]
component = "a"
"#,
        )
        .unwrap();
        assign_trigger_ids(&mut triggers);
        let ids: Vec<&str> = triggers["http"].iter().map(|t| t.id.as_str()).collect();
        assert_eq!(
            ids,
            [
                "a-http-trigger",
                "http-trigger1",
                "http-trigger2",
                "http-trigger3"
            ]
        );
    }

    #[test]
    fn load_reads_file_and_uses_its_directory_as_base() {
        let dir = std::env::temp_dir().join(format!("spin-rules-load-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spin.toml");
        std::fs::write(&path, format!("{HEADER}{ONE_COMPONENT}")).unwrap();
        let app = App::load(&path).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(app.base_dir, dir);
        assert_eq!(
            app.components["visit"].source,
            dir.join("target/visit.wasm")
        );
    }

    #[test]
    fn load_of_missing_file_names_the_path() {
        let e = App::load(Path::new("/nonexistent/spin.toml")).unwrap_err();
        assert!(matches!(e, ManifestError::Read { .. }));
        assert!(e.to_string().contains("/nonexistent/spin.toml"));
    }

    #[test]
    fn toml_syntax_error_is_reported_with_position() {
        let e = App::parse("spin_manifest_version = 2\n[application\n", Path::new("."))
            .unwrap_err()
            .to_string();
        assert!(e.contains("line 2"), "{e}");
    }
}
