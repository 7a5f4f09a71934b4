//! Application variables, component variable templates and their resolution.
//!
//! A Spin application declares variables (`[variables]`, each with a `default` or
//! `required = true`); components never see those directly but declare their own
//! variables whose values are templates over them (`url = "https://{{ api_host }}/v1"`).
//! Values come from providers — by default the environment, `SPIN_VARIABLE_<NAME>` — and
//! fall back to the declared default. This module reproduces Spin's `spin-expressions`
//! rules (key syntax, template syntax, error kinds of `fermyon:spin/variables`), resolving
//! every application variable once, at start-up, so per-request look-ups are map reads.

use std::collections::BTreeMap;
use std::fmt;

use crate::manifest::{App, VariableDecl};

/// A variable resolution error, with the meaning of the `error` variant of
/// `fermyon:spin/variables@2.0.0` so the host can pass it to the guest unchanged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VariableError {
    /// The key is not a valid variable name.
    #[error("invalid variable name: {0}")]
    InvalidName(String),
    /// The component has no variable with that name.
    #[error("undefined variable: {0}")]
    Undefined(String),
    /// No provider could supply a value, or a provider failed.
    #[error("provider error: {0}")]
    Provider(String),
    /// Anything else, e.g. a malformed template.
    #[error("{0}")]
    Other(String),
}

/// Checks a variable key against Spin's key rules (`spin_expressions::Key`): non-empty,
/// only lower-case ASCII letters, digits and underscores, starting with a letter, ending
/// with a letter or digit, and no two underscores in a row.
pub fn validate_key(key: &str) -> Result<(), VariableError> {
    let reason = if key.is_empty() {
        Some("must not be empty".to_string())
    } else if let Some(bad) = key
        .chars()
        .find(|c| !(c.is_ascii_lowercase() || c.is_ascii_digit() || *c == '_'))
    {
        Some(format!(
            "invalid character {bad:?}. Variable names may contain only lower-case letters, numbers, and underscores."
        ))
    } else if !key.as_bytes()[0].is_ascii_lowercase() {
        Some("must start with a lowercase ASCII letter".to_string())
    } else if !key.as_bytes()[key.len() - 1].is_ascii_alphanumeric() {
        Some("must end with a lowercase ASCII letter or digit".to_string())
    } else if key.contains("__") {
        Some("must not contain multiple consecutive underscores".to_string())
    } else {
        None
    };
    match reason {
        None => Ok(()),
        Some(reason) => Err(VariableError::InvalidName(format!("{key:?}: {reason}"))),
    }
}

/// One piece of a [`Template`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TemplatePart {
    /// Text copied as is.
    Literal(String),
    /// `{{ name }}`: the value of an application variable (name already trimmed).
    Variable(String),
}

/// A string with `{{ name }}` expressions, as Spin parses it: text up to the next `{{` is
/// literal, an expression runs to the next `}}` and is trimmed; a `{{` without a closing
/// `}}` is an error. A lone `}}` is literal text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    parts: Vec<TemplatePart>,
}

impl Template {
    /// Parses a template.
    pub fn parse(text: &str) -> Result<Self, VariableError> {
        let mut parts = Vec::new();
        let mut rest = text;
        while !rest.is_empty() {
            if let Some(after_open) = rest.strip_prefix("{{") {
                let Some((expr, after)) = after_open.split_once("}}") else {
                    return Err(VariableError::Other(
                        "invalid variable template: unmatched '{{' in template".into(),
                    ));
                };
                parts.push(TemplatePart::Variable(expr.trim().to_string()));
                rest = after;
            } else {
                let end = rest.find("{{").unwrap_or(rest.len());
                parts.push(TemplatePart::Literal(rest[..end].to_string()));
                rest = &rest[end..];
            }
        }
        Ok(Self { parts })
    }

