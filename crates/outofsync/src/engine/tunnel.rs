//! Through a proxy to the server: an HTTP proxy's `CONNECT` tunnel (RFC 9110 §9.3.6), and the
//! SOCKS5 handshake (RFC 1928), with a user and password when the proxy asks (RFC 1929).
//!
//! Both run once per connection, on the stream to the proxy, before any TLS with the server;
//! each failure is a sentence that names the proxy (never its credentials) and the cause.

use std::net::IpAddr;

use http::HeaderValue;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The largest `CONNECT` response head read before the proxy is given up on.
const MAX_HEAD: usize = 16 * 1024;

/// Asks an HTTP proxy, on `stream`, for a tunnel to `host:port`.
///
/// The head is read a byte at a time: what follows it on the stream is the server's, and must
/// be left for TLS to read.
pub(crate) async fn http_connect<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &str,
    host: &str,
    port: u16,
    authorization: Option<&HeaderValue>,
) -> Result<(), String> {
    let mut request = format!("CONNECT {host}:{port} HTTP/1.1\r\nHost: {host}:{port}\r\n").into_bytes();
    if let Some(value) = authorization {
        request.extend_from_slice(b"Proxy-Authorization: ");
        request.extend_from_slice(value.as_bytes());
        request.extend_from_slice(b"\r\n");
    }
    request.extend_from_slice(b"\r\n");
    let io =
        |e: std::io::Error| format!("the proxy {proxy} failed while opening a tunnel to {host}:{port}: {e}");
    stream.write_all(&request).await.map_err(io)?;
    let mut head = Vec::with_capacity(256);
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() >= MAX_HEAD {
            return Err(format!("the proxy {proxy} answered CONNECT with a head over {MAX_HEAD} bytes"));
        }
        let byte = stream.read_u8().await.map_err(|e| {
            if e.kind() == std::io::ErrorKind::UnexpectedEof {
                format!(
                    "the proxy {proxy} closed the connection instead of opening a tunnel to {host}:{port}"
                )
            } else {
                io(e)
            }
        })?;
        head.push(byte);
    }
    let status_line =
        String::from_utf8_lossy(head.split(|&b| b == b'\r').next().unwrap_or_default()).into_owned();
    let status = status_line.split_whitespace().nth(1).and_then(|s| s.parse::<u16>().ok());
    match status {
        Some(200..=299) => Ok(()),
        Some(407) => Err(format!(
            "the proxy {proxy} wants credentials for the tunnel to {host}:{port} ({status_line}): \
             give them in the proxy URL, http://USER:PASSWORD@{proxy}"
        )),
        Some(_) => Err(format!("the proxy {proxy} refused the tunnel to {host}:{port}: {status_line}")),
        None => Err(format!("the proxy {proxy} answered CONNECT with no HTTP status: {status_line:?}")),
    }
}

/// Where a SOCKS5 proxy is asked to connect.
pub(crate) enum SocksTarget<'a> {
    /// A name the proxy resolves (`socks5h://`).
    Name(&'a str),
    /// An address resolved here (`socks5://`).
    Ip(IpAddr),
}

