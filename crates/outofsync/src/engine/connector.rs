//! Opening connections: `--resolve` overrides, DNS, TCP with a connect timeout, a proxy when one
//! is in the way (the `tunnel` module), TLS with ALPN.
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
use super::proxy::{Kind, Route};
use super::tunnel::{self, SocksTarget};

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
    /// The proxy did not open the way to the server.
    #[error("{message}")]
    Proxy { message: String },
}

/// A plain or TLS connection; TLS may run over another TLS connection (to an `https://` proxy).
pub(crate) enum Stream {
    Plain(TcpStream),
    Tls(Box<TlsStream<Stream>>),
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
    /// For an `https://` proxy: the same trust, speaking HTTP/1.1 (a `CONNECT` is HTTP/1.1).
    proxy_tls: TlsConnector,
}

impl Connector {
    pub fn new(resolve: &[Resolve], connect_timeout: Duration, tls: rustls::ClientConfig) -> Self {
        let overrides = resolve.iter().map(|r| ((r.host.clone(), r.port), r.addrs.clone())).collect();
        let mut proxy_tls = tls.clone();
        proxy_tls.alpn_protocols = vec![b"http/1.1".to_vec()];
        let (tls, proxy_tls) = (TlsConnector::from(Arc::new(tls)), TlsConnector::from(Arc::new(proxy_tls)));
        Self { inner: Arc::new(Inner { overrides, connect_timeout, tls, proxy_tls }) }
    }

    /// Opens a connection to `host` (as a URL writes it: an IPv6 address in brackets) and `port`,
    /// with TLS when `https`; through `proxy` when one is given: a tunnel, unless the connection
    /// is plain HTTP to an HTTP proxy that forwards it (`tunnel_http` asks for a tunnel all the
    /// same, for HTTP/2 with prior knowledge).
    pub async fn open(
        &self,
        host: &str,
        port: u16,
        https: bool,
        proxy: Option<&Route>,
        tunnel_http: bool,
    ) -> Result<Stream, ConnectError> {
        let after = self.inner.connect_timeout;
        let name =
            proxy.map_or_else(|| host.to_owned(), |p| format!("{host} through the proxy {}", p.name()));
        // The whole connection phase — DNS, TCP, the proxy and TLS — shares one connect timeout,
        // like curl's.
        tokio::time::timeout(after, self.inner.connect(host, port, https, proxy, tunnel_http))
            .await
            .map_err(|_| ConnectError::Timeout { host: name, after })?
    }
}

impl Inner {
    async fn connect(
        &self,
        host: &str,
        port: u16,
        https: bool,
        proxy: Option<&Route>,
        tunnel_http: bool,
    ) -> Result<Stream, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let stream = match proxy {
            None => Stream::Plain(self.tcp(host, port).await?),
            Some(route) => {
                let mut stream = self.to_proxy(route).await?;
                let refused = |message| ConnectError::Proxy { message };
                match route.kind {
                    Kind::Http { .. } if !https && !tunnel_http => return Ok(stream),
                    Kind::Http { .. } => {
                        tunnel::http_connect(
                            &mut stream,
                            &route.name(),
                            host,
                            port,
                            route.authorization.as_ref(),
                        )
                        .await
                        .map_err(refused)?;
                    }
                    Kind::Socks5 { remote_dns } => {
                        let resolved;
                        let target = if remote_dns || bare.parse::<IpAddr>().is_ok() {
                            bare.parse().map_or(SocksTarget::Name(bare), SocksTarget::Ip)
                        } else {
                            resolved = self.resolve(bare, port).await?;
                            SocksTarget::Ip(resolved[0].ip())
                        };
                        let credentials = route.credentials.as_ref().map(|(u, p)| (u.as_str(), p.as_str()));
                        tunnel::socks5(&mut stream, &route.name(), target, port, credentials)
                            .await
                            .map_err(refused)?;
                    }
                }
                stream
            }
        };
        if !https {
            return Ok(stream);
        }
        let name = ServerName::try_from(bare.to_owned())
            .map_err(|e| ConnectError::Tls { message: format!("{host} is not a name TLS can check: {e}") })?;
        let tls = self
            .tls
            .connect(name, stream)
            .await
            .map_err(|e| ConnectError::Tls { message: super::tls::explain(host, &e) })?;
        Ok(Stream::Tls(Box::new(tls)))
    }

    /// A TCP connection to `host:port`, resolved with the overrides first.
    async fn tcp(&self, host: &str, port: u16) -> Result<TcpStream, ConnectError> {
        let bare = host.trim_start_matches('[').trim_end_matches(']');
        let addrs = self.resolve(bare, port).await?;
        let tcp = connect_any(host, &addrs).await?;
        _ = tcp.set_nodelay(true);
        Ok(tcp)
    }

    /// A connection to the proxy itself, with TLS for an `https://` proxy.
    async fn to_proxy(&self, route: &Route) -> Result<Stream, ConnectError> {
        let named = |e: ConnectError| match e {
            ConnectError::Connect { addr, source, .. } => {
                ConnectError::Connect { host: format!("the proxy {}", route.name()), addr, source }
            }
            ConnectError::Dns { source, .. } => {
                ConnectError::Dns { host: format!("the proxy {}", route.host), source }
            }
            other => other,
        };
        let tcp = self.tcp(&route.host, route.port).await.map_err(named)?;
        if route.kind != (Kind::Http { tls: true }) {
            return Ok(Stream::Plain(tcp));
        }
        let bare = route.host.trim_start_matches('[').trim_end_matches(']');
        let name = ServerName::try_from(bare.to_owned()).map_err(|e| ConnectError::Tls {
            message: format!("the proxy {bare} is not a name TLS can check: {e}"),
        })?;
        let tls = self.proxy_tls.connect(name, Stream::Plain(tcp)).await.map_err(|e| ConnectError::Tls {
            message: format!("with the proxy: {}", super::tls::explain(&route.name(), &e)),
        })?;
        Ok(Stream::Tls(Box::new(tls)))
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
