//! `fermyon:spin/redis@2.0.0`, backed by the `redis` crate against real servers.
//!
//! Behaves like Spin's outbound Redis: `open` refuses an address the component's
//! `allowed_outbound_hosts` does not allow with `invalid-address` before any connection is
//! attempted; `execute` flattens nested replies into one list the way Spin does. Like Spin, every
//! `open` is a new connection by default; unlike Spin, every connect and command has a time
//! bound, and connections can be reused across requests (`--redis-reuse`, off by default: it
//! hides the cost a request pays on Spin).
//!
//! `rediss://` addresses connect over TLS (rustls; Spin v4.0.2 builds the same redis crate
//! with native-tls, i.e. OpenSSL on Linux: the behaviour is the same, the handshake's code is
//! not), verified
//! against the system's trusted roots, or against one private CA when the policy names it
//! (`--redis-ca-file`); the connect bound covers the handshake, so a server that does not
//! speak TLS, or a certificate that does not verify, fails the `open` within it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::thread::ThreadId;
use std::time::Duration;

use redis::aio::MultiplexedConnection;
use redis::{AsyncConnectionConfig, Value};
use spin_rules::allowed_hosts::AllowedHosts;
use wasmtime::component::Resource;

use crate::bindings::redis::{Error, Host, HostConnection, Payload, RedisParameter, RedisResult};
use crate::state::RequestState;

/// Largest reply the host buffers for a guest, like Spin's `MAX_HOST_BUFFERED_BYTES`.
const MAX_REPLY_BYTES: usize = 128 << 20;

/// Time bounds and reuse policy for outbound Redis, shared by every request.
#[derive(Clone, Debug)]
pub struct RedisPolicy {
    /// Keep one multiplexed connection per address across requests (not Spin's behaviour,
    /// so off by default).
    pub reuse_connections: bool,
    /// Bound on establishing a connection.
    pub connect_timeout: Duration,
    /// Bound on each command's reply.
    pub command_timeout: Duration,
    /// A private CA (PEM) that `rediss://` servers' certificates must chain to, instead of the
    /// system's trusted roots.
    pub tls_root_cert: Option<Arc<Vec<u8>>>,
}

impl Default for RedisPolicy {
    fn default() -> Self {
        Self {
            reuse_connections: false,
            connect_timeout: Duration::from_millis(1000),
            command_timeout: Duration::from_millis(2000),
            tls_root_cert: None,
        }
    }
}

/// Opens connections, reusing them across requests when the policy says so.
#[derive(Debug)]
pub struct RedisConnector {
    policy: RedisPolicy,
    /// Reusable connections per (address, thread): with one single-threaded runtime per core each
    /// runtime drives its own connection, so commands never wait on another core's thread.
    reusable: Mutex<HashMap<(String, ThreadId), MultiplexedConnection>>,
}

impl RedisConnector {
    /// A connector with the given policy and no connections yet.
    pub fn new(policy: RedisPolicy) -> Self {
        // rustls needs a process-wide crypto provider; ring is the only one built in. A
        // provider installed earlier (by an embedder) is kept.
        let _ = rustls::crypto::ring::default_provider().install_default();
        Self {
            policy,
            reusable: Mutex::new(HashMap::new()),
        }
    }

    /// The policy this connector applies.
    pub fn policy(&self) -> &RedisPolicy {
        &self.policy
    }

