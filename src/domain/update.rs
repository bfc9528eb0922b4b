//! Updates: what an input changed, as the timeline, the event stream and the tests see it.

use std::sync::Arc;

use serde::{Serialize, Serializer};

use crate::decision::{Decided, Trace};
use crate::time::{Duration, Timestamp};

/// One observable change. An input yields zero or more, in the order they happened.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Update {
    Queued {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        queue: Arc<str>,
    },
    Decided {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        trace: Arc<Trace>,
    },
    Offered {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external_all")]
        agents: Vec<Arc<str>>,
        /// Milliseconds, like every duration the API and webhooks carry.
        #[serde(rename = "timeout_ms", serialize_with = "crate::time::serialize_ms")]
        timeout: Duration,
    },
    Accepted {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
    },
    Declined {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
    },
    TimedOut {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external_all")]
        agents: Vec<Arc<str>>,
    },
    /// The policy tried every agent it could (`policies.exhausted`); the queue's
    /// `on_exhausted` decides what follows.
    Exhausted {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        reason: String,
    },
    /// An agent's pending offer was withdrawn without fault; `reason` says why.
    Revoked {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        reason: &'static str,
    },
    Overflowed {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        from: Arc<str>,
        to: Arc<str>,
    },
    GaveUp {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        reason: String,
    },
    MaxWaitExceeded {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        queue: Arc<str>,
    },
    Abandoned {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
    },
    WrapUp {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        until: Timestamp,
    },
    Closed {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
    },
    AgentState {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        status: &'static str,
        state: &'static str,
        pause_cause: Option<String>,
    },
    AgentPresence {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        presence: String,
        /// What agents are shown (`"Away - in training"`).
        text: String,
        base: &'static str,
    },
    /// Availability inputs: online, work day, vacation, dismissal.
    AgentAvailability {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        unavailable: Option<&'static str>,
    },
    /// The directory created an agent or changed its definition.
    AgentDefined {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        agent: Arc<str>,
        created: bool,
    },
    /// A standby rule sent a message (it is in the outbox now).
    Notified { notification: Arc<crate::notification::Notification> },
    /// A conversation was set on a workflow.
    WorkflowStarted {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        instance: u64,
        workflow: Arc<str>,
    },
    /// A workflow instance entered the stage of `event`.
    StageEntered {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        instance: u64,
        workflow: Arc<str>,
        stage: u32,
        event: String,
    },
    TaskOpened {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        task: u64,
        instance: u64,
        workflow: Arc<str>,
        stage: u32,
        title: String,
        buttons: Vec<String>,
    },
    /// A task closed: one of its buttons was pushed, or its instance left the stage.
    TaskClosed {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        task: u64,
        instance: u64,
        button: Option<String>,
        by: Option<String>,
    },
    WorkflowFinished {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        instance: u64,
        workflow: Arc<str>,
        reason: Option<String>,
    },
    /// A workflow instance stopped until a person resolves it.
    WorkflowFlagged {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        instance: u64,
        workflow: Arc<str>,
        reason: String,
    },
    /// A waiting conversation's routing data changed (`attributes.vip`, `requires`).
    ConversationChanged {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        changed: Vec<String>,
    },
    /// A workflow set an attribute of the conversation.
    FieldSet {
        #[serde(serialize_with = "crate::unit::serialize_external")]
        conversation: Arc<str>,
        field: String,
        value: serde_json::Value,
    },
    /// A message a script wrote with `log.*`.
    Log { level: &'static str, message: String },
}

impl Update {
    /// The conversation and the agents this update is about.
    pub fn subject(&self) -> (Option<&Arc<str>>, Vec<&Arc<str>>) {
        match self {
            Update::Queued { conversation, .. }
            | Update::Decided { conversation, .. }
            | Update::Overflowed { conversation, .. }
            | Update::GaveUp { conversation, .. }
            | Update::Exhausted { conversation, .. }
            | Update::MaxWaitExceeded { conversation, .. }
            | Update::Abandoned { conversation }
            | Update::Closed { conversation }
            | Update::WorkflowStarted { conversation, .. }
            | Update::StageEntered { conversation, .. }
            | Update::TaskOpened { conversation, .. }
            | Update::TaskClosed { conversation, .. }
            | Update::WorkflowFinished { conversation, .. }
            | Update::WorkflowFlagged { conversation, .. }
            | Update::ConversationChanged { conversation, .. }
            | Update::FieldSet { conversation, .. } => (Some(conversation), Vec::new()),
            Update::Notified { .. } => (None, Vec::new()),
            Update::Offered { conversation, agents, .. } | Update::TimedOut { conversation, agents } => {
                (Some(conversation), agents.iter().collect())
            }
            Update::Accepted { conversation, agent }
            | Update::Declined { conversation, agent }
            | Update::Revoked { conversation, agent, .. }
            | Update::WrapUp { conversation, agent, .. } => (Some(conversation), vec![agent]),
            Update::AgentState { agent, .. }
            | Update::AgentPresence { agent, .. }
            | Update::AgentAvailability { agent, .. }
            | Update::AgentDefined { agent, .. } => (None, vec![agent]),
            Update::Log { .. } => (None, Vec::new()),
        }
    }

