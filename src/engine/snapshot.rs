//! Snapshots: the engine's complete state written out and read back, so a start need not
//! replay all of history. Restoring a snapshot and handling the inputs that came after it
//! gives the state that handling every input from the beginning gives (tests below run every
//! scenario, and a random day, restoring after each input).
//!
//! What a snapshot holds: agents (definitions, presence, state, counters, slots, records),
//! queues (waiting lists, epochs, failures), conversations (attempts, traces, timers, memos),
//! offers, pending timers with their due times and sequence, workflow instances and stage
//! numbers, notification ids, metrics, the scripts' sources, generation, queue and
//! conversation memos, `kv` and where `math.random` is. The rules and the Lua view are not
//! in it: they are built again from the sources, as a reload builds them.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::*;
use crate::conversation::Sent;
use crate::decision::{Reason, TraceLog, Traced};
use crate::instance::{HistoryStep, Instance, InstanceStatus, Task};
use crate::kv::Kv;
use crate::time::Duration;
use crate::timer::TimerKey;

/// The snapshot format this rota writes and the newest it reads.
pub const SNAPSHOT_FORMAT: u32 = 1;

/// Why a snapshot could not be taken or restored.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SnapshotError {
    /// The engine holds something a snapshot cannot carry yet; the journal still has it all.
    #[error("no snapshot now: {0}")]
    NotNow(String),
    #[error("snapshot format {found} is newer than this rota reads (up to {supported}); use a newer rota")]
    Format { found: u32, supported: u32 },
    #[error("the snapshot cannot be read: {0}")]
    Corrupt(#[from] serde_json::Error),
    #[error("the snapshot's scripts do not load again: {0}")]
    Load(#[from] LoadError),
}

/// A snapshot taken: its bytes, and what it could not carry (memos that are not plain data
/// start over after a restore, as after a reload).
pub struct Snapshot {
    pub bytes: Vec<u8>,
    pub warnings: Vec<String>,
}

/// The state as a snapshot holds it. Written from borrows of the engine's own state (the
/// engine loop waits while it is written, so nothing is copied that need not be); read back
/// owned.
#[derive(Serialize, Deserialize)]
struct State<'a> {
    format: u32,
    now: Timestamp,
    sources: Cow<'a, Sources>,
    generation: u64,
    rng: u64,
    kv: Kv,
    queue_memos: BTreeMap<String, Value>,
    conversation_memos: Vec<(Arc<str>, Value)>,
    agents: Cow<'a, agents::Agents>,
    queues: Cow<'a, [QueueRuntime]>,
    conversations: Vec<ConversationRepr>,
    ended: Cow<'a, VecDeque<Arc<str>>>,
    offers: Vec<Cow<'a, Offer>>,
    next_offer: u64,
    timers: Cow<'a, Timers>,
    reevaluate: Cow<'a, BTreeSet<u32>>,
    epoch: u64,
    next_notification: u64,
    instances: Vec<InstanceRepr>,
    finished: Cow<'a, VecDeque<u64>>,
    next_instance: u64,
    next_task: u64,
    stage_numbers: Cow<'a, StageNumbers>,
    metrics: Cow<'a, Metrics>,
}

