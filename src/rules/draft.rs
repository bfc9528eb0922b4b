//! Definitions as the scripts wrote them, and their assembly into a [`RuleSet`]: every
//! definition cross-checked against the others, every problem a diagnostic.

use std::collections::BTreeMap;

use super::{
    suggest, AfterHours, AgentDef, DeliveryChannel, Escalation, Exhaustion, Location, PolicySpec, QueueDef, RuleSet,
    Settings, StandbyRule, TeamDef,
};
use crate::schedule::ScheduleDef;
use crate::template::TemplateDef;
use crate::workflow::WorkflowDef;

/// Definitions as the scripts wrote them, before cross-checking.
#[derive(Debug, Default)]
pub(crate) struct Draft {
    pub presences: Vec<(crate::presence::Presence, Location)>,
    pub default_presence: Option<(String, Location)>,
    pub pause_causes: Vec<(String, String, Location)>,
    pub teams: Vec<TeamDef>,
    pub agents: Vec<AgentDef>,
    /// Queue options are still raw here.
    pub queues: Vec<QueueDef>,
    pub policies: Vec<PolicySpec>,
    pub templates: Vec<TemplateDef>,
    pub standby: Vec<StandbyRule>,
    pub schedules: Vec<ScheduleDraft>,
    pub hours: Vec<crate::hours::HoursDef>,
    pub workflows: Vec<WorkflowDef>,
    pub settings: Settings,
    pub diagnostics: Vec<crate::error::Diagnostic>,
    /// (namespace, id) of definitions that had problems: a reference to one is not reported
    /// again as unknown, since its own diagnostic says what is wrong.
    pub failed: std::collections::BTreeSet<(String, String)>,
}

/// A schedule as written: its layers come in `layers`, calendar ones still as their .ics file
/// name, read when the rules assemble.
#[derive(Debug)]
pub(crate) struct ScheduleDraft {
    pub def: ScheduleDef,
    pub layers: Vec<LayerDraft>,
}

#[derive(Debug)]
pub(crate) enum LayerDraft {
    Rotation(crate::schedule::Rotation),
    Calendar(String),
}

impl Draft {
    pub(crate) fn problem(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics.push(crate::error::Diagnostic::new(at.file.clone(), at.line, message));
    }

