//! The engine: the single owner of domain state, handling one input at a time.
//!
//! Everything that changes agents, queues, conversations, offers and timers
//! happens in [`Engine::handle`] and [`Engine::fire_due`]. Given the same
//! inputs and clock readings it produces the same updates.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};

use rustc_hash::FxHashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::agent::{Agent, AgentIx, State, Status};
use crate::clock::Clock;
use crate::conversation::{Attempt, AttemptOutcome, Conversation, ConversationStatus, NewConversation};
use crate::decision::{Decided, Decision, Reason, Skip, Trace};
use crate::error::{Diagnostic, InputError, LoadError};
use crate::input::{parse_periods, Input};
use crate::offer::Offer;
use crate::policy::{DecisionContext, Policy};
use crate::presence::BaseStatus;
use crate::rules::{Escalation, MissAction, RuleSet, TeamDef};
use crate::script::{self, Limits, Scripts};
use crate::time::Timestamp;
use crate::timer::{TimerInfo, TimerKind, Timers};
use crate::update::{Stamped, Update};

/// How far one conversation may overflow from queue to queue within one decision.
const MAX_OVERFLOW_HOPS: u32 = 8;

/// Settings of an engine that are not part of the scripts.
#[derive(Clone, Debug)]
pub struct EngineConfig {
    pub scripts: PathBuf,
    pub limits: Limits,
    /// Ended conversations kept in memory for reading back (oldest dropped first).
    pub retain_ended: usize,
    /// Record every decision's latency (for benchmarks); off by default.
    pub record_latencies: bool,
}

impl EngineConfig {
    pub fn new(scripts: impl Into<PathBuf>) -> Self {
        EngineConfig {
            scripts: scripts.into(),
            limits: Limits::default(),
            retain_ended: 10_000,
            record_latencies: false,
        }
    }
}

/// Counters for monitoring.
#[derive(Clone, Debug, Default)]
pub struct Metrics {
    pub inputs: u64,
    pub timers_fired: u64,
    pub decisions: u64,
    pub policy_errors: u64,
    /// Nanoseconds per decision, when [`EngineConfig::record_latencies`] is on.
    pub latencies: Vec<u32>,
}

struct QueueRuntime {
    id: Arc<str>,
    members: Vec<AgentIx>,
    /// Conversations waiting in this queue (queued or offered), in arrival order.
    waiting: VecDeque<Arc<str>>,
    /// Bumped whenever a member may have become able to take work.
    epoch: u64,
}

pub struct Engine {
    clock: Arc<dyn Clock>,
    config: EngineConfig,
    rules: RuleSet,
    scripts: Scripts,
    rust_policies: BTreeMap<String, Box<dyn Policy>>,
    agents: Vec<Agent>,
    agent_ix: FxHashMap<Arc<str>, AgentIx>,
    queues: Vec<QueueRuntime>,
    conversations: FxHashMap<Arc<str>, Conversation>,
    ended: VecDeque<Arc<str>>,
    offers: FxHashMap<u64, Offer>,
    next_offer: u64,
    timers: Timers,
    updates: Vec<Stamped>,
    dirty: Vec<AgentIx>,
    is_dirty: Vec<bool>,
    reevaluate: BTreeSet<u32>,
    /// Bumped each time an agent may have become able to take work; see `reevaluate_queue`.
    epoch: u64,
    /// Per agent, the epoch at which it last became able to take work.
    agent_epoch: Vec<u64>,
    metrics: Metrics,
}

