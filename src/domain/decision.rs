//! Decisions a policy returns, and the trace each decision leaves behind.

use std::collections::VecDeque;
use std::sync::Arc;

use serde::Serialize;

use crate::agent::{AgentIx, AgentNames};
use crate::time::{Duration, Timestamp};

/// What a policy decided for one conversation.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// Offer to these agents at once (one agent is the common case); the first to accept wins.
    /// With `extend_after`, the policy is asked again while the offer rings and may add agents.
    Offer { agents: Vec<AgentIx>, timeout: Duration, extend_after: Option<Duration> },
    /// Keep waiting; ask again after `retry_after`, and when an agent frees up: any agent of
    /// the queue, or only one of `for_agents` when the policy waits for someone in particular.
    Wait { retry_after: Option<Duration>, for_agents: Vec<AgentIx> },
    /// Move the conversation to another queue and ask that queue's policy.
    Overflow { queue: String },
    /// Stop trying; the conversation ends.
    GiveUp { reason: String },
    /// Every agent the policy could offer it to was tried: the queue's `on_exhausted` says
    /// what happens next, and standby rules hear `exhausted`.
    Exhausted { reason: String },
}

/// Why a candidate was passed over: one of the host's fixed reasons, or a policy's own words.
/// Neither allocates per decision (policy reasons are interned by the script layer).
#[derive(Clone, Debug)]
pub enum Reason {
    Fixed(&'static str),
    Text(Arc<str>),
}

/// Reasons are their words: a host reason read back from a snapshot as text is the same reason.
impl PartialEq for Reason {
    fn eq(&self, other: &Self) -> bool {
        self.as_str() == other.as_str()
    }
}

impl Eq for Reason {}

impl Reason {
    pub fn as_str(&self) -> &str {
        match self {
            Reason::Fixed(s) => s,
            Reason::Text(s) => s,
        }
    }
}

impl From<&'static str> for Reason {
    fn from(s: &'static str) -> Self {
        Reason::Fixed(s)
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Reason {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A candidate the policy passed over, and why.
#[derive(Clone, Debug, PartialEq, Serialize, schemars::JsonSchema)]
pub struct Skip {
    pub agent: Arc<str>,
    #[schemars(with = "String")]
    pub reason: Reason,
}

/// The candidates one decision passed over: how many for each reason, and the first of them
/// in queue order by name (agents kept as indexes into the engine's [`AgentNames`]), so a
/// trace stays small however large its queue. How many are named is the engine's choice
/// (`EngineConfig::trace_skips`); a queue traced in full names them all.
#[derive(Clone, Debug)]
pub struct Skipped {
    names: AgentNames,
    named: Vec<(AgentIx, Reason)>,
    /// Every skipped candidate counted by reason, reasons in the order they first came.
    counts: Vec<(Reason, u32)>,
}

impl PartialEq for Skipped {
    fn eq(&self, other: &Self) -> bool {
        self.named == other.named && self.counts == other.counts
    }
}

impl Skipped {
    /// Distinct reasons counted one by one; a policy that gives every candidate its own words
    /// has the rest counted together as `other reasons`, so the counts stay small too.
    pub const REASONS: usize = 16;

    /// Counts `all` the skipped candidates by reason and names the first `named` of them.
    pub fn new(names: AgentNames, mut all: Vec<(AgentIx, Reason)>, named: usize) -> Self {
        let mut skipped = Skipped::tally(names, Vec::new(), Vec::new(), all.iter().map(|(_, r)| r));
        all.truncate(named);
        // The list held every member of the queue: what a trace keeps must not.
        all.shrink_to_fit();
        skipped.named = all;
        skipped
    }

    /// The trace's record from what the engine counted: `named`, the first skipped candidates
    /// in queue order; `counted`, the host's counts by reason; and `each`, the policy's
    /// reasons one by one. Reasons are listed as they first come among the named, then the
    /// rest in the order given.
    pub fn tally<'a>(
        names: AgentNames,
        named: Vec<(AgentIx, Reason)>,
        counted: Vec<(Reason, u32)>,
        each: impl Iterator<Item = &'a Reason>,
    ) -> Self {
        let other = Reason::Fixed("other reasons");
        let mut all = counted;
        // However many words a policy makes up, counting stays cheap: past the limit, new
        // ones are counted together.
        let room = all.len() + Self::REASONS;
        for reason in each {
            let reason = if all.len() < room || all.iter().any(|(r, _)| r == reason) { reason } else { &other };
            match all.iter_mut().find(|(r, _)| r == reason) {
                Some((_, n)) => *n += 1,
                None => all.push((reason.clone(), 1)),
            }
        }
        let mut counts = Vec::with_capacity(all.len().min(Self::REASONS + 1));
        for (_, reason) in &named {
            if let Some(i) = all.iter().position(|(r, _)| r == reason) {
                counts.push(all.remove(i));
            }
        }
        counts.append(&mut all);
        if counts.len() > Self::REASONS {
            let rest = counts.drain(Self::REASONS..).map(|(_, n)| n).sum();
            match counts.iter_mut().find(|(r, _)| *r == other) {
                Some((_, n)) => *n += rest,
                None => counts.push((other, rest)),
            }
        }
        Skipped { names, named, counts }
    }

    /// A record as it was written out: the named candidates and the counts.
    pub fn from_parts(names: AgentNames, named: Vec<(AgentIx, Reason)>, counts: Vec<(Reason, u32)>) -> Self {
        Skipped { names, named, counts }
    }

    /// How many candidates were skipped, named or not.
    pub fn len(&self) -> usize {
        self.counts.iter().map(|(_, n)| *n as usize).sum()
    }

    /// The named ones by index, with their reasons.
    pub fn list(&self) -> &[(AgentIx, Reason)] {
        &self.named
    }

    /// Every skipped candidate counted by reason.
    pub fn counts(&self) -> &[(Reason, u32)] {
        &self.counts
    }

    pub fn is_empty(&self) -> bool {
        self.counts.is_empty()
    }

    /// The named ones, in queue order.
    pub fn iter(&self) -> impl Iterator<Item = Skip> + '_ {
        self.named.iter().map(|(ix, reason)| Skip { agent: self.names.get(*ix).clone(), reason: reason.clone() })
    }
}

/// Three fields of the trace it is flattened into: `skipped` (the named ones),
/// `skipped_total` and `skipped_by_reason`.
impl Serialize for Skipped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        struct Named<'a>(&'a Skipped);
        impl Serialize for Named<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_seq(self.0.iter())
            }
        }
        struct Counts<'a>(&'a [(Reason, u32)]);
        impl Serialize for Counts<'_> {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_map(self.0.iter().map(|(r, n)| (r.as_str(), n)))
            }
        }
        let mut m = s.serialize_map(Some(3))?;
        m.serialize_entry("skipped", &Named(self))?;
        m.serialize_entry("skipped_total", &self.len())?;
        m.serialize_entry("skipped_by_reason", &Counts(&self.counts))?;
        m.end()
    }
}