    /// The end of a diagnostic about `name`, a `ns` thing that is not defined: ` (did you mean
    /// …?)` when a known name is close. `None` when saying so would only repeat an earlier
    /// problem: the name is empty (its required field was missing) or its definition failed.
    pub(super) fn unknown<'a>(&self, ns: &str, name: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
        if name.is_empty() || self.failed.contains(&(ns.to_string(), name.to_string())) {
            return None;
        }
        Some(suggest(name, known))
    }

    /// Recipients known at load must have an address for every channel they are sent by: a
    /// message to nobody would only turn up as a dead notification when it matters.
    pub(super) fn check_addresses<'a>(
        &mut self,
        at: &Location,
        who: &str,
        recipients: impl IntoIterator<Item = &'a str>,
        channels: &[DeliveryChannel],
        agents: &[AgentDef],
    ) {
        for id in recipients {
            let Some(a) = agents.iter().find(|a| a.id == id) else { continue };
            for channel in channels {
                let (missing, what) = match channel {
                    DeliveryChannel::Email => (a.email.is_none(), "email address (`email`)"),
                    DeliveryChannel::Sms => (a.phone.is_none(), "phone number (`phone`)"),
                    DeliveryChannel::Webhook => (false, ""),
                };
                if missing {
                    let channel = channel.as_str();
                    self.problem(at, format!("{who} sends {channel} to agent `{id}`, who has no {what}"));
                }
            }
        }
    }

    /// Cross-checks everything (ids unique, references resolve, options fit their policy)
    /// and returns the rule set, or every problem found.
    ///
    /// `files` are the data files of the scripts folder (.ics calendars), by name.
    pub(crate) fn assemble(mut self, files: &[(String, String)]) -> Result<RuleSet, Vec<crate::error::Diagnostic>> {
        let earlier = std::mem::take(&mut self.diagnostics);
        let mut rules = RuleSet { settings: self.settings.clone(), ..RuleSet::default() };

        for (p, at) in std::mem::take(&mut self.presences) {
            if rules.presences.contains(&p.id) {
                let what = if p.id.parse::<crate::presence::BaseStatus>().is_ok() {
                    "a built-in presence"
                } else {
                    "already defined"
                };
                self.problem(&at, format!("presence `{}` is {what}", p.id));
            } else if p.base == crate::presence::BaseStatus::Inactive {
                self.problem(&at, format!("presence `{}` cannot map to `inactive`: only the system sets it", p.id));
            } else {
                rules.presences.insert(p);
            }
        }
        if let Some((id, at)) = self.default_presence.take() {
            match rules.presences.selectable(&id) {
                Ok(_) => rules.presences.set_default(id),
                Err(e) => self.problem(&at, format!("default presence: {e}")),
            }
        }
        for (id, text, at) in std::mem::take(&mut self.pause_causes) {
            if rules.pause_causes.insert(id.clone(), text).is_some() {
                self.problem(&at, format!("pause cause `{id}` is already defined"));
            }
        }
        for spec in std::mem::take(&mut self.policies) {
            if let Some(first) = rules.policies.get(&spec.name) {
                let first = format!("{}:{}", first.at.file, first.at.line.unwrap_or(0));
                self.problem(&spec.at, format!("policy `{}` is already registered (at {first})", spec.name));
            } else {
                rules.policies.insert(spec.name.clone(), spec);
            }
        }
        for team in std::mem::take(&mut self.teams) {
            match &team.on_max_no_answer {
                Some(Escalation::Presence(p)) if !rules.presences.contains(p) => {
                    self.problem(&team.at, format!("team `{}`: on_max_no_answer names unknown presence `{p}`", team.id))
                }
                Some(Escalation::Pause(c)) if !rules.pause_causes.contains_key(c) => self
                    .problem(&team.at, format!("team `{}`: on_max_no_answer names unknown pause cause `{c}`", team.id)),
                _ => {}
            }
            if rules.teams.contains_key(&team.id) {
                self.problem(&team.at, format!("team `{}` is already defined", team.id));
            } else {
                rules.teams.insert(team.id.clone(), team);
            }
        }
        for mut hours in std::mem::take(&mut self.hours) {
            if let Some(file) = hours.calendar_file.clone() {
                match files.iter().find(|(name, _)| *name == file) {
                    None => self.problem(
                        &hours.at,
                        format!("hours `{}`: no calendar file `{file}` in the scripts folder", hours.id),
                    ),
                    // Any event closes the days it covers; what it is called does not matter.
                    Some((_, text)) => match crate::calendar::Calendar::parse(text, hours.zone, |s| Some(s.into())) {
                        Ok(c) => hours.calendar = Some(c),
                        Err(problems) => {
                            for (line, message) in problems {
                                self.diagnostics.push(crate::error::Diagnostic::new(file.clone(), line, message));
                            }
                        }
                    },
                }
            }
            if rules.hours.contains_key(&hours.id) {
                self.problem(&hours.at, format!("hours `{}` are already defined", hours.id));
            } else {
                rules.hours.insert(hours.id.clone(), hours);
            }
        }
        let mut agent_ids = std::collections::BTreeSet::new();
        for agent in std::mem::take(&mut self.agents) {
            if !agent_ids.insert(agent.id.clone()) {
                self.problem(&agent.at, format!("agent `{}` is already defined", agent.id));
                continue;
            }
            if let Some(team) = agent.team.as_ref().filter(|t| !rules.teams.contains_key(*t)) {
                if let Some(hint) = self.unknown("teams", team, rules.teams.keys()) {
                    self.problem(&agent.at, format!("agent `{}`: unknown team `{team}`{hint}", agent.id));
                }
            }
            rules.agents.push(agent);
        }
        let unit_of_agent: BTreeMap<&str, &str> =
            rules.agents.iter().map(|a| (a.id.as_str(), a.unit.as_str())).collect();
        let unit_of_queue: BTreeMap<String, String> =
            self.queues.iter().map(|q| (q.id.clone(), q.unit.clone())).collect();
        let mut seen = std::collections::BTreeSet::new();
        for mut queue in std::mem::take(&mut self.queues) {
            let at = queue.at.clone();
            let q = queue.id.clone();
            if !seen.insert(q.clone()) {
                self.problem(&at, format!("queue `{q}` is already defined"));
                continue;
            }
            for agent in queue.levels.keys().filter(|a| !queue.agents.contains(a)) {
                self.problem(&at, format!("queue `{q}`: levels names `{agent}`, who is not in its agents"));
            }
            let mut in_queue = std::collections::BTreeSet::new();
            for a in &queue.agents {
                if !agent_ids.contains(a) {
                    if let Some(hint) = self.unknown("agents", a, agent_ids.iter()) {
                        self.problem(&at, format!("queue `{q}`: unknown agent `{a}`{hint}"));
                    }
                } else if unit_of_agent.get(a.as_str()).is_some_and(|&u| u != queue.unit) {
                    let unit = unit_of_agent[a.as_str()];
                    self.problem(
                        &at,
                        format!("queue `{q}` (unit `{}`) lists agent `{a}` of unit `{unit}`", queue.unit),
                    );
                } else if !in_queue.insert(a) {
                    self.problem(&at, format!("queue `{q}`: agent `{a}` is listed twice"));
                }
            }
            match rules.policies.get(&queue.policy) {
                None => {
                    if let Some(hint) = self.unknown("policies", &queue.policy, rules.policies.keys()) {
                        self.problem(&at, format!("queue `{q}`: unknown policy `{}`{hint}", queue.policy));
                    }
                }
                Some(spec) => match spec.validate(&queue.options) {
                    Ok(options) => queue.options = options,
                    Err(errors) => {
                        for e in errors {
                            self.problem(&at, format!("queue `{q}`: {e}"));
                        }
                    }
                },
            }
            if let Some(f) = &queue.fallback {
                match rules.policies.get(f).map(|spec| spec.validate(&BTreeMap::new())) {
                    None => {
                        if let Some(hint) = self.unknown("policies", f, rules.policies.keys()) {
                            self.problem(&at, format!("queue `{q}`: unknown fallback policy `{f}`{hint}"));
                        }
                    }
                    Some(Ok(options)) => queue.fallback_options = options,
                    Some(Err(errors)) => {
                        for e in errors {
                            self.problem(&at, format!("queue `{q}`: fallback: {e}"));
                        }
                    }
                }
            }
            if let Some(h) = &queue.hours {
                match rules.hours.get(h) {
                    None => {
                        if let Some(hint) = self.unknown("hours", h, rules.hours.keys()) {
                            self.problem(&at, format!("queue `{q}`: unknown hours `{h}`{hint}"));
                        }
                    }
                    Some(def) if def.unit != queue.unit => self.problem(
                        &at,
                        format!("queue `{q}` (unit `{}`) uses hours `{h}` of unit `{}`", queue.unit, def.unit),
                    ),
                    Some(_) => {}
                }
            } else if queue.after_hours != AfterHours::Wait {
                self.problem(&at, format!("queue `{q}`: after_hours needs hours (hours = \"office\")"));
            }
            let after_hours = match &queue.after_hours {
                AfterHours::Overflow(to) => Some(("after_hours", Some(to))),
                _ => None,
            };
            let overflows = [("on_max_wait", queue.on_max_wait.as_ref())]
                .into_iter()
                .chain(match &queue.on_exhausted {
                    Exhaustion::Overflow(to) => Some(("on_exhausted", Some(to))),
                    _ => None,
                })
                .chain(after_hours);
            for (field, to) in overflows {
                let Some(to) = to else { continue };
                match unit_of_queue.get(to) {
                    None => {
                        if let Some(hint) = self.unknown("queues", to, unit_of_queue.keys()) {
                            self.problem(&at, format!("queue `{q}`: {field} names unknown queue `{to}`{hint}"));
                        }
                    }
                    Some(unit) if *unit != queue.unit => self.problem(
                        &at,
                        format!("queue `{q}` (unit `{}`) overflows to queue `{to}` of unit `{unit}`", queue.unit),
                    ),
                    Some(_) => {}
                }
            }
            rules.queues.push(queue);
        }
        rules.queue_positions = rules.queues.iter().enumerate().map(|(i, q)| (q.id.clone(), i)).collect();
        self.assemble_standby(&mut rules, files);
        rules.listens = !rules.standby.is_empty() || rules.queues.iter().any(|q| !q.workflows.is_empty());
        if self.diagnostics.is_empty() && earlier.is_empty() {
            Ok(rules)
        } else {
            Err(earlier.into_iter().chain(self.diagnostics).collect())
        }
    }
}
