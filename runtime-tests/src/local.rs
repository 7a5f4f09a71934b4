//! An application served on a free loopback port from a background thread, for tests and
//! benchmarks: `LocalHost::start` returns once the port accepts connections; dropping the
//! handle shuts the server down and joins the thread. Unless the options name a state
//! directory, each local host keeps its SQLite key-value store in a temporary directory of its
//! own (removed with it), so no test sees another's node-local state.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::thread::JoinHandle;

use anyhow::{Context, Result};

use crate::runtime::{Application, HostOptions};
use crate::server::{Server, ServerOptions};
use crate::spin_kv::KeyValueBackend;

/// A running local server.
pub struct LocalHost {
    addr: SocketAddr,
    app: Arc<Application>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
    _state_dir: Option<tempfile::TempDir>,
}

impl LocalHost {
    /// Loads `manifest` with `SPIN_VARIABLE_*` values from `env` and serves it on 127.0.0.1.
    pub fn start(
        manifest: &Path,
        mut options: HostOptions,
        server_options: ServerOptions,
        env: impl Fn(&str) -> Option<String> + Send + Sync + 'static,
    ) -> Result<Self> {
        let mut state_dir = None;
        if options.key_value == (KeyValueBackend::Sqlite { state_dir: None }) {
            let dir = tempfile::Builder::new()
                .prefix("tally-state-")
                .tempdir()
                .context("creating a state directory")?;
            options.key_value = KeyValueBackend::Sqlite {
                state_dir: Some(dir.path().to_path_buf()),
            };
            state_dir = Some(dir);
        }
        let app = Arc::new(Application::load_with_env(manifest, options, env)?);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?;
        let listener = runtime
            .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
            .context("binding a loopback port")?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let server = Server::new(app.clone(), server_options);
        let thread = std::thread::Builder::new()
            .name("tally-local-host".into())
            .spawn(move || {
                let shutdown = async {
                    let _ = stopped.await;
                };
                if let Err(err) = runtime.block_on(server.serve(listener, shutdown)) {
                    eprintln!("tally-host: server stopped: {err:#}");
                }
            })?;
        Ok(Self {
            addr,
            app,
            stop: Some(stop),
            thread: Some(thread),
            _state_dir: state_dir,
        })
    }

    /// The address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:<port>` followed by `path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The loaded application.
    pub fn app(&self) -> &Application {
        &self.app
    }
}

impl Drop for LocalHost {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
