//! Lua namespace `queues`: open lines and services, their agent order, policy and limits.

use mlua::{Lua, Value as LuaValue};

use super::define;
use crate::agent::{AgentStatus, StatusSet};
use crate::presence::{BaseSet, BaseStatus};
use crate::rules::{AfterHours, Aging, Exhaustion, QueueDef, DEFAULT_UNIT};
use crate::time::Duration;

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // queues.define{ id = "line", agents = { "olga", "ivan" }, policy = "strictly_in_order",
    //                options = { pass_after = "12h" }, allowed = { "available" },
    //                statuses = { "ready", "callcenter" }, max_wait = "1d",
    //                standby = { "missed_calls" }, workflows = { abandoned = "callback" } }
    ns.set(
        "define",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "queues.define", |f, draft, at| {
                let id = f.req_str("id");
                let mut allowed = Vec::new();
                let listed = f.str_list("allowed");
                for s in &listed {
                    match s.parse::<BaseStatus>() {
                        Ok(b) => allowed.push(b),
                        Err(e) => f.problems.push(format!("queues.define `{id}`: allowed: {e}")),
                    }
                }
                if listed.is_empty() {
                    allowed.push(BaseStatus::Available);
                }
                let mut statuses = Vec::new();
                for s in f.str_list("statuses") {
                    match s.parse::<AgentStatus>() {
                        Ok(AgentStatus::Dnd) => f.problems.push(format!(
                            "queues.define `{id}`: statuses: `dnd` means no calls at all; route to `ready` and/or `callcenter`"
                        )),
                        Ok(status) => statuses.push(status),
                        Err(e) => f.problems.push(format!("queues.define `{id}`: statuses: {e}")),
                    }
                }
                let mut workflows = std::collections::BTreeMap::new();
                for (event, w) in f.map("workflows") {
                    match w {
                        serde_json::Value::String(w) => {
                            workflows.insert(event, w);
                        }
                        other => f
                            .problems
                            .push(format!("queues.define `{id}`: workflows.{event} must name a workflow, got {other}")),
                    }
                }
                let on_exhausted = match f.value("on_exhausted") {
                    LuaValue::Nil => Exhaustion::Wait,
                    LuaValue::String(s) => match &*s.to_string_lossy() {
                        "wait" => Exhaustion::Wait,
                        "restart" => Exhaustion::Restart,
                        "give_up" => Exhaustion::GiveUp,
                        other => {
                            f.problems.push(format!(
                                "queues.define `{id}`: on_exhausted: unknown `{other}` \
                                 (one of: \"wait\", \"restart\", \"give_up\", {{ overflow = \"queue\" }})"
                            ));
                            Exhaustion::Wait
                        }
                    },
                    LuaValue::Table(t) => match t.raw_get::<LuaValue>("overflow") {
                        Ok(LuaValue::String(q)) if t.raw_len() == 0 && t.pairs::<LuaValue, LuaValue>().count() == 1 => {
                            Exhaustion::Overflow(q.to_string_lossy())
                        }
                        _ => {
                            f.problems.push(format!(
                                "queues.define `{id}`: on_exhausted: a table must be {{ overflow = \"queue\" }}"
                            ));
                            Exhaustion::Wait
                        }
                    },
                    other => {
                        f.problems.push(format!(
                            "queues.define `{id}`: on_exhausted must be \"wait\", \"restart\", \"give_up\" or \
                             {{ overflow = \"queue\" }}, got {}",
                            other.type_name()
                        ));
                        Exhaustion::Wait
                    }
                };
                let after_hours = match f.value("after_hours") {
                    LuaValue::Nil => AfterHours::Wait,
                    LuaValue::String(s) if s.to_string_lossy() == "wait" => AfterHours::Wait,
                    LuaValue::Table(t) if t.raw_len() == 0 && t.pairs::<LuaValue, LuaValue>().count() == 1 => {
                        match (t.raw_get::<LuaValue>("overflow"), t.raw_get::<LuaValue>("give_up")) {
                            (Ok(LuaValue::String(q)), _) => AfterHours::Overflow(q.to_string_lossy()),
                            (_, Ok(LuaValue::String(why))) => AfterHours::GiveUp(why.to_string_lossy()),
                            _ => {
                                f.problems.push(format!(
                                    "queues.define `{id}`: after_hours: a table must be {{ overflow = \"queue\" }} \
                                     or {{ give_up = \"reason\" }}"
                                ));
                                AfterHours::Wait
                            }
                        }
                    }
                    _ => {
                        f.problems.push(format!(
                            "queues.define `{id}`: after_hours must be \"wait\", {{ overflow = \"queue\" }} or \
                             {{ give_up = \"reason\" }}"
                        ));
                        AfterHours::Wait
                    }
                };
                let aging = match f.value("aging") {
                    LuaValue::Function(func) => match super::callback(lua, "queues.define aging", &func) {
                        Ok(kept) => Some(Aging::Computed(kept)),
                        Err(e) => {
                            f.problems.push(format!("queues.define `{id}`: aging: {e}"));
                            None
                        }
                    },
                    LuaValue::Table(t) => steps(&t).or_else(|| {
                        f.problems.push(format!(
                            "queues.define `{id}`: aging must be {{ every = \"1m\", step = 1 }} (every a duration \
                             longer than zero, step a whole number of at least 1) or a function"
                        ));
                        None
                    }),
                    LuaValue::Nil => None,
                    other => {
                        f.problems.push(format!(
                            "queues.define `{id}`: aging must be {{ every = \"1m\", step = 1 }} or a function, got {}",
                            other.type_name()
                        ));
                        None
                    }
                };
                let mut levels = std::collections::BTreeMap::new();
                for (agent, level) in f.map("levels") {
                    match level.as_u64().filter(|&l| (1..=100).contains(&l)) {
                        Some(l) => {
                            levels.insert(agent, l as u32);
                        }
                        None => f.problems.push(format!(
                            "queues.define `{id}`: levels.{agent} must be a whole number from 1 (the first tier) to 100, got {level}"
                        )),
                    }
                }
                let queue = QueueDef {
                    name: f.opt_str("name").unwrap_or_else(|| id.clone()),
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    agents: f.str_list("agents"),
                    levels,
                    policy: f.req_str("policy"),
                    options: f.map("options"),
                    allowed: BaseSet::of(allowed),
                    statuses: if statuses.is_empty() { StatusSet::CALLCENTER } else { StatusSet::of(statuses) },
                    max_wait: f.opt_positive_duration("max_wait"),
                    on_max_wait: f.opt_str("on_max_wait"),
                    on_exhausted,
                    aging,
                    hours: f.opt_str("hours"),
                    after_hours,
                    fallback: f.opt_str("fallback"),
                    fallback_options: Default::default(),
                    retry_after_error: f.opt_positive_duration("retry_after_error").unwrap_or(Duration::from_secs(30)),
                    standby: f.str_or_list("standby"),
                    full_traces: f.opt_bool("full_traces").unwrap_or(false),
                    workflows,
                    id,
                    at: at.clone(),
                    retired: false,
                };
                let problems = f.finish();
                // Kept even with problems: the cross-checks still look at its references, so one
                // run reports everything (the load fails anyway).
                draft.queues.push(queue);
                problems
            })
        })?,
    )?;

    lua.globals().set("queues", ns)
}

/// `aging = { every = "1m", step = 1 }`, or `None` when it is not that.
fn steps(t: &mlua::Table) -> Option<Aging> {
    let every = super::fields::duration_of(&t.raw_get::<LuaValue>("every").unwrap_or(LuaValue::Nil)).ok()??;
    let step = match t.raw_get::<LuaValue>("step") {
        Ok(LuaValue::Nil) => 1,
        Ok(LuaValue::Integer(n)) if n > 0 => n,
        Ok(LuaValue::Number(n)) if n.fract() == 0.0 && (1.0..1e15).contains(&n) => n as i64,
        _ => return None,
    };
    (!every.is_zero()).then_some(Aging::Steps { every, step })
}
