//! Lua namespace `log`: messages from scripts, kept with the engine's updates (and `print`).

use mlua::{Lua, Variadic};

/// The longest message kept whole; longer ones are cut with a mark saying how much.
pub(super) const MAX_LINE: usize = 1024;
/// What scripts may log between two collections by the engine (one decision, one input), in
/// bytes; past it lines are counted, not kept, and a last line says how many went.
pub(super) const MAX_BYTES: usize = 32 * 1024;

/// Messages written since the engine last collected them, bounded (see [`MAX_BYTES`]).
#[derive(Default)]
pub(super) struct LogBuffer {
    lines: Vec<(&'static str, String)>,
    bytes: usize,
    dropped: usize,
}

impl LogBuffer {
    fn push(&mut self, level: &'static str, message: String) {
        if self.bytes + message.len() > MAX_BYTES {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push((level, message));
    }

    /// The lines kept, and a last one counting those that were not.
    pub(super) fn take(&mut self) -> Vec<(&'static str, String)> {
        let mut lines = std::mem::take(&mut self.lines);
        if self.dropped > 0 {
            lines.push((
                "warn",
                format!("… {} more log lines dropped: at most {MAX_BYTES} bytes are kept per decision", self.dropped),
            ));
        }
        self.bytes = 0;
        self.dropped = 0;
        lines
    }
}

pub(super) fn register(lua: &Lua) -> mlua::Result<()> {
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
    let message = cut(format!("{}:{}: {}", at.file, at.line.unwrap_or(0), text.join(" ")), MAX_LINE);
    if let Some(mut buffer) = lua.app_data_mut::<LogBuffer>() {
        buffer.push(level, message);
    }
    super::Pending::mark(lua, super::Pending::LOGS);
    Ok(())
}

/// `text` cut to about `max` bytes (at a character boundary), with a mark saying how much went.
pub(super) fn cut(mut text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    let cut = text.len() - end;
    text.truncate(end);
    text.push_str(&format!("… ({cut} more bytes cut)"));
    text
}