impl Engine {
    /// Loads the scripts folder and starts with every agent signed out and nothing queued.
    pub fn new(
        config: EngineConfig,
        clock: Arc<dyn Clock>,
        rust_policies: Vec<Box<dyn Policy>>,
    ) -> Result<Self, LoadError> {
        let rust_policies: BTreeMap<String, Box<dyn Policy>> =
            rust_policies.into_iter().map(|p| (p.spec().name, p)).collect();
        let specs: Vec<_> = rust_policies.values().map(|p| p.spec()).collect();
        let (rules, scripts) = script::load(&config.scripts, &config.limits, &specs, 1)?;
        let mut engine = Engine {
            clock,
            config,
            rules: RuleSet::default(),
            scripts,
            rust_policies,
            agents: Vec::new(),
            agent_ix: FxHashMap::default(),
            queues: Vec::new(),
            conversations: FxHashMap::default(),
            ended: VecDeque::new(),
            offers: FxHashMap::default(),
            next_offer: 1,
            timers: Timers::default(),
            updates: Vec::new(),
            dirty: Vec::new(),
            is_dirty: Vec::new(),
            reevaluate: BTreeSet::new(),
            epoch: 0,
            agent_epoch: Vec::new(),
            metrics: Metrics::default(),
        };
        engine.install(rules, BTreeMap::new()).map_err(|d| LoadError { diagnostics: d })?;
        Ok(engine)
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn clock_is_virtual(&self) -> bool {
        self.clock.is_virtual()
    }

    pub fn scripts_dir(&self) -> &Path {
        &self.config.scripts
    }

    pub fn rules(&self) -> &RuleSet {
        &self.rules
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

    pub fn agents(&self) -> &[Agent] {
        &self.agents
    }

    pub fn agent(&self, id: &str) -> Option<&Agent> {
        self.agent_ix.get(id).map(|&ix| &self.agents[ix as usize])
    }

    pub fn conversation(&self, id: &str) -> Option<&Conversation> {
        self.conversations.get(id)
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
            .map(|(key, kind)| TimerInfo {
                due: key.due.to_rfc3339(),
                kind: kind.name(),
                subject: match kind {
                    TimerKind::OfferTimeout { offer } => {
                        self.offers.get(offer).map(|o| o.conversation.to_string()).unwrap_or_default()
                    }
                    TimerKind::WrapUpEnd { agent } | TimerKind::MissedEnd { agent } | TimerKind::Vacation { agent } => {
                        self.agents[*agent as usize].id.to_string()
                    }
                    TimerKind::MaxWait { conversation } | TimerKind::Retry { conversation } => conversation.to_string(),
                },
            })
            .collect()
    }

    // ---------------------------------------------------------------- inputs

    /// Handles one input. On error nothing changed; on success, the updates it caused.
    pub fn handle(&mut self, input: Input) -> Result<Vec<Stamped>, InputError> {
        self.metrics.inputs += 1;
        self.dispatch(input)?;
        self.settle();
        Ok(std::mem::take(&mut self.updates))
    }

    /// Fires every timer due at the clock's current reading, in due order.
    pub fn fire_due(&mut self) -> Vec<Stamped> {
        let now = self.now();
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
        while let Some(due) = self.timers.next_due().filter(|&d| d <= t) {
            self.clock.advance_to(due);
            out.extend(self.fire_due());
        }
        self.clock.advance_to(t);
        out
    }

    /// The one dispatcher: every input variant is handled here.
    fn dispatch(&mut self, input: Input) -> Result<(), InputError> {
        match input {
            Input::Arrive(new) => self.arrive(*new),
            Input::Accept { conversation, agent } => self.accept(&conversation, &agent),
            Input::Decline { conversation, agent } => self.decline(&conversation, &agent),
            Input::Close { conversation } => self.close(&conversation),
            Input::Abandon { conversation } => self.abandon(&conversation),
            Input::SignIn { agent } => {
                let ix = self.agent_index(&agent)?;
                let presence = self.rules.presences.default_id().to_string();
                self.with_agent(ix, |a| a.online = true);
                self.set_presence(ix, &presence);
                Ok(())
            }
            Input::SignOut { agent } => {
                let ix = self.agent_index(&agent)?;
                self.withdraw_offer_from(ix);
                self.with_agent(ix, |a| a.online = false);
                self.set_presence(ix, "offline");
                Ok(())
            }
            Input::SetPresence { agent, presence } => {
                let ix = self.agent_index(&agent)?;
                self.rules.presences.selectable(&presence).map_err(InputError::UnknownPresence)?;
                self.set_presence(ix, &presence);
                Ok(())
            }
            Input::SetStatus { agent, status } => {
                let ix = self.agent_index(&agent)?;
                let status: Status = status.parse().map_err(InputError::Illegal)?;
                self.set_status(ix, status);
                Ok(())
            }
            Input::Pause { agent, cause } => self.pause(&agent, &cause),
            Input::Resume { agent } => {
                let ix = self.agent_index(&agent)?;
                if self.agents[ix as usize].state != State::Paused {
                    return Err(InputError::Illegal(format!("agent `{agent}` is not paused")));
                }
                self.set_state(ix, State::Waiting);
                Ok(())
            }
            Input::StartWorkDay { agent } => self.set_availability(&agent, |a| a.work_day = true),
            Input::EndWorkDay { agent } => self.set_availability(&agent, |a| a.work_day = false),
            Input::SetDismissed { agent, dismissed } => self.set_availability(&agent, |a| a.dismissed = dismissed),
            Input::SetVacations { agent, periods } => {
                let ix = self.agent_index(&agent)?;
                let periods = parse_periods(&periods).map_err(InputError::Illegal)?;
                self.agents[ix as usize].vacations = periods;
                self.refresh_vacation(ix);
                Ok(())
            }
        }
    }

    fn fire(&mut self, kind: TimerKind) {
        match kind {
            TimerKind::OfferTimeout { offer } => self.offer_timed_out(offer),
            TimerKind::WrapUpEnd { agent } => self.wrap_up_ended(agent),
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
            let Some(q) = self.reevaluate.pop_first() else {
                break;
            };
            self.reevaluate_queue(q);
        }
        for (level, message) in self.scripts.take_logs() {
            self.emit(Update::Log { level, message });
        }
    }

    /// Asks again about the queue's waiting conversations that have not seen its latest change,
    /// in arrival order, while some member can still take work.
    fn reevaluate_queue(&mut self, q: u32) {
        let mut i = 0;
        while let Some(id) = self.queues[q as usize].waiting.get(i).cloned() {
            i += 1;
            let epoch = self.queues[q as usize].epoch;
            let stale = self.conversations.get(&id).is_some_and(|c| {
                c.status == ConversationStatus::Queued
                    && c.queue == q
                    && if c.waiting_for.is_empty() {
                        c.seen_epoch < epoch
                    } else {
                        c.waiting_for.iter().any(|&ix| self.agent_epoch[ix as usize] > c.seen_epoch)
                    }
            });
            if !stale {
                continue;
            }
            if !self.queues[q as usize].members.iter().any(|&ix| self.can_take(ix, q)) {
                break;
            }
            self.decide(&id, 0);
            self.flush_view();
            // A decision that ended the conversation took it out of the list.
            if self.queues[q as usize].waiting.get(i - 1) != Some(&id) {
                i -= 1;
            }
        }
    }

    // --------------------------------------------------------- conversations

    fn arrive(&mut self, new: NewConversation) -> Result<(), InputError> {
        let q = self.rules.queue_index(&new.queue).ok_or_else(|| InputError::UnknownQueue(new.queue.clone()))? as u32;
        if new.id.is_empty() {
            return Err(InputError::Illegal("conversation id must not be empty".into()));
        }
        if self.conversations.contains_key(new.id.as_str()) {
            return Err(InputError::DuplicateConversation(new.id));
        }
        let now = self.now();
        let id: Arc<str> = Arc::from(new.id.as_str());
        let max_wait = self.rules.queues[q as usize].max_wait;
        let conversation = Conversation {
            id: id.clone(),
            queue: q,
            data: new,
            status: ConversationStatus::Queued,
            arrived_at: now,
            queued_at: now,
            ended_at: None,
            end_reason: None,
            agent: None,
            offer: None,
            attempts: Vec::new(),
            traces: Vec::new(),
            max_wait_timer: max_wait
                .map(|d| self.timers.schedule(now + d, TimerKind::MaxWait { conversation: id.clone() })),
            retry_timer: None,
            seen_epoch: 0,
            waiting_for: Vec::new(),
        };
        let queue_id = self.queues[q as usize].id.clone();
        if let Err(e) = self.scripts.add_conversation(&conversation, &queue_id, None) {
            self.timers.cancel(conversation.max_wait_timer);
            return Err(InputError::Illegal(format!("the scripts could not take the conversation: {e}")));
        }
        self.conversations.insert(id.clone(), conversation);
        self.queues[q as usize].waiting.push_back(id.clone());
        self.emit(Update::Queued { conversation: id.clone(), queue: queue_id });
        self.decide(&id, 0);
        Ok(())
    }

    /// Finds the pending offer of `conversation` that rings `agent`, or says why there is none.
    fn ringing(&self, conversation: &str, agent: &str) -> Result<(u64, AgentIx), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let ix = self.agent_index(agent)?;
        if let Some(offer) = c.offer.and_then(|o| self.offers.get(&o)) {
            if offer.agents.contains(&ix) {
                return Ok((offer.id, ix));
            }
        }
        let last = c.attempts.iter().rev().find(|a| &*a.agent == agent);
        Err(InputError::Illegal(match last {
            Some(a) => format!(
                "conversation `{conversation}` is not offered to `{agent}` any more: the offer was {}",
                a.outcome.as_str()
            ),
            None => format!("conversation `{conversation}` was never offered to `{agent}`"),
        }))
    }

    fn accept(&mut self, conversation: &str, agent: &str) -> Result<(), InputError> {
        let (offer_id, ix) = self.ringing(conversation, agent)?;
        let offer = self.offers.remove(&offer_id).expect("ringing offer exists");
        self.timers.cancel(Some(offer.timer));
        let id = offer.conversation.clone();
        self.emit(Update::Accepted { conversation: id.clone(), agent: self.agents[ix as usize].id.clone() });
        self.end_attempt(&id, ix, AttemptOutcome::Accepted);
        for &other in offer.agents.iter().filter(|&&o| o != ix) {
            self.take_back(&id, other);
        }
        let c = self.conversations.get_mut(&id).expect("offered conversation exists");
        c.status = ConversationStatus::Assigned;
        c.offer = None;
        c.agent = Some(self.agents[ix as usize].id.clone());
        self.timers.cancel(c.max_wait_timer.take());
        self.timers.cancel(c.retry_timer.take());
        let q = c.queue;
        self.queues[q as usize].waiting.retain(|w| *w != id);
        let a = &mut self.agents[ix as usize];
        a.offer = None;
        a.conversation = Some(id);
        a.counters.answered += 1;
        a.counters.missed_in_row = 0;
        self.set_state(ix, State::Busy);
        Ok(())
    }

    /// Withdraws a pending offer from one agent without fault: back to Waiting, no miss.
    fn take_back(&mut self, id: &Arc<str>, ix: AgentIx) {
        self.emit(Update::Revoked { conversation: id.clone(), agent: self.agents[ix as usize].id.clone() });
        self.end_attempt(id, ix, AttemptOutcome::Revoked);
        self.agents[ix as usize].offer = None;
        self.set_state(ix, State::Waiting);
    }

    fn decline(&mut self, conversation: &str, agent: &str) -> Result<(), InputError> {
        let (offer_id, ix) = self.ringing(conversation, agent)?;
        let id = self.conversations[conversation].id.clone();
        self.end_attempt(&id, ix, AttemptOutcome::Declined);
        let a = &mut self.agents[ix as usize];
        a.offer = None;
        a.counters.declined += 1;
        self.set_state(ix, State::Waiting);
        self.emit(Update::Declined { conversation: id.clone(), agent: self.agents[ix as usize].id.clone() });
        let offer = self.offers.get_mut(&offer_id).expect("ringing offer exists");
        offer.agents.retain(|&o| o != ix);
        if offer.agents.is_empty() {
            self.drop_offer(&id);
            self.decide(&id, 0);
        }
        Ok(())
    }

    fn close(&mut self, conversation: &str) -> Result<(), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        if c.status != ConversationStatus::Assigned {
            return Err(InputError::Illegal(format!(
                "conversation `{conversation}` is {}; only an assigned conversation can be closed",
                c.status.as_str()
            )));
        }
        let id = c.id.clone();
        self.finish_talk(&id);
        Ok(())
    }

