//! The JSON shapes of agents, conversations, queues, workflows and tasks, read on the engine
//! thread. Each is a type, so the API's OpenAPI document describes exactly what is sent.

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::agent::{Agent, AgentStatus, State};
use crate::conversation::{Attempt, Conversation, ConversationStatus, Party};
use crate::decision::{TraceLog, Traced};
use crate::engine::Engine;
use crate::instance::{Instance, Task};
use crate::presence::BaseStatus;
use crate::rules::Exhaustion;
use crate::time::Timestamp;
use crate::unit::external;
use crate::update::{Brief, Stamped};
use crate::workflow::WorkflowDef;

/// The reply to an input: what it changed, each update as a [`Brief`].
#[derive(Serialize, JsonSchema)]
#[schemars(description = "The reply to an input: what it changed, in order (`type` names each update).")]
pub struct Changes {
    /// The id of what was created (a conversation), when something was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(serialize_with = "briefly")]
    #[schemars(with = "Vec<UpdateShape>")]
    pub updates: Vec<Stamped>,
}

fn briefly<S: Serializer>(updates: &[Stamped], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(updates.iter().map(Brief))
}

/// One update as replies, the event stream and webhooks carry it: `type` names it (`queued`,
/// `offered`, `agent_state`, ...) and says which other fields it has (docs/api.md lists them).
#[derive(JsonSchema)]
#[schemars(extend("additionalProperties" = true))]
#[allow(dead_code)] // Describes `Brief`'s JSON; never built.
pub struct UpdateShape {
    at: Timestamp,
    #[schemars(rename = "type")]
    kind: String,
}

/// Conversations per channel at once: `"exclusive"` or a number of slots.
pub(crate) fn capacity_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
    schemars::json_schema!({
        "type": "object",
        "additionalProperties": { "oneOf": [{ "type": "string", "enum": ["exclusive"] }, { "type": "integer", "minimum": 0 }] }
    })
}

/// An agent as the API shows it: the directory, the status panel, and the work held.
#[derive(Serialize, JsonSchema)]
pub struct AgentView {
    pub id: String,
    pub name: String,
    pub unit: String,
    pub team: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub time_zone: Option<String>,
    pub skills: BTreeMap<String, f64>,
    pub weight: f64,
    pub attributes: BTreeMap<String, Value>,
    pub status: AgentStatus,
    pub state: State,
    pub pause_cause: Option<String>,
    pub state_since: Timestamp,
    pub time_in_state_ms: i64,
    pub presence: String,
    /// The presence's text as people read it (`Away - in training`).
    pub presence_text: Option<String>,
    pub base: BaseStatus,
    pub online: bool,
    pub work_day: bool,
    pub dismissed: bool,
    pub on_vacation: bool,
    /// Why the agent cannot take work on an open line (`dismissed`, `vacation`, ...), if so.
    pub unavailable: Option<&'static str>,
    /// The exclusive conversation held (ringing, talked or in wrap-up).
    pub conversation: Option<String>,
    #[schemars(schema_with = "capacity_schema")]
    pub capacity: Value,
    /// Conversations held on shared channels, by channel.
    pub load: BTreeMap<String, u32>,
    pub slots: Vec<SlotView>,
    pub counters: CountersView,
    pub queues: Vec<String>,
}

/// A conversation held on a shared channel.
#[derive(Serialize, JsonSchema)]
pub struct SlotView {
    pub conversation: String,
    pub channel: String,
    /// `ringing`, `talking` or `wrap_up`.
    pub phase: &'static str,
}

/// An agent's running totals.
#[derive(Serialize, JsonSchema)]
pub struct CountersView {
    pub offered: u32,
    pub answered: u32,
    pub declined: u32,
    pub missed: u32,
    pub missed_in_row: u32,
    pub talk_time_ms: i64,
}

