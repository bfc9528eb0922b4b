//! Timers: engine data with a due time, kept in due order, cancellable and listable.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::agent::AgentIx;
use crate::time::Timestamp;

/// What a timer does when it falls due.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum TimerKind {
    /// An offer was not answered in time (for a strictly-in-order queue: pass to the next agent).
    OfferTimeout { offer: u64 },
    /// The team's wrap-up time is over: Post-processing ends.
    WrapUpEnd { agent: AgentIx },
    /// The team's wrap-up time after a conversation on a shared channel is over: its slot frees.
    SlotWrapUpEnd { agent: AgentIx, conversation: Arc<str> },
    /// The team's no-answer delay is over: Missed ends.
    MissedEnd { agent: AgentIx },
    /// A conversation waited as long as its queue allows.
    MaxWait { conversation: Arc<str> },
    /// A policy asked to be consulted again (wait, retry after an error, ring progressively).
    Retry { conversation: Arc<str> },
    /// A vacation period starts or ends.
    Vacation { agent: AgentIx },
    /// A workflow's wait is over: the instance gets the event `timer:NAME`.
    WorkflowWait { instance: u64, timer: Arc<str> },
}

impl TimerKind {
    pub fn name(&self) -> &'static str {
        match self {
            TimerKind::OfferTimeout { .. } => "offer_timeout",
            TimerKind::WrapUpEnd { .. } | TimerKind::SlotWrapUpEnd { .. } => "wrap_up_end",
            TimerKind::MissedEnd { .. } => "missed_end",
            TimerKind::MaxWait { .. } => "max_wait",
            TimerKind::Retry { .. } => "retry",
            TimerKind::Vacation { .. } => "vacation",
            TimerKind::WorkflowWait { .. } => "workflow_wait",
        }
    }
}

/// Identifies one scheduled timer; the sequence number keeps equal due times in schedule order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TimerKey {
    pub due: Timestamp,
    seq: u64,
}

impl TimerKey {
    /// Its number in the order timers were set.
    pub fn seq(&self) -> u64 {
        self.seq
    }
}

/// A pending timer as the API lists it.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct TimerInfo {
    /// Unique among pending timers; timers due at the same time go in the order of their ids.
    pub id: u64,
    pub due: Timestamp,
    pub kind: &'static str,
    /// The agent or conversation it is about (a conversation by its id).
    pub subject: String,
    /// The organization unit of the subject.
    pub unit: String,
}

/// All pending timers, ordered by due time. O(log n) to add, cancel or pop.
#[derive(Clone, Debug, Default)]
pub struct Timers {
    pending: BTreeMap<TimerKey, TimerKind>,
    seq: u64,
    /// The earliest time a timer scheduled now may fall due (see [`Timers::set_floor`]).
    floor: Timestamp,
}

impl Timers {
    /// Schedules `kind` at `due`, or at the floor if `due` is earlier.
    pub fn schedule(&mut self, due: Timestamp, kind: TimerKind) -> TimerKey {
        self.seq += 1;
        let key = TimerKey { due: due.max(self.floor), seq: self.seq };
        self.pending.insert(key, kind);
        key
    }

    /// Timers scheduled from now on fall due at `floor` at the earliest. The engine sets it just
    /// past each step's instant, so whatever a timer sets off can never be due at the instant
    /// being fired: one instant's work is bounded by the timers that were due when it began,
    /// whatever a script asks for.
    pub fn set_floor(&mut self, floor: Timestamp) {
        self.floor = floor;
    }

    pub fn cancel(&mut self, key: Option<TimerKey>) {
        if let Some(key) = key {
            self.pending.remove(&key);
        }
    }

    pub fn next_due(&self) -> Option<Timestamp> {
        self.pending.keys().next().map(|k| k.due)
    }

    /// Removes and returns the earliest timer if it is due at `now`.
    pub fn pop_due(&mut self, now: Timestamp) -> Option<(TimerKey, TimerKind)> {
        let entry = self.pending.first_entry()?;
        if entry.key().due <= now {
            Some(entry.remove_entry())
        } else {
            None
        }
    }

    pub fn len(&self) -> usize {
        self.pending.len()
    }

    pub fn is_empty(&self) -> bool {
        self.pending.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (&TimerKey, &TimerKind)> {
        self.pending.iter()
    }
}

/// Timers as a snapshot keeps them: the pending ones in due order, and the sequence and
/// floor the next ones are scheduled with.
#[derive(Serialize, Deserialize)]
struct TimersRepr {
    pending: Vec<(TimerKey, TimerKind)>,
    seq: u64,
    floor: Timestamp,
}

impl Serialize for Timers {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let pending = self.pending.iter().map(|(k, v)| (*k, v.clone())).collect();
        TimersRepr { pending, seq: self.seq, floor: self.floor }.serialize(s)
    }
}

impl<'de> Deserialize<'de> for Timers {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let r = TimersRepr::deserialize(d)?;
        Ok(Timers { pending: r.pending.into_iter().collect(), seq: r.seq, floor: r.floor })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timers_fire_in_due_order_and_cancelled_ones_never_fire() {
        let mut timers = Timers::default();
        let late = timers.schedule(Timestamp(300), TimerKind::WrapUpEnd { agent: 1 });
        let _early = timers.schedule(Timestamp(100), TimerKind::WrapUpEnd { agent: 2 });
        let _same = timers.schedule(Timestamp(100), TimerKind::WrapUpEnd { agent: 3 });
        timers.cancel(Some(late));
        assert_eq!(timers.pop_due(Timestamp(50)), None);
        let fired: Vec<_> = std::iter::from_fn(|| timers.pop_due(Timestamp(1000))).map(|(_, k)| k).collect();
        assert_eq!(fired, vec![TimerKind::WrapUpEnd { agent: 2 }, TimerKind::WrapUpEnd { agent: 3 }]);
        assert!(timers.is_empty());
    }

    #[test]
    fn a_timer_never_falls_due_before_the_floor() {
        let mut timers = Timers::default();
        timers.set_floor(Timestamp(101));
        timers.schedule(Timestamp(100), TimerKind::WrapUpEnd { agent: 1 });
        timers.schedule(Timestamp(-5), TimerKind::WrapUpEnd { agent: 2 });
        assert_eq!(timers.pop_due(Timestamp(100)), None, "nothing set off at 100 fires at 100");
        assert_eq!(timers.next_due(), Some(Timestamp(101)));
    }
}
