//! Channels over HTTP: SMS through a Twilio-compatible API or a generic JSON one, and
//! notifications as JSON to a webhook. Without a configuration, JSON files in the folder.
//!
//! A 2xx answer is success (for the generic JSON channel, only if the body says so too); 429
//! and 5xx answers, timeouts and refused connections are worth retrying (a 429's Retry-After is
//! honoured); any other answer is permanent.

use std::path::PathBuf;
use std::time::Duration as StdDuration;

use reqwest::{Client, Response, StatusCode};
use serde::Deserialize;
use serde_json::{json, Value};

use super::files::Folder;
use crate::clock::{Clock, SystemClock};
use crate::notification::{Notification, Outcome};
use crate::time::{Duration, Timestamp};

/// The `[sms]` section.
#[derive(Clone, Debug, Deserialize)]
#[serde(tag = "provider", rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum SmsConfig {
    /// `POST {url}/2010-04-01/Accounts/{account_sid}/Messages.json`, form fields To, From, Body,
    /// Basic auth with the account sid and auth token.
    Twilio {
        url: String,
        account_sid: String,
        auth_token: String,
        from: String,
        timeout_ms: Option<u64>,
        /// PEM certificates to trust besides the public roots (a private CA).
        ca_file: Option<PathBuf>,
    },
    /// `POST {url}` with `{"to", "from", "body", "notification"}`; success is a 2xx answer whose
    /// JSON has `success_value` at `success_path` (dot-separated, numbers index arrays), when set.
    Json {
        url: String,
        from: Option<String>,
        /// Sent as `Authorization: Bearer ...`.
        token: Option<String>,
        success_path: Option<String>,
        success_value: Option<Value>,
        timeout_ms: Option<u64>,
        ca_file: Option<PathBuf>,
    },
}

impl SmsConfig {
    pub fn ca_file_mut(&mut self) -> &mut Option<PathBuf> {
        match self {
            SmsConfig::Twilio { ca_file, .. } | SmsConfig::Json { ca_file, .. } => ca_file,
        }
    }
}

/// The `[notify_webhook]` section: where the `webhook` channel posts notifications.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct WebhookChannelConfig {
    pub url: String,
    /// When set, requests carry `X-Rota-Signature` as event webhooks do.
    pub secret: Option<String>,
    pub timeout_ms: Option<u64>,
    pub ca_file: Option<PathBuf>,
}

impl WebhookChannelConfig {
    /// Posting notifications to `url`, unsigned, with the default timeout.
    pub fn new(url: impl Into<String>) -> Self {
        WebhookChannelConfig { url: url.into(), secret: None, timeout_ms: None, ca_file: None }
    }
}

pub(super) enum Sms {
    Twilio {
        client: Client,
        url: String,
        sid: String,
        token: String,
        from: String,
    },
    Json {
        client: Client,
        url: String,
        from: Option<String>,
        token: Option<String>,
        path: Option<String>,
        value: Option<Value>,
    },
    Files(Folder),
}

pub(super) enum Webhook {
    Post { client: Client, url: String, secret: Option<String> },
    Files(Folder),
}

fn client(url: &str, timeout_ms: Option<u64>, ca_file: &Option<PathBuf>) -> Result<Client, String> {
    let timeout = StdDuration::from_millis(timeout_ms.unwrap_or(super::DEFAULT_TIMEOUT_MS));
    Ok(crate::outbound::client_for(url, timeout, ca_file.as_deref())?)
}

