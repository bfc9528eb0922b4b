//! Webhooks: delivering outbox messages as signed HTTP POSTs, in order, retried until they land.
//!
//! Each webhook is an outbox channel. Its deliverer posts the oldest message, marks it delivered
//! on a 2xx answer, and otherwise retries it with a growing delay (capped), holding the later
//! messages back so the receiver sees them in order. Nothing is ever dropped: a receiver that is
//! down only grows the backlog that `/metrics` shows.
//!
//! Each request carries `X-Rota-Delivery` (the message id: a repeated delivery after a crash has
//! the same one), `X-Rota-Event` (the update type) and `X-Rota-Signature: t=<unix seconds>,
//! v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the webhook's secret>`; checking the signature
//! and that `t` is recent guards against forged and replayed calls.

use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use sha2::Sha256;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::outbox::{Backlog, Claim, EventRoute, Outbox, Pending};
use crate::runtime::Deliveries;
use crate::time::{Duration, Timestamp};

/// A webhook from the config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct Webhook {
    /// Its outbox channel; must be unique.
    pub name: String,
    /// `http://` or `https://`.
    pub url: String,
    /// PEM certificates to trust besides the public roots (a private CA).
    pub ca_file: Option<std::path::PathBuf>,
    /// The HMAC-SHA256 key the receiver checks signatures with.
    pub secret: String,
    /// Organization units whose events go out; by default every unit (`"*"`).
    #[serde(default = "every_unit")]
    pub units: Vec<String>,
    /// Update types to send; empty: all.
    #[serde(default)]
    pub events: Vec<String>,
}

fn every_unit() -> Vec<String> {
    vec!["*".into()]
}

impl Webhook {
    /// Webhook `name` posting every unit's updates to `url`, signed with `secret`.
    pub fn new(name: impl Into<String>, url: impl Into<String>, secret: impl Into<String>) -> Self {
        Webhook {
            name: name.into(),
            url: url.into(),
            ca_file: None,
            secret: secret.into(),
            units: every_unit(),
            events: Vec::new(),
        }
    }

    /// Why this webhook cannot be used, if it cannot.
    pub fn check(&self) -> Result<(), crate::config::ConfigError> {
        use crate::config::ConfigError;
        self.client(StdDuration::from_secs(10))
            .map_err(|source| ConfigError::Webhook { name: self.name.clone(), source })?;
        if self.secret.len() < 16 {
            let message = format!("webhook `{}`: the secret must be at least 16 characters", self.name);
            return Err(ConfigError::Invalid(message));
        }
        Ok(())
    }

    /// The events this webhook takes.
    pub fn route(&self) -> EventRoute {
        EventRoute { channel: self.name.clone(), units: self.units.clone(), events: self.events.clone() }
    }

    fn client(&self, timeout: StdDuration) -> Result<reqwest::Client, crate::outbound::ClientError> {
        crate::outbound::client_for(&self.url, timeout, self.ca_file.as_deref())
    }
}

/// The `X-Rota-Signature` value for `body` sent at `t` (Unix seconds).
pub fn signature(secret: &str, t: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(format!("{t}.{body}").as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

/// How delivery retries back off.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct Retry {
    /// Delay after the first failure; doubled after each further one.
    pub first: StdDuration,
    pub max: StdDuration,
    /// Longest wait for a receiver's answer.
    pub timeout: StdDuration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            first: StdDuration::from_secs(1),
            max: StdDuration::from_secs(300),
            timeout: StdDuration::from_secs(10),
        }
    }
}

impl Retry {
    fn delay(&self, attempts: u32) -> StdDuration {
        self.first.saturating_mul(1u32 << attempts.min(20)).min(self.max)
    }
}

/// Delivers the outbox to `webhooks` on its own thread until `stop` turns true.
pub fn spawn(
    deliveries: Deliveries,
    webhooks: Vec<Webhook>,
    retry: Retry,
    stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("rota-webhooks".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::error!(target: "rota::webhook", "cannot start: {e}"),
        };
        let Deliveries { outbox, wake, backlog } = deliveries;
        let outbox = Arc::new(Mutex::new(outbox));
        let local = tokio::task::LocalSet::new();
        for hook in webhooks {
            let client = match hook.client(retry.timeout) {
                Ok(c) => c,
                // `check` made the same client when the config was read; this cannot happen
                // unless the CA file changed since.
                Err(e) => {
                    tracing::error!(target: "rota::webhook", webhook = %hook.name, "not delivering: {e}");
                    continue;
                }
            };
            let channel = HookDeliverer {
                hook,
                outbox: outbox.clone(),
                backlog: backlog.clone(),
                client,
                retry,
                wake: wake.clone(),
                stop: stop.clone(),
            };
            local.spawn_local(channel.run());
        }
        runtime.block_on(local);
    })
}

