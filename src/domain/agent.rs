//! Agents at run time: status, call-center state, presence, availability and counters.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::capacity::{Limit, Slot};
use crate::presence::{BaseSet, BaseStatus};
use crate::rules::AgentDef;
use crate::time::{Duration, Timestamp};
use crate::timer::TimerKey;

/// Index of an agent in the engine; stable for the life of the engine.
pub type AgentIx = u32;

/// Every agent's id by index, shared by the engine and every trace it writes. Agents are
/// only ever added, so an index names the same agent for good and a trace can keep agents
/// as indexes: tracing a decision then costs one reference count, not one per agent.
#[derive(Clone, Debug, Default)]
pub struct AgentNames(Arc<Vec<Arc<str>>>);

impl AgentNames {
    /// The id of agent `ix`; every index the engine hands out is in the list.
    pub fn get(&self, ix: AgentIx) -> &Arc<str> {
        &self.0[ix as usize]
    }

    /// Appends the id of a new agent (copying the list if traces still hold the old one).
    pub fn push(&mut self, id: Arc<str>) {
        Arc::make_mut(&mut self.0).push(id);
    }
}

/// The mode an agent picks on the status panel.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AgentStatus {
    /// Do not disturb: no calls at all.
    Dnd,
    /// Internal calls only, no queue work.
    Ready,
    /// Queue work: the engine tracks a state (`waiting`, `offered`, `busy`, ...).
    Callcenter,
}

impl AgentStatus {
    pub const ALL: [AgentStatus; 3] = [AgentStatus::Dnd, AgentStatus::Ready, AgentStatus::Callcenter];

    pub fn as_str(self) -> &'static str {
        match self {
            AgentStatus::Dnd => "dnd",
            AgentStatus::Ready => "ready",
            AgentStatus::Callcenter => "callcenter",
        }
    }

    /// The trace's reason for an agent whose status a queue does not route to.
    pub fn reason(self) -> &'static str {
        match self {
            AgentStatus::Dnd => "status_dnd",
            AgentStatus::Ready => "status_ready",
            AgentStatus::Callcenter => "status_callcenter",
        }
    }
}

/// The agent statuses a queue routes to (`statuses` in `queues.define`): call-center mode
/// only by default; a chat line may route to agents who are simply ready. Never DnD.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StatusSet(u8);

impl StatusSet {
    pub const CALLCENTER: StatusSet = StatusSet(1 << AgentStatus::Callcenter as u8);
    /// Every status a queue may route.
    pub const ROUTABLE: StatusSet = StatusSet(1 << AgentStatus::Ready as u8 | 1 << AgentStatus::Callcenter as u8);

    pub fn of(statuses: impl IntoIterator<Item = AgentStatus>) -> Self {
        StatusSet(statuses.into_iter().fold(0, |bits, s| bits | 1 << s as u8))
    }

    pub fn contains(self, s: AgentStatus) -> bool {
        self.0 & (1 << s as u8) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = AgentStatus> {
        AgentStatus::ALL.into_iter().filter(move |s| self.contains(*s))
    }
}

impl Default for StatusSet {
    fn default() -> Self {
        StatusSet::CALLCENTER
    }
}

impl FromStr for AgentStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "dnd" => Ok(AgentStatus::Dnd),
            "ready" => Ok(AgentStatus::Ready),
            "callcenter" => Ok(AgentStatus::Callcenter),
            _ => Err(format!("unknown status `{s}` (one of: dnd, ready, callcenter)")),
        }
    }
}

/// What the engine says a call-center agent is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum State {
    Waiting,
    Offered,
    Busy,
    PostProcessing,
    Missed,
    Paused,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Waiting => "waiting",
            State::Offered => "offered",
            State::Busy => "busy",
            State::PostProcessing => "post_processing",
            State::Missed => "missed",
            State::Paused => "paused",
        }
    }
}

