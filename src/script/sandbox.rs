//! The Luau VM rota runs scripts in: no files, processes or network, a memory cap and a CPU budget.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::time::Instant;

use std::ffi::{c_char, c_int};

use mlua::{ffi, Lua, LuaOptions, StdLib, Value as LuaValue};

/// Limits for one VM. Both are configurable; the defaults suit a policy that scans a few hundred agents.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Limits {
    /// Memory one call may allocate on top of what the VM held before it, in bytes.
    pub memory: usize,
    /// Memory the VM may hold in all, in bytes: the view tables plus whatever scripts keep
    /// between calls (memos, module state). A call that would take the VM past it fails with
    /// a memory error; the host's own writes are not limited, so the host never fails on it.
    pub memory_total: usize,
    /// CPU time one policy call may use before it is stopped.
    pub cpu_per_call: std::time::Duration,
    /// CPU time loading one script file may use.
    pub cpu_per_load: std::time::Duration,
    /// Compile policies to machine code (Luau native code generation) where the platform
    /// supports it: the files that register policies and the modules they `require`, not
    /// files that only define things. Policies run faster; loading takes a few milliseconds
    /// more. Off for `rota test`, whose every case loads the rules afresh; the behaviour is
    /// the same either way.
    pub native_code: bool,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            memory: 64 * 1024 * 1024,
            memory_total: 512 * 1024 * 1024,
            cpu_per_call: std::time::Duration::from_millis(20),
            cpu_per_load: std::time::Duration::from_secs(2),
            native_code: true,
        }
    }
}

impl Limits {
    /// These limits with another CPU budget for loading a generation.
    pub fn cpu_per_load(self, budget: std::time::Duration) -> Self {
        Limits { cpu_per_load: budget, ..self }
    }
}

/// The CPU budget of the call in progress, checked by the Luau interrupt.
///
/// This is the one place the script layer reads a clock: a monotonic stopwatch
/// that can only abort a runaway call, never feed a decision. A VM runs on one
/// thread and one call at a time, so the budget lives in a thread-local.
#[derive(Clone, Copy, Default)]
struct Budget {
    deadline: Option<Instant>,
    expired: bool,
    limit_ms: u64,
}

thread_local! {
    static BUDGET: Cell<Budget> = Cell::new(Budget::default());
    /// Interrupts seen under the running budget; the clock is read every 128th. Each budget
    /// counts its own: a shared count could keep landing that check in an inner call's code,
    /// and the outer budget would never be checked.
    static TICKS: Cell<u32> = const { Cell::new(0) };
    /// Budgets (and tick counts) of the calls the running one is inside (a `rota test` case
    /// calling into the engine, whose policies have budgets of their own), restored by `disarm`.
    static OUTER: std::cell::RefCell<Vec<(Budget, u32)>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Makes `next` the running budget, keeping the current one to come back to.
fn push(next: Budget) {
    let current = (BUDGET.with(|b| b.replace(next)), TICKS.with(|t| t.replace(0)));
    OUTER.with(|o| o.borrow_mut().push(current));
}

/// Starts the CPU budget for one call (or one file being loaded), inside any already running.
pub(super) fn arm(limit: std::time::Duration) {
    push(Budget { deadline: Some(Instant::now() + limit), expired: false, limit_ms: limit.as_millis() as u64 });
}

/// Lifts the running budget until the matching `disarm`: for host work called from Lua that
/// runs Lua of another VM (a test case driving the engine), which must not be stopped by the
/// caller's budget. The time still counts: the caller's budget runs out once it is back.
pub(super) fn suspend() {
    push(Budget::default());
}

/// Ends the budget `arm` (or `suspend`) started; the one it ran inside applies again.
pub(super) fn disarm() {
    let (budget, ticks) = OUTER.with(|o| o.borrow_mut().pop()).unwrap_or_default();
    BUDGET.with(|b| b.set(budget));
    TICKS.with(|t| t.set(ticks));
}

/// The limit in milliseconds if the budget is spent.
fn spent() -> Option<u64> {
    let b = BUDGET.with(Cell::get);
    let deadline = b.deadline?;
    // Once expired, every later interrupt fails too, so a `pcall` around a loop cannot swallow it.
    if !b.expired {
        let ticks = TICKS.with(|t| {
            let n = t.get().wrapping_add(1);
            t.set(n);
            n
        });
        if !ticks.is_multiple_of(128) || Instant::now() < deadline {
            return None;
        }
        BUDGET.with(|c| c.set(Budget { expired: true, ..b }));
    }
    Some(b.limit_ms)
}

/// The Luau interrupt, installed directly: it runs at every call and loop back-edge, so it
/// must cost next to nothing until the budget is spent. Then it raises a Lua error
/// naming the line that was running.
unsafe extern "C-unwind" fn interrupt(state: *mut ffi::lua_State, gc: c_int) {
    if gc >= 0 {
        return;
    }
    let Some(limit_ms) = spent() else { return };
    let mut text = [0u8; 64];
    let len = {
        use std::io::Write;
        let mut cursor = std::io::Cursor::new(&mut text[..]);
        let _ = write!(cursor, "CPU budget of {limit_ms}ms exceeded");
        cursor.position() as usize
    };
    // SAFETY: Luau calls the interrupt on a running thread with room for these two pushes;
    // nothing owned by Rust is alive past this point, because lua_error unwinds out of this
    // frame (the text is a stack array, copied by the push).
    unsafe {
        ffi::luaL_where(state, 0);
        ffi::lua_pushlstring(state, text.as_ptr() as *const c_char, len);
        ffi::lua_concat(state, 2);
        ffi::lua_error(state);
    }
}

/// Compiles a chunk that runs on every decision (a module policies `require`, the view's
/// wrapper, the decision helpers) to native code when the VM was made with
/// [`Limits::native_code`].
pub(super) fn compile_if_native(lua: &Lua, f: &mlua::Function) {
    if lua.app_data_ref::<Modules>().is_some_and(|m| m.native) {
        compile_native(lua, f);
    }
}

use super::stack::compile_native;

/// Module sources `require` may load, by module name (`rota.candidates`, `lib.util`).
#[derive(Default)]
pub(super) struct Modules {
    pub sources: BTreeMap<String, (String, String)>,
    pub loaded: BTreeMap<String, LuaValue>,
    pub loading: Vec<String>,
    /// Compile modules to native code ([`Limits::native_code`]): they are the helpers policies
    /// call (`rota.candidates` walks the candidate list).
    pub native: bool,
}

impl Modules {
    /// Makes stdlib modules (from [`super::stdlib_modules`]) and a folder's own modules (as
    /// [`super::Sources::modules`] holds them) loadable.
    pub(super) fn add<'a>(
        &mut self,
        stdlib: impl Iterator<Item = (String, &'a str, &'a str)>,
        folder: &[(String, String, String)],
    ) {
        for (name, path, code) in stdlib {
            self.sources.insert(name, (format!("stdlib/{path}"), code.to_string()));
        }
        for (name, rel, code) in folder {
            self.sources.insert(name.clone(), (rel.clone(), code.clone()));
        }
    }
}

