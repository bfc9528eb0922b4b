//! The definitions scripts make, as the rules keep them: agents, teams, queues, standby rules,
//! and where each was written.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::agent::StatusSet;
use crate::capacity::Capacity;
use crate::presence::BaseSet;
use crate::time::Duration;

/// Where a definition was written, so later problems can point at it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Location {
    pub file: String,
    pub line: Option<u32>,
}

/// What happens to an agent who lets an offer time out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissAction {
    /// State Missed for the team's no-answer delay, then Waiting again (Webitel).
    Missed,
    /// Presence Inactive until the agent picks another one (Dynamics 365).
    Inactive,
}

/// What a queue does with a conversation whose policy found every agent tried
/// (`on_exhausted` in `queues.define`). `exhausted` is raised for standby rules in every case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Exhaustion {
    /// Keep the customer waiting; when an agent frees up, the policy starts its list over.
    #[default]
    Wait,
    /// Start the list over at once (if that finds nobody again, wait as above).
    Restart,
    /// Move the conversation to another queue.
    Overflow(String),
    /// End the conversation (the customer's chat is dropped).
    GiveUp,
}

/// How a waiting conversation's priority grows: `step` more for every `every` it has waited
/// in the queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Aging {
    /// `step` more for every `every` waited.
    Steps { every: Duration, step: i64 },
    /// What a Lua function returns for the conversation (with `waited`, in seconds): the id
    /// of the function kept for the host to call.
    Computed(String),
}

/// What a queue with business hours (`hours`) does with a conversation while they are closed
/// (`after_hours` in `queues.define`), instead of asking its policy.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum AfterHours {
    /// Keep the customer waiting until the hours open.
    #[default]
    Wait,
    /// Move the conversation to another queue (an after-hours line, a voicemail queue).
    Overflow(String),
    /// End the conversation with this reason.
    GiveUp(String),
}

impl Exhaustion {
    /// `wait`, `restart`, `overflow` or `give_up`, as policies see it (`ctx.queue.on_exhausted`).
    pub fn kind(&self) -> &'static str {
        match self {
            Exhaustion::Wait => "wait",
            Exhaustion::Restart => "restart",
            Exhaustion::Overflow(_) => "overflow",
            Exhaustion::GiveUp => "give_up",
        }
    }
}

/// Where an agent is moved after `max_no_answer` misses in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Escalation {
    Presence(String),
    Pause(String),
}

#[derive(Clone, Debug)]
pub struct TeamDef {
    pub id: String,
    pub wrap_up: Duration,
    pub no_answer_delay: Duration,
    /// 0 means never escalate.
    pub max_no_answer: u32,
    pub on_miss: MissAction,
    pub on_max_no_answer: Option<Escalation>,
    /// Conversations per channel its agents hold at once (an agent's own entries win).
    pub capacity: Capacity,
    pub at: Location,
}

impl TeamDef {
    /// The timings of an agent with no team: no wrap-up, no delay, no escalation.
    pub fn none() -> Self {
        TeamDef {
            id: String::new(),
            wrap_up: Duration::ZERO,
            no_answer_delay: Duration::ZERO,
            max_no_answer: 0,
            on_miss: MissAction::Missed,
            on_max_no_answer: None,
            capacity: Capacity::default(),
            at: Location::default(),
        }
    }
}

/// The organization unit of definitions that do not name one.
pub const DEFAULT_UNIT: &str = "default";

/// The static part of an agent, as written in Lua (runtime state lives in [`crate::agent::Agent`]).
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct AgentDef {
    pub id: String,
    /// The organization unit (tenant) the agent belongs to; API tokens are scoped by unit.
    pub unit: String,
    pub name: String,
    pub team: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub time_zone: Option<String>,
    /// Skill name to level, matched against a conversation's requirements.
    pub skills: BTreeMap<String, f64>,
    pub weight: f64,
    pub attributes: BTreeMap<String, Value>,
    /// Conversations per channel held at once: the agent's own entries, laid over the team's
    /// when the engine places the agent.
    pub capacity: Capacity,
    pub at: Location,
}

