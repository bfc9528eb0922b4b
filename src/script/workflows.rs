//! Lua namespace `workflows`: follow-up work as stages (an event and its actions), and
//! `workflows.start`, which sets a conversation on a workflow from a policy or notify function.
//!
//! Each stage and action is made by its own call (`workflows.on`, `workflows.task`, ...), so
//! each knows the line it was written on and the diagnostics can point at it.

use mlua::{AnyUserData, Lua, MultiValue, UserData, Value as LuaValue};

use super::fields::{self, duration_of, Fields};
use super::with_draft;
use crate::rules::{DeliveryChannel, Recipients, DEFAULT_UNIT};
use crate::workflow::{event_problem, Action, ActionDef, StageDef, WorkflowDef};

/// An action as `workflows.task` and friends return it; `None` once its problems are reported.
struct ActionRef(Option<ActionDef>);
impl UserData for ActionRef {}

/// A stage as `workflows.on` returns it; `None` once its problems are reported.
struct StageRef(Option<StageDef>);
impl UserData for StageRef {}

/// Workflows set on conversations by scripts since the engine last collected them, as
/// (workflow, conversation).
#[derive(Default)]
pub(super) struct Starts(pub Vec<(String, String)>);

/// Reports `problems` at the calling line; the action when there are none.
fn action(lua: &Lua, make: impl FnOnce(&mut Vec<String>) -> Action) -> mlua::Result<AnyUserData> {
    let mut made = None;
    with_draft(lua, |draft, at| {
        let mut problems = Vec::new();
        let action = make(&mut problems);
        for p in &problems {
            draft.problem(&at, p.clone());
        }
        if problems.is_empty() {
            made = Some(ActionDef { action, at });
        }
    })?;
    lua.create_userdata(ActionRef(made))
}

/// An action read from a definition table (`workflows.task{...}`), its problems reported.
fn table_action(
    lua: &Lua,
    spec: LuaValue,
    what: &str,
    read: impl FnOnce(&mut Fields, &mut Vec<String>) -> Action,
) -> mlua::Result<AnyUserData> {
    action(lua, |problems| match Fields::new(spec, what) {
        Ok(mut f) => {
            let action = read(&mut f, problems);
            problems.extend(f.finish());
            action
        }
        Err(e) => {
            problems.push(e);
            Action::Finish { reason: None }
        }
    })
}

