//! A rule set: the validated definitions one generation of scripts produced, and how the
//! scripts' definitions are assembled into one (`draft`), by concern: the definitions
//! themselves (`defs`), policy options (`options`), standby duty and templates (`standby`),
//! workflows (`workflows`) and the "did you mean" of every diagnostic (`suggest`).

mod defs;
mod draft;
mod options;
mod standby;
mod suggest;
mod workflows;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use defs::*;
pub(crate) use draft::{Draft, LayerDraft, ScheduleDraft};
pub use options::{OptionKind, OptionSpec, PolicySpec};
pub use suggest::suggest;

use crate::presence::PresenceCatalog;
use crate::schedule::ScheduleDef;
use crate::template::Templates;
use crate::workflow::{Action, WorkflowDef};

/// Deployment-wide settings written in Lua.
#[derive(Clone, Debug, Default)]
pub struct Settings {
    /// When true, availability requires a started work day; otherwise being online.
    pub track_work_day: bool,
}

/// Everything one generation of scripts defined, already cross-checked.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    pub presences: PresenceCatalog,
    pub pause_causes: BTreeMap<String, String>,
    pub teams: BTreeMap<String, TeamDef>,
    pub agents: Vec<AgentDef>,
    pub queues: Vec<QueueDef>,
    pub policies: BTreeMap<String, PolicySpec>,
    pub templates: Arc<Templates>,
    pub standby: BTreeMap<String, StandbyRule>,
    pub schedules: BTreeMap<String, ScheduleDef>,
    /// Business hours by id (`hours.define`).
    pub hours: BTreeMap<String, crate::hours::HoursDef>,
    pub workflows: BTreeMap<String, WorkflowDef>,
    pub settings: Settings,
    /// Whether any standby rule or queue trigger listens to conversation events (worked out once,
    /// since every update asks).
    pub listens: bool,
    /// The organization units of the queues (retired ones included) other than the default
    /// one: where a conversation id may also live (see [`crate::unit::key`]).
    pub other_units: Vec<String>,
    /// Where each queue is in `queues`, by id (every arrival looks its queue up).
    queue_positions: rustc_hash::FxHashMap<String, usize>,
}

impl RuleSet {
    /// What an engine running `partition` installs: its units' agents, queues, schedules,
    /// standby rules and workflows (the load checked that each names only its own unit's
    /// things), and every definition the units share.
    pub fn within(mut self, partition: &crate::partition::Partition) -> RuleSet {
        if partition.of.count() == 1 {
            return self;
        }
        self.agents.retain(|a| partition.holds(&a.unit));
        self.queues.retain(|q| partition.holds(&q.unit));
        self.schedules.retain(|_, s| partition.holds(&s.unit));
        self.standby.retain(|_, r| partition.holds(&r.unit));
        self.workflows.retain(|_, w| partition.holds(&w.unit));
        self.queue_positions = self.queues.iter().enumerate().map(|(i, q)| (q.id.clone(), i)).collect();
        self
    }

    pub fn queue_index(&self, id: &str) -> Option<usize> {
        self.queue_positions.get(id).copied()
    }

    /// Every definition that uses the template, standby rule or schedule `id`.
    pub fn users_of(&self, id: &str) -> Vec<User> {
        let mut out = Vec::new();
        let mut add = |kind, user: &str, at: &Location, uses| {
            out.push(User { kind, id: user.to_string(), uses, file: at.file.clone(), line: at.line })
        };
        for q in self.queues.iter().filter(|q| q.standby.iter().any(|s| s == id)) {
            add("queue", &q.id, &q.at, "standby rule");
        }
        for r in self.standby.values() {
            if r.template == id || r.clearing.as_deref() == Some(id) {
                add("standby rule", &r.id, &r.at, "template");
            }
            if r.notify == Recipients::Schedule(id.into()) {
                add("standby rule", &r.id, &r.at, "schedule");
            }
        }
        for q in self.queues.iter().filter(|q| q.workflows.values().any(|w| w == id)) {
            add("queue", &q.id, &q.at, "workflow");
        }
        for w in self.workflows.values() {
            for a in w.stages.iter().flat_map(|s| &s.actions) {
                match &a.action {
                    Action::Notify { template, to, .. } => {
                        if template == id {
                            add("workflow", &w.id, &a.at, "template");
                        }
                        if *to == Recipients::Schedule(id.into()) {
                            add("workflow", &w.id, &a.at, "schedule");
                        }
                    }
                    Action::Standby { rule } if rule == id => add("workflow", &w.id, &a.at, "standby rule"),
                    _ => {}
                }
            }
        }
        out
    }

    /// The organization unit of the template, standby rule, schedule or workflow `id`, if one is defined.
    pub fn unit_of(&self, id: &str) -> Option<&str> {
        (self.templates.get(id).map(|t| &t.unit))
            .or_else(|| self.standby.get(id).map(|r| &r.unit))
            .or_else(|| self.schedules.get(id).map(|s| &s.unit))
            .or_else(|| self.workflows.get(id).map(|w| &w.unit))
            .map(String::as_str)
    }
}
