//! The engine: the single owner of domain state, handling one input at a time.
//!
//! Everything that changes agents, queues, conversations, offers and timers
//! happens in [`Engine::handle`] and [`Engine::fire_due`]. Given the same
//! inputs and clock readings it produces the same updates.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::Arc;

use rustc_hash::FxHashMap;

use crate::agent::{Agent, AgentIx, AgentNames, AgentStatus, State};
use crate::clock::Clock;
use crate::conversation::{Attempt, AttemptOutcome, Conversation, ConversationStatus, NewConversation};
use crate::decision::{Decided, Decision, Reason, Skipped, Trace};
use crate::directory::AgentRecord;
use crate::error::{Diagnostic, InputError, LoadError};
use crate::input::{parse_periods, Input};
use crate::instance::StageNumbers;
use crate::offer::Offer;
use crate::policy::{DecisionContext, Policy};
use crate::presence::BaseStatus;
use crate::roster::Roster;
use crate::rules::{Aging, Escalation, MissAction, RuleSet, TeamDef};
use crate::script::{self, Limits, Scripts, Sources};
use crate::time::Timestamp;
use crate::timer::{TimerInfo, TimerKind, Timers};
use crate::unit;
use crate::update::{LabelledUpdate, Stamped, Update};

mod agents;
mod conversations;
mod decisions;
mod reload;
mod snapshot;
mod standby;
mod workflows;

pub(crate) use reload::host;
pub use reload::ScriptStatus;
pub use snapshot::{Snapshot, SnapshotError, SNAPSHOT_FORMAT};

/// How far one conversation may overflow from queue to queue within one decision.
const MAX_OVERFLOW_HOPS: u32 = 8;

/// Settings of an engine that are not part of the scripts.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct EngineConfig {
    pub scripts: PathBuf,
    pub limits: Limits,
    /// Ended conversations kept in memory for reading back (oldest dropped first).
    pub retain_ended: usize,
    /// ... and for at most this long after they ended (none: as long as the count allows).
    /// Finished workflow instances are kept by the same count and age.
    pub retain_ended_for: Option<crate::time::Duration>,
    /// Keep every decision's latency (for benchmarks); off by default. A histogram is always kept.
    pub record_latencies: bool,
    /// Skipped candidates a decision's trace names ([`EngineConfig::TRACE_SKIPS`] by
    /// default; `usize::MAX`: all, as `rota test` does). The others are only counted by
    /// reason, unless their queue has `full_traces`.
    pub trace_skips: usize,
    /// Lua functions the embedding program adds for scripts.
    pub functions: script::HostFunctions,
    /// The units this engine holds (all of them unless it runs one of several partitions).
    pub partition: crate::partition::Partition,
}

impl EngineConfig {
    /// Ended conversations kept for reading back unless configured otherwise.
    pub const RETAIN_ENDED: usize = 10_000;
    /// Skipped candidates a trace names unless configured otherwise.
    pub const TRACE_SKIPS: usize = 10;

    pub fn new(scripts: impl Into<PathBuf>) -> Self {
        EngineConfig {
            scripts: scripts.into(),
            limits: Limits::default(),
            retain_ended: Self::RETAIN_ENDED,
            retain_ended_for: None,
            record_latencies: false,
            trace_skips: Self::TRACE_SKIPS,
            functions: script::HostFunctions::default(),
            partition: Default::default(),
        }
    }
}

/// Counters for monitoring (a snapshot keeps them, but not the benchmark's latency list).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Metrics {
    pub inputs: u64,
    pub timers_fired: u64,
    pub decisions: u64,
    pub policy_errors: u64,
    /// Notifications that could not be made (no address, a template failing at run time).
    pub undeliverable: u64,
    /// Nanoseconds per decision, when [`EngineConfig::record_latencies`] is on.
    #[serde(skip)]
    pub latencies: Vec<u32>,
    /// Decision latency, always kept, as a histogram.
    pub latency: Histogram,
    /// Snapshots taken, snapshots that could not be taken or written, and the longest the
    /// engine loop paused to take one (nanoseconds).
    #[serde(default)]
    pub snapshots: u64,
    #[serde(default)]
    pub snapshot_failures: u64,
    #[serde(default)]
    pub snapshot_pause_max_ns: u64,
}

