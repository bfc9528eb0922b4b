//! The Lua view of engine state, updated incrementally, and the call into a policy.
//!
//! Agent, queue and conversation tables are built once and then patched field by
//! field when the engine reports a change, so a decision never rebuilds them.

use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::sync::Arc;

use mlua::{Function, Lua, LuaString, MultiValue, Table, Value as LuaValue};

use serde_json::Value;

use super::fields::{duration_of, from_json, to_json};
use super::log::LogBuffer;
use super::sandbox::{Budget, Limits};
use crate::agent::{Agent, AgentIx};
use crate::conversation::{Attempt, Conversation};
use crate::decision::Decision;
use crate::rules::RuleSet;
use crate::time::Timestamp;

/// A policy call that failed: a runtime error, a runaway loop, a memory bomb or a malformed decision.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyFailure {
    /// `file:line: message` where Lua knows the line.
    pub message: String,
}

/// One loaded generation of scripts: the VM, its policies and the view tables.
pub struct Scripts {
    lua: Lua,
    budget: Rc<Budget>,
    limits: Limits,
    generation: u64,
    policies: BTreeMap<String, Function>,
    agents: Vec<Table>,
    queues: Vec<Table>,
    conversations: HashMap<Arc<str>, Table>,
    ctx: Table,
    skipped: Table,
    empty: Table,
    keys: Keys,
}

/// Interned field names, so updating a view table does not re-hash its keys each time.
struct Keys {
    status: LuaString,
    state: LuaString,
    pause_cause: LuaString,
    since: LuaString,
    presence: LuaString,
    base: LuaString,
    online: LuaString,
    work_day: LuaString,
    dismissed: LuaString,
    on_vacation: LuaString,
    blocked: LuaString,
    unavailable: LuaString,
    offered: LuaString,
    answered: LuaString,
    missed: LuaString,
    missed_in_row: LuaString,
    talk_time: LuaString,
    idle_since: LuaString,
    busy: LuaString,
    conversation: LuaString,
    queue: LuaString,
    now: LuaString,
    candidates: LuaString,
    options: LuaString,
    attempts: LuaString,
    tried: LuaString,
    ringing: LuaString,
    idx: LuaString,
}

impl Keys {
    fn new(lua: &Lua) -> mlua::Result<Self> {
        let k = |s: &str| lua.create_string(s);
        Ok(Keys {
            status: k("status")?,
            state: k("state")?,
            pause_cause: k("pause_cause")?,
            since: k("since")?,
            presence: k("presence")?,
            base: k("base")?,
            online: k("online")?,
            work_day: k("work_day")?,
            dismissed: k("dismissed")?,
            on_vacation: k("on_vacation")?,
            blocked: k("blocked")?,
            unavailable: k("unavailable")?,
            offered: k("offered")?,
            answered: k("answered")?,
            missed: k("missed")?,
            missed_in_row: k("missed_in_row")?,
            talk_time: k("talk_time")?,
            idle_since: k("idle_since")?,
            busy: k("busy")?,
            conversation: k("conversation")?,
            queue: k("queue")?,
            now: k("now")?,
            candidates: k("candidates")?,
            options: k("options")?,
            attempts: k("attempts")?,
            tried: k("tried")?,
            ringing: k("ringing")?,
            idx: k("idx")?,
        })
    }
}

const SKIP: &str = r#"
return function(self, agent, reason)
    local s = self.skipped
    local n = #s
    s[n + 1] = agent
    s[n + 2] = reason
end
"#;