/// A plain string argument of an action, reported when missing or empty.
fn name_arg(value: &LuaValue, what: &str, problems: &mut Vec<String>) -> String {
    match value {
        LuaValue::String(s) if !s.to_string_lossy().trim().is_empty() => s.to_string_lossy(),
        other => {
            problems.push(format!("{what} needs a name (a string), got {}", other.type_name()));
            String::new()
        }
    }
}

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // workflows.define{ id = "callback", unit = "default", description = "...",
    //                   stages = { workflows.on("start", workflows.task{...}), ... } }
    ns.set(
        "define",
        lua.create_function(|lua, spec| {
            super::define(lua, spec, "workflows.define", |f, draft, at| {
                let id = f.req_str("id");
                let mut stages = Vec::new();
                let mut complete = true;
                if let Some(list) = f.table("stages") {
                    for (n, v) in list.sequence_values::<LuaValue>().enumerate() {
                        match v {
                            Ok(LuaValue::UserData(ud)) if ud.is::<StageRef>() => {
                                match ud.borrow::<StageRef>().ok().and_then(|s| s.0.clone()) {
                                    Some(stage) => stages.push(stage),
                                    None => complete = false,
                                }
                            }
                            Ok(other) => f.problems.push(format!(
                                "workflow `{id}`: stages[{}] must be made by workflows.on(event, actions...), got a {}",
                                n + 1,
                                other.type_name()
                            )),
                            Err(e) => f.problems.push(e.to_string()),
                        }
                    }
                } else if !f.problems.iter().any(|p| p.contains("`stages`")) {
                    f.problems.push(format!("workflow `{id}`: field `stages` is required"));
                }
                let def = WorkflowDef {
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    description: f.opt_str("description"),
                    id,
                    stages,
                    at,
                };
                let problems = f.finish();
                // A stage or action with problems is already reported; checking the legs without
                // it would only add confusing ones.
                if problems.is_empty() && complete {
                    draft.workflows.push(def);
                }
                problems
            })
        })?,
    )?;

    // workflows.on("button:no_answer", workflows.wait("1h", "retry")): a stage.
    ns.set(
        "on",
        lua.create_function(|lua, (event, actions): (LuaValue, MultiValue)| {
            let mut made = None;
            with_draft(lua, |draft, at| {
                let mut problems = Vec::new();
                let event = name_arg(&event, "workflows.on", &mut problems);
                if let Some(p) = problems.is_empty().then(|| event_problem(&event)).flatten() {
                    problems.push(format!("workflows.on: {p}"));
                }
                let mut list = Vec::new();
                let mut complete = true;
                for (n, a) in actions.into_iter().enumerate() {
                    match a {
                        LuaValue::UserData(ud) if ud.is::<ActionRef>() => {
                            match ud.borrow::<ActionRef>().ok().and_then(|a| a.0.clone()) {
                                Some(a) => list.push(a),
                                None => complete = false,
                            }
                        }
                        other => problems.push(format!(
                            "workflows.on(\"{event}\", ...): argument {} must be an action (workflows.task, \
                             notify, wait, set, raise, standby, link or finish), got a {}",
                            n + 2,
                            other.type_name()
                        )),
                    }
                }
                for p in &problems {
                    draft.problem(&at, p.clone());
                }
                if problems.is_empty() && complete {
                    made = Some(StageDef { event, actions: list, at });
                }
            })?;
            lua.create_userdata(StageRef(made))
        })?,
    )?;

    // workflows.task{ title = "Call the customer back", buttons = { "done", "no_answer" } }
    ns.set(
        "task",
        lua.create_function(|lua, spec: LuaValue| {
            table_action(lua, spec, "workflows.task", |f, _| Action::Task {
                title: f.req_str("title"),
                buttons: f.str_list("buttons"),
            })
        })?,
    )?;

    // workflows.notify{ template = "callback_overdue", channel = "email", to = { schedule = "duty" } }
    ns.set(
        "notify",
        lua.create_function(|lua, spec: LuaValue| {
            table_action(lua, spec, "workflows.notify", |f, problems| {
                let template = f.req_str("template");
                let channel = f.req_str("channel");
                let channel = DeliveryChannel::parse(&channel).unwrap_or_else(|| {
                    if !channel.is_empty() {
                        problems.push(format!("workflows.notify: unknown channel `{channel}` (email, sms, webhook)"));
                    }
                    DeliveryChannel::Email
                });
                let to = f.table("to").and_then(|t| super::standby::named_recipients(&t)).unwrap_or_else(|| {
                    problems.push("workflows.notify: `to` must be { agents = {...} } or { schedule = \"id\" }".into());
                    Recipients::Agents(Vec::new())
                });
                Action::Notify { template, channel, to }
            })
        })?,
    )?;

    // workflows.wait("1h", "retry"): after an hour, the event `timer:retry`.
    ns.set(
        "wait",
        lua.create_function(|lua, (after, timer): (LuaValue, LuaValue)| {
            action(lua, |problems| {
                let after = match duration_of(&after) {
                    Ok(Some(d)) if d.0 > 0 => d,
                    Ok(_) => {
                        problems.push("workflows.wait needs a duration longer than zero, such as \"1h\"".into());
                        Default::default()
                    }
                    Err(e) => {
                        problems.push(format!("workflows.wait: {e}"));
                        Default::default()
                    }
                };
                Action::Wait { after, timer: name_arg(&timer, "workflows.wait's timer", problems) }
            })
        })?,
    )?;

    // workflows.route("priority", 10) or workflows.route("requires", { no = 3 }), either may be
    // a function of the conversation: what a waiting conversation is routed by.
    ns.set(
        "route",
        lua.create_function(|lua, (field, value): (LuaValue, LuaValue)| {
            let function = match &value {
                LuaValue::Function(f) => Some(super::callback(lua, "workflows.route", f)?),
                _ => None,
            };
            action(lua, |problems| {
                let field = name_arg(&field, "workflows.route", problems);
                let value = match &function {
                    Some(_) => serde_json::Value::Null,
                    None => fields::to_json(&value).unwrap_or_else(|e| {
                        problems.push(format!("workflows.route(\"{field}\", ...): {e}"));
                        serde_json::Value::Null
                    }),
                };
                if function.is_none() {
                    if let Err(e) = crate::workflow::routing_value(&field, &value) {
                        problems.push(format!("workflows.route: {e}"));
                    }
                } else if !["priority", "requires"].contains(&field.as_str()) {
                    problems.push(format!("workflows.route: `{field}` is not `priority` or `requires`"));
                }
                Action::Route { field, value, function }
            })
        })?,
    )?;

    // workflows.set("callback_result", "reached"): an attribute of the conversation;
    // workflows.set("tier", function(c) return ... end): computed from it when the stage runs.
    ns.set(
        "set",
        lua.create_function(|lua, (field, value): (LuaValue, LuaValue)| {
            if let LuaValue::Function(f) = &value {
                let id = super::callback(lua, "workflows.set", f)?;
                return action(lua, |problems| {
                    let field = name_arg(&field, "workflows.set", problems);
                    Action::SetComputed { field, function: id }
                });
            }
            action(lua, |problems| {
                let field = name_arg(&field, "workflows.set", problems);
                let value = fields::to_json(&value).unwrap_or_else(|e| {
                    problems.push(format!("workflows.set(\"{field}\", ...): {e}"));
                    serde_json::Value::Null
                });
                Action::Set { field, value }
            })
        })?,
    )?;

    // workflows.raise("escalate"): the custom event `custom:escalate` about the conversation.
    ns.set(
        "raise",
        lua.create_function(|lua, name: LuaValue| {
            action(lua, |problems| {
                let event = name_arg(&name, "workflows.raise", problems);
                Action::Raise { event: event.strip_prefix("custom:").unwrap_or(&event).to_string() }
            })
        })?,
    )?;

    // workflows.standby("missed_calls"): runs a standby rule now.
    ns.set(
        "standby",
        lua.create_function(|lua, rule: LuaValue| {
            action(lua, |problems| Action::Standby { rule: name_arg(&rule, "workflows.standby", problems) })
        })?,
    )?;

    // workflows.link("start"): goes on with another event's stage.
    ns.set(
        "link",
        lua.create_function(|lua, event: LuaValue| {
            action(lua, |problems| Action::Link { event: name_arg(&event, "workflows.link", problems) })
        })?,
    )?;

    // workflows.finish("called back"): the instance is done.
    ns.set("finish", lua.create_function(|lua, reason: Option<String>| action(lua, |_| Action::Finish { reason }))?)?;

    // workflows.start("callback", ctx.conversation.id): sets the conversation on the workflow
    // once the current decision is done (the seed's "Set Workflow").
    ns.set(
        "start",
        lua.create_function(|lua, (workflow, conversation): (String, String)| {
            let mut starts = lua
                .app_data_mut::<Starts>()
                .ok_or_else(|| fields::error_here(lua, "workflows.start is not available while the scripts load"))?;
            super::push_capped(lua, &mut starts.0, (workflow, conversation), super::Pending::STARTED);
            Ok(())
        })?,
    )?;

    lua.globals().set("workflows", ns)
}
