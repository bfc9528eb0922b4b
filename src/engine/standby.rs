//! Standby duty in the engine: the events rules watch, whom they notify, and the messages.
//!
//! Updates that matter to standby rules are noted as they are emitted and handled once the step
//! has settled, so a rule sees the conversation as the step left it. Every message is decided
//! here, on the engine thread, from engine state and the step's clock reading: replaying the
//! journal makes the same messages with the same ids, and the runtime writes them to the outbox
//! with the step that caused them.

use crate::partition::Numbering;
use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::conversation::Sent;
use crate::notification::Notification;
use crate::rules::{DeliveryChannel, Recipients, StandbyRule};
use crate::template::{
    AgentParams, ConversationParams, EventParams, Kind, Params, PartyParams, QueueParams, RuleParams,
};

/// Rounds of custom events raised by the handling of earlier ones, at most, per step.
const MAX_ROUNDS: usize = 8;

/// Something a standby rule may act on, noted during a step.
#[derive(Clone, Debug)]
pub(super) enum Watched {
    Event(StandbyEvent),
    /// An agent accepted the conversation: those notified who did not answer get the clearing message.
    Answered {
        conversation: Arc<str>,
        agent: Arc<str>,
    },
}

#[derive(Clone, Debug)]
pub(super) struct StandbyEvent {
    pub conversation: Arc<str>,
    /// The queue whose rules hear of it (for an overflow, the queue it left).
    pub queue: u32,
    /// `missed`, `custom:vip`, ...
    pub event: String,
    pub reason: String,
    /// For `delivery_failed`: whose message failed, and by which channel.
    pub failed: Option<(String, DeliveryChannel)>,
}

/// The engine's standby bookkeeping: what the step in progress noted for standby rules and
/// workflows, and the id the next notification gets (ids are state: a replay makes the same ones).
pub(super) struct Standby {
    watched: Vec<Watched>,
    next_notification: u64,
    numbering: Numbering,
}

impl Standby {
    /// The id the next notification gets, and whether the step in progress noted anything
    /// (nothing is, between steps): what a snapshot needs.
    pub(super) fn at_rest(&self) -> (u64, bool) {
        (self.next_notification, self.watched.is_empty())
    }

    /// Standby bookkeeping numbering notifications as `numbering` says (its partition's).
    pub(super) fn new(numbering: Numbering) -> Self {
        Standby::resume(numbering.first, numbering)
    }

    /// Standby bookkeeping that goes on from a snapshot's next notification id.
    pub(super) fn resume(next_notification: u64, numbering: Numbering) -> Self {
        Standby { watched: Vec::new(), next_notification, numbering }
    }

    fn note(&mut self, watched: impl IntoIterator<Item = Watched>) {
        self.watched.extend(watched);
    }

    /// What was noted since the last call.
    fn take(&mut self) -> Vec<Watched> {
        std::mem::take(&mut self.watched)
    }

    /// Drops what is still noted (what the last round raised beyond the rounds allowed).
    fn forget(&mut self) {
        self.watched.clear();
    }

    fn next_id(&mut self) -> u64 {
        let id = self.next_notification;
        self.next_notification = self.numbering.after(id);
        id
    }
}

impl Engine {
    /// Notes what an update means to the standby rules of the conversation's queue (called for
    /// every update emitted). Conversations whose queue no rule watches cost one lookup.
    pub(super) fn watch(&mut self, update: &Update) {
        if !self.rules.listens {
            return;
        }
        let watched = match update {
            Update::TimedOut { conversation, agents } => self.noted(conversation, None, "missed", || {
                let agents: Vec<&str> = agents.iter().map(|a| crate::unit::external(a)).collect();
                format!("{} did not answer in time", agents.join(", "))
            }),
            Update::Declined { conversation, agent } => {
                self.noted(conversation, None, "missed", || format!("{} declined", crate::unit::external(agent)))
            }
            Update::Abandoned { conversation }
                if self.conversations.get(conversation).is_some_and(|c| c.status.is_waiting()) =>
            {
                self.noted(conversation, None, "abandoned", || "the customer left while waiting".into())
            }
            Update::MaxWaitExceeded { conversation, .. } => {
                self.noted(conversation, None, "max_wait", || "waited longer than the queue allows".into())
            }
            // The queue it left hears of it, not the one it went to.
            Update::Overflowed { conversation, from, to } => {
                let from = self.rules.queue_index(from).map(|q| q as u32);
                self.noted(conversation, from, "overflowed", || format!("overflowed to {to}"))
            }
            Update::GaveUp { conversation, reason } => self.noted(conversation, None, "gave_up", || reason.clone()),
            Update::Exhausted { conversation, reason } => {
                self.noted(conversation, None, "exhausted", || reason.clone())
            }
            // Only conversations someone was notified about have clearing messages to send.
            Update::Accepted { conversation, agent }
                if self.conversations.get(conversation).is_some_and(|c| !c.notified.is_empty()) =>
            {
                Some(Watched::Answered { conversation: conversation.clone(), agent: agent.clone() })
            }
            _ => None,
        };
        self.standby.note(watched);
    }

