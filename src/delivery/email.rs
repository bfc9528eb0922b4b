//! Email through lettre: SMTP (pooled; plain, STARTTLS or TLS; login), or .eml files.

use lettre::message::header::{HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls as SmtpTls, TlsParameters};
use lettre::transport::smtp::AsyncSmtpTransportBuilder;
use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use serde::Deserialize;
use std::sync::OnceLock;

use super::files::Folder;
use crate::notification::{Notification, Outcome};

/// How the SMTP connection is secured.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Tls {
    /// Plain SMTP (a relay on the same machine or network, or tests).
    None,
    /// Plain, upgraded with STARTTLS (port 587).
    #[default]
    Starttls,
    /// TLS from the first byte (port 465).
    Tls,
}

/// The `[email]` section: an SMTP server to send through.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct EmailConfig {
    pub host: String,
    pub port: Option<u16>,
    #[serde(default)]
    pub tls: Tls,
    pub username: Option<String>,
    pub password: Option<String>,
    /// The sender, e.g. `Rota <rota@example.com>`; its domain also ends every Message-ID.
    pub from: String,
    /// Connections kept open to the server.
    #[serde(default = "default_pool")]
    pub pool: u32,
    /// Longest wait for the server, in milliseconds.
    #[serde(default = "default_timeout")]
    pub timeout_ms: u64,
    /// PEM certificates to trust besides the public roots (a server behind a private CA).
    #[serde(default)]
    pub ca_file: Option<std::path::PathBuf>,
}

impl EmailConfig {
    /// Sending through `host` (STARTTLS on its default port, no login) as `from`; set the other
    /// fields as needed.
    pub fn new(host: impl Into<String>, from: impl Into<String>) -> Self {
        EmailConfig {
            host: host.into(),
            port: None,
            tls: Tls::default(),
            username: None,
            password: None,
            from: from.into(),
            pool: default_pool(),
            timeout_ms: default_timeout(),
            ca_file: None,
        }
    }
}

fn default_pool() -> u32 {
    4
}

fn default_timeout() -> u64 {
    10_000
}

pub(super) enum Sender {
    Smtp {
        builder: Box<AsyncSmtpTransportBuilder>,
        /// Built on the first send, so inside the deliverer's runtime: lettre's connection pool
        /// keeps a task on the runtime it is made in (and panics when made outside one).
        transport: OnceLock<AsyncSmtpTransport<Tokio1Executor>>,
        from: Mailbox,
        shown: String,
    },
    Files(Folder),
}

impl Sender {
    pub(super) fn smtp(c: &EmailConfig) -> Result<Sender, String> {
        let from: Mailbox =
            c.from.parse().map_err(|e| format!("email: `from` = `{}` is not an address: {e}", c.from))?;
        let builder = match c.tls {
            Tls::None => AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&c.host),
            Tls::Starttls => {
                AsyncSmtpTransport::<Tokio1Executor>::starttls_relay(&c.host).map_err(|e| format!("email: {e}"))?
            }
            Tls::Tls => AsyncSmtpTransport::<Tokio1Executor>::relay(&c.host).map_err(|e| format!("email: {e}"))?,
        };
        let builder = match (&c.ca_file, c.tls) {
            (Some(file), Tls::Starttls | Tls::Tls) => {
                let shown = file.display();
                let pem = std::fs::read(file).map_err(|e| format!("email: ca_file `{shown}`: {e}"))?;
                let ca = Certificate::from_pem(&pem).map_err(|e| format!("email: ca_file `{shown}`: {e}"))?;
                let params = TlsParameters::builder(c.host.clone())
                    .add_root_certificate(ca)
                    .build_rustls()
                    .map_err(|e| format!("email: {e}"))?;
                builder.tls(if c.tls == Tls::Tls { SmtpTls::Wrapper(params) } else { SmtpTls::Required(params) })
            }
            (Some(_), Tls::None) => return Err("email: `ca_file` needs `tls = \"starttls\"` or `\"tls\"`".into()),
            (None, _) => builder,
        };
        let mut builder = builder
            .pool_config(PoolConfig::new().max_size(c.pool.max(1)))
            .timeout(Some(std::time::Duration::from_millis(c.timeout_ms)));
        if let Some(port) = c.port {
            builder = builder.port(port);
        }
        match (&c.username, &c.password) {
            (Some(u), Some(p)) => builder = builder.credentials(Credentials::new(u.clone(), p.clone())),
            (None, None) => {}
            _ => return Err("email: give both `username` and `password`, or neither".into()),
        }
        let port = c.port.map_or("default".into(), |p| p.to_string());
        let shown = format!("smtp://{}:{port} (tls: {})", c.host, format!("{:?}", c.tls).to_lowercase());
        Ok(Sender::Smtp { builder: Box::new(builder), transport: OnceLock::new(), from, shown })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Sender::Smtp { shown, .. } => format!("email:    {shown}"),
            Sender::Files(f) => f.describe("email", "eml", "no [email] server configured"),
        }
    }

    pub(super) async fn send(&self, n: &Notification) -> Outcome {
        let from = match self {
            Sender::Smtp { from, .. } => from.clone(),
            Sender::Files(_) => "Rota <rota@localhost>".parse().expect("a valid address"),
        };
        let message = match message(n, &from) {
            Ok(m) => m,
            Err(error) => return Outcome::Permanent { error },
        };
        match self {
            Sender::Files(folder) => folder.write(n, "eml", &message.formatted()),
            Sender::Smtp { builder, transport, .. } => {
                match transport.get_or_init(|| (**builder).clone().build()).send(message).await {
                    Ok(response) => Outcome::Sent {
                        provider_id: response.message().next().map(str::to_string),
                        detail: format!("accepted by the SMTP server ({})", response.code()),
                    },
                    Err(e) if e.is_permanent() => Outcome::Permanent { error: format!("SMTP: {e}") },
                    // 4xx replies, timeouts, refused connections: the server may take it later.
                    Err(e) => Outcome::Transient { error: format!("SMTP: {e}"), retry_at: None },
                }
            }
        }
    }
}

