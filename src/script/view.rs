//! The Lua view of engine state, updated incrementally, and the call into a policy.
//!
//! Agent, queue and conversation tables are built once and then patched field by
//! field when the engine reports a change, so a decision never rebuilds them. Each
//! conversation also gets its policy context (`ctx`) once, at arrival; a decision
//! only writes `ctx.now` before calling the policy.

use std::collections::BTreeMap;
use std::sync::Arc;

use mlua::{Function, Lua, LuaString, Table, Value as LuaValue};
use rustc_hash::FxHashMap;
use serde_json::Value;

use super::fields::{duration_of, from_json, to_json};
use super::log::LogBuffer;
use super::members::Lent;
use super::sandbox::{self, Limits};
use super::stack;
use super::Pending;
use crate::agent::{Agent, AgentIx};
use crate::conversation::{Attempt, Conversation};
use crate::decision::{Decision, Reason};
use crate::rules::RuleSet;
use crate::time::Timestamp;

/// A policy call that failed: a runtime error, a runaway loop, a memory bomb or a malformed decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct PolicyFailure {
    /// `file:line: message` where Lua knows the line.
    pub message: String,
}

/// One loaded generation of scripts: the VM, its policies and the view tables.
pub(crate) struct Scripts {
    lua: Lua,
    limits: Limits,
    generation: u64,
    policies: BTreeMap<String, Function>,
    /// Policies' lifecycle hooks (`on_closed`, ...): policy name to hook name to function.
    hooks: BTreeMap<String, BTreeMap<&'static str, Function>>,
    /// Functions scripts gave the host to call later (see `standby::Callbacks`).
    callbacks: BTreeMap<String, Function>,
    agents: Vec<Table>,
    /// What each agent table holds now, so a sync writes only the fields that changed.
    synced: Vec<Option<Synced>>,
    queues: Vec<QueueView>,
    conversations: FxHashMap<Arc<str>, ConversationView>,
    call: Function,
    /// The policy call's message handler (`stack::locate`), made once.
    locate: Function,
    helpers: Helpers,
    /// The list `ctx:skip` appends to, shared by every context.
    skipped: Table,
    empty: Table,
    keys: Keys,
    /// Policy skip reasons seen so far, so a repeated reason costs no allocation.
    reasons: FxHashMap<Box<[u8]>, Arc<str>>,
    /// Whether scripts logged, raised events or started workflows since the host last looked.
    pending: Pending,
    /// The host's fixed words in the key ring (state names, reasons), for agent field writes.
    words: stack::Words,
    /// Decisions that lent the roster so far (see [`Lent`]).
    serial: u64,
}

struct QueueView {
    table: Table,
    candidates: Table,

    options: Table,
    fallback_options: Table,
}

/// Each queue's waiting conversations (key and `ctx.conversation` table) in arrival order,
/// from which `ctx.queue.waiting` is made when a policy reads it.
#[derive(Default)]
struct Waiting(Vec<Vec<(Arc<str>, Table)>>);

/// A conversation's policy context; its conversation table, `attempts` and `tried` are
/// fields of it (one reference held per conversation, not four).
struct ConversationView {
    ctx: Table,
    ringing: bool,
    /// The queue whose `waiting` list holds it.
    queue: u32,
}

impl ConversationView {
    fn conversation(&self) -> mlua::Result<Table> {
        self.ctx.raw_get("conversation")
    }
}

/// The run-time fields of an agent as last written to its view table.
#[derive(Clone, Default)]
struct Synced {
    status: &'static str,
    state: &'static str,
    pause_cause: Option<String>,
    since: i64,
    presence: String,
    base: &'static str,
    online: bool,
    work_day: bool,
    dismissed: bool,
    on_vacation: bool,
    blocked: Option<&'static str>,
    unavailable: Option<&'static str>,
    offered: u32,
    answered: u32,
    missed: u32,
    missed_in_row: u32,
    talk_time: i64,
    idle_since: i64,
    busy: bool,
    /// Load per shared channel; `None` until written (and after the capacity changed).
    load: Option<Vec<(Arc<str>, u32)>>,
}

/// Interned field names, so updating a view table does not re-hash its keys each time:
/// `Keys` for writes through mlua, and `Key` numbering the same names in the key ring
/// that [`stack`] writes use.
macro_rules! keys {
    ($($name:ident),* $(,)?) => {
        struct Keys {
            $($name: LuaString,)*
            /// The same strings in a list, in `Key` order.
            ring: Table,
        }

        #[allow(non_camel_case_types)]
        #[derive(Clone, Copy)]
        enum Key {
            $($name,)*
        }

        const KEY_COUNT: usize = [$(stringify!($name)),*].len();

        impl Keys {
            fn new(lua: &Lua) -> mlua::Result<Self> {
                let keys = Keys { $($name: lua.create_string(stringify!($name))?,)* ring: lua.create_table()? };
                $(keys.ring.raw_set(Key::$name as u8 + 1, &keys.$name)?;)*
                Ok(keys)
            }
        }
    };
}

keys!(
    status,
    state,
    pause_cause,
    since,
    presence,
    base,
    online,
    work_day,
    dismissed,
    on_vacation,
    blocked,
    unavailable,
    offered,
    answered,
    missed,
    missed_in_row,
    talk_time,
    idle_since,
    busy,
    nskip,
    options,
    ringing,
    queue,
);

/// Lua-side builders of view tables: one call from Rust instead of a call per field.
struct Helpers {
    new_conversation: Function,
    attempt: Function,
}

/// How many distinct policy reasons are interned before new ones are simply allocated.
const MAX_REASONS: usize = 4096;
/// The most recipients a `notify` function may name for one event.
const MAX_RECIPIENTS: usize = 1000;
/// The longest skip reason a trace keeps whole; a longer one is cut, with a mark.
const MAX_REASON: usize = 200;