    /// An event about `conversation` for the rules of `queue` (its current queue by default),
    /// or nothing if that queue has no standby rules.
    fn noted(
        &self,
        conversation: &str,
        queue: Option<u32>,
        event: &str,
        reason: impl FnOnce() -> String,
    ) -> Option<Watched> {
        let c = self.conversations.get(conversation)?;
        let queue = queue.unwrap_or(c.queue);
        let q = &self.rules.queues[queue as usize];
        if q.standby.is_empty() && q.workflows.is_empty() {
            return None;
        }
        let (conversation, event, reason) = (c.id.clone(), event.to_string(), reason());
        Some(Watched::Event(StandbyEvent { conversation, queue, event, reason, failed: None }))
    }

    /// Handles what was noted during the step: standby rules and workflows hear of each event.
    /// Custom events raised and workflows started by scripts meanwhile (in a policy, or in a
    /// `notify` function of this round) are taken at the start of each round.
    pub(super) fn run_standby(&mut self) {
        // A script that raises an event from the rule that hears it would otherwise never stop.
        for _ in 0..MAX_ROUNDS {
            // What scripts asked for while the last round was handled (a workflow's `set`
            // re-routes a conversation, and its policy may start a workflow) is this round's.
            let (raised, started, watched) =
                (self.scripts.take_raised(), self.scripts.take_started(), self.standby.take());
            if raised.is_empty() && started.is_empty() && watched.is_empty() {
                break;
            }
            // Scripts name conversations by id or key (`ctx.conversation.key`).
            for (conversation, name) in raised {
                let raised = self.resolve_conversation(&conversation, |_| true).and_then(|c| self.raise(&c, &name));
                if let Err(e) = raised {
                    self.emit(Update::Log { level: "warn", message: format!("standby.raise(\"{name}\"): {e}") });
                }
            }
            for (workflow, conversation) in started {
                let started = self
                    .resolve_conversation(&conversation, |_| true)
                    .and_then(|c| self.start_workflow(&c, &workflow, "set by a script".into()));
                if let Err(e) = started {
                    let message = format!("workflows.start(\"{workflow}\", \"{conversation}\"): {e}");
                    self.emit(Update::Log { level: "warn", message });
                }
            }
            for w in watched {
                match w {
                    Watched::Event(e) => {
                        let missed = e.event == "missed";
                        self.standby_event(&e);
                        self.workflow_event(&e);
                        // Unless the policy already said so (`policies.exhausted`) since the last offer.
                        if missed && self.exhausted(&e.conversation) {
                            let reason = "every agent of the queue was offered it and none answered".into();
                            let e = StandbyEvent { event: "exhausted".into(), reason, ..e };
                            self.standby_event(&e);
                            self.workflow_event(&e);
                        }
                    }
                    Watched::Answered { conversation, agent } => self.clear(&conversation, &agent),
                }
            }
        }
        self.standby.forget();
    }

    /// A custom event about a conversation (from the API or `standby.raise`).
    pub(super) fn raise(&mut self, conversation: &str, name: &str) -> Result<(), InputError> {
        let name = name.strip_prefix("custom:").unwrap_or(name);
        if name.is_empty() {
            return Err(InputError::Invalid { field: "event", message: "the event needs a name".into() });
        }
        self.note_input(conversation, format!("custom:{name}"), String::new(), None)
    }

