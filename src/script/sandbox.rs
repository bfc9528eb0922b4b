//! The Luau VM rota runs scripts in: no files, processes or network, a memory cap and a CPU budget.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::Instant;

use mlua::{Lua, LuaOptions, StdLib, Value as LuaValue, VmState};

/// Limits for one VM. Both are configurable; the defaults suit a policy that scans a few hundred agents.
#[derive(Clone, Debug)]
pub struct Limits {
    /// Lua heap cap in bytes.
    pub memory: usize,
    /// CPU time one policy call may use before it is stopped.
    pub cpu_per_call: std::time::Duration,
    /// CPU time loading one script file may use.
    pub cpu_per_load: std::time::Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 * 1024 * 1024,
            cpu_per_call: std::time::Duration::from_millis(20),
            cpu_per_load: std::time::Duration::from_secs(2),
        }
    }
}

/// The CPU budget of the call in progress, checked by the Luau interrupt.
///
/// This is the one place the script layer reads a clock: a monotonic stopwatch
/// that can only abort a runaway call, never feed a decision.
#[derive(Default)]
pub struct Budget {
    deadline: Cell<Option<Instant>>,
    ticks: Cell<u32>,
    expired: Cell<bool>,
    limit_ms: Cell<u128>,
}

impl Budget {
    pub fn arm(&self, limit: std::time::Duration) {
        self.deadline.set(Some(Instant::now() + limit));
        self.limit_ms.set(limit.as_millis());
        self.expired.set(false);
    }

    pub fn disarm(&self) {
        self.deadline.set(None);
        self.expired.set(false);
    }

    fn check(&self, lua: &Lua) -> mlua::Result<VmState> {
        let Some(deadline) = self.deadline.get() else {
            return Ok(VmState::Continue);
        };
        // Once expired, every later interrupt fails too, so a `pcall` around a loop cannot swallow it.
        if !self.expired.get() {
            let ticks = self.ticks.get().wrapping_add(1);
            self.ticks.set(ticks);
            if ticks % 256 != 0 || Instant::now() < deadline {
                return Ok(VmState::Continue);
            }
            self.expired.set(true);
        }
        let message = format!("CPU budget of {}ms exceeded", self.limit_ms.get());
        Err(super::fields::error_at(lua, 0, message))
    }
}

/// Module sources `require` may load, by module name (`rota.candidates`, `lib.util`).
#[derive(Default)]
pub struct Modules {
    pub sources: BTreeMap<String, (String, String)>,
    pub loaded: BTreeMap<String, LuaValue>,
    pub loading: Vec<String>,
}

/// A fresh VM with the safe libraries only, `require` limited to known modules, and the limits set.
pub fn new_vm(limits: &Limits) -> mlua::Result<(Lua, Rc<Budget>)> {
    let libs =
        StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::BIT | StdLib::MATH | StdLib::BUFFER;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    let globals = lua.globals();
    // mlua installs a filesystem `require` and `loadstring`; rules get neither, nor environment tricks.
    for name in ["loadstring", "getfenv", "setfenv", "gcinfo", "newproxy"] {
        globals.raw_set(name, LuaValue::Nil)?;
    }
    globals.raw_set("require", lua.create_function(require)?)?;
    lua.set_app_data(Modules::default());

    // Deterministic randomness: the same inputs give the same picks, in tests and simulations.
    let math: mlua::Table = globals.get("math")?;
    lua.set_app_data(Rng(0x5EED_0F_A0A0));
    math.raw_set(
        "random",
        lua.create_function(|lua, (m, n): (Option<i64>, Option<i64>)| {
            let x = lua.app_data_mut::<Rng>().map(|mut r| r.next()).unwrap_or(0);
            let unit = (x >> 11) as f64 / (1u64 << 53) as f64;
            Ok(match (m, n) {
                (None, _) => mlua::Value::Number(unit),
                (Some(m), None) if m >= 1 => mlua::Value::Integer(1 + (unit * m as f64) as i64),
                (Some(m), Some(n)) if n >= m => mlua::Value::Integer(m + (unit * (n - m + 1) as f64) as i64),
                _ => return Err(mlua::Error::runtime("math.random: interval is empty")),
            })
        })?,
    )?;
    math.raw_set(
        "randomseed",
        lua.create_function(|lua, seed: i64| {
            if let Some(mut r) = lua.app_data_mut::<Rng>() {
                r.0 = seed as u64;
            }
            Ok(())
        })?,
    )?;

    let budget = Rc::new(Budget::default());
    let b = budget.clone();
    lua.set_interrupt(move |lua| b.check(lua));
    lua.set_memory_limit(limits.memory)?;
    Ok((lua, budget))
}

/// splitmix64: small, fast and reproducible.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// `require("name")`: only modules of the stdlib or the scripts folder, each run once.
fn require(lua: &Lua, name: String) -> mlua::Result<LuaValue> {
    let source = {
        let modules = lua.app_data_ref::<Modules>().expect("modules are set up with the VM");
        if let Some(v) = modules.loaded.get(&name) {
            return Ok(v.clone());
        }
        if modules.loading.contains(&name) {
            let cycle = format!("require cycle: {} -> {name}", modules.loading.join(" -> "));
            drop(modules);
            return Err(super::fields::error_here(lua, cycle));
        }
        match modules.sources.get(&name) {
            Some(s) => s.clone(),
            None => {
                let known: Vec<&String> = modules.sources.keys().collect();
                let hint = crate::rules::suggest(&name, known.into_iter());
                drop(modules);
                return Err(super::fields::error_here(
                    lua,
                    format!("module `{name}` not found{hint}: require loads only the stdlib (rota.*) and .lua files in subfolders of the scripts folder"),
                ));
            }
        }
    };
    let (file, code) = source;
    lua.app_data_mut::<Modules>().unwrap().loading.push(name.clone());
    let result = lua.load(code.as_str()).set_name(format!("@{file}")).call::<LuaValue>(());
    let mut modules = lua.app_data_mut::<Modules>().unwrap();
    modules.loading.pop();
    let value = match result? {
        LuaValue::Nil => LuaValue::Boolean(true),
        v => v,
    };
    modules.loaded.insert(name, value.clone());
    Ok(value)
}
