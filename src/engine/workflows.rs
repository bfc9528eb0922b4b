//! Workflows in the engine: instances started on conversations, stages entered and their
//! actions run, tasks and their buttons, waits, and instances carried over a reload.
//!
//! An instance is engine state like a conversation: every change comes from an input or a timer,
//! so replaying the journal rebuilds it, open tasks and pending waits included.

use crate::partition::Numbering;
use std::sync::Arc;

use super::standby::StandbyEvent;
use super::*;
use crate::instance::{HistoryStep, Instance, InstanceStatus, Task};
use crate::rules::{DeliveryChannel, Recipients};
use crate::template::Kind;
use crate::workflow::{Action, NOTIFICATION_FAILED, START};

/// Stages one event may pass through at once (by links) before the instance is flagged. The
/// load-time check already rejects cycles of links; this only guards the host.
const MAX_HOPS: usize = 64;

/// The engine's workflow instances: every live one and the latest finished ones, the ids the
/// next instance and task get, and the numbers people see for stages. Indexing it by an
/// instance's id gives the instance.
pub(super) struct Workflows {
    instances: BTreeMap<u64, Instance>,
    /// Finished instances kept for reading back, oldest first.
    finished: VecDeque<u64>,
    next_instance: u64,
    next_task: u64,
    stage_numbers: StageNumbers,
    /// How instance and task ids go on (their partition's numbering).
    numbering: Numbering,
}

impl std::ops::Index<u64> for Workflows {
    type Output = Instance;
    fn index(&self, id: u64) -> &Instance {
        &self.instances[&id]
    }
}

impl Workflows {
    pub(super) fn get(&self, id: u64) -> Option<&Instance> {
        self.instances.get(&id)
    }

    pub(super) fn get_mut(&mut self, id: u64) -> Option<&mut Instance> {
        self.instances.get_mut(&id)
    }

    /// Every instance kept, oldest first.
    pub(super) fn iter(&self) -> impl Iterator<Item = &Instance> {
        self.instances.values()
    }

    pub(super) fn len(&self) -> usize {
        self.instances.len()
    }

    /// The live instance that sent notification `id`.
    fn sender_of(&mut self, notification: u64) -> Option<&mut Instance> {
        self.instances.values_mut().find(|i| i.is_live() && i.notifications.contains(&notification))
    }

    /// Adds the instance `make` builds with the next id; returns the id.
    fn start(&mut self, make: impl FnOnce(u64) -> Instance) -> u64 {
        let id = self.next_instance;
        self.next_instance = self.numbering.after(id);
        self.instances.insert(id, make(id));
        id
    }

    fn next_task(&mut self) -> u64 {
        let task = self.next_task;
        self.next_task = self.numbering.after(task);
        task
    }

    /// Keeps a finished instance for reading back, forgetting the oldest beyond `keep` and
    /// those that finished before `cutoff`.
    fn retire(&mut self, id: u64, keep: usize, cutoff: Option<Timestamp>) {
        self.finished.push_back(id);
        while let Some(&oldest) = self.finished.front() {
            let finished_at = self.instances.get(&oldest).and_then(|i| i.history.last()).map(|h| h.at);
            let too_old = cutoff.is_some_and(|cutoff| finished_at.is_some_and(|t| t < cutoff));
            if self.finished.len() <= keep && !too_old {
                break;
            }
            self.finished.pop_front();
            self.instances.remove(&oldest);
        }
    }

    /// Every instance by id, the finished ones in the order they finished, the next instance
    /// and task ids, and the stage numbers: everything a snapshot keeps.
    pub(super) fn parts(&self) -> (&BTreeMap<u64, Instance>, &VecDeque<u64>, u64, u64, &StageNumbers) {
        (&self.instances, &self.finished, self.next_instance, self.next_task, &self.stage_numbers)
    }

    /// No workflow instances yet, numbered as `numbering` says (their partition's).
    pub(super) fn new(numbering: Numbering) -> Self {
        let (first, none) = (numbering.first, StageNumbers::default());
        Workflows::from_parts(BTreeMap::new(), VecDeque::new(), first, first, none, numbering)
    }

    /// Workflows from their [`Workflows::parts`].
    pub(super) fn from_parts(
        instances: BTreeMap<u64, Instance>,
        finished: VecDeque<u64>,
        next_instance: u64,
        next_task: u64,
        stage_numbers: StageNumbers,
        numbering: Numbering,
    ) -> Self {
        Workflows { instances, finished, next_instance, next_task, stage_numbers, numbering }
    }

