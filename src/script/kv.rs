//! Lua namespace `kv`: the scripts' durable key-value memory, per organization unit
//! ([`crate::kv`]). The host keeps it, not the VM, so it outlives reloads and replays with
//! the journal; a call works inside a policy, a lifecycle hook or a notify function, in the
//! unit of the queue or rule it runs for.

use std::sync::Arc;

use mlua::{Lua, Value as LuaValue};

use super::fields::{duration_of, error_here, from_json, to_json};
use crate::kv::Kv;
use crate::time::Timestamp;

/// The memory, and whose call is running: its unit and the step's clock reading (none while
/// the scripts load).
#[derive(Default)]
pub(crate) struct KvScope {
    pub(crate) kv: Kv,
    pub(crate) unit: Option<Arc<str>>,
    pub(crate) now: Timestamp,
}

fn scoped<R>(lua: &Lua, f: impl FnOnce(&mut Kv, &str, Timestamp) -> Result<R, String>) -> mlua::Result<R> {
    let result = {
        let Some(mut scope) = lua.app_data_mut::<KvScope>() else {
            return Err(error_here(lua, "kv is not available here"));
        };
        let KvScope { kv, unit, now } = &mut *scope;
        match unit.clone() {
            None => Err("kv is for policies, lifecycle hooks and notify functions, not for loading".to_string()),
            Some(unit) => f(kv, &unit, *now),
        }
    };
    result.map_err(|e| error_here(lua, e))
}

fn expiry(ttl: &LuaValue, now: Timestamp) -> Result<Option<Timestamp>, String> {
    Ok(duration_of(ttl)?.map(|d| now + d))
}

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;
    // kv.get("last:+4790000001") --> the value, or nil
    ns.set(
        "get",
        lua.create_function(|lua, key: String| {
            let value = scoped(lua, |kv, unit, now| Ok(kv.get(unit, &key, now).cloned()))?;
            value.map_or(Ok(LuaValue::Nil), |v| from_json(lua, &v))
        })?,
    )?;
    // kv.set("last:+4790000001", "anna", "30d") --> kept for 30 days; kv.set(key, nil) removes it
    ns.set(
        "set",
        lua.create_function(|lua, (key, value, ttl): (String, LuaValue, LuaValue)| {
            let value = to_json(&value).map_err(|e| error_here(lua, format!("kv.set `{key}`: {e}")))?;
            scoped(lua, |kv, unit, now| kv.set(unit, &key, value, expiry(&ttl, now)?, now))
        })?,
    )?;
    // kv.incr("calls:anna", 1, "1d") --> the count after adding
    ns.set(
        "incr",
        lua.create_function(|lua, (key, by, ttl): (String, Option<f64>, LuaValue)| {
            scoped(lua, |kv, unit, now| {
                let by = by.unwrap_or(1.0);
                let current = match kv.get(unit, &key, now) {
                    None => 0.0,
                    Some(v) => v.as_f64().ok_or_else(|| format!("kv.incr `{key}`: holds {v}, not a number"))?,
                };
                let next = current + by;
                let value = serde_json::Number::from_f64(next)
                    .map(serde_json::Value::Number)
                    .ok_or_else(|| format!("kv.incr `{key}`: {next} is not a number kv can keep"))?;
                kv.set(unit, &key, value, expiry(&ttl, now)?, now)?;
                Ok(next)
            })
        })?,
    )?;
    lua.globals().set("kv", ns)
}
