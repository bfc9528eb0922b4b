//! Policy options: what a policy declares it takes, and the check of what a queue gives it.

use std::collections::BTreeMap;

use serde_json::Value;

use super::Location;
use crate::time::Duration;

/// The type of one policy option, checked when the scripts load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    Duration,
    Number,
    Boolean,
    String,
    /// Any Lua value (tables included), passed through unchecked.
    Any,
}

impl OptionKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "duration" => OptionKind::Duration,
            "number" => OptionKind::Number,
            "boolean" => OptionKind::Boolean,
            "string" => OptionKind::String,
            "any" => OptionKind::Any,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct OptionSpec {
    pub kind: OptionKind,
    pub default: Option<Value>,
}

/// A policy's name and the options it accepts.
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    pub name: String,
    pub options: BTreeMap<String, OptionSpec>,
    pub at: Location,
}

impl PolicySpec {
    /// Checks a queue's options against this spec, filling defaults and turning
    /// durations into seconds. Errors are messages for a diagnostic.
    pub fn validate(&self, given: &BTreeMap<String, Value>) -> Result<BTreeMap<String, Value>, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, value) in given {
            let Some(spec) = self.options.get(key) else {
                let known: Vec<&str> = self.options.keys().map(String::as_str).collect();
                errors.push(format!(
                    "policy `{}` has no option `{key}` (it takes: {})",
                    self.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
                continue;
            };
            match coerce(spec.kind, value) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(e) => errors.push(format!("option `{key}` of policy `{}`: {e}", self.name)),
            }
        }
        for (key, spec) in &self.options {
            if out.contains_key(key) || given.contains_key(key) {
                continue;
            }
            if let Some(default) = &spec.default {
                match coerce(spec.kind, default) {
                    Ok(v) => {
                        out.insert(key.clone(), v);
                    }
                    Err(e) => errors.push(format!("default of option `{key}` of policy `{}`: {e}", self.name)),
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

fn coerce(kind: OptionKind, value: &Value) -> Result<Value, String> {
    match (kind, value) {
        (OptionKind::Any, v) => Ok(v.clone()),
        (OptionKind::Duration, Value::String(_) | Value::Number(_)) => {
            let d = match value {
                Value::String(s) => Duration::parse(s)?,
                _ => Duration::from_secs_checked(value.as_f64().unwrap_or(f64::NAN))?,
            };
            // A zero duration option is a timeout that ends at once or a step that repeats at once.
            match d.is_zero() {
                true => Err("a duration option must be longer than zero".into()),
                false => Ok(Value::from(d.as_secs_f64())),
            }
        }
        (OptionKind::Number, Value::Number(_)) => Ok(value.clone()),
        (OptionKind::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (OptionKind::String, Value::String(_)) => Ok(value.clone()),
        (kind, v) => Err(format!("expected a {}, got {v}", format!("{kind:?}").to_lowercase())),
    }
}
