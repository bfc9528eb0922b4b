//! HTTP clients for rota's outbound calls (SMS providers, the `webhook` channel, event
//! webhooks, a standby's requests forwarded to the owner): `http://` or `https://`, trusting
//! the public web PKI (Mozilla's roots, built in) and, when an endpoint names one, a private CA
//! as well.
//!
//! rota turns on reqwest's `rustls-no-provider` feature and hands every client its own rustls
//! configuration (ring), installing nothing process-wide. A program that embeds rota and makes
//! reqwest clients of its own with `Client::new()` shares that feature: it must enable a
//! reqwest TLS feature itself, install a rustls provider, or make them with [`client`].

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// Why an HTTP client could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    #[error("`{0}` must start with http:// or https://")]
    Scheme(String),
    /// The private CA file cannot be read or holds something that is not a certificate.
    #[error("ca_file `{}`: {source}", path.display())]
    CaFile { path: PathBuf, source: Box<dyn std::error::Error + Send + Sync> },
    #[error("ca_file `{}` holds no PEM certificate", .0.display())]
    NoCertificate(PathBuf),
    #[error("TLS: {0}")]
    Tls(#[source] rustls::Error),
    #[error("cannot make an HTTP client: {0}")]
    Build(#[source] reqwest::Error),
}

impl From<ClientError> for String {
    fn from(e: ClientError) -> String {
        crate::error::causes(&e)
    }
}

/// A client for calling `url` (which must be `http://` or `https://`); see [`client`].
pub fn client_for(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Client, ClientError> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(ClientError::Scheme(url.to_string()));
    }
    client(timeout, ca_file)
}

/// A client with a per-request `timeout`, also trusting the PEM certificates in `ca_file` (a
/// private CA, or a self-signed receiver).
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<Client, ClientError> {
    builder(ca_file)?.timeout(timeout).build().map_err(ClientError::Build)
}

fn builder(ca_file: Option<&Path>) -> Result<reqwest::ClientBuilder, ClientError> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let bad = |e: Box<dyn std::error::Error + Send + Sync>| ClientError::CaFile { path: path.into(), source: e };
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| bad(e.into()))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| bad(e.into()))?;
            roots.add(cert).map_err(|e| bad(e.into()))?;
            added += 1;
        }
        if added == 0 {
            return Err(ClientError::NoCertificate(path.into()));
        }
    }
    // The provider is given here rather than installed process-wide, so an embedding
    // application's own rustls setup is left alone.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(ClientError::Tls)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Client::builder().tls_backend_preconfigured(tls))
}

/// Passes requests on to another server as they came and its answers back as they go, body
/// streamed (an event stream included): how a node standing by serves the owner's API.
#[derive(Clone)]
pub struct Relay(Client);

/// An answer [`Relay::send`] got: its status and headers, and its body as it arrives.
pub struct Relayed {
    pub status: reqwest::StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: std::pin::Pin<Box<dyn futures_util::Stream<Item = std::io::Result<bytes::Bytes>> + Send>>,
}

impl Relay {
    /// A relay giving up on a server that does not connect within `connect`, or goes `quiet`
    /// for that long in the middle of an answer (an event stream sends keep-alives meanwhile).
    pub fn new(connect: Duration, quiet: Duration) -> Result<Relay, ClientError> {
        Ok(Relay(builder(None)?.connect_timeout(connect).read_timeout(quiet).build().map_err(ClientError::Build)?))
    }

    /// Sends a request to `url` (`http://` or `https://`); the caller leaves out the headers of
    /// its own hop (`Connection`, `Host`, ...).
    pub async fn send(
        &self,
        method: reqwest::Method,
        url: &str,
        headers: reqwest::header::HeaderMap,
        body: bytes::Bytes,
    ) -> Result<Relayed, String> {
        use futures_util::TryStreamExt;
        let res = self.0.request(method, url).headers(headers).body(body).send().await;
        let res = res.map_err(|e| crate::error::causes(&e))?;
        let (status, headers) = (res.status(), res.headers().clone());
        let body = res.bytes_stream().map_err(std::io::Error::other);
        Ok(Relayed { status, headers, body: Box::pin(body) })
    }
}
