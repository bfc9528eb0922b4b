//! The Lua side of `rota test`: a test file's `describe` / `it` / `before_each` /
//! `after_each` blocks, collected when the file loads and run one case at a time against a
//! [`World`] (the engine under test, behind a plain JSON interface so this layer does not know
//! the engine's types). The test API itself is the stdlib module `rota.test`, written in Lua
//! over `require("rota.test.host").act`.

use std::time::Duration;

use mlua::{Function, Lua, Value as LuaValue};
use serde_json::Value;

use super::{fields, sandbox, Limits};
use crate::error::Diagnostic;

/// What a test case acts on: a fresh engine per case, driven by named actions with JSON
/// arguments (`input`, `arrive`, `at`, `advance`, `conversation`, `agent`, `notifications`, ...).
pub(crate) trait World {
    fn act(&mut self, action: &str, args: Value) -> Result<Value, String>;
}

/// One `it` block.
pub(crate) struct Case {
    /// The names of the enclosing `describe` blocks and the case, joined by " > ".
    pub name: String,
    /// Where the `it` is.
    pub line: Option<u32>,
    body: Function,
    /// `before_each` functions of the enclosing blocks, outermost first.
    before: Vec<Function>,
    /// `after_each` functions, innermost first.
    after: Vec<Function>,
}

/// Why a case failed: the message (with `file:line:` of the failing line when known) and a
/// traceback of the Lua stack.
#[derive(Clone, Debug)]
pub struct Failure {
    pub message: String,
    pub file: Option<String>,
    pub line: Option<u32>,
    /// A failed expectation (or an input the engine refused), or an error in the test's
    /// own code: JUnit tells them apart as `<failure>` and `<error>`.
    pub kind: FailureKind,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FailureKind {
    /// What the rules did is not what the test expects.
    Expectation,
    /// The test itself broke: a Lua error, a CPU budget spent, an engine that would not start.
    Error,
}

/// A loaded test file: its cases, ready to run.
pub(crate) struct Suite {
    lua: Lua,
    pub cases: Vec<Case>,
}

/// The blocks being collected while a test file loads: one level for the file, one more per
/// `describe` being run.
struct Collecting {
    path: Vec<String>,
    before: Vec<Vec<Function>>,
    after: Vec<Vec<Function>>,
    cases: Vec<Case>,
}

impl Default for Collecting {
    fn default() -> Self {
        Collecting { path: Vec::new(), before: vec![Vec::new()], after: vec![Vec::new()], cases: Vec::new() }
    }
}

/// The world of the case being run, and what it printed.
struct Running {
    world: Box<dyn World>,
    output: String,
}

/// What running one case gave.
pub(crate) struct Ran {
    pub result: Result<(), Failure>,
    /// What the case printed (`print`), for showing beside a failure.
    pub output: String,
}

/// Raised by `host.fail`: a failed expectation, whose message needs no traceback.
const EXPECTATION: &str = "\u{1}expectation\u{1}";

impl Suite {
    /// Loads test file `file` (its text `code`). `modules` are the scripts folder's modules, so
    /// a test can `require` what the rules use, and `functions` the embedding program's, so a
    /// test can call what the rules call. Nothing runs but the `describe` bodies.
    pub(crate) fn load(
        file: &str,
        code: &str,
        modules: &[(String, String, String)],
        functions: &super::HostFunctions,
        limits: &Limits,
    ) -> Result<Suite, Diagnostic> {
        let lua = vm(modules, functions, limits)
            .map_err(|e| Diagnostic::new(file, None, format!("could not set up the Lua VM: {e}")))?;
        lua.set_app_data(Collecting::default());
        sandbox::arm(limits.cpu_per_load);
        let loaded = lua.load(code).set_name(format!("@{file}")).exec();
        sandbox::disarm();
        let collected = lua.remove_app_data::<Collecting>().unwrap_or_default();
        loaded.map_err(|e| super::diagnostic_from_error(&e, file))?;
        if collected.cases.is_empty() {
            return Err(Diagnostic::new(file, None, "no test cases: write them as it(\"...\", function() ... end)"));
        }
        Ok(Suite { lua, cases: collected.cases })
    }