    /// The parts in order.
    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// True when the template has no `{{ }}` expression.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, TemplatePart::Literal(_)))
    }

    /// The variable names the template refers to, in order (with repeats).
    pub fn variable_names(&self) -> impl Iterator<Item = &str> {
        self.parts.iter().filter_map(|p| match p {
            TemplatePart::Variable(name) => Some(name.as_str()),
            TemplatePart::Literal(_) => None,
        })
    }

    /// Renders the template, taking variable values from `source`.
    pub fn render(&self, source: &(impl VariableSource + ?Sized)) -> Result<String, VariableError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => out.push_str(text),
                TemplatePart::Variable(name) => out.push_str(&source.variable_value(name)?),
            }
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for part in &self.parts {
            match part {
                TemplatePart::Literal(text) => f.write_str(text)?,
                TemplatePart::Variable(name) => write!(f, "{{{{ {name} }}}}")?,
            }
        }
        Ok(())
    }
}

/// Something that knows the values of application variables (Spin's `SyncResolver`).
pub trait VariableSource {
    /// The value of application variable `name`.
    fn variable_value(&self, name: &str) -> Result<String, VariableError>;
}

/// A plain map of application variable values; a missing name is
/// [`VariableError::InvalidName`], as in Spin's prepared resolver.
impl VariableSource for BTreeMap<String, String> {
    fn variable_value(&self, name: &str) -> Result<String, VariableError> {
        self.get(name)
            .cloned()
            .ok_or_else(|| VariableError::InvalidName(name.to_string()))
    }
}

/// A source of variable values (Spin's `Provider`), consulted in order before defaults.
pub trait VariableProvider {
    /// The value of application variable `name`, `Ok(None)` when this provider has none,
    /// or an error message when the provider failed.
    fn get(&self, name: &str) -> Result<Option<String>, String>;
}

type EnvLookup = Box<dyn Fn(&str) -> Result<Option<String>, String> + Send + Sync>;

/// Spin's default provider: variable `name` comes from the environment variable
/// `SPIN_VARIABLE_<NAME>` (name upper-cased). The lookup is injected so tests need not
/// touch the process environment.
///
/// Spin's provider also reads a `.env` file in the working directory when the variable is
/// not in the environment; a host wanting that can do it in the lookup closure.
pub struct EnvProvider {
    lookup: EnvLookup,
}

impl EnvProvider {
    /// The prefix Spin puts before the upper-cased variable name.
    pub const PREFIX: &'static str = "SPIN_VARIABLE";

    /// A provider that looks environment variables up with `lookup`.
    pub fn new(lookup: impl Fn(&str) -> Option<String> + Send + Sync + 'static) -> Self {
        Self {
            lookup: Box::new(move |k| Ok(lookup(k))),
        }
    }

    /// A provider reading the process environment; a value that is not valid Unicode is
    /// a provider error, as in Spin.
    pub fn from_process_env() -> Self {
        Self {
            lookup: Box::new(|k| match std::env::var(k) {
                Ok(v) => Ok(Some(v)),
                Err(std::env::VarError::NotPresent) => Ok(None),
                Err(e) => Err(format!("failed to resolve env var {k}: {e}")),
            }),
        }
    }

    /// The environment variable holding application variable `name`:
    /// `api_key` → `SPIN_VARIABLE_API_KEY`.
    pub fn env_var_name(name: &str) -> String {
        format!("{}_{}", Self::PREFIX, name.to_ascii_uppercase())
    }
}

impl VariableProvider for EnvProvider {
    fn get(&self, name: &str) -> Result<Option<String>, String> {
        (self.lookup)(&Self::env_var_name(name))
    }
}

impl fmt::Debug for EnvProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvProvider").finish_non_exhaustive()
    }
}

/// The start-up value of one application variable.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Value {
    Set(String),
    /// Required, and no provider had a value.
    Missing,
    /// A provider failed; Spin reports this even when there is a default.
    Failed(String),
}

/// Resolves component variables, with application variables resolved once at start-up.
#[derive(Debug, Clone)]
pub struct Resolver {
    declarations: BTreeMap<String, VariableDecl>,
    values: BTreeMap<String, Value>,
    components: BTreeMap<String, BTreeMap<String, Template>>,
}

