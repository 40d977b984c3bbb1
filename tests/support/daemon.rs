//! Servers nobody here wrote, run for a test: started in the foreground as a child process in a
//! process group of its own, waited for until it accepts connections, and stopped by PID.
//!
//! The child gets the parent-death signal, so that none outlives a test run that was killed; a
//! group of its own lets a KILL reach the workers a daemon forks, and keeps Ctrl-C in a
//! terminal from reaching it before the test can stop it in order.

use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long a daemon may take to start, or to stop before it is killed.
pub const PATIENCE: Duration = Duration::from_secs(10);

/// A daemon started by [`start`]; stopped (TERM, then KILL to its group) when dropped.
#[derive(Debug)]
pub struct Daemon {
    child: Child,
    name: String,
}

impl Daemon {
    /// Its process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        stop(&mut self.child);
    }
}

/// Runs `binary` with `args` (its stdout and stderr into `dir`), and waits until `addr` accepts a
/// connection. Panics, with what the daemon said, if it exits first or stays silent.
pub fn start(binary: &Path, args: &[&str], dir: &Path, addr: SocketAddr) -> Daemon {
    let name = binary.file_name().map_or_else(String::new, |n| n.to_string_lossy().into_owned());
    let out = |suffix: &str| std::fs::File::create(dir.join(format!("{name}.{suffix}"))).unwrap();
    let mut command = Command::new(binary);
    command.args(args).stdin(Stdio::null()).stdout(out("stdout")).stderr(out("stderr")).process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    let mut daemon = Daemon { child: command.spawn().unwrap_or_else(|e| panic!("{name} starts: {e}")), name };
    let start = Instant::now();
    while TcpStream::connect_timeout(&addr, Duration::from_millis(100)).is_err() {
        let said = || {
            ["stdout", "stderr"]
                .map(|s| {
                    std::fs::read_to_string(dir.join(format!("{}.{s}", daemon.name))).unwrap_or_default()
                })
                .join("")
        };
        if let Some(status) = daemon.child.try_wait().unwrap() {
            panic!("{} exited ({status}) before it listened on {addr}: {}", daemon.name, said());
        }
        assert!(
            start.elapsed() < PATIENCE,
            "{} did not listen on {addr} within {PATIENCE:?}: {}",
            daemon.name,
            said()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    daemon
}

/// TERM, then KILL to the whole group if it is still there after a while; reaps it either way.
pub fn stop(child: &mut Child) {
    if child.try_wait().ok().flatten().is_some() {
        return;
    }
    let pid = libc::pid_t::try_from(child.id()).expect("pids fit");
    // SAFETY: kill(2) has no memory effects; the pid is our unreaped child's, so not reused.
    unsafe { libc::kill(pid, libc::SIGTERM) };
    let start = Instant::now();
    while start.elapsed() < PATIENCE {
        if child.try_wait().ok().flatten().is_some() {
            return;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    // SAFETY: as above; the group is the one the child was started in, led by it.
    unsafe { libc::kill(-pid, libc::SIGKILL) };
    _ = child.wait();
}