    /// A connection to `address`, and whether it was newly made (not reused).
    async fn connect(&self, address: &str) -> Result<(MultiplexedConnection, bool), Error> {
        // Only reuse needs a key (fresh connections, as Spin opens them, skip building one).
        let key = self
            .policy
            .reuse_connections
            .then(|| (address.to_string(), std::thread::current().id()));
        if let Some(key) = &key {
            if let Some(conn) = self.reusable.lock().unwrap().get(key) {
                return Ok((conn.clone(), false));
            }
        }
        let client = match &self.policy.tls_root_cert {
            Some(pem) if address.starts_with("rediss://") => redis::Client::build_with_tls(
                address,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert: Some(pem.to_vec()),
                },
            ),
            _ => redis::Client::open(address),
        }
        .map_err(|_| Error::InvalidAddress)?;
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.policy.connect_timeout))
            .set_response_timeout(Some(self.policy.command_timeout));
        let conn = match client
            .get_multiplexed_async_connection_with_config(&config)
            .await
        {
            Ok(conn) => conn,
            Err(err) => {
                // Another thread's cached connection to this address is no better.
                self.forget(address);
                return Err(other(err));
            }
        };
        if let Some(key) = key {
            self.reusable.lock().unwrap().insert(key, conn.clone());
        }
        Ok((conn, true))
    }

    /// Drops the reusable connections to an address after one failed, every thread's (they all
    /// lead to the same server, and a task may run on another thread than the one that
    /// connected), so the next `open` anywhere reconnects.
    fn forget(&self, address: &str) {
        if self.policy.reuse_connections {
            self.reusable
                .lock()
                .unwrap()
                .retain(|(reused, _), _| reused != address);
        }
    }
}

/// The host side of a guest's `connection` resource.
pub struct RedisConnection {
    address: String,
    conn: MultiplexedConnection,
}

/// What a request's instance may reach over Redis, and how.
pub struct RedisAccess {
    /// The component's `allowed_outbound_hosts`, resolved.
    pub allowed: Arc<AllowedHosts>,
    /// The shared connector.
    pub connector: Arc<RedisConnector>,
}

fn other(err: impl std::fmt::Display) -> Error {
    Error::Other(err.to_string())
}

impl RequestState {
    fn connection(
        &mut self,
        rep: &Resource<RedisConnection>,
    ) -> wasmtime::Result<&RedisConnection> {
        Ok(self.table.get(rep)?)
    }

    /// Runs one command on a connection, forgetting a reusable connection on I/O failure.
    async fn run<T: redis::FromRedisValue>(
        &mut self,
        conn: &Resource<RedisConnection>,
        cmd: redis::Cmd,
    ) -> wasmtime::Result<Result<T, Error>> {
        let (address, mut handle) = {
            let c = self.connection(conn)?;
            (c.address.clone(), c.conn.clone())
        };
        self.io.redis_commands += 1;
        Ok(match cmd.query_async::<T>(&mut handle).await {
            Ok(v) => Ok(v),
            Err(err) => {
                if err.is_io_error() || err.is_timeout() || err.is_connection_dropped() {
                    self.redis.connector.forget(&address);
                }
                Err(if err.kind() == redis::ErrorKind::UnexpectedReturnType {
                    Error::TypeError
                } else {
                    other(err)
                })
            }
        })
    }
}

impl Host for RequestState {}

impl HostConnection for RequestState {
    async fn open(
        &mut self,
        address: String,
    ) -> wasmtime::Result<Result<Resource<RedisConnection>, Error>> {
        if !self.redis.allowed.allows(&address, "redis") {
            return Ok(Err(Error::InvalidAddress));
        }
        let conn = match self.redis.connector.connect(&address).await {
            Ok((conn, fresh)) => {
                self.io.redis_connects += u64::from(fresh);
                conn
            }
            Err(err) => {
                self.io.redis_connects += 1;
                return Ok(Err(err));
            }
        };
        Ok(Ok(self.table.push(RedisConnection { address, conn })?))
    }

    async fn publish(
        &mut self,
        conn: Resource<RedisConnection>,
        channel: String,
        payload: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("PUBLISH");
        cmd.arg(channel).arg(payload);
        Ok(self.run::<i64>(&conn, cmd).await?.map(|_| ()))
    }

