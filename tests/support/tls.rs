//! A TLS server with a self-signed certificate, on 127.0.0.1:0, answering every request with a
//! small JSON document (for the `tls` error kind and `--cacert`/`--insecure`), or with a redirect
//! (for `--https-only`).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A running TLS server; stops with its runtime when dropped.
pub struct TlsServer {
    pub addr: SocketAddr,
    /// The server's certificate, PEM, in a file of its own.
    pub cert_file: PathBuf,
    _dir: tempfile::TempDir,
    _runtime: tokio::runtime::Runtime,
}

impl TlsServer {
    /// A server whose certificate names `names` (e.g. `localhost`, or another host entirely).
    pub fn start(names: &[&str]) -> TlsServer {
        let body = br#"{"tls":true}"#;
        let head = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        Self::answering(names, [head.as_bytes(), body].concat())
    }

    /// A server that answers every request with a 302 to `location`.
    pub fn redirecting(names: &[&str], location: &str) -> TlsServer {
        let head = format!(
            "HTTP/1.1 302 Found\r\nlocation: {location}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
        );
        Self::answering(names, head.into_bytes())
    }

    fn answering(names: &[&str], reply: Vec<u8>) -> TlsServer {
        let reply = Arc::new(reply);
        let key = rcgen::generate_simple_self_signed(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
            .expect("a certificate is generated");
        let dir = tempfile::tempdir().unwrap();
        let cert_file = dir.path().join("cert.pem");
        std::fs::write(&cert_file, key.cert.pem()).unwrap();
        let config =
            rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(
                    vec![key.cert.der().clone()],
                    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.signing_key.serialize_der())),
                )
                .unwrap();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let (addr, runtime) = super::serve_loopback(move |tcp| {
            let (acceptor, reply) = (acceptor.clone(), reply.clone());
            async move {
                let Ok(mut tls) = acceptor.accept(tcp).await else { return };
                let mut buf = vec![0; 8192];
                // One request per connection is all these tests need.
                let mut read = 0;
                while !buf[..read].windows(4).any(|w| w == b"\r\n\r\n") {
                    match tls.read(&mut buf[read..]).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => read += n,
                    }
                }
                _ = tls.write_all(&reply).await;
                _ = tls.shutdown().await;
            }
        });
        TlsServer { addr, cert_file, _dir: dir, _runtime: runtime }
    }

    /// `https://localhost:PORT/` (resolve `localhost` with `--resolve` to be independent of DNS).
    pub fn url(&self) -> String {
        format!("https://localhost:{}/", self.addr.port())
    }

    /// The `--resolve` argument mapping `localhost:PORT` to the server.
    pub fn resolve(&self) -> String {
        format!("localhost:{}:127.0.0.1", self.addr.port())
    }
}
