//! Reading definition tables from Lua: typed fields, unknown-key checks, source locations.

use std::collections::BTreeMap;

use mlua::{Lua, Table, Value as LuaValue};
use serde_json::Value;

use crate::rules::Location;
use crate::time::Duration;

/// The file and line of the Lua code that called the current Rust function.
pub(crate) fn caller(lua: &Lua) -> Location {
    // Level 0 is the Rust function itself; level 1 is the Lua line that called it.
    location(lua, 1)
}

/// A runtime error that names the Lua line that called the current Rust function.
pub(crate) fn error_here(lua: &Lua, message: impl std::fmt::Display) -> mlua::Error {
    error_at(lua, 1, message)
}

/// A runtime error that names the innermost Lua line at or above stack level `from`.
pub(crate) fn error_at(lua: &Lua, from: usize, message: impl std::fmt::Display) -> mlua::Error {
    let at = location(lua, from);
    match at.line {
        Some(line) => mlua::Error::runtime(format!("{}:{line}: {message}", at.file)),
        None => mlua::Error::runtime(message.to_string()),
    }
}

/// The innermost Lua frame at or above stack level `from`.
pub(crate) fn location(lua: &Lua, from: usize) -> Location {
    for level in from..from + 4 {
        let found = lua.inspect_stack(level, |d| {
            let src = d.source();
            let file = src.short_src.map(|s| s.to_string()).unwrap_or_default();
            (file, d.current_line())
        });
        if let Some((file, line)) = found {
            if line.is_some() && !file.is_empty() && file != "[C]" {
                return Location { file, line: line.map(|l| l as u32) };
            }
        }
    }
    Location::default()
}

/// A definition table being read. Problems are collected, not thrown, so one
/// load reports every mistake at once.
pub(crate) struct Fields<'a> {
    table: Table,
    what: &'a str,
    pub problems: Vec<String>,
    known: Vec<&'static str>,
}

impl<'a> Fields<'a> {
    pub(crate) fn new(value: LuaValue, what: &'a str) -> Result<Self, String> {
        match value {
            LuaValue::Table(table) => Ok(Fields { table, what, problems: Vec::new(), known: Vec::new() }),
            other => Err(format!("{what} expects a table, got {}", other.type_name())),
        }
    }

    fn get(&mut self, key: &'static str) -> LuaValue {
        self.known.push(key);
        self.table.raw_get(key).unwrap_or(LuaValue::Nil)
    }

    fn wrong(&mut self, key: &str, expected: &str, got: &LuaValue) {
        self.problems.push(format!("{}: field `{key}` must be {expected}, got {}", self.what, got.type_name()));
    }

    pub(crate) fn opt_str(&mut self, key: &'static str) -> Option<String> {
        match self.get(key) {
            LuaValue::Nil => None,
            LuaValue::String(s) => Some(s.to_string_lossy()),
            other => {
                self.wrong(key, "a string", &other);
                None
            }
        }
    }

    pub(crate) fn req_str(&mut self, key: &'static str) -> String {
        match self.opt_str(key) {
            Some(s) if !s.is_empty() => s,
            Some(_) => {
                self.problems.push(format!("{}: field `{key}` must not be empty", self.what));
                String::new()
            }
            None => {
                if !self.problems.iter().any(|p| p.contains(&format!("`{key}`"))) {
                    self.problems.push(format!("{}: field `{key}` is required", self.what));
                }
                String::new()
            }
        }
    }

    pub(crate) fn opt_bool(&mut self, key: &'static str) -> Option<bool> {
        match self.get(key) {
            LuaValue::Nil => None,
            LuaValue::Boolean(b) => Some(b),
            other => {
                self.wrong(key, "true or false", &other);
                None
            }
        }
    }

    pub(crate) fn opt_number(&mut self, key: &'static str) -> Option<f64> {
        match self.get(key) {
            LuaValue::Nil => None,
            LuaValue::Integer(i) => Some(i as f64),
            LuaValue::Number(n) => Some(n),
            other => {
                self.wrong(key, "a number", &other);
                None
            }
        }
    }

    /// A duration that must be longer than zero (a time to wait before asking again).
    pub(crate) fn opt_positive_duration(&mut self, key: &'static str) -> Option<Duration> {
        let d = self.opt_duration(key)?;
        if d.is_zero() {
            self.problems.push(format!("{}: field `{key}` must be longer than zero", self.what));
            return None;
        }
        Some(d)
    }

    /// A duration written as a string (`"12h"`) or a number of seconds.
    pub(crate) fn opt_duration(&mut self, key: &'static str) -> Option<Duration> {
        let value = self.get(key);
        match duration_of(&value) {
            Ok(d) => d,
            Err(e) => {
                self.problems.push(format!("{}: field `{key}`: {e}", self.what));
                None
            }
        }
    }

