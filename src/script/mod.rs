//! The script layer: loads a scripts folder into a sandboxed Luau VM and runs policies.
//!
//! This is the only module that imports `mlua`. The engine talks to it through `load`
//! (scripts in, a [`RuleSet`] and a `Scripts` runtime out) and the `Scripts` methods that
//! keep the Lua view of the state current and ask policies; none of that is public. An
//! embedder sees [`Sources`], [`Limits`], [`HostFunctions`] and [`check`].

mod agents;
pub(crate) mod fields;
mod host;
mod hours;
mod kv;
mod log;
mod members;
mod pinpoint;
mod policies;
mod presence;
mod queues;
mod sandbox;
mod schedules;
mod stack;
mod standby;
mod teams;
mod templates;
pub(crate) mod testkit;
mod time;
mod view;
mod workflows;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use mlua::{Lua, Value as LuaValue};
use serde::{Deserialize, Serialize};

use crate::error::{Diagnostic, LoadError};
use crate::rules::{Draft, Location, RuleSet};
pub(crate) use fields::Fields;
pub use host::{Host, HostFunctionError, HostFunctions};
pub(crate) use members::Lent;
pub use sandbox::Limits;
pub(crate) use view::Scripts;

/// The luau-lsp definition file of the Lua API (checked against the registration by a test).
pub const DEFINITIONS: &str = include_str!("../../stdlib/rota.d.luau");

/// Lua shipped with the host, embedded in the binary. Files under `policies/`
/// register the standard policies; the others are modules for `require`.
pub const STDLIB: &[(&str, &str)] = &[
    ("rota/candidates.lua", include_str!("../../stdlib/rota/candidates.lua")),
    ("rota/skills.lua", include_str!("../../stdlib/rota/skills.lua")),
    ("rota/test.lua", include_str!("../../stdlib/rota/test.lua")),
    ("policies/strictly_in_order.lua", include_str!("../../stdlib/policies/strictly_in_order.lua")),
    ("policies/round_robin.lua", include_str!("../../stdlib/policies/round_robin.lua")),
    ("policies/longest_idle.lua", include_str!("../../stdlib/policies/longest_idle.lua")),
    ("policies/fewest_conversations.lua", include_str!("../../stdlib/policies/fewest_conversations.lua")),
    ("policies/least_talk_time.lua", include_str!("../../stdlib/policies/least_talk_time.lua")),
    ("policies/ring_all.lua", include_str!("../../stdlib/policies/ring_all.lua")),
    ("policies/ring_progressively.lua", include_str!("../../stdlib/policies/ring_progressively.lua")),
    ("policies/random.lua", include_str!("../../stdlib/policies/random.lua")),
    ("policies/weighted_random.lua", include_str!("../../stdlib/policies/weighted_random.lua")),
];

/// The stdlib modules a script may `require`, as (`rota.candidates`, `rota/candidates.lua`, code).
pub fn stdlib_modules() -> impl Iterator<Item = (String, &'static str, &'static str)> {
    STDLIB
        .iter()
        .filter(|(path, _)| !path.starts_with("policies/"))
        .map(|&(path, code)| (path.trim_end_matches(".lua").replace('/', "."), path, code))
}

/// The draft being filled while scripts load; absent once they have loaded.
struct Loading(Draft);

/// Runs `body` on the draft with the caller's location, or fails if scripts are not loading.
fn with_draft(lua: &Lua, body: impl FnOnce(&mut Draft, Location)) -> mlua::Result<()> {
    let at = fields::caller(lua);
    let mut loading = lua.app_data_mut::<Loading>().ok_or_else(|| {
        mlua::Error::runtime("definitions can only be made while the scripts load, not inside a policy")
    })?;
    body(&mut loading.0, at);
    Ok(())
}

/// Keeps `f`, a function a definition gives the host to call later (a workflow action's
/// computed value, a queue's aging), for the generation being loaded; its id (`workflows.set#3`).
fn callback(lua: &Lua, what: &str, f: &mlua::Function) -> mlua::Result<String> {
    let Some(mut fns) = lua.app_data_mut::<standby::Callbacks>() else {
        return Err(fields::error_here(lua, format!("{what}: functions are for definitions")));
    };
    let id = format!("{what}#{}", fns.0.len() + 1);
    fns.0.insert(id.clone(), f.clone());
    Ok(id)
}