impl Metrics {
    /// Adds `other`'s counts to these (another partition's): counters add up, the longest
    /// snapshot pause is the longer one; the benchmark's latency list is not kept.
    pub fn add(&mut self, other: &Metrics) {
        self.inputs += other.inputs;
        self.timers_fired += other.timers_fired;
        self.decisions += other.decisions;
        self.policy_errors += other.policy_errors;
        self.undeliverable += other.undeliverable;
        for (mine, theirs) in self.latency.counts.iter_mut().zip(other.latency.counts) {
            *mine += theirs;
        }
        self.latency.sum_ns += other.latency.sum_ns;
        self.snapshots += other.snapshots;
        self.snapshot_failures += other.snapshot_failures;
        self.snapshot_pause_max_ns = self.snapshot_pause_max_ns.max(other.snapshot_pause_max_ns);
    }
}

/// Counts of observations at or below each bound (the last bucket is everything above).
#[derive(Clone, Debug, Default, serde::Serialize, serde::Deserialize)]
pub struct Histogram {
    pub counts: [u64; Histogram::BOUNDS_NS.len() + 1],
    pub sum_ns: u64,
}

impl Histogram {
    /// Upper bounds of the buckets: 1 µs to 10 ms.
    pub const BOUNDS_NS: [u32; 10] =
        [1_000, 2_000, 5_000, 10_000, 20_000, 50_000, 100_000, 500_000, 1_000_000, 10_000_000];

    pub fn observe(&mut self, ns: u32) {
        let bucket = Histogram::BOUNDS_NS.iter().position(|&b| ns <= b).unwrap_or(Histogram::BOUNDS_NS.len());
        self.counts[bucket] += 1;
        self.sum_ns += ns as u64;
    }
}

/// Counts of what the engine holds (see [`Engine::footprint`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Footprint {
    /// Conversations in memory: waiting, being handled, and the ended ones kept for reading.
    pub conversations: usize,
    /// Decision traces they keep, in all.
    pub traces: usize,
    pub timers: usize,
    /// Workflow instances: live ones and the latest finished ones.
    pub instances: usize,
    /// Bytes the Lua VM holds.
    pub lua_bytes: usize,
}

#[derive(Clone, serde::Serialize, serde::Deserialize)]
struct QueueRuntime {
    id: Arc<str>,
    /// Its organization unit, shared by the labels of every event about it.
    unit: Arc<str>,
    members: Vec<AgentIx>,
    /// Conversations waiting in this queue (queued or offered), in arrival order.
    waiting: VecDeque<Arc<str>>,
    /// Bumped whenever a member may have become able to take work.
    epoch: u64,
    /// Decisions of this queue that failed in a row (policy and fallback); backs retries off.
    failing: u32,
}

pub struct Engine {
    clock: Arc<dyn Clock>,
    /// The clock's reading for the step in progress: read once per input, timer batch or
    /// reload, so replaying a journal with the same readings reproduces every decision.
    now: Timestamp,
    config: EngineConfig,
    /// The text of the scripts the current generation was loaded from.
    sources: Sources,
    /// Why the last reload failed, until one succeeds.
    reload_error: Option<Vec<Diagnostic>>,
    rules: RuleSet,
    scripts: Scripts,
    rust_policies: BTreeMap<String, Box<dyn Policy>>,
    agents: agents::Agents,
    queues: Vec<QueueRuntime>,
    /// Who in each queue can take work now, in the orders policies walk (see [`Roster`]).
    roster: Roster,
    conversations: FxHashMap<Arc<str>, Conversation>,
    ended: VecDeque<Arc<str>>,
    offers: FxHashMap<u64, Offer>,
    next_offer: u64,
    timers: Timers,
    updates: Vec<Stamped>,
    reevaluate: BTreeSet<u32>,
    /// Bumped each time an agent may have become able to take work; see `reevaluate_waiting`.
    epoch: u64,
    standby: standby::Standby,
    workflows: workflows::Workflows,
    metrics: Metrics,
}

impl Engine {
    /// Loads the scripts folder and starts with every agent signed out and nothing queued.
    pub fn new(
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        rust_policies: Vec<Box<dyn Policy>>,
    ) -> Result<Self, LoadError> {
        let sources = Sources::read(&config.scripts)?;
        Engine::from_sources(config, sources, clock, rust_policies)
    }