impl schemars::JsonSchema for Skipped {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Skipped".into()
    }

    fn json_schema(generator: &mut schemars::SchemaGenerator) -> schemars::Schema {
        let skip = generator.subschema_for::<Skip>();
        schemars::json_schema!({
            "type": "object",
            "required": ["skipped", "skipped_total", "skipped_by_reason"],
            "properties": {
                "skipped": {
                    "description": "The first candidates passed over, in queue order (all of them for a queue with `full_traces`)",
                    "type": "array",
                    "items": skip
                },
                "skipped_total": { "description": "Every candidate passed over", "type": "integer", "minimum": 0 },
                "skipped_by_reason": {
                    "description": "Every candidate passed over, counted by reason",
                    "type": "object",
                    "additionalProperties": { "type": "integer", "minimum": 0 }
                }
            }
        })
    }
}

/// What was decided, as the trace keeps it (agents by id).
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    Offer { agents: Vec<Arc<str>>, timeout: Duration, extend_after: Option<Duration> },
    Wait { retry_after: Option<Duration>, for_agents: Vec<Arc<str>> },
    Overflow { queue: String },
    GiveUp { reason: String },
    Exhausted { reason: String },
}

impl std::fmt::Display for Decided {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Decided::Offer { agents, timeout, extend_after } => {
                write!(f, "offer {} ({timeout}", agents.join(", "))?;
                if let Some(step) = extend_after {
                    write!(f, ", extend after {step}")?;
                }
                f.write_str(")")
            }
            Decided::Wait { retry_after, for_agents } => {
                f.write_str("wait")?;
                if !for_agents.is_empty() {
                    write!(f, " for {}", for_agents.join(", "))?;
                }
                match retry_after {
                    Some(d) => write!(f, " (retry in {d})"),
                    None if for_agents.is_empty() => f.write_str(" (until an agent frees up)"),
                    None => Ok(()),
                }
            }
            Decided::Overflow { queue } => write!(f, "overflow to {queue}"),
            Decided::GiveUp { reason } => write!(f, "give up: {reason}"),
            Decided::Exhausted { reason } => write!(f, "exhausted: {reason}"),
        }
    }
}

