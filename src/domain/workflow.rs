//! Workflows: follow-up work a conversation opens, as events and the actions attached to them,
//! and the check that every leg of one ends in `finish` or a link.
//!
//! A stage is one event with its actions. Entering a stage runs its actions in order; the stage
//! then either ends the instance (`finish`), moves on at once (`link`, or `raise` of an event the
//! workflow itself handles), or waits for the events its tasks and waits lead to (a button
//! pushed, a timer elapsed). Leaving a stage closes its open tasks and cancels its waits.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use crate::rules::{DeliveryChannel, Location, Recipients};
use crate::time::Duration;

/// The event every instance starts with: a conversation was set on the workflow.
pub const START: &str = "start";
/// The event of a notification sent by the workflow that could not be delivered.
pub const NOTIFICATION_FAILED: &str = "notification_failed";

/// The event names a stage can be for, as the Lua API and the diagnostics write them.
pub const EVENT_KINDS: &str = "start, button:NAME, timer:NAME, custom:NAME or notification_failed";

/// Why `event` is not an event name a stage can be for.
pub fn event_problem(event: &str) -> Option<String> {
    if event == START || event == NOTIFICATION_FAILED {
        return None;
    }
    match event.split_once(':') {
        Some(("button" | "timer" | "custom", name)) if !name.trim().is_empty() => None,
        _ => Some(format!("unknown event `{event}` (events: {EVENT_KINDS})")),
    }
}

/// One step of a stage.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// A task shown to people until one of its buttons is pushed (`button:NAME`).
    Task {
        title: String,
        buttons: Vec<String>,
    },
    /// A message through a template and channel, like a standby rule's.
    Notify {
        template: String,
        channel: DeliveryChannel,
        to: Recipients,
    },
    /// After `after`, the event `timer:NAME`.
    Wait {
        after: Duration,
        timer: String,
    },
    /// Sets an attribute of the conversation.
    Set {
        field: String,
        value: serde_json::Value,
    },
    /// Sets an attribute of the conversation to what a script function (`function`, its id
    /// among the functions the scripts gave the host) computes from the conversation.
    SetComputed {
        field: String,
        function: String,
    },
    /// Changes what a waiting conversation is routed by, `priority` (a whole number) or
    /// `requires` (skill to level), to `value` or to what `function` computes; it is routed
    /// again at once.
    Route {
        field: String,
        value: serde_json::Value,
        function: Option<String>,
    },
    /// Raises `custom:NAME` about the conversation: standby rules hear it, and every instance on
    /// the conversation with a stage for it (this one included) moves there.
    Raise {
        event: String,
    },
    /// Runs a standby rule now (the seed's "standby duty activity").
    Standby {
        rule: String,
    },
    /// Goes on with the stage of another event of the same workflow.
    Link {
        event: String,
    },
    Finish {
        reason: Option<String>,
    },
}

/// A new priority, or new required skills (skill to level).
pub(crate) type Routing = (Option<i64>, Option<std::collections::BTreeMap<String, f64>>);