    /// Like [`Engine::new`], with scripts already read (for example from a journal).
    pub fn from_sources(
        config: EngineConfig,
        sources: Sources,
        clock: Arc<dyn Clock>,
        rust_policies: Vec<Box<dyn Policy>>,
    ) -> Result<Self, LoadError> {
        let rust_policies: BTreeMap<String, Box<dyn Policy>> =
            rust_policies.into_iter().map(|p| (p.spec().name, p)).collect();
        let host = reload::host(rust_policies.values(), &config);
        let (rules, scripts) = script::load_sources(&sources, &config.limits, &host, 1)?;
        let now = clock.now();
        let numbering = config.partition.numbering();
        let mut engine = Engine {
            clock,
            now,
            config,
            sources,
            reload_error: None,
            rules: RuleSet::default(),
            scripts,
            rust_policies,
            agents: agents::Agents::default(),
            queues: Vec::new(),
            roster: Roster::default(),
            conversations: FxHashMap::default(),
            ended: VecDeque::new(),
            offers: FxHashMap::default(),
            next_offer: 1,
            timers: Timers::default(),
            updates: Vec::new(),
            reevaluate: BTreeSet::new(),
            epoch: 0,
            standby: standby::Standby::new(numbering),
            workflows: workflows::Workflows::new(numbering),
            metrics: Metrics::default(),
        };
        engine.install(rules, BTreeMap::new(), &HashMap::new()).map_err(|d| LoadError { diagnostics: d })?;
        Ok(engine)
    }

    /// The clock's reading now, for showing how long something has lasted (not for decisions).
    pub fn clock_now(&self) -> Timestamp {
        self.clock.now()
    }

    /// The time of the step in progress (or of the last one).
    pub fn now(&self) -> Timestamp {
        self.now
    }

    /// Reads the clock for a new step.
    fn read_clock(&mut self) -> Timestamp {
        self.now = self.clock.now();
        self.timers.set_floor(self.now + crate::time::Duration(1));
        self.now
    }

