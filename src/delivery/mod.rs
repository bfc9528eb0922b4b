//! Delivering notifications: email over SMTP, SMS through an HTTP provider, JSON to a webhook,
//! or files in a folder when none is configured. Retried with backoff and jitter, dead-lettered
//! after a permanent failure or too many attempts, never dropped.
//!
//! The deliverer runs on its own thread. It takes the due notifications from the store's log
//! ([`crate::store::NotificationLog`]), sends them concurrently, and records every
//! attempt. A dead notification raises `delivery_failed` in the engine (an input, so it is
//! journaled like any other); the log remembers which dead ones the engine has taken, so a crash
//! in between raises it again rather than never.

mod email;
mod files;
mod http;

use std::sync::Arc;
use std::time::Duration as StdDuration;

use serde::Deserialize;
use tokio::sync::watch;

use crate::clock::{Clock, SystemClock};
use crate::error::{EngineError, InputError};
use crate::input::Input;
use crate::notification::{LogEntry, Outcome};
use crate::rules::DeliveryChannel;
use crate::runtime::{Handle, Notifications};
use crate::store::NotificationLog;
use crate::time::{Duration, Timestamp};

pub use email::{EmailConfig, Tls};
pub use http::{SmsConfig, WebhookChannelConfig};

/// How long an SMS provider or the `webhook` channel may take to answer, unless configured.
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// How notifications are retried and limited.
#[derive(Clone, Debug, Deserialize)]
#[serde(default, deny_unknown_fields)]
#[non_exhaustive]
pub struct NotifyConfig {
    /// Attempts before a notification is dead (a permanent failure makes it dead at once).
    pub max_attempts: u32,
    /// Delay after the first failure, in milliseconds; doubled after each further one, with jitter.
    pub first_retry_ms: u64,
    pub max_retry_ms: u64,
    /// Messages one recipient may get by one channel per hour and per day; the excess waits
    /// (and is counted) until the window has room.
    pub per_recipient_hour: u32,
    pub per_recipient_day: u32,
    /// Where messages are written when no SMTP server (or SMS provider, or webhook) is configured.
    pub outbox_dir: std::path::PathBuf,
    /// Notifications sent at once, at most.
    pub concurrency: usize,
    /// Days a sent notification, or a dead one whose failure was reported, is kept with its
    /// attempts for reading back; then it is pruned. 0 keeps them for good. At least 2 when
    /// set: the per-recipient limits look back a day.
    pub keep_days: u32,
}

impl Default for NotifyConfig {
    fn default() -> Self {
        NotifyConfig {
            max_attempts: 8,
            first_retry_ms: 2_000,
            max_retry_ms: 600_000,
            per_recipient_hour: 30,
            per_recipient_day: 200,
            outbox_dir: "rota-outbox".into(),
            concurrency: 8,
            keep_days: 30,
        }
    }
}

impl NotifyConfig {
    /// The delay before attempt `attempts + 1`, with up to a quarter taken off at random-looking
    /// but repeatable jitter (from the notification id), so retries of many messages spread out.
    pub fn backoff(&self, id: u64, attempts: u32) -> StdDuration {
        let base = self.first_retry_ms.saturating_mul(1u64 << attempts.min(30)).min(self.max_retry_ms);
        let jitter = id.wrapping_mul(0x9E37_79B9_7F4A_7C15).wrapping_add(attempts as u64) % 1000;
        StdDuration::from_millis(base - base / 4 * jitter / 1000)
    }
}

/// The channels as configured: each either a real one or the folder.
pub struct Senders {
    email: email::Sender,
    sms: http::Sms,
    webhook: http::Webhook,
}

impl Senders {
    pub fn new(
        email: Option<&EmailConfig>,
        sms: Option<&SmsConfig>,
        webhook: Option<&WebhookChannelConfig>,
        config: &NotifyConfig,
    ) -> Result<Senders, String> {
        let folder = files::Folder::new(&config.outbox_dir);
        Ok(Senders {
            email: match email {
                Some(c) => email::Sender::smtp(c)?,
                None => email::Sender::Files(folder.clone()),
            },
            sms: match sms {
                Some(c) => http::Sms::new(c)?,
                None => http::Sms::Files(folder.clone()),
            },
            webhook: match webhook {
                Some(c) => http::Webhook::new(c)?,
                None => http::Webhook::Files(folder),
            },
        })
    }

    /// One line per channel saying where its messages go.
    pub fn describe(&self) -> Vec<String> {
        vec![self.email.describe(), self.sms.describe(), self.webhook.describe()]
    }