    /// One line of a human-readable timeline (conversations and agents shown by id, not key).
    pub fn describe(&self) -> String {
        let mut text = self.describe_keyed();
        let (conversation, agents) = self.subject();
        for key in conversation.into_iter().chain(agents).filter(|k| crate::unit::is_key(k)) {
            text = text.replace(&**key, crate::unit::external(key));
        }
        text
    }

    fn describe_keyed(&self) -> String {
        match self {
            Update::Queued { conversation, queue } => format!("{conversation} queued in {queue}"),
            Update::Decided { conversation, trace } => {
                let cause = trace.cause.as_ref().map_or(String::new(), |c| format!(" ({c})"));
                let mut s = format!(
                    "{conversation} decision by {} in {}{cause}: {}",
                    trace.policy, trace.queue, trace.decision
                );
                for skip in trace.skipped.iter() {
                    s.push_str(&format!("; skipped {} ({})", skip.agent, skip.reason));
                }
                let unnamed = trace.skipped.len() - trace.skipped.list().len();
                if unnamed > 0 {
                    let counts: Vec<String> = trace.skipped.counts().iter().map(|(r, n)| format!("{r} {n}")).collect();
                    s.push_str(&format!("; and {unnamed} more skipped (in all: {})", counts.join(", ")));
                }
                if let Some(e) = &trace.error {
                    s.push_str(&format!("; policy error: {e}"));
                }
                s
            }
            Update::Offered { conversation, agents, timeout } => {
                format!("{conversation} offered to {} (timeout {timeout})", agents.join(", "))
            }
            Update::Accepted { conversation, agent } => format!("{conversation} accepted by {agent}"),
            Update::Declined { conversation, agent } => format!("{conversation} declined by {agent}"),
            Update::TimedOut { conversation, agents } => {
                format!("{conversation} offer timed out for {}", agents.join(", "))
            }
            Update::Revoked { conversation, agent, reason } => {
                format!("{conversation} offer withdrawn from {agent} ({reason})")
            }
            Update::Overflowed { conversation, from, to } => format!("{conversation} overflowed from {from} to {to}"),
            Update::GaveUp { conversation, reason } => format!("{conversation} given up: {reason}"),
            Update::Exhausted { conversation, reason } => format!("{conversation} exhausted: {reason}"),
            Update::MaxWaitExceeded { conversation, queue } => {
                format!("{conversation} waited longer than {queue} allows")
            }
            Update::Abandoned { conversation } => {
                format!("{conversation} abandoned by the customer")
            }
            Update::WrapUp { conversation, agent, until } => {
                format!("{conversation} closed by {agent}; wrap-up until {until}")
            }
            Update::Closed { conversation } => format!("{conversation} closed"),
            Update::AgentState { agent, status, state, pause_cause } => match (status, pause_cause) {
                (&"callcenter", Some(cause)) => format!("agent {agent}: {state} ({cause})"),
                (&"callcenter", None) => format!("agent {agent}: {state}"),
                // Outside call-center mode the state still matters to queues that route
                // `ready` agents, so both show.
                _ => format!("agent {agent}: {state} (status {status})"),
            },
            Update::AgentPresence { agent, presence, base, .. } if presence == base => {
                format!("agent {agent}: presence {presence}")
            }
            Update::AgentPresence { agent, presence, base, .. } => {
                format!("agent {agent}: presence {presence} ({base})")
            }
            Update::AgentAvailability { agent, unavailable: None } => format!("agent {agent}: available"),
            Update::AgentAvailability { agent, unavailable: Some(why) } => {
                format!("agent {agent}: unavailable ({why})")
            }
            Update::AgentDefined { agent, created: true } => format!("agent {agent} created"),
            Update::AgentDefined { agent, created: false } => format!("agent {agent} changed"),
            Update::Notified { notification: n } if n.undeliverable.is_some() => {
                let why = n.undeliverable.as_deref().unwrap_or_default();
                format!(
                    "{} {} to {} by {} is dead: {why}",
                    n.conversation,
                    n.kind.as_str(),
                    n.recipient,
                    n.channel.as_str()
                )
            }
            Update::Notified { notification: n } => {
                let what = match n.kind {
                    crate::template::Kind::Notification => "notified",
                    crate::template::Kind::Clearing => "cleared",
                };
                format!("{} {what} {} by {}: {}", n.conversation, n.recipient, n.channel.as_str(), n.message.subject)
            }
            Update::WorkflowStarted { conversation, instance, workflow } => {
                format!("{conversation} set on workflow {workflow} (instance {instance})")
            }
            Update::StageEntered { conversation, instance, workflow, stage, event } => {
                format!("{conversation} workflow {workflow}#{instance} at stage {stage} ({event})")
            }
            Update::TaskOpened { conversation, task, stage, title, buttons, .. } => {
                format!("{conversation} task {task} opened at stage {stage}: {title} [{}]", buttons.join(" | "))
            }
            Update::TaskClosed { conversation, task, button: Some(b), by, .. } => match by {
                Some(by) => format!("{conversation} task {task} closed: {b} pushed by {by}"),
                None => format!("{conversation} task {task} closed: {b} pushed"),
            },
            Update::TaskClosed { conversation, task, button: None, .. } => {
                format!("{conversation} task {task} closed: its stage ended")
            }
            Update::WorkflowFinished { conversation, instance, workflow, reason } => match reason {
                Some(r) => format!("{conversation} workflow {workflow}#{instance} finished: {r}"),
                None => format!("{conversation} workflow {workflow}#{instance} finished"),
            },
            Update::WorkflowFlagged { conversation, instance, workflow, reason } => {
                format!("{conversation} workflow {workflow}#{instance} flagged for a person: {reason}")
            }
            Update::FieldSet { conversation, field, value } => format!("{conversation} field {field} = {value}"),
            Update::ConversationChanged { conversation, changed } => {
                format!("{conversation} changed: {}", changed.join(", "))
            }
            Update::Log { level, message } => format!("log {level}: {message}"),
        }
    }
}

