//! Prepares what the component embeds besides its static files:
//! - the dashboard's JavaScript dependencies, which `scripts/lib.sh` (`ensure_js_deps`)
//!   installs from the npm registry with `npm ci`, pinned by `js/package-lock.json`, in
//!   `target/js/node_modules` at the workspace root (or `$TALLY_JS_DIR`): their paths are handed
//!   to the component as compile-time environment variables;
//! - the API reference page (`/docs`), rendered here from `static/openapi.json` into plain
//!   HTML (no script), so it can never disagree with the document it shows.

use std::path::PathBuf;

/// (environment variable, file under `node_modules`).
const FILES: &[(&str, &str)] = &[
    ("UPLOT_JS", "uplot/dist/uPlot.iife.min.js"),
    ("UPLOT_CSS", "uplot/dist/uPlot.min.css"),
    ("UPLOT_LICENSE", "uplot/LICENSE"),
];

fn main() {
    render_docs();
    println!("cargo:rerun-if-env-changed=TALLY_JS_DIR");
    println!("cargo:rerun-if-changed=js/package-lock.json");
    let modules = match std::env::var_os("TALLY_JS_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => {
            let manifest =
                PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"));
            manifest.join("../../target/js/node_modules")
        }
    };
    for (var, file) in FILES {
        let path = modules.join(file);
        let Ok(path) = path.canonicalize() else {
            panic!(
                "{} is missing: the dashboard's JavaScript is installed with npm ci by \
                 scripts/lib.sh (scripts/run and scripts/test run it)",
                path.display()
            );
        };
        println!("cargo:rerun-if-changed={}", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

/// Renders `static/openapi.json` as `$OUT_DIR/docs.html` and hands its path to the component
/// (`DOCS_HTML`).
fn render_docs() {
    let source = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("static/openapi.json");
    println!("cargo:rerun-if-changed={}", source.display());
    let text = std::fs::read_to_string(&source).expect("reading static/openapi.json");
    let doc: serde_json::Value = serde_json::from_str(&text).expect("openapi.json is JSON");
    let html = docs_html(&doc);
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets it")).join("docs.html");
    std::fs::write(&out, html).expect("writing docs.html");
    println!("cargo:rustc-env=DOCS_HTML={}", out.display());
}

fn esc(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Inline code spans (`like this`) of a description, escaped.
fn prose(text: &str) -> String {
    esc(text)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn str_of<'a>(value: &'a serde_json::Value, key: &str) -> &'a str {
    value.get(key).and_then(|v| v.as_str()).unwrap_or("")
}

/// A schema as one line: its reference's name, or its type and constraints.
fn schema_text(schema: &serde_json::Value) -> String {
    if let Some(r) = schema.get("$ref").and_then(|r| r.as_str()) {
        let name = r.rsplit('/').next().unwrap_or(r);
        return format!("<a href=\"#schema-{0}\">{0}</a>", esc(name));
    }
    if let Some(options) = schema.get("oneOf").and_then(|o| o.as_array()) {
        return options
            .iter()
            .map(schema_text)
            .collect::<Vec<_>>()
            .join(" or ");
    }
    let mut text = match schema.get("type") {
        Some(serde_json::Value::Array(types)) => types
            .iter()
            .filter_map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(" | "),
        Some(t) => t.as_str().unwrap_or("").to_string(),
        None if schema.get("const").is_some() => "const".to_string(),
        None => "any".to_string(),
    };
    if text == "array" {
        if let Some(items) = schema.get("items") {
            text = format!("array of {}", schema_text(items));
        }
    }
    let mut notes = Vec::new();
    for key in [
        "enum",
        "const",
        "default",
        "minimum",
        "maximum",
        "minLength",
        "maxLength",
        "minItems",
        "maxItems",
        "pattern",
    ] {
        if let Some(v) = schema.get(key) {
            notes.push(format!("{key} {}", esc(&v.to_string())));
        }
    }
    if notes.is_empty() {
        esc(&text)
    } else {
        format!(
            "{} ({})",
            if text.contains('<') { text } else { esc(&text) },
            notes.join(", ")
        )
    }
}

fn deref<'a>(doc: &'a serde_json::Value, node: &'a serde_json::Value) -> &'a serde_json::Value {
    match node.get("$ref").and_then(|r| r.as_str()) {
        Some(r) => doc.pointer(r.trim_start_matches('#')).unwrap_or(node),
        None => node,
    }
}

fn docs_html(doc: &serde_json::Value) -> String {
    let info = &doc["info"];
    let mut h = String::new();
    h.push_str("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    h.push_str(&format!(
        "<title>{} API reference</title>\n",
        esc(str_of(info, "title"))
    ));
    h.push_str("<link rel=\"icon\" href=\"data:,\">\n<link rel=\"stylesheet\" href=\"/dashboard/app.css\">\n</head>\n<body class=\"docs\">\n");
    h.push_str(&format!(
        "<header><h1>{} API {}</h1><a href=\"/openapi.json\">openapi.json</a></header>\n<main>\n",
        esc(str_of(info, "title")),
        esc(str_of(info, "version"))
    ));
    h.push_str(&format!("<p>{}</p>\n", prose(str_of(info, "description"))));
    let methods = ["get", "post", "put", "delete", "options"];
    if let Some(paths) = doc["paths"].as_object() {
        for (path, item) in paths {
            for method in methods {
                let Some(op) = item.get(method) else { continue };
                let id = str_of(op, "operationId");
                h.push_str(&format!(
                    "<section id=\"{}\"><h2><code>{} {}</code></h2>\n<p>{}</p>\n",
                    esc(id),
                    method.to_uppercase(),
                    esc(path),
                    prose(str_of(op, "summary"))
                ));
                if op.get("security").is_some() {
                    h.push_str("<p>Needs the admin key: <code>Authorization: Bearer &lt;admin_key&gt;</code>.</p>\n");
                }
                if let Some(params) = op.get("parameters").and_then(|p| p.as_array()) {
                    h.push_str(
                        "<table><tr><th>parameter</th><th>in</th><th>schema</th><th></th></tr>\n",
                    );
                    for p in params {
                        let p = deref(doc, p);
                        h.push_str(&format!(
                            "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                            esc(str_of(p, "name")),
                            if p["required"].as_bool() == Some(true) { " (required)" } else { "" },
                            esc(str_of(p, "in")),
                            schema_text(&p["schema"]),
                            prose(str_of(p, "description"))
                        ));
                    }
                    h.push_str("</table>\n");
                }
                if let Some(body) = op.get("requestBody").and_then(|b| b["content"].as_object()) {
                    for (media, c) in body {
                        h.push_str(&format!(
                            "<p>Body <code>{}</code>: {}</p>\n",
                            esc(media),
                            schema_text(&c["schema"])
                        ));
                    }
                }
                if let Some(responses) = op["responses"].as_object() {
                    h.push_str("<table><tr><th>status</th><th>meaning</th><th>body</th></tr>\n");
                    for (status, r) in responses {
                        let r = deref(doc, r);
                        let body = r["content"]
                            .as_object()
                            .map(|c| {
                                c.iter()
                                    .map(|(media, m)| {
                                        format!(
                                            "<code>{}</code> {}",
                                            esc(media),
                                            schema_text(&m["schema"])
                                        )
                                    })
                                    .collect::<Vec<_>>()
                                    .join("<br>")
                            })
                            .unwrap_or_default();
                        h.push_str(&format!(
                            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                            esc(status),
                            prose(str_of(r, "description")),
                            body
                        ));
                    }
                    h.push_str("</table>\n");
                }
                h.push_str("</section>\n");
            }
        }
    }
    h.push_str("<h2>Schemas</h2>\n");
    if let Some(schemas) = doc["components"]["schemas"].as_object() {
        for (name, schema) in schemas {
            h.push_str(&format!(
                "<section id=\"schema-{0}\"><h3>{0}</h3>\n",
                esc(name)
            ));
            if let Some(props) = schema["properties"].as_object() {
                let required: Vec<&str> = schema["required"]
                    .as_array()
                    .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
                    .unwrap_or_default();
                h.push_str("<table><tr><th>field</th><th>schema</th><th></th></tr>\n");
                for (field, s) in props {
                    h.push_str(&format!(
                        "<tr><td><code>{}</code>{}</td><td>{}</td><td>{}</td></tr>\n",
                        esc(field),
                        if required.contains(&field.as_str()) {
                            " (required)"
                        } else {
                            ""
                        },
                        schema_text(s),
                        prose(str_of(s, "description"))
                    ));
                }
                h.push_str("</table>\n");
            }
            h.push_str("</section>\n");
        }
    }
    h.push_str("</main>\n</body>\n</html>\n");
    h
}
