//! A real redis-server (Debian's), started by a test on a free 127.0.0.1 port in a temporary
//! directory, stopped by its PID; it can be restarted on the same port and files mid-test.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::real::require;

/// A running redis-server; killed when dropped.
pub struct Redis {
    binary: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    appendonly: bool,
}

impl Redis {
    /// Starts redis-server, with an append-only file (`appendfsync always`) if `appendonly`, and
    /// no snapshots. `None` (after one line saying so) when it is not installed, outside CI.
    pub fn start(appendonly: bool) -> Option<Redis> {
        let binary = require("redis-server", "apt-get install redis-server")?;
        let port = super::ports::lease();
        let mut redis = Redis { binary, child: None, port, dir: tempfile::tempdir().unwrap(), appendonly };
        redis.spawn();
        Some(redis)
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Stops the server with SIGTERM (it writes its files and exits), then starts it again on
    /// the same port and files.
    pub fn restart(&mut self) {
        let mut child = self.child.take().expect("running");
        super::signal(&child, libc::SIGTERM);
        let start = Instant::now();
        while child.try_wait().unwrap().is_none() {
            assert!(start.elapsed() < Duration::from_secs(20), "redis-server did not stop");
            std::thread::sleep(Duration::from_millis(20));
        }
        self.spawn();
    }

    fn spawn(&mut self) {
        let child = Command::new(&self.binary)
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", ""])
            .args(["--appendonly", if self.appendonly { "yes" } else { "no" }, "--appendfsync", "always"])
            .args([
                "--dir",
                self.dir.path().to_str().unwrap(),
                "--daemonize",
                "no",
                "--protected-mode",
                "yes",
            ])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        self.wait_ready();
    }

    /// Waits until the server answers PING with PONG (not LOADING), for up to 20 s.
    fn wait_ready(&self) {
        let start = Instant::now();
        loop {
            if let Ok(mut tcp) = TcpStream::connect(("127.0.0.1", self.port)) {
                let mut reply = [0u8; 64];
                tcp.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
                if tcp.write_all(b"PING\r\n").is_ok()
                    && let Ok(n) = tcp.read(&mut reply)
                    && reply[..n].starts_with(b"+PONG")
                {
                    return;
                }
            }
            assert!(start.elapsed() < Duration::from_secs(20), "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            _ = child.kill();
            _ = child.wait();
        }
    }
}