/// Reads `capacity = { voice = "exclusive", chat = 3 }` of a team or agent definition.
fn capacity(f: &mut Fields, what: &str) -> crate::capacity::Capacity {
    crate::capacity::Capacity::parse(&f.map("capacity")).unwrap_or_else(|problems| {
        f.problems.extend(problems.into_iter().map(|p| format!("{what}: field `capacity`: {p}")));
        Default::default()
    })
}

/// Reads a definition table; every problem becomes a diagnostic at the calling line.
fn define(
    lua: &Lua,
    spec: LuaValue,
    what: &str,
    body: impl FnOnce(&mut Fields, &mut Draft, Location) -> Vec<String>,
) -> mlua::Result<()> {
    with_draft(lua, |draft, at| match Fields::new(spec, what) {
        Ok(mut f) => {
            let problems = body(&mut f, draft, at.clone());
            if !problems.is_empty() {
                if let Some(id) = f.raw_str("id") {
                    let ns = what.split('.').next().unwrap_or(what);
                    draft.failed.insert((ns.to_string(), id));
                }
            }
            for problem in problems {
                draft.problem(&at, problem);
            }
        }
        Err(e) => draft.problem(&at, e),
    })
}

/// Keeps what a script hands the engine (a log line, an event raised, a workflow started)
/// until the engine takes it, up to a limit: a runaway script must not fill the host's
/// memory. `kind` is its [`Pending`] bit, so the engine knows to look.
fn push_capped<T>(lua: &Lua, list: &mut Vec<T>, item: T, kind: u8) {
    if list.len() < 1000 {
        list.push(item);
    }
    Pending::mark(lua, kind);
}

/// Which kinds of things scripts handed the host since it last took them (a bit each), so
/// the engine's look after every decision and input is a bit test, not an app-data lookup.
#[derive(Clone)]
struct Pending(std::rc::Rc<std::cell::Cell<u8>>);

impl Pending {
    const LOGS: u8 = 1;
    const RAISED: u8 = 2;
    const STARTED: u8 = 4;

    /// Everything marked, so whatever scripts produced while loading is looked at once.
    fn new() -> Self {
        Pending(std::rc::Rc::new(std::cell::Cell::new(Self::LOGS | Self::RAISED | Self::STARTED)))
    }

    /// Notes in `lua`'s app data that something of kind `bit` is waiting.
    fn mark(lua: &Lua, bit: u8) {
        if let Some(p) = lua.app_data_ref::<Pending>() {
            p.0.set(p.0.get() | bit);
        }
    }

    /// Whether something of kind `bit` is waiting; clears the mark.
    fn take(&self, bit: u8) -> bool {
        let marks = self.0.get();
        self.0.set(marks & !bit);
        marks & bit != 0
    }
}

/// The text of a scripts folder, read in one go: what a generation is loaded from, and what a
/// journal keeps so the same generation can be loaded again on replay.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sources {
    /// Rule files (`*.lua` directly in the folder, `*_test.lua` excluded), by name, as
    /// (path relative to the folder, text).
    pub rules: Vec<(String, String)>,
    /// Modules in subfolders, as (`lib.util`, `lib/util.lua`, text).
    pub modules: Vec<(String, String, String)>,
    /// Data files the rules name (`.ics` calendars), as (path relative to the folder, text).
    #[serde(default)]
    pub files: Vec<(String, String)>,
}

impl Sources {
    /// Reads the rule files and modules of a scripts folder.
    pub fn read(dir: &Path) -> Result<Sources, LoadError> {
        let dir_name = dir.display().to_string();
        let fail = |file: &str, message: String| LoadError { diagnostics: vec![Diagnostic::new(file, None, message)] };
        let mut found = Vec::new();
        files_under(dir, &mut found).map_err(|e| fail(&dir_name, format!("cannot read the scripts folder: {e}")))?;
        let mut files = Vec::new();
        for path in found {
            let rel = relative(dir, &path);
            if kind(&rel).is_some() {
                let text = std::fs::read_to_string(&path).map_err(|e| fail(&rel, format!("cannot read: {e}")))?;
                files.push((rel, text));
            }
        }
        Sources::from_files(files).map_err(|_| fail(&dir_name, "no .lua rule files in the scripts folder".into()))
    }