/// A fresh VM with the safe libraries only, `require` limited to known modules, and the limits set.
pub(super) fn new_vm(limits: &Limits) -> mlua::Result<Lua> {
    let libs =
        StdLib::COROUTINE | StdLib::TABLE | StdLib::STRING | StdLib::UTF8 | StdLib::BIT | StdLib::MATH | StdLib::BUFFER;
    let lua = Lua::new_with(libs, LuaOptions::default())?;
    // Not every chunk: see `Modules::native` and `super::stack::compile_native`.
    lua.enable_jit(false);
    // Level 2 inlines small local functions (better(), unfit()) into the policies' loops.
    lua.set_compiler(mlua::chunk::Compiler::new().set_optimization_level(2));
    let globals = lua.globals();
    // mlua installs a filesystem `require` and `loadstring`; rules get neither, nor environment tricks.
    for name in ["loadstring", "getfenv", "setfenv", "gcinfo", "newproxy"] {
        globals.raw_set(name, LuaValue::Nil)?;
    }
    globals.raw_set("require", lua.create_function(require)?)?;
    lua.set_app_data(Modules { native: limits.native_code, ..Modules::default() });

    // Deterministic randomness: the same inputs give the same picks, in tests and simulations.
    let math: mlua::Table = globals.get("math")?;
    lua.set_app_data(Rng(0x005E_ED0F_A0A0));
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

    // SAFETY: only the interrupt slot of this VM's callbacks is written; mlua does not use it
    // unless `set_interrupt` is called, which rota never does.
    unsafe {
        lua.exec_raw::<()>((), |state| {
            (*ffi::lua_callbacks(state)).interrupt = Some(interrupt);
        })?;
    }
    lua.set_memory_limit(limits.memory)?;
    Ok(lua)
}

/// splitmix64: small, fast and reproducible.
pub(super) struct Rng(pub u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
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
    let result = lua.load(code.as_str()).set_name(format!("@{file}")).into_function().and_then(|f| {
        compile_if_native(lua, &f);
        f.call::<LuaValue>(())
    });
    let mut modules = lua.app_data_mut::<Modules>().unwrap();
    modules.loading.pop();
    let value = match result? {
        LuaValue::Nil => LuaValue::Boolean(true),
        v => v,
    };
    modules.loaded.insert(name, value.clone());
    Ok(value)
}
