//! A real nginx (Debian's 1.22) started for one test: its configuration, documents and
//! certificates generated in a temporary directory, its listeners on free 127.0.0.1 ports, its
//! access and error logs readable by the test, and its processes stopped by PID when dropped.
//!
//! One worker process serves everything. That is what makes [`Nginx::requests`] exact right after
//! the client exits: a single event loop writes each access-log line in the same pass that sends
//! the last bytes of its response, so once a later request (the sync request on the control
//! listener) has been logged, every request answered before it has been logged too.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use super::real::{require, require_file};

const INSTALL: &str = "apt-get install nginx-light libnginx-mod-http-echo";
const ECHO_MODULE: &str = "/usr/lib/nginx/modules/ngx_http_echo_module.so";
/// How long nginx may take to come up or to stop before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(10);

/// One of nginx's listeners, each on a port of its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Listener {
    /// Plain HTTP/1.1.
    H1,
    /// TLS (certificate signed by the test CA), HTTP/1.1 only: ALPN offers nothing else.
    TlsH1,
    /// TLS (certificate signed by the test CA), HTTP/2 chosen by ALPN.
    TlsH2,
    /// HTTP/2 in clear text, by prior knowledge.
    H2c,
    /// Plain HTTP/1.1 that closes each connection after its third request.
    Keepalive3,
    /// Plain HTTP/1.1 behind `limit_req` (20 r/s, burst 5): the excess gets a 429 with
    /// `Retry-After: 1`.
    Ratelimit,
    /// TLS, HTTP/1.1, with a self-signed certificate made as `openssl req -x509` makes one
    /// (basicConstraints CA:TRUE): the file given to `--cacert` is the server's own certificate.
    TlsSelfSigned,
    /// Plain HTTP/1.1 with locations behind credentials (see [`AUTH_LOCATIONS`]), logged to an
    /// access log of its own with the credentials each request carried ([`Nginx::auth_log`]).
    Auth,
    /// Plain HTTP/1.1 for the harness itself (readiness and log sync); no test counts it.
    Control,
}

impl Listener {
    /// Every listener a test may fetch from (not the control one).
    pub const SERVED: [Listener; 8] = [
        Listener::H1,
        Listener::TlsH1,
        Listener::TlsH2,
        Listener::H2c,
        Listener::Keepalive3,
        Listener::Ratelimit,
        Listener::TlsSelfSigned,
        Listener::Auth,
    ];

    /// The listener's name, as in the tests' messages (`tls_h2`).
    pub fn name(self) -> &'static str {
        match self {
            Listener::H1 => "h1",
            Listener::TlsH1 => "tls_h1",
            Listener::TlsH2 => "tls_h2",
            Listener::H2c => "h2c",
            Listener::Keepalive3 => "keepalive3",
            Listener::Ratelimit => "ratelimit",
            Listener::TlsSelfSigned => "tls_self_signed",
            Listener::Auth => "auth",
            Listener::Control => "control",
        }
    }

    /// True for the listeners that speak TLS.
    pub fn is_tls(self) -> bool {
        matches!(self, Listener::TlsH1 | Listener::TlsH2 | Listener::TlsSelfSigned)
    }

    /// The `listen` directive's parameters after the address, and what the server block adds.
    fn directives(self, dir: &Path) -> (&'static str, String) {
        let tls = |cert: &str| {
            format!("ssl_certificate {d}/{cert}.pem; ssl_certificate_key {d}/{cert}.key;", d = dir.display())
        };
        match self {
            Listener::H1 | Listener::Control => ("", String::new()),
            Listener::Auth => ("", format!("access_log {}/auth.log auth;", dir.display())),
            Listener::TlsH1 => (" ssl", tls("leaf")),
            Listener::TlsH2 => (" ssl http2", tls("leaf")),
            Listener::H2c => (" http2", String::new()),
            Listener::Keepalive3 => ("", "keepalive_requests 3;".into()),
            // `always`: add_header skips error statuses without it. The map leaves the header out
            // of every answer that is not a 429 (an empty value adds nothing).
            Listener::Ratelimit => (
                "",
                "limit_req zone=ratelimit burst=5 nodelay; limit_req_status 429; \
                 add_header Retry-After $retry_after always;"
                    .into(),
            ),
            Listener::TlsSelfSigned => (" ssl", tls("self-signed")),
        }
    }
}

