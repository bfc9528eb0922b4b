//! Lua namespace `standby`: rules that notify agents when something happens to a conversation,
//! and custom events scripts raise for them.

use std::collections::BTreeMap;

use mlua::{Function, Lua, Value as LuaValue};

use super::define;
use crate::rules::{DeliveryChannel, Recipients, StandbyRule, DEFAULT_UNIT, STANDBY_EVENTS};

/// Functions the scripts hand the host to call later, outside a decision: standby rules'
/// `notify` functions by rule id, and the values workflows compute (`set#N`).
#[derive(Default)]
pub(super) struct Callbacks(pub BTreeMap<String, Function>);

/// Custom events raised by scripts since the engine last collected them, as (conversation, name).
#[derive(Default)]
pub(super) struct Raised(pub Vec<(String, String)>);

/// `{ agents = { ... } }` or `{ schedule = "id" }`: whom a message goes to, by name.
pub(super) fn named_recipients(t: &mlua::Table) -> Option<Recipients> {
    let schedule: Option<String> = t.raw_get("schedule").ok();
    let agents: Option<Vec<String>> = t.raw_get("agents").ok();
    match (schedule, agents) {
        (Some(s), None) => Some(Recipients::Schedule(s)),
        (None, Some(a)) if !a.is_empty() => Some(Recipients::Agents(a)),
        _ => None,
    }
}

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // standby.define{ id = "missed_calls", on = { "missed", "abandoned" },
    //                 notify = { schedule = "duty" },   -- or { agents = {...} }, or function(event) ... end
    //                 channels = { "email", "sms" }, template = "missed_call", clearing = "taken_over" }
    ns.set(
        "define",
        lua.create_function(|lua, spec| {
            let mut function = None;
            let mut rule_id = String::new();
            define(lua, spec, "standby.define", |f, draft, at| {
                let id = f.req_str("id");
                let what = format!("standby rule `{id}`");
                let on = f.str_or_list("on");
                if on.is_empty() {
                    f.problems.push(format!("{what}: `on` must name at least one event"));
                }
                for event in &on {
                    let known = STANDBY_EVENTS.iter().any(|(e, _)| e == event)
                        || event.strip_prefix("custom:").is_some_and(|n| !n.is_empty());
                    if !known {
                        let names: Vec<String> = STANDBY_EVENTS.iter().map(|(e, _)| e.to_string()).collect();
                        let hint = crate::rules::suggest(event, names.iter());
                        f.problems.push(format!(
                            "{what}: unknown event `{event}`{hint} (events: {}, or custom:NAME)",
                            names.join(", ")
                        ));
                    }
                }
                let mut channels = Vec::new();
                let listed = f.str_or_list("channels");
                for c in &listed {
                    match DeliveryChannel::parse(c) {
                        Some(ch) if !channels.contains(&ch) => channels.push(ch),
                        Some(_) => {}
                        None => f.problems.push(format!("{what}: unknown channel `{c}` (email, sms, webhook)")),
                    }
                }
                if listed.is_empty() {
                    f.problems.push(format!("{what}: `channels` must name at least one of email, sms, webhook"));
                }
                let notify = match f.value("notify") {
                    LuaValue::Function(func) => {
                        function = Some(func);
                        Recipients::Function
                    }
                    LuaValue::String(s) if s == "recipient" => Recipients::FailedRecipient,
                    LuaValue::Table(t) => named_recipients(&t).unwrap_or_else(|| {
                        f.problems.push(format!("{what}: `notify` must be {{ agents = {{...}} }} or {{ schedule = \"id\" }}"));
                        Recipients::Agents(Vec::new())
                    }),
                    other => {
                        f.problems.push(format!(
                            "{what}: `notify` must be {{ agents = ... }}, {{ schedule = ... }}, a function or \"recipient\", got {}",
                            other.type_name()
                        ));
                        Recipients::Agents(Vec::new())
                    }
                };
                let rule = StandbyRule {
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    on,
                    notify,
                    channels,
                    template: f.req_str("template"),
                    clearing: f.opt_str("clearing"),
                    id: id.clone(),
                    at,
                };
                let _ = f.opt_str("description");
                let problems = f.finish();
                if problems.is_empty() {
                    rule_id = id;
                }
                // Kept even with problems, like the other definitions (see `agents.define`).
                draft.standby.push(rule);
                problems
            })?;
            if let (Some(func), Some(mut fns)) = (function, lua.app_data_mut::<Callbacks>()) {
                if !rule_id.is_empty() {
                    fns.0.entry(rule_id).or_insert(func);
                }
            }
            Ok(())
        })?,
    )?;

    // standby.raise("vip_waiting", ctx.conversation.id): a custom event `custom:vip_waiting` for
    // the rules of the conversation's queue, handled once the current decision is done.
    ns.set(
        "raise",
        lua.create_function(|lua, (name, conversation): (String, String)| {
            if name.is_empty() {
                return Err(super::fields::error_here(lua, "standby.raise needs an event name"));
            }
            let mut raised = lua
                .app_data_mut::<Raised>()
                .ok_or_else(|| super::fields::error_here(lua, "standby.raise is not available here"))?;
            super::push_capped(lua, &mut raised.0, (conversation, name), super::Pending::RAISED);
            Ok(())
        })?,
    )?;

    lua.globals().set("standby", ns)
}