    async fn get(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Option<Payload>, Error>> {
        let mut cmd = redis::cmd("GET");
        cmd.arg(key);
        let reply = self.run::<Option<Vec<u8>>>(&conn, cmd).await?;
        Ok(reply.and_then(|v| match &v {
            Some(bytes) if bytes.len() > MAX_REPLY_BYTES => Err(too_large()),
            _ => Ok(v),
        }))
    }

    async fn set(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        value: Payload,
    ) -> wasmtime::Result<Result<(), Error>> {
        let mut cmd = redis::cmd("SET");
        cmd.arg(key).arg(value);
        self.run::<()>(&conn, cmd).await
    }

    async fn incr(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<i64, Error>> {
        let mut cmd = redis::cmd("INCRBY");
        cmd.arg(key).arg(1);
        self.run::<i64>(&conn, cmd).await
    }

    async fn del(
        &mut self,
        conn: Resource<RedisConnection>,
        keys: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("DEL");
        cmd.arg(keys);
        self.run::<u32>(&conn, cmd).await
    }

    async fn sadd(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SADD");
        cmd.arg(key).arg(values);
        self.run::<u32>(&conn, cmd).await
    }

    async fn smembers(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
    ) -> wasmtime::Result<Result<Vec<String>, Error>> {
        let mut cmd = redis::cmd("SMEMBERS");
        cmd.arg(key);
        self.run::<Vec<String>>(&conn, cmd).await
    }

    async fn srem(
        &mut self,
        conn: Resource<RedisConnection>,
        key: String,
        values: Vec<String>,
    ) -> wasmtime::Result<Result<u32, Error>> {
        let mut cmd = redis::cmd("SREM");
        cmd.arg(key).arg(values);
        self.run::<u32>(&conn, cmd).await
    }

    async fn execute(
        &mut self,
        conn: Resource<RedisConnection>,
        command: String,
        arguments: Vec<RedisParameter>,
    ) -> wasmtime::Result<Result<Vec<RedisResult>, Error>> {
        let mut cmd = redis::cmd(&command);
        for argument in arguments {
            match argument {
                RedisParameter::Int64(v) => cmd.arg(v),
                RedisParameter::Binary(v) => cmd.arg(v),
            };
        }
        let reply = self.run::<Value>(&conn, cmd).await?;
        Ok(reply.and_then(|value| {
            let mut results = Vec::new();
            flatten(value, &mut results)?;
            let size: usize = results.iter().map(result_size).sum();
            if size > MAX_REPLY_BYTES {
                return Err(too_large());
            }
            Ok(results)
        }))
    }

    async fn drop(&mut self, conn: Resource<RedisConnection>) -> wasmtime::Result<()> {
        self.table.delete(conn)?;
        Ok(())
    }
}

/// Flattens a reply into Spin's result list: arrays and sets are spliced in order, maps and
/// other RESP3-only shapes are a type error, as in Spin.
fn flatten(value: Value, out: &mut Vec<RedisResult>) -> Result<(), Error> {
    match value {
        Value::Nil => out.push(RedisResult::Nil),
        Value::Int(v) => out.push(RedisResult::Int64(v)),
        Value::BulkString(bytes) => out.push(RedisResult::Binary(bytes)),
        Value::SimpleString(s) => out.push(RedisResult::Status(s)),
        Value::Okay => out.push(RedisResult::Status("OK".into())),
        Value::Array(values) | Value::Set(values) => {
            for v in values {
                flatten(v, out)?;
            }
        }
        Value::Double(v) => out.push(RedisResult::Binary(v.to_string().into_bytes())),
        Value::Boolean(v) => out.push(RedisResult::Int64(i64::from(v))),
        Value::BigNumber(v) => out.push(RedisResult::Binary(v)),
        Value::ServerError(err) => return Err(Error::Other(format!("{err:?}"))),
        _ => return Err(Error::TypeError),
    }
    Ok(())
}

fn result_size(r: &RedisResult) -> usize {
    std::mem::size_of::<RedisResult>()
        + match r {
            RedisResult::Binary(b) => b.len(),
            RedisResult::Status(s) => s.len(),
            RedisResult::Nil | RedisResult::Int64(_) => 0,
        }
}

fn too_large() -> Error {
    Error::Other(format!(
        "query result exceeds limit of {MAX_REPLY_BYTES} bytes"
    ))
}
