//! Lua namespace `teams`: timings shared by a team (wrap-up, no-answer delay, max no-answer).

use mlua::{Lua, Value as LuaValue};

use super::define;
use crate::rules::{Escalation, MissAction, TeamDef};
use crate::time::Duration;

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // teams.define{ id = "support", wrap_up = "30s", no_answer_delay = "10s", max_no_answer = 3,
    //               on_miss = "missed", on_max_no_answer = { pause = "no_answer" },
    //               capacity = { voice = "exclusive", chat = 3 } }
    ns.set(
        "define",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "teams.define", |f, draft, at| {
                let id = f.req_str("id");
                let wrap_up = f.opt_duration("wrap_up").unwrap_or(Duration::ZERO);
                let no_answer_delay = f.opt_duration("no_answer_delay").unwrap_or(Duration::ZERO);
                let max_no_answer = f.opt_number("max_no_answer").unwrap_or(0.0);
                let on_miss = match f.opt_str("on_miss").as_deref() {
                    None | Some("missed") => MissAction::Missed,
                    Some("inactive") => MissAction::Inactive,
                    Some(other) => {
                        f.problems
                            .push(format!("teams.define: on_miss must be \"missed\" or \"inactive\", got \"{other}\""));
                        MissAction::Missed
                    }
                };
                let on_max_no_answer = f.table("on_max_no_answer").and_then(|t| {
                    let presence: Option<String> = t.get("presence").ok();
                    let pause: Option<String> = t.get("pause").ok();
                    match (presence, pause) {
                        (Some(p), None) => Some(Escalation::Presence(p)),
                        (None, Some(c)) => Some(Escalation::Pause(c)),
                        _ => {
                            f.problems.push(
                                "teams.define: on_max_no_answer must be { presence = \"...\" } or { pause = \"...\" }"
                                    .into(),
                            );
                            None
                        }
                    }
                });
                let capacity = super::capacity(f, "teams.define");
                if max_no_answer < 0.0 || max_no_answer.fract() != 0.0 {
                    f.problems.push("teams.define: max_no_answer must be a whole number (0 = never)".into());
                }
                let team = TeamDef {
                    id,
                    wrap_up,
                    no_answer_delay,
                    max_no_answer: max_no_answer as u32,
                    on_miss,
                    on_max_no_answer,
                    capacity,
                    at: at.clone(),
                };
                let problems = f.finish();
                // Kept even with problems: the cross-checks still look at its references, so one
                // run reports everything (the load fails anyway).
                draft.teams.push(team);
                problems
            })
        })?,
    )?;

    lua.globals().set("teams", ns)
}