    /// Swaps the clock, e.g. from the virtual one a journal is replayed on to the system clock.
    pub fn set_clock(&mut self, clock: Arc<dyn Clock>) {
        self.clock = clock;
        self.read_clock();
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    pub fn sources(&self) -> &Sources {
        &self.sources
    }

    pub fn generation(&self) -> u64 {
        self.scripts.generation()
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    pub fn metrics_mut(&mut self) -> &mut Metrics {
        &mut self.metrics
    }

    /// Bytes held by the Lua VM (the view tables and the scripts).
    pub fn lua_memory(&self) -> usize {
        self.scripts.memory_used()
    }

    /// What the engine holds in memory, counted: for watching that a steady load levels off.
    pub fn footprint(&self) -> Footprint {
        Footprint {
            conversations: self.conversations.len(),
            traces: self.conversations.values().map(|c| c.traces.len()).sum(),
            timers: self.timers.len(),
            instances: self.workflows.len(),
            lua_bytes: self.scripts.memory_used(),
        }
    }

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    /// An agent by its key, or by its id when exactly one unit has it.
    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agents.index(id).ok().map(|ix| &self.agents[ix as usize])
    }

    /// Every conversation the engine holds: waiting, with agents, and ended ones it keeps.
    pub fn conversations(&self) -> impl Iterator<Item = &Conversation> {
        self.conversations.values()
    }

    /// A conversation by its key, or by its id when exactly one unit has it.
    pub fn conversation(&self, id: &str) -> Option<&Conversation> {
        match self.conversations.get(id) {
            Some(c) => Some(c),
            None => self.conversations.get(&self.resolve_conversation(id, |_| true).ok()?),
        }
    }

    /// The organization unit of a queue.
    pub fn queue_unit(&self, queue: &str) -> Option<&str> {
        self.rules.queue_index(queue).map(|q| self.rules.queues[q].unit.as_str())
    }

    /// The conversation `given` names, as the engine keys it, among the units `allowed` lets
    /// through: `given` is a key, or the id of a conversation in exactly one such unit.
    pub fn resolve_conversation(&self, given: &str, allowed: impl Fn(&str) -> bool) -> Result<Arc<str>, InputError> {
        let unit_of = |key: &str| {
            let c = self.conversations.get(key)?;
            Some(self.rules.queues[c.queue as usize].unit.as_str())
        };
        match unit::resolve(given, self.rules.other_units.iter().map(String::as_str), allowed, unit_of) {
            unit::Resolved::Found(key) => Ok(key),
            unit::Resolved::Unknown => Err(InputError::UnknownConversation(unit::external(given).to_string())),
            unit::Resolved::Ambiguous(units) => Err(InputError::AmbiguousConversation {
                id: given.to_string(),
                units: units.into_iter().map(str::to_string).collect(),
            }),
        }
    }

    /// The agent `given` names, as the engine keys it, among the units `allowed` lets through:
    /// `given` is a key, or the id of an agent in exactly one such unit.
    /// The units this engine holds.
    pub fn partition(&self) -> &crate::partition::Partition {
        &self.config.partition
    }

    pub fn resolve_agent(&self, given: &str, allowed: impl Fn(&str) -> bool) -> Result<Arc<str>, InputError> {
        self.agents.resolve(given, allowed)
    }

    /// The queue a conversation is in now, and that queue's organization unit.
    pub fn conversation_scope(&self, id: &str) -> Option<(&str, &str)> {
        Some(self.scope_of(self.conversation(id)?))
    }

    /// [`Engine::conversation_scope`] of a conversation already at hand.
    pub fn scope_of(&self, c: &Conversation) -> (&str, &str) {
        let def = &self.rules.queues[c.queue as usize];
        (def.id.as_str(), def.unit.as_str())
    }

    /// Agents of a queue who could be offered one of its conversations now, in queue order.
    pub fn able(&self, queue: &str) -> Option<Vec<Arc<str>>> {
        let q = self.rules.queue_index(queue)?;
        Some(self.roster.open(q as u32).map(|ix| self.agents.names().get(ix).clone()).collect())
    }

    /// Labels an update with what it concerns, for the event stream.
    pub fn event(&self, stamped: Stamped) -> LabelledUpdate {
        let (conversation, agents) = stamped.update.subject();
        let agents: Vec<Arc<str>> = agents.into_iter().cloned().collect();
        let queue = conversation.and_then(|c| self.conversation(c)).map(|c| &self.queues[c.queue as usize]);
        let (unit, queue) = match queue {
            Some(q) => (Some(q.unit.clone()), Some(q.id.clone())),
            None => (agents.first().and_then(|a| self.agent(a)).map(|a| Arc::from(a.def.unit.as_str())), None),
        };
        LabelledUpdate { seq: 0, stamped, unit, queue, agents }
    }

    /// Ids of the conversations waiting in a queue, in arrival order.
    pub fn waiting(&self, queue: &str) -> Option<Vec<Arc<str>>> {
        self.queues.iter().find(|q| &*q.id == queue).map(|q| q.waiting.iter().cloned().collect())
    }

    pub fn next_due(&self) -> Option<Timestamp> {
        self.timers.next_due()
    }

    pub fn pending_timers(&self) -> usize {
        self.timers.len()
    }

    /// Every pending timer, in due order.
    pub fn timers(&self) -> Vec<TimerInfo> {
        self.timers
            .iter()
            .map(|(key, kind)| {
                let conversation = |c: Option<&Arc<str>>| {
                    let unit = c.and_then(|c| self.conversation_scope(c)).map_or("", |(_, u)| u).to_string();
                    (c.map_or("", |c| unit::external(c)).to_string(), unit)
                };
                let (subject, unit) = match kind {
                    TimerKind::OfferTimeout { offer } => conversation(self.offers.get(offer).map(|o| &o.conversation)),
                    TimerKind::WrapUpEnd { agent }
                    | TimerKind::SlotWrapUpEnd { agent, .. }
                    | TimerKind::MissedEnd { agent }
                    | TimerKind::Vacation { agent } => {
                        let a = &self.agents[*agent as usize];
                        (a.def.id.clone(), a.def.unit.clone())
                    }
                    TimerKind::MaxWait { conversation: c } | TimerKind::Retry { conversation: c } => {
                        conversation(Some(c))
                    }
                    TimerKind::WorkflowWait { instance, .. } => {
                        conversation(self.workflows.get(*instance).map(|i| &i.conversation))
                    }
                };
                TimerInfo { id: key.seq(), due: key.due, kind: kind.name(), subject, unit }
            })
            .collect()
    }

    // ---------------------------------------------------------------- inputs

    /// Handles one input. On error nothing changed; on success, the updates it caused.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Stamped>, InputError> {
        self.metrics.inputs += 1;
        self.read_clock();
        self.dispatch(input)?;
        self.settle();
        Ok(std::mem::take(&mut self.updates))
    }