impl fmt::Display for State {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Running totals a policy can rank agents by.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Counters {
    pub offered: u32,
    pub answered: u32,
    pub declined: u32,
    pub missed: u32,
    pub missed_in_row: u32,
    pub talk_time: Duration,
}

/// Serializable whole, for snapshots of the engine's state (the API shows agents through
/// its own view).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Agent {
    pub ix: AgentIx,
    /// The engine's key: the id within its unit (see [`crate::unit`]); `def.id` is the id shown.
    pub id: Arc<str>,
    pub def: AgentDef,
    pub status: AgentStatus,
    pub state: State,
    pub pause_cause: Option<String>,
    /// When the current state began: the status panel's timer.
    pub state_since: Timestamp,
    pub presence: String,
    pub base: BaseStatus,
    pub online: bool,
    pub work_day: bool,
    pub dismissed: bool,
    /// Half-open periods `[from, to)`.
    pub vacations: Vec<(Timestamp, Timestamp)>,
    pub on_vacation: bool,
    pub counters: Counters,
    /// When the agent last became Waiting (for longest-idle).
    pub idle_since: Timestamp,
    /// The conversation of exclusive work (see [`crate::capacity`]) and its ringing offer.
    pub conversation: Option<Arc<str>>,
    pub offer: Option<u64>,
    /// Conversations on shared channels (chats beside each other), ringing, talked or in wrap-up.
    pub slots: Vec<Slot>,
    /// Wrap-up or no-answer-delay timer, whichever state the agent is in.
    pub state_timer: Option<TimerKey>,
    pub vacation_timer: Option<TimerKey>,
    /// Queues listing this agent, by index.
    pub queues: Vec<u32>,
    /// Whether the agent could take work when last looked at ([`Agent::can_work`]), and how
    /// many times that stopped: an agent who let a conversation go while free is offered it
    /// again in a waiting round only once she has been away and is back.
    pub able: bool,
    pub away: u64,
}

impl Agent {
    /// A new agent: signed out, presence Offline, status Ready.
    pub fn new(ix: AgentIx, def: AgentDef, now: Timestamp) -> Self {
        Agent {
            ix,
            id: crate::unit::key(&def.unit, &def.id),
            def,
            status: AgentStatus::Ready,
            state: State::Waiting,
            pause_cause: None,
            state_since: now,
            presence: "offline".into(),
            base: BaseStatus::Offline,
            online: false,
            work_day: false,
            dismissed: false,
            vacations: Vec::new(),
            on_vacation: false,
            counters: Counters::default(),
            idle_since: now,
            conversation: None,
            offer: None,
            slots: Vec::new(),
            able: false,
            away: 0,
            state_timer: None,
            vacation_timer: None,
            queues: Vec::new(),
        }
    }

