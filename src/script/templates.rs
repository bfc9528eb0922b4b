//! Lua namespace `templates`: the subject, email body and SMS body of notification messages.

use mlua::Lua;

use super::define;
use crate::rules::DEFAULT_UNIT;
use crate::template::{TemplateDef, DEFAULT_SMS_MAX};

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // templates.define{ id = "missed_call", subject = "Missed call from {{ caller.number }}",
    //                   email = [[<p>...</p>]], sms = "Missed call ...", sms_max = 306 }
    ns.set(
        "define",
        lua.create_function(|lua, spec| {
            define(lua, spec, "templates.define", |f, draft, at| {
                let def = TemplateDef {
                    id: f.req_str("id"),
                    unit: f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into()),
                    subject: f.req_str("subject"),
                    email: f.opt_str("email"),
                    sms: f.opt_str("sms"),
                    sms_max: f.opt_number("sms_max").map_or(DEFAULT_SMS_MAX, |n| n.max(1.0) as usize),
                    at,
                };
                let _ = f.opt_str("description");
                let problems = f.finish();
                // Kept even with problems: the cross-checks still look at its references, so one
                // run reports everything (the load fails anyway).
                draft.templates.push(def);
                problems
            })
        })?,
    )?;

    lua.globals().set("templates", ns)
}