/// What `workflows.route` may change, read from `value`: a priority (a whole number) or
/// required skills (skill to a finite level).
pub(crate) fn routing_value(field: &str, value: &serde_json::Value) -> Result<Routing, String> {
    match field {
        "priority" => {
            value.as_i64().map(|p| (Some(p), None)).ok_or_else(|| format!("a priority is a whole number, got {value}"))
        }
        "requires" => {
            let map = value.as_object().filter(|m| !m.is_empty());
            let skills: Option<std::collections::BTreeMap<String, f64>> = map.and_then(|m| {
                m.iter().map(|(k, v)| v.as_f64().filter(|l| l.is_finite()).map(|l| (k.clone(), l))).collect()
            });
            skills.map(|s| (None, Some(s))).ok_or_else(|| format!("requires is a table of skill = level, got {value}"))
        }
        other => Err(format!("`{other}` is not `priority` or `requires`")),
    }
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Task { .. } => "task",
            Action::Notify { .. } => "notify",
            Action::Wait { .. } => "wait",
            Action::Set { .. } | Action::SetComputed { .. } => "set",
            Action::Route { .. } => "route",
            Action::Raise { .. } => "raise",
            Action::Standby { .. } => "standby",
            Action::Link { .. } => "link",
            Action::Finish { .. } => "finish",
        }
    }

    /// One line for listings: `task "Call back" [done | no_answer]`, `wait 1h → timer:retry`.
    pub fn describe(&self) -> String {
        match self {
            Action::Task { title, buttons } => format!("task {title:?} [{}]", buttons.join(" | ")),
            Action::Notify { template, channel, .. } => format!("notify {} with {template}", channel.as_str()),
            Action::Wait { after, timer } => format!("wait {after} → timer:{timer}"),
            Action::Set { field, value } => format!("set {field} = {value}"),
            Action::SetComputed { field, .. } => format!("set {field} = (computed)"),
            Action::Route { field, function: Some(_), .. } => format!("route by {field} = (computed)"),
            Action::Route { field, value, .. } => format!("route by {field} = {value}"),
            Action::Raise { event } => format!("raise custom:{event}"),
            Action::Standby { rule } => format!("standby rule {rule}"),
            Action::Link { event } => format!("link → {event}"),
            Action::Finish { reason: Some(r) } => format!("finish ({r})"),
            Action::Finish { reason: None } => "finish".into(),
        }
    }

    /// The events of the same workflow this action leads to.
    fn leads_to(&self) -> Vec<String> {
        match self {
            Action::Task { buttons, .. } => buttons.iter().map(|b| format!("button:{b}")).collect(),
            Action::Wait { timer, .. } => vec![format!("timer:{timer}")],
            Action::Link { event } => vec![event.clone()],
            Action::Raise { event } => vec![format!("custom:{event}")],
            _ => Vec::new(),
        }
    }

    /// Whether the action holds the instance in its stage until an event comes.
    fn holds(&self) -> bool {
        matches!(self, Action::Task { .. } | Action::Wait { .. })
    }
}

#[derive(Clone, Debug)]
pub struct ActionDef {
    pub action: Action,
    pub at: Location,
}

/// One event of a workflow and what happens when it comes.
#[derive(Clone, Debug)]
pub struct StageDef {
    pub event: String,
    pub actions: Vec<ActionDef>,
    pub at: Location,
}

#[derive(Clone, Debug)]
pub struct WorkflowDef {
    pub id: String,
    pub unit: String,
    pub description: Option<String>,
    pub stages: Vec<StageDef>,
    pub at: Location,
}

impl WorkflowDef {
    pub fn stage(&self, event: &str) -> Option<&StageDef> {
        self.stages.iter().find(|s| s.event == event)
    }

