//! The JSON shapes of agents, conversations and queues, read on the engine thread.

use serde::{Serialize, Serializer};
use serde_json::{json, Value};

use crate::agent::Agent;
use crate::conversation::Conversation;
use crate::engine::Engine;
use crate::update::{Brief, Stamped};

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
        "id": a.id,
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
        "base": a.base.as_str(),
        "online": a.online,
        "work_day": a.work_day,
        "dismissed": a.dismissed,
        "on_vacation": a.on_vacation,
        "unavailable": a.unavailable(track),
        "conversation": a.conversation,
        "counters": a.counters,
        "queues": a.queues.iter().map(|&q| engine.rules().queues[q as usize].id.as_str()).collect::<Vec<_>>(),
    })
}

pub fn conversation(engine: &Engine, c: &Conversation) -> Value {
    let (queue, unit) = engine.conversation_scope(&c.id).unwrap_or_default();
    json!({
        "id": c.id,
        "queue": queue,
        "unit": unit,
        "status": c.status.as_str(),
        "channel": c.data.channel,
        "caller": c.data.caller,
        "service": c.data.service,
        "requires": c.data.requires,
        "attributes": c.data.attributes,
        "arrived_at": c.arrived_at,
        "queued_at": c.queued_at,
        "ended_at": c.ended_at,
        "end_reason": c.end_reason,
        "agent": c.agent,
        "attempts": c.attempts,
        "traces": c.traces,
    })
}

pub fn queue(engine: &Engine, id: &str) -> Option<Value> {
    let def = &engine.rules().queues[engine.rules().queue_index(id)?];
    let waiting: Vec<Value> = engine
        .waiting(id)?
        .iter()
        .filter_map(|c| engine.conversation(c))
        .map(|c| json!({ "id": c.id, "status": c.status.as_str(), "queued_at": c.queued_at }))
        .collect();
    Some(json!({
        "id": def.id,
        "name": def.name,
        "unit": def.unit,
        "policy": def.policy,
        "agents": def.agents,
        "allowed": def.allowed.iter().map(|b| b.as_str()).collect::<Vec<_>>(),
        "max_wait": def.max_wait,
        "waiting": waiting,
        "available": engine.able(id)?,
    }))
}