/// The documents served from every listener, by path. Their bytes are [`Nginx::document`].
/// Every listener also has `/close`, where nginx reads and logs the request (status 444) and then
/// resets the connection without answering.
pub const DOCUMENTS: [&str; 5] = ["small.json", "1k.json", "64k.json", "5m.json", "chunked.json"];

/// The credentials the `auth` listener takes: a bearer token, an `X-Api-Key`, an `api_key` query
/// parameter, and a Basic user and password.
pub const AUTH_BEARER: &str = "nginx-bearer-3c9f1a66";
/// See [`AUTH_BEARER`].
pub const AUTH_KEY: &str = "nginx-key-77d2e0b5";
/// See [`AUTH_BEARER`].
pub const AUTH_QUERY_KEY: &str = "nginx-query-b41c5e08";
/// See [`AUTH_BEARER`].
pub const AUTH_USER: (&str, &str) = ("nginx-user", "nginx-pass-5e0a91f3");

/// The `auth` listener's locations: each answers 200 to the right credential and 401 otherwise
/// (nginx's `map` compares the whole value); `/away` redirects to another host (`localhost` for
/// `127.0.0.1`, on the same port), where `/elsewhere` answers anyone.
pub const AUTH_LOCATIONS: &str = r#"default_type application/json;
location = /bearer { if ($auth_bearer = 0) { return 401 '{"refused":"bearer"}'; } return 200 '{"auth":"bearer"}'; }
location = /basic { if ($auth_basic = 0) { return 401 '{"refused":"basic"}'; } return 200 '{"auth":"basic"}'; }
location = /key { if ($auth_key = 0) { return 401 '{"refused":"key"}'; } return 200 '{"auth":"key"}'; }
location = /query { if ($auth_query = 0) { return 401 '{"refused":"query"}'; } return 200 '{"auth":"query"}'; }
location = /away { return 302 http://localhost:$server_port/elsewhere; }
location = /elsewhere { return 200 '{"elsewhere":true}'; }
"#;

/// The maps behind [`AUTH_LOCATIONS`] and the format of its log.
fn auth_maps() -> String {
    use base64::Engine as _;
    let basic = base64::engine::general_purpose::STANDARD.encode(format!("{}:{}", AUTH_USER.0, AUTH_USER.1));
    format!(
        r#"    map $http_authorization $auth_bearer {{ "Bearer {AUTH_BEARER}" 1; default 0; }}
    map $http_authorization $auth_basic {{ "Basic {basic}" 1; default 0; }}
    map $http_x_api_key $auth_key {{ "{AUTH_KEY}" 1; default 0; }}
    map $arg_api_key $auth_query {{ "{AUTH_QUERY_KEY}" 1; default 0; }}
    log_format auth '$request_uri|$status|$http_authorization|$http_x_api_key|$arg_api_key';"#
    )
}

/// The parts of `/chunked.json`: each one is sent as a chunk of its own by the echo module, with a
/// short sleep between some of them, so the body really arrives in pieces.
const CHUNKS: [&str; 6] = [
    r#"{"chunked":true,"parts":["#,
    r#"{"n":1,"text":"the first chunk"},"#,
    r#"{"n":2,"text":"the second, after a pause"},"#,
    r#"{"n":3,"text":"the third"},"#,
    r#"{"n":4,"text":"the last one before the end"}"#,
    "]}\n",
];

/// One line of the access log.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The listener's port (`$server_port`).
    pub port: u16,
    /// `$request_method`.
    pub method: String,
    /// `$request_uri`: path and query as sent.
    pub uri: String,
    /// `$status`.
    pub status: u16,
    /// `$server_protocol`: `HTTP/1.1` or `HTTP/2.0`.
    pub protocol: String,
    /// `$connection`: nginx's serial number of the connection.
    pub connection: u64,
    /// `$connection_requests`: this request's number on its connection, from 1.
    pub connection_requests: u64,
    /// `$body_bytes_sent`.
    pub body_bytes: u64,
    /// `$msec`: when the request was logged (its answer sent), in seconds since the Unix epoch,
    /// to the millisecond.
    pub time: f64,
}

