//! Opening connections: `--resolve` overrides, DNS, TCP with a connect timeout, TLS with ALPN.
//!
//! Our own (rather than hyper-util's `HttpConnector` plus a TLS wrapper) so that every failure
//! comes back as a typed [`ConnectError`] — DNS, refused, timed out or TLS — which is what lets a
//! record say precisely why a request failed.

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::client::TlsStream;

use super::config::Resolve;

/// Why a connection could not be opened.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ConnectError {
    /// The name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Dns { host: String, source: io::Error },
    /// Every address refused or was unreachable.
    #[error("cannot connect to {host} ({addr}): {source}")]
    Connect { host: String, addr: SocketAddr, source: io::Error },
    /// The connection (TCP and TLS) took longer than the connect timeout.
    #[error("connecting to {host} took longer than {after:?}")]
    Timeout { host: String, after: Duration },
    /// The TLS handshake failed; the message names the cause and the remedy.
    #[error("{message}")]
    Tls { message: String },
}

/// A plain or TLS connection.
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether TLS negotiated HTTP/2 (ALPN `h2`).
    pub fn is_h2(&self) -> bool {
        matches!(self, Stream::Tls(tls) if tls.get_ref().1.alpn_protocol() == Some(b"h2"))
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            Stream::Tls(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Stream::Plain(s) => s.is_write_vectored(),
            Stream::Tls(s) => s.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Opens connections for the engine's pool.
#[derive(Clone)]
pub(crate) struct Connector {
    inner: Arc<Inner>,
}

struct Inner {
    overrides: HashMap<(String, u16), Vec<IpAddr>>,
    connect_timeout: Duration,
    tls: TlsConnector,
}

impl Connector {
    pub fn new(resolve: &[Resolve], connect_timeout: Duration, tls: rustls::ClientConfig) -> Self {
        let overrides = resolve.iter().map(|r| ((r.host.clone(), r.port), r.addrs.clone())).collect();
        let tls = TlsConnector::from(Arc::new(tls));
        Self { inner: Arc::new(Inner { overrides, connect_timeout, tls }) }
    }

    /// Opens a connection to `host` (as a URL writes it: an IPv6 address in brackets) and `port`,
    /// with TLS when `https`.
    pub async fn open(&self, host: &str, port: u16, https: bool) -> Result<Stream, ConnectError> {
        self.inner.connect(host, port, https).await
    }
}

impl Inner {
    async fn connect(&self, host: &str, port: u16, https: bool) -> Result<Stream, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let after = self.connect_timeout;
        let timeout = || ConnectError::Timeout { host: host.to_owned(), after };
        // The whole connection phase — DNS, TCP and TLS — shares one connect timeout, like curl's.
        tokio::time::timeout(after, async {
            let addrs = self.resolve(bare, port).await?;
            let tcp = connect_any(host, &addrs).await?;
            _ = tcp.set_nodelay(true);
            if !https {
                return Ok(Stream::Plain(tcp));
            }
            let name = ServerName::try_from(bare.to_owned()).map_err(|e| ConnectError::Tls {
                message: format!("{host} is not a name TLS can check: {e}"),
            })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectError::Tls { message: super::tls::explain(host, &e) })?;
            Ok(Stream::Tls(Box::new(tls)))
        })
        .await
        .map_err(|_| timeout())?
    }

    async fn resolve(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, ConnectError> {
        if let Some(addrs) = self.overrides.get(&(host.to_ascii_lowercase(), port)) {
            return Ok(addrs.iter().map(|&ip| SocketAddr::new(ip, port)).collect());
        }
        if let Ok(ip) = host.parse::<IpAddr>() {
            return Ok(vec![SocketAddr::new(ip, port)]);
        }
        let dns = |source| ConnectError::Dns { host: host.to_owned(), source };
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await.map_err(dns)?.collect();
        if addrs.is_empty() {
            return Err(dns(io::Error::new(io::ErrorKind::NotFound, "no addresses")));
        }
        Ok(addrs)
    }
}

/// Tries each address in turn; the error names the last one tried.
async fn connect_any(host: &str, addrs: &[SocketAddr]) -> Result<TcpStream, ConnectError> {
    let mut last = None;
    for &addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(tcp) => return Ok(tcp),
            Err(source) => last = Some(ConnectError::Connect { host: host.to_owned(), addr, source }),
        }
    }
    Err(last.expect("resolve returns at least one address"))
}