    /// Scripts that do not live in a folder (kept in a database, uploaded), as (path, text)
    /// pairs laid out as a folder would be: `*.lua` at the top are rule files (`*_test.lua`
    /// left out), `lib/util.lua` is the module `lib.util`, `*.ics` calendars are data files.
    pub fn from_files(files: impl IntoIterator<Item = (String, String)>) -> Result<Sources, LoadError> {
        let mut sources = Sources::default();
        for (path, text) in files {
            let path = path.replace('\\', "/");
            match kind(&path) {
                Some(Kind::Rule) => sources.rules.push((path, text)),
                Some(Kind::Module) => {
                    let name = path.trim_end_matches(".lua").replace('/', ".");
                    sources.modules.push((name, path, text));
                }
                Some(Kind::Data) => sources.files.push((path, text)),
                None => {}
            }
        }
        if sources.rules.is_empty() {
            let message = "no .lua rule files among the scripts".to_string();
            return Err(LoadError { diagnostics: vec![Diagnostic::new("<scripts>", None, message)] });
        }
        // Rule files load in name order; modules and data files are found by name.
        sources.rules.sort();
        sources.modules.sort();
        sources.files.sort();
        Ok(sources)
    }
}

/// What a file of a scripts folder is, by its path relative to the folder.
enum Kind {
    Rule,
    Module,
    Data,
}

fn kind(path: &str) -> Option<Kind> {
    let (folder, name) = path.rsplit_once('/').unwrap_or(("", path));
    if folder.split('/').any(|part| part.starts_with('.')) || name.starts_with('.') {
        return None;
    }
    if name.to_ascii_lowercase().ends_with(".ics") {
        return Some(Kind::Data);
    }
    let stem = name.strip_suffix(".lua")?;
    match (folder.is_empty(), stem.ends_with("_test")) {
        (_, true) => None,
        (true, false) => Some(Kind::Rule),
        (false, false) => Some(Kind::Module),
    }
}

/// `path` relative to `dir`, with `/` between folders.
fn relative(dir: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(dir).unwrap_or(path);
    rel.components().map(|c| c.as_os_str().to_string_lossy()).collect::<Vec<_>>().join("/")
}