    /// Fires every timer due at the clock's current reading, in due order.
    pub fn fire_due(&mut self) -> Vec<Stamped> {
        let now = self.read_clock();
        while let Some((_, kind)) = self.timers.pop_due(now) {
            self.metrics.timers_fired += 1;
            self.fire(kind);
            self.settle();
        }
        std::mem::take(&mut self.updates)
    }

    /// Moves a virtual clock to `t`, firing the timers due on the way at their own times.
    pub fn advance_to(&mut self, t: Timestamp) -> Vec<Stamped> {
        let mut out = Vec::new();
        while let Some(list) = self.fire_next(t) {
            out.extend(list);
        }
        self.clock.advance_to(t);
        self.read_clock();
        out
    }

    /// If a timer falls due by `until`, moves a virtual clock to its due time and fires
    /// everything due then; `None` when nothing is due by `until`.
    pub fn fire_next(&mut self, until: Timestamp) -> Option<Vec<Stamped>> {
        let due = self.timers.next_due().filter(|&d| d <= until)?;
        self.clock.advance_to(due);
        Some(self.fire_due())
    }

    /// The one dispatcher: every input variant is handled here.
    fn dispatch(&mut self, input: Input) -> Result<(), InputError> {
        // An input names a conversation by its key, or by its id when one unit has it.
        let key = |e: &Self, given: &str| e.resolve_conversation(given, |_| true);
        match input {
            Input::Arrive(new) => self.arrive(*new),
            Input::Accept { conversation, agent } => {
                let conversation = key(self, &conversation)?;
                let agent = agent.map_or_else(|| self.offered_to_one(&conversation), Ok)?;
                self.accept(&conversation, &agent)
            }
            Input::Decline { conversation, agent } => {
                let conversation = key(self, &conversation)?;
                let agent = agent.map_or_else(|| self.offered_to_one(&conversation), Ok)?;
                self.decline(&conversation, &agent)
            }
            Input::Close { conversation } => self.close(&key(self, &conversation)?),
            Input::Abandon { conversation } => self.abandon(&key(self, &conversation)?),
            Input::SignIn { agent } => {
                let ix = self.agents.index(&agent)?;
                let presence = self.rules.presences.default_id().to_string();
                self.with_agent(ix, |a| a.online = true);
                self.set_presence(ix, &presence);
                Ok(())
            }
            Input::SignOut { agent } => {
                let ix = self.agents.index(&agent)?;
                self.withdraw_offer_from(ix, "signed_out");
                self.with_agent(ix, |a| a.online = false);
                self.set_presence(ix, "offline");
                Ok(())
            }
            Input::SetPresence { agent, presence } => {
                let ix = self.agents.index(&agent)?;
                self.rules.presences.selectable(&presence).map_err(InputError::UnknownPresence)?;
                self.set_presence(ix, &presence);
                Ok(())
            }
            Input::SetStatus { agent, status } => {
                let ix = self.agents.index(&agent)?;
                let status: AgentStatus =
                    status.parse().map_err(|message| InputError::Invalid { field: "status", message })?;
                self.set_status(ix, status);
                Ok(())
            }
            Input::Pause { agent, cause } => self.pause(&agent, &cause),
            Input::Resume { agent } => {
                let ix = self.agents.index(&agent)?;
                if self.agents[ix as usize].state != State::Paused {
                    let agent = &self.agents[ix as usize].def.id;
                    return Err(InputError::Illegal(format!("agent `{agent}` is not paused")));
                }
                self.set_state(ix, State::Waiting);
                Ok(())
            }
            Input::StartWorkDay { agent } => {
                let ix = self.agents.index(&agent)?;
                self.set_availability(ix, |a| a.work_day = true);
                Ok(())
            }
            Input::EndWorkDay { agent } => {
                let ix = self.agents.index(&agent)?;
                self.set_availability(ix, |a| a.work_day = false);
                Ok(())
            }
            Input::SetDismissed { agent, dismissed } => {
                let ix = self.agents.index(&agent)?;
                self.set_availability(ix, |a| a.dismissed = dismissed);
                Ok(())
            }
            Input::SetVacations { agent, periods } => {
                let ix = self.agents.index(&agent)?;
                let periods =
                    parse_periods(&periods).map_err(|e| InputError::Invalid { field: "periods", message: e.0 })?;
                self.agents[ix as usize].vacations = periods;
                self.refresh_vacation(ix);
                Ok(())
            }
            Input::CreateAgent { agent, record } => self.create_agent(agent, *record),
            Input::UpdateAgent { agent, record } => self.update_agent(&agent, *record),
            Input::Raise { conversation, event } => self.raise(&key(self, &conversation)?, &event),
            Input::UpdateConversation { conversation, attributes, requires, priority } => {
                self.update_conversation(&key(self, &conversation)?, attributes, requires, priority)
            }
            Input::DeliveryFailed { notification, conversation, recipient, channel, error } => {
                self.delivery_failed(&key(self, &conversation)?, recipient, channel, error.clone())?;
                self.workflow_notification_failed(notification, &error);
                Ok(())
            }
            Input::StartWorkflow { conversation, workflow } => {
                let conversation = key(self, &conversation)?;
                self.start_workflow(&conversation, &workflow, "set on the workflow by an input".into()).map(|_| ())
            }
            Input::PushButton { task, button, by } => self.push_button(task, &button, by),
            Input::ResolveWorkflow { instance, event } => self.resolve(instance, event),
        }
    }

