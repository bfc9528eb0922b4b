//! A rule set: the validated definitions one generation of scripts produced.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde_json::Value;

use crate::agent::StatusSet;
use crate::presence::{BaseSet, PresenceCatalog};
use crate::schedule::ScheduleDef;
use crate::template::{Kind, TemplateDef, Templates};
use crate::time::Duration;
use crate::workflow::{Action, WorkflowDef};

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

/// What a queue does with a conversation whose policy found every agent tried
/// (`on_exhausted` in `queues.define`). `exhausted` is raised for standby rules in every case.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Exhaustion {
    /// Keep the customer waiting; when an agent frees up, the policy starts its list over.
    #[default]
    Wait,
    /// Start the list over at once (if that finds nobody again, wait as above).
    Restart,
    /// Move the conversation to another queue.
    Overflow(String),
    /// End the conversation (the customer's chat is dropped).
    GiveUp,
}

impl Exhaustion {
    /// `wait`, `restart`, `overflow` or `give_up`, as policies see it (`ctx.queue.on_exhausted`).
    pub fn kind(&self) -> &'static str {
        match self {
            Exhaustion::Wait => "wait",
            Exhaustion::Restart => "restart",
            Exhaustion::Overflow(_) => "overflow",
            Exhaustion::GiveUp => "give_up",
        }
    }
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
    /// The agent statuses it routes to (call-center mode only unless the queue says so).
    pub statuses: StatusSet,
    pub max_wait: Option<Duration>,
    /// Queue a conversation moves to when `max_wait` is exceeded (otherwise it ends).
    pub on_max_wait: Option<String>,
    /// What happens when the policy has tried every agent it could (`policies.exhausted`).
    pub on_exhausted: Exhaustion,
    /// Policy asked when the queue's own policy fails (otherwise: wait and retry).
    pub fallback: Option<String>,
    /// The fallback policy's option defaults.
    pub fallback_options: BTreeMap<String, Value>,
    pub retry_after_error: Duration,
    /// Standby rules watching this queue's conversations, by id.
    pub standby: Vec<String>,
    /// Workflows its conversations are set on when an event happens: event name to workflow id.
    pub workflows: BTreeMap<String, String>,
    pub at: Location,
    /// A queue the scripts removed while conversations still pointed at it (ended ones kept
    /// for reading, ones a workflow still works on): it keeps its id and unit for them, has no
    /// agents or rules, takes no arrivals and is not listed. Not found by `queue_index`.
    pub retired: bool,
}

/// A channel a notification goes out by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Email,
    Sms,
    Webhook,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Channel::Email, Channel::Sms, Channel::Webhook];

    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
            Channel::Webhook => "webhook",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        Channel::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// Events a standby rule can watch, besides custom ones (`custom:NAME`, raised by scripts or the API).
pub const STANDBY_EVENTS: &[(&str, &str)] = &[
    ("missed", "an offer timed out or was declined"),
    ("exhausted", "every agent of the queue was offered the conversation and none answered"),
    ("abandoned", "the customer left while waiting"),
    ("max_wait", "the conversation waited longer than its queue allows"),
    ("overflowed", "the conversation overflowed to another queue"),
    ("gave_up", "the policy gave up on the conversation"),
    ("delivery_failed", "a notification could not be delivered (permanently, or after every attempt)"),
];

/// Whom a standby rule notifies.
#[derive(Clone, Debug, PartialEq)]
pub enum Recipients {
    Agents(Vec<String>),
    /// Whoever is on duty in this schedule at that moment.
    Schedule(String),
    /// A Lua function of the event returning agent ids.
    Function,
    /// For `delivery_failed`: the agent the failed notification was for.
    FailedRecipient,
}

/// A standby rule: whom to notify about which events, by which channels, with which templates.
#[derive(Clone, Debug)]
pub struct StandbyRule {
    pub id: String,
    pub unit: String,
    /// Event names: those of [`STANDBY_EVENTS`] or `custom:NAME`.
    pub on: Vec<String>,
    pub notify: Recipients,
    pub channels: Vec<Channel>,
    pub template: String,
    /// Sent to those notified who did not answer, once someone answers.
    pub clearing: Option<String>,
    pub at: Location,
}