impl Engine {
    /// The engine's complete state between two steps, as bytes [`Engine::restore`] reads.
    pub fn snapshot(&self) -> Result<Snapshot, SnapshotError> {
        if let Some(q) = self.rules.queues.iter().find(|q| q.retired) {
            // Its definition lives only in this engine, not in the sources a restore loads.
            return Err(SnapshotError::NotNow(format!(
                "queue `{}` was removed from the scripts but still holds conversations",
                q.id
            )));
        }
        let (next_notification, at_rest) = self.standby.at_rest();
        if !at_rest || !self.updates.is_empty() {
            return Err(SnapshotError::NotNow("a step is in progress".into()));
        }
        let (queue_memos, mut warnings) = self.scripts.queue_memos();
        let mut conversation_memos = Vec::new();
        for c in self.conversations.values().filter(|c| c.status.is_waiting()) {
            match self.scripts.conversation_memo(&c.id) {
                Ok(Some(memo)) => conversation_memos.push((c.id.clone(), memo)),
                Ok(None) => {}
                Err(e) => warnings.push(e),
            }
        }
        let (instances, finished, next_instance, next_task, stage_numbers) = self.workflows.parts();
        let state = State {
            format: SNAPSHOT_FORMAT,
            now: self.now,
            sources: Cow::Borrowed(&self.sources),
            generation: self.scripts.generation(),
            rng: self.scripts.rng(),
            kv: self.scripts.kv(),
            queue_memos,
            conversation_memos,
            agents: Cow::Borrowed(&self.agents),
            queues: Cow::Borrowed(&self.queues),
            conversations: self.conversations.values().map(ConversationRepr::from).collect(),
            ended: Cow::Borrowed(&self.ended),
            offers: self.offers.values().map(Cow::Borrowed).collect(),
            next_offer: self.next_offer,
            timers: Cow::Borrowed(&self.timers),
            reevaluate: Cow::Borrowed(&self.reevaluate),
            epoch: self.epoch,
            next_notification,
            instances: instances.values().map(|i| InstanceRepr(i.clone())).collect(),
            finished: Cow::Borrowed(finished),
            next_instance,
            next_task,
            stage_numbers: Cow::Borrowed(stage_numbers),
            metrics: Cow::Borrowed(&self.metrics),
        };
        Ok(Snapshot { bytes: serde_json::to_vec(&state)?, warnings })
    }

    /// An engine in the state a snapshot holds, its rules and Lua view built again from the
    /// sources in it (with `config`'s limits and the embedding program's Rust policies).
    pub fn restore(
        config: EngineConfig,
        bytes: &[u8],
        clock: Arc<dyn Clock>,
        rust_policies: Vec<Box<dyn Policy>>,
    ) -> Result<Engine, SnapshotError> {
        #[derive(Deserialize)]
        struct Format {
            format: u32,
        }
        let Format { format } = serde_json::from_slice(bytes)?;
        if format > SNAPSHOT_FORMAT {
            return Err(SnapshotError::Format { found: format, supported: SNAPSHOT_FORMAT });
        }
        let s: State<'static> = serde_json::from_slice(bytes)?;
        let rust_policies: BTreeMap<String, Box<dyn Policy>> =
            rust_policies.into_iter().map(|p| (p.spec().name, p)).collect();
        let host = reload::host(rust_policies.values(), &config);
        let (rules, scripts) = script::load_sources(&s.sources, &config.limits, &host, s.generation)?;
        let mut agents = s.agents.into_owned();
        agents.reindex();
        let names = agents.names().clone();
        let conversations = s.conversations.into_iter().map(|c| c.into_conversation(&names)).map(|c| (c.id.clone(), c));
        let numbering = config.partition.numbering();
        let mut engine = Engine {
            clock,
            now: s.now,
            config,
            sources: s.sources.into_owned(),
            reload_error: None,
            // `install` below puts the snapshot's rules in, as a reload would.
            rules: RuleSet::default(),
            scripts,
            rust_policies,
            agents,
            queues: s.queues.to_vec(),
            roster: Roster::default(),
            conversations: conversations.collect(),
            ended: s.ended.into_owned(),
            offers: s.offers.into_iter().map(|o| (o.id, o.into_owned())).collect(),
            next_offer: s.next_offer,
            timers: s.timers.into_owned(),
            updates: Vec::new(),
            reevaluate: s.reevaluate.into_owned(),
            epoch: s.epoch,
            standby: standby::Standby::resume(s.next_notification, numbering),
            workflows: workflows::Workflows::from_parts(
                s.instances.into_iter().map(|InstanceRepr(i)| (i.id, i)).collect(),
                s.finished.into_owned(),
                s.next_instance,
                s.next_task,
                s.stage_numbers.into_owned(),
                numbering,
            ),
            metrics: s.metrics.into_owned(),
        };
        let memos: HashMap<Arc<str>, Value> = s.conversation_memos.into_iter().collect();
        engine.install(rules, s.queue_memos, &memos).map_err(|diagnostics| LoadError { diagnostics })?;
        // `install` starts queues' epochs and failures over, as a reload should; a restore
        // goes on where the snapshot was.
        for (q, saved) in engine.queues.iter_mut().zip(s.queues.iter()) {
            q.epoch = saved.epoch;
            q.failing = saved.failing;
        }
        engine.scripts.put_kv(s.kv);
        engine.scripts.set_rng(s.rng);
        Ok(engine)
    }
}

