//! `spin-probe`: a component for testing the host against Spin's rules. It answers with JSON
//! describing what it saw and what its host calls returned, driven by query parameters:
//!
//! - always: `method`, `uri`, `headers` (every request header, in order);
//! - `var=<name>`: the variable's value or the error's kind;
//! - `redis=<url>`: whether `open` succeeded, or the error's kind; with `&cmd=PING` runs it;
//! - `kv_open=<label>`: whether the store opened, or the error's kind;
//! - `kv_set=<key>&value=<v>` / `kv_get=<key>` / `kv_delete=<key>` on the default store.

use spin_sdk::http::{Request, Response};
use spin_sdk::http_component;
use spin_sdk::key_value::Store;
use spin_sdk::redis::Connection;

#[http_component]
fn handle(req: Request) -> Response {
    let mut report = serde_json::Map::new();
    report.insert("method".into(), req.method().to_string().into());
    report.insert("uri".into(), req.uri().into());
    let headers: Vec<serde_json::Value> = req
        .headers()
        .map(|(name, value)| serde_json::json!([name, value.as_str().unwrap_or("<bytes>")]))
        .collect();
    report.insert("headers".into(), headers.into());
    for (key, value) in query_pairs(req.query()) {
        let outcome = match key.as_str() {
            "var" => match spin_sdk::variables::get(&value) {
                Ok(v) => serde_json::json!({"ok": v}),
                Err(e) => serde_json::json!({"err": format!("{e:?}")}),
            },
            "redis" => redis_probe(&value, &req),
            "kv_open" => match Store::open(&value) {
                Ok(_) => serde_json::json!({"ok": true}),
                Err(e) => serde_json::json!({"err": format!("{e:?}")}),
            },
            "kv_set" => {
                let v = query_pairs(req.query())
                    .find(|(k, _)| k == "value")
                    .map(|(_, v)| v)
                    .unwrap_or_default();
                kv(|s| {
                    s.set(&value, v.as_bytes())
                        .map(|()| serde_json::Value::Null)
                })
            }
            "kv_get" => kv(|s| {
                s.get(&value)
                    .map(|v| v.map(|b| String::from_utf8_lossy(&b).into_owned()).into())
            }),
            "kv_delete" => kv(|s| s.delete(&value).map(|()| serde_json::Value::Null)),
            _ => continue,
        };
        report.insert(key, outcome);
    }
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&report).unwrap())
        .build()
}

fn redis_probe(url: &str, req: &Request) -> serde_json::Value {
    match Connection::open(url) {
        Ok(conn) => match query_pairs(req.query()).find(|(k, _)| k == "cmd") {
            Some((_, cmd)) => match conn.execute(&cmd, &[]) {
                Ok(reply) => serde_json::json!({"ok": format!("{reply:?}")}),
                Err(e) => serde_json::json!({"err": format!("{e:?}")}),
            },
            None => serde_json::json!({"ok": true}),
        },
        Err(e) => serde_json::json!({"err": format!("{e:?}")}),
    }
}

fn kv(
    op: impl FnOnce(&Store) -> Result<serde_json::Value, spin_sdk::key_value::Error>,
) -> serde_json::Value {
    match Store::open_default().and_then(|s| op(&s)) {
        Ok(v) => serde_json::json!({"ok": v}),
        Err(e) => serde_json::json!({"err": format!("{e:?}")}),
    }
}

fn query_pairs(query: &str) -> impl Iterator<Item = (String, String)> + '_ {
    form_urlencoded::parse(query.as_bytes()).map(|(k, v)| (k.into_owned(), v.into_owned()))
}