impl Serialize for Decided {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why one decision came out the way it did.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Trace {
    pub at: Timestamp,
    /// Why the policy was asked now, when something other than an arrival or a freed agent
    /// asked it: `changed: attributes.vip`, `scripts reloaded (generation 3)`, `declined by anna`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cause: Option<String>,
    pub queue: Arc<str>,
    pub policy: String,
    /// Script generation that decided.
    pub generation: u64,
    /// The queue's agents in order, as the policy saw them.
    pub considered: usize,
    #[serde(flatten)]
    pub skipped: Skipped,
    /// The decision; in words `offer anna (30s)`, `wait (until an agent frees up)`, ...
    #[schemars(with = "String")]
    pub decision: Decided,
    /// Set when the policy failed and a fallback decided instead.
    pub error: Option<String>,
}

impl Trace {
    /// The same decision for the same reasons, whenever it was taken.
    pub fn repeats(&self, earlier: &Trace) -> bool {
        self.decision == earlier.decision
            && self.cause == earlier.cause
            && self.skipped == earlier.skipped
            && self.error == earlier.error
            && self.policy == earlier.policy
            && self.queue == earlier.queue
            && self.generation == earlier.generation
            && self.considered == earlier.considered
    }
}

/// One entry of a [`TraceLog`]: a trace, and how often the same decision was taken again
/// right after it (until when).
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
#[schemars(
    description = "A decision and why it came out so; `repeated` counts the same decision taken again right after it, until `last_at`."
)]
pub struct Traced {
    #[serde(flatten)]
    pub trace: Arc<Trace>,
    #[serde(skip_serializing_if = "is_zero")]
    pub repeated: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_at: Option<Timestamp>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// A conversation's decision traces, bounded however long it waits: a decision that repeats
/// the one before it only counts, and of the rest the first [`TraceLog::KEEP`] and the last
/// [`TraceLog::KEEP`] are kept, with the number dropped between them.
#[derive(Clone, Debug, Default)]
pub struct TraceLog {
    first: Vec<Traced>,
    last: VecDeque<Traced>,
    dropped: u64,
}

impl TraceLog {
    /// How many of the first and of the latest traces are kept.
    pub const KEEP: usize = 20;

    pub fn push(&mut self, trace: Arc<Trace>) {
        let newest = self.last.back_mut().or(self.first.last_mut());
        if let Some(entry) = newest.filter(|e| trace.repeats(&e.trace)) {
            entry.repeated += 1;
            entry.last_at = Some(trace.at);
            return;
        }
        let entry = Traced { trace, repeated: 0, last_at: None };
        if self.first.len() < Self::KEEP {
            self.first.push(entry);
            return;
        }
        if self.last.len() == Self::KEEP {
            self.last.pop_front();
            self.dropped += 1;
        }
        self.last.push_back(entry);
    }

    /// The traces kept, oldest first.
    pub fn iter(&self) -> impl Iterator<Item = &Traced> {
        self.first.iter().chain(self.last.iter())
    }

    pub fn last(&self) -> Option<&Arc<Trace>> {
        self.last.back().or(self.first.last()).map(|e| &e.trace)
    }

