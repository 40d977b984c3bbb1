//! What the tests share: the built-in server, the real binary in a sealed environment, and
//! readers of its output.

#![allow(dead_code)]

pub mod daemon;
pub mod faultproxy;
pub mod hostile;
pub mod nginx;
pub mod ports;
pub mod proxy;
pub mod real;
pub mod redis;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use assert_cmd::Command;
use serde_json::Value;

pub use outofsync_server::{Server, ServerConfig};

/// A built-in server on 127.0.0.1 and a free port; stops when dropped.
pub fn server() -> Server {
    Server::start().expect("the built-in server starts")
}

/// Accepts connections on 127.0.0.1 and a free port and serves each with `serve` on a task of its
/// own. The runtime is the server's own (one worker), so a blocking test or a child process cannot
/// starve it; dropping the runtime stops the server and every connection.
pub fn serve_loopback<F, Fut>(serve: F) -> (SocketAddr, tokio::runtime::Runtime)
where
    F: Fn(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
    let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime.spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            tokio::spawn(serve(tcp));
        }
    });
    (addr, runtime)
}

/// The `outofsync` binary with a cleared environment and a time limit, so no test can hang.
pub fn outofsync() -> Command {
    let mut cmd = Command::cargo_bin("outofsync").expect("the binary is built");
    cmd.env_clear().timeout(Duration::from_secs(120));
    cmd
}

/// A blocking HTTP client that reports statuses instead of failing on them and follows nothing.
pub fn http() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(Duration::from_secs(30)))
        .build()
        .into()
}

/// GETs `url`: status, headers, raw body bytes (nothing decompressed).
pub fn get(url: &str) -> (u16, http::HeaderMap, Vec<u8>) {
    let mut response = http().get(url).call().expect("the request completes");
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = response.body_mut().with_config().limit(1 << 30).read_to_vec().expect("the body reads");
    (status, headers, body)
}

/// GETs `url` and parses the body as JSON.
pub fn get_json(url: &str) -> (u16, Value) {
    let (status, _, body) = get(url);
    (status, serde_json::from_slice(&body).unwrap_or_else(|e| panic!("{url}: not JSON ({e})")))
}

/// Parses JSON lines; panics on a line that is not JSON (which would itself be a bug).
pub fn records(output: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(output)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON line ({e}): {l}")))
        .collect()
}

/// Reads a JSON lines file.
pub fn records_in(path: &Path) -> Vec<Value> {
    records(&std::fs::read(path).expect("the output file exists"))
}

/// The record with index `i`.
pub fn by_i(records: &[Value], i: u64) -> &Value {
    records.iter().find(|r| r["i"] == i).unwrap_or_else(|| panic!("no record with i = {i}"))
}

/// The real binary started in the background, env cleared, stdout discarded, stderr kept: for
/// tests that signal or kill it mid-run.
pub fn spawn(args: &[&str]) -> std::process::Child {
    std::process::Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(args)
        .env_clear()
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("the binary starts")
}

/// Starts the binary with `args` (stdout and stderr piped), reads the first line of its stdout,
/// then closes its stdout, as `| head -1` would.
pub fn spawn_first_line(args: &[&str]) -> (std::process::Child, String) {
    use std::io::BufRead;
    use std::process::Stdio;
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("outofsync"))
        .args(args)
        .env_clear()
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the binary starts");
    let mut first = String::new();
    std::io::BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
    (child, first)
}

/// Sends `signal` to a running child.
pub fn signal(child: &std::process::Child, signal: i32) {
    let pid = libc::pid_t::try_from(child.id()).expect("pids fit");
    // SAFETY: kill(2) has no memory effects; the child is ours and not yet reaped.
    assert_eq!(unsafe { libc::kill(pid, signal) }, 0, "kill({pid}, {signal})");
}

/// Waits for a child for at most `limit` (then kills it and fails): exit code and stderr.
pub fn finish(mut child: std::process::Child, limit: Duration) -> (Option<i32>, String) {
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if start.elapsed() > limit {
            _ = child.kill();
            panic!("the child did not end within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let mut err = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
    (status.code(), err)
}

/// The records of an output that may end in a torn line: every whole line must parse; what
/// follows the last `\n` is returned as the torn tail.
pub fn whole_records(path: &Path) -> (Vec<Value>, Vec<u8>) {
    let bytes = std::fs::read(path).unwrap_or_default();
    let end = bytes.iter().rposition(|&b| b == b'\n').map_or(0, |p| p + 1);
    (records(&bytes[..end]), bytes[end..].to_vec())
}

/// The `i` of each record, in file order.
pub fn indexes(records: &[Value]) -> Vec<u64> {
    records.iter().map(|r| r["i"].as_u64().expect("every record has an i")).collect()
}
