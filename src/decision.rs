//! Decisions a policy returns, and the trace each decision leaves behind.

use std::sync::Arc;

use serde::Serialize;

use crate::agent::AgentIx;
use crate::time::{Duration, Timestamp};

/// What a policy decided for one conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Offer to these agents at once (one agent is the common case); the first to accept wins.
    /// With `extend_after`, the policy is asked again while the offer rings and may add agents.
    Offer { agents: Vec<AgentIx>, timeout: Duration, extend_after: Option<Duration> },
    /// Keep waiting; ask again when an agent of the queue frees up, or after `retry_after`.
    Wait { retry_after: Option<Duration> },
    /// Move the conversation to another queue and ask that queue's policy.
    Overflow { queue: String },
    /// Stop trying; the conversation ends.
    GiveUp { reason: String },
}

/// A candidate the policy passed over, and why.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skip {
    pub agent: Arc<str>,
    pub reason: Arc<str>,
}

/// Why one decision came out the way it did.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub at: Timestamp,
    pub queue: Arc<str>,
    pub policy: String,
    /// Script generation that decided.
    pub generation: u64,
    /// The queue's agents in order, as the policy saw them.
    pub considered: usize,
    pub skipped: Vec<Skip>,
    /// The decision, in words: `offer anna (30s)`, `wait`, `give_up: all candidates tried`.
    pub decision: String,
    /// Set when the policy failed and a fallback decided instead.
    pub error: Option<String>,
}
