//! The tokio runtime the engine runs on, and its life around the interpreter's.
//!
//! - Made on first use, never at import: importing the module starts no thread, so a process
//!   that imports it and then forks (a Spark or Dask worker) forks no runtime.
//! - Shut down from `atexit` (the Python side registers [`shutdown`]): requests in flight are
//!   dropped and the worker threads joined while the interpreter is still whole. The worker threads
//!   never take the GIL anyway (see the `hub` module), so a thread that outlives this is harmless.
//! - After a `fork`, the child holds a copy of the runtime whose threads do not exist there: it is
//!   forgotten (`mem::forget`: dropping it would wait for those threads forever) and a new one is
//!   made on next use. The pid tells a runtime (or a client) of the parent from the child's own.

use std::sync::Mutex;
use std::time::Duration;

use pyo3::prelude::*;
use tokio::runtime::{Handle, Runtime};

/// The runtime, with the pid of the process that made it.
static RUNTIME: Mutex<Option<(u32, Runtime)>> = Mutex::new(None);

/// How long [`shutdown`] waits for the worker threads.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(2);

/// A handle on this process's runtime, made if needed.
pub fn handle() -> PyResult<Handle> {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    let pid = std::process::id();
    if let Some((owner, runtime)) = slot.as_ref() {
        if *owner == pid {
            return Ok(runtime.handle().clone());
        }
        // A runtime of the parent, copied by fork without its threads.
        std::mem::forget(slot.take());
    }
    let runtime =
        tokio::runtime::Builder::new_multi_thread().enable_all().thread_name("outofsync").build().map_err(
            |e| pyo3::exceptions::PyRuntimeError::new_err(format!("cannot start the runtime: {e}")),
        )?;
    let handle = runtime.handle().clone();
    *slot = Some((pid, runtime));
    Ok(handle)
}

/// Whether this process's runtime is running (not shut down at exit, not the parent's).
pub fn alive() -> bool {
    let slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    slot.as_ref().is_some_and(|(owner, _)| *owner == std::process::id())
}

/// Stops the runtime: what is in flight is dropped, the threads are joined. Called at interpreter
/// exit; a later use makes a new runtime.
#[pyfunction]
pub fn shutdown(py: Python<'_>) {
    let taken = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
    if let Some((owner, runtime)) = taken {
        if owner == std::process::id() {
            py.detach(|| runtime.shutdown_timeout(SHUTDOWN_WAIT));
        } else {
            std::mem::forget(runtime);
        }
    }
}

/// Forgets the parent's runtime in the child of a `fork` (registered with
/// `os.register_at_fork(after_in_child=…)`).
#[pyfunction]
pub fn after_fork_in_child() {
    let mut slot = RUNTIME.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(parent) = slot.take() {
        std::mem::forget(parent);
    }
}

/// The error for an object made before a `fork` and used in the child.
pub fn forked(what: &str) -> PyErr {
    pyo3::exceptions::PyRuntimeError::new_err(format!(
        "this {what} was made in the parent process before fork(); make a new one in the child \
         (or start workers with the 'spawn' or 'forkserver' method)"
    ))
}
