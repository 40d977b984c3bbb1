//! [`Hub`]: how work finished on the tokio runtime reaches an asyncio event loop.
//!
//! One hub per event loop. Python starts work through it (each piece of work a tokio task with a
//! token) and awaits an `asyncio.Future` per token. When a task ends, it queues its outcome — plain
//! Rust data — and, if the queue was empty, writes one byte to a pipe. The loop watches the pipe
//! (`loop.add_reader`), and its callback calls [`Hub::drain`], which turns every queued outcome
//! into Python objects on the loop's own thread and hands them back in one list.
//!
//! Why not pyo3's async support or pyo3-async-runtimes: both wake asyncio by taking the GIL on a
//! tokio thread and calling `call_soon_threadsafe`, once per await. A tokio thread that waits for
//! the GIL stalls the engine while Python runs, and one that touches a finalizing interpreter
//! crashes it at exit. Here tokio threads never take the GIL, and one wake-up carries as many
//! results as finished meanwhile (curl_cffi takes the same road for libcurl's sockets).
//!
//! The byte and the queue are ordered so that no wake-up is lost: a task queues and writes under
//! the lock only when the queue's `signalled` flag was down; `drain` first empties the pipe, then
//! takes the queue and lowers the flag under the lock. A result queued after that writes anew.

use std::collections::HashMap;
use std::future::Future;
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::sync::{Arc, Mutex, MutexGuard};

use pyo3::prelude::*;
use pyo3::types::PyList;
use tokio::runtime::Handle;
use tokio::task::AbortHandle;

/// What a finished task hands back: turned into a Python object (or an exception) by
/// [`Hub::drain`], on the event loop's thread, with the GIL.
pub type Outcome = Box<dyn FnOnce(Python<'_>) -> PyResult<Py<PyAny>> + Send>;

/// The meeting point of one event loop and the runtime (see the module documentation).
#[pyclass(frozen, module = "outofsync._outofsync")]
pub struct Hub {
    inner: Arc<Inner>,
    pid: u32,
}

impl std::fmt::Debug for Hub {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Hub").field("fd", &self.inner.reader.as_raw_fd()).finish_non_exhaustive()
    }
}

struct Inner {
    reader: std::io::PipeReader,
    writer: std::io::PipeWriter,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    /// Outcomes not yet drained, with their tokens.
    done: Vec<(u64, Outcome)>,
    /// A byte is in the pipe for `done`.
    signalled: bool,
    /// Tasks running, by token: cancelling one aborts it.
    running: HashMap<u64, AbortHandle>,
    next: u64,
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues the outcome of `token`, unless it was cancelled, and wakes the loop if needed.
    fn complete(&self, token: u64, outcome: Outcome) {
        let mut state = self.state();
        if state.running.remove(&token).is_none() {
            return; // cancelled: nobody waits for it
        }
        state.done.push((token, outcome));
        if !std::mem::replace(&mut state.signalled, true) {
            // One byte at most is ever in the pipe, so this write cannot block. A failed write
            // (the loop's end closed the pipe) leaves nobody to wake.
            _ = (&self.writer).write(&[1]);
        }
    }
}

impl Hub {
    /// Runs `work` on the runtime; its outcome comes back through [`Hub::drain`] under the
    /// returned token.
    pub fn spawn<F>(&self, runtime: &Handle, work: F) -> PyResult<u64>
    where
        F: Future<Output = Outcome> + Send + 'static,
    {
        if self.pid != std::process::id() {
            return Err(crate::runtime::forked("event loop's hub"));
        }
        // Under the lock, so that a task that ends at once finds itself in `running`.
        let mut state = self.inner.state();
        let token = state.next;
        state.next += 1;
        let inner = self.inner.clone();
        let task = runtime.spawn(async move {
            let outcome = work.await;
            inner.complete(token, outcome);
        });
        state.running.insert(token, task.abort_handle());
        Ok(token)
    }
}

#[pymethods]
impl Hub {
    /// A new hub, with its pipe.
    #[new]
    fn new() -> PyResult<Self> {
        let (reader, writer) = std::io::pipe()?;
        // SAFETY: fcntl on a descriptor this function owns.
        let nonblocking = unsafe {
            let fd = reader.as_raw_fd();
            let flags = libc::fcntl(fd, libc::F_GETFL);
            flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_NONBLOCK) == 0
        };
        if !nonblocking {
            return Err(std::io::Error::last_os_error().into());
        }
        let inner = Arc::new(Inner { reader, writer, state: Mutex::default() });
        Ok(Hub { inner, pid: std::process::id() })
    }

    /// The descriptor to watch for reading (`loop.add_reader(hub.fileno(), …)`).
    fn fileno(&self) -> i32 {
        self.inner.reader.as_raw_fd()
    }

    /// Every outcome ready now, as `(token, ok, value)`: `value` is the result when `ok`, else
    /// the exception to raise.
    fn drain<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyList>> {
        let mut buf = [0u8; 64];
        // Non-blocking: the byte, if any; nothing (WouldBlock) if a spurious wake-up.
        _ = (&self.inner.reader).read(&mut buf);
        let done = {
            let mut state = self.inner.state();
            state.signalled = false;
            std::mem::take(&mut state.done)
        };
        let list = PyList::empty(py);
        for (token, outcome) in done {
            let item = match outcome(py) {
                Ok(value) => (token, true, value),
                Err(error) => (token, false, error.into_value(py).into_any()),
            };
            list.append(item)?;
        }
        Ok(list)
    }

    /// Aborts the task of `token` (an awaiting future was cancelled): its requests are dropped,
    /// and its outcome never comes.
    fn cancel(&self, token: u64) {
        if let Some(task) = self.inner.state().running.remove(&token) {
            task.abort();
        }
    }

    /// Tasks running.
    fn __len__(&self) -> usize {
        self.inner.state().running.len()
    }
}

impl Drop for Hub {
    /// Nobody will collect what is still running: abort it.
    fn drop(&mut self) {
        for (_, task) in self.inner.state().running.drain() {
            task.abort();
        }
    }
}