/// One webhook's deliverer.
struct HookDeliverer {
    hook: Webhook,
    outbox: Arc<Mutex<Box<dyn Outbox>>>,
    backlog: Backlog,
    client: reqwest::Client,
    retry: Retry,
    wake: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
}

impl HookDeliverer {
    async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            let head = self.outbox.lock().unwrap_or_else(|e| e.into_inner()).head(&self.hook.name);
            let wait = match head {
                Ok(Some(p)) => match (p.due - SystemClock.now()).0 {
                    ms if ms > 0 => Some(StdDuration::from_millis(ms as u64)),
                    _ => match self.claim(p.id) {
                        Ok(Claim::Held) => {
                            self.deliver(p).await;
                            continue;
                        }
                        // Another node's deliverer has it: look again soon (it may be delivered
                        // in a moment), and take it over only once that claim runs out.
                        Ok(Claim::Taken { by, for_ms }) => {
                            let webhook = &self.hook.name;
                            tracing::debug!(target: "rota::webhook", %webhook, message = p.id, "held by {by} for {for_ms} ms");
                            Some(StdDuration::from_millis(for_ms.clamp(50, 1000)))
                        }
                        Err(e) => {
                            let webhook = &self.hook.name;
                            tracing::error!(target: "rota::webhook", %webhook, "cannot claim {}, trying again in 1 s: {e}", p.id);
                            Some(StdDuration::from_secs(1))
                        }
                    },
                },
                Ok(None) => None,
                Err(e) => {
                    let webhook = &self.hook.name;
                    tracing::error!(target: "rota::webhook", %webhook, "outbox unreadable, trying again in 1 s: {e}");
                    Some(StdDuration::from_secs(1))
                }
            };
            // Sleep until the head is due, or (with nothing queued) until a commit adds messages.
            // `changed` on our own receiver marks the signal seen; on a clone it would fire again
            // at once for every commit ever made, and the loop would spin.
            let wake = &mut self.wake;
            tokio::select! {
                _ = self.stop.wait_for(|s| *s) => return,
                _ = async {
                    match wait {
                        Some(d) => tokio::time::sleep(d).await,
                        None => { let _ = wake.changed().await; }
                    }
                } => {}
            }
        }
    }

    fn claim(&self, id: i64) -> Result<Claim, crate::store::StoreError> {
        self.outbox.lock().unwrap_or_else(|e| e.into_inner()).claim(id)
    }

    async fn deliver(&mut self, p: Pending) {
        let sent_at = SystemClock.now();
        let result = self.post(&p, sent_at.0 / 1000).await;
        let mut outbox = self.outbox.lock().unwrap_or_else(|e| e.into_inner());
        let marked = match result {
            Ok(()) => outbox.delivered(p.id).map(|()| self.backlog.delivered(&self.hook.name)),
            Err(why) => {
                let delay = self.retry.delay(p.attempts);
                let due: Timestamp = sent_at + Duration(delay.as_millis() as i64);
                tracing::warn!(
                    target: "rota::webhook",
                    webhook = %self.hook.name,
                    message = p.id,
                    attempt = p.attempts + 1,
                    "not delivered: {why}; next try in {} ms",
                    delay.as_millis()
                );
                outbox.retry(p.id, due, &why)
            }
        };
        if let Err(e) = marked {
            let webhook = &self.hook.name;
            tracing::error!(target: "rota::webhook", %webhook, message = p.id, "cannot record the outcome: {e}");
        }
    }

    async fn post(&self, p: &Pending, t: i64) -> Result<(), String> {
        let response = self
            .client
            .post(&self.hook.url)
            .header("content-type", "application/json")
            .header("x-rota-delivery", p.id.to_string())
            .header("x-rota-event", &p.message.kind)
            .header("x-rota-signature", signature(&self.hook.secret, t, &p.message.body))
            .body(p.message.body.clone())
            .send()
            .await
            .map_err(|e| crate::error::causes(&e))?;
        match response.status() {
            s if s.is_success() => Ok(()),
            s => Err(format!("the receiver answered {s}")),
        }
    }
}