/// Every file under `dir`, subfolders included, in name order within each folder. Hidden
/// folders (`.git`, `.vscode`, the `.rota` that `rota types` writes) are not part of the rules.
pub(crate) fn files_under(dir: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?.filter_map(|e| e.ok().map(|e| e.path())).collect();
    entries.sort();
    for path in entries {
        if path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.')) {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out)?;
        } else {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads a scripts folder and loads it; see [`load_sources`].
pub(crate) fn load(dir: &Path, limits: &Limits, host: &Host, generation: u64) -> Result<(RuleSet, Scripts), LoadError> {
    load_sources(&Sources::read(dir)?, limits, host, generation)
}

/// What `rota check` does: loads a scripts folder as the engine would and returns its rules,
/// or every diagnostic.
pub fn check(dir: &Path, limits: &Limits) -> Result<RuleSet, LoadError> {
    load(dir, limits, &Host::default(), 1).map(|(rules, _)| rules)
}

/// A generation loaded and validated away from the engine thread, on its way to it: only the
/// swap runs there ([`crate::engine::Engine::reload_loaded`]). Numbered when it is swapped in.
pub(crate) struct Loaded {
    pub sources: Sources,
    pub rules: RuleSet,
    pub scripts: Scripts,
}

// SAFETY: a `Loaded` owns its Luau VM together with every handle into it (the `Scripts`, the
// functions and tables it keeps, the VM's app data and callbacks); `load_sources` keeps no
// other handle, so nothing in it is shared with the thread that loaded it. Moving all of it to
// one other thread moves the VM's non-atomic reference counts with all their owners, which is
// what `Send` asks for. Luau itself has no thread affinity; mlua's one thread-local (compile
// constants) lives only within one compile call, and the call budget lives in the thread-locals
// of whichever thread calls into the VM (`sandbox`), so it follows the VM. This is what spares
// mlua's `send` feature, which would lock a mutex on every access from every decision.
unsafe impl Send for Loaded {}

impl Loaded {
    /// Loads `sources` into a VM of its own; see [`load_sources`].
    pub(crate) fn load(sources: Sources, limits: &Limits, host: &Host) -> Result<Loaded, LoadError> {
        let (rules, scripts) = load_sources(&sources, limits, host, 0)?;
        Ok(Loaded { sources, rules, scripts })
    }
}

/// Loads and validates scripts. Either everything is valid and usable, or nothing is: the
/// error lists every problem with file:line.
///
/// `host` brings policies implemented in Rust (queues may name them) and Lua functions.
pub(crate) fn load_sources(
    sources: &Sources,
    limits: &Limits,
    host: &Host,
    generation: u64,
) -> Result<(RuleSet, Scripts), LoadError> {
    let vm_error = |e: mlua::Error| LoadError {
        diagnostics: vec![Diagnostic::new("<host>", None, format!("could not set up the Lua VM: {e}"))],
    };
    let lua = sandbox::new_vm(limits).map_err(vm_error)?;
    (|| -> mlua::Result<()> {
        presence::register(&lua)?;
        agents::register(&lua)?;
        teams::register(&lua)?;
        queues::register(&lua)?;
        policies::register(&lua)?;
        templates::register(&lua)?;
        schedules::register(&lua)?;
        hours::register(&lua)?;
        kv::register(&lua)?;
        standby::register(&lua)?;
        time::register(&lua)?;
        workflows::register(&lua)?;
        log::register(&lua)?;
        host.functions.register(&lua)
    })()
    .map_err(vm_error)?;
    lua.set_app_data(Loading(Draft::default()));
    lua.set_app_data(policies::PolicyFunctions::default());
    lua.set_app_data(policies::PolicyHooks::default());
    lua.set_app_data(standby::Callbacks::default());
    lua.set_app_data(log::LogBuffer::default());
    lua.set_app_data(kv::KvScope::default());

    {
        let mut modules = lua.app_data_mut::<sandbox::Modules>().unwrap();
        // `rota.test` drives an engine from a test file; rules have no use for it.
        modules.add(stdlib_modules().filter(|(name, _, _)| name != "rota.test"), &sources.modules);
    }
    lua.sandbox(true).map_err(vm_error)?;

    let policy_names = || -> Vec<String> {
        lua.app_data_ref::<policies::PolicyFunctions>().map(|p| p.0.keys().cloned().collect()).unwrap_or_default()
    };
    // Each file that registered policies, with their names: compiled to native code below
    // if a queue uses one of them.
    let mut chunks: Vec<(mlua::Function, Vec<String>)> = Vec::new();
    let mut run = |file: String, code: &str| -> Option<Diagnostic> {
        sandbox::arm(limits.cpu_per_load);
        let before = policy_names();
        let result = lua.load(code).set_name(format!("@{file}")).into_function().and_then(|f| {
            f.call::<()>(())?;
            let added: Vec<String> = policy_names().into_iter().filter(|p| !before.contains(p)).collect();
            if !added.is_empty() {
                chunks.push((f, added));
            }
            Ok(())
        });
        sandbox::disarm();
        result.err().map(|e| {
            let _ = lua.gc_collect();
            diagnostic_from_error(&e, &file)
        })
    };
    let mut diagnostics = Vec::new();
    for (path, code) in STDLIB.iter().filter(|(p, _)| p.starts_with("policies/")) {
        diagnostics.extend(run(format!("stdlib/{path}"), code));
    }
    for (rel, code) in &sources.rules {
        diagnostics.extend(run(rel.clone(), code));
    }

    let Loading(mut draft) = lua.remove_app_data::<Loading>().expect("draft is set while loading");
    for spec in &host.policies {
        if !draft.policies.iter().any(|p| p.name == spec.name) {
            draft.policies.push(spec.clone());
        }
    }
    // Cross-checks run even after earlier problems, so one `rota check` reports them all.
    let rules = match draft.assemble(&sources.files) {
        Ok(rules) if diagnostics.is_empty() => rules,
        assembled => {
            diagnostics.extend(assembled.err().unwrap_or_default());
            pinpoint::pinpoint(&mut diagnostics, &sources.rules);
            return Err(LoadError { diagnostics });
        }
    };
    if limits.native_code {
        // Only policies queues use run often enough to be worth compiling (the stdlib's others
        // would cost milliseconds on every load for nothing).
        let used: BTreeSet<&str> =
            rules.queues.iter().flat_map(|q| std::iter::once(q.policy.as_str()).chain(q.fallback.as_deref())).collect();
        for (f, names) in &chunks {
            if names.iter().any(|n| used.contains(n.as_str())) {
                stack::compile_native(&lua, f);
            }
        }
    }
    let functions = lua.remove_app_data::<policies::PolicyFunctions>().unwrap_or_default().0;
    let callbacks = lua.remove_app_data::<standby::Callbacks>().unwrap_or_default().0;
    let hooks = lua.remove_app_data::<policies::PolicyHooks>().unwrap_or_default().0;
    // Custom events can be raised from here on: inside policies and recipient functions.
    lua.set_app_data(standby::Raised::default());
    lua.set_app_data(workflows::Starts::default());
    // Policies may ask about business hours and who is on duty.
    lua.set_app_data(hours::Known {
        hours: std::sync::Arc::new(rules.hours.clone()),
        schedules: std::sync::Arc::new(rules.schedules.clone()),
    });
    let scripts = Scripts::new(lua, limits.clone(), functions, hooks, callbacks, generation).map_err(vm_error)?;
    Ok((rules, scripts))
}

/// Every name the rules' Lua API adds to a bare sandbox: `agents.define`, `time.format`, ...
/// and, for test files, `describe`, `it`, ... (what `stdlib/rota.d.luau` must declare).
pub fn api_names() -> Result<Vec<String>, LoadError> {
    let limits = Limits::default();
    let vm_error = |message: String| LoadError { diagnostics: vec![Diagnostic::new("<api>", None, message)] };
    let bare = sandbox::new_vm(&limits).map_err(|e| vm_error(e.to_string()))?;
    let bare_globals: Vec<String> =
        bare.globals().pairs::<String, LuaValue>().filter_map(|p| p.ok().map(|(k, _)| k)).collect();
    let mut names = Vec::new();
    let (_, scripts) = load_sources(
        &Sources { rules: vec![("api.lua".into(), String::new())], ..Sources::default() },
        &limits,
        &Host::default(),
        1,
    )?;
    let suite_globals = testkit::globals(&limits).map_err(vm_error)?;
    for (name, value) in scripts.globals().into_iter().chain(suite_globals) {
        if bare_globals.contains(&name) {
            continue;
        }
        match value {
            LuaValue::Table(t) => {
                for (key, _) in t.pairs::<String, LuaValue>().flatten() {
                    names.push(format!("{name}.{key}"));
                }
            }
            _ => names.push(name),
        }
    }
    names.sort();
    names.dedup();
    Ok(names)
}

/// Turns a Lua error into `file:line: message`, finding the location inside the message.
pub(crate) fn diagnostic_from_error(err: &mlua::Error, fallback_file: &str) -> Diagnostic {
    let text = innermost(err);
    parse_location(&text).unwrap_or_else(|| Diagnostic::new(fallback_file, None, text))
}

/// The message of the error at the root of a chain of callback errors.
pub(crate) fn innermost(err: &mlua::Error) -> String {
    match err {
        mlua::Error::CallbackError { cause, .. } => innermost(cause),
        mlua::Error::WithContext { cause, .. } => innermost(cause),
        mlua::Error::SyntaxError { message, .. } => message.clone(),
        mlua::Error::RuntimeError(m) | mlua::Error::MemoryError(m) => m.clone(),
        other => other.to_string(),
    }
}

/// Whether an error text already starts with `file:line:`, as Luau writes a script's errors.
pub fn has_location(text: &str) -> bool {
    location(text.as_bytes()).is_some()
}

/// In the first line of `text`, the first `:` followed by digits and another `:`, and how many
/// digits (`file.lua:12: message`, and `[string "x"]:3: message`).
fn location(text: &[u8]) -> Option<(usize, usize)> {
    let first = text.split(|&b| b == b'\n').next().unwrap_or_default();
    first.iter().enumerate().find_map(|(colon, &b)| {
        let digits = first[colon + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        (b == b':' && digits > 0 && first.get(colon + 1 + digits) == Some(&b':')).then_some((colon, digits))
    })
}

/// Splits `file.lua:12: message` (as Luau writes errors) into its parts.
fn parse_location(text: &str) -> Option<Diagnostic> {
    let (colon, digits) = location(text.as_bytes())?;
    let first_line = text.lines().next()?;
    let line = &first_line[colon + 1..colon + 1 + digits];
    let message = first_line[colon + 2 + digits..].trim().to_string();
    Some(Diagnostic::new(first_line[..colon].trim().to_string(), line.parse().ok(), message))
}
