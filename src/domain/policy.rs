//! Policies written in Rust, for embedders who want one without Lua (and for the benchmark).

use serde_json::Value;
use std::cell::RefCell;
use std::collections::BTreeMap;

use crate::agent::{Agent, AgentIx, StatusSet};
use crate::conversation::Conversation;
use crate::decision::{Decision, Reason};
use crate::presence::BaseSet;
use crate::roster::{Cursor, Order, Roster, Walked};
use crate::rules::{Exhaustion, PolicySpec};
use crate::time::Timestamp;

/// What a policy sees when asked about one conversation. The Lua view carries the same fields.
pub struct DecisionContext<'a> {
    pub conversation: &'a Conversation,
    pub queue_id: &'a str,
    pub queue_index: u32,
    pub allowed: BaseSet,
    /// The agent statuses the queue routes to.
    pub statuses: StatusSet,
    /// What the queue does when the policy says [`Decision::Exhausted`].
    pub on_exhausted: &'a Exhaustion,
    /// The queue's agents in its order.
    pub candidates: &'a [AgentIx],
    /// All agents, indexed by [`AgentIx`].
    pub agents: &'a [Agent],
    pub options: &'a BTreeMap<String, Value>,
    pub now: Timestamp,
    pub track_work_day: bool,
    /// Agents already ringing for this conversation (when the policy is asked to extend an offer).
    pub ringing: &'a [AgentIx],
    /// Who in each queue can take work now, kept by the engine; see [`DecisionContext::walk`].
    pub roster: &'a Roster,
    /// What this decision's walks passed over, for its trace.
    pub(crate) walked: RefCell<Walked>,
}

impl<'a> DecisionContext<'a> {
    /// Why `agent` cannot be offered this conversation right now, from the host's point of view
    /// (mode, state, presence, capacity on the conversation's channel); `None` when it can.
    pub fn blocked(&self, agent: &Agent) -> Option<&'static str> {
        agent.blocked_on(self.statuses, self.allowed, &self.conversation.data.channel)
    }

    /// Whether the agent was already offered this conversation in this round and the offer ended.
    pub fn tried(&self, agent: &Agent) -> bool {
        let c = self.conversation;
        c.passed.iter().any(|&(ix, _)| ix == agent.ix)
            || c.attempts[c.round_start..].iter().any(|a| a.agent == agent.id && a.ended_at.is_some())
    }

    /// The queue's members who can take this conversation now, in `order`, each with its
    /// position in `candidates`: the queue routes their status, they are Waiting, their
    /// presence is allowed, they are available by the open-line criteria, they have room on
    /// the conversation's channel and every skill it requires. The walk costs what it visits,
    /// not the queue's size. For [`Order::Queue`], `after` starts after that position and goes
    /// round once. Lua policies have the same walk as `ctx:members`.
    pub fn walk(&self, order: Order, after: Option<u32>) -> impl Iterator<Item = (u32, &'a Agent)> + '_ {
        self.walked.borrow_mut().used = true;
        let mut cursor = Cursor::default();
        let data = &self.conversation.data;
        std::iter::from_fn(move || {
            let mut walked = self.walked.borrow_mut();
            let pos = self.roster.step(
                self.queue_index,
                &order,
                &mut cursor,
                after,
                &data.channel,
                &data.requires,
                &mut walked,
            )?;
            Some((pos, &self.agents[self.candidates[pos as usize] as usize]))
        })
    }

    /// Takes what the walks of this decision passed over.
    pub(crate) fn take_walked(self) -> Walked {
        self.walked.into_inner()
    }

    pub fn option_f64(&self, key: &str) -> Option<f64> {
        self.options.get(key).and_then(Value::as_f64)
    }
}

/// A distribution policy implemented in Rust. Skips go into `skipped` for the trace.
///
/// With a store, a policy must be deterministic (the journal is replayed through it), and
/// memory it keeps in itself is not in the engine's snapshots: after a start from a snapshot
/// it begins empty. Decide from the context (counters, attempts, `tried`) where you can.
pub trait Policy: Send {
    fn spec(&self) -> PolicySpec;
    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String>;
}
