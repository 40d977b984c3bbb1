//! The parent side of a lab run: the server in a process of its own, and one worker process per
//! cell, all started from the `outofsync` binary.
//!
//! Separate processes keep each side's counters its own: the server's CPU time and threads never
//! show up in an engine's numbers, and each engine starts from a fresh process. Both are started
//! from the built binary itself, never through `cargo run`, whose process would be the one
//! measured.
//!
//! The server stands in for a remote machine, so two things keep the engine under test from
//! reaching it through the shared machine:
//! - a fresh server, on a fresh port, for every cell: the thousands of connections a cell leaves in
//!   `TIME_WAIT` are to another port, so they never slow down the next cell's `connect()`s (the
//!   kernel searches for a free source port per destination);
//! - a higher scheduling priority (nice −10, where allowed): 10,000 runnable threads must not starve
//!   the server, or the `threads` engine would be measuring its effect on the server.

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde::Deserialize;

use super::LabError;
use super::plan::Cell;
use super::worker::Measurement;

/// The server's nice value: a higher priority than the engines under test.
const SERVER_NICE: libc::c_int = -10;

/// `outofsync serve` on 127.0.0.1 and a free port; killed when dropped.
pub(crate) struct ServerProcess {
    child: Child,
    base: String,
    http: ureq::Agent,
}

/// What the server saw of one cell (`GET /stats`).
#[derive(Clone, Copy, Debug, Default, Deserialize)]
pub(crate) struct ServerStats {
    /// Requests answered.
    pub requests: u64,
    /// The most requests in flight at once.
    pub max_in_flight: u64,
}

impl ServerProcess {
    /// Starts `exe serve` and waits for its `listening on http://…` line.
    pub fn start(exe: &Path, threads: usize) -> Result<Self, LabError> {
        let mut command = Command::new(exe);
        command
            .args(["serve", "--port", "0", "--threads", &threads.to_string(), "--grace", "0s"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        // SAFETY: runs in the child between fork and exec, and only calls `setpriority`, which is
        // async-signal-safe. Every thread the server starts inherits the priority; a refusal (not
        // root) leaves the server at the normal priority, which `priority()` then reports.
        unsafe {
            command.pre_exec(|| {
                libc::setpriority(libc::PRIO_PROCESS, 0, SERVER_NICE);
                Ok(())
            });
        }
        let mut child = command.spawn().map_err(|source| LabError::Io {
            what: format!("cannot start {} serve", exe.display()),
            source,
        })?;
        let mut line = String::new();
        let stdout = child.stdout.take().expect("stdout is piped");
        _ = BufReader::new(stdout).read_line(&mut line);
        let Some(base) = outofsync_server::announced_url(&line).map(str::to_owned) else {
            _ = child.kill();
            _ = child.wait();
            return Err(LabError::Server(format!("the server did not say where it listens: {line:?}")));
        };
        let http = ureq::Agent::config_builder().timeout_global(Some(Duration::from_secs(10))).build().into();
        Ok(Self { child, base, http })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// The server's nice value (`-10` when raising its priority was allowed, else `0`).
    pub fn priority(&self) -> Option<i32> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.child.id())).ok()?;
        // The fields after the command name, which is in parentheses and may hold spaces.
        let fields: Vec<&str> = stat.rsplit_once(')')?.1.split_whitespace().collect();
        // Field 19 of stat(5), the nice value; the first field after the name is field 3.
        fields.get(19 - 3)?.parse().ok()
    }

    /// What the server saw since it started.
    pub fn stats(&self) -> Result<ServerStats, LabError> {
        self.http
            .get(format!("{}/stats", self.base))
            .call()
            .and_then(|mut r| r.body_mut().read_json::<ServerStats>())
            .map_err(|e| LabError::Server(format!("GET /stats failed: {e}")))
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        _ = self.child.kill();
        _ = self.child.wait();
    }
}

/// Runs `exe lab-worker --cell JSON` and reads its measurement from its stdout.
pub(crate) fn run_worker(exe: &Path, cell: &Cell) -> Result<Measurement, LabError> {
    let spec = serde_json::to_string(cell).expect("a cell serialises");
    let output =
        Command::new(exe).args(["lab-worker", "--cell", &spec]).stdin(Stdio::null()).output().map_err(
            |source| LabError::Io { what: format!("cannot start {} lab-worker", exe.display()), source },
        )?;
    let failed = |why: String| LabError::Worker { cell: cell.label(), message: why };
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(failed(format!("{} ({})", stderr.trim(), output.status)));
    }
    serde_json::from_slice(&output.stdout).map_err(|e| failed(format!("unreadable measurement: {e}")))
}