impl Scripts {
    pub(super) fn new(
        lua: Lua,
        limits: Limits,
        policies: BTreeMap<String, Function>,
        hooks: BTreeMap<String, BTreeMap<&'static str, Function>>,
        callbacks: BTreeMap<String, Function>,
        generation: u64,
    ) -> mlua::Result<Self> {
        // The limit guards policy calls; the host's own view tables are accounted separately.
        lua.set_memory_limit(0)?;
        // Shared by every empty part of every view; frozen so no policy can fill it.
        let empty = lua.create_table()?;
        empty.set_readonly(true);
        let skipped = lua.create_table()?;
        let pending = Pending::new();
        lua.set_app_data(pending.clone());
        let chunk = lua.load(include_str!("view.lua")).set_name("@<host>/view.lua").into_function()?;
        sandbox::compile_if_native(&lua, &chunk);
        let (open, step) = super::members::functions(&lua)?;
        let (new_conversation, attempt, call) =
            chunk.call::<(Function, Function, Function)>((&empty, &skipped, open, step))?;
        Ok(Scripts {
            keys: Keys::new(&lua)?,
            call,
            locate: stack::message_handler(&lua)?,
            helpers: Helpers { new_conversation, attempt },
            skipped,
            empty,
            lua,
            limits,
            generation,
            policies,
            hooks,
            callbacks,
            agents: Vec::new(),
            synced: Vec::new(),
            queues: Vec::new(),
            conversations: FxHashMap::default(),
            reasons: FxHashMap::default(),
            pending,
            words: stack::Words::new(KEY_COUNT + 1),
            serial: 0,
        })
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation
    }

    /// Caps the VM at what it holds now, so the host's next write into it fails the way it
    /// would if the machine ran out of memory: for tests of what such a failure leaves behind.
    #[cfg(test)]
    pub(crate) fn starve(&self) {
        let _ = self.lua.set_memory_limit(self.lua.used_memory() + 1);
        // Luau hands small objects out of pages it already holds: fill those too, or the
        // next write may still fit.
        let mut kept = Vec::new();
        while let Ok(t) = self.lua.create_table() {
            kept.push(t);
        }
        self.lua.set_app_data(kept);
    }

    /// Numbers a generation loaded ahead of its swap ([`super::Loaded`]).
    pub(crate) fn set_generation(&mut self, generation: u64) {
        self.generation = generation;
    }

    pub(crate) fn has_policy(&self, name: &str) -> bool {
        self.policies.contains_key(name)
    }

    /// Bytes the Lua heap holds (view tables included).
    pub(crate) fn memory_used(&self) -> usize {
        self.lua.used_memory()
    }

    /// Runs a call into scripts under the per-call limits (see [`arm`]).
    fn limited<R>(&self, call: impl FnOnce() -> mlua::Result<R>) -> mlua::Result<R> {
        arm(&self.lua, &self.limits, self.lua.used_memory());
        let result = call();
        disarm(&self.lua);
        result
    }

    /// [`Scripts::limited`] for a function the host calls on its own (a hook, a notify or
    /// computed-value function): a failure is explained with its place in `who`'s code, and
    /// what the failed call left behind (a memory bomb's table) is collected.
    fn call_limited<R>(&self, who: &str, call: impl FnOnce() -> mlua::Result<R>) -> Result<R, String> {
        self.limited(call).map_err(|e| {
            let _ = self.lua.gc_collect();
            super::diagnostic_from_error(&e, who).to_string()
        })
    }

    /// The VM's globals (for listing the API, see [`super::api_names`]).
    pub(super) fn globals(&self) -> Vec<(String, LuaValue)> {
        // A sandboxed VM's globals table is empty; what the scripts see comes through its
        // metatable's `__index`.
        let g = self.lua.globals();
        let base = g.metatable().and_then(|m| m.raw_get::<Table>("__index").ok()).unwrap_or(g);
        base.pairs::<String, LuaValue>().filter_map(Result::ok).collect()
    }

    /// Custom events scripts raised since the last call, as (conversation, name).
    pub(crate) fn take_raised(&self) -> Vec<(String, String)> {
        if !self.pending.take(Pending::RAISED) {
            return Vec::new();
        }
        self.lua.app_data_mut::<super::standby::Raised>().map(|mut r| std::mem::take(&mut r.0)).unwrap_or_default()
    }

    /// Workflows scripts set conversations on since the last call, as (workflow, conversation).
    pub(crate) fn take_started(&self) -> Vec<(String, String)> {
        if !self.pending.take(Pending::STARTED) {
            return Vec::new();
        }
        self.lua.app_data_mut::<super::workflows::Starts>().map(|mut s| std::mem::take(&mut s.0)).unwrap_or_default()
    }