    fn fire(&mut self, kind: TimerKind) {
        match kind {
            TimerKind::OfferTimeout { offer } => self.offer_timed_out(offer),
            TimerKind::WrapUpEnd { agent } => self.wrap_up_ended(agent),
            TimerKind::SlotWrapUpEnd { agent, conversation } => self.slot_wrap_up_ended(agent, &conversation),
            TimerKind::MissedEnd { agent } => {
                let a = &mut self.agents[agent as usize];
                a.state_timer = None;
                if a.state == State::Missed {
                    self.set_state(agent, State::Waiting);
                }
            }
            TimerKind::MaxWait { conversation } => self.max_wait_exceeded(&conversation),
            TimerKind::Retry { conversation } => {
                if let Some(c) = self.conversations.get_mut(&conversation) {
                    c.retry_timer = None;
                    if c.status.is_waiting() {
                        self.decide(&conversation, 0);
                    }
                }
            }
            TimerKind::Vacation { agent } => {
                self.agents[agent as usize].vacation_timer = None;
                self.refresh_vacation(agent);
            }
            TimerKind::WorkflowWait { instance, timer } => self.wait_over(instance, &timer),
        }
    }

    /// After an input: push agent changes to the Lua view, then let waiting conversations
    /// try the agents who became free, until nothing more changes.
    fn settle(&mut self) {
        // Decisions only take agents, never free them, so this drains quickly; the cap only
        // guards against a future change breaking that.
        let cap = 4 * self.queues.len() + 64;
        for _ in 0..cap {
            self.flush_view();
            if self.reevaluate.is_empty() {
                break;
            }
            let queues = std::mem::take(&mut self.reevaluate);
            self.reevaluate_waiting(&queues);
        }
        self.run_standby();
        for (level, message) in self.scripts.take_logs() {
            self.emit(Update::Log { level, message });
        }
    }