impl Entry {
    fn parse(line: &str) -> Option<Entry> {
        let f: Vec<&str> = line.split(' ').collect();
        let [port, method, uri, status, protocol, connection, connection_requests, body_bytes, time] = f[..]
        else {
            return None;
        };
        Some(Entry {
            port: port.parse().ok()?,
            method: method.to_owned(),
            uri: uri.to_owned(),
            status: status.parse().ok()?,
            protocol: protocol.to_owned(),
            connection: connection.parse().ok()?,
            connection_requests: connection_requests.parse().ok()?,
            body_bytes: body_bytes.parse().ok()?,
            time: time.parse().ok()?,
        })
    }
}

/// A running nginx; stopped (TERM, then KILL) and reaped when dropped.
pub struct Nginx {
    child: Child,
    ports: HashMap<Listener, u16>,
    dir: tempfile::TempDir,
    syncs: AtomicU64,
}

impl Nginx {
    /// Starts nginx with every [`Listener`], or returns `None` (after one line on stderr) when
    /// nginx or its echo module is not installed and this is not CI.
    ///
    /// nginx lives no longer than the thread that starts it (a parent-death signal), so a test run
    /// that is killed leaves none behind; share one between tests only from a thread that outlives
    /// them.
    ///
    /// # Panics
    /// When nginx is missing on CI, or does not come up within a few seconds.
    pub fn start() -> Option<Nginx> {
        let binary = require("nginx", INSTALL)?;
        let echo = require_file("nginx's echo module", Path::new(ECHO_MODULE), INSTALL)?;
        let dir = tempfile::tempdir().expect("a temporary directory");
        write_documents(dir.path());
        write_certificates(dir.path());
        // A leased port can still be taken by another program on the machine before nginx binds
        // it; nginx then exits, and another set of ports is tried.
        let mut last_error = String::new();
        for _ in 0..5 {
            let ports = free_ports();
            std::fs::write(dir.path().join("nginx.conf"), config(dir.path(), &echo, &ports)).unwrap();
            let mut child = spawn(&binary, dir.path());
            let control = SocketAddr::from(([127, 0, 0, 1], ports[&Listener::Control]));
            match wait_until_ready(&mut child, dir.path(), control) {
                Ok(()) => return Some(Nginx { child, ports, dir, syncs: AtomicU64::new(0) }),
                Err(why) => last_error = why,
            }
            super::daemon::stop(&mut child);
        }
        panic!("nginx did not start: {last_error}");
    }

    /// The port of `listener`.
    pub fn port(&self, listener: Listener) -> u16 {
        self.ports[&listener]
    }

