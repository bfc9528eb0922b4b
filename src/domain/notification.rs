//! Notifications: the messages standby rules send, and their delivery log.
//!
//! The engine makes a [`Notification`] (rendered, addressed, with a stable id) when a rule fires;
//! the runtime writes it to the store in the same transaction as the step that caused it. The
//! deliverer ([`crate::delivery`]) then works on the store's copy through [`crate::store::NotificationLog`]:
//! every attempt is recorded with its outcome, a message is retried until it is sent or dead,
//! and a dead one can be put back by hand.

use serde::{Deserialize, Serialize};

use crate::rules::DeliveryChannel;
use crate::template::{Kind, Rendered};
use crate::time::Timestamp;

/// One message to one recipient by one channel.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Notification {
    /// Unique and stable: the same notification keeps its id across retries and restarts, and
    /// the email Message-ID is made from it, so a resend is recognisable.
    pub id: u64,
    pub unit: String,
    pub conversation: String,
    pub rule: String,
    /// The event that caused it (`missed`, `custom:vip`, ...).
    pub event: String,
    pub recipient: String,
    pub channel: DeliveryChannel,
    pub kind: Kind,
    /// Email address or phone number; empty for webhooks.
    pub address: String,
    pub template: String,
    pub message: Rendered,
    pub created: Timestamp,
    /// Why it could not be made at all (no address for its channel, a template that failed
    /// to render): such a notification is dead from the start, never tried, and raised
    /// `delivery_failed` in the step that made it. It is kept so nothing vanishes unseen.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub undeliverable: Option<String>,
}

/// Where a notification is in its delivery.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    /// Waiting for its first or next attempt.
    Pending,
    Sent,
    /// Failed permanently or ran out of attempts; raised `delivery_failed`.
    Dead,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Pending => "pending",
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Dead => "dead",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryStatus> {
        [DeliveryStatus::Pending, DeliveryStatus::Sent, DeliveryStatus::Dead].into_iter().find(|x| x.as_str() == s)
    }
}

/// A notification with where its delivery stands.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct LogEntry {
    #[serde(flatten)]
    pub notification: Notification,
    pub status: DeliveryStatus,
    pub attempts: u32,
    /// Not tried again before this time.
    pub due: Timestamp,
    pub last_error: Option<String>,
    /// The provider's id for the message (an SMS sid, the SMTP server's answer).
    pub provider_id: Option<String>,
}

/// One try at delivering a notification.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(rename = "DeliveryAttempt")]
pub struct Attempt {
    pub at: Timestamp,
    /// `sent`, `retry` or `dead`.
    pub outcome: String,
    pub detail: String,
}

/// Which entries to list, newest first.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    pub status: Option<String>,
    pub recipient: Option<String>,
    pub conversation: Option<String>,
    pub unit: Option<String>,
    pub limit: Option<u32>,
    /// Only entries older than this one (ids grow with time).
    pub before: Option<u64>,
}

/// What became of one attempt.
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Sent {
        provider_id: Option<String>,
        detail: String,
    },
    /// Worth trying again (a 4xx SMTP reply, a timeout, HTTP 429 or 5xx), at `retry_at` if the
    /// other side said when.
    Transient {
        error: String,
        retry_at: Option<Timestamp>,
    },
    Permanent {
        error: String,
    },
}