/// The `&'static str` a reason was written from: host reasons are a small fixed set, so each
/// distinct one is kept once for the life of the process.
fn intern(s: &str) -> &'static str {
    static SEEN: Mutex<BTreeSet<&'static str>> = Mutex::new(BTreeSet::new());
    let mut seen = SEEN.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(&known) = seen.get(s) {
        return known;
    }
    let kept: &'static str = Box::leak(s.into());
    seen.insert(kept);
    kept
}

/// A conversation whole (the API shows it through its own view, with ids for keys).
#[derive(Serialize, Deserialize)]
struct ConversationRepr {
    id: Arc<str>,
    queue: u32,
    data: NewConversation,
    status: ConversationStatus,
    arrived_at: Timestamp,
    queued_at: Timestamp,
    ended_at: Option<Timestamp>,
    end_reason: Option<String>,
    agent: Option<Arc<str>>,
    offer: Option<u64>,
    attempts: Vec<AttemptRepr>,
    round: u32,
    round_start: usize,
    round_started_at: Timestamp,
    exhausted: bool,
    passed: Vec<(AgentIx, u64)>,
    traces: (Vec<TracedRepr>, Vec<TracedRepr>, u64),
    max_wait_timer: Option<TimerKey>,
    retry_timer: Option<TimerKey>,
    seen_epoch: u64,
    waiting_for: Vec<AgentIx>,
    notified: Vec<Sent>,
    workflows: Vec<u64>,
    aged: i64,
}

impl From<&Conversation> for ConversationRepr {
    fn from(c: &Conversation) -> Self {
        let (first, last, dropped) = c.traces.parts();
        ConversationRepr {
            id: c.id.clone(),
            queue: c.queue,
            data: c.data.clone(),
            status: c.status,
            arrived_at: c.arrived_at,
            queued_at: c.queued_at,
            ended_at: c.ended_at,
            end_reason: c.end_reason.clone(),
            agent: c.agent.clone(),
            offer: c.offer,
            attempts: c.attempts.iter().map(AttemptRepr::from).collect(),
            round: c.round,
            round_start: c.round_start,
            round_started_at: c.round_started_at,
            exhausted: c.exhausted,
            passed: c.passed.clone(),
            traces: (
                first.iter().map(TracedRepr::from).collect(),
                last.iter().map(TracedRepr::from).collect(),
                dropped,
            ),
            max_wait_timer: c.max_wait_timer,
            retry_timer: c.retry_timer,
            seen_epoch: c.seen_epoch,
            waiting_for: c.waiting_for.clone(),
            notified: c.notified.clone(),
            workflows: c.workflows.clone(),
            aged: c.aged,
        }
    }
}

