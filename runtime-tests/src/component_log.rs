//! The components' standard output, shared by every instance.
//!
//! Each request writes its log line to stdout. Passing every line straight to the host's
//! stdout costs a locked write system call per request, a measurable share of a small one.
//! Instead, lines are appended to one in-memory buffer and a host thread of its own writes it
//! out every 10 ms and once more when the application stops. Lines keep their order;
//! a component's single write is never split. If the buffer ever holds more than
//! [`FLUSH_AT_BYTES`] (stdout is slower than the traffic), the writer flushes it itself, so
//! memory stays bounded and a slow stdout slows requests rather than growing the heap.

use std::io::Write;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use bytes::Bytes;
use tokio::io::AsyncWrite;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Buffered bytes past which a writer flushes the buffer itself.
pub const FLUSH_AT_BYTES: usize = 1 << 20;

/// How much one write may carry (what `check-write` grants).
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// The components' stdout: a buffer drained to a sink (the host's stdout) by
/// [`ComponentLog::flush`].
#[derive(Clone)]
pub struct ComponentLog {
    buffer: Arc<Mutex<Vec<u8>>>,
    sink: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl Default for ComponentLog {
    /// A log written to the host's stdout.
    fn default() -> Self {
        Self::new(std::io::stdout())
    }
}

impl ComponentLog {
    /// A log written to `sink`.
    pub fn new(sink: impl Write + Send + 'static) -> Self {
        Self {
            buffer: Arc::default(),
            sink: Arc::new(Mutex::new(Box::new(sink))),
        }
    }

    /// Writes whatever is buffered to the sink. The sink is locked before the buffer is
    /// taken, so two flushes can never write their batches out of order.
    pub fn flush(&self) {
        let mut sink = relock(&self.sink);
        let pending = std::mem::take(&mut *relock(&self.buffer));
        if !pending.is_empty() {
            // A closed or failing stdout must not take the host down: the lines are dropped.
            let _ = sink.write_all(&pending).and_then(|()| sink.flush());
        }
    }

    fn append(&self, bytes: &[u8]) {
        let full = {
            let mut buffer = relock(&self.buffer);
            buffer.extend_from_slice(bytes);
            buffer.len() > FLUSH_AT_BYTES
        };
        if full {
            self.flush();
        }
    }
}

/// Locks `mutex`; a panic while it was held leaves only bytes behind, so keep using them.
fn relock<T: ?Sized>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl IsTerminal for ComponentLog {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for ComponentLog {
    fn async_stream(&self) -> Box<dyn AsyncWrite + Send + Sync> {
        Box::new(self.clone())
    }

    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }
}

#[async_trait::async_trait]
impl Pollable for ComponentLog {
    async fn ready(&mut self) {}
}

#[async_trait::async_trait]
impl OutputStream for ComponentLog {
    /// One append: the buffer is always ready and flushing is the log's own business, so
    /// this skips the readiness checks the default makes around the write.
    async fn blocking_write_and_flush(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.append(&bytes);
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

impl AsyncWrite for ComponentLog {
    fn poll_write(
        self: Pin<&mut Self>,
        _: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        self.append(buf);
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sink the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[test]
    fn lines_from_every_instance_come_out_whole_and_in_order_when_flushed() {
        let sink = Shared::default();
        let log = ComponentLog::new(sink.clone());
        let mut first: Box<dyn OutputStream> = log.p2_stream();
        let mut second: Box<dyn OutputStream> = log.p2_stream();
        first.write(Bytes::from_static(b"one\n")).unwrap();
        second.write(Bytes::from_static(b"two\n")).unwrap();
        first.write(Bytes::from_static(b"three\n")).unwrap();
        assert_eq!(sink.text(), "", "nothing reaches the sink before a flush");
        log.flush();
        assert_eq!(sink.text(), "one\ntwo\nthree\n");
        log.flush();
        assert_eq!(
            sink.text(),
            "one\ntwo\nthree\n",
            "a flush writes each byte once"
        );
    }

    #[test]
    fn a_writer_past_the_bound_flushes_the_buffer_itself() {
        let sink = Shared::default();
        let log = ComponentLog::new(sink.clone());
        let mut stream = log.p2_stream();
        let line = Bytes::from(vec![b'x'; 4096]);
        let mut written = 0;
        while written <= FLUSH_AT_BYTES {
            stream.write(line.clone()).unwrap();
            written += line.len();
        }
        assert_eq!(sink.0.lock().unwrap().len(), written);
        assert!(relock(&log.buffer).is_empty());
    }
}
