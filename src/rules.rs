//! A rule set: the validated definitions one generation of scripts produced.

use std::collections::BTreeMap;

use serde_json::Value;

use crate::presence::{BaseSet, PresenceCatalog};
use crate::time::Duration;

/// Where a definition was written, so later problems can point at it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub line: Option<u32>,
}

/// What happens to an agent who lets an offer time out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MissAction {
    /// State Missed for the team's no-answer delay, then Waiting again (Webitel).
    Missed,
    /// Presence Inactive until the agent picks another one (Dynamics 365).
    Inactive,
}

/// Where an agent is moved after `max_no_answer` misses in a row.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Escalation {
    Presence(String),
    Pause(String),
}

#[derive(Clone, Debug)]
pub struct TeamDef {
    pub id: String,
    pub wrap_up: Duration,
    pub no_answer_delay: Duration,
    /// 0 means never escalate.
    pub max_no_answer: u32,
    pub on_miss: MissAction,
    pub on_max_no_answer: Option<Escalation>,
    pub at: Location,
}

impl TeamDef {
    /// The timings of an agent with no team: no wrap-up, no delay, no escalation.
    pub fn none() -> Self {
        TeamDef {
            id: String::new(),
            wrap_up: Duration::ZERO,
            no_answer_delay: Duration::ZERO,
            max_no_answer: 0,
            on_miss: MissAction::Missed,
            on_max_no_answer: None,
            at: Location::default(),
        }
    }
}

/// The organization unit of definitions that do not name one.
pub const DEFAULT_UNIT: &str = "default";

/// The static part of an agent, as written in Lua (runtime state lives in [`crate::agent::Agent`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AgentDef {
    pub id: String,
    /// The organization unit (tenant) the agent belongs to; API tokens are scoped by unit.
    pub unit: String,
    pub name: String,
    pub team: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub time_zone: Option<String>,
    /// Skill name to level, matched against a conversation's requirements.
    pub skills: BTreeMap<String, f64>,
    pub weight: f64,
    pub attributes: BTreeMap<String, Value>,
    pub at: Location,
}

#[derive(Clone, Debug)]
pub struct QueueDef {
    pub id: String,
    /// The organization unit (tenant); its conversations belong to it too.
    pub unit: String,
    pub name: String,
    /// Agent ids in the queue's order.
    pub agents: Vec<String>,
    pub policy: String,
    /// Options after validation against the policy's schema (durations as seconds).
    pub options: BTreeMap<String, Value>,
    pub allowed: BaseSet,
    pub max_wait: Option<Duration>,
    /// Queue a conversation moves to when `max_wait` is exceeded (otherwise it ends).
    pub on_max_wait: Option<String>,
    /// Policy asked when the queue's own policy fails (otherwise: wait and retry).
    pub fallback: Option<String>,
    /// The fallback policy's option defaults.
    pub fallback_options: BTreeMap<String, Value>,
    pub retry_after_error: Duration,
    pub at: Location,
}

/// The type of one policy option, checked when the scripts load.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OptionKind {
    Duration,
    Number,
    Boolean,
    String,
    /// Any Lua value (tables included), passed through unchecked.
    Any,
}

impl OptionKind {
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "duration" => OptionKind::Duration,
            "number" => OptionKind::Number,
            "boolean" => OptionKind::Boolean,
            "string" => OptionKind::String,
            "any" => OptionKind::Any,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct OptionSpec {
    pub kind: OptionKind,
    pub default: Option<Value>,
}

/// A policy's name and the options it accepts.
#[derive(Clone, Debug, Default)]
pub struct PolicySpec {
    pub name: String,
    pub options: BTreeMap<String, OptionSpec>,
    pub at: Location,
}

impl PolicySpec {
    /// Checks a queue's options against this spec, filling defaults and turning
    /// durations into seconds. Errors are messages for a diagnostic.
    pub fn validate(&self, given: &BTreeMap<String, Value>) -> Result<BTreeMap<String, Value>, Vec<String>> {
        let mut out = BTreeMap::new();
        let mut errors = Vec::new();
        for (key, value) in given {
            let Some(spec) = self.options.get(key) else {
                let known: Vec<&str> = self.options.keys().map(String::as_str).collect();
                errors.push(format!(
                    "policy `{}` has no option `{key}` (it takes: {})",
                    self.name,
                    if known.is_empty() { "none".to_string() } else { known.join(", ") }
                ));
                continue;
            };
            match coerce(spec.kind, value) {
                Ok(v) => {
                    out.insert(key.clone(), v);
                }
                Err(e) => errors.push(format!("option `{key}` of policy `{}`: {e}", self.name)),
            }
        }
        for (key, spec) in &self.options {
            if out.contains_key(key) || given.contains_key(key) {
                continue;
            }
            if let Some(default) = &spec.default {
                match coerce(spec.kind, default) {
                    Ok(v) => {
                        out.insert(key.clone(), v);
                    }
                    Err(e) => errors.push(format!("default of option `{key}` of policy `{}`: {e}", self.name)),
                }
            }
        }
        if errors.is_empty() {
            Ok(out)
        } else {
            Err(errors)
        }
    }
}

fn coerce(kind: OptionKind, value: &Value) -> Result<Value, String> {
    match (kind, value) {
        (OptionKind::Any, v) => Ok(v.clone()),
        (OptionKind::Duration, Value::String(s)) => Duration::parse(s).map(|d| Value::from(d.as_secs_f64())),
        (OptionKind::Duration, Value::Number(n)) if n.as_f64().is_some_and(|x| x >= 0.0) => Ok(value.clone()),
        (OptionKind::Number, Value::Number(_)) => Ok(value.clone()),
        (OptionKind::Boolean, Value::Bool(_)) => Ok(value.clone()),
        (OptionKind::String, Value::String(_)) => Ok(value.clone()),
        (kind, v) => Err(format!("expected a {}, got {v}", format!("{kind:?}").to_lowercase())),
    }
}

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
    pub settings: Settings,
}