impl ConversationRepr {
    fn into_conversation(self, names: &AgentNames) -> Conversation {
        let traced = |list: Vec<TracedRepr>| list.into_iter().map(|t| t.into_traced(names));
        let (first, last, dropped) = self.traces;
        Conversation {
            id: self.id,
            queue: self.queue,
            data: self.data,
            status: self.status,
            arrived_at: self.arrived_at,
            queued_at: self.queued_at,
            ended_at: self.ended_at,
            end_reason: self.end_reason,
            agent: self.agent,
            offer: self.offer,
            attempts: self.attempts.into_iter().map(Attempt::from).collect(),
            round: self.round,
            round_start: self.round_start,
            round_started_at: self.round_started_at,
            exhausted: self.exhausted,
            passed: self.passed,
            traces: TraceLog::from_parts(traced(first).collect(), traced(last).collect(), dropped),
            max_wait_timer: self.max_wait_timer,
            retry_timer: self.retry_timer,
            seen_epoch: self.seen_epoch,
            waiting_for: self.waiting_for,
            notified: self.notified,
            workflows: self.workflows,
            aged: self.aged,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct AttemptRepr {
    agent: Arc<str>,
    queue: Arc<str>,
    offered_at: Timestamp,
    ended_at: Option<Timestamp>,
    outcome: AttemptOutcome,
    reason: Option<String>,
}

impl From<&Attempt> for AttemptRepr {
    fn from(a: &Attempt) -> Self {
        AttemptRepr {
            agent: a.agent.clone(),
            queue: a.queue.clone(),
            offered_at: a.offered_at,
            ended_at: a.ended_at,
            outcome: a.outcome,
            reason: a.reason.map(str::to_string),
        }
    }
}

impl From<AttemptRepr> for Attempt {
    fn from(a: AttemptRepr) -> Self {
        Attempt {
            agent: a.agent,
            queue: a.queue,
            offered_at: a.offered_at,
            ended_at: a.ended_at,
            outcome: a.outcome,
            reason: a.reason.as_deref().map(intern),
        }
    }
}

#[derive(Serialize, Deserialize)]
struct TracedRepr {
    at: Timestamp,
    cause: Option<String>,
    queue: Arc<str>,
    policy: String,
    generation: u64,
    considered: usize,
    /// The named skipped agents by index: they keep their indexes for the life of the engine.
    skipped: Vec<(AgentIx, String)>,
    /// Every skipped agent counted by reason; a snapshot written before traces were bounded
    /// has none, and named every skipped agent, so they are counted from the names.
    #[serde(default)]
    skipped_by_reason: Option<Vec<(String, u32)>>,
    decision: DecidedRepr,
    error: Option<String>,
    repeated: u64,
    last_at: Option<Timestamp>,
}

impl From<&Traced> for TracedRepr {
    fn from(t: &Traced) -> Self {
        let trace = &t.trace;
        TracedRepr {
            at: trace.at,
            cause: trace.cause.clone(),
            queue: trace.queue.clone(),
            policy: trace.policy.clone(),
            generation: trace.generation,
            considered: trace.considered,
            skipped: trace.skipped.list().iter().map(|(ix, r)| (*ix, r.as_str().to_string())).collect(),
            skipped_by_reason: Some(trace.skipped.counts().iter().map(|(r, n)| (r.as_str().to_string(), *n)).collect()),
            decision: (&trace.decision).into(),
            error: trace.error.clone(),
            repeated: t.repeated,
            last_at: t.last_at,
        }
    }
}

impl TracedRepr {
    fn into_traced(self, names: &AgentNames) -> Traced {
        let named: Vec<(AgentIx, Reason)> =
            self.skipped.into_iter().map(|(ix, r)| (ix, Reason::Text(r.into()))).collect();
        let skipped = match self.skipped_by_reason {
            Some(counts) => Skipped::from_parts(
                names.clone(),
                named,
                counts.into_iter().map(|(r, n)| (Reason::Text(r.into()), n)).collect(),
            ),
            None => Skipped::new(names.clone(), named, usize::MAX),
        };
        let trace = Trace {
            at: self.at,
            cause: self.cause,
            queue: self.queue,
            policy: self.policy,
            generation: self.generation,
            considered: self.considered,
            skipped,
            decision: self.decision.into(),
            error: self.error,
        };
        Traced { trace: Arc::new(trace), repeated: self.repeated, last_at: self.last_at }
    }
}

#[derive(Serialize, Deserialize)]
enum DecidedRepr {
    Offer { agents: Vec<Arc<str>>, timeout: Duration, extend_after: Option<Duration> },
    Wait { retry_after: Option<Duration>, for_agents: Vec<Arc<str>> },
    Overflow { queue: String },
    GiveUp { reason: String },
    Exhausted { reason: String },
}

impl From<&Decided> for DecidedRepr {
    fn from(d: &Decided) -> Self {
        match d.clone() {
            Decided::Offer { agents, timeout, extend_after } => DecidedRepr::Offer { agents, timeout, extend_after },
            Decided::Wait { retry_after, for_agents } => DecidedRepr::Wait { retry_after, for_agents },
            Decided::Overflow { queue } => DecidedRepr::Overflow { queue },
            Decided::GiveUp { reason } => DecidedRepr::GiveUp { reason },
            Decided::Exhausted { reason } => DecidedRepr::Exhausted { reason },
        }
    }
}

impl From<DecidedRepr> for Decided {
    fn from(d: DecidedRepr) -> Self {
        match d {
            DecidedRepr::Offer { agents, timeout, extend_after } => Decided::Offer { agents, timeout, extend_after },
            DecidedRepr::Wait { retry_after, for_agents } => Decided::Wait { retry_after, for_agents },
            DecidedRepr::Overflow { queue } => Decided::Overflow { queue },
            DecidedRepr::GiveUp { reason } => Decided::GiveUp { reason },
            DecidedRepr::Exhausted { reason } => Decided::Exhausted { reason },
        }
    }
}

/// A workflow instance whole (the API's view leaves out its waits and notifications): serde's
/// remote derive, field for field.
#[derive(Serialize, Deserialize)]
#[serde(remote = "Instance")]
struct InstanceDef {
    id: u64,
    workflow: String,
    unit: String,
    conversation: Arc<str>,
    status: InstanceStatus,
    started: Timestamp,
    event: String,
    stage: u32,
    entered: Timestamp,
    note: Option<String>,
    tasks: Vec<Task>,
    waits: Vec<(TimerKey, String)>,
    notifications: Vec<u64>,
    history: Vec<HistoryStep>,
}

#[derive(Serialize, Deserialize)]
struct InstanceRepr(#[serde(with = "InstanceDef")] Instance);

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::scenario::{run_restoring, Scenario};

    /// A snapshot's state with its unordered parts in order, to compare two engines by.
    fn state(e: &Engine) -> Value {
        let mut v: Value = serde_json::from_slice(&e.snapshot().unwrap().bytes).unwrap();
        for (list, key) in [("conversations", "id"), ("offers", "id"), ("conversation_memos", "0")] {
            if let Some(items) = v[list].as_array_mut() {
                items.sort_by_key(|item| match key {
                    "0" => item[0].to_string(),
                    key => item[key].to_string(),
                });
            }
        }
        // Measured on the wall clock: no two runs agree.
        v["metrics"]["latency"] = Value::Null;
        v
    }

    /// Where two values first differ, as a path.
    fn first_difference(a: &Value, b: &Value, path: &str) -> Option<String> {
        match (a, b) {
            (Value::Object(x), Value::Object(y)) => x.keys().chain(y.keys()).find_map(|k| {
                first_difference(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    &format!("{path}.{k}"),
                )
            }),
            (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().find_map(|(i, (p, q))| first_difference(p, q, &format!("{path}[{i}]")))
            }
            _ if a == b => None,
            _ => Some(format!("{path}: {a} against {b}")),
        }
    }

    #[test]
    fn every_scenario_runs_the_same_when_restored_from_a_snapshot_after_each_event() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR"));
        let mut ran = 0;
        for dir in ["examples", "tests/scenarios"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(dir))
                .unwrap()
                .map(|e| e.unwrap().path())
                .filter(|p| p.extension().is_some_and(|x| x == "toml"))
                .collect();
            files.sort();
            for path in files {
                let (scenario, scripts) = Scenario::from_file(&path).unwrap();
                let shown = path.display().to_string();
                let (plain, plain_engine) =
                    run_restoring(&scenario, &scripts, &shown, Default::default(), false).unwrap();
                let (restored, restored_engine) = run_restoring(&scenario, &scripts, &shown, Default::default(), true)
                    .unwrap_or_else(|e| panic!("{shown}: {e}"));
                assert_eq!(restored.text(), plain.text(), "{shown}: the timeline changed");
                let difference = first_difference(&state(&restored_engine), &state(&plain_engine), "");
                assert_eq!(difference, None, "{shown}: the restored state differs");
                ran += 1;
            }
        }
        assert!(ran >= 15, "only {ran} scenarios found");
    }

    const RANDOM_RULES: &str = r#"
local on, task, finish = workflows.on, workflows.task, workflows.finish
local candidates = require("rota.candidates")
presence.pause_cause { id = "tired" }
presence.pause_cause { id = "lunch" }
teams.define { id = "t", wrap_up = "5s", no_answer_delay = "3s", max_no_answer = 3,
               on_max_no_answer = { pause = "tired" }, capacity = { chat = 2 } }
for i = 1, 5 do agents.define { id = "a" .. i, team = "t", skills = { en = i } } end
policies.register("lucky", {
    decide = function(ctx)
        local pool = candidates.eligible(ctx)
        if #pool == 0 then return policies.wait() end
        local a = pool[math.random(#pool)]
        kv.incr("picked:" .. a.id)
        ctx.queue.memo.n = (ctx.queue.memo.n or 0) + 1
        ctx.conversation.memo.asked = (ctx.conversation.memo.asked or 0) + 1
        return policies.offer(a, 20)
    end,
    on_closed = function(e) kv.incr("closed") end,
})
workflows.define { id = "cb", stages = {
    on("start", task { title = "Call back", buttons = { "done" } }),
    on("button:done", finish()),
} }
queues.define { id = "q1", agents = { "a1", "a2", "a3" }, policy = "lucky", max_wait = "2m", on_max_wait = "q2",
                aging = function(c) return c.waited // 10 end }
queues.define { id = "q2", agents = { "a3", "a4", "a5" }, policy = "round_robin", options = { timeout = "15s" },
                workflows = { abandoned = "cb" } }
queues.define { id = "q3", agents = { "a1", "a5" }, policy = "ring_all", levels = { a5 = 2 } }
"#;

    /// splitmix64: the same day every run.
    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = self.0;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            (z ^ (z >> 31)) % n
        }
    }

    /// The next input of a random day, from what the engine said so far (offers to answer,
    /// conversations to close, tasks to push).
    fn next_input(rng: &mut Rng, n: &mut u32, offered: &[(String, String)], open: &[String], tasks: &[u64]) -> Input {
        let agent = |rng: &mut Rng| format!("a{}", 1 + rng.below(5));
        match rng.below(20) {
            0..=4 => {
                *n += 1;
                let channel = if rng.below(2) == 0 { "chat" } else { "voice" };
                let queue = format!("q{}", 1 + rng.below(3));
                let new = NewConversation {
                    id: format!("c{n}"),
                    queue,
                    channel: channel.into(),
                    priority: rng.below(3) as i64,
                    ..Default::default()
                };
                Input::Arrive(Box::new(new))
            }
            5..=8 if !offered.is_empty() => {
                let (c, a) = offered[rng.below(offered.len() as u64) as usize].clone();
                Input::Accept { conversation: c, agent: Some(a) }
            }
            9 if !offered.is_empty() => {
                let (c, a) = offered[rng.below(offered.len() as u64) as usize].clone();
                Input::Decline { conversation: c, agent: Some(a) }
            }
            10 | 11 if !open.is_empty() => {
                Input::Close { conversation: open[rng.below(open.len() as u64) as usize].clone() }
            }
            12 if *n > 0 => Input::Abandon { conversation: format!("c{}", 1 + rng.below(*n as u64)) },
            13 => Input::Pause { agent: agent(rng), cause: "lunch".into() },
            14 => Input::Resume { agent: agent(rng) },
            15 => Input::SetPresence {
                agent: agent(rng),
                presence: ["available", "away", "busy"][rng.below(3) as usize].into(),
            },
            16 if !tasks.is_empty() => Input::PushButton {
                task: tasks[rng.below(tasks.len() as u64) as usize],
                button: "done".into(),
                by: None,
            },
            17 if *n > 0 => Input::UpdateConversation {
                conversation: format!("c{}", 1 + rng.below(*n as u64)),
                attributes: BTreeMap::new(),
                requires: None,
                priority: Some(rng.below(5) as i64),
            },
            _ => Input::SetStatus { agent: agent(rng), status: "callcenter".into() },
        }
    }

    #[test]
    fn a_random_day_runs_the_same_when_restored_from_snapshots_along_the_way() {
        let dir = std::env::temp_dir().join(format!("rota-snapshot-random-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("rules.lua"), RANDOM_RULES).unwrap();
        let start = Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
        // A clock each: advancing one engine fires its timers at their own times.
        let (clock, other_clock) =
            (crate::clock::VirtualClock::starting_at(start), crate::clock::VirtualClock::starting_at(start));
        let config = EngineConfig::new(&dir);
        let mut plain = Engine::new(config.clone(), Arc::new(clock.clone()), Vec::new()).unwrap();
        let mut restored = Engine::new(config.clone(), Arc::new(other_clock.clone()), Vec::new()).unwrap();
        for i in 1..=5 {
            for e in [&mut plain, &mut restored] {
                e.handle(Input::SignIn { agent: format!("a{i}") }).unwrap();
                e.handle(Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() }).unwrap();
            }
        }
        let (mut rng, mut n) = (Rng(7), 0);
        let (mut offered, mut open, mut tasks) = (Vec::new(), Vec::new(), Vec::new());
        let mut restores = 0;
        for step in 0..1200 {
            let input = next_input(&mut rng, &mut n, &offered, &open, &tasks);
            let t = clock.now() + Duration(1 + rng.below(8000) as i64);
            let a = (plain.advance_to(t), plain.handle(input.clone()).map_err(|e| e.to_string()));
            let b = (restored.advance_to(t), restored.handle(input).map_err(|e| e.to_string()));
            let lines = |(fired, handled): &(Vec<Stamped>, Result<Vec<Stamped>, String>)| {
                let mut out: Vec<String> = fired.iter().map(|u| u.update.describe()).collect();
                match handled {
                    Ok(updates) => out.extend(updates.iter().map(|u| u.update.describe())),
                    Err(e) => out.push(format!("refused: {e}")),
                }
                out
            };
            assert_eq!(lines(&b), lines(&a), "step {step} after {restores} restores");
            for u in a.0.iter().chain(a.1.iter().flatten()) {
                match &u.update {
                    Update::Offered { conversation, agents, .. } => {
                        offered.extend(agents.iter().map(|ag| (conversation.to_string(), ag.to_string())))
                    }
                    Update::Accepted { conversation, .. } => open.push(conversation.to_string()),
                    Update::Closed { conversation } => open.retain(|c| **c != **conversation),
                    Update::TaskOpened { task, .. } => tasks.push(*task),
                    _ => {}
                }
            }
            if offered.len() > 20 {
                offered.drain(..10);
            }
            // Restoring builds a Luau VM: every 16th step or so keeps the test quick.
            if rng.below(16) == 0 {
                let snapshot = restored.snapshot().unwrap();
                restored = Engine::restore(config.clone(), &snapshot.bytes, Arc::new(other_clock.clone()), Vec::new())
                    .unwrap_or_else(|e| panic!("step {step}: {e}"));
                restores += 1;
            }
        }
        assert_eq!(first_difference(&state(&restored), &state(&plain), ""), None, "after {restores} restores");
        let decided = plain.metrics().decisions;
        assert!(decided > 300 && restores > 50, "a day that did little: {decided} decisions, {restores} restores");
        let _ = std::fs::remove_dir_all(dir);
    }
}