    /// An array of strings.
    pub(crate) fn str_list(&mut self, key: &'static str) -> Vec<String> {
        match self.get(key) {
            LuaValue::Nil => Vec::new(),
            LuaValue::Table(t) => {
                let mut out = Vec::new();
                for v in t.sequence_values::<LuaValue>() {
                    match v {
                        Ok(LuaValue::String(s)) => out.push(s.to_string_lossy()),
                        Ok(other) => self.wrong(key, "a list of strings", &other),
                        Err(e) => self.problems.push(e.to_string()),
                    }
                }
                out
            }
            other => {
                self.wrong(key, "a list of strings", &other);
                Vec::new()
            }
        }
    }

    /// One string or a list of them (`standby = "x"` or `standby = { "x", "y" }`).
    pub(crate) fn str_or_list(&mut self, key: &'static str) -> Vec<String> {
        if let LuaValue::String(s) = self.table.raw_get(key).unwrap_or(LuaValue::Nil) {
            self.known.push(key);
            return vec![s.to_string_lossy()];
        }
        self.str_list(key)
    }

    /// The raw value of a field whose shape the caller checks.
    pub(crate) fn value(&mut self, key: &'static str) -> LuaValue {
        self.get(key)
    }

    /// A table converted to plain data (for options and attributes).
    pub(crate) fn map(&mut self, key: &'static str) -> BTreeMap<String, Value> {
        match self.get(key) {
            LuaValue::Nil => BTreeMap::new(),
            LuaValue::Table(t) => match to_json(&LuaValue::Table(t)) {
                Ok(Value::Object(m)) => m.into_iter().collect(),
                Ok(Value::Array(a)) if a.is_empty() => BTreeMap::new(),
                Ok(_) => {
                    self.problems.push(format!("{}: field `{key}` must be a table with named keys", self.what));
                    BTreeMap::new()
                }
                Err(e) => {
                    self.problems.push(format!("{}: field `{key}`: {e}", self.what));
                    BTreeMap::new()
                }
            },
            other => {
                self.wrong(key, "a table", &other);
                BTreeMap::new()
            }
        }
    }

    pub(crate) fn table(&mut self, key: &'static str) -> Option<Table> {
        match self.get(key) {
            LuaValue::Nil => None,
            LuaValue::Table(t) => Some(t),
            other => {
                self.wrong(key, "a table", &other);
                None
            }
        }
    }

    pub(crate) fn opt_function(&mut self, key: &'static str) -> Option<mlua::Function> {
        match self.get(key) {
            LuaValue::Function(f) => Some(f),
            LuaValue::Nil => None,
            other => {
                self.wrong(key, "a function", &other);
                None
            }
        }
    }

    pub(crate) fn function(&mut self, key: &'static str) -> Option<mlua::Function> {
        match self.get(key) {
            LuaValue::Function(f) => Some(f),
            LuaValue::Nil => {
                self.problems.push(format!("{}: field `{key}` is required", self.what));
                None
            }
            other => {
                self.wrong(key, "a function", &other);
                None
            }
        }
    }

    /// Reports keys that no getter asked for: a typo like `polcy` should not pass silently.
    /// A string field read without checking it (the id of a definition that failed).
    pub(crate) fn raw_str(&self, key: &str) -> Option<String> {
        match self.table.raw_get::<LuaValue>(key) {
            Ok(LuaValue::String(s)) => Some(s.to_string_lossy()),
            _ => None,
        }
    }

    pub(crate) fn finish(&mut self) -> Vec<String> {
        for pair in self.table.pairs::<LuaValue, LuaValue>() {
            let Ok((key, _)) = pair else { continue };
            let name = match &key {
                LuaValue::String(s) => s.to_string_lossy(),
                other => format!("[{}]", other.type_name()),
            };
            if !self.known.contains(&name.as_str()) {
                let known: Vec<String> = self.known.iter().map(|k| k.to_string()).collect();
                let hint = crate::rules::suggest(&name, known.iter());
                self.problems.push(format!("{}: unknown field `{name}`{hint}", self.what));
            }
        }
        std::mem::take(&mut self.problems)
    }
}

/// A script value as text without running script code: strings, numbers and booleans as
/// themselves, anything else by its type (a `__tostring` metamethod is never called, so a
/// value that loops or errors in one cannot stop the host).
pub(crate) fn plain_text(value: &LuaValue) -> String {
    match value {
        LuaValue::String(s) => s.to_string_lossy(),
        LuaValue::Integer(i) => i.to_string(),
        LuaValue::Number(n) => n.to_string(),
        LuaValue::Boolean(b) => b.to_string(),
        LuaValue::Nil => "nil".into(),
        other => format!("a {} value", other.type_name()),
    }
}