    /// Asks standby rule `rule`'s `notify` function whom to notify about `event`, under the
    /// same CPU and memory limits as a policy. The answer is a list of agent ids.
    pub(crate) fn recipients(&self, rule: &str, event: &serde_json::Value) -> Result<Vec<String>, String> {
        let f = self.callbacks.get(rule).ok_or_else(|| format!("standby rule `{rule}` has no notify function"))?;
        let arg = super::fields::from_json(&self.lua, event).map_err(|e| e.to_string())?;
        let value = self.call_limited(rule, || f.call::<LuaValue>(arg))?;
        match value {
            LuaValue::Nil => Ok(Vec::new()),
            LuaValue::String(s) => Ok(vec![s.to_string_lossy()]),
            // Raw reads, outside the call's budget: no metamethod of the list runs here.
            LuaValue::Table(t) if t.raw_len() > MAX_RECIPIENTS => Err(format!(
                "standby rule `{rule}`: notify returned {} recipients; at most {MAX_RECIPIENTS} are notified",
                t.raw_len()
            )),
            LuaValue::Table(t) => (1..=t.raw_len())
                .map(|i| match t.raw_get::<LuaValue>(i) {
                    Ok(LuaValue::String(s)) => Ok(s.to_string_lossy()),
                    Ok(LuaValue::Table(agent)) => {
                        agent.raw_get::<String>("id").map_err(|_| "an agent table without an id".to_string())
                    }
                    Ok(other) => Err(format!("expected agent ids, got a {}", other.type_name())),
                    Err(e) => Err(e.to_string()),
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("standby rule `{rule}`: notify returned {e}")),
            other => Err(format!(
                "standby rule `{rule}`: notify must return a list of agent ids, got a {}",
                other.type_name()
            )),
        }
    }

    /// Whose call runs next, for `kv`: the unit of the queue or rule it runs for, and the
    /// step's clock reading.
    pub(crate) fn scope(&self, unit: &str, now: crate::time::Timestamp) {
        if let Some(mut scope) = self.lua.app_data_mut::<super::kv::KvScope>() {
            if scope.unit.as_deref() != Some(unit) {
                scope.unit = Some(Arc::from(unit));
            }
            scope.now = now;
        }
    }

    /// The scripts' durable memory, taken out (to move it into a new generation's VM).
    /// A copy of the scripts' durable memory, for a snapshot.
    pub(crate) fn kv(&self) -> crate::kv::Kv {
        self.lua.app_data_ref::<super::kv::KvScope>().map(|s| s.kv.clone()).unwrap_or_default()
    }

    /// Where `math.random` is in its sequence: state a snapshot keeps, so the picks after a
    /// restore are the picks a replay makes.
    pub(crate) fn rng(&self) -> u64 {
        self.lua.app_data_ref::<sandbox::Rng>().map_or(0, |r| r.0)
    }

    pub(crate) fn set_rng(&self, state: u64) {
        if let Some(mut r) = self.lua.app_data_mut::<sandbox::Rng>() {
            r.0 = state;
        }
    }

    pub(crate) fn take_kv(&self) -> crate::kv::Kv {
        self.lua.app_data_mut::<super::kv::KvScope>().map(|mut s| std::mem::take(&mut s.kv)).unwrap_or_default()
    }

    pub(crate) fn put_kv(&self, kv: crate::kv::Kv) {
        if let Some(mut scope) = self.lua.app_data_mut::<super::kv::KvScope>() {
            scope.kv = kv;
        }
    }

    /// Calls the function a workflow's `set` computes its value with (`id`, see
    /// [`crate::workflow::Action::SetComputed`]) on a conversation's data, under the same
    /// limits as a policy; the value must be plain data.
    pub(crate) fn compute(&self, id: &str, conversation: &serde_json::Value) -> Result<Value, String> {
        let f = self.callbacks.get(id).ok_or_else(|| format!("no function `{id}` in this generation"))?;
        let arg = super::fields::from_json_frozen(&self.lua, conversation).map_err(|e| e.to_string())?;
        let value = self.call_limited(id, || f.call::<LuaValue>(arg))?;
        super::fields::to_json(&value)
    }

    /// Whether policy `name` listens to `hook`.
    pub(crate) fn has_hook(&self, name: &str, hook: &str) -> bool {
        self.hooks.get(name).is_some_and(|h| h.contains_key(hook))
    }

    /// Tells policy `name` of a lifecycle event (`hook`, one of [`super::policies::HOOKS`])
    /// about a conversation of queue `q` (`conversation`: its data as plain values), under the
    /// same limits as a decision. The event table has `type` (the hook without `on_`),
    /// `conversation`, `queue` (its memo the policy's to write), `agent` and `now`.
    pub(crate) fn hook(
        &self,
        name: &str,
        hook: &'static str,
        q: usize,
        agent: Option<AgentIx>,
        conversation: &serde_json::Value,
        now: f64,
    ) -> Result<(), String> {
        let Some(f) = self.hooks.get(name).and_then(|h| h.get(hook)) else { return Ok(()) };
        let event = (|| -> mlua::Result<Table> {
            let event = self.lua.create_table()?;
            event.raw_set("type", hook.trim_start_matches("on_"))?;
            event.raw_set("conversation", super::fields::from_json_frozen(&self.lua, conversation)?)?;
            event.raw_set("queue", &self.queues[q].table)?;
            if let Some(ix) = agent {
                event.raw_set("agent", &self.agents[ix as usize])?;
            }
            event.raw_set("now", now)?;
            event.set_readonly(true);
            Ok(event)
        })()
        .map_err(|e| e.to_string())?;
        self.call_limited(name, || f.call::<()>(event))
    }

    /// Messages scripts logged since the last call.
    pub(crate) fn take_logs(&self) -> Vec<(&'static str, String)> {
        if !self.pending.take(Pending::LOGS) {
            return Vec::new();
        }
        self.lua.app_data_mut::<LogBuffer>().map(|mut b| b.take()).unwrap_or_default()
    }

    /// Adds the view table of a new agent (agents are added in index order).
    pub(crate) fn add_agent(&mut self, agent: &Agent, track_work_day: bool) -> mlua::Result<()> {
        let t = self.lua.create_table_with_capacity(0, 32)?;
        t.raw_set("idx", agent.ix)?;
        // Scripts see ids: a decision is about one queue, and so one unit.
        t.raw_set("id", agent.def.id.as_str())?;
        debug_assert_eq!(self.agents.len(), agent.ix as usize);
        // Read-only to scripts: a policy that writes `a.weight` fails, instead of changing what
        // every later decision sees. The host's writes lift it (`stack::write_fields`, `unfrozen`).
        t.set_readonly(true);
        self.agents.push(t);
        self.synced.push(None);
        self.set_agent_def(agent)?;
        self.sync_agent(agent, track_work_day);
        Ok(())
    }

    /// Writes the fields of an agent that come from its definition (scripts or directory).
    pub(crate) fn set_agent_def(&mut self, agent: &Agent) -> mlua::Result<()> {
        // `free` follows the capacity: the next sync writes it anew.
        if let Some(synced) = self.synced[agent.ix as usize].as_mut() {
            synced.load = None;
        }
        let t = &self.agents[agent.ix as usize];
        unfrozen(t, || self.write_agent_def(t, agent))
    }

    fn write_agent_def(&self, t: &Table, agent: &Agent) -> mlua::Result<()> {
        let d = &agent.def;
        t.raw_set("name", d.name.as_str())?;
        t.raw_set("unit", d.unit.as_str())?;
        t.raw_set("team", d.team.as_deref())?;
        t.raw_set("email", d.email.as_deref())?;
        t.raw_set("phone", d.phone.as_deref())?;
        t.raw_set("time_zone", d.time_zone.as_deref())?;
        t.raw_set("weight", d.weight)?;
        let skills = self.lua.create_table()?;
        for (k, v) in &d.skills {
            skills.raw_set(k.as_str(), *v)?;
        }
        skills.set_readonly(true);
        t.raw_set("skills", skills)?;
        t.raw_set("capacity", super::fields::from_json_frozen(&self.lua, &d.capacity.to_json())?)?;
        t.raw_set("attributes", self.data_table(&d.attributes)?)
    }

    /// Replaces the agents of queue `q` in place, so contexts that hold the list see the change.
    pub(crate) fn set_members(&mut self, q: usize, members: &[AgentIx]) -> mlua::Result<()> {
        let list = &self.queues[q].candidates;
        unfrozen(list, || {
            let old = list.raw_len();
            for (i, &ix) in members.iter().enumerate() {
                list.raw_set(i + 1, &self.agents[ix as usize])?;
            }
            for i in members.len() + 1..=old {
                list.raw_set(i, LuaValue::Nil)?;
            }
            Ok(())
        })
    }

    /// Writes the run-time fields of an agent that changed since the last sync.
    pub(crate) fn sync_agent(&mut self, a: &Agent, track_work_day: bool) {
        let ix = a.ix as usize;
        let fresh = self.synced[ix].is_none();
        let old = self.synced[ix].get_or_insert_with(Synced::default);
        stack::write_fields(&self.lua, &self.keys.ring, &mut self.words, &self.agents[ix], |w| {
            // Compares in place and writes only what differs; nothing is cloned unless it changed.
            macro_rules! put {
                ($field:ident, $new:expr, $write:ident($value:expr)) => {
                    if fresh || old.$field != $new {
                        w.$write(Key::$field as u8, $value);
                        old.$field = $new;
                    }
                };
            }
            put!(status, a.status.as_str(), word(Some(a.status.as_str())));
            put!(state, a.state.as_str(), word(Some(a.state.as_str())));
            put!(base, a.base.as_str(), word(Some(a.base.as_str())));
            put!(blocked, a.blocked(), word(a.blocked()));
            put!(unavailable, a.unavailable(track_work_day), word(a.unavailable(track_work_day)));
            if fresh || old.pause_cause != a.pause_cause {
                w.string(Key::pause_cause as u8, a.pause_cause.as_deref());
                old.pause_cause = a.pause_cause.clone();
            }
            if fresh || old.presence != a.presence {
                w.string(Key::presence as u8, Some(a.presence.as_str()));
                old.presence = a.presence.clone();
            }
            put!(since, a.state_since.0, number(a.state_since.as_secs_f64()));
            put!(online, a.online, boolean(a.online));
            put!(work_day, a.work_day, boolean(a.work_day));
            put!(dismissed, a.dismissed, boolean(a.dismissed));
            put!(on_vacation, a.on_vacation, boolean(a.on_vacation));
            put!(offered, a.counters.offered, number(a.counters.offered.into()));
            put!(answered, a.counters.answered, number(a.counters.answered.into()));
            put!(missed, a.counters.missed, number(a.counters.missed.into()));
            put!(missed_in_row, a.counters.missed_in_row, number(a.counters.missed_in_row.into()));
            put!(talk_time, a.counters.talk_time.0, number(a.counters.talk_time.as_secs_f64()));
            put!(idle_since, a.idle_since.0, number(a.idle_since.as_secs_f64()));
            put!(busy, a.conversation.is_some(), boolean(a.conversation.is_some()));
        });
        let mut load: Vec<(Arc<str>, u32)> = Vec::new();
        for s in &a.slots {
            match load.iter_mut().find(|(c, _)| *c == s.channel) {
                Some((_, n)) => *n += 1,
                None => load.push((s.channel.clone(), 1)),
            }
        }
        let old = self.synced[ix].as_mut().expect("set above");
        if old.load.as_ref() != Some(&load) {
            // A host write with no memory limit in force: it fails only when the process is
            // out of memory, and then the next sync tries again (`load` stays unwritten).
            if self.write_load(&self.agents[ix], a).is_ok() {
                self.synced[ix].as_mut().expect("set above").load = Some(load);
            }
        }
    }

    /// `agent.load` (conversations held per shared channel, ringing ones too) and `agent.free`
    /// (slots left per shared channel of the agent's capacity). A channel missing from `free`
    /// is exclusive: it takes an agent with an empty `load`.
    fn write_load(&self, t: &Table, a: &Agent) -> mlua::Result<()> {
        let load = self.lua.create_table()?;
        for (channel, n) in a.loads() {
            load.raw_set(channel, n)?;
        }
        load.set_readonly(true);
        let free = self.lua.create_table()?;
        for (channel, limit) in a.def.capacity.iter() {
            if let crate::capacity::Limit::Shared(n) = limit {
                free.raw_set(channel, n.saturating_sub(a.load(channel)))?;
            }
        }
        free.set_readonly(true);
        unfrozen(t, || {
            t.raw_set("load", load)?;
            t.raw_set("free", free)
        })
    }

    /// Builds the queue tables of a rule set: id, name, options, allowed statuses, agents in order,
    /// and `memo`, the policy's memory (a round-robin position), restored from `memos` by queue id.
    pub(crate) fn set_queues(
        &mut self,
        rules: &RuleSet,
        members: &[&[AgentIx]],
        memos: &BTreeMap<String, Value>,
    ) -> mlua::Result<()> {
        self.queues.clear();
        self.lua.set_app_data(Waiting(vec![Vec::new(); rules.queues.len()]));
        for (i, q) in rules.queues.iter().enumerate() {
            let t = self.lua.create_table()?;
            t.raw_set("id", q.id.as_str())?;
            t.raw_set("name", q.name.as_str())?;
            t.raw_set("policy", q.policy.as_str())?;
            t.raw_set("on_exhausted", q.on_exhausted.kind())?;
            let options = self.data_table(&q.options)?;
            t.raw_set("options", &options)?;
            let fallback_options = self.data_table(&q.fallback_options)?;
            let allows = self.lua.create_table()?;
            for b in q.allowed.iter() {
                allows.raw_set(b.as_str(), true)?;
            }
            allows.set_readonly(true);
            t.raw_set("allows", allows)?;
            let statuses = self.lua.create_table()?;
            for s in q.statuses.iter() {
                statuses.raw_set(s.as_str(), true)?;
            }
            statuses.set_readonly(true);
            t.raw_set("statuses", statuses)?;
            let candidates = self.lua.create_table_with_capacity(members[i].len(), 0)?;
            for &ix in members[i] {
                candidates.raw_push(&self.agents[ix as usize])?;
            }
            candidates.set_readonly(true);
            t.raw_set("agents", &candidates)?;
            // `waiting` is made when a policy reads it (few do), from the list the host keeps.
            let meta = self.lua.create_table()?;
            let index = i;
            meta.raw_set(
                "__index",
                self.lua.create_function(move |lua, (_, key): (LuaValue, LuaValue)| {
                    if key.as_string().is_none_or(|k| k.as_bytes() != b"waiting") {
                        return Ok(LuaValue::Nil);
                    }
                    let list = match lua.app_data_ref::<Waiting>() {
                        Some(w) => {
                            let tables = w.0.get(index).map(|q| q.iter().map(|(_, t)| t.clone()).collect());
                            tables.unwrap_or_default()
                        }
                        None => Vec::new(),
                    };
                    let t = lua.create_sequence_from(list)?;
                    t.set_readonly(true);
                    Ok(LuaValue::Table(t))
                })?,
            )?;
            meta.set_readonly(true);
            t.set_metatable(Some(meta))?;
            // The memo is the policy's own (writable); the queue table around it is not.
            t.raw_set("memo", self.memo_table(memos.get(&q.id))?)?;
            t.set_readonly(true);
            self.queues.push(QueueView { table: t, candidates, options, fallback_options });
        }
        Ok(())
    }

    /// Options or attributes as a table that is read-only to scripts, all the way down.
    fn data_table(&self, data: &BTreeMap<String, Value>) -> mlua::Result<Table> {
        let t = self.lua.create_table()?;
        for (k, v) in data {
            t.raw_set(k.as_str(), super::fields::from_json_frozen(&self.lua, v)?)?;
        }
        t.set_readonly(true);
        Ok(t)
    }

    fn memo_table(&self, memo: Option<&Value>) -> mlua::Result<Table> {
        match memo.map(|m| from_json(&self.lua, m)).transpose()? {
            Some(LuaValue::Table(t)) => Ok(t),
            _ => self.lua.create_table(),
        }
    }

    /// Every queue's policy memory as plain data, to carry across a reload; and for each memo
    /// that is not plain data (a table that contains itself, a function), why it cannot be.
    pub(crate) fn queue_memos(&self) -> (BTreeMap<String, Value>, Vec<String>) {
        let mut memos = BTreeMap::new();
        let mut lost = Vec::new();
        for q in &self.queues {
            let Ok(id) = q.table.raw_get::<String>("id") else { continue };
            match q.table.raw_get::<LuaValue>("memo").map_err(|e| e.to_string()).and_then(|m| to_json(&m)) {
                Ok(memo) => {
                    memos.insert(id, memo);
                }
                Err(e) => lost.push(format!("queue `{id}`'s memo cannot be carried over: {e}")),
            }
        }
        (memos, lost)
    }

    /// A conversation's policy memory as plain data (`None` when it has no view), or why it
    /// is not plain data.
    pub(crate) fn conversation_memo(&self, id: &str) -> Result<Option<Value>, String> {
        let Some(v) = self.conversations.get(id) else { return Ok(None) };
        let memo = v.conversation().and_then(|c| c.raw_get::<LuaValue>("memo")).map_err(|e| e.to_string())?;
        to_json(&memo).map(Some).map_err(|e| format!("conversation `{id}`'s memo cannot be carried over: {e}"))
    }

    /// Creates the view of a conversation that just arrived (or was restored): its table and
    /// its policy context, built by one call into Lua. Empty parts share one frozen empty table.
    pub(crate) fn add_conversation(
        &mut self,
        c: &Conversation,
        queue_id: &str,
        memo: Option<&Value>,
    ) -> mlua::Result<()> {
        let lua = &self.lua;
        let requires = match c.data.requires.is_empty() {
            true => None,
            false => {
                let t = lua.create_table()?;
                for (skill, level) in &c.data.requires {
                    t.raw_set(skill.as_str(), *level)?;
                }
                t.set_readonly(true);
                Some(t)
            }
        };
        let attributes = match c.data.attributes.is_empty() {
            true => None,
            false => Some(self.data_table(&c.data.attributes)?),
        };
        let memo = memo.map(|m| self.memo_table(Some(m))).transpose()?;
        let (caller, service) = (&c.data.caller, &c.data.service);
        let q = &self.queues[c.queue as usize];
        use stack::Arg::{Number, Str, Table as Tab};
        let args = [
            Str(Some(crate::unit::external(&c.id))),
            Str(Some(&c.id)),
            Str(Some(queue_id)),
            Str(Some(c.data.channel.as_str())),
            Str(caller.name.as_deref()),
            Str(caller.number.as_deref()),
            Str(caller.sip.as_deref()),
            Str(service.name.as_deref()),
            Str(service.number.as_deref()),
            Str(service.sip.as_deref()),
            Tab(requires.as_ref()),
            Tab(attributes.as_ref()),
            Number(c.arrived_at.as_secs_f64()),
            Number(c.queued_at.max(c.round_started_at).as_secs_f64()),
            Number(c.round as f64),
            Number(c.data.priority as f64),
            Tab(memo.as_ref()),
            Tab(Some(&q.table)),
        ];
        let ctx = stack::call(lua, &self.helpers.new_conversation, &args)?
            .ok_or_else(|| mlua::Error::RuntimeError("the conversation builder returned no context".into()))?;
        let view = ConversationView { ctx, ringing: false, queue: c.queue };
        let table = view.conversation()?;
        // A conversation seen again (its data changed) keeps its place in the waiting list.
        match self.conversations.insert(c.id.clone(), view) {
            Some(old) if old.queue == c.queue => self.relist(c.queue, &c.id, Some(&table))?,
            Some(old) => {
                self.relist(old.queue, &c.id, None)?;
                self.list(c.queue, &c.id, &table)?;
            }
            None => self.list(c.queue, &c.id, &table)?,
        }
        for attempt in &c.attempts[c.round_start.min(c.attempts.len())..] {
            self.record_attempt(&c.id, attempt)?;
        }
        if !c.passed.is_empty() {
            let tried: Table = self.conversations[&c.id].ctx.raw_get("tried")?;
            for &(ix, _) in &c.passed {
                let id: LuaValue = self.agents[ix as usize].raw_get("id")?;
                tried.raw_set(id, "passed")?;
            }
        }
        Ok(())
    }

    fn point_at_queue(&self, ctx: &Table, queue: u32) -> mlua::Result<()> {
        let q = &self.queues[queue as usize];
        ctx.raw_set(&self.keys.queue, &q.table)?;
        ctx.raw_set(&self.keys.options, &q.options)
    }

    /// An agent who let the conversation go in an earlier round has been away and is back:
    /// no longer tried in this round.
    pub(crate) fn unpass(&mut self, conversation: &str, agent: &str) -> mlua::Result<()> {
        let Some(v) = self.conversations.get(conversation) else { return Ok(()) };
        let tried: Table = v.ctx.raw_get("tried")?;
        let agent = crate::unit::external(agent);
        if tried.raw_get::<LuaValue>(agent)?.as_string().is_some_and(|s| s.as_bytes() == b"passed") {
            tried.raw_set(agent, LuaValue::Nil)?;
        }
        Ok(())
    }

    /// A new round of offers after the queue's list was exhausted: the policy sees the
    /// conversation as if it had just come in (an empty memo, nothing tried in this round).
    pub(crate) fn restart_conversation(&mut self, c: &Conversation, queue_id: &str) -> mlua::Result<()> {
        self.drop_conversation(&c.id);
        self.add_conversation(c, queue_id, None)
    }

    /// After an overflow: the new queue, a new queued-at time, a fresh memo for the new policy.
    pub(crate) fn move_conversation(&mut self, c: &Conversation, queue_id: &str) -> mlua::Result<()> {
        if let Some(v) = self.conversations.get(&c.id) {
            let conversation = v.conversation()?;
            unfrozen(&conversation, || {
                conversation.raw_set(&self.keys.queue, queue_id)?;
                conversation.raw_set("queued_at", c.queued_at.as_secs_f64())?;
                conversation.raw_set("memo", self.lua.create_table()?)
            })?;
            self.point_at_queue(&v.ctx, c.queue)?;
            let from = v.queue;
            self.relist(from, &c.id, None)?;
            self.list(c.queue, &c.id, &conversation)?;
            if let Some(v) = self.conversations.get_mut(&c.id) {
                v.queue = c.queue;
            }
        }
        Ok(())
    }

    /// Appends an attempt that ended to the conversation's `attempts` and `tried`.
    /// (The offers still ringing are `ctx.ringing`.)
    pub(crate) fn record_attempt(&mut self, conversation: &str, a: &Attempt) -> mlua::Result<()> {
        let (Some(v), Some(ended_at)) = (self.conversations.get(conversation), a.ended_at) else {
            return Ok(());
        };
        use stack::Arg::{Number, Str, Table as Tab};
        let args = [
            Tab(Some(&v.ctx)),
            Str(Some(crate::unit::external(&a.agent))),
            Str(Some(&a.queue)),
            Number(a.offered_at.as_secs_f64()),
            Str(Some(a.outcome.as_str())),
            Number(ended_at.as_secs_f64()),
            Str(a.reason),
        ];
        stack::call(&self.lua, &self.helpers.attempt, &args).map(drop)
    }

    pub(crate) fn drop_conversation(&mut self, id: &str) {
        if let Some(v) = self.conversations.remove(id) {
            let _ = self.relist(v.queue, id, None);
        }
    }

    /// Appends conversation `key` (its table `conversation`) to its queue's waiting list.
    fn list(&mut self, q: u32, key: &Arc<str>, conversation: &Table) -> mlua::Result<()> {
        if let Some(list) = self.lua.app_data_mut::<Waiting>().as_mut().and_then(|w| w.0.get_mut(q as usize)) {
            list.push((key.clone(), conversation.clone()));
        }
        Ok(())
    }

    /// Takes conversation `key` out of its queue's waiting list, or puts `by` in its place.
    fn relist(&mut self, q: u32, key: &str, by: Option<&Table>) -> mlua::Result<()> {
        let mut waiting = self.lua.app_data_mut::<Waiting>();
        let Some(list) = waiting.as_mut().and_then(|w| w.0.get_mut(q as usize)) else { return Ok(()) };
        let Some(at) = list.iter().position(|(k, _)| **k == *key) else { return Ok(()) };
        match by {
            Some(table) => list[at].1 = table.clone(),
            None => {
                list.remove(at);
            }
        }
        Ok(())
    }

    /// Asks policy `name` about a conversation (with the queue's fallback options when
    /// `as_fallback`). The CPU budget and memory cap apply to this call only; whatever goes
    /// wrong comes back as a [`PolicyFailure`], never a panic.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn decide(
        &mut self,
        name: &str,
        conversation: &str,
        queue: u32,
        now: Timestamp,
        ringing: &[AgentIx],
        as_fallback: bool,
        skipped: &mut Vec<(AgentIx, Reason)>,
        lent: &mut Option<Lent>,
    ) -> Result<Decision, PolicyFailure> {
        let fail = |message: String| PolicyFailure { message };
        let policy =
            self.policies.get(name).ok_or_else(|| fail(format!("policy `{name}` is not registered in Lua")))?;
        let view =
            self.conversations.get_mut(conversation).ok_or_else(|| fail(format!("no view of `{conversation}`")))?;
        let setup = |view: &mut ConversationView| -> mlua::Result<()> {
            if as_fallback {
                view.ctx.raw_set(&self.keys.options, &self.queues[queue as usize].fallback_options)?;
            }
            if !ringing.is_empty() {
                let list = self.lua.create_table_with_capacity(ringing.len(), 0)?;
                for &ix in ringing {
                    list.raw_push(&self.agents[ix as usize])?;
                }
                view.ctx.raw_set(&self.keys.ringing, list)?;
                view.ringing = true;
            } else if view.ringing {
                view.ctx.raw_set(&self.keys.ringing, &self.empty)?;
                view.ringing = false;
            }
            Ok(())
        };
        setup(view).map_err(|e| fail(format!("could not prepare the policy call: {e}")))?;
        let ctx = &view.ctx;

        let lua = &self.lua;
        // The roster is the VM's for this call only; it goes back below whatever happens.
        if let Some(mut l) = lent.take() {
            self.serial += 1;
            l.serial = self.serial;
            lua.set_app_data(l);
        }
        let (base, limits) = (lua.used_memory(), &self.limits);
        let (agents, reasons) = (self.agents.len(), &mut self.reasons);
        let result = stack::call_policy(
            lua,
            &self.call,
            &self.locate,
            policy,
            ctx,
            now.as_secs_f64(),
            &self.skipped,
            || arm(lua, limits, base),
            || disarm(lua),
            |ret, list| {
                let n = ret.number(4).unwrap_or(0.0) as i64;
                read_skips(list, n, agents, reasons, skipped).and_then(|()| parse(ret, agents))
            },
        );
        *lent = lua.remove_app_data::<Lent>();
        if as_fallback {
            let _ = ctx.raw_set(&self.keys.options, &self.queues[queue as usize].options);
        }

        let outcome = match result {
            Ok(decision) => decision.map_err(fail),
            Err(e) => {
                let _ = ctx.raw_set(&self.keys.nskip, 0);
                let mut text = super::diagnostic_from_error(&e, name).to_string();
                if text.contains("attempt to modify a readonly table") {
                    text.push_str(READ_ONLY_HINT);
                }
                Err(fail(text))
            }
        };
        if outcome.is_err() {
            // Drop half-written skips and whatever a failed call left behind (a memory bomb's table).
            skipped.clear();
            let _ = self.lua.gc_collect();
        }
        outcome
    }
}

