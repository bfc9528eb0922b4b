//! Lua namespace `agents`: who answers, their contact details, skills and settings.

use mlua::{Lua, Value as LuaValue};

use super::define;
use crate::rules::{AgentDef, DEFAULT_UNIT};

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // agents.define{ id = "olga", name = "Olga", team = "support", skills = { en = 5 } }
    ns.set(
        "define",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "agents.define", |f, draft, at| {
                let id = f.req_str("id");
                let mut skills = std::collections::BTreeMap::new();
                for (skill, level) in f.map("skills") {
                    match level.as_f64() {
                        Some(l) => {
                            skills.insert(skill, l);
                        }
                        None => f.problems.push(format!("agents.define `{id}`: skill `{skill}` needs a numeric level")),
                    }
                }
                let capacity = super::capacity(f, "agents.define");
                let def = AgentDef {
                    name: f.opt_str("name").unwrap_or_else(|| id.clone()),
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    team: f.opt_str("team"),
                    email: f.opt_str("email"),
                    phone: f.opt_str("phone"),
                    time_zone: f.opt_str("time_zone").filter(|z| match z.parse::<chrono_tz::Tz>() {
                        Ok(_) => true,
                        Err(_) => {
                            f.problems.push(format!(
                                "agents.define: field `time_zone`: unknown time zone `{z}` (an IANA name such as \
                                 \"Europe/Oslo\" or \"UTC\")"
                            ));
                            false
                        }
                    }),
                    weight: f.opt_number("weight").unwrap_or(1.0),
                    attributes: f.map("attributes"),
                    skills,
                    capacity,
                    id,
                    at: at.clone(),
                };
                let problems = f.finish();
                // Kept even with problems: the cross-checks still look at its references, so one
                // run reports everything (the load fails anyway).
                draft.agents.push(def);
                problems
            })
        })?,
    )?;

    // agents.track_work_day(true): availability asks for a started work day instead of being online.
    ns.set(
        "track_work_day",
        lua.create_function(|lua, on: bool| super::with_draft(lua, |draft, _| draft.settings.track_work_day = on))?,
    )?;

    lua.globals().set("agents", ns)
}
