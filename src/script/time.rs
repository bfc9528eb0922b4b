//! Lua namespace `time`: durations and timestamps, without access to the wall clock.

use mlua::{Lua, Value as LuaValue};

use super::fields::error_here;
use crate::time::{Duration, Timestamp};

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;
    // time.duration("1h30m") --> 5400 (seconds); errors on "12x".
    ns.set(
        "duration",
        lua.create_function(|lua, v: LuaValue| match super::fields::duration_of(&v) {
            Ok(Some(d)) => Ok(d.as_secs_f64()),
            Ok(None) => Err(error_here(lua, "time.duration expects a duration, got nil")),
            Err(e) => Err(error_here(lua, e)),
        })?,
    )?;
    // time.format(ctx.now) --> "2026-03-02T09:00:00Z"
    ns.set("format", lua.create_function(|_, secs: f64| Ok(Timestamp((secs * 1000.0).round() as i64).to_rfc3339()))?)?;
    // time.format_duration(5400) --> "1h30m"
    ns.set("format_duration", lua.create_function(|_, secs: f64| Ok(Duration::from_secs_f64(secs).to_string()))?)?;
    // time.parse("2026-03-02T09:00:00Z") --> seconds since the epoch
    ns.set(
        "parse",
        lua.create_function(|lua, text: String| {
            Timestamp::parse_rfc3339(&text).map(|t| t.as_secs_f64()).map_err(|e| error_here(lua, e))
        })?,
    )?;
    // time.localtime(ctx.now, "Europe/Oslo") --> { year, month, day, hour, minute, second,
    // (not `time.local`: `local` is a Luau keyword, so `time.local` would not parse)
    //   weekday = "mon", date = "2026-03-02", time = "09:30", offset = 3600 }
    ns.set(
        "localtime",
        lua.create_function(|lua, (secs, zone): (f64, String)| {
            use chrono::{Datelike, Offset, TimeZone, Timelike};
            let tz: chrono_tz::Tz = zone
                .parse()
                .map_err(|_| error_here(lua, format!("unknown time zone `{zone}` (an IANA name like Europe/Oslo)")))?;
            let at = Timestamp((secs * 1000.0).round() as i64);
            let local = tz
                .timestamp_millis_opt(at.0)
                .single()
                .ok_or_else(|| error_here(lua, format!("{secs} is not a time")))?;
            let t = lua.create_table()?;
            t.set("year", local.year())?;
            t.set("month", local.month())?;
            t.set("day", local.day())?;
            t.set("hour", local.hour())?;
            t.set("minute", local.minute())?;
            t.set("second", local.second())?;
            t.set("weekday", crate::hours::WEEKDAYS[local.weekday().num_days_from_monday() as usize])?;
            t.set("date", local.format("%Y-%m-%d").to_string())?;
            t.set("time", local.format("%H:%M").to_string())?;
            t.set("offset", local.offset().fix().local_minus_utc())?;
            t.set_readonly(true);
            Ok(t)
        })?,
    )?;
    lua.globals().set("time", ns)
}