impl Sms {
    pub(super) fn new(c: &SmsConfig) -> Result<Sms, String> {
        Ok(match c.clone() {
            SmsConfig::Twilio { url, account_sid, auth_token, from, timeout_ms, ca_file } => {
                let client = client(&url, timeout_ms, &ca_file).map_err(|e| format!("sms: {e}"))?;
                let url = format!("{}/2010-04-01/Accounts/{account_sid}/Messages.json", url.trim_end_matches('/'));
                Sms::Twilio { client, url, sid: account_sid, token: auth_token, from }
            }
            SmsConfig::Json { url, from, token, success_path, success_value, timeout_ms, ca_file } => Sms::Json {
                client: client(&url, timeout_ms, &ca_file).map_err(|e| format!("sms: {e}"))?,
                url,
                from,
                token,
                path: success_path,
                value: success_value,
            },
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Sms::Twilio { url, .. } => format!("sms:      Twilio API at {url}"),
            Sms::Json { url, .. } => format!("sms:      JSON API at {url}"),
            Sms::Files(f) => f.describe("sms", "json", "no [sms] provider configured"),
        }
    }

    pub(super) async fn send(&self, n: &Notification) -> Outcome {
        let Some(sms) = &n.message.sms else {
            return Outcome::Permanent { error: "the template has no SMS body".into() };
        };
        match self {
            Sms::Files(folder) => {
                let body = json!({ "to": n.address, "body": sms.body, "length": sms.length, "segments": sms.segments,
                                   "encoding": sms.encoding, "truncated": sms.truncated, "notification": n.id });
                folder.write(n, "json", serde_json::to_string_pretty(&body).unwrap_or_default().as_bytes())
            }
            Sms::Twilio { client, url, sid, token, from } => {
                let form = [("To", n.address.as_str()), ("From", from.as_str()), ("Body", sms.body.as_str())];
                let sent = client.post(url).basic_auth(sid, Some(token)).form(&form).send().await;
                judge(sent, |body| body.get("sid").and_then(Value::as_str).map(str::to_string).ok_or(None)).await
            }
            Sms::Json { client, url, from, token, path, value } => {
                let payload = json!({ "to": n.address, "from": from, "body": sms.body, "notification": n.id });
                let mut request = client.post(url).header("content-type", "application/json").body(payload.to_string());
                if let Some(t) = token {
                    request = request.bearer_auth(t);
                }
                judge(request.send().await, |body| {
                    let id = ["id", "message_id", "sid"]
                        .iter()
                        .find_map(|k| body.get(*k))
                        .map(|v| v.to_string().trim_matches('"').to_string());
                    match (path, value) {
                        (Some(p), Some(want)) => {
                            let got = lookup(body, p);
                            if got == Some(want) {
                                Ok(id.unwrap_or_default())
                            } else {
                                Err(Some(format!(
                                    "the provider answered {} at `{p}` (success is {want})",
                                    got.map_or("nothing".into(), |v| v.to_string())
                                )))
                            }
                        }
                        _ => Ok(id.unwrap_or_default()),
                    }
                })
                .await
            }
        }
    }
}

impl Webhook {
    pub(super) fn new(c: &WebhookChannelConfig) -> Result<Webhook, String> {
        Ok(Webhook::Post {
            client: client(&c.url, c.timeout_ms, &c.ca_file).map_err(|e| format!("notify_webhook: {e}"))?,
            url: c.url.clone(),
            secret: c.secret.clone(),
        })
    }

    pub(super) fn describe(&self) -> String {
        match self {
            Webhook::Post { url, .. } => format!("webhook:  POST {url}"),
            Webhook::Files(f) => f.describe("webhook", "json", "no [notify_webhook] configured"),
        }
    }

    pub(super) async fn send(&self, n: &Notification) -> Outcome {
        let body = serde_json::to_string(n).unwrap_or_default();
        match self {
            Webhook::Files(folder) => folder.write(n, "json", body.as_bytes()),
            Webhook::Post { client, url, secret } => {
                let mut request = client
                    .post(url)
                    .header("content-type", "application/json")
                    .header("x-rota-notification", n.id.to_string());
                if let Some(secret) = secret {
                    request = request.header(
                        "x-rota-signature",
                        crate::webhook::signature(secret, SystemClock.now().0 / 1000, &body),
                    );
                }
                judge(request.body(body).send().await, |_| Ok(String::new())).await
            }
        }
    }
}

/// Turns an HTTP answer into an outcome. `accept` reads a 2xx answer's JSON body: the provider's
/// message id, or why the body says it failed (`None`: unreadable).
async fn judge(
    sent: Result<Response, reqwest::Error>,
    accept: impl FnOnce(&Value) -> Result<String, Option<String>>,
) -> Outcome {
    let response = match sent {
        Ok(r) => r,
        Err(e) => {
            return Outcome::Transient { error: format!("no answer: {}", crate::error::causes(&e)), retry_at: None }
        }
    };
    let status = response.status();
    let retry_at = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    if status.is_success() {
        return match accept(&body) {
            Ok(id) => Outcome::Sent {
                provider_id: (!id.is_empty()).then_some(id),
                detail: format!("the provider answered {status}"),
            },
            Err(Some(why)) => Outcome::Permanent { error: why },
            Err(None) => Outcome::Sent { provider_id: None, detail: format!("the provider answered {status}") },
        };
    }
    let said = body.get("message").and_then(Value::as_str).map(|m| format!(": {m}")).unwrap_or_default();
    let error = format!("the provider answered {status}{said}");
    if status == StatusCode::TOO_MANY_REQUESTS || status.is_server_error() || status == StatusCode::REQUEST_TIMEOUT {
        Outcome::Transient { error, retry_at }
    } else {
        Outcome::Permanent { error }
    }
}

/// A Retry-After header (seconds, or an HTTP date) as an instant.
fn retry_after(response: &Response) -> Option<Timestamp> {
    let value = response.headers().get("retry-after")?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(SystemClock.now() + Duration::from_secs(secs.min(86_400) as i64));
    }
    chrono::DateTime::parse_from_rfc2822(value).ok().map(|t| Timestamp(t.timestamp_millis()))
}

/// `messages.0.status` in a JSON value.
fn lookup<'a>(value: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(value, |v, key| match key.parse::<usize>() {
        Ok(i) => v.get(i),
        Err(_) => v.get(key),
    })
}
