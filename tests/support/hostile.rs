//! A misbehaving HTTP server on raw TCP: scripted bytes, chosen by the request path, that no
//! well-behaved server library would send (idle, drip, endless bodies, lying lengths, bombs, broken
//! framing, header floods, bad redirects, closes without notice).
//!
//! It runs on a runtime of its own (see [`super::serve_loopback`]) and stops when dropped. Every case ends by itself within [`LIFETIME`], so nothing it starts
//! can outlive a test by much even if the client never hangs up.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use outofsync_server::{Coding, compress};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// The longest any connection is kept.
pub const LIFETIME: Duration = Duration::from_secs(30);
/// The decoded size of the bombs.
pub const BOMB: usize = 64 << 20;

/// Every scripted path, and what it does.
pub const CASES: &[(&str, &str)] = &[
    ("/idle", "reads the request and never answers"),
    ("/drip", "a head, then one body byte every 100 ms"),
    ("/endless", "a chunked body of 1 KiB every 10 ms, never ending"),
    ("/flood", "a chunked body sent as fast as the client reads, never ending"),
    ("/huge-length", "Content-Length: 10 TB"),
    ("/bomb", "64 MiB of zeros, gzip (about 64 KiB on the wire)"),
    ("/bomb-chain", "64 MiB of zeros, gzip then br"),
    ("/three-codings", "Content-Encoding: gzip, gzip, gzip"),
    ("/bad-gzip", "Content-Encoding: gzip on bytes that are not gzip"),
    ("/bad-chunk", "a chunk size that is not hexadecimal"),
    ("/short", "Content-Length: 1000, then 10 bytes and a close"),
    ("/two-lengths", "two differing Content-Length headers"),
    ("/heat", "the status line HEAT/1.1 200 OK"),
    ("/big-header", "one header of 500 kB"),
    ("/many-headers", "5000 headers"),
    ("/loop", "a redirect to itself"),
    ("/loop-a", "a redirect to /loop-b, which redirects back here"),
    ("/file", "a redirect to file:///etc/passwd"),
    ("/gopher", "a redirect to gopher://127.0.0.1:70/"),
    ("/close", "a small JSON answer, then a close without Connection: close"),
    ("/to-close", "a redirect to /close, then a close without Connection: close"),
    ("/once", "answers the first request on a connection after 100 ms; closes on the second unanswered"),
    (
        "/keep",
        "keeps the connection open, answers each /keep on it with the connection's number, closes on another path",
    ),
];

/// A running hostile server; stops with its runtime when dropped.
pub struct Hostile {
    addr: SocketAddr,
    _runtime: tokio::runtime::Runtime,
}

impl Hostile {
    /// Listens on 127.0.0.1 and a free port.
    pub fn start() -> Hostile {
        // Made here, not on the server's one thread, where it would stall the timed cases.
        bomb(&[Coding::Gzip]);
        bomb(&[Coding::Gzip, Coding::Brotli]);
        let (addr, runtime) = super::serve_loopback(|tcp| async move {
            _ = tokio::time::timeout(LIFETIME, serve(tcp)).await;
        });
        Hostile { addr, _runtime: runtime }
    }

    /// The URL of `path` on this server.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

/// Reads one request head and returns its path; `None` if the client hung up first.
async fn read_path(tcp: &mut TcpStream) -> Option<String> {
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = tcp.read(&mut buf).await.ok().filter(|&n| n > 0)?;
        head.extend_from_slice(&buf[..n]);
        if head.len() > 64 * 1024 {
            return None;
        }
    }
    let line = head.split(|&b| b == b'\r').next()?;
    let path = String::from_utf8_lossy(line).split(' ').nth(1)?.to_owned();
    Some(path)
}