    /// Every problem of the workflow's shape, each with where it is and the path of stages that
    /// leads to it: unlinked ends, links to unknown events, unreachable stages, cycles that never
    /// reach `finish`, and actions that can never take effect.
    pub fn check(&self) -> Vec<(Location, String)> {
        let what = format!("workflow `{}`", self.id);
        let mut problems = Vec::new();
        let mut index: BTreeMap<&str, usize> = BTreeMap::new();
        for (i, s) in self.stages.iter().enumerate() {
            if let Some(p) = event_problem(&s.event) {
                problems.push((s.at.clone(), format!("{what}: {p}")));
            } else if let Some(&first) = index.get(s.event.as_str()) {
                let first = self.place(&self.stages[first].at);
                problems
                    .push((s.at.clone(), format!("{what}: event `{}` has two stages (the first at {first})", s.event)));
            } else {
                index.insert(&s.event, i);
            }
        }
        if !index.contains_key(START) {
            let hint = "add workflows.on(\"start\", ...): it runs when a conversation is set on the workflow";
            problems.push((self.at.clone(), format!("{what} has no `start` stage; {hint}")));
            return problems;
        }
        for s in &self.stages {
            self.check_stage(s, &index, &what, &mut problems);
        }

        // Edges to stages that exist; a raise of an event the workflow does not handle goes out only.
        let edges: Vec<Vec<(usize, &ActionDef)>> = self
            .stages
            .iter()
            .map(|s| {
                s.actions
                    .iter()
                    .flat_map(|a| a.action.leads_to().into_iter().map(move |e| (e, a)))
                    .filter_map(|(e, a)| index.get(e.as_str()).map(|&j| (j, a)))
                    .collect()
            })
            .collect();
        let finishes: Vec<bool> =
            self.stages.iter().map(|s| s.actions.iter().any(|a| matches!(a.action, Action::Finish { .. }))).collect();

        // Breadth first from the events that can come from outside, so each path is a shortest one.
        let sends = self.stages.iter().any(|s| s.actions.iter().any(|a| matches!(a.action, Action::Notify { .. })));
        let mut parent: Vec<Option<Option<usize>>> = vec![None; self.stages.len()];
        let mut order = Vec::new();
        let mut queue: VecDeque<usize> = VecDeque::new();
        for (&event, &i) in &index {
            let root = event == START || event.starts_with("custom:") || (event == NOTIFICATION_FAILED && sends);
            if root && parent[i].is_none() {
                parent[i] = Some(None);
                queue.push_back(i);
            }
        }
        // `start` first, so paths begin there when they can.
        queue.make_contiguous().sort_by_key(|&i| self.stages[i].event != START);
        while let Some(i) = queue.pop_front() {
            order.push(i);
            for &(j, _) in &edges[i] {
                if parent[j].is_none() {
                    parent[j] = Some(Some(i));
                    queue.push_back(j);
                }
            }
        }
        let path = |mut i: usize| {
            let mut steps = vec![i];
            while let Some(Some(p)) = parent[i] {
                steps.push(p);
                i = p;
            }
            steps.reverse();
            steps
        };

        for &i in &order {
            let s = &self.stages[i];
            let leads: Vec<(String, &ActionDef)> =
                s.actions.iter().flat_map(|a| a.action.leads_to().into_iter().map(move |e| (e, a))).collect();
            // A link to an unknown event is reported as that, not as an unlinked end too.
            let moves_on = leads.iter().any(|(e, a)| {
                index.contains_key(e.as_str()) || a.action.holds() || matches!(a.action, Action::Link { .. })
            });
            if !finishes[i] && !moves_on {
                let leg = self.show_path(&path(i));
                problems.push((
                    s.at.clone(),
                    format!("{what}: unlinked end: the leg {leg} ends without `finish` or `link`"),
                ));
            }
            for (event, a) in leads {
                if index.contains_key(event.as_str()) {
                    continue;
                }
                let leg = self.show_path(&path(i));
                let message = match &a.action {
                    Action::Link { .. } => {
                        let known: Vec<String> = index.keys().map(|k| k.to_string()).collect();
                        let hint = crate::rules::suggest(&event, known.iter());
                        format!("{what}: link to unknown event `{event}`{hint} (leg {leg})")
                    }
                    Action::Raise { .. } => continue,
                    _ => format!(
                        "{what}: unlinked end: nothing handles `{event}`, so the leg {leg} → {event} ends there; \
                         add workflows.on(\"{event}\", ...) ending in `finish` or `link`"
                    ),
                };
                problems.push((a.at.clone(), message));
            }
        }

        for (i, s) in self.stages.iter().enumerate() {
            // A second stage for an event is reported as such, not as unreachable too.
            if parent[i].is_some() || index.get(s.event.as_str()) != Some(&i) {
                continue;
            }
            let why = match s.event.split_once(':') {
                Some(("button", b)) => format!("no task it can reach has a button `{b}`"),
                Some(("timer", t)) => format!("no wait it can reach starts timer `{t}`"),
                _ if s.event == NOTIFICATION_FAILED => "no stage sends a notification".to_string(),
                _ => "nothing leads to it".to_string(),
            };
            problems.push((s.at.clone(), format!("{what}: stage `{}` is unreachable: {why}", s.event)));
        }

        // Stages from which `finish` can be reached, walking the edges backwards.
        let mut can_finish = finishes.clone();
        let mut changed = true;
        while changed {
            changed = false;
            for i in 0..self.stages.len() {
                if !can_finish[i] && edges[i].iter().any(|&(j, _)| can_finish[j]) {
                    can_finish[i] = true;
                    changed = true;
                }
            }
        }
        let mut reported: BTreeSet<usize> = BTreeSet::new();
        for &i in &order {
            if can_finish[i] || reported.contains(&i) {
                continue;
            }
            if let Some(cycle) = self.cycle_from(i, &edges, &can_finish) {
                reported.extend(cycle.iter().copied());
                let mut steps = path(cycle[0]);
                steps.extend(cycle.iter().skip(1));
                steps.push(cycle[0]);
                problems.push((
                    self.stages[cycle[0]].at.clone(),
                    format!("{what}: cycle with no way out: {} never reaches `finish`", self.show_path(&steps)),
                ));
            }
        }
        problems
    }