/// Said after Luau's "attempt to modify a readonly table" (which names the line, not the field).
const READ_ONLY_HINT: &str = ": agent, queue, conversation, attempt and option tables are the host's view and \
    read-only to policies; sort or filter `ctx.candidates` (each decision gets its own copy), copy \
    other tables with table.clone, and keep your own state in a `memo` table";

/// Runs a host write on a table that is read-only to scripts.
fn unfrozen<R>(t: &Table, write: impl FnOnce() -> R) -> R {
    t.set_readonly(false);
    let result = write();
    t.set_readonly(true);
    result
}

/// Starts a call into scripts under the per-call limits: memory on top of `base`, what the VM
/// held before the call (the view tables are the host's), and the CPU budget.
fn arm(lua: &Lua, limits: &Limits, base: usize) {
    // At least one byte: a limit of 0 would mean none at all.
    let _ = lua.set_memory_limit((base + limits.memory).min(limits.memory_total).max(1));
    sandbox::arm(limits.cpu_per_call);
}

/// Ends what [`arm`] started: the host's own writes run without a memory limit.
fn disarm(lua: &Lua) {
    sandbox::disarm();
    let _ = lua.set_memory_limit(0);
}

/// Moves the `n` values `ctx:skip` left in the shared list (agent index, reason, ...) into `out`.
fn read_skips(
    list: &stack::List,
    n: i64,
    agents: usize,
    reasons: &mut FxHashMap<Box<[u8]>, Arc<str>>,
    out: &mut Vec<(AgentIx, Reason)>,
) -> Result<(), String> {
    let mut i = 1;
    while i < n {
        let agent = list.entry(i, |v| v.number(0)).filter(|&ix| ix >= 0.0 && (ix as usize) < agents);
        let Some(agent) = agent else {
            return Err("ctx:skip expects an agent (a table from ctx.candidates)".into());
        };
        let reason = list.entry(i + 1, |v| match v.bytes(0) {
            Some(bytes) if bytes.len() > MAX_REASON => {
                Reason::Text(Arc::from(super::log::cut(String::from_utf8_lossy(bytes).into_owned(), MAX_REASON)))
            }
            Some(bytes) => intern(reasons, bytes),
            None => match v.value(0) {
                LuaValue::Nil => Reason::Fixed("skipped"),
                other => Reason::Text(Arc::from(super::fields::plain_text(&other))),
            },
        });
        out.push((agent as AgentIx, reason));
        i += 2;
    }
    Ok(())
}