impl Resolver {
    /// The resolver Spin uses by default: values from the environment (`SPIN_VARIABLE_<NAME>`,
    /// looked up with `env`, e.g. `|k| std::env::var(k).ok()`), else the declared default.
    /// See [`Resolver::with_providers`] for the validation done.
    pub fn new(
        app: &App,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self, VariableError> {
        let provider = EnvProvider::new(env);
        Self::with_providers(
            &app.variables,
            app.components
                .iter()
                .map(|(id, c)| (id.as_str(), &c.variables)),
            &[&provider],
        )
    }

    /// Validates the declarations and every component's templates, then resolves every
    /// application variable: the first provider with a value wins, else the default.
    ///
    /// Errors: an invalid application variable name or component variable key
    /// ([`VariableError::InvalidName`]); a template that does not parse or names an
    /// undeclared application variable ([`VariableError::Other`]). A required variable
    /// without a value is *not* an error here: call [`Resolver::ensure_required_resolvable`].
    pub fn with_providers<'a>(
        declarations: &BTreeMap<String, VariableDecl>,
        components: impl IntoIterator<Item = (&'a str, &'a BTreeMap<String, String>)>,
        providers: &[&dyn VariableProvider],
    ) -> Result<Self, VariableError> {
        for name in declarations.keys() {
            validate_key(name)?;
        }
        let mut parsed = BTreeMap::new();
        for (component_id, variables) in components {
            let mut templates = BTreeMap::new();
            for (key, text) in variables {
                validate_key(key).map_err(|e| match e {
                    VariableError::InvalidName(m) => VariableError::InvalidName(format!(
                        "component `{component_id}` variable {m}"
                    )),
                    other => other,
                })?;
                let template = parse_declared_template(text, declarations).map_err(|e| {
                    VariableError::Other(format!(
                        "component `{component_id}` variable `{key}`: {e}"
                    ))
                })?;
                templates.insert(key.clone(), template);
            }
            parsed.insert(component_id.to_string(), templates);
        }
        let mut values = BTreeMap::new();
        for (name, decl) in declarations {
            let mut value = None;
            for provider in providers {
                match provider.get(name) {
                    Ok(Some(v)) => {
                        value = Some(Value::Set(v));
                        break;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        value = Some(Value::Failed(e));
                        break;
                    }
                }
            }
            let value = value.unwrap_or_else(|| match &decl.default {
                Some(d) => Value::Set(d.clone()),
                None => Value::Missing,
            });
            values.insert(name.clone(), value);
        }
        Ok(Self {
            declarations: declarations.clone(),
            values,
            components: parsed,
        })
    }

    /// Errors with [`VariableError::Provider`] naming every variable that has no default
    /// and got no value from any provider (Spin checks this before serving).
    pub fn ensure_required_resolvable(&self) -> Result<(), VariableError> {
        let unresolvable: Vec<&str> = self
            .declarations
            .iter()
            .filter(|(name, decl)| {
                decl.default.is_none() && !matches!(self.values.get(*name), Some(Value::Set(_)))
            })
            .map(|(name, _)| name.as_str())
            .collect();
        if unresolvable.is_empty() {
            Ok(())
        } else {
            Err(VariableError::Provider(format!(
                "no provider resolved required variable(s): {unresolvable:?}"
            )))
        }
    }

    /// The value of component variable `key` for `component_id`, as `variables.get` returns
    /// it: an invalid key is [`VariableError::InvalidName`], a key the component does not
    /// declare (or an unknown component) is [`VariableError::Undefined`], and a referenced
    /// application variable without a value is [`VariableError::Provider`].
    pub fn resolve(&self, component_id: &str, key: &str) -> Result<String, VariableError> {
        validate_key(key)?;
        let templates = self.components.get(component_id).ok_or_else(|| {
            VariableError::Undefined(format!("no variable for component {component_id:?}"))
        })?;
        let template = templates.get(key).ok_or_else(|| {
            VariableError::Undefined(format!("no variable for {component_id:?}.{key:?}"))
        })?;
        template.render(self)
    }