    pub fn len(&self) -> usize {
        self.first.len() + self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.first.is_empty()
    }

    /// Traces dropped between the first and the latest ones kept.
    pub fn dropped(&self) -> u64 {
        self.dropped
    }

    /// The first traces kept, the latest ones, and how many were dropped between them.
    pub fn parts(&self) -> (&[Traced], &VecDeque<Traced>, u64) {
        (&self.first, &self.last, self.dropped)
    }

    /// A log from its [`TraceLog::parts`].
    pub fn from_parts(first: Vec<Traced>, last: VecDeque<Traced>, dropped: u64) -> Self {
        TraceLog { first, last, dropped }
    }
}

impl Serialize for TraceLog {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A skip record names the first few in order and counts every one by reason, reasons in
    /// the order they first came; two records are the same decision only if both agree.
    #[test]
    fn skips_are_named_up_to_the_limit_and_all_counted() {
        let all: Vec<(AgentIx, Reason)> =
            (0..25).map(|i| (i, Reason::from(if i % 5 == 0 { "offline" } else { "state_busy" }))).collect();
        let s = Skipped::new(AgentNames::default(), all.clone(), 3);
        assert_eq!(s.list().iter().map(|(ix, _)| *ix).collect::<Vec<_>>(), vec![0, 1, 2]);
        assert_eq!(s.len(), 25);
        let counts: Vec<(&str, u32)> = s.counts().iter().map(|(r, n)| (r.as_str(), *n)).collect();
        assert_eq!(counts, vec![("offline", 5), ("state_busy", 20)]);
        assert_eq!(Skipped::new(AgentNames::default(), all.clone(), usize::MAX).list().len(), 25);
        // The memory kept is the named ones', not the whole queue's.
        let many: Vec<(AgentIx, Reason)> = (0..10_000).map(|i| (i, Reason::from("offline"))).collect();
        assert!(Skipped::new(AgentNames::default(), many, 10).named.capacity() <= 10);
        let mut other = all;
        other[24].1 = Reason::from("offline");
        assert_ne!(s, Skipped::new(AgentNames::default(), other, 3), "same names, other counts");
        // Every candidate with its own words: sixteen reasons, and the rest together.
        let own: Vec<(AgentIx, Reason)> =
            (0..40).map(|i| (i, Reason::Text(format!("busy with c{i}").into()))).collect();
        let s = Skipped::new(AgentNames::default(), own, 3);
        assert_eq!(s.counts().len(), Skipped::REASONS + 1);
        assert_eq!(s.counts().last().map(|(r, n)| (r.as_str(), *n)), Some(("other reasons", 24)));
    }

    fn trace(at: i64, decision: Decided) -> Arc<Trace> {
        Arc::new(Trace {
            at: Timestamp(at),
            cause: None,
            queue: Arc::from("q"),
            policy: "p".into(),
            generation: 1,
            considered: 2,
            skipped: Skipped::new(AgentNames::default(), Vec::new(), 10),
            decision,
            error: None,
        })
    }

    fn wait() -> Decided {
        Decided::Wait { retry_after: None, for_agents: Vec::new() }
    }

    #[test]
    fn a_repeated_decision_is_counted_and_a_long_wait_keeps_its_first_and_latest_traces() {
        let mut log = TraceLog::default();
        for at in 0..433 {
            log.push(trace(at, wait()));
        }
        let only: Vec<&Traced> = log.iter().collect();
        assert_eq!((only.len(), only[0].repeated, only[0].last_at), (1, 432, Some(Timestamp(432))));

        for i in 0..100 {
            log.push(trace(1000 + i, Decided::GiveUp { reason: format!("reason {i}") }));
        }
        assert_eq!(log.len(), 2 * TraceLog::KEEP);
        assert_eq!(log.dropped(), 101 - 2 * TraceLog::KEEP as u64);
        let kept: Vec<i64> = log.iter().map(|e| e.trace.at.0).collect();
        assert_eq!(kept[..2], [0, 1000], "the first ones");
        assert_eq!(kept[kept.len() - 1], 1099, "and the latest");
        assert_eq!(log.last().unwrap().at, Timestamp(1099));
    }
}