/// A policy's skip reason, allocated once per distinct text (up to [`MAX_REASONS`]).
fn intern(reasons: &mut FxHashMap<Box<[u8]>, Arc<str>>, bytes: &[u8]) -> Reason {
    if let Some(r) = reasons.get(bytes) {
        return Reason::Text(r.clone());
    }
    let text: Arc<str> = Arc::from(String::from_utf8_lossy(bytes));
    if reasons.len() < MAX_REASONS {
        reasons.insert(Box::from(bytes), text.clone());
    }
    Reason::Text(text)
}

/// The agent behind a view table handed back by a policy.
fn agent_of(value: LuaValue, agents: usize) -> Result<AgentIx, String> {
    let ix = match value {
        // The call wrapper already swapped a single agent for its index.
        LuaValue::Integer(i) => Some(i),
        LuaValue::Table(t) => t.raw_get::<Option<i64>>("idx").ok().flatten(),
        other => return Err(format!("expected an agent (a table from ctx.candidates), got {}", other.type_name())),
    };
    match ix {
        Some(i) if (i as usize) < agents => Ok(i as AgentIx),
        _ => Err("expected an agent (a table from ctx.candidates), got another table".into()),
    }
}

/// Agents from a list a policy returned.
fn agents_of(list: &Table, agents: usize, what: &str) -> Result<Vec<AgentIx>, String> {
    // Raw reads: a list with metamethods runs no script code here, outside the call's budget.
    let len = list.raw_len();
    if len > agents {
        return Err(format!("{what}: {len} agents listed, but there are only {agents}"));
    }
    let mut out = Vec::with_capacity(len);
    for i in 1..=len {
        let item = list.raw_get::<LuaValue>(i).map_err(|e| e.to_string())?;
        out.push(agent_of(item, agents).map_err(|e| format!("{what}: {e}"))?);
    }
    Ok(out)
}

