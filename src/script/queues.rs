//! Lua namespace `queues`: open lines and services, their agent order, policy and limits.

use mlua::{Lua, Value as LuaValue};

use super::define;
use crate::presence::{BaseSet, BaseStatus};
use crate::rules::{QueueDef, DEFAULT_UNIT};
use crate::time::Duration;

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // queues.define{ id = "line", agents = { "olga", "ivan" }, policy = "strictly_in_order",
    //                options = { pass_after = "12h" }, allowed = { "available" }, max_wait = "1d",
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
                let queue = QueueDef {
                    name: f.opt_str("name").unwrap_or_else(|| id.clone()),
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    agents: f.str_list("agents"),
                    policy: f.req_str("policy"),
                    options: f.map("options"),
                    allowed: BaseSet::of(allowed),
                    max_wait: f.opt_positive_duration("max_wait"),
                    on_max_wait: f.opt_str("on_max_wait"),
                    fallback: f.opt_str("fallback"),
                    fallback_options: Default::default(),
                    retry_after_error: f.opt_positive_duration("retry_after_error").unwrap_or(Duration::from_secs(30)),
                    standby: f.str_or_list("standby"),
                    workflows,
                    id,
                    at: at.clone(),
                    retired: false,
                };
                let problems = f.finish();
                if problems.is_empty() {
                    draft.queues.push(queue);
                }
                problems
            })
        })?,
    )?;

    lua.globals().set("queues", ns)
}
