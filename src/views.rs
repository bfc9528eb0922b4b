//! The JSON shapes of agents, conversations, queues, workflows and tasks, read on the engine thread.

use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::agent::Agent;
use crate::conversation::Conversation;
use crate::engine::Engine;
use crate::instance::{Instance, Task};
use crate::rules::Exhaustion;
use crate::unit::external;
use crate::update::{Brief, Stamped};
use crate::workflow::WorkflowDef;

/// The reply to an input: what it changed, each update as a [`Brief`].
#[derive(Serialize)]
pub struct Changes {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(serialize_with = "briefly")]
    pub updates: Vec<Stamped>,
}

fn briefly<S: Serializer>(updates: &[Stamped], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(updates.iter().map(Brief))
}

pub fn agent(engine: &Engine, a: &Agent) -> Value {
    let now = engine.clock_now();
    let track = engine.rules().settings.track_work_day;
    json!({
        "id": a.def.id,
        "name": a.def.name,
        "unit": a.def.unit,
        "team": a.def.team,
        "email": a.def.email,
        "phone": a.def.phone,
        "time_zone": a.def.time_zone,
        "skills": a.def.skills,
        "weight": a.def.weight,
        "attributes": a.def.attributes,
        "status": a.status.as_str(),
        "state": a.state.as_str(),
        "pause_cause": a.pause_cause,
        "state_since": a.state_since,
        "time_in_state_ms": (now - a.state_since).0.max(0),
        "presence": a.presence,
        "presence_text": engine.rules().presences.get(&a.presence).map(|p| p.text.as_str()),
        "base": a.base.as_str(),
        "online": a.online,
        "work_day": a.work_day,
        "dismissed": a.dismissed,
        "on_vacation": a.on_vacation,
        "unavailable": a.unavailable(track),
        "conversation": a.conversation.as_deref().map(external),
        "capacity": a.def.capacity.to_json(),
        // Work on shared channels (chats beside each other), by channel and one by one.
        "load": a.loads(),
        "slots": a.slots.iter().map(|s| json!({
            "conversation": external(&s.conversation),
            "channel": s.channel,
            "phase": s.phase(),
        })).collect::<Vec<_>>(),
        "counters": a.counters,
        "queues": a.queues.iter().map(|&q| engine.rules().queues[q as usize].id.as_str()).collect::<Vec<_>>(),
    })
}

pub fn conversation(engine: &Engine, c: &Conversation) -> Value {
    let (queue, unit) = engine.conversation_scope(&c.id).unwrap_or_default();
    json!({
        "id": external(&c.id),
        "queue": queue,
        "unit": unit,
        "status": c.status.as_str(),
        "channel": c.data.channel,
        "caller": c.data.caller,
        "service": c.data.service,
        "requires": c.data.requires,
        "priority": c.data.priority,
        // What the waiting order goes by now: its priority with the queue's aging.
        "effective_priority": engine.priority(c, engine.clock_now()),
        "attributes": c.data.attributes,
        "arrived_at": c.arrived_at,
        "queued_at": c.queued_at,
        "ended_at": c.ended_at,
        "end_reason": c.end_reason,
        "agent": c.agent.as_deref().map(external),
        // Rounds of offers: more than one after the queue's list was exhausted and started over.
        "round": c.round,
        "exhausted": c.exhausted,
        "attempts": c.attempts,
        "traces": c.traces,
        "traces_dropped": c.traces.dropped(),
        "workflows": c.workflows,
    })
}

/// A task as the task list shows it: what to do, where its workflow is, for which conversation
/// and caller, how long it has been open, and its buttons.
pub fn task(engine: &Engine, i: &Instance, t: &Task) -> Value {
    let caller = engine.conversation(&i.conversation).map(|c| c.data.caller.clone());
    json!({
        "id": t.id,
        "title": t.title,
        "buttons": t.buttons,
        "workflow": i.workflow,
        "instance": i.id,
        "stage": i.stage,
        "event": i.event,
        "conversation": external(&i.conversation),
        "caller": caller,
        "unit": i.unit,
        "opened": t.opened,
        "age_seconds": (engine.clock_now() - t.opened).as_secs_f64().max(0.0),
    })
}

/// A workflow instance with its history; without the history for lists.
pub fn instance(i: &Instance, history: bool) -> Value {
    let mut v = serde_json::to_value(i).unwrap_or_default();
    if !history {
        if let Some(m) = v.as_object_mut() {
            m.remove("history");
        }
    }
    v
}

/// A workflow definition with the number of each stage and its actions, as one line each.
pub fn workflow(engine: &Engine, w: &WorkflowDef) -> Value {
    let stages: Vec<Value> = w
        .stages
        .iter()
        .map(|s| {
            json!({
                "number": engine.stage_number(&w.id, &s.event),
                "event": s.event,
                "line": s.at.line,
                "actions": s.actions.iter().map(|a| a.action.describe()).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({
        "id": w.id,
        "unit": w.unit,
        "description": w.description,
        "file": w.at.file,
        "line": w.at.line,
        "stages": stages,
    })
}

pub fn queue(engine: &Engine, id: &str) -> Option<Value> {
    let def = &engine.rules().queues[engine.rules().queue_index(id)?];
    let waiting: Vec<Value> = engine
        .waiting(id)?
        .iter()
        .filter_map(|c| engine.conversation(c))
        .map(|c| json!({ "id": external(&c.id), "status": c.status.as_str(), "queued_at": c.queued_at }))
        .collect();
    Some(json!({
        "id": def.id,
        "name": def.name,
        "unit": def.unit,
        "policy": def.policy,
        "agents": def.agents,
        "levels": def.levels,
        "allowed": def.allowed.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        "statuses": def.statuses.iter().map(|s| s.as_str()).collect::<Vec<_>>(),
        "max_wait": def.max_wait,
        "on_max_wait": def.on_max_wait,
        "on_exhausted": match &def.on_exhausted {
            Exhaustion::Overflow(to) => json!({ "overflow": to }),
            other => json!(other.kind()),
        },
        "waiting": waiting,
        "available": engine.able(id)?,
    }))
}