    pub(super) fn stage_numbers(&self) -> &StageNumbers {
        &self.stage_numbers
    }

    pub(super) fn stage_numbers_mut(&mut self) -> &mut StageNumbers {
        &mut self.stage_numbers
    }
}

impl Engine {
    /// Every instance kept: the live ones and the latest finished ones, oldest first.
    pub fn instances(&self) -> impl Iterator<Item = &Instance> {
        self.workflows.iter()
    }

    pub fn instance(&self, id: u64) -> Option<&Instance> {
        self.workflows.get(id)
    }

    /// The open tasks, oldest first, each with its instance.
    pub fn open_tasks(&self) -> Vec<(&Instance, &Task)> {
        let mut tasks: Vec<(&Instance, &Task)> =
            self.workflows.iter().flat_map(|i| i.tasks.iter().map(move |t| (i, t))).collect();
        tasks.sort_by_key(|(_, t)| t.id);
        tasks
    }

    /// The instance whose stage has the open task `task`.
    pub fn task_instance(&self, task: u64) -> Option<&Instance> {
        self.workflows.iter().find(|i| i.task(task).is_some())
    }

    /// The number people see for the stage of `event` in `workflow`.
    pub fn stage_number(&self, workflow: &str, event: &str) -> Option<u32> {
        self.workflows.stage_numbers().get(workflow, event)
    }

