//! Scenario files: a scripts folder, initial agent states and timed inputs, replayed on virtual time.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;

use crate::clock::VirtualClock;
use crate::engine::{Engine, EngineConfig};
use crate::error::{EngineError, InputError};
use crate::input::Input;
use crate::script::Limits;
use crate::time::{Duration, Timestamp};
use crate::update::{offset, Stamped};

/// How long a scenario without `until` may run on after its last input.
const DEFAULT_HORIZON: Duration = Duration(7 * 86_400_000);

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: Option<String>,
    /// The scripts folder, relative to the scenario file.
    pub scripts: PathBuf,
    /// RFC 3339 start time of the virtual clock.
    pub start: String,
    /// Stop this long after `start` (default: when no timer is left, at most 7 days after the last input).
    pub until: Option<String>,
    #[serde(default)]
    pub agents: Vec<AgentSetup>,
    #[serde(default)]
    pub events: Vec<TimedInput>,
}

/// An agent's state when the scenario starts. Signed in, call-center mode and
/// (where work time is tracked) work day started, unless said otherwise.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentSetup {
    pub id: String,
    #[serde(default = "yes")]
    pub signed_in: bool,
    pub presence: Option<String>,
    #[serde(default = "callcenter")]
    pub status: String,
    #[serde(default = "yes")]
    pub work_day: bool,
    #[serde(default)]
    pub vacations: Vec<(String, String)>,
    #[serde(default)]
    pub dismissed: bool,
    pub pause: Option<String>,
}

fn yes() -> bool {
    true
}

fn callcenter() -> String {
    "callcenter".into()
}

/// One timed input: `at` is a duration after `start` (`"12h"`, `"1d2h"`), and one action
/// such as `arrive = { ... }`.
#[derive(Debug, Deserialize)]
pub struct TimedInput {
    pub at: String,
    #[serde(flatten)]
    pub action: toml::Table,
}

impl TimedInput {
    /// The input this event carries, or what is wrong with it.
    pub(crate) fn input(&self) -> Result<Input, String> {
        if self.action.len() != 1 {
            let keys: Vec<&String> = self.action.keys().collect();
            return Err(format!(
                "needs exactly one action besides `at` (such as `arrive = {{ ... }}` or `accept = {{ ... }}`), found {keys:?}"
            ));
        }
        Input::deserialize(toml::Value::Table(self.action.clone())).map_err(|e| e.to_string().trim().to_string())
    }
}

/// One line of a timeline: an update, or an input the engine refused.
#[derive(Debug)]
pub enum TimelineEntry {
    Update(Stamped),
    Rejected { at: Timestamp, input: String, error: InputError },
}

impl TimelineEntry {
    pub fn at(&self) -> Timestamp {
        match self {
            TimelineEntry::Update(s) => s.at,
            TimelineEntry::Rejected { at, .. } => *at,
        }
    }

    /// `+HH:MM:SS  what happened`; a notification is followed by the message, indented.
    pub fn text(&self, start: Timestamp) -> String {
        let when = offset(start, self.at());
        match self {
            TimelineEntry::Update(Stamped { update: crate::update::Update::Notified { notification: n }, .. }) => {
                let mut out = format!("{when}  {}", self.describe());
                let mut line = |s: &str| {
                    out.push_str("\n    | ");
                    out.push_str(s);
                };
                if n.channel != crate::rules::DeliveryChannel::Webhook {
                    line(&format!("to {}", n.address));
                }
                if n.channel == crate::rules::DeliveryChannel::Email {
                    n.message.email.iter().flat_map(|b| b.lines()).for_each(&mut line);
                }
                if let Some(sms) = n.message.sms.as_ref().filter(|_| n.channel == crate::rules::DeliveryChannel::Sms) {
                    sms.body.lines().for_each(&mut line);
                    line(&format!("({} characters, {} segment(s), {})", sms.length, sms.segments, sms.encoding));
                }
                out
            }
            _ => format!("{when}  {}", self.describe()),
        }
    }