/// Runs the SOCKS5 handshake on `stream` for a connection to `target:port`.
pub(crate) async fn socks5<S: AsyncRead + AsyncWrite + Unpin>(
    stream: &mut S,
    proxy: &str,
    target: SocksTarget<'_>,
    port: u16,
    credentials: Option<(&str, &str)>,
) -> Result<(), String> {
    let io = |e: std::io::Error| format!("the SOCKS5 proxy {proxy} failed during its handshake: {e}");
    // Greeting: no authentication, and user/password when we have them.
    let greeting: &[u8] = if credentials.is_some() { &[5, 2, 0, 2] } else { &[5, 1, 0] };
    stream.write_all(greeting).await.map_err(io)?;
    let mut reply = [0u8; 2];
    stream.read_exact(&mut reply).await.map_err(io)?;
    if reply[0] != 5 {
        return Err(format!("{proxy} does not speak SOCKS5 (it answered version {})", reply[0]));
    }
    match (reply[1], credentials) {
        (0, _) => {}
        (2, Some((user, password))) => {
            let (user, password) = (user.as_bytes(), password.as_bytes());
            if user.len() > 255 || password.len() > 255 {
                return Err(format!("the SOCKS5 user or password for {proxy} is over 255 bytes"));
            }
            let mut auth = vec![1, user.len() as u8];
            auth.extend_from_slice(user);
            auth.push(password.len() as u8);
            auth.extend_from_slice(password);
            stream.write_all(&auth).await.map_err(io)?;
            stream.read_exact(&mut reply).await.map_err(io)?;
            if reply[1] != 0 {
                return Err(format!("the SOCKS5 proxy {proxy} refused the user and password"));
            }
        }
        (2, None) => {
            return Err(format!(
                "the SOCKS5 proxy {proxy} wants a user and password: give them in the proxy URL, \
                 socks5://USER:PASSWORD@{proxy}"
            ));
        }
        _ => return Err(format!("the SOCKS5 proxy {proxy} accepts none of our authentication methods")),
    }
    let mut request = vec![5, 1, 0];
    match target {
        SocksTarget::Ip(IpAddr::V4(ip)) => {
            request.push(1);
            request.extend_from_slice(&ip.octets());
        }
        SocksTarget::Ip(IpAddr::V6(ip)) => {
            request.push(4);
            request.extend_from_slice(&ip.octets());
        }
        SocksTarget::Name(name) => {
            let name = name.as_bytes();
            if name.len() > 255 {
                return Err(format!("the host name is too long for SOCKS5 ({} bytes)", name.len()));
            }
            request.push(3);
            request.push(name.len() as u8);
            request.extend_from_slice(name);
        }
    }
    request.extend_from_slice(&port.to_be_bytes());
    stream.write_all(&request).await.map_err(io)?;
    let mut head = [0u8; 4];
    stream.read_exact(&mut head).await.map_err(io)?;
    if head[1] != 0 {
        return Err(format!("the SOCKS5 proxy {proxy} could not connect: {}", socks_reply(head[1])));
    }
    // The address the proxy bound, which we do not need, then the port.
    let skip = match head[3] {
        1 => 4,
        4 => 16,
        3 => usize::from(stream.read_u8().await.map_err(io)?),
        other => return Err(format!("the SOCKS5 proxy {proxy} answered an unknown address type {other}")),
    };
    let mut rest = vec![0u8; skip + 2];
    stream.read_exact(&mut rest).await.map_err(io)?;
    Ok(())
}

/// SOCKS5's reply codes (RFC 1928 §6).
fn socks_reply(code: u8) -> &'static str {
    match code {
        1 => "general failure",
        2 => "not allowed by its rules",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        7 => "command not supported",
        8 => "address type not supported",
        _ => "an unknown reply",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proxy that reads the request, answers `reply`, and then echoes nothing more.
    async fn scripted(reply: &'static [u8]) -> (tokio::io::DuplexStream, tokio::task::JoinHandle<Vec<u8>>) {
        let (client, mut server) = tokio::io::duplex(4096);
        let task = tokio::spawn(async move {
            let mut seen = vec![0u8; 256];
            let n = server.read(&mut seen).await.unwrap();
            server.write_all(reply).await.unwrap();
            seen.truncate(n);
            seen
        });
        (client, task)
    }

    #[tokio::test]
    async fn connect_reads_the_head_and_no_more_and_explains_a_refusal() {
        let (mut client, task) = scripted(b"HTTP/1.1 200 Connection established\r\n\r\nTLS").await;
        let auth = HeaderValue::from_static("Basic dTpw");
        http_connect(&mut client, "p:3128", "a.test", 443, Some(&auth)).await.unwrap();
        let sent = String::from_utf8(task.await.unwrap()).unwrap();
        assert!(sent.starts_with("CONNECT a.test:443 HTTP/1.1\r\nHost: a.test:443\r\n"), "{sent}");
        assert!(sent.contains("Proxy-Authorization: Basic dTpw\r\n"));
        let mut after = [0u8; 3];
        client.read_exact(&mut after).await.unwrap();
        assert_eq!(&after, b"TLS", "what follows the head is left for TLS");

        let (mut client, _task) = scripted(b"HTTP/1.1 407 Proxy Authentication Required\r\n\r\n").await;
        let e = http_connect(&mut client, "p:3128", "a.test", 443, None).await.unwrap_err();
        assert!(e.contains("407") && e.contains("USER:PASSWORD"), "{e}");
        let (mut client, _task) = scripted(b"HTTP/1.1 403 Forbidden\r\n\r\n").await;
        let e = http_connect(&mut client, "p:3128", "a.test", 25, None).await.unwrap_err();
        assert!(e.contains("refused the tunnel to a.test:25: HTTP/1.1 403 Forbidden"), "{e}");
    }
}