    /// The address of `listener` (for a proxy in front of it).
    pub fn addr(&self, listener: Listener) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], self.port(listener)))
    }

    /// The URL of `path` (with its leading `/`) on `listener`: `https://localhost:PORT…` for TLS
    /// (the name the certificates carry, see [`Nginx::args`]), `http://127.0.0.1:PORT…` otherwise.
    pub fn url(&self, listener: Listener, path: &str) -> String {
        self.url_at(listener, self.port(listener), path)
    }

    /// [`Nginx::url`] for `listener` reached on another `port` (a proxy in front of it).
    pub fn url_at(&self, listener: Listener, port: u16, path: &str) -> String {
        if listener.is_tls() {
            format!("https://localhost:{port}{path}")
        } else {
            format!("http://127.0.0.1:{port}{path}")
        }
    }

    /// The client arguments `listener` needs: `--resolve localhost:PORT:127.0.0.1` and the right
    /// `--cacert` for TLS, `--http2-prior-knowledge` for h2c.
    pub fn args(&self, listener: Listener) -> Vec<String> {
        self.args_at(listener, self.port(listener))
    }

    /// [`Nginx::args`] for `listener` reached on another `port` (a proxy in front of it).
    pub fn args_at(&self, listener: Listener, port: u16) -> Vec<String> {
        let cacert = |file: PathBuf| {
            vec![
                "--resolve".into(),
                format!("localhost:{port}:127.0.0.1"),
                "--cacert".into(),
                file.display().to_string(),
            ]
        };
        match listener {
            Listener::TlsH1 | Listener::TlsH2 => cacert(self.ca_file()),
            Listener::TlsSelfSigned => cacert(self.self_signed_file()),
            Listener::H2c => vec!["--http2-prior-knowledge".into()],
            _ => Vec::new(),
        }
    }

    /// The test CA's certificate (PEM), which signed the certificate of `tls_h1` and `tls_h2`.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    /// The certificate (PEM) of `tls_self_signed`: self-signed, basicConstraints CA:TRUE, names
    /// `localhost` and `127.0.0.1`, as `openssl req -x509 -newkey … -subj /CN=localhost -addext
    /// subjectAltName=DNS:localhost,IP:127.0.0.1` makes it.
    pub fn self_signed_file(&self) -> PathBuf {
        self.dir.path().join("self-signed.pem")
    }

    /// The exact bytes served at `/NAME` (one of [`DOCUMENTS`]), after any content coding is undone.
    pub fn document(&self, name: &str) -> Vec<u8> {
        std::fs::read(self.dir.path().join("expected").join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
    }

    /// Every request nginx has logged on `listener`, in log order; complete for everything the
    /// client was answered before this call (see the module's comment).
    pub fn requests(&self, listener: Listener) -> Vec<Entry> {
        self.sync();
        let port = self.port(listener);
        self.entries().into_iter().filter(|e| e.port == port).collect()
    }

    /// nginx's error log so far (level `info`, where it reports clients' protocol errors such as
    /// `client sent duplicate host header`).
    pub fn error_log(&self) -> String {
        self.sync();
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }

    /// What the `auth` listener received, one line per request in log order, as
    /// `URI|STATUS|AUTHORIZATION|X-API-KEY|API_KEY` (`-` for what was absent); complete for
    /// everything answered before this call.
    pub fn auth_log(&self) -> Vec<String> {
        self.sync();
        let log = std::fs::read_to_string(self.dir.path().join("auth.log")).unwrap_or_default();
        log.lines().map(str::to_owned).collect()
    }

    /// The directory holding the configuration, documents, certificates and logs.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The master process's id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    fn entries(&self) -> Vec<Entry> {
        let log = std::fs::read_to_string(self.dir.path().join("access.log")).unwrap_or_default();
        log.lines().map(|l| Entry::parse(l).unwrap_or_else(|| panic!("an access-log line: {l}"))).collect()
    }

    /// Asks the control listener for `/__sync/N` and waits until its line is in the access log.
    fn sync(&self) {
        let n = self.syncs.fetch_add(1, Ordering::Relaxed);
        let uri = format!("/__sync/{n}");
        let answer = raw_get(self.addr(Listener::Control), &uri, "").unwrap_or_else(|e| panic!("{uri}: {e}"));
        assert!(answer.starts_with(b"HTTP/1.1 204"), "{uri}: {}", String::from_utf8_lossy(&answer));
        let port = self.port(Listener::Control);
        let start = Instant::now();
        while !self.entries().iter().any(|e| e.port == port && e.uri == uri) {
            assert!(start.elapsed() < PATIENCE, "{uri} was answered but not logged");
            std::thread::sleep(Duration::from_millis(2));
        }
    }
}

impl Drop for Nginx {
    fn drop(&mut self) {
        // TERM is nginx's fast shutdown: the master stops its worker and exits.
        super::daemon::stop(&mut self.child);
    }
}

/// Starts nginx on the configuration in `dir`, in the foreground.
fn spawn(binary: &Path, dir: &Path) -> Child {
    let stderr = std::fs::File::create(dir.join("stderr.log")).unwrap();
    let mut command = Command::new(binary);
    command
        .arg("-p")
        .arg(dir)
        .args(["-c", "nginx.conf", "-g", "daemon off;"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(stderr)
        // A group of its own, so that a KILL can reach the worker with the master. Out of the
        // terminal's group, Ctrl-C no longer reaches it: the parent-death signal stands in, so
        // no nginx outlives a test run that was killed.
        .process_group(0);
    // SAFETY: prctl(2) is async-signal-safe and touches only the child's own state.
    unsafe {
        command.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGTERM) == -1 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    };
    command.spawn().expect("nginx starts")
}

/// Waits until nginx's worker answers on the control listener; an error if nginx exits first or
/// is still silent after [`PATIENCE`].
fn wait_until_ready(child: &mut Child, dir: &Path, control: SocketAddr) -> Result<(), String> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            let stderr = std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default();
            let log = std::fs::read_to_string(dir.join("error.log")).unwrap_or_default();
            return Err(format!("nginx exited ({status}): {stderr}{log}"));
        }
        match raw_get(control, "/__sync/ready", "") {
            Ok(answer) if answer.starts_with(b"HTTP/1.1 204") => return Ok(()),
            Ok(answer) => {
                return Err(format!("the control listener said {}", String::from_utf8_lossy(&answer)));
            }
            Err(why) if start.elapsed() > PATIENCE => return Err(why),
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
}