impl Scripts {
    pub(super) fn new(
        lua: Lua,
        budget: Rc<Budget>,
        limits: Limits,
        policies: BTreeMap<String, Function>,
        generation: u64,
    ) -> mlua::Result<Self> {
        // The limit guards policy calls; the host's own view tables are accounted separately.
        lua.set_memory_limit(0)?;
        let ctx = lua.create_table()?;
        let skipped = lua.create_table()?;
        ctx.raw_set("skipped", &skipped)?;
        ctx.raw_set("skip", lua.load(SKIP).set_name("=ctx.skip").eval::<Function>()?)?;
        Ok(Scripts {
            keys: Keys::new(&lua)?,
            empty: lua.create_table()?,
            lua,
            budget,
            limits,
            generation,
            policies,
            agents: Vec::new(),
            queues: Vec::new(),
            conversations: HashMap::new(),
            ctx,
            skipped,
        })
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn has_policy(&self, name: &str) -> bool {
        self.policies.contains_key(name)
    }

    /// Bytes the Lua heap holds (view tables included).
    pub fn memory_used(&self) -> usize {
        self.lua.used_memory()
    }

    /// Messages scripts logged since the last call.
    pub fn take_logs(&self) -> Vec<(&'static str, String)> {
        self.lua.app_data_mut::<LogBuffer>().map(|mut b| std::mem::take(&mut b.0)).unwrap_or_default()
    }

    /// Adds the view table of a new agent (agents are added in index order).
    pub fn add_agent(&mut self, agent: &Agent, track_work_day: bool) -> mlua::Result<()> {
        let t = self.lua.create_table_with_capacity(0, 32)?;
        t.raw_set(&self.keys.idx, agent.ix)?;
        t.raw_set("id", &*agent.id)?;
        self.set_static(&t, agent)?;
        debug_assert_eq!(self.agents.len(), agent.ix as usize);
        self.agents.push(t);
        self.sync_agent(agent, track_work_day)
    }

    /// Refreshes what the scripts define about an agent (after a reload changed it).
    fn set_static(&self, t: &Table, agent: &Agent) -> mlua::Result<()> {
        let d = &agent.def;
        t.raw_set("name", d.name.as_str())?;
        t.raw_set("team", d.team.as_deref())?;
        t.raw_set("email", d.email.as_deref())?;
        t.raw_set("phone", d.phone.as_deref())?;
        t.raw_set("time_zone", d.time_zone.as_deref())?;
        t.raw_set("weight", d.weight)?;
        let skills = self.lua.create_table()?;
        for (k, v) in &d.skills {
            skills.raw_set(k.as_str(), *v)?;
        }
        t.raw_set("skills", skills)?;
        let attributes = self.lua.create_table()?;
        for (k, v) in &d.attributes {
            attributes.raw_set(k.as_str(), from_json(&self.lua, v)?)?;
        }
        t.raw_set("attributes", attributes)
    }

    /// Writes an agent's run-time fields into its view table.
    pub fn sync_agent(&mut self, a: &Agent, track_work_day: bool) -> mlua::Result<()> {
        let t = &self.agents[a.ix as usize];
        let k = &self.keys;
        t.raw_set(&k.status, a.status.as_str())?;
        t.raw_set(&k.state, a.state.as_str())?;
        t.raw_set(&k.pause_cause, a.pause_cause.as_deref())?;
        t.raw_set(&k.since, a.state_since.as_secs_f64())?;
        t.raw_set(&k.presence, a.presence.as_str())?;
        t.raw_set(&k.base, a.base.as_str())?;
        t.raw_set(&k.online, a.online)?;
        t.raw_set(&k.work_day, a.work_day)?;
        t.raw_set(&k.dismissed, a.dismissed)?;
        t.raw_set(&k.on_vacation, a.on_vacation)?;
        t.raw_set(&k.blocked, a.blocked())?;
        t.raw_set(&k.unavailable, a.unavailable(track_work_day))?;
        t.raw_set(&k.offered, a.counters.offered)?;
        t.raw_set(&k.answered, a.counters.answered)?;
        t.raw_set(&k.missed, a.counters.missed)?;
        t.raw_set(&k.missed_in_row, a.counters.missed_in_row)?;
        t.raw_set(&k.talk_time, a.counters.talk_time.as_secs_f64())?;
        t.raw_set(&k.idle_since, a.idle_since.as_secs_f64())?;
        t.raw_set(&k.busy, a.conversation.is_some())
    }

    /// Builds the queue tables of a rule set: id, name, options, allowed statuses, agents in order,
    /// and `memo`, the policy's memory (a round-robin position), restored from `memos` by queue id.
    pub fn set_queues(
        &mut self,
        rules: &RuleSet,
        members: &[Vec<AgentIx>],
        memos: &BTreeMap<String, Value>,
    ) -> mlua::Result<()> {
        self.queues.clear();
        for (i, q) in rules.queues.iter().enumerate() {
            let t = self.lua.create_table()?;
            t.raw_set("id", q.id.as_str())?;
            t.raw_set("name", q.name.as_str())?;
            t.raw_set("policy", q.policy.as_str())?;
            let options = self.lua.create_table()?;
            for (k, v) in &q.options {
                options.raw_set(k.as_str(), from_json(&self.lua, v)?)?;
            }
            t.raw_set("options", options)?;
            let fallback_options = self.lua.create_table()?;
            for (k, v) in &q.fallback_options {
                fallback_options.raw_set(k.as_str(), from_json(&self.lua, v)?)?;
            }
            t.raw_set("fallback_options", fallback_options)?;
            let allows = self.lua.create_table()?;
            for b in q.allowed.iter() {
                allows.raw_set(b.as_str(), true)?;
            }
            t.raw_set("allows", allows)?;
            let list = self.lua.create_table_with_capacity(members[i].len(), 0)?;
            for &ix in &members[i] {
                list.raw_push(&self.agents[ix as usize])?;
            }
            t.raw_set("agents", list)?;
            t.raw_set("memo", self.memo_table(memos.get(&q.id))?)?;
            self.queues.push(t);
        }
        Ok(())
    }

    fn memo_table(&self, memo: Option<&Value>) -> mlua::Result<Table> {
        match memo.map(|m| from_json(&self.lua, m)).transpose()? {
            Some(LuaValue::Table(t)) => Ok(t),
            _ => self.lua.create_table(),
        }
    }

    /// Every queue's policy memory as plain data, to carry across a reload or into a store.
    pub fn queue_memos(&self) -> BTreeMap<String, Value> {
        self.queues
            .iter()
            .filter_map(|t| {
                let id: String = t.raw_get("id").ok()?;
                let memo = to_json(&t.raw_get::<LuaValue>("memo").ok()?).ok()?;
                Some((id, memo))
            })
            .collect()
    }

    /// A conversation's policy memory as plain data.
    pub fn conversation_memo(&self, id: &str) -> Option<Value> {
        let t = self.conversations.get(id)?;
        to_json(&t.raw_get::<LuaValue>("memo").ok()?).ok()
    }

    /// Creates the view table of a conversation that just arrived (or was restored).
    pub fn add_conversation(&mut self, c: &Conversation, queue_id: &str, memo: Option<&Value>) -> mlua::Result<()> {
        let lua = &self.lua;
        let t = lua.create_table_with_capacity(0, 16)?;
        t.raw_set("id", &*c.id)?;
        t.raw_set(&self.keys.queue, queue_id)?;
        t.raw_set("channel", c.data.channel.as_str())?;
        for (key, party) in [("caller", &c.data.caller), ("service", &c.data.service)] {
            let p = lua.create_table()?;
            p.raw_set("name", party.name.as_deref())?;
            p.raw_set("number", party.number.as_deref())?;
            p.raw_set("sip", party.sip.as_deref())?;
            t.raw_set(key, p)?;
        }
        let requires = lua.create_table()?;
        for (k, v) in &c.data.requires {
            requires.raw_set(k.as_str(), *v)?;
        }
        t.raw_set("requires", requires)?;
        let attributes = lua.create_table()?;
        for (k, v) in &c.data.attributes {
            attributes.raw_set(k.as_str(), from_json(lua, v)?)?;
        }
        t.raw_set("attributes", attributes)?;
        t.raw_set("arrived_at", c.arrived_at.as_secs_f64())?;
        t.raw_set("queued_at", c.queued_at.as_secs_f64())?;
        t.raw_set(&self.keys.attempts, lua.create_table()?)?;
        t.raw_set(&self.keys.tried, lua.create_table()?)?;
        t.raw_set("memo", self.memo_table(memo)?)?;
        self.conversations.insert(c.id.clone(), t.clone());
        for (i, attempt) in c.attempts.iter().enumerate() {
            self.record_attempt(&c.id, i, attempt)?;
        }
        Ok(())
    }

    /// After an overflow: the new queue, a new queued-at time, a fresh memo for the new policy.
    pub fn move_conversation(&mut self, c: &Conversation, queue_id: &str) -> mlua::Result<()> {
        if let Some(t) = self.conversations.get(&c.id) {
            t.raw_set(&self.keys.queue, queue_id)?;
            t.raw_set("queued_at", c.queued_at.as_secs_f64())?;
            t.raw_set("memo", self.lua.create_table()?)?;
        }
        Ok(())
    }

    /// Writes attempt number `index` (0-based) of a conversation, new or ended.
    pub fn record_attempt(&mut self, conversation: &str, index: usize, a: &Attempt) -> mlua::Result<()> {
        let Some(c) = self.conversations.get(conversation) else {
            return Ok(());
        };
        let attempts: Table = c.raw_get(&self.keys.attempts)?;
        let t = match attempts.raw_get::<Option<Table>>(index + 1)? {
            Some(t) => t,
            None => {
                let t = self.lua.create_table_with_capacity(0, 5)?;
                t.raw_set("agent", &*a.agent)?;
                t.raw_set(&self.keys.queue, &*a.queue)?;
                t.raw_set("offered_at", a.offered_at.as_secs_f64())?;
                attempts.raw_set(index + 1, &t)?;
                t
            }
        };
        t.raw_set("outcome", a.outcome.as_str())?;
        if let Some(end) = a.ended_at {
            t.raw_set("ended_at", end.as_secs_f64())?;
            let tried: Table = c.raw_get(&self.keys.tried)?;
            tried.raw_set(&*a.agent, a.outcome.as_str())?;
        }
        Ok(())
    }

    pub fn drop_conversation(&mut self, id: &str) {
        self.conversations.remove(id);
    }

    /// Asks policy `name` about a conversation (with the queue's fallback options when
    /// `as_fallback`). The CPU budget and memory cap apply to this call only; whatever goes
    /// wrong comes back as a [`PolicyFailure`], never a panic.
    #[allow(clippy::too_many_arguments)]
    pub fn decide(
        &mut self,
        name: &str,
        conversation: &str,
        queue: u32,
        now: Timestamp,
        ringing: &[AgentIx],
        as_fallback: bool,
        skipped: &mut Vec<(AgentIx, Arc<str>)>,
    ) -> Result<Decision, PolicyFailure> {
        let fail = |message: String| PolicyFailure { message };
        let policy =
            self.policies.get(name).ok_or_else(|| fail(format!("policy `{name}` is not registered in Lua")))?;
        let conv = self.conversations.get(conversation).ok_or_else(|| fail(format!("no view of `{conversation}`")))?;
        let q = &self.queues[queue as usize];
        let setup = || -> mlua::Result<()> {
            let (k, ctx) = (&self.keys, &self.ctx);
            ctx.raw_set(&k.conversation, conv)?;
            ctx.raw_set(&k.queue, q)?;
            ctx.raw_set(&k.now, now.as_secs_f64())?;
            ctx.raw_set(&k.candidates, q.raw_get::<Table>("agents")?)?;
            let options: Table = if as_fallback { q.raw_get("fallback_options")? } else { q.raw_get(&k.options)? };
            ctx.raw_set(&k.options, options)?;
            ctx.raw_set(&k.attempts, conv.raw_get::<Table>(&k.attempts)?)?;
            ctx.raw_set(&k.tried, conv.raw_get::<Table>(&k.tried)?)?;
            if ringing.is_empty() {
                ctx.raw_set(&k.ringing, &self.empty)
            } else {
                let list = self.lua.create_table_with_capacity(ringing.len(), 0)?;
                for &ix in ringing {
                    list.raw_push(&self.agents[ix as usize])?;
                }
                ctx.raw_set(&k.ringing, list)
            }
        };
        setup().map_err(|e| fail(format!("could not prepare the policy call: {e}")))?;

        let base = self.lua.used_memory();
        let _ = self.lua.set_memory_limit(base + self.limits.memory);
        self.budget.arm(self.limits.cpu_per_call);
        let result = policy.call::<MultiValue>(&self.ctx);
        self.budget.disarm();
        let _ = self.lua.set_memory_limit(0);

        let outcome = match result {
            Ok(values) => self.read_skips(skipped).and_then(|()| self.parse(values)).map_err(fail),
            Err(e) => Err(fail(super::diagnostic_from_error(&e, name).to_string())),
        };
        if outcome.is_err() {
            // Drop half-written skips and whatever a failed call left behind (a memory bomb's table).
            let _ = self.clear_skips();
            let _ = self.lua.gc_collect();
        }
        outcome
    }

    fn read_skips(&self, out: &mut Vec<(AgentIx, Arc<str>)>) -> Result<(), String> {
        let n = self.skipped.raw_len();
        if n == 0 {
            return Ok(());
        }
        let mut i = 1;
        while i <= n {
            let agent = self
                .agent_of(self.skipped.raw_get(i).unwrap_or(LuaValue::Nil))
                .map_err(|e| format!("ctx:skip: {e}"))?;
            let reason: LuaValue = self.skipped.raw_get(i + 1).unwrap_or(LuaValue::Nil);
            let reason = match reason {
                LuaValue::String(s) => Arc::from(s.to_string_lossy()),
                LuaValue::Nil => Arc::from("skipped"),
                other => Arc::from(other.to_string().unwrap_or_default()),
            };
            out.push((agent, reason));
            i += 2;
        }
        self.clear_skips().map_err(|e| e.to_string())
    }

    fn clear_skips(&self) -> mlua::Result<()> {
        for i in 1..=self.skipped.raw_len() {
            self.skipped.raw_set(i, LuaValue::Nil)?;
        }
        Ok(())
    }

    /// The agent behind a view table handed back by a policy.
    fn agent_of(&self, value: LuaValue) -> Result<AgentIx, String> {
        let LuaValue::Table(t) = value else {
            return Err(format!("expected an agent (a table from ctx.candidates), got {}", value.type_name()));
        };
        let ix: Option<i64> = t.raw_get(&self.keys.idx).ok().flatten();
        match ix.and_then(|i| self.agents.get(i as usize).map(|a| (i, a))) {
            Some((i, a)) if *a == t => Ok(i as AgentIx),
            _ => Err("expected an agent (a table from ctx.candidates), got another table".into()),
        }
    }

    fn parse(&self, values: MultiValue) -> Result<Decision, String> {
        let mut v = values.into_iter();
        let kind = match v.next() {
            Some(LuaValue::String(s)) => s.to_string_lossy(),
            Some(other) => return Err(bad_return(other.type_name())),
            None => return Err(bad_return("nothing")),
        };
        let mut next = || v.next().unwrap_or(LuaValue::Nil);
        let duration = |value: LuaValue, what: &str| -> Result<Option<crate::time::Duration>, String> {
            duration_of(&value).map_err(|e| format!("{what}: {e}"))
        };
        Ok(match kind.as_str() {
            "offer" => {
                let agent = self.agent_of(next()).map_err(|e| format!("policies.offer: {e}"))?;
                let timeout = duration(next(), "policies.offer timeout")?.ok_or("policies.offer needs a timeout")?;
                Decision::Offer { agents: vec![agent], timeout, extend_after: None }
            }
            "offer_many" => {
                let LuaValue::Table(list) = next() else {
                    return Err("policies.offer_many expects a list of agents".into());
                };
                let mut agents = Vec::with_capacity(list.raw_len());
                for item in list.sequence_values::<LuaValue>() {
                    agents.push(
                        self.agent_of(item.map_err(|e| e.to_string())?)
                            .map_err(|e| format!("policies.offer_many: {e}"))?,
                    );
                }
                let timeout =
                    duration(next(), "policies.offer_many timeout")?.ok_or("policies.offer_many needs a timeout")?;
                let extend_after = duration(next(), "policies.offer_many extend_after")?;
                Decision::Offer { agents, timeout, extend_after }
            }
            "wait" => Decision::Wait { retry_after: duration(next(), "policies.wait")? },
            "overflow" => match next() {
                LuaValue::String(q) => Decision::Overflow { queue: q.to_string_lossy() },
                other => return Err(format!("policies.overflow expects a queue id, got {}", other.type_name())),
            },
            "give_up" => Decision::GiveUp {
                reason: match next() {
                    LuaValue::String(r) => r.to_string_lossy(),
                    _ => "given up by policy".into(),
                },
            },
            other => return Err(bad_return(&format!("\"{other}\""))),
        })
    }
}

fn bad_return(got: &str) -> String {
    format!(
        "policy returned {got}; return policies.offer(agent, timeout), policies.offer_many(agents, timeout), \
         policies.wait(), policies.overflow(queue) or policies.give_up(reason)"
    )
}