    /// Every variable of `component_id` with its value, sorted by key (`wasi:config`'s
    /// `get-all`). An unknown component has none.
    pub fn resolve_all(&self, component_id: &str) -> Result<Vec<(String, String)>, VariableError> {
        let Some(templates) = self.components.get(component_id) else {
            return Ok(Vec::new());
        };
        templates
            .iter()
            .map(|(k, t)| Ok((k.clone(), t.render(self)?)))
            .collect()
    }

    /// Renders a template over application variables (e.g. an `allowed_outbound_hosts` entry).
    pub fn resolve_template(&self, template: &str) -> Result<String, VariableError> {
        Template::parse(template)?.render(self)
    }

    /// True when application variable `name` is declared `secret = true`; the host must
    /// not log its value.
    pub fn is_secret(&self, name: &str) -> bool {
        self.declarations.get(name).is_some_and(|d| d.secret)
    }

    /// True when any application variable the component variable `key` of `component_id`
    /// refers to is secret, so its resolved value must not be logged either.
    pub fn component_variable_is_secret(&self, component_id: &str, key: &str) -> bool {
        self.components
            .get(component_id)
            .and_then(|t| t.get(key))
            .is_some_and(|t| t.variable_names().any(|n| self.is_secret(n)))
    }
}

impl<T: VariableSource + ?Sized> VariableSource for &T {
    fn variable_value(&self, name: &str) -> Result<String, VariableError> {
        (**self).variable_value(name)
    }
}

impl<T: VariableSource + ?Sized> VariableSource for std::sync::Arc<T> {
    fn variable_value(&self, name: &str) -> Result<String, VariableError> {
        (**self).variable_value(name)
    }
}

impl VariableSource for Resolver {
    fn variable_value(&self, name: &str) -> Result<String, VariableError> {
        match self.values.get(name) {
            Some(Value::Set(v)) => Ok(v.clone()),
            Some(Value::Missing) => Err(VariableError::Provider(format!(
                "no provider resolved required variable {name:?}"
            ))),
            Some(Value::Failed(e)) => Err(VariableError::Provider(e.clone())),
            None => Err(VariableError::InvalidName(name.to_string())),
        }
    }
}