#[derive(Clone, Debug)]
pub struct QueueDef {
    pub id: String,
    /// The organization unit (tenant); its conversations belong to it too.
    pub unit: String,
    pub name: String,
    /// Agent ids in the queue's order.
    pub agents: Vec<String>,
    /// Tiers: an agent's level in this queue (1, the default, is the first tier). Members are
    /// offered in level order, and an agent who frees up takes work from the queues where
    /// their level is best first.
    pub levels: BTreeMap<String, u32>,
    pub policy: String,
    /// Options after validation against the policy's schema (durations as seconds).
    pub options: BTreeMap<String, Value>,
    pub allowed: BaseSet,
    /// The agent statuses it routes to (call-center mode only unless the queue says so).
    pub statuses: StatusSet,
    pub max_wait: Option<Duration>,
    /// Queue a conversation moves to when `max_wait` is exceeded (otherwise it ends).
    pub on_max_wait: Option<String>,
    /// What happens when the policy has tried every agent it could (`policies.exhausted`).
    pub on_exhausted: Exhaustion,
    /// Priority a waiting conversation gains with time (`aging = { every = "1m", step = 1 }`).
    pub aging: Option<Aging>,
    /// The business hours (`hours.define`) it is open in; always open without.
    pub hours: Option<String>,
    /// What happens to a conversation while its hours are closed.
    pub after_hours: AfterHours,
    /// Policy asked when the queue's own policy fails (otherwise: wait and retry).
    pub fallback: Option<String>,
    /// The fallback policy's option defaults.
    pub fallback_options: BTreeMap<String, Value>,
    pub retry_after_error: Duration,
    /// Standby rules watching this queue's conversations, by id.
    pub standby: Vec<String>,
    /// Its decisions' traces name every skipped candidate, not only the first few (for
    /// looking into a large queue's decisions; the traces grow with the queue).
    pub full_traces: bool,
    /// Workflows its conversations are set on when an event happens: event name to workflow id.
    pub workflows: BTreeMap<String, String>,
    pub at: Location,
    /// A queue the scripts removed while conversations still pointed at it (ended ones kept
    /// for reading, ones a workflow still works on): it keeps its id and unit for them, has no
    /// agents or rules, takes no arrivals and is not listed. Not found by `queue_index`.
    pub retired: bool,
}

impl QueueDef {
    /// Agent `id`'s level in this queue (1 unless `levels` says otherwise).
    pub fn level(&self, id: &str) -> u32 {
        self.levels.get(id).copied().unwrap_or(1)
    }
}

/// A channel a notification goes out by.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryChannel {
    Email,
    Sms,
    Webhook,
}

impl DeliveryChannel {
    pub const ALL: [DeliveryChannel; 3] = [DeliveryChannel::Email, DeliveryChannel::Sms, DeliveryChannel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryChannel::Email => "email",
            DeliveryChannel::Sms => "sms",
            DeliveryChannel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryChannel> {
        DeliveryChannel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Events a standby rule can watch, besides custom ones (`custom:NAME`, raised by scripts or the API).
pub const STANDBY_EVENTS: &[(&str, &str)] = &[
    ("missed", "an offer timed out or was declined"),
    ("exhausted", "every agent of the queue was offered the conversation and none answered"),
    ("abandoned", "the customer left while waiting"),
    ("max_wait", "the conversation waited longer than its queue allows"),
    ("overflowed", "the conversation overflowed to another queue"),
    ("gave_up", "the policy gave up on the conversation"),
    ("delivery_failed", "a notification could not be delivered (permanently, or after every attempt)"),
];

/// Whom a standby rule notifies.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipients {
    Agents(Vec<String>),
    /// Whoever is on duty in this schedule at that moment.
    Schedule(String),
    /// A Lua function of the event returning agent ids.
    Function,
    /// For `delivery_failed`: the agent the failed notification was for.
    FailedRecipient,
}

/// A standby rule: whom to notify about which events, by which channels, with which templates.
#[derive(Clone, Debug)]
pub struct StandbyRule {
    pub id: String,
    pub unit: String,
    /// Event names: those of [`STANDBY_EVENTS`] or `custom:NAME`.
    pub on: Vec<String>,
    pub notify: Recipients,
    pub channels: Vec<DeliveryChannel>,
    pub template: String,
    /// Sent to those notified who did not answer, once someone answers.
    pub clearing: Option<String>,
    pub at: Location,
}

impl StandbyRule {
    pub fn watches(&self, event: &str) -> bool {
        self.on.iter().any(|e| e == event)
    }
}

/// Something that uses a template, standby rule or schedule, for "where used" and for refusing
/// to drop a definition still in use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, schemars::JsonSchema)]
pub struct User {
    /// `queue`, `standby rule`.
    pub kind: &'static str,
    pub id: String,
    /// What it uses the id as: `template`, `standby rule` or `schedule`.
    pub uses: &'static str,
    pub file: String,
    pub line: Option<u32>,
}
