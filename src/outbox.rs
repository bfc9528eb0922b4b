//! The outbox: effects waiting for delivery (webhook calls today), durable with the step that
//! caused them, delivered and retried by a channel's deliverer, never dropped.
//!
//! The engine loop writes a [`Message`] for every event a [`EventRoute`] admits, in the same commit as
//! the step that produced the event: a message exists exactly when its cause is durable. A
//! deliverer takes the oldest message of its channel, delivers it, and marks it delivered; if
//! delivery fails it is retried later, and the later messages of that channel wait behind it, so
//! each channel sees its messages in order. Delivery is at least once: a crash between sending
//! and marking sends the message again, with the same id.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use crate::store::StoreError;
use crate::time::Timestamp;
use crate::update::{Brief, LabelledUpdate};

/// Which events go to a channel.
#[derive(Clone, Debug)]
pub struct EventRoute {
    /// The channel's name, e.g. the webhook's.
    pub channel: String,
    /// Organization units whose events go out (`"*"`: every unit). Script log lines belong to
    /// no unit and go only to `"*"` routes.
    pub units: Vec<String>,
    /// Update types that go out (`offered`, `agent_state`, ...); empty: all of them.
    pub events: Vec<String>,
}

impl EventRoute {
    /// The message for `event` if this route takes it.
    pub fn message(&self, event: &LabelledUpdate) -> Option<Message> {
        let unit_ok = self.units.iter().any(|u| u == "*" || event.unit.as_deref() == Some(u.as_str()));
        if !unit_ok {
            return None;
        }
        let (kind, mut body) = Brief(&event.stamped).to_json();
        if !self.events.is_empty() && !self.events.contains(&kind) {
            return None;
        }
        body["unit"] = serde_json::json!(event.unit);
        Some(Message { channel: self.channel.clone(), kind, body: body.to_string() })
    }
}

/// A message for a channel, as the engine loop writes it.
#[derive(Clone, Debug, PartialEq)]
pub struct Message {
    pub channel: String,
    /// The update type, e.g. `offered`.
    pub kind: String,
    /// JSON.
    pub body: String,
}

/// A message waiting in the outbox.
#[derive(Clone, Debug, PartialEq)]
pub struct Pending {
    /// Unique and increasing; sent along so a receiver can drop a repeated delivery.
    pub id: i64,
    pub message: Message,
    /// Failed deliveries so far.
    pub attempts: u32,
    /// Not to be tried before this time.
    pub due: Timestamp,
}

/// Whether a deliverer may deliver a message now.
#[derive(Clone, Debug, PartialEq)]
pub enum Claim {
    /// This deliverer holds it, until it marks the message delivered or retries it.
    Held,
    /// Another deliverer holds it, for `for_ms` more unless it lets go first (0: it was
    /// delivered meanwhile); the message is delivered again only if that claim runs out.
    Taken { by: String, for_ms: u64 },
}

/// The outbox as a deliverer sees it; a second handle on the store's file.
pub trait Outbox: Send + 'static {
    /// The oldest undelivered message of `channel`.
    fn head(&mut self, channel: &str) -> Result<Option<Pending>, StoreError>;
    /// Claims message `id` before delivering it, for a while (its store's claim lease): a
    /// store several nodes share lets one deliverer at a time hold a message. One process's
    /// store has one deliverer per channel, which always may.
    fn claim(&mut self, id: i64) -> Result<Claim, StoreError> {
        let _ = id;
        Ok(Claim::Held)
    }
    fn delivered(&mut self, id: i64) -> Result<(), StoreError>;
    /// Records a failed attempt; the message waits until `due`.
    fn retry(&mut self, id: i64, due: Timestamp, error: &str) -> Result<(), StoreError>;
    /// Undelivered messages per channel.
    fn backlog(&mut self) -> Result<BTreeMap<String, u64>, StoreError>;
}

/// Undelivered messages per channel, kept current by the loop (adds) and the deliverers
/// (removes), for `/metrics`.
#[derive(Clone, Debug, Default)]
pub struct Backlog(Arc<Mutex<BTreeMap<String, u64>>>);

impl Backlog {
    pub fn set(&self, counts: BTreeMap<String, u64>) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = counts;
    }

    pub fn added(&self, messages: &[Message]) {
        let mut counts = self.0.lock().unwrap_or_else(|e| e.into_inner());
        for m in messages {
            *counts.entry(m.channel.clone()).or_default() += 1;
        }
    }

    pub fn delivered(&self, channel: &str) {
        if let Some(n) = self.0.lock().unwrap_or_else(|e| e.into_inner()).get_mut(channel) {
            *n = n.saturating_sub(1);
        }
    }

    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}
