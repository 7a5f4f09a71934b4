//! Local Redis shards for tests, benchmarks and the local server.
//!
//! Each shard is a real `redis-server` child process listening on a free loopback port (never
//! a fixed one: other Redis servers may run on the same machine), with AOF persistence in its
//! own temporary directory. A shard is ready only once it answers `PING`. Shards are stopped
//! when dropped (also on panic unwinding); on Linux the child is additionally asked to die with
//! its parent, so even a killed host leaks no `redis-server`.

use std::net::{Ipv4Addr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

/// How long a shard may take to answer its first `PING`.
const READY_TIMEOUT: Duration = Duration::from_secs(10);
/// How often readiness is polled while waiting for the first `PING`.
const READY_POLL_INTERVAL: Duration = Duration::from_millis(5);
/// How many free ports are tried before giving up (another process may grab a port between
/// our probe and redis-server's bind).
const PORT_ATTEMPTS: usize = 5;

/// How a shard persists writes (`appendfsync`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Fsync {
    /// `appendfsync everysec`: every acknowledged write is in the AOF file (survives a killed
    /// process); the last second may be lost if the machine itself crashes.
    #[default]
    EverySec,
    /// `appendfsync always`: fsync before acknowledging.
    Always,
}

/// Options for starting shards.
#[derive(Clone, Debug, Default)]
pub struct ShardOptions {
    /// If set, clients must `AUTH` with this password.
    pub password: Option<String>,
    /// AOF fsync policy.
    pub fsync: Fsync,
    /// Also listen for TLS (`rediss://`) on a second port with this certificate.
    pub tls: Option<ShardTls>,
}

/// A TLS listener's certificate (PEM files); clients are not asked for certificates.
#[derive(Clone, Debug)]
pub struct ShardTls {
    /// The server's certificate.
    pub cert_file: PathBuf,
    /// Its private key.
    pub key_file: PathBuf,
    /// The CA that signed it.
    pub ca_file: PathBuf,
}

/// One running (or stopped) redis-server process with its data directory.
#[derive(Debug)]
pub struct Shard {
    name: String,
    port: u16,
    tls_port: Option<u16>,
    options: ShardOptions,
    dir: tempfile::TempDir,
    child: Option<Child>,
}

impl Shard {
    /// Starts one shard named `name` on a free loopback port and waits until it answers PING.
    ///
    /// Call it from a thread that outlives the shard (the main thread, a test's thread): on
    /// Linux the child is killed when the thread that spawned it exits.
    pub fn start(name: &str, options: ShardOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("tally-redis-{name}-"))
            .tempdir()
            .context("creating the shard's data directory")?;
        let mut last_err = None;
        for _ in 0..PORT_ATTEMPTS {
            let port = free_loopback_port()?;
            let tls_port = match options.tls {
                Some(_) => Some(free_loopback_port()?),
                None => None,
            };
            match spawn_ready(port, tls_port, dir.path(), &options) {
                Ok(child) => {
                    return Ok(Shard {
                        name: name.to_string(),
                        port,
                        tls_port,
                        options,
                        dir,
                        child: Some(child),
                    })
                }
                Err(err) => last_err = Some(err),
            }
        }
        Err(last_err.unwrap_or_else(|| anyhow::anyhow!("no attempt made")))
            .with_context(|| format!("starting redis shard {name:?}"))
    }

    /// The shard's name, as used in the `shards` variable and in `served_via`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The loopback port the shard listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The `redis://` URL components use, including the password if one is set.
    pub fn url(&self) -> String {
        shard_url(self.port, &self.options)
    }

    /// The `rediss://` URL of the TLS listener (with the password if one is set), if the shard
    /// has one.
    pub fn tls_url(&self) -> Option<String> {
        self.tls_port
            .map(|port| shard_url(port, &self.options).replacen("redis://", "rediss://", 1))
    }

    /// The shard's data directory (holds the AOF files and `redis.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The process id of the running redis-server, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Whether the process is running (started and not killed).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// A synchronous client for inspecting the shard directly in tests.
    pub fn client(&self) -> Result<redis::Client> {
        redis::Client::open(self.url()).context("opening a client to the shard")
    }

    /// Kills the process with SIGKILL (no shutdown, no final fsync) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the shard again on the same port and data directory, replaying its AOF.
    pub fn restart(&mut self) -> Result<()> {
        self.kill();
        let child = spawn_ready(self.port, self.tls_port, self.dir.path(), &self.options)
            .with_context(|| format!("restarting redis shard {:?}", self.name))?;
        self.child = Some(child);
        Ok(())
    }
}

fn shard_url(port: u16, options: &ShardOptions) -> String {
    match &options.password {
        Some(password) => format!("redis://:{password}@127.0.0.1:{port}"),
        None => format!("redis://127.0.0.1:{port}"),
    }
}