/// A duration from Lua: `nil`, a string such as `"90s"`, or a number of seconds.
pub(crate) fn duration_of(value: &LuaValue) -> Result<Option<Duration>, String> {
    match value {
        LuaValue::Nil => Ok(None),
        LuaValue::Integer(i) => Ok(Some(Duration::from_secs_checked(*i as f64)?)),
        LuaValue::Number(n) => Ok(Some(Duration::from_secs_checked(*n)?)),
        LuaValue::String(s) => Ok(Some(Duration::parse(&s.to_string_lossy())?)),
        other => Err(format!("expected a duration like \"30s\" or a number of seconds, got {}", other.type_name())),
    }
}

/// How deep Lua data handed to the host may nest: deeper is refused (a table that contains
/// itself is endlessly deep), so converting it can never overflow the host's stack.
pub(crate) const MAX_DEPTH: usize = 64;
/// How many values Lua data handed to the host may hold in all.
pub(crate) const MAX_VALUES: usize = 100_000;

/// Lua data to JSON-like data. Functions and other non-data values are refused, and so are
/// tables nested more than [`MAX_DEPTH`] deep (a table that contains itself) or holding more
/// than [`MAX_VALUES`] values. Reads are raw: no metamethod runs.
pub(crate) fn to_json(value: &LuaValue) -> Result<Value, String> {
    let mut left = MAX_VALUES;
    json_of(value, 0, &mut left)
}

fn json_of(value: &LuaValue, depth: usize, left: &mut usize) -> Result<Value, String> {
    if *left == 0 {
        return Err(format!("more than {MAX_VALUES} values in one table"));
    }
    *left -= 1;
    Ok(match value {
        LuaValue::Nil => Value::Null,
        LuaValue::Boolean(b) => Value::Bool(*b),
        LuaValue::Integer(i) => Value::from(*i),
        LuaValue::Number(n) => serde_json::Number::from_f64(*n).map(Value::Number).unwrap_or(Value::Null),
        LuaValue::String(s) => Value::String(s.to_string_lossy()),
        LuaValue::Table(_) if depth >= MAX_DEPTH => {
            return Err(format!("tables nested more than {MAX_DEPTH} deep (does a table contain itself?)"))
        }
        LuaValue::Table(t) => {
            let len = t.raw_len();
            let pairs = t.pairs::<LuaValue, LuaValue>().count();
            if len > 0 && len == pairs {
                let mut items = Vec::with_capacity(len.min(*left));
                for i in 1..=len {
                    let v = t.raw_get::<LuaValue>(i).map_err(|e| e.to_string())?;
                    items.push(json_of(&v, depth + 1, left)?);
                }
                Value::Array(items)
            } else {
                let mut map = serde_json::Map::new();
                for pair in t.pairs::<LuaValue, LuaValue>() {
                    let (k, v) = pair.map_err(|e| e.to_string())?;
                    let key = match k {
                        LuaValue::String(s) => s.to_string_lossy(),
                        LuaValue::Integer(i) => i.to_string(),
                        other => return Err(format!("table keys must be strings, got {}", other.type_name())),
                    };
                    map.insert(key, json_of(&v, depth + 1, left)?);
                }
                Value::Object(map)
            }
        }
        other => return Err(format!("{} values cannot be used here", other.type_name())),
    })
}

/// JSON-like data to a Lua value (a fresh table for objects and arrays).
pub(crate) fn from_json(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    lua_of(lua, value, false)
}

/// Like [`from_json`], with every table read-only to scripts (the host's view of data).
pub(crate) fn from_json_frozen(lua: &Lua, value: &Value) -> mlua::Result<LuaValue> {
    lua_of(lua, value, true)
}

fn lua_of(lua: &Lua, value: &Value, frozen: bool) -> mlua::Result<LuaValue> {
    let table = match value {
        Value::Null => return Ok(LuaValue::Nil),
        Value::Bool(b) => return Ok(LuaValue::Boolean(*b)),
        Value::Number(n) => {
            return Ok(match n.as_i64() {
                Some(i) => LuaValue::Integer(i as _),
                None => LuaValue::Number(n.as_f64().unwrap_or(0.0)),
            })
        }
        Value::String(s) => return Ok(LuaValue::String(lua.create_string(s)?)),
        Value::Array(items) => {
            let t = lua.create_table_with_capacity(items.len(), 0)?;
            for item in items {
                t.raw_push(lua_of(lua, item, frozen)?)?;
            }
            t
        }
        Value::Object(map) => {
            let t = lua.create_table_with_capacity(0, map.len())?;
            for (k, v) in map {
                t.raw_set(k.as_str(), lua_of(lua, v, frozen)?)?;
            }
            t
        }
    };
    if frozen {
        table.set_readonly(true);
    }
    Ok(LuaValue::Table(table))
}