pub fn agent(engine: &Engine, a: &Agent) -> AgentView {
    let now = engine.clock_now();
    let track = engine.rules().settings.track_work_day;
    let c = &a.counters;
    AgentView {
        id: a.def.id.clone(),
        name: a.def.name.clone(),
        unit: a.def.unit.clone(),
        team: a.def.team.clone(),
        email: a.def.email.clone(),
        phone: a.def.phone.clone(),
        time_zone: a.def.time_zone.clone(),
        skills: a.def.skills.clone(),
        weight: a.def.weight,
        attributes: a.def.attributes.clone(),
        status: a.status,
        state: a.state,
        pause_cause: a.pause_cause.clone(),
        state_since: a.state_since,
        time_in_state_ms: (now - a.state_since).0.max(0),
        presence: a.presence.clone(),
        presence_text: engine.rules().presences.get(&a.presence).map(|p| p.text.clone()),
        base: a.base,
        online: a.online,
        work_day: a.work_day,
        dismissed: a.dismissed,
        on_vacation: a.on_vacation,
        unavailable: a.unavailable(track),
        conversation: a.conversation.as_deref().map(|c| external(c).to_string()),
        capacity: a.def.capacity.to_json(),
        load: a.loads().into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
        slots: a
            .slots
            .iter()
            .map(|s| SlotView {
                conversation: external(&s.conversation).to_string(),
                channel: s.channel.to_string(),
                phase: s.phase(),
            })
            .collect(),
        counters: CountersView {
            offered: c.offered,
            answered: c.answered,
            declined: c.declined,
            missed: c.missed,
            missed_in_row: c.missed_in_row,
            talk_time_ms: c.talk_time.0,
        },
        queues: a.queues.iter().map(|&q| engine.rules().queues[q as usize].id.clone()).collect(),
    }
}

/// A conversation with its offers and the traces of the decisions taken about it.
#[derive(Serialize, JsonSchema)]
pub struct ConversationView {
    pub id: String,
    pub queue: String,
    pub unit: String,
    pub status: ConversationStatus,
    pub channel: String,
    pub caller: Party,
    pub service: Party,
    pub requires: BTreeMap<String, f64>,
    pub priority: i64,
    /// What the waiting order goes by now: its priority with the queue's aging.
    pub effective_priority: i64,
    pub attributes: BTreeMap<String, Value>,
    pub arrived_at: Timestamp,
    pub queued_at: Timestamp,
    pub ended_at: Option<Timestamp>,
    pub end_reason: Option<String>,
    pub agent: Option<String>,
    /// Rounds of offers: more than one after the queue's list was exhausted and started over.
    pub round: u32,
    pub exhausted: bool,
    pub attempts: Vec<Attempt>,
    /// Left out of lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<Vec<Traced>>")]
    pub traces: Option<TraceLog>,
    /// Traces left out between the first and the last ones kept.
    pub traces_dropped: u64,
    /// The workflow instances it is on.
    pub workflows: Vec<u64>,
}

pub fn conversation(engine: &Engine, c: &Conversation) -> ConversationView {
    conversation_with(engine, c, true)
}

/// A conversation as lists show it: without its decision traces.
pub fn conversation_summary(engine: &Engine, c: &Conversation) -> ConversationView {
    conversation_with(engine, c, false)
}

fn conversation_with(engine: &Engine, c: &Conversation, traces: bool) -> ConversationView {
    let (queue, unit) = engine.scope_of(c);
    ConversationView {
        id: external(&c.id).to_string(),
        queue: queue.to_string(),
        unit: unit.to_string(),
        status: c.status,
        channel: c.data.channel.clone(),
        caller: c.data.caller.clone(),
        service: c.data.service.clone(),
        requires: c.data.requires.clone(),
        priority: c.data.priority,
        effective_priority: engine.priority(c, engine.clock_now()),
        attributes: c.data.attributes.clone(),
        arrived_at: c.arrived_at,
        queued_at: c.queued_at,
        ended_at: c.ended_at,
        end_reason: c.end_reason.clone(),
        agent: c.agent.as_deref().map(|a| external(a).to_string()),
        round: c.round,
        exhausted: c.exhausted,
        attempts: c.attempts.clone(),
        traces: traces.then(|| c.traces.clone()),
        traces_dropped: c.traces.dropped(),
        workflows: c.workflows.clone(),
    }
}

/// A task as the task list shows it: what to do, where its workflow is, for which conversation
/// and caller, how long it has been open, and its buttons.
#[derive(Serialize, JsonSchema)]
pub struct TaskView {
    pub id: u64,
    pub title: String,
    pub buttons: Vec<String>,
    pub workflow: String,
    pub instance: u64,
    pub stage: u32,
    pub event: String,
    pub conversation: String,
    pub caller: Option<Party>,
    pub unit: String,
    pub opened: Timestamp,
    pub age_ms: i64,
}