    async fn send(&self, entry: &LogEntry) -> Outcome {
        let n = &entry.notification;
        // Put back by hand, it still has no address or message to send.
        if let Some(why) = &n.undeliverable {
            return Outcome::Permanent { error: why.clone() };
        }
        match n.channel {
            DeliveryChannel::Email => self.email.send(n).await,
            DeliveryChannel::Sms => self.sms.send(n).await,
            DeliveryChannel::Webhook => self.webhook.send(n).await,
        }
    }
}

/// Delivers notifications on its own thread until `stop` turns true.
pub fn spawn(
    notifications: Notifications,
    senders: Senders,
    config: NotifyConfig,
    engine: Arc<Handle>,
    stop: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new().name("rota-notify".into()).spawn(move || {
        let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
            Ok(rt) => rt,
            Err(e) => return tracing::error!(target: "rota::notify", "cannot start: {e}"),
        };
        let Notifications { log, wake } = notifications;
        let deliverer = Deliverer { log, senders, config, engine, wake, stop, pruned_at: None };
        runtime.block_on(deliverer.run());
    })
}

/// Longest sleep between two looks at the log, whatever wakes it or not: a store edited by hand
/// or a missed signal delays a message by this much at most.
const MAX_SLEEP: StdDuration = StdDuration::from_secs(30);

struct Deliverer {
    log: Box<dyn NotificationLog>,
    senders: Senders,
    config: NotifyConfig,
    engine: Arc<Handle>,
    wake: watch::Receiver<u64>,
    stop: watch::Receiver<bool>,
    /// When the log was last pruned.
    pruned_at: Option<Timestamp>,
}

impl Deliverer {
    async fn run(mut self) {
        loop {
            if *self.stop.borrow() {
                return;
            }
            if !self.report_dead().await {
                return;
            }
            let now = SystemClock.now();
            self.prune(now);
            let due = match self.log.due(now, self.config.concurrency.max(1) as u32) {
                Ok(due) => due,
                Err(e) => {
                    tracing::error!(target: "rota::notify", "the log is unreadable, trying again in 1 s: {e}");
                    self.sleep(StdDuration::from_secs(1)).await;
                    continue;
                }
            };
            if !due.is_empty() {
                self.deliver(due, now).await;
                continue;
            }
            let wait = match self.log.next_due() {
                Ok(Some(t)) => StdDuration::from_millis((t - SystemClock.now()).0.max(1) as u64).min(MAX_SLEEP),
                Ok(None) => MAX_SLEEP,
                Err(_) => StdDuration::from_secs(1),
            };
            self.sleep(wait).await;
        }
    }

    /// At most once an hour, forgets sent and reported dead notifications older than
    /// `keep_days` (with their attempts), so the log's size follows the window, not history.
    fn prune(&mut self, now: Timestamp) {
        let day = Duration::from_secs(86_400);
        if self.config.keep_days == 0 || self.pruned_at.is_some_and(|t| now - t < Duration(day.0 / 24)) {
            return;
        }
        self.pruned_at = Some(now);
        let before = Timestamp(now.0 - day.0 * self.config.keep_days as i64);
        match self.log.prune(before) {
            Ok(0) => {}
            Ok(n) => tracing::info!(
                target: "rota::notify",
                pruned = n,
                "pruned {n} sent or dead notification(s) older than {} days",
                self.config.keep_days
            ),
            Err(e) => tracing::error!(target: "rota::notify", "cannot prune the log: {e}"),
        }
    }

    /// Sleeps for `wait`, or until a commit writes notifications, or a stop. `changed` on our own
    /// receiver marks the signal seen (on a clone it would fire again at once, forever).
    async fn sleep(&mut self, wait: StdDuration) {
        tokio::select! {
            _ = self.stop.wait_for(|s| *s) => {}
            _ = self.wake.changed() => {}
            _ = tokio::time::sleep(wait) => {}
        }
    }