/// Parses a template and checks that every `{{ name }}` is a declared application variable.
pub fn parse_declared_template(
    text: &str,
    declarations: &BTreeMap<String, VariableDecl>,
) -> Result<Template, VariableError> {
    let template = Template::parse(text)?;
    if let Some(unknown) = template
        .variable_names()
        .find(|n| !declarations.contains_key(*n))
    {
        return Err(VariableError::Other(format!(
            "invalid variable template: unknown variable {unknown:?}"
        )));
    }
    Ok(template)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decl(default: Option<&str>, secret: bool) -> VariableDecl {
        VariableDecl {
            default: default.map(str::to_string),
            required: default.is_none(),
            secret,
        }
    }

    fn declarations() -> BTreeMap<String, VariableDecl> {
        BTreeMap::from([
            ("api_host".to_string(), decl(Some("example.com"), false)),
            ("api_token".to_string(), decl(None, true)),
            ("redis_port".to_string(), decl(Some("6379"), false)),
        ])
    }

    fn env(pairs: &[(&str, &str)]) -> EnvProvider {
        let map: BTreeMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        EnvProvider::new(move |k| map.get(k).cloned())
    }

    fn component_vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn resolver_with(
        vars: &[(&str, &str)],
        environment: &[(&str, &str)],
    ) -> Result<Resolver, VariableError> {
        let vars = component_vars(vars);
        let provider = env(environment);
        Resolver::with_providers(&declarations(), [("visit", &vars)], &[&provider])
    }

    // --- keys ---

    #[test]
    fn keys_accepted_by_spin_are_valid() {
        for key in ["a", "abc", "a1b2c3", "a_1", "a_1_b_3"] {
            validate_key(key).unwrap_or_else(|e| panic!("{key}: {e}"));
        }
    }

    #[test]
    fn keys_rejected_by_spin_are_invalid_names() {
        for key in ["", "aX", "1bc", "_x", "x.y", "x_", "a__b", "x-y"] {
            assert!(
                matches!(validate_key(key), Err(VariableError::InvalidName(_))),
                "{key:?} should be invalid"
            );
        }
    }

    #[test]
    fn invalid_key_message_names_the_key_and_the_reason() {
        let err = validate_key("a__b").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid variable name: \"a__b\": must not contain multiple consecutive underscores"
        );
    }

    // --- templates ---

    #[test]
    fn template_splits_literals_and_trimmed_expressions() {
        let t = Template::parse("a-{{ expr }}-b{{x}}").unwrap();
        assert_eq!(
            t.parts(),
            [
                TemplatePart::Literal("a-".into()),
                TemplatePart::Variable("expr".into()),
                TemplatePart::Literal("-b".into()),
                TemplatePart::Variable("x".into()),
            ]
        );
    }

    #[test]
    fn empty_template_has_no_parts_and_is_literal() {
        let t = Template::parse("").unwrap();
        assert!(t.parts().is_empty());
        assert!(t.is_literal());
    }

    #[test]
    fn template_without_braces_is_literal() {
        assert!(Template::parse("hello").unwrap().is_literal());
        assert!(!Template::parse("hello {{ world }}").unwrap().is_literal());
    }

    #[test]
    fn unmatched_open_braces_are_an_error() {
        let err = Template::parse("{{ matched }} {{ unmatched").unwrap_err();
        assert!(err.to_string().contains("unmatched '{{'"), "{err}");
    }

    #[test]
    fn lone_closing_braces_are_literal_text() {
        let t = Template::parse("a }} b").unwrap();
        assert!(t.is_literal());
    }

    #[test]
    fn template_displays_in_canonical_form() {
        let t = Template::parse("x{{a}}y").unwrap();
        assert_eq!(t.to_string(), "x{{ a }}y");
    }

    // --- env provider ---

    #[test]
    fn env_provider_reads_spin_variable_prefixed_uppercase_name() {
        assert_eq!(
            EnvProvider::env_var_name("api_token"),
            "SPIN_VARIABLE_API_TOKEN"
        );
        let provider = env(&[("SPIN_VARIABLE_API_TOKEN", "t0k3n")]);
        assert_eq!(provider.get("api_token"), Ok(Some("t0k3n".into())));
        assert_eq!(provider.get("api_host"), Ok(None));
    }

    // --- resolution ---

    #[test]
    fn literal_component_variable_resolves_to_itself() {
        let r = resolver_with(&[("greeting", "hello")], &[]).unwrap();
        assert_eq!(r.resolve("visit", "greeting").unwrap(), "hello");
    }

    #[test]
    fn template_uses_the_default_when_no_provider_has_a_value() {
        let r = resolver_with(&[("url", "https://{{ api_host }}/v1")], &[]).unwrap();
        assert_eq!(r.resolve("visit", "url").unwrap(), "https://example.com/v1");
    }

    #[test]
    fn environment_takes_precedence_over_the_default() {
        let r = resolver_with(
            &[("url", "https://{{ api_host }}/v1")],
            &[("SPIN_VARIABLE_API_HOST", "api.test")],
        )
        .unwrap();
        assert_eq!(r.resolve("visit", "url").unwrap(), "https://api.test/v1");
    }

    #[test]
    fn empty_environment_value_is_a_value() {
        let r = resolver_with(
            &[("host", "{{ api_host }}")],
            &[("SPIN_VARIABLE_API_HOST", "")],
        )
        .unwrap();
        assert_eq!(r.resolve("visit", "host").unwrap(), "");
    }

    #[test]
    fn first_provider_with_a_value_wins() {
        let vars = component_vars(&[("host", "{{ api_host }}")]);
        let first = env(&[("SPIN_VARIABLE_API_HOST", "first")]);
        let second = env(&[("SPIN_VARIABLE_API_HOST", "second")]);
        let r = Resolver::with_providers(&declarations(), [("visit", &vars)], &[&first, &second])
            .unwrap();
        assert_eq!(r.resolve("visit", "host").unwrap(), "first");
    }

    #[test]
    fn failing_provider_is_a_provider_error_even_with_a_default() {
        struct Broken;
        impl VariableProvider for Broken {
            fn get(&self, _: &str) -> Result<Option<String>, String> {
                Err("vault is down".into())
            }
        }
        let vars = component_vars(&[("host", "{{ api_host }}")]);
        let r = Resolver::with_providers(&declarations(), [("visit", &vars)], &[&Broken]).unwrap();
        assert_eq!(
            r.resolve("visit", "host"),
            Err(VariableError::Provider("vault is down".into()))
        );
    }

    #[test]
    fn required_variable_without_value_is_a_provider_error_when_used() {
        let r = resolver_with(&[("token", "Bearer {{ api_token }}")], &[]).unwrap();
        assert!(matches!(
            r.resolve("visit", "token"),
            Err(VariableError::Provider(m)) if m.contains("api_token")
        ));
    }

    #[test]
    fn required_variable_from_environment_resolves() {
        let r = resolver_with(
            &[("token", "Bearer {{ api_token }}")],
            &[("SPIN_VARIABLE_API_TOKEN", "xyz")],
        )
        .unwrap();
        assert_eq!(r.resolve("visit", "token").unwrap(), "Bearer xyz");
        r.ensure_required_resolvable().unwrap();
    }

    #[test]
    fn ensure_required_lists_every_unresolvable_variable() {
        let mut decls = declarations();
        decls.insert("db_password".into(), decl(None, true));
        let none = BTreeMap::new();
        let r = Resolver::with_providers(&decls, [("visit", &none)], &[&env(&[])]).unwrap();
        let err = r.ensure_required_resolvable().unwrap_err();
        assert_eq!(
            err,
            VariableError::Provider(
                "no provider resolved required variable(s): [\"api_token\", \"db_password\"]"
                    .into()
            )
        );
    }

    #[test]
    fn ensure_required_ignores_variables_with_defaults() {
        let decls = BTreeMap::from([("a".to_string(), decl(Some("1"), false))]);
        let r = Resolver::with_providers(&decls, [], &[]).unwrap();
        r.ensure_required_resolvable().unwrap();
    }

    #[test]
    fn invalid_key_on_get_is_invalid_name() {
        let r = resolver_with(&[("url", "x")], &[]).unwrap();
        assert!(matches!(
            r.resolve("visit", "URL"),
            Err(VariableError::InvalidName(_))
        ));
    }

    #[test]
    fn undeclared_component_variable_is_undefined() {
        let r = resolver_with(&[("url", "x")], &[]).unwrap();
        assert_eq!(
            r.resolve("visit", "other"),
            Err(VariableError::Undefined(
                "no variable for \"visit\".\"other\"".into()
            ))
        );
    }

    #[test]
    fn application_variable_is_not_visible_to_components_directly() {
        let r = resolver_with(&[], &[]).unwrap();
        assert!(matches!(
            r.resolve("visit", "api_host"),
            Err(VariableError::Undefined(_))
        ));
    }

    #[test]
    fn unknown_component_is_undefined() {
        let r = resolver_with(&[("url", "x")], &[]).unwrap();
        assert_eq!(
            r.resolve("nope", "url"),
            Err(VariableError::Undefined(
                "no variable for component \"nope\"".into()
            ))
        );
    }

    #[test]
    fn template_naming_an_undeclared_variable_is_rejected_at_start_up() {
        let err = resolver_with(&[("url", "{{ nope }}")], &[]).unwrap_err();
        assert_eq!(
            err,
            VariableError::Other(
                "component `visit` variable `url`: invalid variable template: unknown variable \"nope\""
                    .into()
            )
        );
    }

    #[test]
    fn unmatched_braces_in_component_variable_are_rejected_at_start_up() {
        let err = resolver_with(&[("url", "{{ api_host")], &[]).unwrap_err();
        assert!(matches!(err, VariableError::Other(m) if m.contains("unmatched")));
    }

    #[test]
    fn invalid_component_variable_key_is_rejected_at_start_up() {
        let err = resolver_with(&[("Bad", "x")], &[]).unwrap_err();
        assert!(matches!(err, VariableError::InvalidName(m) if m.contains("`visit`")));
    }

    #[test]
    fn invalid_application_variable_name_is_rejected_at_start_up() {
        let decls = BTreeMap::from([("a__b".to_string(), decl(Some("1"), false))]);
        assert!(matches!(
            Resolver::with_providers(&decls, [], &[]),
            Err(VariableError::InvalidName(_))
        ));
    }

    #[test]
    fn resolve_all_lists_component_variables_sorted() {
        let r = resolver_with(&[("b", "{{ redis_port }}"), ("a", "x")], &[]).unwrap();
        assert_eq!(
            r.resolve_all("visit").unwrap(),
            vec![("a".into(), "x".into()), ("b".into(), "6379".into())]
        );
        assert!(r.resolve_all("nope").unwrap().is_empty());
    }

    #[test]
    fn resolve_template_renders_over_application_variables() {
        let r = resolver_with(&[], &[]).unwrap();
        assert_eq!(
            r.resolve_template("redis://{{ api_host }}:{{ redis_port }}")
                .unwrap(),
            "redis://example.com:6379"
        );
        assert!(matches!(
            r.resolve_template("{{ nope }}"),
            Err(VariableError::InvalidName(_))
        ));
    }

    #[test]
    fn secrets_are_reported_for_app_and_component_variables() {
        let r = resolver_with(
            &[("token", "{{ api_token }}"), ("url", "{{ api_host }}")],
            &[],
        )
        .unwrap();
        assert!(r.is_secret("api_token"));
        assert!(!r.is_secret("api_host"));
        assert!(!r.is_secret("undeclared"));
        assert!(r.component_variable_is_secret("visit", "token"));
        assert!(!r.component_variable_is_secret("visit", "url"));
    }

    #[test]
    fn resolver_for_an_app_reads_spin_variable_environment() {
        let app = App::parse(
            r#"
spin_manifest_version = 2
[application]
name = "a"
[variables]
redis_host = { default = "127.0.0.1" }
token = { required = true, secret = true }
[[trigger.http]]
route = "/..."
component = "c"
[component.c]
source = "c.wasm"
variables = { redis_url = "redis://{{ redis_host }}", token = "{{ token }}" }
"#,
            std::path::Path::new("."),
        )
        .unwrap();
        let r = Resolver::new(&app, |k| {
            (k == "SPIN_VARIABLE_TOKEN").then(|| "s3cret".into())
        })
        .unwrap();
        r.ensure_required_resolvable().unwrap();
        assert_eq!(r.resolve("c", "redis_url").unwrap(), "redis://127.0.0.1");
        assert_eq!(r.resolve("c", "token").unwrap(), "s3cret");
        let missing = Resolver::new(&app, |_| None).unwrap();
        assert!(missing.ensure_required_resolvable().is_err());
    }

    #[test]
    fn values_are_resolved_once_at_start_up() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::Arc;
        let calls = Arc::new(AtomicUsize::new(0));
        let counter = calls.clone();
        let provider = EnvProvider::new(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            None
        });
        let vars = component_vars(&[("url", "{{ api_host }}")]);
        let r =
            Resolver::with_providers(&declarations(), [("visit", &vars)], &[&provider]).unwrap();
        let after_start = calls.load(Ordering::SeqCst);
        for _ in 0..3 {
            r.resolve("visit", "url").unwrap();
        }
        assert_eq!(after_start, declarations().len());
        assert_eq!(calls.load(Ordering::SeqCst), after_start);
    }
}
