//! Lua namespace `schedules`: who is on duty when, as rotations, calendars and overrides.

use mlua::{Lua, Value as LuaValue};

use super::define;
use super::fields::Fields;
use crate::rules::{LayerDraft, ScheduleDraft, DEFAULT_UNIT};
use crate::schedule::{parse_local, resolve, Override, Rotation, ScheduleDef};

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // schedules.define{ id = "duty", time_zone = "Europe/Oslo",
    //   layers = { { rotation = { "ivan", "olga" }, start = "2026-11-02 09:00", shift = "1w" },
    //              { calendar = "duty.ics" } },
    //   overrides = { { agent = "anna", from = "2026-12-24 09:00", to = "2026-12-27 09:00" } } }
    ns.set(
        "define",
        lua.create_function(|lua, spec| {
            define(lua, spec, "schedules.define", |f, draft, at| {
                let id = f.req_str("id");
                let what = format!("schedule `{id}`");
                let zone_name = f.req_str("time_zone");
                let zone = match zone_name.parse::<chrono_tz::Tz>() {
                    Ok(z) => z,
                    Err(_) => {
                        f.problems
                            .push(format!("{what}: unknown time zone `{zone_name}` (an IANA name like Europe/Oslo)"));
                        chrono_tz::UTC
                    }
                };
                let mut def = ScheduleDef {
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    zone,
                    layers: Vec::new(),
                    overrides: Vec::new(),
                    id,
                    at,
                };
                let mut layers = Vec::new();
                let written = list(f, "layers");
                let any_written = !written.is_empty();
                for (i, layer) in written.into_iter().enumerate() {
                    let layer_what = format!("{what}, layer {}", i + 1);
                    let mut l = match Fields::new(layer, &layer_what) {
                        Ok(l) => l,
                        Err(e) => {
                            f.problems.push(e);
                            continue;
                        }
                    };
                    if let Some(file) = l.opt_str("calendar") {
                        layers.push(LayerDraft::Calendar(file));
                    } else {
                        let agents = l.str_list("rotation");
                        if agents.is_empty() {
                            l.problems.push(format!(
                                "{layer_what}: needs `rotation` (agent ids) or `calendar` (an .ics file)"
                            ));
                        }
                        let start = local(&mut l, "start", true);
                        let end = local(&mut l, "end", false);
                        let shift = l.opt_duration("shift").unwrap_or_default();
                        if shift.0 <= 0 {
                            l.problems
                                .push(format!("{layer_what}: needs a positive `shift` such as \"1d\" or \"12h\""));
                        }
                        if let Some(start) = start {
                            layers.push(LayerDraft::Rotation(Rotation { agents, start, shift, end }));
                        }
                    }
                    f.problems.extend(l.finish());
                }
                for (i, o) in list(f, "overrides").into_iter().enumerate() {
                    let o_what = format!("{what}, override {}", i + 1);
                    let mut o = match Fields::new(o, &o_what) {
                        Ok(o) => o,
                        Err(e) => {
                            f.problems.push(e);
                            continue;
                        }
                    };
                    let agent = o.req_str("agent");
                    if let (Some(from), Some(to)) = (local(&mut o, "from", true), local(&mut o, "to", true)) {
                        let (from, to) = (resolve(zone, from), resolve(zone, to));
                        if to <= from {
                            o.problems.push(format!("{o_what}: ends before it starts"));
                        }
                        def.overrides.push(Override { agent, from, to });
                    }
                    f.problems.extend(o.finish());
                }
                if !any_written && def.overrides.is_empty() {
                    f.problems.push(format!("{what}: needs `layers` or `overrides`"));
                }
                let problems = f.finish();
                // Kept even with problems: the cross-checks still look at its references, so one
                // run reports everything (the load fails anyway).
                draft.schedules.push(ScheduleDraft { def, layers });
                problems
            })
        })?,
    )?;

    // schedules.on_duty("duty", ctx.now) --> { "ivan" }: who is on duty then (empty: nobody)
    ns.set(
        "on_duty",
        lua.create_function(|lua, (id, t): (String, f64)| {
            let at = crate::time::Timestamp((t * 1000.0).round() as i64);
            let agents = super::hours::known(lua, "schedules", &id, |k| {
                k.schedules.get(&id).map(|s| s.on_duty(at).map(|d| d.agents).unwrap_or_default())
            })?;
            let list = lua.create_sequence_from(agents)?;
            list.set_readonly(true);
            Ok(list)
        })?,
    )?;
    lua.globals().set("schedules", ns)
}

/// The entries of a list field.
fn list(f: &mut Fields, key: &'static str) -> Vec<LuaValue> {
    f.table(key).map(|t| t.sequence_values::<LuaValue>().filter_map(Result::ok).collect()).unwrap_or_default()
}

/// A wall-clock time field such as `start = "2026-11-02 09:00"`.
fn local(f: &mut Fields, key: &'static str, required: bool) -> Option<chrono::NaiveDateTime> {
    let text = if required { Some(f.req_str(key)) } else { f.opt_str(key) }?;
    match parse_local(&text) {
        Ok(t) => Some(t),
        Err(e) if !text.is_empty() => {
            f.problems.push(format!("field `{key}`: {e}"));
            None
        }
        Err(_) => None,
    }
}