    async fn deliver(&mut self, due: Vec<LogEntry>, now: Timestamp) {
        let mut sending: Vec<LogEntry> = Vec::new();
        for entry in due {
            // Sends of this batch are not in the log yet, but count against the limit.
            let n = &entry.notification;
            let in_batch = sending
                .iter()
                .filter(|e| e.notification.recipient == n.recipient && e.notification.channel == n.channel)
                .count() as u32;
            match self.rate_limited(&entry, in_batch, now) {
                Some(until) => {
                    let why = format!("rate limit for {} reached; waiting", entry.notification.recipient);
                    // Not an attempt: the attempt count stays, only the due time moves.
                    if let Err(e) = self.log.defer(entry.notification.id, now, &why, until) {
                        let id = entry.notification.id;
                        tracing::error!(target: "rota::notify", notification = id, "cannot defer {id}: {e}");
                    }
                }
                None => sending.push(entry),
            }
        }
        // Each outcome is recorded the moment its send is done, not when the batch is: a crash
        // while a slow server holds one message must not send again what another channel's
        // provider already accepted.
        let (senders, log, config) = (&self.senders, &mut self.log, &self.config);
        let mut sends: futures_util::stream::FuturesUnordered<_> =
            sending.iter().map(|e| async move { (e, senders.send(e).await) }).collect();
        while let Some((entry, outcome)) = futures_util::StreamExt::next(&mut sends).await {
            let at = SystemClock.now();
            let n = &entry.notification;
            let retry_at = match &outcome {
                Outcome::Sent { .. } | Outcome::Permanent { .. } => None,
                Outcome::Transient { .. } if entry.attempts + 1 >= config.max_attempts => None,
                Outcome::Transient { retry_at, .. } => Some(
                    retry_at.unwrap_or_else(|| at + Duration(config.backoff(n.id, entry.attempts).as_millis() as i64)),
                ),
            };
            let (id, channel, to) = (n.id, n.channel.as_str(), n.address.as_str());
            let tried = entry.attempts + 1;
            match (&outcome, retry_at) {
                (Outcome::Sent { detail, .. }, _) => {
                    tracing::info!(target: "rota::notify", notification = id, channel, to, attempt = tried, "sent: {detail}")
                }
                (Outcome::Transient { error, .. } | Outcome::Permanent { error }, Some(t)) => tracing::warn!(
                    target: "rota::notify",
                    notification = id,
                    channel,
                    to,
                    attempt = tried,
                    "delivery failed: {error}; next attempt at {t}"
                ),
                (Outcome::Transient { error, .. } | Outcome::Permanent { error }, None) => tracing::error!(
                    target: "rota::notify",
                    notification = id,
                    channel,
                    to,
                    attempt = tried,
                    "dead after {tried} attempt(s): {error}"
                ),
            }
            if let Err(e) = log.record(n.id, at, &outcome, retry_at) {
                tracing::error!(target: "rota::notify", notification = id, "cannot record the outcome: {e}");
            }
        }
    }

    /// When a send to this recipient is allowed again, if a rate limit holds it back now, with
    /// `in_batch` more sends to them by this channel already under way.
    fn rate_limited(&mut self, entry: &LogEntry, in_batch: u32, now: Timestamp) -> Option<Timestamp> {
        let n = &entry.notification;
        let hour = Duration::from_secs(3600);
        let day = Duration::from_secs(86_400);
        let limits = [(hour, self.config.per_recipient_hour), (day, self.config.per_recipient_day)];
        for (window, limit) in limits {
            if limit == 0 {
                continue;
            }
            let since = Timestamp(now.0 - window.0);
            match self.log.sent_since(&n.unit, &n.recipient, n.channel.as_str(), since) {
                Ok(count) if count + in_batch >= limit => {
                    // Try again once a tenth of the window has passed; the oldest sends age out.
                    return Some(now + Duration(window.0 / 10));
                }
                _ => {}
            }
        }
        None
    }

    /// Tells the engine about dead notifications it has not heard of; false once it has stopped.
    async fn report_dead(&mut self) -> bool {
        let dead = match self.log.unreported() {
            Ok(list) => list,
            Err(_) => return true,
        };
        for entry in dead {
            let n = entry.notification;
            let input = Input::DeliveryFailed {
                notification: n.id,
                conversation: crate::unit::key(&n.unit, &n.conversation).to_string(),
                recipient: n.recipient.clone(),
                channel: n.channel,
                error: entry.last_error.unwrap_or_default(),
            };
            match self.engine.submit(input).await {
                // A conversation the engine no longer holds has nobody left to tell.
                Ok(_) | Err(EngineError::Input(InputError::UnknownConversation(_))) => {
                    if let Err(e) = self.log.reported(n.id) {
                        tracing::error!(target: "rota::notify", notification = n.id, "cannot mark it reported: {e}");
                    }
                }
                Err(EngineError::Stopped) => return false,
                Err(e) => {
                    tracing::error!(target: "rota::notify", notification = n.id, "delivery_failed refused: {e}")
                }
            }
        }
        true
    }
}
