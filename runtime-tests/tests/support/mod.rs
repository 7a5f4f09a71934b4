//! Test support: locating manifests and built components, starting hosts, making requests.

#![allow(dead_code)]

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use tally_host::local::LocalHost;
use tally_host::runtime::HostOptions;
use tally_host::server::ServerOptions;

/// The workspace root.
pub fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// `runtime-tests/scenarios/<name>/spin.toml`.
pub fn scenario(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("scenarios")
        .join(name)
        .join("spin.toml")
}

/// The application's own manifest.
pub fn tally_manifest() -> PathBuf {
    workspace().join("spin.toml")
}

/// Fails with a helpful message when the components have not been built.
pub fn require_components() {
    let probe = workspace().join("target/wasm32-wasip2/component/spin_probe.wasm");
    assert!(
        probe.exists(),
        "components are not built: run scripts/test (or scripts/lib.sh's build_components)"
    );
}

/// Starts a host for `manifest` with the given `SPIN_VARIABLE_*` values.
pub fn start(manifest: &Path, vars: &[(&str, String)]) -> LocalHost {
    start_with(manifest, vars, HostOptions::default())
}

/// Starts a host with explicit host options.
pub fn start_with(manifest: &Path, vars: &[(&str, String)], options: HostOptions) -> LocalHost {
    require_components();
    let env = env_of(vars);
    LocalHost::start(
        manifest,
        options,
        ServerOptions {
            log_requests: false,
            ..ServerOptions::default()
        },
        move |name| env.get(name).cloned(),
    )
    .expect("host starts")
}

/// A `SPIN_VARIABLE_*` lookup table.
pub fn env_of(vars: &[(&str, String)]) -> HashMap<String, String> {
    vars.iter()
        .map(|(k, v)| (format!("SPIN_VARIABLE_{}", k.to_uppercase()), v.clone()))
        .collect()
}

/// An HTTP response as tests see it.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Reply {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.body))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(20)))
        .build()
        .into()
}

fn reply(resp: ureq::http::Response<ureq::Body>) -> Reply {
    let status = resp.status().as_u16();
    let headers = resp
        .headers()
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let body = resp.into_body().read_to_string().unwrap_or_default();
    Reply {
        status,
        headers,
        body,
    }
}

/// `GET url`.
pub fn get(url: &str) -> Reply {
    reply(agent().get(url).call().expect("GET completes"))
}

/// `GET url` with extra headers.
pub fn get_with(url: &str, headers: &[(&str, &str)]) -> Reply {
    let mut req = agent().get(url);
    for (n, v) in headers {
        req = req.header(*n, *v);
    }
    reply(req.call().expect("GET completes"))
}

/// `POST url` with a body and content type.
pub fn post(url: &str, content_type: &str, body: &str) -> Reply {
    reply(
        agent()
            .post(url)
            .header("content-type", content_type)
            .send(body)
            .expect("POST completes"),
    )
}

/// The value of request header `name` as the probe component saw it.
pub fn seen_header(probe: &serde_json::Value, name: &str) -> Option<String> {
    probe["headers"]
        .as_array()?
        .iter()
        .find(|pair| pair[0].as_str() == Some(name))
        .and_then(|pair| pair[1].as_str().map(str::to_string))
}

/// Every value of request header `name` the probe saw.
pub fn seen_headers(probe: &serde_json::Value, name: &str) -> Vec<String> {
    probe["headers"]
        .as_array()
        .map(|pairs| {
            pairs
                .iter()
                .filter(|pair| pair[0].as_str() == Some(name))
                .filter_map(|pair| pair[1].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}