/// Formats `t` relative to `start` as `+HH:MM:SS` (`+Nd HH:MM:SS` past a day).
pub fn offset(start: Timestamp, t: Timestamp) -> String {
    let total = (t - start).0.max(0) / 1000;
    let (d, h, m, s) = (total / 86_400, total / 3600 % 24, total / 60 % 60, total % 60);
    if d > 0 {
        format!("+{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("+{h:02}:{m:02}:{s:02}")
    }
}

/// An update with the time it happened.
#[derive(Clone, Debug, Serialize)]
pub struct Stamped {
    pub at: Timestamp,
    #[serde(flatten)]
    pub update: Update,
}

/// An update as the event stream carries it: with the organization unit, queue and agents it
/// concerns, so each subscriber sees only what it asked for and may see.
#[derive(Clone, Debug)]
pub struct LabelledUpdate {
    /// Its place in the stream since the engine started (0 until published); see
    /// `runtime::EventHistory` for resuming a stream from it.
    pub seq: u64,
    pub stamped: Stamped,
    /// `None` for script log lines, which belong to no unit.
    pub unit: Option<Arc<str>>,
    pub queue: Option<Arc<str>>,
    pub agents: Vec<Arc<str>>,
}

/// An update as API replies, the event stream and webhooks carry it. A decision is summed up
/// (policy, decision, how many agents were considered and skipped, the error): its full trace,
/// which names every skipped agent, is read with the conversation. Replies stay small however
/// large the queue.
pub struct Brief<'a>(pub &'a Stamped);

impl Brief<'_> {
    /// The update as JSON, and its type (`offered`, `agent_state`, ...) as that JSON names it.
    pub fn to_json(&self) -> (String, serde_json::Value) {
        let json = serde_json::to_value(self).unwrap_or_default();
        let kind = json.get("type").and_then(|t| t.as_str()).unwrap_or("update").to_string();
        (kind, json)
    }
}

impl Serialize for Brief<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let Update::Decided { conversation, trace } = &self.0.update else {
            return self.0.serialize(s);
        };
        DecidedBrief {
            at: self.0.at,
            kind: "decided",
            conversation: crate::unit::external(conversation),
            queue: &trace.queue,
            policy: &trace.policy,
            cause: trace.cause.as_deref(),
            decision: &trace.decision,
            considered: trace.considered,
            skipped: trace.skipped.len(),
            error: trace.error.as_deref(),
        }
        .serialize(s)
    }
}

#[derive(Serialize)]
struct DecidedBrief<'a> {
    at: Timestamp,
    #[serde(rename = "type")]
    kind: &'static str,
    conversation: &'a str,
    queue: &'a str,
    policy: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cause: Option<&'a str>,
    decision: &'a Decided,
    considered: usize,
    skipped: usize,
    error: Option<&'a str>,
}