    /// Runs case `index` against `world` with `cpu` of CPU time for the whole case (hooks
    /// included); gives the world back.
    pub(crate) fn run(&self, index: usize, world: Box<dyn World>, cpu: Duration) -> Ran {
        let case = &self.cases[index];
        self.lua.set_app_data(Running { world, output: String::new() });
        sandbox::arm(cpu);
        let mut result = case.before.iter().try_for_each(|f| f.call::<()>(())).and_then(|()| case.body.call::<()>(()));
        for f in &case.after {
            let after = f.call::<()>(());
            if result.is_ok() {
                result = after;
            }
        }
        sandbox::disarm();
        let Running { output, .. } = self.lua.remove_app_data::<Running>().expect("set above");
        let _ = self.lua.gc_collect();
        Ran { result: result.map_err(|e| self.failure(&e)), output }
    }

    fn failure(&self, e: &mlua::Error) -> Failure {
        let text = super::innermost(e);
        let (message, kind) = match text.split_once(EXPECTATION) {
            // An expectation: its own message says it all.
            Some((message, _)) => (message.to_string(), FailureKind::Expectation),
            // A runtime error: keep the traceback, without the frames of C functions.
            None => (
                text.lines().filter(|l| !l.trim_start().starts_with("[C]")).collect::<Vec<_>>().join("\n"),
                FailureKind::Error,
            ),
        };
        // The message of a failed expectation or a runtime error starts with `file:line:`.
        let located = message.split_once(": ").and_then(|(at, rest)| Some((location(at)?, rest)));
        match located {
            // Raised inside `rota.test` (a CPU budget running out there, say): the test's own
            // line, from the traceback, is the one to show.
            Some(((file, _), rest)) if file.starts_with("stdlib/") => {
                let frame = message
                    .lines()
                    .filter_map(|l| location(l.trim().split(": ").next()?))
                    .find(|(f, _)| !f.starts_with("stdlib/"));
                match frame {
                    Some((file, line)) => {
                        Failure { message: format!("{file}:{line}: {rest}"), file: Some(file), line: Some(line), kind }
                    }
                    None => Failure { message, file: None, line: None, kind },
                }
            }
            Some(((file, line), _)) => Failure { message, file: Some(file), line: Some(line), kind },
            None => Failure { message, file: None, line: None, kind },
        }
    }
}

/// A VM for a test file: the sandbox, the test globals, and `require` of the stdlib (with
/// `rota.test`) and of the scripts folder's `modules`.
fn vm(modules: &[(String, String, String)], functions: &super::HostFunctions, limits: &Limits) -> mlua::Result<Lua> {
    let lua = sandbox::new_vm(limits)?;
    register(&lua)?;
    functions.register(&lua)?;
    {
        let mut m = lua.app_data_mut::<sandbox::Modules>().expect("set up with the VM");
        m.add(super::stdlib_modules(), modules);
        m.loaded.insert("rota.test.host".into(), LuaValue::Table(host(&lua)?));
    }
    Ok(lua)
}

/// The globals of a test file's VM (for listing the API, see [`super::api_names`]).
pub(super) fn globals(limits: &Limits) -> Result<Vec<(String, LuaValue)>, String> {
    let lua = vm(&[], &Default::default(), limits).map_err(|e| e.to_string())?;
    let globals = lua.globals().pairs::<String, LuaValue>().filter_map(Result::ok).collect();
    Ok(globals)
}

/// `describe`, `it`, `before_each` and `after_each` as globals, as Lua test tools have them.
fn register(lua: &Lua) -> mlua::Result<()> {
    let g = lua.globals();
    g.set(
        "print",
        lua.create_function(|lua, args: mlua::Variadic<LuaValue>| {
            let line: Vec<String> =
                args.iter().map(|v| v.to_string().unwrap_or_else(|_| v.type_name().into())).collect();
            match lua.app_data_mut::<Running>() {
                Some(mut r) => {
                    r.output.push_str(&line.join("\t"));
                    r.output.push('\n');
                }
                None => println!("{}", line.join("\t")),
            }
            Ok(())
        })?,
    )?;
    g.set(
        "describe",
        lua.create_function(|lua, (name, body): (String, Function)| {
            {
                let mut c = collecting(lua)?;
                c.path.push(name);
                c.before.push(Vec::new());
                c.after.push(Vec::new());
            }
            let result = body.call::<()>(());
            let mut c = collecting(lua)?;
            c.path.pop();
            c.before.pop();
            c.after.pop();
            result
        })?,
    )?;
    g.set(
        "it",
        lua.create_function(|lua, (name, body): (String, Function)| {
            let at = fields::caller(lua);
            let mut c = collecting(lua)?;
            let name = c.path.iter().chain(std::iter::once(&name)).cloned().collect::<Vec<_>>().join(" > ");
            let before = c.before.iter().flatten().cloned().collect();
            let after = c.after.iter().rev().flatten().cloned().collect();
            c.cases.push(Case { name, line: at.line, body, before, after });
            Ok(())
        })?,
    )?;
    for (hook, after) in [("before_each", false), ("after_each", true)] {
        g.set(
            hook,
            lua.create_function(move |lua, f: Function| {
                let mut c = collecting(lua)?;
                let levels = if after { &mut c.after } else { &mut c.before };
                levels.last_mut().expect("the file's level is never popped").push(f);
                Ok(())
            })?,
        )?;
    }
    Ok(())
}

fn collecting(lua: &Lua) -> mlua::Result<mlua::AppDataRefMut<'_, Collecting>> {
    lua.app_data_mut::<Collecting>().ok_or_else(|| {
        fields::error_here(
            lua,
            "describe, it and the hooks belong at the top of a test file or in describe blocks, not inside a test",
        )
    })
}