impl StandbyRule {
    pub fn watches(&self, event: &str) -> bool {
        self.on.iter().any(|e| e == event)
    }
}

/// Something that uses a template, standby rule or schedule, for "where used" and for refusing
/// to drop a definition still in use.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
pub struct User {
    /// `queue`, `standby rule`.
    pub kind: &'static str,
    pub id: String,
    /// What it uses the id as: `template`, `standby rule` or `schedule`.
    pub uses: &'static str,
    pub file: String,
    pub line: Option<u32>,
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
        (OptionKind::Duration, Value::String(_) | Value::Number(_)) => {
            let d = match value {
                Value::String(s) => Duration::parse(s)?,
                _ => Duration::from_secs_checked(value.as_f64().unwrap_or(f64::NAN))?,
            };
            // A zero duration option is a timeout that ends at once or a step that repeats at once.
            match d.is_zero() {
                true => Err("a duration option must be longer than zero".into()),
                false => Ok(Value::from(d.as_secs_f64())),
            }
        }
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
    pub templates: Arc<Templates>,
    pub standby: BTreeMap<String, StandbyRule>,
    pub schedules: BTreeMap<String, ScheduleDef>,
    pub workflows: BTreeMap<String, WorkflowDef>,
    pub settings: Settings,
    /// Whether any standby rule or queue trigger listens to conversation events (worked out once,
    /// since every update asks).
    pub listens: bool,
    /// The organization units of the queues (retired ones included) other than the default
    /// one: where a conversation id may also live (see [`crate::conversation::key`]).
    pub other_units: Vec<String>,
    /// Where each queue is in `queues`, by id (every arrival looks its queue up).
    queue_positions: rustc_hash::FxHashMap<String, usize>,
}

impl RuleSet {
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
    pub templates: Vec<TemplateDef>,
    pub standby: Vec<StandbyRule>,
    pub schedules: Vec<ScheduleDraft>,
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
pub struct ScheduleDraft {
    pub def: ScheduleDef,
    pub layers: Vec<LayerDraft>,
}

#[derive(Debug)]
pub enum LayerDraft {
    Rotation(crate::schedule::Rotation),
    Calendar(String),
}

impl Draft {
    pub fn problem(&mut self, at: &Location, message: impl Into<String>) {
        self.diagnostics.push(crate::error::Diagnostic::new(at.file.clone(), at.line, message));
    }

    /// The end of a diagnostic about `name`, a `ns` thing that is not defined: ` (did you mean
    /// …?)` when a known name is close. `None` when saying so would only repeat an earlier
    /// problem: the name is empty (its required field was missing) or its definition failed.
    fn unknown<'a>(&self, ns: &str, name: &str, known: impl Iterator<Item = &'a String>) -> Option<String> {
        if name.is_empty() || self.failed.contains(&(ns.to_string(), name.to_string())) {
            return None;
        }
        Some(suggest(name, known))
    }