pub fn task(engine: &Engine, i: &Instance, t: &Task) -> TaskView {
    TaskView {
        id: t.id,
        title: t.title.clone(),
        buttons: t.buttons.clone(),
        workflow: i.workflow.clone(),
        instance: i.id,
        stage: i.stage,
        event: i.event.clone(),
        conversation: external(&i.conversation).to_string(),
        caller: engine.conversation(&i.conversation).map(|c| c.data.caller.clone()),
        unit: i.unit.clone(),
        opened: t.opened,
        age_ms: (engine.clock_now() - t.opened).0.max(0),
    }
}

/// A workflow instance as the API shows it; lists leave its history out.
pub fn instance(i: &Instance, history: bool) -> Instance {
    let mut shown = i.clone();
    if !history {
        shown.history = Vec::new();
    }
    shown
}

/// A workflow definition with the number of each stage and its actions, one line each.
#[derive(Serialize, JsonSchema)]
pub struct WorkflowView {
    pub id: String,
    pub unit: String,
    pub description: Option<String>,
    pub file: String,
    pub line: Option<u32>,
    pub stages: Vec<StageView>,
}

#[derive(Serialize, JsonSchema)]
pub struct StageView {
    pub number: Option<u32>,
    pub event: String,
    pub line: Option<u32>,
    pub actions: Vec<String>,
}

pub fn workflow(engine: &Engine, w: &WorkflowDef) -> WorkflowView {
    WorkflowView {
        id: w.id.clone(),
        unit: w.unit.clone(),
        description: w.description.clone(),
        file: w.at.file.clone(),
        line: w.at.line,
        stages: w
            .stages
            .iter()
            .map(|s| StageView {
                number: engine.stage_number(&w.id, &s.event),
                event: s.event.clone(),
                line: s.at.line,
                actions: s.actions.iter().map(|a| a.action.describe()).collect(),
            })
            .collect(),
    }
}

/// A queue with what waits in it and who could take it now.
#[derive(Serialize, JsonSchema)]
pub struct QueueView {
    pub id: String,
    pub name: String,
    pub unit: String,
    pub policy: String,
    pub agents: Vec<String>,
    pub levels: BTreeMap<String, u32>,
    pub allowed: Vec<&'static str>,
    pub statuses: Vec<&'static str>,
    pub max_wait_ms: Option<i64>,
    pub on_max_wait: Option<String>,
    /// `wait`, `restart`, `overflow` (to `overflow_to`) or `give_up`.
    pub on_exhausted: &'static str,
    pub overflow_to: Option<String>,
    pub waiting: Vec<Waiting>,
    pub available: Vec<String>,
}

/// A conversation waiting in a queue.
#[derive(Serialize, JsonSchema)]
pub struct Waiting {
    pub id: String,
    pub status: ConversationStatus,
    pub queued_at: Timestamp,
}

pub fn queue(engine: &Engine, id: &str) -> Option<QueueView> {
    let def = &engine.rules().queues[engine.rules().queue_index(id)?];
    let waiting = engine
        .waiting(id)?
        .iter()
        .filter_map(|c| engine.conversation(c))
        .map(|c| Waiting { id: external(&c.id).to_string(), status: c.status, queued_at: c.queued_at })
        .collect();
    Some(QueueView {
        id: def.id.clone(),
        name: def.name.clone(),
        unit: def.unit.clone(),
        policy: def.policy.clone(),
        agents: def.agents.clone(),
        levels: def.levels.clone(),
        allowed: def.allowed.iter().map(|b| b.as_str()).collect(),
        statuses: def.statuses.iter().map(|s| s.as_str()).collect(),
        max_wait_ms: def.max_wait.map(|d| d.0),
        on_max_wait: def.on_max_wait.clone(),
        on_exhausted: def.on_exhausted.kind(),
        overflow_to: match &def.on_exhausted {
            Exhaustion::Overflow(to) => Some(to.clone()),
            _ => None,
        },
        waiting,
        available: engine.able(id)?.iter().map(|a| external(a).to_string()).collect(),
    })
}
