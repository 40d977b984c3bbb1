//! Real proxies for the tests: tinyproxy (HTTP forwarding and `CONNECT`, Basic authentication)
//! and Dante (SOCKS5), from Debian, each on a free 127.0.0.1 port with a configuration written
//! at test time, and a log that tells what went through it.

use std::net::SocketAddr;
use std::path::PathBuf;

use super::daemon::{self, Daemon};
use super::real;

/// A running proxy; stopped when dropped.
#[derive(Debug)]
pub struct Proxy {
    /// Where it listens.
    pub addr: SocketAddr,
    log: PathBuf,
    _daemon: Daemon,
    _dir: tempfile::TempDir,
}

impl Proxy {
    /// tinyproxy, asking for `user:password` (Basic) when given; `None` when it is not installed
    /// (outside CI).
    pub fn tinyproxy(credentials: Option<(&str, &str)>) -> Option<Proxy> {
        let binary = real::require("tinyproxy", "apt-get install tinyproxy")?;
        let dir = tempfile::tempdir().unwrap();
        let port = super::ports::lease();
        let log = dir.path().join("tinyproxy.log");
        let mut config = format!(
            "Port {port}\nListen 127.0.0.1\nTimeout 30\nMaxClients 500\nAllow 127.0.0.1\n\
             LogLevel Connect\nLogFile \"{}\"\nPidFile \"{}\"\n",
            log.display(),
            dir.path().join("tinyproxy.pid").display()
        );
        if let Some((user, password)) = credentials {
            config += &format!("BasicAuth {user} {password}\n");
        }
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(&conf, config).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let daemon = daemon::start(&binary, &["-d", "-c", conf.to_str().unwrap()], dir.path(), addr);
        Some(Proxy { addr, log, _daemon: daemon, _dir: dir })
    }

    /// Dante, a SOCKS5 proxy (no authentication); `None` when it is not installed (outside CI).
    pub fn dante() -> Option<Proxy> {
        let binary = real::require("danted", "apt-get install dante-server")?;
        let dir = tempfile::tempdir().unwrap();
        let port = super::ports::lease();
        let log = dir.path().join("danted.log");
        // As root, Dante switches to these users for its work; it never runs its children as root
        // unless told to.
        let config = format!(
            "logoutput: {}\ninternal: 127.0.0.1 port = {port}\nexternal: 127.0.0.1\n\
             clientmethod: none\nsocksmethod: none\nuser.privileged: root\nuser.unprivileged: nobody\n\
             client pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }}\n\
             socks pass {{ from: 127.0.0.0/8 to: 0.0.0.0/0 log: connect }}\n",
            log.display()
        );
        let conf = dir.path().join("danted.conf");
        std::fs::write(&conf, config).unwrap();
        let addr: SocketAddr = ([127, 0, 0, 1], port).into();
        let pid = dir.path().join("danted.pid");
        let args = ["-f", conf.to_str().unwrap(), "-p", pid.to_str().unwrap(), "-N", "1"];
        let daemon = daemon::start(&binary, &args, dir.path(), addr);
        Some(Proxy { addr, log, _daemon: daemon, _dir: dir })
    }

    /// `SCHEME://[USER:PASSWORD@]127.0.0.1:PORT`.
    pub fn url(&self, scheme: &str, credentials: Option<(&str, &str)>) -> String {
        match credentials {
            Some((user, password)) => format!("{scheme}://{user}:{password}@{}", self.addr),
            None => format!("{scheme}://{}", self.addr),
        }
    }

    /// What it has logged so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}