/// Sends `GET uri` on a fresh connection (with `extra` header lines, each ending in CRLF) and
/// returns everything the server sent until it closed.
pub fn raw_get(addr: SocketAddr, uri: &str, extra: &str) -> Result<Vec<u8>, String> {
    let mut tcp = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).map_err(|e| e.to_string())?;
    tcp.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = format!("GET {uri} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n");
    tcp.write_all(request.as_bytes()).map_err(|e| e.to_string())?;
    let mut answer = Vec::new();
    tcp.read_to_end(&mut answer).map_err(|e| e.to_string())?;
    Ok(answer)
}

/// One leased port per listener (see [`super::ports`]): no other test's daemon gets any of them.
fn free_ports() -> HashMap<Listener, u16> {
    Listener::SERVED.iter().copied().chain([Listener::Control]).map(|l| (l, super::ports::lease())).collect()
}

fn config(dir: &Path, echo: &Path, ports: &HashMap<Listener, u16>) -> String {
    let d = dir.display();
    // nginx refuses `user` unless it runs as root; as root, the worker would otherwise be `nobody`,
    // which cannot enter the temporary directory (mode 0700).
    // SAFETY: geteuid(2) cannot fail and touches no memory.
    let user = if unsafe { libc::geteuid() } == 0 { "user root;" } else { "" };
    let mut servers = String::new();
    for listener in Listener::SERVED.iter().copied().chain([Listener::Control]) {
        let (listen, extra) = listener.directives(dir);
        let port = ports[&listener];
        let more = match listener {
            Listener::Control => "location /__sync/ { return 204; }",
            Listener::Auth => "include auth.conf;",
            _ => "include documents.conf;",
        };
        writeln!(servers, "    server {{ listen 127.0.0.1:{port}{listen}; {extra} {more} }}").unwrap();
    }
    format!(
        r#"# Generated by tests/support/nginx.rs for one test.
load_module {echo};
{user}
worker_processes 1;
pid {d}/nginx.pid;
lock_file {d}/nginx.lock;
# info: the level of clients' protocol errors ("client sent duplicate host header").
error_log {d}/error.log info;
events {{ worker_connections 4096; }}
http {{
    types {{ application/json json; }}
    default_type application/octet-stream;
    # The compiled-in temporary paths are under /var/lib/nginx, which may not exist.
    client_body_temp_path {d}/tmp/body;
    proxy_temp_path {d}/tmp/proxy;
    fastcgi_temp_path {d}/tmp/fastcgi;
    uwsgi_temp_path {d}/tmp/uwsgi;
    scgi_temp_path {d}/tmp/scgi;
    # Unbuffered (no buffer=): each line is written when its request ends.
    log_format conformance '$server_port $request_method $request_uri $status $server_protocol $connection $connection_requests $body_bytes_sent $msec';
    access_log {d}/access.log conformance;
    root {d}/www;
    gzip on;
    gzip_types application/json;
    gzip_min_length 0;
    map $status $retry_after {{ 429 1; default ""; }}
{auth_maps}
    limit_req_zone $server_port zone=ratelimit:1m rate=20r/s;
{servers}}}
"#,
        echo = echo.display(),
        auth_maps = auth_maps(),
    )
}