    /// A notification went dead: rules watching `delivery_failed` may try another way.
    pub(super) fn delivery_failed(
        &mut self,
        conversation: &str,
        recipient: String,
        channel: DeliveryChannel,
        error: String,
    ) -> Result<(), InputError> {
        self.note_input(conversation, "delivery_failed".into(), error, Some((recipient, channel)))
    }

    /// Notes an event an input names, refusing an unknown conversation.
    fn note_input(
        &mut self,
        conversation: &str,
        event: String,
        reason: String,
        failed: Option<(String, DeliveryChannel)>,
    ) -> Result<(), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let e = StandbyEvent { conversation: c.id.clone(), queue: c.queue, event, reason, failed };
        self.standby.note([Watched::Event(e)]);
        Ok(())
    }

    /// Whether every member of the conversation's queue has been offered it there in this
    /// round and none answered, and the policy has not already said so.
    fn exhausted(&self, id: &str) -> bool {
        let Some(c) = self.conversations.get(id) else { return false };
        let q = &self.queues[c.queue as usize];
        !q.members.is_empty()
            && c.status.is_waiting()
            && !c.exhausted
            && q.members.iter().all(|&ix| {
                let agent = &self.agents[ix as usize].id;
                c.attempts[c.round_start..].iter().any(|a| {
                    a.agent == *agent
                        && a.queue == q.id
                        && matches!(a.outcome, AttemptOutcome::TimedOut | AttemptOutcome::Declined)
                })
            })
    }

    fn standby_event(&mut self, e: &StandbyEvent) {
        let rules: Vec<StandbyRule> = self.rules.queues[e.queue as usize]
            .standby
            .iter()
            .filter_map(|id| self.rules.standby.get(id))
            .filter(|r| r.watches(&e.event))
            .cloned()
            .collect();
        for rule in rules {
            self.apply_rule(&rule, e);
        }
    }

    /// Sends `rule`'s notification about `e` to each of its recipients by each of its channels.
    pub(super) fn apply_rule(&mut self, rule: &StandbyRule, e: &StandbyEvent) {
        let recipients = match self.recipients(&rule.notify, &rule.id, &rule.unit, e) {
            Ok(list) => list,
            Err(message) => {
                self.emit(Update::Log { level: "error", message: format!("standby rule `{}`: {message}", rule.id) });
                return;
            }
        };
        for recipient in recipients {
            for &channel in &rule.channels {
                self.notify(e, rule, &recipient, channel, Kind::Notification, None);
            }
        }
    }

    /// Whom `notify` names for `e`, as agent keys, checked to be agents of `unit`. `owner` is the standby rule
    /// (or workflow) asking, whose Lua function a [`Recipients::Function`] is.
    pub(super) fn recipients(
        &mut self,
        notify: &Recipients,
        owner: &str,
        unit: &str,
        e: &StandbyEvent,
    ) -> Result<Vec<Arc<str>>, String> {
        let list = match notify {
            Recipients::Agents(list) => list.clone(),
            Recipients::Schedule(s) => match self.rules.schedules.get(s).and_then(|s| s.on_duty(self.now)) {
                Some(duty) => duty.agents,
                None => return Err(format!("nobody is on duty in schedule `{s}` at {}", self.now)),
            },
            Recipients::FailedRecipient => e.failed.iter().map(|(r, _)| r.clone()).collect(),
            Recipients::Function => {
                let c = &self.conversations[&e.conversation];
                let arg = json!({
                    "type": e.event,
                    "reason": e.reason,
                    "conversation": crate::unit::external(&c.id),
                    "key": c.id.as_ref(),
                    "queue": self.queues[e.queue as usize].id.as_ref(),
                    "caller": c.data.caller,
                    "service": c.data.service,
                    "attempts": c.attempts.iter().map(|a| json!({"agent": crate::unit::external(&a.agent), "outcome": a.outcome.as_str()})).collect::<Vec<_>>(),
                    "now": self.now.as_secs_f64(),
                });
                self.scripts.scope(unit, self.now);
                self.scripts.recipients(owner, &arg)?
            }
        };
        // Agent ids live per unit: the rule's unit says whose `id` is meant.
        list.iter()
            .map(|id| match self.agents.of_unit(unit, id) {
                Ok(ix) if self.agents[ix as usize].def.unit == unit => Ok(self.agents[ix as usize].id.clone()),
                _ => Err(format!("notify names `{}`, who is not an agent of unit `{unit}`", crate::unit::external(id))),
            })
            .collect()
    }

    /// Clearing messages once `agent` answered: to everyone notified about the conversation who
    /// is not `agent`, by the channels they were notified by.
    fn clear(&mut self, conversation: &Arc<str>, agent: &Arc<str>) {
        let Some(c) = self.conversations.get(conversation) else { return };
        let sent: Vec<Sent> =
            c.notified.iter().filter(|s| s.kind == Kind::Notification && s.recipient != **agent).cloned().collect();
        let e = StandbyEvent {
            conversation: conversation.clone(),
            queue: c.queue,
            event: "answered".into(),
            reason: format!("{} answered", crate::unit::external(agent)),
            failed: None,
        };
        for s in sent {
            let Some(rule) = self.rules.standby.get(&s.rule).filter(|r| r.clearing.is_some()).cloned() else {
                continue;
            };
            self.notify(&e, &rule, &s.recipient, s.channel, Kind::Clearing, Some(agent));
        }
    }

    /// Makes one message of a standby rule, unless the same one was already sent about this
    /// conversation.
    fn notify(
        &mut self,
        e: &StandbyEvent,
        rule: &StandbyRule,
        recipient: &str,
        channel: DeliveryChannel,
        kind: Kind,
        answered_by: Option<&Arc<str>>,
    ) {
        let Some(c) = self.conversations.get(&e.conversation) else { return };
        let duplicate = c
            .notified
            .iter()
            .any(|s| s.rule == rule.id && s.recipient == recipient && s.channel == channel && s.kind == kind);
        if duplicate {
            return;
        }
        let template = match kind {
            Kind::Notification => rule.template.clone(),
            Kind::Clearing => rule.clearing.clone().unwrap_or_default(),
        };
        let Some(id) = self.message(e, &rule.id, &template, recipient, channel, kind, answered_by) else { return };
        let sent = Sent { rule: rule.id.clone(), recipient: recipient.to_string(), channel, kind, id };
        self.conversations.get_mut(&e.conversation).expect("checked above").notified.push(sent);
    }

    /// Makes one message from `template` for `recipient` and puts it in the outbox (as an
    /// update); its id, or `None` when it cannot be made (no address, a template error: logged).
    /// `rule` is who sends it: a standby rule's id, or `workflow:ID`.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn message(
        &mut self,
        e: &StandbyEvent,
        rule: &str,
        template: &str,
        recipient: &str,
        channel: DeliveryChannel,
        kind: Kind,
        answered_by: Option<&Arc<str>>,
    ) -> Option<u64> {
        let queue = self.conversations.get(&e.conversation)?.queue;
        let agent = &self.agents[self.agents.keyed(recipient)? as usize];
        let address = match channel {
            DeliveryChannel::Email => agent.def.email.clone(),
            DeliveryChannel::Sms => agent.def.phone.clone(),
            DeliveryChannel::Webhook => Some(String::new()),
        };
        let made = match &address {
            None => {
                let what = if channel == DeliveryChannel::Email { "email address" } else { "phone number" };
                Err(format!("agent `{}` has no {what}", agent.def.id))
            }
            Some(_) => {
                self.rules.templates.render(template, &self.params(e, rule, recipient, answered_by)).map_err(|e| e.0)
            }
        };
        // What cannot be made is not dropped: it becomes a dead notification with its reason,
        // counted, logged, and raising `delivery_failed` like one that failed to send.
        let (message, undeliverable) = match made {
            Ok(message) => (message, None),
            Err(why) => {
                self.metrics.undeliverable += 1;
                let to = crate::unit::external(recipient).to_string();
                let (channel_name, kind_name) = (channel.as_str(), kind.as_str());
                let message = format!(
                    "{}: {why}; the {channel_name} {kind_name} to {to} about {} is dead",
                    sender(rule),
                    crate::unit::external(&e.conversation)
                );
                self.emit(Update::Log { level: "error", message });
                let _ = self.delivery_failed(&e.conversation, to, channel, why.clone());
                (crate::template::Rendered::default(), Some(why))
            }
        };
        let address = address.unwrap_or_default();
        let id = self.standby.next_id();
        let unit = self.rules.queues[queue as usize].unit.clone();
        let notification = Notification {
            id,
            unit,
            // Its unit is beside it: the id is enough to show and to find it again.
            conversation: crate::unit::external(&e.conversation).to_string(),
            rule: rule.to_string(),
            event: e.event.clone(),
            recipient: crate::unit::external(recipient).to_string(),
            channel,
            kind,
            address,
            template: template.to_string(),
            message,
            created: self.now,
            undeliverable,
        };
        self.emit(Update::Notified { notification: Arc::new(notification) });
        Some(id)
    }

    /// Renders template `id` as a message of `kind` would show it: about `conversation` (to
    /// `recipient`, by default the first agent of its queue) or, without one, with sample data.
    pub fn preview(
        &self,
        id: &str,
        kind: Kind,
        conversation: Option<&str>,
        recipient: Option<&str>,
    ) -> Result<crate::template::Rendered, InputError> {
        let templates = &self.rules.templates;
        if templates.get(id).is_none() {
            return Err(InputError::Invalid { field: "template", message: format!("no template `{id}`") });
        }
        let params = match conversation {
            None => Params::sample(kind, self.now),
            Some(cid) => {
                let c = self.conversations.get(cid).ok_or_else(|| InputError::UnknownConversation(cid.into()))?;
                let members = &self.queues[c.queue as usize].members;
                let recipient = match recipient {
                    Some(r) => self.agent(r).map(|a| a.id.clone()).ok_or_else(|| InputError::UnknownAgent(r.into()))?,
                    None => members.first().map(|&ix| self.agents[ix as usize].id.clone()).unwrap_or_else(|| "".into()),
                };
                let answered = c.agent.clone().unwrap_or_else(|| recipient.clone());
                let e = StandbyEvent {
                    conversation: c.id.clone(),
                    queue: c.queue,
                    event: "preview".into(),
                    reason: "a preview".into(),
                    failed: None,
                };
                self.params(&e, "preview", &recipient, (kind == Kind::Clearing).then_some(&answered))
            }
        };
        templates.render(id, &params).map_err(|e| InputError::Invalid { field: "template", message: e.0 })
    }

    /// What a template sees for this event and recipient.
    pub(super) fn params(
        &self,
        e: &StandbyEvent,
        rule: &str,
        recipient: &str,
        answered_by: Option<&Arc<str>>,
    ) -> Params {
        let c = &self.conversations[&e.conversation];
        let party = |p: &crate::conversation::Party| PartyParams {
            name: p.name.clone().unwrap_or_default(),
            number: p.number.clone().unwrap_or_default(),
            sip: p.sip.clone().unwrap_or_default(),
        };
        let agent = |id: &str| {
            self.agent(id).map_or_else(
                || AgentParams { id: id.into(), ..AgentParams::default() },
                |a| AgentParams {
                    id: a.def.id.clone(),
                    name: a.def.name.clone(),
                    email: a.def.email.clone().unwrap_or_default(),
                    phone: a.def.phone.clone().unwrap_or_default(),
                    time_zone: a.def.time_zone.clone().unwrap_or_default(),
                },
            )
        };
        let queue = &self.rules.queues[e.queue as usize];
        Params {
            caller: party(&c.data.caller),
            service: party(&c.data.service),
            queue: QueueParams { id: queue.id.clone(), name: queue.name.clone() },
            conversation: ConversationParams {
                id: crate::unit::external(&c.id).to_string(),
                channel: c.data.channel.clone(),
                waited: (self.now - c.arrived_at).as_secs_f64(),
                attempts: c.attempts.len(),
                status: c.status.as_str().into(),
            },
            recipient: agent(recipient),
            answered_by: answered_by.map(|a| agent(a)),
            event: EventParams {
                kind: e.event.clone(),
                name: e.event.strip_prefix("custom:").unwrap_or_default().to_string(),
                reason: e.reason.clone(),
                channel: e.failed.as_ref().map(|(_, ch)| ch.as_str().to_string()).unwrap_or_default(),
            },
            rule: RuleParams { id: rule.to_string() },
            now: self.now.to_rfc3339(),
        }
    }
}

/// How a log line names the sender of a message: `standby rule `x`` or `workflow `y``.
fn sender(rule: &str) -> String {
    match rule.strip_prefix("workflow:") {
        Some(w) => format!("workflow `{w}`"),
        None => format!("standby rule `{rule}`"),
    }
}