/// The decision in what the policy-call wrapper returned: a kind, then its values.
fn parse(ret: &stack::Results, agents: usize) -> Result<Decision, String> {
    let Some(kind) = ret.bytes(0) else {
        return Err(bad_return(match ret.value(0) {
            LuaValue::Nil => "nothing",
            other => other.type_name(),
        }));
    };
    let duration = |i, what: &str| -> Result<Option<crate::time::Duration>, String> {
        duration_of(&ret.value(i)).map_err(|e| format!("{what}: {e}"))
    };
    let text = |i| ret.bytes(i).map(|b| String::from_utf8_lossy(b).into_owned());
    Ok(match kind {
        b"offer" => {
            let agent = agent_of(ret.value(1), agents).map_err(|e| format!("policies.offer: {e}"))?;
            let timeout = duration(2, "policies.offer timeout")?.ok_or("policies.offer needs a timeout")?;
            Decision::Offer { agents: vec![agent], timeout, extend_after: None }
        }
        b"offer_many" => {
            let LuaValue::Table(list) = ret.value(1) else {
                return Err("policies.offer_many expects a list of agents".into());
            };
            let agents = agents_of(&list, agents, "policies.offer_many")?;
            let timeout = duration(2, "policies.offer_many timeout")?.ok_or("policies.offer_many needs a timeout")?;
            let extend_after = duration(3, "policies.offer_many extend_after")?;
            Decision::Offer { agents, timeout, extend_after }
        }
        b"wait" => {
            let retry_after = duration(1, "policies.wait")?;
            let for_agents = match ret.value(2) {
                LuaValue::Nil => Vec::new(),
                agent @ LuaValue::Integer(_) => {
                    vec![agent_of(agent, agents).map_err(|e| format!("policies.wait: {e}"))?]
                }
                LuaValue::Table(list) => agents_of(&list, agents, "policies.wait")?,
                other => {
                    return Err(format!(
                        "policies.wait: expected an agent or a list of agents, got {}",
                        other.type_name()
                    ))
                }
            };
            Decision::Wait { retry_after, for_agents }
        }
        b"overflow" => match text(1) {
            Some(queue) => Decision::Overflow { queue },
            None => return Err(format!("policies.overflow expects a queue id, got {}", ret.value(1).type_name())),
        },
        b"give_up" => Decision::GiveUp { reason: text(1).unwrap_or_else(|| "given up by policy".into()) },
        b"exhausted" => Decision::Exhausted { reason: text(1).unwrap_or_else(|| "every agent was tried".into()) },
        other => return Err(bad_return(&format!("\"{}\"", String::from_utf8_lossy(other)))),
    })
}

fn bad_return(got: &str) -> String {
    format!(
        "policy returned {got}; return policies.offer(agent, timeout), policies.offer_many(agents, timeout), \
         policies.wait(), policies.overflow(queue), policies.exhausted(reason) or policies.give_up(reason)"
    )
}
