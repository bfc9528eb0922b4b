//! The closed set of inputs the engine handles, one at a time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::conversation::NewConversation;
use crate::directory::AgentRecord;
use crate::time::{TimeError, Timestamp};

/// Everything that can happen to the engine from outside. Timers that fall due
/// are fed back by the loop itself ([`crate::engine::Engine::fire_due`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
#[non_exhaustive]
pub enum Input {
    /// A customer called or wrote: a conversation enters a queue.
    Arrive(Box<NewConversation>),
    /// The agent takes the conversation offered to them; without `agent`, whoever it is
    /// offered to (refused when it rings for several).
    Accept {
        conversation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// The agent declines the offer; without `agent`, whoever it is offered to.
    Decline {
        conversation: String,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        agent: Option<String>,
    },
    /// The agent finished the conversation; wrap-up starts.
    Close {
        conversation: String,
    },
    /// The customer hung up or left.
    Abandon {
        conversation: String,
    },
    /// The agent signs in: online, with the default presence.
    SignIn {
        agent: String,
    },
    SignOut {
        agent: String,
    },
    SetPresence {
        agent: String,
        presence: String,
    },
    SetStatus {
        agent: String,
        status: String,
    },
    Pause {
        agent: String,
        cause: String,
    },
    /// Ends a pause: back to Waiting.
    Resume {
        agent: String,
    },
    StartWorkDay {
        agent: String,
    },
    EndWorkDay {
        agent: String,
    },
    /// Replaces the agent's vacation periods (`[from, to)`, RFC 3339).
    SetVacations {
        agent: String,
        periods: Vec<(String, String)>,
    },
    SetDismissed {
        agent: String,
        dismissed: bool,
    },
    /// Adds an agent to the directory (one the scripts do not define).
    CreateAgent {
        agent: String,
        record: Box<AgentRecord>,
    },
    /// Changes an agent's directory record; the fields given win over the scripts' definition.
    UpdateAgent {
        agent: String,
        record: Box<AgentRecord>,
    },
    /// Changes what a waiting conversation is routed by: the attributes given are set (`null`
    /// removes one), and `requires`, when given, replaces the skills it needs. Its policy
    /// decides again at once, with the change in the trace.
    UpdateConversation {
        conversation: String,
        #[serde(default)]
        attributes: BTreeMap<String, serde_json::Value>,
        #[serde(default)]
        requires: Option<BTreeMap<String, f64>>,
        /// A new priority (higher goes first).
        #[serde(default)]
        priority: Option<i64>,
    },
    /// A custom event (`custom:NAME` to standby rules) about a conversation.
    Raise {
        conversation: String,
        event: String,
    },
    /// Sets the conversation on a workflow (the seed's "Set Workflow"): an instance starts at
    /// its `start` stage.
    StartWorkflow {
        conversation: String,
        workflow: String,
    },
    /// Someone pushed a button of an open task: the task closes and its workflow gets the
    /// event `button:NAME`.
    PushButton {
        task: u64,
        button: String,
        /// Who pushed it, for the history.
        #[serde(default)]
        by: Option<String>,
    },
    /// A person says how a flagged workflow instance goes on: at the stage of `event`, or,
    /// without one, it finishes.
    ResolveWorkflow {
        instance: u64,
        #[serde(default)]
        event: Option<String>,
    },
    /// A notification could not be delivered; rules watching `delivery_failed` hear of it.
    DeliveryFailed {
        notification: u64,
        conversation: String,
        recipient: String,
        channel: crate::rules::DeliveryChannel,
        error: String,
    },
}

impl Input {
    /// The agent the input is about (not an agent answering a conversation, who is one of the
    /// conversation's unit), for a caller that resolves an id into the engine's key (see
    /// [`crate::unit`]) before it is handled.
    pub fn agent_mut(&mut self) -> Option<&mut String> {
        match self {
            Input::SignIn { agent }
            | Input::SignOut { agent }
            | Input::SetPresence { agent, .. }
            | Input::SetStatus { agent, .. }
            | Input::Pause { agent, .. }
            | Input::Resume { agent }
            | Input::StartWorkDay { agent }
            | Input::EndWorkDay { agent }
            | Input::SetVacations { agent, .. }
            | Input::SetDismissed { agent, .. }
            | Input::UpdateAgent { agent, .. } => Some(agent),
            _ => None,
        }
    }

    /// The conversation the input names, if it names one, for a caller that resolves an id
    /// into the engine's key (see [`crate::unit`]) before it is handled.
    pub fn conversation_mut(&mut self) -> Option<&mut String> {
        match self {
            Input::Accept { conversation, .. }
            | Input::Decline { conversation, .. }
            | Input::Close { conversation }
            | Input::Abandon { conversation }
            | Input::Raise { conversation, .. }
            | Input::UpdateConversation { conversation, .. }
            | Input::StartWorkflow { conversation, .. }
            | Input::DeliveryFailed { conversation, .. } => Some(conversation),
            _ => None,
        }
    }
}

/// Parses the vacation periods of a [`Input::SetVacations`].
pub fn parse_periods(periods: &[(String, String)]) -> Result<Vec<(Timestamp, Timestamp)>, TimeError> {
    periods
        .iter()
        .map(|(from, to)| {
            let (from, to) = (Timestamp::parse_rfc3339(from)?, Timestamp::parse_rfc3339(to)?);
            if to <= from {
                return Err(TimeError(format!("vacation period ends ({to}) before it starts ({from})")));
            }
            Ok((from, to))
        })
        .collect()
}