    /// Asks again about the waiting conversations of `queues` that have not seen their queue's
    /// latest change, the best first across all of them: highest priority (with the queue's
    /// aging), then the caller who has waited longest, whichever queue they wait in. A queue
    /// none of whose members can take work is passed over.
    fn reevaluate_waiting(&mut self, queues: &BTreeSet<u32>) {
        let now = self.now();
        // (priority, highest first; the tier of the queue's best free member; arrival; queue;
        // place in it; the conversation)
        type Turn = (std::cmp::Reverse<i64>, u32, Timestamp, u32, usize, Arc<str>);
        let mut order: Vec<Turn> = Vec::new();
        let mut failed = Vec::new();
        for &q in queues {
            let Some(tier) = self.free_tier(q) else { continue };
            if matches!(self.rules.queues[q as usize].aging, Some(Aging::Computed(_))) {
                self.scripts.scope(&self.rules.queues[q as usize].unit, now);
            }
            for (i, id) in self.queues[q as usize].waiting.iter().enumerate() {
                if let Some(c) = self.conversations.get(id).filter(|c| self.stale(c, q)) {
                    let priority = self.aged(c, now).unwrap_or_else(|e| {
                        failed.push(format!(
                            "queue `{}`: aging of {}: {e}",
                            self.queues[q as usize].id,
                            unit::external(id)
                        ));
                        c.data.priority
                    });
                    order.push((std::cmp::Reverse(priority), tier, c.arrived_at, q, i, id.clone()));
                }
            }
        }
        for (std::cmp::Reverse(priority), _, _, q, _, id) in &order {
            if matches!(self.rules.queues[*q as usize].aging, Some(Aging::Computed(_))) {
                let c = self.conversations.get_mut(id).expect("listed above");
                c.aged = priority.saturating_sub(c.data.priority);
            }
        }
        // A failing aging function costs its conversations their aging, never their turn.
        for message in failed {
            self.metrics.policy_errors += 1;
            self.emit(Update::Log { level: "error", message: format!("{message}; its own priority counts") });
        }
        order.sort_unstable();
        // Decisions only take agents: a queue found with nobody free stays so for this pass.
        let mut spent: Vec<u32> = Vec::new();
        for (_, _, _, q, _, id) in order {
            // An earlier decision may have taken the last agent who could, or this conversation.
            if spent.contains(&q) || !self.conversations.get(&id).is_some_and(|c| self.stale(c, q)) {
                continue;
            }
            if self.free_tier(q).is_none() {
                spent.push(q);
                continue;
            }
            self.decide(&id, 0);
            self.flush_view();
        }
    }

    /// The best (lowest) level in queue `q` of a member who can take an offer now, or `None`
    /// when nobody can: an agent who frees up takes the queues where they are in the first
    /// tier before the others. Without `levels` every member is in the first tier.
    fn free_tier(&self, q: u32) -> Option<u32> {
        let def = &self.rules.queues[q as usize];
        let mut free = self.roster.open(q);
        if def.levels.is_empty() {
            return free.next().map(|_| 1);
        }
        free.map(|ix| def.level(&self.agents[ix as usize].def.id)).min()
    }

    /// Whether a conversation waiting in queue `q` has not seen a change that may let it on.
    fn stale(&self, c: &Conversation, q: u32) -> bool {
        c.status == ConversationStatus::Queued
            && c.queue == q
            && if c.waiting_for.is_empty() {
                c.seen_epoch < self.queues[q as usize].epoch
            } else {
                c.waiting_for.iter().any(|&ix| self.agents.epoch(ix) > c.seen_epoch)
            }
    }

    /// A waiting conversation's priority now: its own, plus what its queue's aging adds for
    /// the time it has waited there.
    /// An aging function's share is the one it returned when the order was last worked out:
    /// reading a priority runs no script.
    pub fn priority(&self, c: &Conversation, now: Timestamp) -> i64 {
        match &self.rules.queues[c.queue as usize].aging {
            Some(Aging::Computed(_)) => c.data.priority.saturating_add(c.aged),
            _ => self.aged(c, now).unwrap_or(c.data.priority),
        }
    }

    /// A waiting conversation's priority now, running its queue's aging function if it has
    /// one (with the conversation's data and `waited`, seconds in this queue; it returns what
    /// it adds), or why that failed.
    fn aged(&self, c: &Conversation, now: Timestamp) -> Result<i64, String> {
        let waited = (now - c.queued_at).0.max(0);
        let added = match &self.rules.queues[c.queue as usize].aging {
            None => 0,
            Some(Aging::Steps { every, step }) => (waited / every.0.max(1)).saturating_mul(*step),
            Some(Aging::Computed(function)) => {
                let mut data = self.conversation_data(&c.id);
                data["waited"] = (waited as f64 / 1000.0).into();
                match self.scripts.compute(function, &data)? {
                    // Saturates: a huge boost is the highest priority there is, not an error.
                    serde_json::Value::Number(n) => n.as_f64().map_or(0, |n| n as i64),
                    // Plain data has no room for inf and nan: they come out as null, like nil.
                    serde_json::Value::Null => {
                        return Err("the aging function must return a finite number, got nil, inf or nan".into())
                    }
                    other => return Err(format!("the aging function must return a finite number, got {other}")),
                }
            }
        };
        Ok(c.data.priority.saturating_add(added))
    }
}
