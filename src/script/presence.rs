//! Lua namespace `presence`: custom presences, the sign-in default, pause causes.

use mlua::{Lua, Value as LuaValue};

use super::define;
use crate::presence::{BaseStatus, Presence};

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // presence.define{ id = "training", text = "Away - in training", base = "away" }
    ns.set(
        "define",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "presence.define", |f, draft, at| {
                let id = f.req_str("id");
                let text = f.opt_str("text").unwrap_or_else(|| id.clone());
                let base = f.req_str("base");
                let problems = f.finish();
                if !problems.is_empty() {
                    return problems;
                }
                match base.parse::<BaseStatus>() {
                    Ok(base) => {
                        draft.presences.push((Presence { id, text, base }, at));
                        vec![]
                    }
                    Err(e) => vec![format!("presence.define `{id}`: {e}")],
                }
            })
        })?,
    )?;

    // presence.default("training"): what an agent shows after signing in.
    ns.set(
        "default",
        lua.create_function(|lua, id: String| {
            super::with_draft(lua, |draft, at| draft.default_presence = Some((id, at)))
        })?,
    )?;

    // presence.pause_cause{ id = "lunch", text = "Lunch break" }
    ns.set(
        "pause_cause",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "presence.pause_cause", |f, draft, at| {
                let id = f.req_str("id");
                let text = f.opt_str("text").unwrap_or_else(|| id.clone());
                let problems = f.finish();
                if problems.is_empty() {
                    draft.pause_causes.push((id, text, at));
                }
                problems
            })
        })?,
    )?;

    let bases = lua.create_table()?;
    for b in BaseStatus::ALL {
        bases.raw_set(b.as_str(), b.as_str())?;
    }
    ns.set("base", bases)?;
    lua.globals().set("presence", ns)
}