/// Spawns redis-server on `port` with its data in `dir` and waits until it answers PING.
fn spawn_ready(
    port: u16,
    tls_port: Option<u16>,
    dir: &Path,
    options: &ShardOptions,
) -> Result<Child> {
    let log = dir.join("redis.log");
    let mut cmd = Command::new(redis_server_binary());
    cmd.arg("--port")
        .arg(port.to_string())
        .args(["--bind", "127.0.0.1", "--daemonize", "no", "--save", ""])
        .args(["--appendonly", "yes", "--appenddirname", "aof"])
        .arg("--appendfsync")
        .arg(match options.fsync {
            Fsync::EverySec => "everysec",
            Fsync::Always => "always",
        })
        .arg("--dir")
        .arg(dir)
        .arg("--logfile")
        .arg(&log)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null());
    if let Some(password) = &options.password {
        cmd.arg("--requirepass").arg(password);
    }
    if let (Some(tls), Some(tls_port)) = (&options.tls, tls_port) {
        cmd.arg("--tls-port")
            .arg(tls_port.to_string())
            .arg("--tls-cert-file")
            .arg(&tls.cert_file)
            .arg("--tls-key-file")
            .arg(&tls.key_file)
            .arg("--tls-ca-cert-file")
            .arg(&tls.ca_file)
            .args(["--tls-auth-clients", "no"]);
    }
    die_with_parent(&mut cmd);
    let mut child = cmd.spawn().with_context(|| {
        format!(
            "running {:?}: is redis-server installed? (apt-get install redis-server)",
            redis_server_binary()
        )
    })?;
    match wait_until_ready(&mut child, &shard_url(port, options), &log) {
        Ok(()) => Ok(child),
        Err(err) => {
            let _ = child.kill();
            let _ = child.wait();
            Err(err)
        }
    }
}

/// Polls until the server answers PING, failing early if the process exits.
fn wait_until_ready(child: &mut Child, url: &str, log: &Path) -> Result<()> {
    let client = redis::Client::open(url)?;
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Some(status) = child.try_wait()? {
            let log = std::fs::read_to_string(log).unwrap_or_default();
            let tail: Vec<&str> = log.lines().rev().take(3).collect();
            bail!(
                "redis-server exited with {status} before answering PING: {}",
                tail.join(" | ")
            );
        }
        if ping(&client).is_ok() {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("redis-server did not answer PING within {READY_TIMEOUT:?}");
        }
        std::thread::sleep(READY_POLL_INTERVAL);
    }
}

impl Drop for Shard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A set of named shards, started together and stopped together.
#[derive(Debug)]
pub struct RedisShards {
    shards: Vec<Shard>,
}

impl RedisShards {
    /// Starts `count` shards named `a`, `b`, `c`, … with default options.
    pub fn start(count: usize) -> Result<Self> {
        Self::start_with(count, ShardOptions::default())
    }

    /// Starts `count` shards named `a`, `b`, `c`, … with the given options.
    pub fn start_with(count: usize, options: ShardOptions) -> Result<Self> {
        if count == 0 || count > 26 {
            bail!("between 1 and 26 shards can be started, not {count}");
        }
        let shards = (0..count)
            .map(|i| {
                let name = char::from(b'a' + i as u8).to_string();
                Shard::start(&name, options.clone())
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Self { shards })
    }

    /// The shards, in name order.
    pub fn shards(&self) -> &[Shard] {
        &self.shards
    }

    /// The shard called `name`.
    pub fn get(&self, name: &str) -> Option<&Shard> {
        self.shards.iter().find(|s| s.name == name)
    }

    /// The shard called `name`, mutably (to kill or restart it).
    pub fn get_mut(&mut self, name: &str) -> Option<&mut Shard> {
        self.shards.iter_mut().find(|s| s.name == name)
    }

    /// The shard list in the form the `shards` Spin variable takes: `a=redis://…,b=redis://…`.
    pub fn shard_list(&self) -> String {
        self.shards
            .iter()
            .map(|s| format!("{}={}", s.name, s.url()))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// Asks the kernel for a free loopback port by binding port 0 and releasing it.
pub fn free_loopback_port() -> Result<u16> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).context("binding a probe socket")?;
    Ok(listener.local_addr()?.port())
}

fn ping(client: &redis::Client) -> redis::RedisResult<()> {
    let mut conn = client.get_connection_with_timeout(Duration::from_millis(200))?;
    redis::cmd("PING").query::<String>(&mut conn).map(|_| ())
}

/// `redis-server` from `TALLY_REDIS_SERVER`, or from `PATH`.
fn redis_server_binary() -> PathBuf {
    std::env::var_os("TALLY_REDIS_SERVER")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("redis-server"))
}

#[cfg(target_os = "linux")]
fn die_with_parent(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
fn die_with_parent(_cmd: &mut Command) {}
