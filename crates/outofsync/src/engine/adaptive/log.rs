//! `--adaptive-log`: one JSON line per controller change, for users to see why a host went slow
//! and for the tests and the benchmark to read what the controllers did.
//!
//! ```text
//! {"t":3.512,"host":"http://a.test:8080","event":"throttle","w":24,"r":43.2,"inflight":3,"p50_ms":21.4,"base_ms":20.1,"goodput":48.0}
//! ```
//!
//! `t` is seconds since the fetcher was built; `w` and `r` are `null` when not in force (no
//! `--adaptive`, or a host that never throttled).

use std::fmt;
use std::io::{self, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};

/// Where the controllers' changes are written, one JSON line each. Cheap to clone; clones write
/// to the same place. Lines are written whole (under a lock) and flushed one by one, so the file
/// can be read while a run goes.
#[derive(Clone)]
pub struct ControllerLog {
    out: Arc<Mutex<Box<dyn Write + Send>>>,
}

impl fmt::Debug for ControllerLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ControllerLog(..)")
    }
}

impl ControllerLog {
    /// A log written to `out`.
    pub fn new(out: impl Write + Send + 'static) -> Self {
        Self { out: Arc::new(Mutex::new(Box::new(out))) }
    }

    /// A log written to a new file at `path` (an existing one is replaced).
    ///
    /// # Errors
    /// The file cannot be created.
    pub fn create(path: &Path) -> io::Result<Self> {
        Ok(Self::new(io::LineWriter::new(std::fs::File::create(path)?)))
    }

    /// Writes one event. A failed write is dropped: the log is a diagnostic, never a reason to
    /// stop a run.
    pub(super) fn write(&self, event: &Event<'_>) {
        let line = event.to_line();
        if let Ok(mut out) = self.out.lock() {
            _ = out.write_all(line.as_bytes());
        }
    }

    /// Flushes what is buffered.
    pub fn flush(&self) {
        if let Ok(mut out) = self.out.lock() {
            _ = out.flush();
        }
    }
}

/// One change of a host's controllers.
#[derive(Debug)]
pub(super) struct Event<'a> {
    pub t: f64,
    pub host: &'a str,
    pub event: &'static str,
    pub w: Option<f64>,
    pub r: Option<f64>,
    pub inflight: usize,
    pub p50_ms: Option<f64>,
    pub base_ms: Option<f64>,
    pub goodput: f64,
}

impl Event<'_> {
    fn to_line(&self) -> String {
        let round = |x: f64, places: i32| {
            let scale = 10f64.powi(places);
            (x * scale).round() / scale
        };
        let opt = |x: Option<f64>, places| x.map(|x| round(x, places));
        let mut line = serde_json::json!({
            "t": round(self.t, 3),
            "host": self.host,
            "event": self.event,
            "w": opt(self.w, 2),
            "r": opt(self.r, 2),
            "inflight": self.inflight,
            "p50_ms": opt(self.p50_ms, 2),
            "base_ms": opt(self.base_ms, 2),
            "goodput": round(self.goodput, 1),
        })
        .to_string();
        line.push('\n');
        line
    }
}