/// `require("rota.test.host")`: `act(action, args)` on the world of the running case.
fn host(lua: &Lua) -> mlua::Result<mlua::Table> {
    let t = lua.create_table()?;
    t.set(
        "act",
        lua.create_function(|lua, (action, args): (String, LuaValue)| {
            let args = fields::to_json(&args).map_err(|e| in_test(lua, e))?;
            let result = {
                let mut running = lua.app_data_mut::<Running>().ok_or_else(|| {
                    in_test(lua, "the test API works inside it(...) and the hooks, not while the file loads")
                })?;
                // The engine's own Lua (policies under their own budgets, the view's helpers)
                // must not be stopped by this case's budget.
                sandbox::suspend();
                let result = running.world.act(&action, args);
                sandbox::disarm();
                result
            };
            // A refused input fails the case like an expectation: the rules did not do what the
            // test expects.
            let value = result.map_err(|e| in_test(lua, format!("{e}{EXPECTATION}")))?;
            fields::from_json(lua, &value)
        })?,
    )?;
    t.set(
        "fail",
        lua.create_function(|lua, message: String| Err::<(), _>(in_test(lua, format!("{message}{EXPECTATION}"))))?,
    )?;
    Ok(t)
}

/// An error at the line of the test that called into `rota.test` (the first frame outside it).
fn in_test(lua: &Lua, message: impl std::fmt::Display) -> mlua::Error {
    for level in 1..32 {
        let Some((file, line)) = lua.inspect_stack(level, |d| {
            (d.source().short_src.map(|s| s.to_string()).unwrap_or_default(), d.current_line())
        }) else {
            break;
        };
        if let Some(line) = line.filter(|_| !file.is_empty() && file != "[C]" && !file.starts_with("stdlib/")) {
            return mlua::Error::runtime(format!("{file}:{line}: {message}"));
        }
    }
    mlua::Error::runtime(message.to_string())
}

/// `file.lua:12` as (file, line).
fn location(text: &str) -> Option<(String, u32)> {
    let (file, line) = text.rsplit_once(':')?;
    Some((file.to_string(), line.parse().ok()?))
}