    /// Sets `conversation` on `workflow`: a new instance enters its `start` stage.
    pub(super) fn start_workflow(
        &mut self,
        conversation: &str,
        workflow: &str,
        why: String,
    ) -> Result<u64, InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let unit = &self.rules.queues[c.queue as usize].unit;
        // Another unit's workflow is answered like one that does not exist: units are walls,
        // and an answer must not tell whether another unit has something of that id.
        if self.rules.workflows.get(workflow).is_none_or(|def| def.unit != *unit) {
            return Err(InputError::UnknownWorkflow(workflow.into()));
        }
        if let Some(running) = c.workflows.iter().find(|&&i| self.workflows[i].workflow == workflow) {
            return Err(InputError::Illegal(format!(
                "conversation `{conversation}` is already on workflow `{workflow}` (instance {running})"
            )));
        }
        let (unit, conversation, now) = (unit.clone(), c.id.clone(), self.now);
        let id = self.workflows.start(|id| Instance {
            id,
            workflow: workflow.to_string(),
            unit,
            conversation: conversation.clone(),
            status: InstanceStatus::Running,
            started: now,
            event: START.into(),
            stage: 0,
            entered: now,
            note: None,
            tasks: Vec::new(),
            waits: Vec::new(),
            notifications: Vec::new(),
            history: Vec::new(),
        });
        self.conversations.get_mut(&conversation).expect("checked above").workflows.push(id);
        self.emit(Update::WorkflowStarted { conversation, instance: id, workflow: workflow.into() });
        self.enter(id, START.into(), why);
        Ok(id)
    }

    /// Leaves the instance's stage and enters the stage of `event`, running its actions in order.
    /// A link goes on to the next stage at once; an event the workflow has no stage for flags it.
    fn enter(&mut self, id: u64, mut event: String, mut note: String) {
        for _ in 0..MAX_HOPS {
            self.leave_stage(id);
            let Some(instance) = self.workflows.get(id) else { return };
            let workflow = instance.workflow.clone();
            let conversation = instance.conversation.clone();
            let unit = instance.unit.clone();
            let Some(stage) = self.rules.workflows.get(&workflow).and_then(|d| d.stage(&event)).cloned() else {
                let reason = match self.rules.workflows.contains_key(&workflow) {
                    true => format!("workflow `{workflow}` has no stage for `{event}` any more"),
                    false => format!("workflow `{workflow}` is no longer defined"),
                };
                self.flag(id, &event, reason);
                return;
            };
            let number = self.workflows.stage_numbers().get(&workflow, &event).unwrap_or(0);
            let now = self.now;
            let instance = self.workflows.get_mut(id).expect("looked up above");
            instance.status = InstanceStatus::Running;
            instance.event = event.clone();
            instance.stage = number;
            instance.entered = now;
            instance.history.push(HistoryStep { at: now, event: event.clone(), stage: Some(number), note });
            let wf: Arc<str> = Arc::from(workflow.as_str());
            self.emit(Update::StageEntered {
                conversation: conversation.clone(),
                instance: id,
                workflow: wf.clone(),
                stage: number,
                event: event.clone(),
            });
            let mut link = None;
            for a in &stage.actions {
                match &a.action {
                    Action::Task { title, buttons } => {
                        let task = self.workflows.next_task();
                        let t = Task { id: task, title: title.clone(), buttons: buttons.clone(), opened: now };
                        self.workflows.get_mut(id).expect("live").tasks.push(t);
                        self.emit(Update::TaskOpened {
                            conversation: conversation.clone(),
                            task,
                            instance: id,
                            workflow: wf.clone(),
                            stage: number,
                            title: title.clone(),
                            buttons: buttons.clone(),
                        });
                    }
                    Action::Notify { template, channel, to } => {
                        self.workflow_notify(id, &event, number, template, *channel, to);
                    }
                    Action::Wait { after, timer } => {
                        let kind = TimerKind::WorkflowWait { instance: id, timer: Arc::from(timer.as_str()) };
                        let key = self.timers.schedule(now + *after, kind);
                        self.workflows.get_mut(id).expect("live").waits.push((key, timer.clone()));
                    }
                    Action::Set { field, value } => self.set_field(&conversation, field, value.clone()),
                    Action::Route { field, value, function } => {
                        let value = match function {
                            None => Ok(value.clone()),
                            Some(f) => {
                                let data = self.conversation_data(&conversation);
                                self.scripts.scope(&unit, self.now);
                                self.scripts.compute(f, &data)
                            }
                        };
                        let routed =
                            value.and_then(|v| crate::workflow::routing_value(field, &v)).and_then(|(p, r)| {
                                self.update_conversation(&conversation, Default::default(), r, p)
                                    .map_err(|e| e.to_string())
                            });
                        if let Err(e) = routed {
                            let message = format!("workflow `{workflow}` route by {field}: {e}");
                            self.emit(Update::Log { level: "warn", message });
                        }
                    }
                    Action::SetComputed { field, function } => {
                        let data = self.conversation_data(&conversation);
                        self.scripts.scope(&unit, self.now);
                        match self.scripts.compute(function, &data) {
                            Ok(value) => self.set_field(&conversation, field, value),
                            Err(e) => {
                                let message = format!("workflow `{workflow}` set {field}: {e}");
                                self.emit(Update::Log { level: "error", message });
                            }
                        }
                    }
                    // Heard by standby rules and workflows once this step's actions are done. It
                    // cannot be refused: the conversation exists and the name was checked at load.
                    Action::Raise { event: name } => {
                        let _ = self.raise(&conversation, name);
                    }
                    Action::Standby { rule } => {
                        let Some(rule) = self.rules.standby.get(rule).cloned() else { continue };
                        let e = self.stage_event(id, number, &event);
                        self.apply_rule(&rule, &e);
                    }
                    Action::Link { event: target } => {
                        link = Some(target.clone());
                        break;
                    }
                    Action::Finish { reason } => {
                        self.finish(id, reason.clone());
                        return;
                    }
                }
            }
            let Some(target) = link else { return };
            note = format!("linked from {event}");
            event = target;
        }
        self.flag(id, &event, format!("more than {MAX_HOPS} links in a row"));
    }

    /// Closes the open tasks of the instance's stage and cancels its waits.
    fn leave_stage(&mut self, id: u64) {
        let Some(instance) = self.workflows.get_mut(id) else { return };
        let tasks = std::mem::take(&mut instance.tasks);
        let waits = std::mem::take(&mut instance.waits);
        let conversation = instance.conversation.clone();
        for (key, _) in waits {
            self.timers.cancel(Some(key));
        }
        for t in tasks {
            let conversation = conversation.clone();
            self.emit(Update::TaskClosed { conversation, task: t.id, instance: id, button: None, by: None });
        }
    }

    fn finish(&mut self, id: u64, reason: Option<String>) {
        self.leave_stage(id);
        let now = self.now;
        let Some(instance) = self.workflows.get_mut(id) else { return };
        instance.status = InstanceStatus::Finished;
        instance.note = reason.clone();
        let note = reason.clone().map_or_else(|| "finished".to_string(), |r| format!("finished: {r}"));
        instance.history.push(HistoryStep { at: now, event: instance.event.clone(), stage: None, note });
        let (conversation, workflow) = (instance.conversation.clone(), Arc::from(instance.workflow.as_str()));
        self.emit(Update::WorkflowFinished { conversation: conversation.clone(), instance: id, workflow, reason });
        let cutoff = self.config.retain_ended_for.map(|d| now - d);
        self.workflows.retire(id, self.config.retain_ended, cutoff);
        // An ended conversation stayed in memory for its workflows; now it may go like any other.
        if let Some(c) = self.conversations.get_mut(&conversation) {
            c.workflows.retain(|&i| i != id);
            if c.workflows.is_empty() && c.status.is_ended() && !self.ended.contains(&conversation) {
                self.forget_later(conversation);
            }
        }
    }

    /// Stops the instance until a person resolves it; it keeps its history, nothing is dropped.
    fn flag(&mut self, id: u64, event: &str, reason: String) {
        self.leave_stage(id);
        let now = self.now;
        let Some(instance) = self.workflows.get_mut(id) else { return };
        instance.status = InstanceStatus::Flagged;
        instance.note = Some(reason.clone());
        instance.history.push(HistoryStep {
            at: now,
            event: event.to_string(),
            stage: None,
            note: format!("flagged: {reason}"),
        });
        let (conversation, workflow) = (instance.conversation.clone(), Arc::from(instance.workflow.as_str()));
        self.emit(Update::WorkflowFlagged { conversation, instance: id, workflow, reason });
    }

    /// A button of an open task: the task closes and its instance gets `button:NAME`.
    pub(super) fn push_button(&mut self, task: u64, button: &str, by: Option<String>) -> Result<(), InputError> {
        let id = self.task_instance(task).ok_or_else(|| InputError::UnknownTask(task.to_string()))?.id;
        let instance = self.workflows.get_mut(id).expect("found above");
        let t = instance.task(task).expect("found above");
        if !t.buttons.iter().any(|b| b == button) {
            let message = format!("task {task} has no button `{button}` (its buttons: {})", t.buttons.join(", "));
            return Err(InputError::Invalid { field: "button", message });
        }
        instance.tasks.retain(|t| t.id != task);
        let conversation = instance.conversation.clone();
        let note = match &by {
            Some(who) => format!("`{button}` pushed by {who}"),
            None => format!("`{button}` pushed"),
        };
        self.emit(Update::TaskClosed { conversation, task, instance: id, button: Some(button.into()), by });
        self.enter(id, format!("button:{button}"), note);
        Ok(())
    }

    /// A wait of the instance's stage is over.
    pub(super) fn wait_over(&mut self, id: u64, timer: &str) {
        let Some(instance) = self.workflows.get_mut(id) else { return };
        instance.waits.retain(|(_, t)| t != timer);
        self.enter(id, format!("timer:{timer}"), format!("timer `{timer}` elapsed"));
    }

    /// A person says how a flagged instance goes on: at the stage of `event`, or it finishes.
    pub(super) fn resolve(&mut self, id: u64, event: Option<String>) -> Result<(), InputError> {
        let instance = self.workflows.get(id).ok_or_else(|| InputError::UnknownInstance(id.to_string()))?;
        if instance.status != InstanceStatus::Flagged {
            let status = format!("{:?}", instance.status).to_lowercase();
            return Err(InputError::Illegal(format!("instance {id} is {status}; only a flagged one needs resolving")));
        }
        let Some(event) = event else {
            self.finish(id, Some("resolved by a person".into()));
            return Ok(());
        };
        let Some(def) = self.rules.workflows.get(&instance.workflow) else {
            let message = format!(
                "workflow `{}` is no longer defined; resolve without an event to finish the instance",
                instance.workflow
            );
            return Err(InputError::Invalid { field: "event", message });
        };
        if def.stage(&event).is_none() {
            let events: Vec<&str> = def.stages.iter().map(|s| s.event.as_str()).collect();
            let message = format!("workflow `{}` has no stage `{event}` (its events: {})", def.id, events.join(", "));
            return Err(InputError::Invalid { field: "event", message });
        }
        self.enter(id, event, "resolved by a person".into());
        Ok(())
    }

    /// What an event about a conversation means to workflows: its queue may start one, and
    /// running instances with a stage for a custom event move there.
    pub(super) fn workflow_event(&mut self, e: &StandbyEvent) {
        if let Some(workflow) = self.rules.queues[e.queue as usize].workflows.get(&e.event).cloned() {
            let queue = self.rules.queues[e.queue as usize].id.clone();
            let why = format!("queue `{queue}` sets it on `{}`", e.event);
            match self.start_workflow(&e.conversation, &workflow, why) {
                // Already on it: a queue's trigger does nothing then.
                Ok(_) | Err(InputError::Illegal(_)) => {}
                Err(err) => self.emit(Update::Log { level: "error", message: format!("queue `{queue}`: {err}") }),
            }
        }
        if !e.event.starts_with("custom:") {
            return;
        }
        let Some(c) = self.conversations.get(&e.conversation) else { return };
        let handling: Vec<u64> = c
            .workflows
            .iter()
            .copied()
            .filter(|i| {
                let instance = &self.workflows[*i];
                instance.status == InstanceStatus::Running
                    && self.rules.workflows.get(&instance.workflow).is_some_and(|d| d.stage(&e.event).is_some())
            })
            .collect();
        for id in handling {
            self.enter(id, e.event.clone(), format!("{} raised", e.event));
        }
    }

    /// A notification an instance sent went dead: its `notification_failed` stage, if it has one.
    pub(super) fn workflow_notification_failed(&mut self, notification: u64, error: &str) {
        let Some(instance) = self.workflows.sender_of(notification) else {
            return;
        };
        let note = format!("notification {notification} failed: {error}");
        let handled = instance.status == InstanceStatus::Running
            && self.rules.workflows.get(&instance.workflow).is_some_and(|d| d.stage(NOTIFICATION_FAILED).is_some());
        if handled {
            let id = instance.id;
            self.enter(id, NOTIFICATION_FAILED.into(), note);
        } else {
            let step = HistoryStep { at: self.now, event: NOTIFICATION_FAILED.into(), stage: None, note };
            instance.history.push(step);
        }
    }

    /// After a reload: an instance whose workflow or current stage is gone is flagged for a
    /// person; the others go on from where they are, open tasks and waits included.
    pub(super) fn recheck_instances(&mut self) {
        let lost: Vec<(u64, String, String)> = self
            .workflows
            .iter()
            .filter(|i| i.status == InstanceStatus::Running)
            .filter_map(|i| match self.rules.workflows.get(&i.workflow) {
                None => Some((i.id, i.event.clone(), format!("workflow `{}` was removed", i.workflow))),
                Some(d) if d.stage(&i.event).is_none() => Some((
                    i.id,
                    i.event.clone(),
                    format!("workflow `{}` changed and no longer has a stage for `{}`", i.workflow, i.event),
                )),
                Some(_) => None,
            })
            .collect();
        for (id, event, reason) in lost {
            self.flag(id, &event, reason);
        }
    }

    /// A workflow's own message: to each recipient, no duplicate check (each stage entry is new).
    fn workflow_notify(
        &mut self,
        id: u64,
        event: &str,
        stage: u32,
        template: &str,
        channel: DeliveryChannel,
        to: &Recipients,
    ) {
        let instance = &self.workflows[id];
        let (workflow, unit) = (instance.workflow.clone(), instance.unit.clone());
        let e = self.stage_event(id, stage, event);
        let sender = format!("workflow:{workflow}");
        let recipients = match self.recipients(to, &sender, &unit, &e) {
            Ok(list) => list,
            Err(message) => {
                self.emit(Update::Log { level: "error", message: format!("workflow `{workflow}`: {message}") });
                return;
            }
        };
        for recipient in recipients {
            if let Some(n) = self.message(&e, &sender, template, &recipient, channel, Kind::Notification, None) {
                self.workflows.get_mut(id).expect("live").notifications.push(n);
            }
        }
    }

    /// What the messages of a stage's actions are about: its event, and which workflow and stage
    /// the reason names (templates see them as `event.type` and `event.reason`).
    fn stage_event(&self, id: u64, stage: u32, event: &str) -> StandbyEvent {
        let instance = &self.workflows[id];
        let c = &self.conversations[&instance.conversation];
        StandbyEvent {
            conversation: c.id.clone(),
            queue: c.queue,
            event: event.to_string(),
            reason: format!("workflow `{}`, stage {stage} ({event})", instance.workflow),
            failed: None,
        }
    }

    /// Sets an attribute of the conversation; a waiting one is routed again at once.
    fn set_field(&mut self, conversation: &Arc<str>, field: &str, value: serde_json::Value) {
        let Some(c) = self.conversations.get_mut(conversation) else { return };
        c.data.attributes.insert(field.to_string(), value.clone());
        let waiting = c.status.is_waiting();
        self.refresh_conversation_view(conversation);
        self.emit(Update::FieldSet { conversation: conversation.clone(), field: field.into(), value });
        if waiting {
            self.decide_because(conversation, format!("changed by a workflow: attributes.{field}"));
        }
    }
}
