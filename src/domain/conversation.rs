//! Conversations: one call or chat, its lifecycle, its attempts and its decision traces.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::decision::TraceLog;
use crate::time::Timestamp;
use crate::timer::TimerKey;

/// A caller or a called service: name, phone number, SIP address.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct Party {
    pub name: Option<String>,
    pub number: Option<String>,
    pub sip: Option<String>,
}

/// What arrives from outside when a customer calls or writes.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NewConversation {
    pub id: String,
    pub queue: String,
    #[serde(default = "default_channel")]
    pub channel: String,
    #[serde(default)]
    pub caller: Party,
    #[serde(default)]
    pub service: Party,
    /// Skill name to minimum level an agent needs.
    #[serde(default)]
    pub requires: BTreeMap<String, f64>,
    #[serde(default)]
    pub attributes: BTreeMap<String, Value>,
    /// Higher goes first: when an agent frees up, the waiting conversation with the highest
    /// priority (then the one that has waited longest) is asked about first.
    #[serde(default)]
    pub priority: i64,
}

fn default_channel() -> String {
    "voice".into()
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ConversationStatus {
    Queued,
    Offered,
    Assigned,
    PostProcessing,
    Closed,
    Abandoned,
    GaveUp,
    MaxWaitExceeded,
}

impl ConversationStatus {
    pub const ALL: [ConversationStatus; 8] = [
        ConversationStatus::Queued,
        ConversationStatus::Offered,
        ConversationStatus::Assigned,
        ConversationStatus::PostProcessing,
        ConversationStatus::Closed,
        ConversationStatus::Abandoned,
        ConversationStatus::GaveUp,
        ConversationStatus::MaxWaitExceeded,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ConversationStatus::Queued => "queued",
            ConversationStatus::Offered => "offered",
            ConversationStatus::Assigned => "assigned",
            ConversationStatus::PostProcessing => "post_processing",
            ConversationStatus::Closed => "closed",
            ConversationStatus::Abandoned => "abandoned",
            ConversationStatus::GaveUp => "gave_up",
            ConversationStatus::MaxWaitExceeded => "max_wait_exceeded",
        }
    }

    /// Still waiting for an agent (a policy may be asked about it).
    pub fn is_waiting(self) -> bool {
        matches!(self, ConversationStatus::Queued | ConversationStatus::Offered)
    }

    pub fn is_ended(self) -> bool {
        matches!(
            self,
            ConversationStatus::Closed
                | ConversationStatus::Abandoned
                | ConversationStatus::GaveUp
                | ConversationStatus::MaxWaitExceeded
        )
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Pending,
    Accepted,
    Declined,
    TimedOut,
    /// Withdrawn without fault: another agent accepted, or the customer left.
    Revoked,
}

impl AttemptOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Pending => "pending",
            AttemptOutcome::Accepted => "accepted",
            AttemptOutcome::Declined => "declined",
            AttemptOutcome::TimedOut => "timed_out",
            AttemptOutcome::Revoked => "revoked",
        }
    }
}

/// One offer of this conversation to one agent, and how it ended.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Attempt {
    /// The agent's key (see [`crate::unit`]); shown as its id.
    #[serde(serialize_with = "crate::unit::serialize_external")]
    #[schemars(description = "The agent the offer went to.")]
    pub agent: Arc<str>,
    pub queue: Arc<str>,
    pub offered_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub outcome: AttemptOutcome,
    /// Why an offer was withdrawn (`revoked`): the agent signed out or became unavailable,
    /// another agent answered, the customer left.
    pub reason: Option<&'static str>,
}

#[derive(Clone, Debug)]
pub struct Conversation {
    pub id: Arc<str>,
    pub queue: u32,
    pub data: NewConversation,
    pub status: ConversationStatus,
    pub arrived_at: Timestamp,
    /// When it entered its current queue (differs from `arrived_at` after an overflow).
    pub queued_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub agent: Option<Arc<str>>,
    pub offer: Option<u64>,
    pub attempts: Vec<Attempt>,
    /// The round of offers: 1 at arrival, one more each time the queue starts its list over
    /// after it was exhausted (`on_exhausted = "wait"` or `"restart"`).
    pub round: u32,
    /// Where the current round of offers starts in `attempts`: 0, or the end of the round
    /// that exhausted the queue's list when the queue starts over (`on_exhausted`).
    pub round_start: usize,
    /// When the current round began: `queued_at`, or the moment the last one was exhausted.
    pub round_started_at: Timestamp,
    /// The policy found every agent tried and no offer was made since: `exhausted` was raised.
    pub exhausted: bool,
    /// Agents who could take it when the last round was exhausted and let it go, with their
    /// [`crate::agent::Agent::away`] count then: in a round that waits (`on_exhausted =
    /// "wait"`) policies see them as tried (`"passed"`) until they have been away and are back.
    pub passed: Vec<(crate::agent::AgentIx, u64)>,
    pub traces: TraceLog,
    pub max_wait_timer: Option<TimerKey>,
    pub retry_timer: Option<TimerKey>,
    /// The change epoch the last decision saw; re-evaluation skips it until agents change.
    pub seen_epoch: u64,
    /// The agents the last `wait` decision waits for (empty: any agent of the queue).
    pub waiting_for: Vec<crate::agent::AgentIx>,
    /// Messages standby rules sent about it, one per (rule, recipient, channel, kind).
    pub notified: Vec<Sent>,
    /// The workflow instances working on it that have not finished.
    pub workflows: Vec<u64>,
    /// What its queue's aging function added when the waiting order was last worked out
    /// (reads show it; they never run scripts).
    pub aged: i64,
}

/// What makes a standby message unique for its conversation: it is never sent twice.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sent {
    pub rule: String,
    pub recipient: String,
    pub channel: crate::rules::DeliveryChannel,
    pub kind: crate::template::Kind,
    /// The notification's id.
    pub id: u64,
}
