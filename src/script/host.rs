//! What an embedding program brings to scripts: its policies written in Rust, and its own Lua
//! functions (a CRM lookup, say) in namespaces of its own.
//!
//! A host function takes and returns plain data (JSON values: numbers, strings, booleans,
//! lists and tables), so it never sees a Lua value, and it runs inside the call that made it:
//! a policy's CPU budget counts its time and the call's memory cap counts what it returns. An
//! error it returns fails the script's call (one decision) with the script's file and line.

use std::fmt;
use std::sync::Arc;

use mlua::{Lua, Value as LuaValue, Variadic};
use serde_json::Value;

use super::fields;
use crate::rules::PolicySpec;

/// One host function: `namespace.name(...)` in Lua.
type Call = Arc<dyn Fn(Vec<Value>) -> Result<Value, String> + Send + Sync>;

#[derive(Clone)]
struct Function {
    namespace: String,
    name: String,
    /// Its Luau type, for the editor definitions: `(number: string) -> { name: string }?`.
    signature: String,
    doc: String,
    call: Call,
}

/// The Lua functions an embedder adds ([`crate::runtime::Builder::functions`]).
#[derive(Clone, Default)]
pub struct HostFunctions {
    functions: Vec<Function>,
}

impl fmt::Debug for HostFunctions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_list().entries(self.functions.iter().map(|h| format!("{}.{}", h.namespace, h.name))).finish()
    }
}

/// Namespaces rota itself defines (and Luau's libraries): a host function may not take them.
const TAKEN: &[&str] = &[
    "presence",
    "agents",
    "teams",
    "queues",
    "policies",
    "templates",
    "schedules",
    "standby",
    "time",
    "workflows",
    "log",
    "test",
    "string",
    "table",
    "math",
    "coroutine",
    "utf8",
    "bit32",
    "buffer",
    "os",
    "debug",
    "require",
];

/// Why a host function was not added.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HostFunctionError {
    #[error("`{0}`: a namespace and a name are Lua identifiers")]
    NotAnIdentifier(String),
    #[error("`{0}` is rota's or Luau's own namespace; pick another")]
    Taken(String),
    #[error("`{0}` is already added")]
    Duplicate(String),
}

impl HostFunctions {
    /// Adds `namespace.name`, of Luau type `signature` (shown in the editor definitions).
    /// Names are Lua identifiers; a namespace of rota's or Luau's own is refused.
    pub fn add(
        &mut self,
        namespace: &str,
        name: &str,
        signature: &str,
        doc: &str,
        call: impl Fn(Vec<Value>) -> Result<Value, String> + Send + Sync + 'static,
    ) -> Result<(), HostFunctionError> {
        let identifier = |s: &str| {
            s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        };
        if !identifier(namespace) || !identifier(name) {
            return Err(HostFunctionError::NotAnIdentifier(format!("{namespace}.{name}")));
        }
        if TAKEN.contains(&namespace) {
            return Err(HostFunctionError::Taken(namespace.into()));
        }
        if self.functions.iter().any(|f| f.namespace == namespace && f.name == name) {
            return Err(HostFunctionError::Duplicate(format!("{namespace}.{name}")));
        }
        let (signature, doc) = (signature.to_string(), doc.to_string());
        let call = Arc::new(call);
        self.functions.push(Function { namespace: namespace.into(), name: name.into(), signature, doc, call });
        Ok(())
    }

    /// Puts the functions into a VM, one frozen table per namespace.
    pub(crate) fn register(&self, lua: &Lua) -> mlua::Result<()> {
        let namespaces: std::collections::BTreeSet<&str> =
            self.functions.iter().map(|f| f.namespace.as_str()).collect();
        for ns in namespaces {
            let table = lua.create_table()?;
            for f in self.functions.iter().filter(|f| f.namespace == ns) {
                let (call, what) = (f.call.clone(), format!("{}.{}", f.namespace, f.name));
                let function = lua.create_function(move |lua, args: Variadic<LuaValue>| {
                    let args = args
                        .iter()
                        .map(fields::to_json)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| fields::error_here(lua, format!("{what}: {e}")))?;
                    match call(args) {
                        Ok(value) => fields::from_json(lua, &value),
                        Err(e) => Err(fields::error_here(lua, format!("{what}: {e}"))),
                    }
                })?;
                table.raw_set(f.name.as_str(), function)?;
            }
            table.set_readonly(true);
            lua.globals().raw_set(ns, table)?;
        }
        Ok(())
    }

    /// The Luau declarations of the functions, for an editor (`rota types` adds them).
    pub fn definitions(&self) -> String {
        let mut out = String::new();
        let namespaces: std::collections::BTreeSet<&str> =
            self.functions.iter().map(|f| f.namespace.as_str()).collect();
        for ns in namespaces {
            out.push_str(&format!("\n-- Host functions of the embedding program.\ndeclare {ns}: {{\n"));
            for f in self.functions.iter().filter(|f| f.namespace == ns) {
                if !f.doc.is_empty() {
                    out.push_str(&format!("    -- {}\n", f.doc));
                }
                out.push_str(&format!("    {}: {},\n", f.name, f.signature));
            }
            out.push_str("}\n");
        }
        out
    }

    pub fn is_empty(&self) -> bool {
        self.functions.is_empty()
    }
}

/// What the host brings to a load of scripts.
#[derive(Clone, Debug, Default)]
pub struct Host {
    /// Policies written in Rust: queues may name them.
    pub policies: Vec<PolicySpec>,
    pub functions: HostFunctions,
}
