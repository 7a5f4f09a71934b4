//! What requests ask of the host's stores: key-value reads and writes, Redis connections and
//! commands. Each instance counts its own ([`RequestIo`], in its store's data); when it
//! finishes, its counts are added to the application's totals ([`IoTotals`]), which tests read
//! to assert what a steady-state request costs and which `tally-host` prints when it stops.
//!
//! These are the costs that differ most between runtimes: on Spin every key-value write is a
//! durable SQLite write and every Redis `open` a new TCP connection.

use std::sync::atomic::{AtomicU64, Ordering};

/// One instance's host I/O.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RequestIo {
    /// Key-value `get` and `exists` calls.
    pub kv_reads: u64,
    /// Key-value `set` and `delete` calls.
    pub kv_writes: u64,
    /// Redis connections opened (`open` calls that reached the connector).
    pub redis_connects: u64,
    /// Redis commands sent (each `execute`, `get`, `set`, ... is one).
    pub redis_commands: u64,
}

impl RequestIo {
    /// The difference `self - earlier`, field by field.
    pub fn since(&self, earlier: &RequestIo) -> RequestIo {
        RequestIo {
            kv_reads: self.kv_reads - earlier.kv_reads,
            kv_writes: self.kv_writes - earlier.kv_writes,
            redis_connects: self.redis_connects - earlier.redis_connects,
            redis_commands: self.redis_commands - earlier.redis_commands,
        }
    }
}

/// The application's totals over every finished instance.
#[derive(Debug, Default)]
pub struct IoTotals {
    started: AtomicU64,
    instances: AtomicU64,
    kv_reads: AtomicU64,
    kv_writes: AtomicU64,
    redis_connects: AtomicU64,
    redis_commands: AtomicU64,
}

/// A reading of [`IoTotals`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct IoSnapshot {
    /// Instances that have been started.
    pub started: u64,
    /// Instances that have finished (their handler returned or trapped).
    pub instances: u64,
    /// Their I/O, summed.
    pub io: RequestIo,
}

impl IoTotals {
    /// Counts an instance about to be created.
    pub fn start(&self) {
        self.started.fetch_add(1, Ordering::AcqRel);
    }

    /// Adds a finished instance's counts.
    pub fn add(&self, io: &RequestIo) {
        self.kv_reads.fetch_add(io.kv_reads, Ordering::Relaxed);
        self.kv_writes.fetch_add(io.kv_writes, Ordering::Relaxed);
        self.redis_connects
            .fetch_add(io.redis_connects, Ordering::Relaxed);
        self.redis_commands
            .fetch_add(io.redis_commands, Ordering::Relaxed);
        // Last, with Release: a reader that sees the instance sees its counts.
        self.instances.fetch_add(1, Ordering::Release);
    }

    /// The totals so far.
    pub fn snapshot(&self) -> IoSnapshot {
        let instances = self.instances.load(Ordering::Acquire);
        IoSnapshot {
            started: self.started.load(Ordering::Acquire),
            instances,
            io: RequestIo {
                kv_reads: self.kv_reads.load(Ordering::Relaxed),
                kv_writes: self.kv_writes.load(Ordering::Relaxed),
                redis_connects: self.redis_connects.load(Ordering::Relaxed),
                redis_commands: self.redis_commands.load(Ordering::Relaxed),
            },
        }
    }
}

impl IoSnapshot {
    /// Whether every instance started has finished (a component may still be running after
    /// its answer was sent: it writes its log line then).
    pub fn is_quiet(&self) -> bool {
        self.started == self.instances
    }

    /// One line for the host's shutdown message: the per-request averages.
    pub fn summary(&self) -> String {
        let per = |n: u64| n as f64 / self.instances.max(1) as f64;
        format!(
            "{} requests; per request: {:.2} key-value writes, {:.2} key-value reads, \
             {:.2} Redis connections, {:.2} Redis commands",
            self.instances,
            per(self.io.kv_writes),
            per(self.io.kv_reads),
            per(self.io.redis_connects),
            per(self.io.redis_commands),
        )
    }
}