fn bomb(codings: &'static [Coding]) -> &'static [u8] {
    static GZIP: OnceLock<Vec<u8>> = OnceLock::new();
    static CHAIN: OnceLock<Vec<u8>> = OnceLock::new();
    let cell = if codings.len() == 1 { &GZIP } else { &CHAIN };
    cell.get_or_init(|| compress(&vec![0u8; BOMB], codings).expect("compression in memory"))
}

fn redirect(location: &str) -> Vec<u8> {
    format!("HTTP/1.1 302 Found\r\nLocation: {location}\r\nContent-Length: 0\r\n\r\n").into_bytes()
}

fn with_length(head: &str, body: &[u8]) -> Vec<u8> {
    let mut out = format!("HTTP/1.1 200 OK\r\n{head}Content-Length: {}\r\n\r\n", body.len()).into_bytes();
    out.extend_from_slice(body);
    out
}

/// Answers one request as its path says, then hangs up (a case may hold the line first).
async fn serve(mut tcp: TcpStream) {
    // A drip must drip: no coalescing of small writes.
    _ = tcp.set_nodelay(true);
    let Some(path) = read_path(&mut tcp).await else { return };
    let reply: Vec<u8> = match path.as_str() {
        "/idle" => {
            // Wait for the client to give up; whatever it sends is ignored.
            let mut sink = [0u8; 1024];
            while matches!(tcp.read(&mut sink).await, Ok(n) if n > 0) {}
            return;
        }
        "/once" => {
            // The connection stays open after the answer, and a request sent on it later is read
            // and then dropped: to a client, a keep-alive connection gone stale under it.
            tokio::time::sleep(Duration::from_millis(100)).await;
            if tcp.write_all(&with_length("", b"{\"once\":true}")).await.is_ok() {
                _ = read_path(&mut tcp).await;
            }
            return;
        }
        "/keep" => {
            // Well-behaved keep-alive: every request on the connection gets an answer naming the
            // connection (numbered in the order they reach `/keep`) and how many it has carried.
            static CONNECTIONS: AtomicU64 = AtomicU64::new(0);
            let conn = CONNECTIONS.fetch_add(1, Ordering::Relaxed);
            for n in 1.. {
                let body = format!("{{\"conn\":{conn},\"n\":{n}}}");
                if tcp.write_all(&with_length("", body.as_bytes())).await.is_err() {
                    return;
                }
                // Any other path: dropped unanswered (a keep-alive connection gone stale).
                if read_path(&mut tcp).await.is_none_or(|next| next != "/keep") {
                    return;
                }
            }
            return;
        }
        "/drip" => {
            if tcp.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n").await.is_err() {
                return;
            }
            loop {
                tokio::time::sleep(Duration::from_millis(100)).await;
                if tcp.write_all(b"x").await.is_err() {
                    return;
                }
            }
        }
        "/endless" | "/flood" => {
            let pause = if path == "/endless" { Duration::from_millis(10) } else { Duration::ZERO };
            if tcp.write_all(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n").await.is_err() {
                return;
            }
            let chunk = format!("400\r\n{}\r\n", "x".repeat(1024));
            loop {
                if tcp.write_all(chunk.as_bytes()).await.is_err() {
                    return;
                }
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
            }
        }
        "/huge-length" => b"HTTP/1.1 200 OK\r\nContent-Length: 10000000000000\r\n\r\n{\"a\":".to_vec(),
        "/bomb" => with_length("Content-Encoding: gzip\r\n", bomb(&[Coding::Gzip])),
        "/bomb-chain" => with_length("Content-Encoding: gzip, br\r\n", bomb(&[Coding::Gzip, Coding::Brotli])),
        "/three-codings" => with_length("Content-Encoding: gzip, gzip, gzip\r\n", b"whatever"),
        "/bad-gzip" => with_length("Content-Encoding: gzip\r\n", b"this is not gzip at all"),
        "/bad-chunk" => {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n".to_vec()
        }
        "/short" => b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"partial\"".to_vec(),
        "/two-lengths" => b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}".to_vec(),
        "/heat" => b"HEAT/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}".to_vec(),
        "/big-header" => with_length(&format!("X-Big: {}\r\n", "a".repeat(500_000)), b"{}"),
        "/many-headers" => {
            let head: String = (0..5000).map(|n| format!("X-H{n}: {n}\r\n")).collect();
            with_length(&head, b"{}")
        }
        "/to-close" => redirect("/close"),
        "/loop" => redirect("/loop"),
        "/loop-a" => redirect("/loop-b"),
        "/loop-b" => redirect("/loop-a"),
        "/file" => redirect("file:///etc/passwd"),
        "/gopher" => redirect("gopher://127.0.0.1:70/"),
        // Keep-alive by default in HTTP/1.1, and then the server closes anyway: the client must
        // not count on this connection for its next request.
        "/close" => with_length("Content-Type: application/json\r\n", b"{\"closed\":true}"),
        _ => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n".to_vec(),
    };
    _ = tcp.write_all(&reply).await;
    _ = tcp.shutdown().await;
}
