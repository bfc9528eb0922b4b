//! Lua namespace `policies`: registering distribution policies and the decisions they return.

use std::collections::BTreeMap;

use mlua::{Function, Lua, Value as LuaValue};

use super::define;
use crate::rules::{OptionKind, OptionSpec, PolicySpec};

/// The `decide` functions registered so far, by policy name.
#[derive(Default)]
pub(super) struct PolicyFunctions(pub BTreeMap<String, Function>);

/// What a policy may hear of besides decisions, so its memory stays true without polling.
pub(crate) const HOOKS: [&str; 5] = ["on_offer_accepted", "on_declined", "on_abandoned", "on_closed", "on_agent_freed"];

/// The lifecycle hooks registered so far: policy name to hook name to function.
#[derive(Default)]
pub(super) struct PolicyHooks(pub BTreeMap<String, BTreeMap<&'static str, Function>>);

/// Lua-side helpers: decision constructors return plain values, so a decision costs no allocation.
const DECISIONS: &str = r#"
local policies = ...
function policies.offer(agent, timeout) return "offer", agent, timeout end
function policies.offer_many(agents, timeout, extend_after) return "offer_many", agents, timeout, extend_after end
function policies.wait(retry_after, for_agents) return "wait", retry_after, for_agents end
function policies.overflow(queue) return "overflow", queue end
function policies.give_up(reason) return "give_up", reason end
function policies.exhausted(reason) return "exhausted", reason end
"#;

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // policies.register("name", { options = { pass_after = { type = "duration", default = "12h" } },
    //                             decide = function(ctx) ... end })
    ns.set(
        "register",
        lua.create_function(|lua, (name, spec): (String, LuaValue)| {
            let what = format!("policies.register `{name}`");
            let mut decide_fn = None;
            let mut hooks = BTreeMap::new();
            define(lua, spec, &what, |f, draft, at| {
                let mut options = BTreeMap::new();
                if let Some(table) = f.table("options") {
                    for pair in table.pairs::<String, LuaValue>() {
                        let Ok((key, spec)) = pair else {
                            f.problems.push(format!("{what}: option names must be strings"));
                            continue;
                        };
                        match option_spec(&spec) {
                            Ok(s) => {
                                options.insert(key, s);
                            }
                            Err(e) => f.problems.push(format!("{what}: option `{key}`: {e}")),
                        }
                    }
                }
                decide_fn = f.function("decide");
                for hook in HOOKS {
                    if let Some(func) = f.opt_function(hook) {
                        hooks.insert(hook, func);
                    }
                }
                let _ = f.opt_str("description");
                let problems = f.finish();
                if problems.is_empty() {
                    draft.policies.push(PolicySpec { name: name.clone(), options, at });
                } else {
                    draft.failed.insert(("policies".into(), name.clone()));
                }
                problems
            })?;
            if let (Some(func), Some(mut fns)) = (decide_fn, lua.app_data_mut::<PolicyFunctions>()) {
                fns.0.entry(name.clone()).or_insert(func);
            }
            if let (false, Some(mut registered)) = (hooks.is_empty(), lua.app_data_mut::<PolicyHooks>()) {
                registered.0.entry(name).or_insert(hooks);
            }
            Ok(())
        })?,
    )?;

    let decisions = lua.load(DECISIONS).set_name("=policies").into_function()?;
    super::sandbox::compile_if_native(lua, &decisions);
    decisions.call::<()>(&ns)?;
    lua.globals().set("policies", ns)
}

/// `"duration"` or `{ type = "duration", default = "12h" }`.
fn option_spec(spec: &LuaValue) -> Result<OptionSpec, String> {
    let (kind, default) = match spec {
        LuaValue::String(s) => (s.to_string_lossy(), None),
        LuaValue::Table(t) => {
            let kind: String = t.get("type").map_err(|_| "needs `type` (duration, number, boolean, string, any)")?;
            let default = match t.get::<LuaValue>("default").map_err(|e| e.to_string())? {
                LuaValue::Nil => None,
                v => Some(super::fields::to_json(&v)?),
            };
            (kind, default)
        }
        other => return Err(format!("expected a type name or a table, got {}", other.type_name())),
    };
    let kind = OptionKind::parse(&kind)
        .ok_or_else(|| format!("unknown option type `{kind}` (duration, number, boolean, string, any)"))?;
    Ok(OptionSpec { kind, default })
}
