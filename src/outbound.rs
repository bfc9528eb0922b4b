//! HTTP clients for rota's outbound calls (SMS providers, the `webhook` channel, event
//! webhooks): `http://` or `https://`, trusting the public web PKI (Mozilla's roots, built in)
//! and, when an endpoint names one, a private CA as well.
//!
//! rota turns on reqwest's `rustls-no-provider` feature and hands every client its own rustls
//! configuration (ring), installing nothing process-wide. A program that embeds rota and makes
//! reqwest clients of its own with `Client::new()` shares that feature: it must enable a
//! reqwest TLS feature itself, install a rustls provider, or make them with [`client`].

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Client;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;

/// A client for calling `url` (which must be `http://` or `https://`); see [`client`].
pub fn client_for(url: &str, timeout: Duration, ca_file: Option<&Path>) -> Result<Client, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err(format!("`{url}` must start with http:// or https://"));
    }
    client(timeout, ca_file)
}

/// A client with a per-request `timeout`, also trusting the PEM certificates in `ca_file` (a
/// private CA, or a self-signed receiver).
pub fn client(timeout: Duration, ca_file: Option<&Path>) -> Result<Client, String> {
    let mut roots = rustls::RootCertStore { roots: webpki_roots::TLS_SERVER_ROOTS.to_vec() };
    if let Some(path) = ca_file {
        let shown = path.display();
        let certs = CertificateDer::pem_file_iter(path).map_err(|e| format!("ca_file `{shown}`: {e}"))?;
        let mut added = 0;
        for cert in certs {
            let cert = cert.map_err(|e| format!("ca_file `{shown}`: {e}"))?;
            roots.add(cert).map_err(|e| format!("ca_file `{shown}`: {e}"))?;
            added += 1;
        }
        if added == 0 {
            return Err(format!("ca_file `{shown}` holds no PEM certificate"));
        }
    }
    // The provider is given here rather than installed process-wide, so an embedding
    // application's own rustls setup is left alone.
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Client::builder()
        .timeout(timeout)
        .tls_backend_preconfigured(tls)
        .build()
        .map_err(|e| format!("cannot make an HTTP client: {e}"))
}

/// An error with its causes, which say what went wrong (reqwest's own message only says
/// that sending failed): `error sending request ...: ...: invalid peer certificate: UnknownIssuer`.
pub fn causes(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}
