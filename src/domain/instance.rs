//! Workflow instances: one conversation's way through a workflow, its open tasks, its history,
//! and the stage numbers people see.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::time::Timestamp;
use crate::timer::TimerKey;
use crate::workflow::WorkflowDef;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum InstanceStatus {
    /// At a stage, waiting for one of its events.
    Running,
    /// Stopped until a person says how it goes on: its workflow changed under it, or an event
    /// came that its workflow no longer handles.
    Flagged,
    Finished,
}

/// A task shown to people until one of its buttons is pushed.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Task {
    pub id: u64,
    pub title: String,
    pub buttons: Vec<String>,
    pub opened: Timestamp,
}

/// One line of an instance's history.
#[derive(Clone, Debug, Serialize, Deserialize, schemars::JsonSchema)]
pub struct HistoryStep {
    pub at: Timestamp,
    /// The event it is about (`start`, `button:done`, ...).
    pub event: String,
    /// The stage it entered, if it entered one.
    pub stage: Option<u32>,
    pub note: String,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct Instance {
    pub id: u64,
    pub workflow: String,
    pub unit: String,
    #[serde(serialize_with = "crate::unit::serialize_external")]
    pub conversation: Arc<str>,
    pub status: InstanceStatus,
    pub started: Timestamp,
    /// The event whose stage it is in.
    pub event: String,
    pub stage: u32,
    /// When it entered that stage.
    pub entered: Timestamp,
    /// Why it finished or was flagged.
    pub note: Option<String>,
    /// The open tasks of its stage.
    pub tasks: Vec<Task>,
    /// The waits of its stage: the timer and the `timer:NAME` event it brings.
    #[serde(skip)]
    pub waits: Vec<(TimerKey, String)>,
    /// Notifications it sent, so a failed one comes back to it.
    #[serde(skip)]
    pub notifications: Vec<u64>,
    /// Left out of lists (an instance always has at least its start).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryStep>,
}

impl Instance {
    pub fn is_live(&self) -> bool {
        self.status != InstanceStatus::Finished
    }

    pub fn task(&self, id: u64) -> Option<&Task> {
        self.tasks.iter().find(|t| t.id == id)
    }
}

/// The number of each stage: given the first time a workflow's event is seen and never changed
/// or reused, so adding or removing a stage renumbers nothing else.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct StageNumbers(BTreeMap<String, BTreeMap<String, u32>>);

impl StageNumbers {
    /// Numbers the stages of `def` that have none yet, in the order they are written.
    pub fn assign(&mut self, def: &WorkflowDef) {
        let numbers = self.0.entry(def.id.clone()).or_default();
        for s in &def.stages {
            if !numbers.contains_key(&s.event) {
                let next = numbers.values().max().copied().unwrap_or(0) + 1;
                numbers.insert(s.event.clone(), next);
            }
        }
    }

    pub fn get(&self, workflow: &str, event: &str) -> Option<u32> {
        self.0.get(workflow)?.get(event).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::Location;
    use crate::workflow::StageDef;

    fn def(events: &[&str]) -> WorkflowDef {
        let stage = |e: &&str| StageDef { event: e.to_string(), actions: Vec::new(), at: Location::default() };
        WorkflowDef {
            id: "w".into(),
            unit: "default".into(),
            description: None,
            stages: events.iter().map(stage).collect(),
            at: Location::default(),
        }
    }

    #[test]
    fn a_new_stage_gets_a_new_number_and_the_others_keep_theirs() {
        let mut numbers = StageNumbers::default();
        numbers.assign(&def(&["start", "button:done", "timer:retry"]));
        // A stage inserted in the middle, one removed: nothing is renumbered, nothing reused.
        numbers.assign(&def(&["start", "custom:vip", "button:done"]));
        let got: Vec<_> =
            ["start", "button:done", "timer:retry", "custom:vip"].iter().map(|e| numbers.get("w", e)).collect();
        assert_eq!(got, vec![Some(1), Some(2), Some(3), Some(4)]);
        numbers.assign(&def(&["start", "timer:later"]));
        assert_eq!(numbers.get("w", "timer:later"), Some(5));
    }
}