    fn describe(&self) -> String {
        match self {
            TimelineEntry::Update(s) => s.update.describe(),
            TimelineEntry::Rejected { input, error, .. } => format!("rejected {input}: {error}"),
        }
    }

    /// One JSON object, with the absolute time and the offset from the start.
    pub fn json(&self, start: Timestamp) -> serde_json::Value {
        let mut v = match self {
            TimelineEntry::Update(s) => serde_json::to_value(s).unwrap_or_default(),
            TimelineEntry::Rejected { at, input, error } => serde_json::json!({
                "at": at.to_rfc3339(),
                "type": "rejected",
                "input": input,
                "error": error.to_string(),
            }),
        };
        v["offset"] = offset(start, self.at()).into();
        v
    }
}

/// The result of a run: where it started and everything that happened.
pub struct Timeline {
    pub name: Option<String>,
    pub start: Timestamp,
    pub entries: Vec<TimelineEntry>,
}

impl Timeline {
    pub fn text(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.name {
            out.push_str(&format!("# {name}\n# start {}\n", self.start));
        }
        for e in &self.entries {
            out.push_str(&e.text(self.start));
            out.push('\n');
        }
        out
    }

    pub fn json_lines(&self) -> String {
        self.entries.iter().map(|e| format!("{}\n", e.json(self.start))).collect()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    #[error("cannot read {path}: {source}")]
    Read { path: String, source: std::io::Error },
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    #[error("{path}: agent setup for `{agent}` was refused: {error}")]
    Setup { path: String, agent: String, error: InputError },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl Scenario {
    pub fn from_file(path: &Path) -> Result<(Scenario, PathBuf), ScenarioError> {
        let shown = path.display().to_string();
        let text =
            std::fs::read_to_string(path).map_err(|source| ScenarioError::Read { path: shown.clone(), source })?;
        let scenario: Scenario = toml::from_str(&text)
            .map_err(|e| ScenarioError::Invalid { path: shown.clone(), message: e.to_string() })?;
        let scripts = path.parent().unwrap_or(Path::new(".")).join(&scenario.scripts);
        Ok((scenario, scripts))
    }
}

/// Reads a scenario file and runs it with the default script limits.
pub fn run_file(path: &Path) -> Result<Timeline, ScenarioError> {
    run_file_with(path, Limits::default())
}

/// Reads a scenario file and runs it with the given script limits.
pub fn run_file_with(path: &Path, limits: Limits) -> Result<Timeline, ScenarioError> {
    let (scenario, scripts) = Scenario::from_file(path)?;
    run(&scenario, &scripts, &path.display().to_string(), limits)
}

/// Runs a scenario on a virtual clock. The same scenario always gives the same timeline.
pub fn run(scenario: &Scenario, scripts: &Path, shown: &str, limits: Limits) -> Result<Timeline, ScenarioError> {
    run_restoring(scenario, scripts, shown, limits, false).map(|(timeline, _)| timeline)
}

/// [`run`]; with `restore`, the engine is snapshotted after every event and the run goes on
/// in an engine restored from that snapshot (the timeline must not change).
pub(crate) fn run_restoring(
    scenario: &Scenario,
    scripts: &Path,
    shown: &str,
    limits: Limits,
    restore: bool,
) -> Result<(Timeline, Engine), ScenarioError> {
    let invalid = |message: String| ScenarioError::Invalid { path: shown.to_string(), message };
    let start = Timestamp::parse_rfc3339(&scenario.start).map_err(|e| invalid(format!("start: {e}")))?;
    let until = scenario
        .until
        .as_deref()
        .map(|u| Duration::parse(u).map(|d| start + d).map_err(|e| invalid(format!("until: {e}"))))
        .transpose()?;
    let mut events = Vec::with_capacity(scenario.events.len());
    for (i, e) in scenario.events.iter().enumerate() {
        let at = Duration::parse(&e.at).map_err(|err| invalid(format!("event {} (at {}): {err}", i + 1, e.at)))?;
        let input = e.input().map_err(|err| invalid(format!("event {} (at {}): {err}", i + 1, e.at)))?;
        events.push((start + at, i, input));
    }
    events.sort_by_key(|(t, i, _)| (*t, *i));

    let clock = VirtualClock::starting_at(start);
    let mut config = EngineConfig::new(scripts);
    config.limits = limits;
    let mut engine = Engine::new(config.clone(), Arc::new(clock.clone()), Vec::new()).map_err(EngineError::from)?;
    for setup in &scenario.agents {
        for input in setup.inputs() {
            engine.handle(input).map_err(|error| ScenarioError::Setup {
                path: shown.to_string(),
                agent: setup.id.clone(),
                error,
            })?;
        }
    }
    // The setup's own updates are not part of the story.
    engine.fire_due();

    let mut entries = Vec::new();
    let push_all = |entries: &mut Vec<TimelineEntry>, updates: Vec<Stamped>| {
        entries.extend(updates.into_iter().map(TimelineEntry::Update))
    };
    for (at, _, input) in events {
        if until.is_some_and(|u| at > u) {
            break;
        }
        push_all(&mut entries, engine.advance_to(at));
        let shown_input = describe_input(&input);
        match engine.handle(input) {
            Ok(updates) => push_all(&mut entries, updates),
            Err(error) => entries.push(TimelineEntry::Rejected { at, input: shown_input, error }),
        }
        if restore {
            let snapshot = engine.snapshot().map_err(|e| invalid(format!("snapshot: {e}")))?;
            engine = Engine::restore(config.clone(), &snapshot.bytes, Arc::new(clock.clone()), Vec::new())
                .map_err(|e| invalid(format!("restore: {e}")))?;
        }
    }
    let end = until.unwrap_or_else(|| engine.now() + DEFAULT_HORIZON);
    push_all(&mut entries, engine.advance_to(end));
    Ok((Timeline { name: scenario.name.clone(), start, entries }, engine))
}

impl AgentSetup {
    fn inputs(&self) -> Vec<Input> {
        let agent = || self.id.clone();
        let mut inputs = Vec::new();
        if self.signed_in {
            inputs.push(Input::SignIn { agent: agent() });
        }
        if let Some(p) = &self.presence {
            inputs.push(Input::SetPresence { agent: agent(), presence: p.clone() });
        }
        inputs.push(Input::SetStatus { agent: agent(), status: self.status.clone() });
        if self.work_day {
            inputs.push(Input::StartWorkDay { agent: agent() });
        }
        if !self.vacations.is_empty() {
            inputs.push(Input::SetVacations { agent: agent(), periods: self.vacations.clone() });
        }
        if self.dismissed {
            inputs.push(Input::SetDismissed { agent: agent(), dismissed: true });
        }
        if let Some(cause) = &self.pause {
            inputs.push(Input::Pause { agent: agent(), cause: cause.clone() });
        }
        inputs
    }
}

/// A short form of an input for a "rejected" line.
fn describe_input(input: &Input) -> String {
    match input {
        Input::Arrive(c) => format!("arrive {} in {}", c.id, c.queue),
        Input::Accept { conversation, agent } => {
            format!("accept {conversation} by {}", agent.as_deref().unwrap_or("whoever it is offered to"))
        }
        Input::Decline { conversation, agent } => {
            format!("decline {conversation} by {}", agent.as_deref().unwrap_or("whoever it is offered to"))
        }
        Input::Close { conversation } => format!("close {conversation}"),
        Input::Abandon { conversation } => format!("abandon {conversation}"),
        Input::SetPresence { agent, presence } => format!("presence {presence} for {agent}"),
        Input::SetStatus { agent, status } => format!("status {status} for {agent}"),
        Input::Pause { agent, cause } => format!("pause {agent} ({cause})"),
        other => format!("{other:?}"),
    }
}