    /// The agent is done talking: wrap-up for the team's time, or closed at once.
    fn finish_talk(&mut self, id: &Arc<str>) {
        let now = self.now();
        let agent_id = self.conversations[id].agent.clone().expect("assigned conversation has an agent");
        let ix = self.agent_ix[&agent_id];
        let a = &mut self.agents[ix as usize];
        a.counters.talk_time = a.counters.talk_time + (now - a.state_since);
        let wrap_up = self.team(ix).wrap_up;
        if wrap_up.is_zero() {
            self.agents[ix as usize].conversation = None;
            self.end_conversation(id, ConversationStatus::Closed, None);
            self.set_state(ix, State::Waiting);
        } else {
            let until = now + wrap_up;
            let timer = self.timers.schedule(until, TimerKind::WrapUpEnd { agent: ix });
            self.agents[ix as usize].state_timer = Some(timer);
            self.conversations.get_mut(id).unwrap().status = ConversationStatus::PostProcessing;
            self.emit(Update::WrapUp { conversation: id.clone(), agent: agent_id, until });
            self.set_state(ix, State::PostProcessing);
        }
    }

    fn wrap_up_ended(&mut self, ix: AgentIx) {
        let a = &mut self.agents[ix as usize];
        a.state_timer = None;
        if let Some(id) = a.conversation.take() {
            self.end_conversation(&id, ConversationStatus::Closed, None);
        }
        if self.agents[ix as usize].state == State::PostProcessing {
            self.set_state(ix, State::Waiting);
        }
    }