/// The email for a notification, with a Message-ID made from its id: a resend after a crash
/// carries the same one, so the receiving side can tell it is the same message. MIME 1.0, the
/// HTML body with a plain-text alternative made from it, and every header line short enough
/// for any SMTP server, whatever the data (a caller name of a thousand letters and no space).
pub(super) fn message(n: &Notification, from: &Mailbox) -> Result<Message, String> {
    let to: Mailbox = n.address.parse().map_err(|e| format!("`{}` is not an email address: {e}", n.address))?;
    let domain = from.email.domain().to_string();
    let html = n.message.email.clone().unwrap_or_default();
    let mut message = Message::builder()
        .message_id(Some(format!("<rota.{}.{}@{domain}>", n.id, n.created.0)))
        .from(from.clone())
        .to(to)
        .subject(n.message.subject.clone())
        .multipart(MultiPart::alternative_plain_html(plain_text(&html), html))
        .map_err(|e| format!("cannot build the email: {e}"))?;
    if let Some(subject) = encoded_subject(&n.message.subject) {
        message.headers_mut().insert_raw(subject);
    }
    Ok(message)
}

/// A subject with a word too long to fold at a space, as RFC 2047 encoded words of at most 75
/// characters on lines of their own; `None` when lettre's own folding keeps every line short.
fn encoded_subject(subject: &str) -> Option<HeaderValue> {
    const WORD: usize = 60;
    if subject.split(' ').all(|w| w.len() <= WORD) {
        return None;
    }
    use base64::Engine;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in subject.chars() {
        // 40 bytes are 56 in base64: `=?utf-8?b?` and `?=` make 68.
        if chunk.len() + c.len_utf8() > 40 {
            words.push(format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(&chunk)));
            chunk.clear();
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(format!("=?utf-8?b?{}?=", base64::engine::general_purpose::STANDARD.encode(&chunk)));
    }
    let name = HeaderName::new_from_ascii_str("Subject");
    // Only base64 and the fixed encoded-word marks, folded: nothing of the subject can inject.
    Some(HeaderValue::dangerous_new_pre_encoded(name, subject.to_string(), words.join("\r\n ")))
}

/// The text of an HTML body for the plain-text part: tags dropped, paragraphs and line breaks
/// kept as lines, the entities the templates' escaping makes turned back.
pub(super) fn plain_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(open) = rest.find('<') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('>') else {
            out.push_str(&rest[open..]);
            rest = "";
            break;
        };
        let tag = rest[open + 1..open + close].trim_start_matches('/').to_ascii_lowercase();
        let name = tag.split(|c: char| c.is_whitespace() || c == '/').next().unwrap_or("");
        if matches!(name, "br" | "p" | "div" | "li" | "tr" | "h1" | "h2" | "h3" | "h4") && !out.ends_with('\n') {
            out.push('\n');
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let text = out
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#39;", "'")
        .replace("&#x2f;", "/")
        .replace("&nbsp;", " ")
        .replace("&amp;", "&");
    text.lines().map(str::trim).filter(|l| !l.is_empty()).collect::<Vec<_>>().join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::Engine;

    #[test]
    fn the_plain_text_part_keeps_lines_and_undoes_the_escaping() {
        let html = "<p>Hello &amp; welcome,</p><p>call <b>Kari</b> &lt;+47&gt; back&#x2f;now</p>x<br/>y";
        assert_eq!(plain_text(html), "Hello & welcome,\ncall Kari <+47> back/now\nx\ny");
    }

    #[test]
    fn a_subject_too_long_to_fold_becomes_short_encoded_words_that_decode_back() {
        assert!(encoded_subject("Missed call from Kari Nordmann").is_none(), "lettre folds ordinary subjects");
        let subject = format!("Missed: {}", "é".repeat(300));
        let value = encoded_subject(&subject).unwrap();
        let header = {
            let mut headers = lettre::message::header::Headers::new();
            headers.insert_raw(value);
            headers.to_string()
        };
        let folded: Vec<&str> = header.trim_end().split("\r\n").collect();
        assert!(folded.iter().all(|l| l.len() <= 78), "{folded:?}");
        let decoded: String = folded
            .iter()
            .map(|l| l.trim_start_matches("Subject:").trim())
            .map(|w| w.strip_prefix("=?utf-8?b?").and_then(|w| w.strip_suffix("?=")).unwrap())
            .map(|b| String::from_utf8(base64::engine::general_purpose::STANDARD.decode(b).unwrap()).unwrap())
            .collect();
        assert_eq!(decoded, subject);
    }
}
