//! TLS set-up: rustls with the Mozilla roots (or the user's `--cacert`), ALPN, and the loud
//! `--insecure` escape hatch; and what a failed handshake is called in a record.
//!
//! A certificate given with `--cacert` is trusted as an authority, and also as itself: a plain
//! self-signed certificate (what `openssl req -x509` makes, marked as a CA) is accepted when the
//! server presents exactly that certificate and it names the host, as curl and Python accept it.
//! webpki alone refuses such a certificate as an end entity (`CaUsedAsEndEntity`).

use std::io;
use std::path::Path;
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

use super::config::BuildError;

/// A client configuration trusting `ca_file` (PEM) if given, else the built-in roots.
pub(crate) fn client_config(
    ca_file: Option<&Path>,
    insecure: bool,
    alpn: &[&[u8]],
) -> Result<ClientConfig, BuildError> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| BuildError::Tls(e.to_string()))?;
    let mut config = if insecure {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider)))
            .with_no_client_auth()
    } else if let Some(path) = ca_file {
        let pinned = read_pem(path)?;
        let mut roots = RootCertStore::empty();
        for cert in &pinned {
            roots.add(cert.clone()).map_err(|e| ca_error(path, e.to_string()))?;
        }
        let webpki = WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
            .build()
            .map_err(|e| ca_error(path, e.to_string()))?;
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PinnedOrSigned { webpki, pinned }))
            .with_no_client_auth()
    } else {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

fn ca_error(path: &Path, why: String) -> BuildError {
    BuildError::CaFile { path: path.to_owned(), why }
}

/// The certificates of a PEM file, at least one.
fn read_pem(path: &Path) -> Result<Vec<CertificateDer<'static>>, BuildError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| ca_error(path, e.to_string()))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| ca_error(path, e.to_string()))?;
    if certs.is_empty() {
        return Err(ca_error(path, "it holds no PEM certificate".into()));
    }
    Ok(certs)
}

/// `--cacert`: a chain to one of the file's certificates, as webpki checks it; or, where webpki
/// refuses only because the certificate is not signed by one of them as an end entity should
/// be, exactly one of the file's certificates, valid for the name.
#[derive(Debug)]
struct PinnedOrSigned {
    webpki: Arc<WebPkiServerVerifier>,
    pinned: Vec<CertificateDer<'static>>,
}

impl ServerCertVerifier for PinnedOrSigned {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let refused = match self.webpki.verify_server_cert(
            end_entity,
            intermediates,
            server_name,
            ocsp_response,
            now,
        ) {
            Ok(verified) => return Ok(verified),
            Err(e) => e,
        };
        // webpki checks the validity period before the CA flag, so an `Other` error here (its
        // `CaUsedAsEndEntity`) comes from a certificate within its dates. Expiry, a wrong name
        // and the rest keep their own errors.
        let pinned = self.pinned.iter().any(|cert| cert.as_ref() == end_entity.as_ref());
        match refused {
            rustls::Error::InvalidCertificate(
                CertificateError::Other(_) | CertificateError::UnknownIssuer,
            ) if pinned => {
                let cert = rustls::server::ParsedCertificate::try_from(end_entity)?;
                rustls::client::verify_server_name(&cert, server_name)?;
                Ok(ServerCertVerified::assertion())
            }
            other => Err(other),
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.webpki.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.webpki.supported_verify_schemes()
    }
}

/// A failed handshake with `host`, as a sentence that names the cause and what to do about it.
pub(crate) fn explain(host: &str, e: &io::Error) -> String {
    use rustls::{AlertDescription as Alert, Error as Tls, InvalidMessage};
    let Some(tls) = e.get_ref().and_then(|inner| inner.downcast_ref::<Tls>()) else {
        return format!("TLS handshake with {host} failed: {e}");
    };
    let untrusted = "pass the certificate of the authority that signed it (or the certificate itself) with \
                     --cacert FILE, or use -k/--insecure to skip verification (unsafe)";
    match tls {
        Tls::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => {
                format!(
                    "the certificate of {host} is not signed by an authority this client trusts: {untrusted}"
                )
            }
            CertificateError::Other(other) if other.to_string().contains("CaUsedAsEndEntity") => {
                format!("the certificate of {host} is a CA certificate used as the server's own: {untrusted}")
            }
            CertificateError::NotValidForName => {
                format!("the certificate of {host} is not valid for that name: connect by a name it holds")
            }
            CertificateError::NotValidForNameContext { presented, .. } => format!(
                "the certificate of {host} is not valid for that name; it is for {}: connect by one of those \
                 (--resolve NAME:PORT:ADDR helps)",
                presented.join(", ")
            ),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                format!(
                    "the certificate of {host} has expired: the server must renew it (or -k/--insecure, unsafe)"
                )
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => format!(
                "the certificate of {host} is not valid yet: check this machine's clock (or -k/--insecure, unsafe)"
            ),
            CertificateError::Revoked => format!("the certificate of {host} has been revoked"),
            other => format!("the certificate of {host} was refused: {other}"),
        },
        // A plain-HTTP server answers the ClientHello with `HTTP/1.1 400 …`, which is no TLS record.
        Tls::InvalidMessage(InvalidMessage::InvalidContentType)
        | Tls::InvalidMessage(InvalidMessage::UnknownProtocolVersion) => {
            format!("{host} did not answer in TLS; the port seems to speak plain HTTP: use http:// for it")
        }
        Tls::AlertReceived(
            Alert::HandshakeFailure | Alert::ProtocolVersion | Alert::InsufficientSecurity,
        ) => {
            format!(
                "{host} refused the TLS handshake: it shares no TLS version or cipher suite with this client"
            )
        }
        Tls::AlertReceived(Alert::UnrecognisedName) => {
            format!("{host} does not serve that name over TLS (unrecognised_name)")
        }
        Tls::AlertReceived(Alert::NoApplicationProtocol) => format!(
            "{host} speaks none of the offered protocols (ALPN): try --http1-only or without --http2-prior-knowledge"
        ),
        Tls::AlertReceived(alert) => format!("{host} ended the TLS handshake with the alert {alert:?}"),
        Tls::NoCertificatesPresented => format!("{host} presented no certificate"),
        other => format!("TLS handshake with {host} failed: {other}"),
    }
}

/// `--insecure`: any certificate is accepted, but handshake signatures are still checked, so the
/// connection is encrypted — just not authenticated.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