    fn abandon(&mut self, conversation: &str) -> Result<(), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let id = c.id.clone();
        match c.status {
            ConversationStatus::Queued | ConversationStatus::Offered => {
                self.revoke_offer(&id);
                self.emit(Update::Abandoned { conversation: id.clone() });
                self.end_conversation(&id, ConversationStatus::Abandoned, Some("the customer left".into()));
                Ok(())
            }
            ConversationStatus::Assigned => {
                self.emit(Update::Abandoned { conversation: id.clone() });
                self.finish_talk(&id);
                Ok(())
            }
            status => Err(InputError::Illegal(format!("conversation `{conversation}` is already {}", status.as_str()))),
        }
    }

    fn max_wait_exceeded(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        c.max_wait_timer = None;
        if !c.status.is_waiting() {
            return;
        }
        let q = c.queue as usize;
        self.revoke_offer(id);
        let queue = self.queues[q].id.clone();
        self.emit(Update::MaxWaitExceeded { conversation: id.clone(), queue });
        match self.rules.queues[q].on_max_wait.clone() {
            Some(to) => {
                self.overflow(id, &to);
                self.decide(id, 1);
            }
            None => self.end_conversation(id, ConversationStatus::MaxWaitExceeded, Some("max wait exceeded".into())),
        }
    }

    fn end_conversation(&mut self, id: &Arc<str>, status: ConversationStatus, reason: Option<String>) {
        let now = self.now();
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        c.status = status;
        c.ended_at = Some(now);
        c.end_reason = reason;
        self.timers.cancel(c.max_wait_timer.take());
        self.timers.cancel(c.retry_timer.take());
        let q = c.queue as usize;
        self.queues[q].waiting.retain(|w| w != id);
        self.scripts.drop_conversation(id);
        if status == ConversationStatus::Closed {
            self.emit(Update::Closed { conversation: id.clone() });
        }
        self.ended.push_back(id.clone());
        while self.ended.len() > self.config.retain_ended {
            if let Some(old) = self.ended.pop_front() {
                self.conversations.remove(&old);
            }
        }
    }

    fn overflow(&mut self, id: &Arc<str>, to: &str) {
        let Some(target) = self.rules.queue_index(to) else {
            return;
        };
        let now = self.now();
        let c = self.conversations.get_mut(id).expect("conversation exists");
        let from = c.queue as usize;
        c.queue = target as u32;
        c.queued_at = now;
        self.queues[from].waiting.retain(|w| w != id);
        self.queues[target].waiting.push_back(id.clone());
        let to_id = self.queues[target].id.clone();
        let _ = self.scripts.move_conversation(&self.conversations[id], &to_id);
        self.emit(Update::Overflowed { conversation: id.clone(), from: self.queues[from].id.clone(), to: to_id });
    }

    // ---------------------------------------------------------------- offers

    fn offer_timed_out(&mut self, offer_id: u64) {
        let Some(offer) = self.offers.remove(&offer_id) else {
            return;
        };
        let id = offer.conversation.clone();
        let names = offer.agents.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect();
        self.emit(Update::TimedOut { conversation: id.clone(), agents: names });
        for &ix in &offer.agents {
            self.end_attempt(&id, ix, AttemptOutcome::TimedOut);
            self.agents[ix as usize].offer = None;
            self.missed(ix);
        }
        if let Some(c) = self.conversations.get_mut(&id) {
            c.offer = None;
            c.status = ConversationStatus::Queued;
            self.timers.cancel(c.retry_timer.take());
        }
        self.decide(&id, 0);
    }

    /// A missed offer: the team decides whether that means state Missed or presence Inactive,
    /// and after `max_no_answer` misses in a row where the agent goes.
    fn missed(&mut self, ix: AgentIx) {
        let team = self.team(ix).clone();
        let a = &mut self.agents[ix as usize];
        a.counters.missed += 1;
        a.counters.missed_in_row += 1;
        if team.max_no_answer > 0 && a.counters.missed_in_row >= team.max_no_answer {
            a.counters.missed_in_row = 0;
            match team.on_max_no_answer {
                Some(Escalation::Presence(p)) => {
                    self.set_state(ix, State::Waiting);
                    self.set_presence(ix, &p);
                }
                Some(Escalation::Pause(cause)) => {
                    self.agents[ix as usize].pause_cause = Some(cause);
                    self.set_state(ix, State::Paused);
                }
                None => self.set_state(ix, State::Waiting),
            }
            return;
        }
        match team.on_miss {
            MissAction::Missed if !team.no_answer_delay.is_zero() => {
                let timer = self.timers.schedule(self.now() + team.no_answer_delay, TimerKind::MissedEnd { agent: ix });
                self.agents[ix as usize].state_timer = Some(timer);
                self.set_state(ix, State::Missed);
            }
            MissAction::Missed => self.set_state(ix, State::Waiting),
            MissAction::Inactive => {
                self.set_state(ix, State::Waiting);
                self.set_presence(ix, "inactive");
            }
        }
    }

    /// Takes back a pending offer without fault (the customer left, max wait, sign-out).
    fn revoke_offer(&mut self, id: &Arc<str>) {
        let Some(offer_id) = self.conversations.get(id).and_then(|c| c.offer) else {
            return;
        };
        let agents = self.offers.get(&offer_id).map(|o| o.agents.clone()).unwrap_or_default();
        for ix in agents {
            self.take_back(id, ix);
        }
        self.drop_offer(id);
    }

    /// Takes one agent out of the offer ringing them; the conversation is decided again if
    /// nobody is left ringing.
    fn withdraw_offer_from(&mut self, ix: AgentIx) {
        let Some(offer_id) = self.agents[ix as usize].offer else {
            return;
        };
        let Some(offer) = self.offers.get_mut(&offer_id) else {
            return;
        };
        offer.agents.retain(|&o| o != ix);
        let (id, empty) = (offer.conversation.clone(), offer.agents.is_empty());
        self.take_back(&id, ix);
        if empty {
            self.drop_offer(&id);
            self.decide(&id, 0);
        }
    }

    fn drop_offer(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        if let Some(offer) = c.offer.take().and_then(|o| self.offers.remove(&o)) {
            self.timers.cancel(Some(offer.timer));
        }
        self.timers.cancel(c.retry_timer.take());
        if c.status == ConversationStatus::Offered {
            c.status = ConversationStatus::Queued;
        }
    }

    fn end_attempt(&mut self, id: &Arc<str>, ix: AgentIx, outcome: AttemptOutcome) {
        let now = self.now();
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        let agent = &self.agents[ix as usize].id;
        if let Some(attempt) =
            c.attempts.iter_mut().rev().find(|a| a.agent == *agent && a.outcome == AttemptOutcome::Pending)
        {
            attempt.outcome = outcome;
            attempt.ended_at = Some(now);
            let _ = self.scripts.record_attempt(id, attempt);
        }
    }

    // ------------------------------------------------------------- decisions

    /// Asks the queue's policy about a waiting conversation and carries out the decision.
    /// While an offer is ringing, only an offer to more agents (ring progressively) is applied.
    fn decide(&mut self, id: &Arc<str>, hops: u32) {
        self.flush_view();
        let Some(c) = self.conversations.get(id) else {
            return;
        };
        if !c.status.is_waiting() {
            return;
        }
        let q = c.queue;
        let epoch = self.queues[q as usize].epoch;
        self.conversations.get_mut(id).unwrap().seen_epoch = epoch;
        let c = &self.conversations[id];
        let ringing: Vec<AgentIx> =
            c.offer.and_then(|o| self.offers.get(&o)).map(|o| o.agents.clone()).unwrap_or_default();
        let qdef = &self.rules.queues[q as usize];
        let (policy, fallback) = (qdef.policy.clone(), qdef.fallback.clone());
        let mut skipped = Vec::new();
        let started = self.config.record_latencies.then(std::time::Instant::now);
        let mut decided = self.ask(&policy, false, id, q, &ringing, &mut skipped);
        let mut by = policy;
        let mut error = None;
        if let Err(e) = decided.as_ref().map_err(String::clone).and_then(|d| self.check(d, q, &ringing)) {
            self.metrics.policy_errors += 1;
            error = Some(e);
            skipped.clear();
            decided = match fallback {
                Some(f) if f != by => {
                    let d = self
                        .ask(&f, true, id, q, &ringing, &mut skipped)
                        .and_then(|d| self.check(&d, q, &ringing).map(|()| d));
                    by = format!("{f} (fallback)");
                    d
                }
                _ => Err(String::new()),
            };
            if let Err(e) = &decided {
                if !e.is_empty() {
                    error = Some(format!("{}; {by}: {e}", error.unwrap_or_default()));
                }
                skipped.clear();
                by = "host fallback".into();
            }
        }
        if let Some(t) = started {
            self.metrics.latencies.push(t.elapsed().as_nanos().min(u32::MAX as u128) as u32);
        }
        self.metrics.decisions += 1;
        // What the policy logged belongs before the decision it led to.
        for (level, message) in self.scripts.take_logs() {
            self.emit(Update::Log { level, message });
        }
        let decision = decided.unwrap_or(Decision::Wait {
            retry_after: Some(self.rules.queues[q as usize].retry_after_error),
            for_agents: Vec::new(),
        });
        let trace = Trace {
            at: self.now(),
            queue: self.queues[q as usize].id.clone(),
            policy: by,
            generation: self.scripts.generation(),
            considered: self.queues[q as usize].members.len(),
            skipped: self.skips(q, &decision, skipped),
            decision: self.record(&decision),
            error,
        };
        let trace = Arc::new(trace);
        self.conversations.get_mut(id).unwrap().traces.push(trace.clone());
        self.emit(Update::Decided { conversation: id.clone(), trace });
        self.apply(id, q, decision, &ringing, hops);
    }

    fn ask(
        &mut self,
        policy: &str,
        as_fallback: bool,
        id: &Arc<str>,
        q: u32,
        ringing: &[AgentIx],
        skipped: &mut Vec<(AgentIx, Reason)>,
    ) -> Result<Decision, String> {
        let now = self.now();
        if let Some(p) = self.rust_policies.get_mut(policy) {
            let qdef = &self.rules.queues[q as usize];
            let ctx = DecisionContext {
                conversation: &self.conversations[id],
                queue_id: &qdef.id,
                queue_index: q,
                allowed: qdef.allowed,
                candidates: &self.queues[q as usize].members,
                agents: &self.agents,
                options: if as_fallback { &qdef.fallback_options } else { &qdef.options },
                now,
                track_work_day: self.rules.settings.track_work_day,
                ringing,
            };
            return p.decide(&ctx, skipped);
        }
        self.scripts.decide(policy, id, q, now, ringing, as_fallback, skipped).map_err(|f| f.message)
    }

    /// The host's own checks on a decision, so a buggy policy cannot offer to a busy agent.
    fn check(&self, decision: &Decision, q: u32, ringing: &[AgentIx]) -> Result<(), String> {
        match decision {
            Decision::Offer { agents, timeout, .. } => {
                if agents.is_empty() {
                    return Err("policy offered to nobody; return policies.wait() instead".into());
                }
                if timeout.0 <= 0 {
                    return Err("offer timeout must be longer than zero".into());
                }
                let allowed = self.rules.queues[q as usize].allowed;
                for (i, &ix) in agents.iter().enumerate() {
                    let a = &self.agents[ix as usize];
                    if agents[..i].contains(&ix) {
                        return Err(format!("policy offered to {} twice", a.id));
                    }
                    if !self.queues[q as usize].members.contains(&ix) {
                        return Err(format!(
                            "policy offered to {}, who is not in queue {}",
                            a.id, self.queues[q as usize].id
                        ));
                    }
                    if ringing.contains(&ix) {
                        continue;
                    }
                    if let Some(why) = a.blocked() {
                        return Err(format!("policy offered to {}, who cannot take it ({why})", a.id));
                    }
                    if !allowed.contains(a.base) {
                        return Err(format!(
                            "policy offered to {}, whose presence {} the queue does not allow",
                            a.id, a.base
                        ));
                    }
                }
                Ok(())
            }
            Decision::Overflow { queue } if self.rules.queue_index(queue).is_none() => {
                Err(format!("policy overflowed to unknown queue `{queue}`"))
            }
            Decision::Overflow { queue } if **queue == *self.queues[q as usize].id => {
                Err(format!("policy overflowed to its own queue `{queue}`"))
            }
            _ => Ok(()),
        }
    }

    /// The trace's skip list, in queue order: the policy's own reason for a candidate where it
    /// gave one, else the host's reason when the candidate could not take an offer at all.
    /// Candidates the policy considered and simply did not pick are not listed.
    fn skips(&self, q: u32, decision: &Decision, mut by_policy: Vec<(AgentIx, Reason)>) -> Vec<Skip> {
        let offered: &[AgentIx] = match decision {
            Decision::Offer { agents, .. } => agents,
            _ => &[],
        };
        let members = &self.queues[q as usize].members;
        let mut out = Vec::with_capacity(members.len() + by_policy.len());
        for &ix in members {
            if offered.contains(&ix) {
                continue;
            }
            let reason = match by_policy.iter().position(|(a, _)| *a == ix) {
                Some(i) => by_policy.swap_remove(i).1,
                None => match self.agents[ix as usize].blocked() {
                    Some(why) => Reason::Fixed(why),
                    None if !self.can_take(ix, q) => Reason::Fixed("presence_not_allowed"),
                    None => continue,
                },
            };
            out.push(Skip { agent: self.agents[ix as usize].id.clone(), reason });
        }
        // Reasons a policy gave for agents outside the queue's list (a policy's own business).
        out.extend(
            by_policy.into_iter().map(|(ix, reason)| Skip { agent: self.agents[ix as usize].id.clone(), reason }),
        );
        out
    }

    /// The decision as the trace keeps it, with agent ids instead of indexes.
    fn record(&self, decision: &Decision) -> Decided {
        match decision {
            Decision::Offer { agents, timeout, extend_after } => Decided::Offer {
                agents: agents.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect(),
                timeout: *timeout,
                extend_after: *extend_after,
            },
            Decision::Wait { retry_after, for_agents } => Decided::Wait {
                retry_after: *retry_after,
                for_agents: for_agents.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect(),
            },
            Decision::Overflow { queue } => Decided::Overflow { queue: queue.clone() },
            Decision::GiveUp { reason } => Decided::GiveUp { reason: reason.clone() },
        }
    }

    fn apply(&mut self, id: &Arc<str>, q: u32, decision: Decision, ringing: &[AgentIx], hops: u32) {
        let now = self.now();
        match decision {
            Decision::Offer { agents, timeout, extend_after } => {
                let new: Vec<AgentIx> = agents.into_iter().filter(|ix| !ringing.contains(ix)).collect();
                let offer_id = match self.conversations[id].offer {
                    Some(existing) => existing,
                    None => {
                        let offer_id = self.next_offer;
                        self.next_offer += 1;
                        let timer = self.timers.schedule(now + timeout, TimerKind::OfferTimeout { offer: offer_id });
                        let offer = Offer {
                            id: offer_id,
                            conversation: id.clone(),
                            agents: Vec::new(),
                            expires: now + timeout,
                            timer,
                        };
                        self.offers.insert(offer_id, offer);
                        let c = self.conversations.get_mut(id).unwrap();
                        c.offer = Some(offer_id);
                        c.status = ConversationStatus::Offered;
                        offer_id
                    }
                };
                let expires = self.offers[&offer_id].expires;
                let queue = self.queues[q as usize].id.clone();
                if !new.is_empty() {
                    let names = new.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect();
                    self.emit(Update::Offered { conversation: id.clone(), agents: names, timeout: expires - now });
                }
                for &ix in &new {
                    let agent = self.agents[ix as usize].id.clone();
                    let c = self.conversations.get_mut(id).unwrap();
                    c.attempts.push(Attempt {
                        agent,
                        queue: queue.clone(),
                        offered_at: now,
                        ended_at: None,
                        outcome: AttemptOutcome::Pending,
                    });
                    let a = &mut self.agents[ix as usize];
                    a.offer = Some(offer_id);
                    a.counters.offered += 1;
                    self.set_state(ix, State::Offered);
                }
                self.offers.get_mut(&offer_id).unwrap().agents.extend(&new);
                if let Some(step) = extend_after.filter(|&s| now + s < expires) {
                    let c = self.conversations.get_mut(id).unwrap();
                    self.timers.cancel(c.retry_timer.take());
                    c.retry_timer =
                        Some(self.timers.schedule(now + step, TimerKind::Retry { conversation: id.clone() }));
                }
            }
            // While an offer rings, anything but "offer more" leaves it ringing.
            _ if !ringing.is_empty() => {}
            Decision::Wait { retry_after, for_agents } => {
                let c = self.conversations.get_mut(id).unwrap();
                c.waiting_for = for_agents;
                self.timers.cancel(c.retry_timer.take());
                if let Some(d) = retry_after {
                    c.retry_timer = Some(self.timers.schedule(now + d, TimerKind::Retry { conversation: id.clone() }));
                }
            }
            Decision::Overflow { queue } => {
                if hops >= MAX_OVERFLOW_HOPS {
                    self.give_up(id, format!("overflowed {MAX_OVERFLOW_HOPS} times in a row"));
                } else {
                    self.overflow(id, &queue);
                    self.decide(id, hops + 1);
                }
            }
            Decision::GiveUp { reason } => self.give_up(id, reason),
        }
    }

    fn give_up(&mut self, id: &Arc<str>, reason: String) {
        self.emit(Update::GaveUp { conversation: id.clone(), reason: reason.clone() });
        self.end_conversation(id, ConversationStatus::GaveUp, Some(reason));
    }

    // ---------------------------------------------------------------- agents

    fn agent_index(&self, id: &str) -> Result<AgentIx, InputError> {
        self.agent_ix.get(id).copied().ok_or_else(|| InputError::UnknownAgent(id.into()))
    }

    fn team(&self, ix: AgentIx) -> &TeamDef {
        static NONE: std::sync::OnceLock<TeamDef> = std::sync::OnceLock::new();
        self.agents[ix as usize]
            .def
            .team
            .as_ref()
            .and_then(|t| self.rules.teams.get(t))
            .unwrap_or_else(|| NONE.get_or_init(TeamDef::none))
    }

    fn with_agent(&mut self, ix: AgentIx, change: impl FnOnce(&mut Agent)) {
        change(&mut self.agents[ix as usize]);
        self.mark(ix);
    }

    fn mark(&mut self, ix: AgentIx) {
        if !self.is_dirty[ix as usize] {
            self.is_dirty[ix as usize] = true;
            self.dirty.push(ix);
        }
    }

    /// Writes changed agents into the Lua view; agents who can now take work make their
    /// queues worth another look.
    fn flush_view(&mut self) {
        let track = self.rules.settings.track_work_day;
        for ix in std::mem::take(&mut self.dirty) {
            self.is_dirty[ix as usize] = false;
            let a = &self.agents[ix as usize];
            if let Err(e) = self.scripts.sync_agent(a, track) {
                let message = format!("view of agent {} not updated: {e}", a.id);
                self.emit(Update::Log { level: "error", message });
            }
            let a = &self.agents[ix as usize];
            if a.blocked().is_none() {
                self.epoch += 1;
                self.agent_epoch[ix as usize] = self.epoch;
                for &q in &a.queues {
                    self.queues[q as usize].epoch = self.epoch;
                    self.reevaluate.insert(q);
                }
            }
        }
    }

    /// Whether agent `ix` can be offered a conversation of queue `q` right now.
    fn can_take(&self, ix: AgentIx, q: u32) -> bool {
        let a = &self.agents[ix as usize];
        a.blocked().is_none() && self.rules.queues[q as usize].allowed.contains(a.base)
    }

    fn set_state(&mut self, ix: AgentIx, state: State) {
        let now = self.now();
        let a = &mut self.agents[ix as usize];
        if a.state != state && matches!(a.state, State::PostProcessing | State::Missed) {
            // Leaving wrap-up or no-answer delay early: that state's timer no longer applies.
            self.timers.cancel(a.state_timer.take());
        }
        a.set_state(state, now);
        let update = Update::AgentState {
            agent: a.id.clone(),
            status: a.status.as_str(),
            state: a.state.as_str(),
            pause_cause: a.pause_cause.clone(),
        };
        self.mark(ix);
        self.emit(update);
    }

    fn set_status(&mut self, ix: AgentIx, status: Status) {
        let a = &self.agents[ix as usize];
        if a.status == status {
            return;
        }
        if status != Status::Callcenter {
            self.withdraw_offer_from(ix);
        }
        let a = &mut self.agents[ix as usize];
        a.status = status;
        let state = match (a.conversation.is_some(), a.state) {
            (true, s) => s,
            (false, State::Paused) => State::Paused,
            (false, _) => State::Waiting,
        };
        self.set_state(ix, state);
    }

    fn set_presence(&mut self, ix: AgentIx, presence: &str) {
        let Some(p) = self.rules.presences.get(presence) else {
            return;
        };
        let (id, base) = (p.id.clone(), p.base);
        let a = &mut self.agents[ix as usize];
        if a.presence == id {
            return;
        }
        a.presence = id.clone();
        a.base = base;
        let update = Update::AgentPresence { agent: a.id.clone(), presence: id, base: base.as_str() };
        self.mark(ix);
        self.emit(update);
        if base == BaseStatus::Offline && self.agents[ix as usize].offer.is_some() {
            self.withdraw_offer_from(ix);
        }
    }

    fn pause(&mut self, agent: &str, cause: &str) -> Result<(), InputError> {
        let ix = self.agent_index(agent)?;
        if !self.rules.pause_causes.contains_key(cause) {
            return Err(InputError::UnknownPauseCause(cause.into()));
        }
        let a = &self.agents[ix as usize];
        if a.status != Status::Callcenter {
            return Err(InputError::Illegal(format!(
                "agent `{agent}` is not in callcenter status (status {})",
                a.status.as_str()
            )));
        }
        if a.state == State::Busy {
            return Err(InputError::Illegal(format!(
                "agent `{agent}` is busy with conversation `{}`; pause after closing it",
                a.conversation.as_deref().unwrap_or("?")
            )));
        }
        if a.state == State::PostProcessing {
            self.wrap_up_ended(ix);
        }
        self.withdraw_offer_from(ix);
        self.agents[ix as usize].pause_cause = Some(cause.into());
        self.set_state(ix, State::Paused);
        Ok(())
    }

    fn set_availability(&mut self, agent: &str, change: impl FnOnce(&mut Agent)) -> Result<(), InputError> {
        let ix = self.agent_index(agent)?;
        let track = self.rules.settings.track_work_day;
        let before = self.agents[ix as usize].unavailable(track);
        self.with_agent(ix, change);
        let a = &self.agents[ix as usize];
        let after = a.unavailable(track);
        if before != after {
            let update = Update::AgentAvailability { agent: a.id.clone(), unavailable: after };
            self.emit(update);
        }
        Ok(())
    }

    /// Recomputes "on vacation now" and schedules the next edge of a vacation period.
    fn refresh_vacation(&mut self, ix: AgentIx) {
        let now = self.now();
        let (on, next) = self.agents[ix as usize].vacation_at(now);
        let old = self.agents[ix as usize].vacation_timer.take();
        self.timers.cancel(old);
        let timer = next.map(|t| self.timers.schedule(t, TimerKind::Vacation { agent: ix }));
        self.agents[ix as usize].vacation_timer = timer;
        let id = self.agents[ix as usize].id.clone();
        let _ = self.set_availability(&id, |a| a.on_vacation = on);
    }

    fn emit(&mut self, update: Update) {
        self.updates.push(Stamped { at: self.clock.now(), update });
    }

    // ---------------------------------------------------------------- reload

    /// Loads the scripts folder again and swaps the new rules in between two inputs.
    /// On any problem the old rules stay in force and the diagnostics are returned; on
    /// success, the new generation and the updates of re-evaluating waiting conversations.
    pub fn reload(&mut self) -> Result<(u64, Vec<Stamped>), LoadError> {
        let specs: Vec<_> = self.rust_policies.values().map(|p| p.spec()).collect();
        let generation = self.scripts.generation() + 1;
        let (rules, scripts) = script::load(&self.config.scripts, &self.config.limits, &specs, generation)?;
        let memos = self.scripts.queue_memos();
        let conversation_memos: HashMap<Arc<str>, serde_json::Value> = self
            .conversations
            .values()
            .filter(|c| !c.status.is_ended())
            .filter_map(|c| Some((c.id.clone(), self.scripts.conversation_memo(&c.id)?)))
            .collect();
        let old_scripts = std::mem::replace(&mut self.scripts, scripts);
        let old_rules = self.rules.clone();
        if let Err(diagnostics) = self.install_with(rules, memos, &conversation_memos) {
            self.scripts = old_scripts;
            self.rules = old_rules;
            return Err(LoadError { diagnostics });
        }
        // Like a task router's re-evaluation: waiting conversations meet the new policies now.
        for c in self.conversations.values_mut() {
            c.waiting_for.clear();
        }
        for q in 0..self.queues.len() {
            self.epoch += 1;
            self.queues[q].epoch = self.epoch;
            self.reevaluate.insert(q as u32);
        }
        self.settle();
        Ok((generation, std::mem::take(&mut self.updates)))
    }

    fn install(&mut self, rules: RuleSet, memos: BTreeMap<String, serde_json::Value>) -> Result<(), Vec<Diagnostic>> {
        self.install_with(rules, memos, &HashMap::new())
    }

    /// Makes `rules` current: agents keep their run-time state, queues keep their waiting
    /// conversations, and the new VM gets a complete view.
    fn install_with(
        &mut self,
        rules: RuleSet,
        memos: BTreeMap<String, serde_json::Value>,
        conversation_memos: &HashMap<Arc<str>, serde_json::Value>,
    ) -> Result<(), Vec<Diagnostic>> {
        // A queue that still holds conversations cannot disappear.
        let mut problems = Vec::new();
        for old in &self.queues {
            let live = self
                .conversations
                .values()
                .filter(|c| !c.status.is_ended() && self.queues[c.queue as usize].id == old.id)
                .count();
            if live > 0 && rules.queue_index(&old.id).is_none() {
                problems.push(Diagnostic::new(
                    "<reload>",
                    None,
                    format!(
                        "queue `{}` was removed but still holds {live} conversation(s); keep it until they end",
                        old.id
                    ),
                ));
            }
        }
        for q in &rules.queues {
            let known = |p: &str| self.scripts.has_policy(p) || self.rust_policies.contains_key(p);
            for p in std::iter::once(&q.policy).chain(q.fallback.iter()) {
                if !known(p) {
                    problems.push(Diagnostic::new(
                        q.at.file.clone(),
                        q.at.line,
                        format!("queue `{}`: policy `{p}` has no implementation", q.id),
                    ));
                }
            }
        }
        if !problems.is_empty() {
            return Err(problems);
        }
        let now = self.now();
        for def in &rules.agents {
            match self.agent_ix.get(def.id.as_str()) {
                Some(&ix) => self.agents[ix as usize].def = def.clone(),
                None => {
                    let ix = self.agents.len() as AgentIx;
                    let agent = Agent::new(ix, def.clone(), now);
                    self.agent_ix.insert(agent.id.clone(), ix);
                    self.agents.push(agent);
                    self.is_dirty.push(false);
                    self.agent_epoch.push(0);
                }
            }
        }
        for a in &mut self.agents {
            a.queues.clear();
        }
        let mut old_queues: HashMap<Arc<str>, (u32, QueueRuntime)> =
            self.queues.drain(..).enumerate().map(|(i, q)| (q.id.clone(), (i as u32, q))).collect();
        let mut remap = HashMap::new();
        for (i, q) in rules.queues.iter().enumerate() {
            let members: Vec<AgentIx> = q.agents.iter().map(|a| self.agent_ix[a.as_str()]).collect();
            for &m in &members {
                self.agents[m as usize].queues.push(i as u32);
            }
            let id: Arc<str> = Arc::from(q.id.as_str());
            let waiting = match old_queues.remove(&id) {
                Some((old_ix, old)) => {
                    remap.insert(old_ix, i as u32);
                    old.waiting
                }
                None => VecDeque::new(),
            };
            self.queues.push(QueueRuntime { id, members, waiting, epoch: 0 });
        }
        for c in self.conversations.values_mut() {
            // Ended conversations of removed queues point nowhere; keep them readable via queue 0.
            c.queue = remap.get(&c.queue).copied().unwrap_or(0);
        }
        self.rules = rules;
        let track = self.rules.settings.track_work_day;
        let view = (|| {
            for a in &self.agents {
                self.scripts.add_agent(a, track).map_err(|e| e.to_string())?;
            }
            let members: Vec<&[AgentIx]> = self.queues.iter().map(|q| &q.members[..]).collect();
            self.scripts.set_queues(&self.rules, &members, &memos).map_err(|e| e.to_string())?;
            for c in self.conversations.values().filter(|c| !c.status.is_ended()) {
                let queue = self.queues[c.queue as usize].id.clone();
                self.scripts.add_conversation(c, &queue, conversation_memos.get(&c.id)).map_err(|e| e.to_string())?;
            }
            Ok::<(), String>(())
        })();
        view.map_err(|e| vec![Diagnostic::new("<reload>", None, format!("could not build the Lua view: {e}"))])
    }
}
