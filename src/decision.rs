//! Decisions a policy returns, and the trace each decision leaves behind.

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
}

/// Why a candidate was passed over: one of the host's fixed reasons, or a policy's own words.
/// Neither allocates per decision (policy reasons are interned by the script layer).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    Fixed(&'static str),
    Text(Arc<str>),
}

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
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Skip {
    pub agent: Arc<str>,
    pub reason: Reason,
}

/// The candidates one decision passed over, in order, with agents kept as indexes into the
/// engine's [`AgentNames`]. Read them as [`Skip`]s with `iter`; they serialize as a list of those.
#[derive(Clone, Debug)]
pub struct Skipped {
    names: AgentNames,
    list: Vec<(AgentIx, Reason)>,
}

impl Skipped {
    pub fn new(names: AgentNames, list: Vec<(AgentIx, Reason)>) -> Self {
        Skipped { names, list }
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = Skip> + '_ {
        self.list.iter().map(|(ix, reason)| Skip { agent: self.names.get(*ix).clone(), reason: reason.clone() })
    }
}

impl Serialize for Skipped {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

/// What was decided, as the trace keeps it (agents by id).
#[derive(Clone, Debug, PartialEq)]
pub enum Decided {
    Offer { agents: Vec<Arc<str>>, timeout: Duration, extend_after: Option<Duration> },
    Wait { retry_after: Option<Duration>, for_agents: Vec<Arc<str>> },
    Overflow { queue: String },
    GiveUp { reason: String },
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
        }
    }
}

impl Serialize for Decided {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

/// Why one decision came out the way it did.
#[derive(Clone, Debug, Serialize)]
pub struct Trace {
    pub at: Timestamp,
    pub queue: Arc<str>,
    pub policy: String,
    /// Script generation that decided.
    pub generation: u64,
    /// The queue's agents in order, as the policy saw them.
    pub considered: usize,
    pub skipped: Skipped,
    /// The decision; in words `offer anna (30s)`, `wait (until an agent frees up)`, ...
    pub decision: Decided,
    /// Set when the policy failed and a fallback decided instead.
    pub error: Option<String>,
}
