//! Lua namespace `hours`: business hours, defined in scripts and evaluated by the host
//! (time zone and daylight saving included), for queues and policies.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::{Lua, Value as LuaValue};

use super::define;
use super::fields::error_here;
use crate::hours::{parse_interval, HoursDef, WEEKDAYS};
use crate::rules::DEFAULT_UNIT;
use crate::schedule::ScheduleDef;
use crate::time::Timestamp;

/// The definitions scripts may ask about at run time (a policy asking whether the office is
/// open), put into the VM once the rules have loaded.
#[derive(Clone, Default)]
pub(crate) struct Known {
    pub(crate) hours: Arc<BTreeMap<String, HoursDef>>,
    pub(crate) schedules: Arc<BTreeMap<String, ScheduleDef>>,
}

/// The definition `id` of the loaded rules, or an error at the calling line.
pub(super) fn known<T>(lua: &Lua, what: &str, id: &str, pick: impl FnOnce(&Known) -> Option<T>) -> mlua::Result<T> {
    let Some(known) = lua.app_data_ref::<Known>() else {
        return Err(error_here(lua, format!("{what} are known once the scripts have loaded; ask in a policy")));
    };
    pick(&known).ok_or_else(|| error_here(lua, format!("no {what} `{id}`")))
}

fn instant(secs: f64) -> Timestamp {
    Timestamp((secs * 1000.0).round() as i64)
}

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;

    // hours.define{ id = "office", time_zone = "Europe/Oslo",
    //               weekly = { mon = { "08:00-16:00" }, sat = { "10:00-14:00" } },
    //               holidays = { "2026-12-24", "2026-12-25" } }
    ns.set(
        "define",
        lua.create_function(|lua, spec: LuaValue| {
            define(lua, spec, "hours.define", |f, draft, at| {
                let id = f.req_str("id");
                let what = format!("hours.define `{id}`");
                let zone_name = f.req_str("time_zone");
                let zone = zone_name.parse::<chrono_tz::Tz>().unwrap_or_else(|_| {
                    f.problems.push(format!("{what}: unknown time zone `{zone_name}` (an IANA name like Europe/Oslo)"));
                    chrono_tz::UTC
                });
                let mut weekly: [Vec<(u32, u32)>; 7] = Default::default();
                let reported = f.problems.len();
                for (day, intervals) in f.map("weekly") {
                    let Some(i) = WEEKDAYS.iter().position(|d| *d == day) else {
                        f.problems.push(format!("{what}: weekly: `{day}` is not a weekday (mon, tue, ... sun)"));
                        continue;
                    };
                    let list = match intervals {
                        serde_json::Value::Array(list) => list,
                        one @ serde_json::Value::String(_) => vec![one],
                        other => {
                            f.problems.push(format!(
                                "{what}: weekly.{day} must be a list like {{ \"08:00-16:00\" }}, got {other}"
                            ));
                            continue;
                        }
                    };
                    for interval in list {
                        match interval.as_str().map(parse_interval) {
                            Some(Ok(span)) => weekly[i].push(span),
                            Some(Err(e)) => f.problems.push(format!("{what}: weekly.{day}: {e}")),
                            None => f.problems.push(format!("{what}: weekly.{day}: `{interval}` is not a string")),
                        }
                    }
                    weekly[i].sort_unstable();
                }
                // Unless the intervals given were wrong (that says enough).
                if weekly.iter().all(Vec::is_empty) && f.problems.len() == reported {
                    f.problems.push(format!("{what}: weekly gives no opening time, so it would never open"));
                }
                let mut holidays = std::collections::BTreeSet::new();
                for day in f.str_list("holidays") {
                    match chrono::NaiveDate::parse_from_str(&day, "%Y-%m-%d") {
                        Ok(date) => {
                            holidays.insert(date);
                        }
                        Err(_) => f.problems.push(format!("{what}: holidays: `{day}` is not a date like 2026-12-25")),
                    }
                }
                let unit = f.opt_str("unit").unwrap_or_else(|| DEFAULT_UNIT.into());
                // Read when the rules assemble, like a schedule's calendar layer.
                let calendar_file = f.opt_str("calendar");
                draft.hours.push(HoursDef { id, unit, zone, weekly, holidays, calendar_file, calendar: None, at });
                f.finish()
            })
        })?,
    )?;

    // hours.open("office", ctx.now) --> true while the office is open
    ns.set(
        "open",
        lua.create_function(|lua, (id, t): (String, f64)| {
            let open = known(lua, "hours", &id, |k| k.hours.get(&id).map(|h| h.open_at(instant(t))))?;
            Ok(open)
        })?,
    )?;
    // hours.next_change("office", ctx.now) --> when it next opens or closes (seconds), or nil
    ns.set(
        "next_change",
        lua.create_function(|lua, (id, t): (String, f64)| {
            let next = known(lua, "hours", &id, |k| k.hours.get(&id).map(|h| h.next_change(instant(t))))?;
            Ok(next.map(|t| t.as_secs_f64()))
        })?,
    )?;
    lua.globals().set("hours", ns)
}