    /// Problems inside one stage: nothing to do, or actions that can never take effect.
    fn check_stage(&self, s: &StageDef, index: &BTreeMap<&str, usize>, what: &str, out: &mut Vec<(Location, String)>) {
        let stage = format!("{what}: stage `{}`", s.event);
        if s.actions.is_empty() {
            out.push((s.at.clone(), format!("{stage} has no actions")));
            return;
        }
        // Moving on at once: a link, a finish, or a raise the workflow handles itself.
        let leaves = |a: &Action| match a {
            Action::Link { .. } | Action::Finish { .. } => true,
            Action::Raise { event } => index.contains_key(format!("custom:{event}").as_str()),
            _ => false,
        };
        if let Some(k) = s.actions.iter().position(|a| matches!(a.action, Action::Link { .. } | Action::Finish { .. }))
        {
            if let Some(next) = s.actions.get(k + 1) {
                let after = s.actions[k].action.name();
                out.push((next.at.clone(), format!("{stage}: actions after `{after}` never run")));
            }
        }
        if let Some(leaving) = s.actions.iter().find(|a| leaves(&a.action)) {
            for held in s.actions.iter().filter(|a| a.action.holds()) {
                out.push((
                    held.at.clone(),
                    format!(
                        "{stage}: the {} is cancelled as soon as it starts: `{}` at {} leaves the stage",
                        held.action.name(),
                        leaving.action.name(),
                        self.place(&leaving.at)
                    ),
                ));
            }
        }
        for a in &s.actions {
            if let Action::Task { buttons, .. } = &a.action {
                if buttons.is_empty() {
                    out.push((a.at.clone(), format!("{stage}: a task needs at least one button")));
                }
                let mut seen = BTreeSet::new();
                for b in buttons.iter().filter(|b| !seen.insert(b.as_str())) {
                    out.push((a.at.clone(), format!("{stage}: button `{b}` is listed twice")));
                }
            }
        }
    }

    /// A cycle among stages that cannot finish, reachable from `from`, as stage indexes.
    fn cycle_from(&self, from: usize, edges: &[Vec<(usize, &ActionDef)>], can_finish: &[bool]) -> Option<Vec<usize>> {
        // Depth first; the stack is the current path, so an edge back into it closes a cycle.
        let mut done = vec![false; self.stages.len()];
        let mut stack: Vec<(usize, usize)> = vec![(from, 0)];
        while let Some(&(i, next)) = stack.last() {
            let targets: Vec<usize> = edges[i].iter().map(|&(j, _)| j).filter(|&j| !can_finish[j]).collect();
            let Some(&j) = targets.get(next) else {
                done[i] = true;
                stack.pop();
                continue;
            };
            if let Some(top) = stack.last_mut() {
                top.1 += 1;
            }
            if let Some(pos) = stack.iter().position(|&(p, _)| p == j) {
                return Some(stack[pos..].iter().map(|&(p, _)| p).collect());
            }
            if !done[j] {
                stack.push((j, 0));
            }
        }
        None
    }

    /// `start (line 4) → button:no_answer (line 9)`.
    fn show_path(&self, steps: &[usize]) -> String {
        steps
            .iter()
            .map(|&i| format!("{} ({})", self.stages[i].event, self.place(&self.stages[i].at)))
            .collect::<Vec<_>>()
            .join(" → ")
    }

    /// `line 4` in the workflow's own file, `other.lua:4` elsewhere.
    fn place(&self, at: &Location) -> String {
        match at.line {
            Some(line) if at.file == self.at.file => format!("line {line}"),
            Some(line) => format!("{}:{line}", at.file),
            None => at.file.clone(),
        }
    }
}