    /// Why the agent cannot take an offer from a queue that routes to `statuses`, by status
    /// and state; `None` means: a routed status (never DnD) and Waiting. Whatever keeps the
    /// agent from any work (DnD, a conversation, wrap-up) comes before the queue's statuses.
    #[inline]
    pub fn blocked_for(&self, statuses: StatusSet) -> Option<&'static str> {
        match (self.status, self.state) {
            (AgentStatus::Dnd, _) => Some("status_dnd"),
            (status, State::Waiting) => (!statuses.contains(status)).then(|| status.reason()),
            (_, State::Offered) => Some("state_offered"),
            (_, State::Busy) => Some("state_busy"),
            (_, State::PostProcessing) => Some("state_post_processing"),
            (_, State::Missed) => Some("state_missed"),
            (_, State::Paused) => Some("state_paused"),
        }
    }

    /// [`Agent::blocked_for`] a queue that routes call-center mode only (the default), as the
    /// Lua view's `agent.blocked` shows it.
    pub fn blocked(&self) -> Option<&'static str> {
        self.blocked_for(StatusSet::CALLCENTER)
    }

    /// Why the agent cannot take an offer from a queue that routes to `statuses` and allows
    /// the base statuses `allowed`: [`Agent::blocked_for`], or `presence_not_allowed`.
    #[inline]
    pub fn blocked_in(&self, statuses: StatusSet, allowed: BaseSet) -> Option<&'static str> {
        self.blocked_for(statuses).or_else(|| (!allowed.contains(self.base)).then_some("presence_not_allowed"))
    }

    /// [`Agent::blocked_in`], or why the agent has no room for one more conversation of
    /// `channel` ([`Agent::full_for`]): whether a queue's policy may offer it one.
    #[inline]
    pub fn blocked_on(&self, statuses: StatusSet, allowed: BaseSet, channel: &str) -> Option<&'static str> {
        self.blocked_in(statuses, allowed).or_else(|| self.full_for(channel))
    }

    /// Why the agent cannot take one more conversation of `channel` beside what they hold:
    /// exclusive work needs an agent who holds nothing on a shared channel (exclusive work
    /// itself shows in the state), shared work a free slot of its channel.
    #[inline]
    pub fn full_for(&self, channel: &str) -> Option<&'static str> {
        match self.def.capacity.limit(channel) {
            Limit::Exclusive => (!self.slots.is_empty()).then_some("channel_busy"),
            Limit::Shared(0) => Some("no_capacity"),
            Limit::Shared(n) => (self.load(channel) >= n).then_some("channel_full"),
        }
    }

    /// How many conversations of a shared `channel` the agent holds (ringing ones count).
    pub fn load(&self, channel: &str) -> u32 {
        self.slots.iter().filter(|s| &*s.channel == channel).count() as u32
    }

    /// Whether one more conversation of some channel would fit: nothing held on a shared
    /// channel (room for anything), or a shared channel with a free slot.
    pub fn has_room(&self) -> bool {
        self.slots.is_empty()
            || self.def.capacity.iter().any(|(c, l)| matches!(l, Limit::Shared(n) if self.load(c) < n))
    }

    /// The offers ringing the agent: the exclusive one, or those of shared slots.
    pub fn ringing(&self) -> impl Iterator<Item = u64> + '_ {
        self.offer.into_iter().chain(self.slots.iter().filter_map(|s| s.offer))
    }

    /// The load of every shared channel the agent holds work of.
    pub fn loads(&self) -> std::collections::BTreeMap<&str, u32> {
        let mut loads = std::collections::BTreeMap::new();
        for s in &self.slots {
            *loads.entry(&*s.channel).or_insert(0) += 1;
        }
        loads
    }

    /// The shared-channel slot of `conversation`, if the agent holds it on one.
    pub fn slot(&self, conversation: &str) -> Option<usize> {
        self.slots.iter().position(|s| &*s.conversation == conversation)
    }

    /// Whether some queue could offer the agent work now: a status a queue may route (not
    /// DnD), Waiting, available by the open-line criteria, and not offline.
    pub fn can_work(&self, track_work_day: bool) -> bool {
        self.blocked_for(StatusSet::ROUTABLE).is_none()
            && self.unavailable(track_work_day).is_none()
            && self.base != BaseStatus::Offline
    }

    /// The "check availability" criteria of an open line; the first one that fails.
    pub fn unavailable(&self, track_work_day: bool) -> Option<&'static str> {
        if self.dismissed {
            Some("dismissed")
        } else if self.on_vacation {
            Some("on_vacation")
        } else if track_work_day && !self.work_day {
            Some("work_day_not_started")
        } else if !track_work_day && !self.online {
            Some("offline")
        } else {
            None
        }
    }

    /// Whether `t` falls inside one of the vacation periods, and when that next changes.
    pub fn vacation_at(&self, t: Timestamp) -> (bool, Option<Timestamp>) {
        let on = self.vacations.iter().any(|&(from, to)| from <= t && t < to);
        let next = self.vacations.iter().flat_map(|&(from, to)| [from, to]).filter(|&edge| edge > t).min();
        (on, next)
    }

    pub fn set_state(&mut self, state: State, now: Timestamp) {
        if state == State::Waiting && self.state != State::Waiting {
            self.idle_since = now;
        }
        if state != State::Paused {
            self.pause_cause = None;
        }
        self.state = state;
        self.state_since = now;
    }
}