impl RuleSet {
    pub fn queue_index(&self, id: &str) -> Option<usize> {
        self.queues.iter().position(|q| q.id == id)
    }
}

/// Definitions as the scripts wrote them, before cross-checking.
#[derive(Debug, Default)]
pub struct Draft {
    pub presences: Vec<(crate::presence::Presence, Location)>,
    pub default_presence: Option<(String, Location)>,
    pub pause_causes: Vec<(String, String, Location)>,
    pub teams: Vec<TeamDef>,
    pub agents: Vec<AgentDef>,
    /// Queue options are still raw here.
    pub queues: Vec<QueueDef>,
    pub policies: Vec<PolicySpec>,
    pub settings: Settings,
    pub diagnostics: Vec<crate::error::Diagnostic>,
}

impl Draft {
    pub fn problem(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics.push(crate::error::Diagnostic::new(at.file.clone(), at.line, message));
    }

    /// Cross-checks everything (ids unique, references resolve, options fit their policy)
    /// and returns the rule set, or every problem found.
    pub fn assemble(mut self) -> Result<RuleSet, Vec<crate::error::Diagnostic>> {
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
        let mut agent_ids = std::collections::BTreeSet::new();
        for agent in std::mem::take(&mut self.agents) {
            if !agent_ids.insert(agent.id.clone()) {
                self.problem(&agent.at, format!("agent `{}` is already defined", agent.id));
                continue;
            }
            if let Some(team) = &agent.team {
                if !rules.teams.contains_key(team) {
                    self.problem(&agent.at, format!("agent `{}`: unknown team `{team}`", agent.id));
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
            let mut in_queue = std::collections::BTreeSet::new();
            for a in &queue.agents {
                if !agent_ids.contains(a) {
                    self.problem(&at, format!("queue `{q}`: unknown agent `{a}`"));
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
                None => self.problem(
                    &at,
                    format!(
                        "queue `{q}`: unknown policy `{}`{}",
                        queue.policy,
                        suggest(&queue.policy, rules.policies.keys())
                    ),
                ),
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
                    None => self.problem(&at, format!("queue `{q}`: unknown fallback policy `{f}`")),
                    Some(Ok(options)) => queue.fallback_options = options,
                    Some(Err(errors)) => {
                        for e in errors {
                            self.problem(&at, format!("queue `{q}`: fallback: {e}"));
                        }
                    }
                }
            }
            if let Some(to) = &queue.on_max_wait {
                match unit_of_queue.get(to) {
                    None => self.problem(&at, format!("queue `{q}`: on_max_wait names unknown queue `{to}`")),
                    Some(unit) if *unit != queue.unit => self.problem(
                        &at,
                        format!("queue `{q}` (unit `{}`) overflows to queue `{to}` of unit `{unit}`", queue.unit),
                    ),
                    Some(_) => {}
                }
            }
            rules.queues.push(queue);
        }
        if self.diagnostics.is_empty() && earlier.is_empty() {
            Ok(rules)
        } else {
            Err(earlier.into_iter().chain(self.diagnostics).collect())
        }
    }
}

/// ` (did you mean `x`?)` when a known name is one or two edits away.
pub fn suggest<'a>(name: &str, known: impl Iterator<Item = &'a String>) -> String {
    known
        .map(|k| (edit_distance(name, k), k))
        .filter(|(d, _)| *d <= 2)
        .min()
        .map(|(_, k)| format!(" (did you mean `{k}`?)"))
        .unwrap_or_default()
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut prev = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let cur = row[j + 1];
            row[j + 1] = (prev + usize::from(ca != *cb)).min(row[j] + 1).min(cur + 1);
            prev = cur;
        }
    }
    row[b.len()]
}
