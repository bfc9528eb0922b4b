//! Lua namespace `log`: messages from scripts, kept with the engine's updates (and `print`).

use mlua::{Lua, Variadic};

/// Messages written since the engine last collected them.
#[derive(Default)]
pub struct LogBuffer(pub Vec<(&'static str, String)>);

pub fn register(lua: &Lua) -> mlua::Result<()> {
    let ns = lua.create_table()?;
    for level in ["debug", "info", "warn", "error"] {
        ns.set(level, lua.create_function(move |lua, parts: Variadic<mlua::Value>| write(lua, level, parts))?)?;
    }
    lua.globals().set("log", ns)?;
    lua.globals().set("print", lua.create_function(|lua, parts: Variadic<mlua::Value>| write(lua, "info", parts))?)
}

fn write(lua: &Lua, level: &'static str, parts: Variadic<mlua::Value>) -> mlua::Result<()> {
    let text: Vec<String> = parts.iter().map(|v| v.to_string().unwrap_or_else(|_| v.type_name().to_string())).collect();
    let at = super::fields::caller(lua);
    let message = format!("{}:{}: {}", at.file, at.line.unwrap_or(0), text.join(" "));
    if let Some(mut buffer) = lua.app_data_mut::<LogBuffer>() {
        super::push_capped(lua, &mut buffer.0, (level, message), super::Pending::LOGS);
    }
    Ok(())
}