    /// Recipients known at load must have an address for every channel they are sent by: a
    /// message to nobody would only turn up as a dead notification when it matters.
    fn check_addresses<'a>(
        &mut self,
        at: &Location,
        who: &str,
        recipients: impl IntoIterator<Item = &'a str>,
        channels: &[Channel],
        agents: &[AgentDef],
    ) {
        for id in recipients {
            let Some(a) = agents.iter().find(|a| a.id == id) else { continue };
            for channel in channels {
                let (missing, what) = match channel {
                    Channel::Email => (a.email.is_none(), "email address (`email`)"),
                    Channel::Sms => (a.phone.is_none(), "phone number (`phone`)"),
                    Channel::Webhook => (false, ""),
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
    pub fn assemble(mut self, files: &[(String, String)]) -> Result<RuleSet, Vec<crate::error::Diagnostic>> {
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
            let overflows =
                [("on_max_wait", queue.on_max_wait.as_ref())].into_iter().chain(match &queue.on_exhausted {
                    Exhaustion::Overflow(to) => Some(("on_exhausted", Some(to))),
                    _ => None,
                });
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

impl Draft {
    /// Templates, schedules and standby rules: compiled, resolved, and checked against each other
    /// and the queues that name them (same unit, every reference defined).
    fn assemble_standby(&mut self, rules: &mut RuleSet, files: &[(String, String)]) {
        let (templates, problems) = Templates::compile(std::mem::take(&mut self.templates));
        for (at, message) in problems {
            self.problem(&at, message);
        }
        let unit_of_agent: BTreeMap<String, String> =
            rules.agents.iter().map(|a| (a.id.clone(), a.unit.clone())).collect();
        let agent_named = |name: &str| -> Option<String> {
            let name = name.trim();
            rules
                .agents
                .iter()
                .find(|a| {
                    a.id == name
                        || a.name.eq_ignore_ascii_case(name)
                        || a.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(name))
                })
                .map(|a| a.id.clone())
        };
        for mut draft in std::mem::take(&mut self.schedules) {
            let id = draft.def.id.clone();
            for layer in std::mem::take(&mut draft.layers) {
                let file = match layer {
                    LayerDraft::Rotation(r) => {
                        draft.def.layers.push(crate::schedule::Layer::Rotation(r));
                        continue;
                    }
                    LayerDraft::Calendar(file) => file,
                };
                let Some((_, text)) = files.iter().find(|(name, _)| *name == file) else {
                    self.problem(
                        &draft.def.at,
                        format!("schedule `{id}`: no calendar file `{file}` in the scripts folder"),
                    );
                    continue;
                };
                match crate::calendar::Calendar::parse(text, draft.def.zone, agent_named) {
                    Ok(c) => draft.def.layers.push(crate::schedule::Layer::Calendar(c)),
                    Err(problems) => {
                        for (line, message) in problems {
                            self.diagnostics.push(crate::error::Diagnostic::new(file.clone(), line, message));
                        }
                    }
                }
            }
            for agent in draft.def.agents() {
                match unit_of_agent.get(agent) {
                    None => {
                        if let Some(hint) = self.unknown("agents", agent, rules.agents.iter().map(|a| &a.id)) {
                            self.problem(&draft.def.at, format!("schedule `{id}`: unknown agent `{agent}`{hint}"));
                        }
                    }
                    Some(unit) if *unit != draft.def.unit => self.problem(
                        &draft.def.at,
                        format!("schedule `{id}` (unit `{}`) names agent `{agent}` of unit `{unit}`", draft.def.unit),
                    ),
                    Some(_) => {}
                }
            }
            if rules.schedules.insert(id.clone(), draft.def).is_some() {
                let at = rules.schedules[&id].at.clone();
                self.problem(&at, format!("schedule `{id}` is already defined"));
            }
        }

        // References to things that are not defined, reported at the end with every place that
        // uses them (the seed's "used by" list), found the way "where used" finds them.
        let mut missing: std::collections::BTreeSet<(&'static str, String)> = Default::default();
        for rule in std::mem::take(&mut self.standby) {
            let r = rule.id.clone();
            let check_unit = |this: &mut Draft, what: &str, id: &str, unit: &str| {
                if unit != rule.unit {
                    this.problem(
                        &rule.at,
                        format!("standby rule `{r}` (unit `{}`) uses {what} `{id}` of unit `{unit}`", rule.unit),
                    );
                }
            };
            for (kind, template) in
                [(Kind::Notification, Some(&rule.template)), (Kind::Clearing, rule.clearing.as_ref())]
            {
                let Some(template) = template else { continue };
                let user = Use { who: format!("standby rule `{r}`"), unit: &rule.unit, at: &rule.at };
                if !self.check_template(&templates, template, kind, &rule.channels, &user) {
                    missing.insert(("template", template.clone()));
                }
            }
            let who = format!("standby rule `{r}`");
            match &rule.notify {
                Recipients::Agents(list) => {
                    for a in list {
                        match unit_of_agent.get(a) {
                            None => {
                                if let Some(hint) = self.unknown("agents", a, rules.agents.iter().map(|a| &a.id)) {
                                    self.problem(&rule.at, format!("standby rule `{r}`: unknown agent `{a}`{hint}"));
                                }
                            }
                            Some(unit) => check_unit(self, "agent", a, unit),
                        }
                    }
                    let list = list.iter().map(String::as_str);
                    self.check_addresses(&rule.at, &who, list, &rule.channels, &rules.agents);
                }
                Recipients::Schedule(s) => match rules.schedules.get(s) {
                    None => {
                        missing.insert(("schedule", s.clone()));
                    }
                    Some(def) => {
                        check_unit(self, "schedule", s, &def.unit);
                        let who = format!("{who} (through schedule `{s}`)");
                        self.check_addresses(&rule.at, &who, def.agents(), &rule.channels, &rules.agents);
                    }
                },
                Recipients::FailedRecipient if rule.on.iter().any(|e| e != "delivery_failed") => self.problem(
                    &rule.at,
                    format!("standby rule `{r}`: notify = \"recipient\" only makes sense for `delivery_failed` events"),
                ),
                Recipients::FailedRecipient | Recipients::Function => {}
            }
            match rules.standby.entry(r) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    let message = format!("standby rule `{}` is already defined", e.key());
                    self.problem(&rule.at, message);
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(rule);
                }
            }
        }
        self.assemble_workflows(rules, &templates, &mut missing);
        // A template no rule uses yet is still checked, against every parameter a message can have.
        for id in templates.ids() {
            if !rules.standby.values().any(|r| &r.template == id || r.clearing.as_ref() == Some(id)) {
                for problem in templates.unknown_parameters(id, Kind::Clearing) {
                    let at = templates.get(id).map(|d| d.at.clone()).unwrap_or_default();
                    self.problem(&at, format!("template `{id}`: {problem}"));
                }
            }
        }
        for q in &rules.queues {
            for (event, w) in &q.workflows {
                let known = STANDBY_EVENTS.iter().any(|(e, _)| e == event)
                    || event.strip_prefix("custom:").is_some_and(|n| !n.is_empty());
                if !known {
                    self.problem(&q.at, format!("queue `{}`: workflows: unknown event `{event}`", q.id));
                }
                match rules.workflows.get(w) {
                    None => {
                        missing.insert(("workflow", w.clone()));
                    }
                    Some(def) if def.unit != q.unit => self.problem(
                        &q.at,
                        format!("queue `{}` (unit `{}`) starts workflow `{w}` of unit `{}`", q.id, q.unit, def.unit),
                    ),
                    Some(_) => {}
                }
            }
            for s in &q.standby {
                match rules.standby.get(s) {
                    None => {
                        missing.insert(("standby rule", s.clone()));
                    }
                    Some(rule) if rule.unit != q.unit => self.problem(
                        &q.at,
                        format!("queue `{}` (unit `{}`) uses standby rule `{s}` of unit `{}`", q.id, q.unit, rule.unit),
                    ),
                    Some(_) => {}
                }
            }
        }
        for (what, id) in missing {
            let (ns, known): (&str, Vec<&String>) = match what {
                "template" => ("templates", templates.ids().collect()),
                "schedule" => ("schedules", rules.schedules.keys().collect()),
                "workflow" => ("workflows", rules.workflows.keys().collect()),
                _ => ("standby", rules.standby.keys().collect()),
            };
            let Some(hint) = self.unknown(ns, &id, known.into_iter()) else { continue };
            let users: Vec<User> = rules.users_of(&id).into_iter().filter(|u| u.uses == what).collect();
            // Where else it is used, when that is somewhere else too.
            let others = match users.len() {
                0 | 1 => String::new(),
                _ => {
                    let places: Vec<String> = users
                        .iter()
                        .map(|u| format!("{} `{}` at {}:{}", u.kind, u.id, u.file, u.line.unwrap_or(0)))
                        .collect();
                    format!(" (used by: {})", places.join(", "))
                }
            };
            for u in &users {
                self.problem(
                    &Location { file: u.file.clone(), line: u.line },
                    format!("{} `{}` uses {what} `{id}`, which is not defined{hint}{others}", u.kind, u.id),
                );
            }
        }
        rules.templates = Arc::new(templates);
    }

    /// Whether template `id` is defined; if so, also that it is of the user's unit, knows the
    /// parameters of a `kind` message and has a body for each channel the user sends it by.
    fn check_template(
        &mut self,
        templates: &Templates,
        id: &str,
        kind: Kind,
        channels: &[Channel],
        user: &Use,
    ) -> bool {
        let Some(def) = templates.get(id) else { return false };
        if def.unit != user.unit {
            let message = format!("{} (unit `{}`) uses template `{id}` of unit `{}`", user.who, user.unit, def.unit);
            self.problem(user.at, message);
        }
        for problem in templates.unknown_parameters(id, kind) {
            let used = format!("used as {} message by {}", kind.as_str(), user.who);
            self.problem(&def.at, format!("template `{id}` ({used}): {problem}"));
        }
        for channel in channels {
            let lacks = match channel {
                Channel::Email => def.email.is_none().then_some("email body (`email`)"),
                Channel::Sms => def.sms.is_none().then_some("SMS body (`sms`)"),
                Channel::Webhook => None,
            };
            if let Some(part) = lacks {
                let message =
                    format!("{} sends {} with template `{id}`, which has no {part}", user.who, channel.as_str());
                self.problem(user.at, message);
            }
        }
        true
    }

    /// Workflows: each one's shape (legs, links, reachability), and what its actions name.
    fn assemble_workflows(
        &mut self,
        rules: &mut RuleSet,
        templates: &Templates,
        missing: &mut std::collections::BTreeSet<(&'static str, String)>,
    ) {
        let unit_of_agent: BTreeMap<String, String> =
            rules.agents.iter().map(|a| (a.id.clone(), a.unit.clone())).collect();
        for w in std::mem::take(&mut self.workflows) {
            for (at, message) in w.check() {
                self.problem(&at, message);
            }
            let who = format!("workflow `{}`", w.id);
            for a in w.stages.iter().flat_map(|s| &s.actions) {
                let other_unit = |what: &str, id: &str, unit: &str| {
                    format!("{who} (unit `{}`) uses {what} `{id}` of unit `{unit}`", w.unit)
                };
                match &a.action {
                    Action::Notify { template, channel, to } => {
                        let user = Use { who: who.clone(), unit: &w.unit, at: &a.at };
                        if !self.check_template(templates, template, Kind::Notification, &[*channel], &user) {
                            missing.insert(("template", template.clone()));
                        }
                        match to {
                            Recipients::Schedule(s) => match rules.schedules.get(s) {
                                None => {
                                    missing.insert(("schedule", s.clone()));
                                }
                                Some(def) if def.unit != w.unit => {
                                    self.problem(&a.at, other_unit("schedule", s, &def.unit))
                                }
                                Some(def) => {
                                    self.check_addresses(&a.at, &who, def.agents(), &[*channel], &rules.agents)
                                }
                            },
                            Recipients::Agents(list) => {
                                for id in list {
                                    match unit_of_agent.get(id) {
                                        None => {
                                            if let Some(hint) =
                                                self.unknown("agents", id, rules.agents.iter().map(|a| &a.id))
                                            {
                                                self.problem(&a.at, format!("{who}: unknown agent `{id}`{hint}"));
                                            }
                                        }
                                        Some(unit) if *unit != w.unit => {
                                            self.problem(&a.at, other_unit("agent", id, unit))
                                        }
                                        Some(_) => {}
                                    }
                                }
                                let list = list.iter().map(String::as_str);
                                self.check_addresses(&a.at, &who, list, &[*channel], &rules.agents);
                            }
                            Recipients::Function | Recipients::FailedRecipient => {}
                        }
                    }
                    Action::Standby { rule } => match rules.standby.get(rule) {
                        None => {
                            missing.insert(("standby rule", rule.clone()));
                        }
                        Some(r) if r.unit != w.unit => self.problem(&a.at, other_unit("standby rule", rule, &r.unit)),
                        Some(_) => {}
                    },
                    _ => {}
                }
            }
            match rules.workflows.entry(w.id.clone()) {
                std::collections::btree_map::Entry::Occupied(e) => {
                    let first = format!("{}:{}", e.get().at.file, e.get().at.line.unwrap_or(0));
                    self.problem(&w.at, format!("workflow `{}` is already defined (at {first})", w.id));
                }
                std::collections::btree_map::Entry::Vacant(e) => {
                    e.insert(w);
                }
            }
        }
    }
}

/// Who uses a template, for the diagnostics about it.
struct Use<'a> {
    who: String,
    unit: &'a str,
    at: &'a Location,
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