/// The documents: static files in `www/` and, in `expected/`, the bytes every path must yield.
fn write_documents(dir: &Path) {
    let (www, expected) = (dir.join("www"), dir.join("expected"));
    std::fs::create_dir_all(&www).unwrap();
    std::fs::create_dir_all(&expected).unwrap();
    std::fs::create_dir_all(dir.join("tmp")).unwrap();
    let small =
        br#"{"id":1,"name":"small","tags":["nginx","conformance"],"ok":true,"nested":{"x":1.5,"y":null}}"#;
    let files = [
        ("small.json", [&small[..], b"\n"].concat()),
        ("1k.json", json_of_size(1 << 10)),
        ("64k.json", json_of_size(64 << 10)),
        ("5m.json", json_of_size(5 << 20)),
    ];
    for (name, bytes) in files {
        std::fs::write(www.join(name), &bytes).unwrap();
        std::fs::write(expected.join(name), &bytes).unwrap();
    }
    std::fs::write(expected.join("chunked.json"), CHUNKS.concat()).unwrap();
    // `echo -n` sends its argument as is; echo_flush makes it a chunk now. gzip is off here so
    // that the chunks on the wire are the echo module's, not the compressor's.
    let mut chunked = String::from("location = /chunked.json { gzip off; default_type application/json; ");
    for (n, chunk) in CHUNKS.iter().enumerate() {
        let chunk = chunk.replace('\n', "\\n");
        assert!(!chunk.contains(['\'', '$']), "the echo module would read {chunk}");
        write!(chunked, "echo -n '{chunk}'; echo_flush; ").unwrap();
        if n % 2 == 1 {
            chunked.push_str("echo_sleep 0.002; ");
        }
    }
    chunked.push('}');
    // 444: nginx reads the request, logs it, and closes the connection without a word; with
    // reset_timedout_connection, by an RST (what a client sees of a server that crashed or a
    // middlebox that gave up), not a TLS close or a FIN.
    let close = "location = /close { reset_timedout_connection on; return 444; }";
    std::fs::write(dir.join("documents.conf"), format!("{chunked}\n{close}\n")).unwrap();
    std::fs::write(dir.join("auth.conf"), AUTH_LOCATIONS).unwrap();
}

/// A JSON document of exactly `size` bytes, one item a line, with a trailing newline: items of
/// pseudo-random words (so gzip does not shrink a large file to nothing, and the stall and reset
/// tests see real volumes on the wire), then a padding string to the exact size.
fn json_of_size(size: usize) -> Vec<u8> {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_";
    const END: &str = "{\"pad\":\"\"}\n]}\n";
    let mut state = 0x2545_f491_4f6c_dd1d_u64 ^ size as u64;
    let mut text = format!("{{\"size\":{size},\"items\":[\n");
    let mut id = 0;
    while size.saturating_sub(text.len()) > 128 + END.len() {
        let word: String = (0..48)
            .map(|_| {
                // xorshift64: deterministic, so the same file every run.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                ALPHABET[(state % 64) as usize] as char
            })
            .collect();
        writeln!(text, "{{\"id\":{id},\"word\":\"{word}\"}},").unwrap();
        id += 1;
    }
    let pad = size - text.len() - END.len();
    text.push_str(&END.replace("\"\"", &format!("\"{}\"", "x".repeat(pad))));
    assert_eq!(text.len(), size);
    serde_json::from_str::<serde_json::Value>(&text).expect("the document is JSON");
    text.into_bytes()
}

/// The test CA and the leaf it signs (`ca.pem`, `leaf.pem`, `leaf.key`), and the plain
/// self-signed certificate (`self-signed.pem`, `self-signed.key`).
fn write_certificates(dir: &Path) {
    use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
    let names = || vec!["localhost".to_string(), "127.0.0.1".to_string()];

    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.distinguished_name.push(DnType::CommonName, "outofsync test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages =
        vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_key = KeyPair::generate().unwrap();
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca, ca_key);
    let mut leaf = CertificateParams::new(names()).unwrap();
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    let leaf_key = KeyPair::generate().unwrap();
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).unwrap();
    std::fs::write(dir.join("ca.pem"), ca_cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.pem"), leaf_cert.pem()).unwrap();
    std::fs::write(dir.join("leaf.key"), leaf_key.serialize_pem()).unwrap();

    // What OpenSSL's `req -x509` makes by default (its v3_ca section): subject CN=localhost,
    // basicConstraints critical CA:TRUE, subject and authority key identifiers. The key is ECDSA
    // P-256, not RSA 2048: rcgen on ring cannot generate RSA keys, and the key type has no part in
    // how a verifier treats a CA certificate used as the server's own.
    let mut plain = CertificateParams::new(names()).unwrap();
    plain.distinguished_name.push(DnType::CommonName, "localhost");
    plain.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    plain.use_authority_key_identifier_extension = true;
    let plain_key = KeyPair::generate().unwrap();
    let plain_cert = plain.self_signed(&plain_key).unwrap();
    std::fs::write(dir.join("self-signed.pem"), plain_cert.pem()).unwrap();
    std::fs::write(dir.join("self-signed.key"), plain_key.serialize_pem()).unwrap();
}
