//! Conversations through their lifecycle, and the offers that put them to agents.

use std::sync::Arc;

use super::*;
use crate::rules::QueueDef;
use crate::unit;

impl Engine {
    pub(super) fn arrive(&mut self, new: NewConversation) -> Result<(), InputError> {
        let q = self.rules.queue_index(&new.queue).ok_or_else(|| InputError::UnknownQueue(new.queue.clone()))? as u32;
        if new.id.is_empty() {
            return Err(InputError::Invalid { field: "id", message: "conversation id must not be empty".into() });
        }
        if new.id.chars().any(char::is_control) {
            let message = "a conversation id must not hold control characters".into();
            return Err(InputError::Invalid { field: "id", message });
        }
        // Ids live per unit: another unit's `c1` neither blocks this one nor shows through.
        let id = unit::key(&self.rules.queues[q as usize].unit, &new.id);
        if self.conversations.contains_key(&id) {
            return Err(InputError::DuplicateConversation(new.id));
        }
        let now = self.now();
        let max_wait = self.rules.queues[q as usize].max_wait;
        let conversation = Conversation {
            id: id.clone(),
            queue: q,
            data: new,
            status: ConversationStatus::Queued,
            arrived_at: now,
            queued_at: now,
            ended_at: None,
            end_reason: None,
            agent: None,
            offer: None,
            attempts: Vec::new(),
            round: 1,
            round_start: 0,
            round_started_at: now,
            exhausted: false,
            passed: Vec::new(),
            traces: Default::default(),
            max_wait_timer: max_wait
                .map(|d| self.timers.schedule(now + d, TimerKind::MaxWait { conversation: id.clone() })),
            retry_timer: None,
            seen_epoch: 0,
            waiting_for: Vec::new(),
            notified: Vec::new(),
            workflows: Vec::new(),
            aged: 0,
        };
        let queue_id = self.queues[q as usize].id.clone();
        if let Err(e) = self.scripts.add_conversation(&conversation, &queue_id, None) {
            self.timers.cancel(conversation.max_wait_timer);
            return Err(InputError::Illegal(format!("the scripts could not take the conversation: {e}")));
        }
        self.conversations.insert(id.clone(), conversation);
        self.queues[q as usize].waiting.push_back(id.clone());
        self.emit(Update::Queued { conversation: id.clone(), queue: queue_id });
        self.decide(&id, 0);
        Ok(())
    }

    /// Finds the pending offer of `conversation` that rings `agent`, or says why there is none.
    pub(super) fn ringing(&self, conversation: &str, agent: &str) -> Result<(u64, AgentIx), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        // The agent is one of the conversation's unit (ids live per unit).
        let ix = self.agents.of_unit(&self.rules.queues[c.queue as usize].unit, agent)?;
        if let Some(offer) = c.offer.and_then(|o| self.offers.get(&o)) {
            if offer.agents.contains(&ix) {
                return Ok((offer.id, ix));
            }
        }
        let key = &self.agents[ix as usize].id;
        let last = c.attempts.iter().rev().find(|a| a.agent == *key);
        let (conversation, agent) = (unit::external(conversation), unit::external(agent));
        Err(InputError::Illegal(match last {
            Some(a) => format!(
                "conversation `{conversation}` is not offered to `{agent}` any more: the offer was {}",
                a.outcome.as_str()
            ),
            None => format!("conversation `{conversation}` was never offered to `{agent}`"),
        }))
    }

    /// The one agent an offer of `conversation` rings, for an accept or decline that does not
    /// name one; refused when it rings for nobody or for several.
    pub(super) fn offered_to_one(&self, conversation: &str) -> Result<String, InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let ringing = c.offer.and_then(|o| self.offers.get(&o)).map_or(&[][..], |o| &o.agents[..]);
        match ringing {
            [one] => Ok(self.agents[*one as usize].id.to_string()),
            [] => Err(InputError::Illegal(format!(
                "conversation `{}` is not offered to anyone now",
                unit::external(conversation)
            ))),
            several => {
                let names: Vec<&str> = several.iter().map(|&ix| self.agents[ix as usize].def.id.as_str()).collect();
                let message = format!(
                    "conversation `{}` is offered to {}; name the agent",
                    unit::external(conversation),
                    names.join(", ")
                );
                Err(InputError::Invalid { field: "agent", message })
            }
        }
    }

    pub(super) fn accept(&mut self, conversation: &str, agent: &str) -> Result<(), InputError> {
        let (offer_id, ix) = self.ringing(conversation, agent)?;
        let offer = self.offers.remove(&offer_id).expect("ringing offer exists");
        self.timers.cancel(Some(offer.timer));
        let id = offer.conversation.clone();
        // No policy will be asked about it again: its Lua view can go now.
        self.scripts.drop_conversation(&id);
        self.emit(Update::Accepted { conversation: id.clone(), agent: self.agents[ix as usize].id.clone() });
        self.end_attempt(&id, ix, AttemptOutcome::Accepted, None);
        for &other in offer.agents.iter().filter(|&&o| o != ix) {
            self.take_back(&id, other, "answered_by_another");
        }
        let c = self.conversations.get_mut(&id).expect("offered conversation exists");
        c.status = ConversationStatus::Assigned;
        c.offer = None;
        c.agent = Some(self.agents[ix as usize].id.clone());
        self.timers.cancel(c.max_wait_timer.take());
        self.timers.cancel(c.retry_timer.take());
        let q = c.queue;
        self.queues[q as usize].waiting.retain(|w| *w != id);
        let now = self.now();
        let a = &mut self.agents[ix as usize];
        a.counters.answered += 1;
        a.counters.missed_in_row = 0;
        match a.slot(&id) {
            Some(i) => {
                a.slots[i].offer = None;
                a.slots[i].since = now;
                self.agents.mark_loaded(ix);
            }
            None => {
                a.offer = None;
                a.conversation = Some(id.clone());
                self.set_state(ix, State::Busy);
            }
        }
        self.lifecycle("on_offer_accepted", &id, Some(ix));
        Ok(())
    }

    /// Withdraws an agent's pending offer without fault, saying why (`answered_by_another`,
    /// `abandoned`, `signed_out`, or whatever made the agent unable to take it).
    pub(super) fn take_back(&mut self, id: &Arc<str>, ix: AgentIx, reason: &'static str) {
        self.emit(Update::Revoked { conversation: id.clone(), agent: self.agents[ix as usize].id.clone(), reason });
        self.end_attempt(id, ix, AttemptOutcome::Revoked, Some(reason));
        // An agent who left Offered for something else (a pause) keeps it.
        if !self.unring(ix, id) && self.agents[ix as usize].state == State::Offered {
            self.set_state(ix, State::Waiting);
        }
    }

    /// Lets go of the offer of `id` ringing agent `ix`: a shared slot frees (true), or the
    /// exclusive offer clears (false), its state left for the caller to set.
    fn unring(&mut self, ix: AgentIx, id: &str) -> bool {
        let a = &mut self.agents[ix as usize];
        match a.slot(id) {
            Some(i) => {
                a.slots.remove(i);
                self.agents.mark(ix);
                true
            }
            None => {
                a.offer = None;
                false
            }
        }
    }

    pub(super) fn decline(&mut self, conversation: &str, agent: &str) -> Result<(), InputError> {
        let (offer_id, ix) = self.ringing(conversation, agent)?;
        let id = self.conversations[conversation].id.clone();
        self.end_attempt(&id, ix, AttemptOutcome::Declined, None);
        self.agents[ix as usize].counters.declined += 1;
        if !self.unring(ix, &id) {
            self.set_state(ix, State::Waiting);
        }
        self.emit(Update::Declined { conversation: id.clone(), agent: self.agents[ix as usize].id.clone() });
        self.lifecycle("on_declined", &id, Some(ix));
        let offer = self.offers.get_mut(&offer_id).expect("ringing offer exists");
        offer.agents.retain(|&o| o != ix);
        if offer.agents.is_empty() {
            self.drop_offer(&id);
        }
        // Also while others still ring: the policy may add agents in the decliner's place.
        let cause = format!("declined by {}", self.agents[ix as usize].def.id);
        self.decide_because(&id, cause);
        Ok(())
    }

    /// Changes what a waiting conversation is routed by, then asks its policy again at once
    /// (with the change in the trace): nothing has to poll for a conversation to be re-routed.
    pub(super) fn update_conversation(
        &mut self,
        id: &Arc<str>,
        attributes: BTreeMap<String, serde_json::Value>,
        requires: Option<BTreeMap<String, f64>>,
        priority: Option<i64>,
    ) -> Result<(), InputError> {
        let c = self.conversations.get(id).ok_or_else(|| InputError::UnknownConversation(unit::external(id).into()))?;
        if !c.status.is_waiting() {
            return Err(InputError::Illegal(format!(
                "conversation `{}` is {}; only a waiting conversation is routed again",
                unit::external(id),
                c.status.as_str()
            )));
        }
        if let Some((skill, level)) = requires.iter().flatten().find(|(_, level)| !level.is_finite()) {
            let message = format!("skill `{skill}` needs a finite level, got {level}");
            return Err(InputError::Invalid { field: "requires", message });
        }
        if attributes.is_empty() && requires.is_none() && priority.is_none() {
            let message = "give `attributes`, `requires` or `priority` to change".into();
            return Err(InputError::Invalid { field: "attributes", message });
        }
        let c = self.conversations.get_mut(id).expect("checked above");
        let mut changed: Vec<String> = attributes.keys().map(|k| format!("attributes.{k}")).collect();
        for (key, value) in attributes {
            match value {
                serde_json::Value::Null => c.data.attributes.remove(&key),
                value => c.data.attributes.insert(key, value),
            };
        }
        if let Some(requires) = requires {
            c.data.requires = requires;
            changed.push("requires".into());
        }
        if let Some(priority) = priority {
            c.data.priority = priority;
            changed.push(format!("priority {priority}"));
        }
        self.refresh_conversation_view(id);
        self.emit(Update::ConversationChanged { conversation: id.clone(), changed: changed.clone() });
        self.decide_because(id, format!("changed: {}", changed.join(", ")));
        Ok(())
    }

    /// Rebuilds a waiting conversation's Lua view from its data, keeping its policy memo.
    pub(super) fn refresh_conversation_view(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get(id).filter(|c| c.status.is_waiting()) else { return };
        let queue = self.queues[c.queue as usize].id.clone();
        let memo = self.scripts.conversation_memo(id).unwrap_or_else(|lost| {
            self.emit(Update::Log { level: "warn", message: lost });
            None
        });
        let c = &self.conversations[id];
        if let Err(e) = self.scripts.add_conversation(c, &queue, memo.as_ref()) {
            let message = format!("could not update {}'s view: {e}", unit::external(id));
            self.emit(Update::Log { level: "error", message });
        }
    }

    pub(super) fn close(&mut self, conversation: &str) -> Result<(), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        if c.status != ConversationStatus::Assigned {
            return Err(InputError::Illegal(format!(
                "conversation `{}` is {}; only an assigned conversation can be closed",
                unit::external(conversation),
                c.status.as_str()
            )));
        }
        let id = c.id.clone();
        let agent = c.agent.as_deref().and_then(|a| self.agents.keyed(a));
        // Before the wrap-up or the freed agent it leads to, which the policy hears of next.
        self.lifecycle("on_closed", &id, agent);
        self.finish_talk(&id);
        Ok(())
    }

    /// The agent is done talking: wrap-up for the team's time, or closed at once.
    pub(super) fn finish_talk(&mut self, id: &Arc<str>) {
        let now = self.now();
        let agent_id = self.conversations[id].agent.clone().expect("assigned conversation has an agent");
        let ix = self.agents.keyed(&agent_id).expect("an assigned agent exists");
        let wrap_up = self.team(ix).wrap_up;
        let a = &mut self.agents[ix as usize];
        if let Some(i) = a.slot(id) {
            // A shared slot: the agent's state is not this conversation's; its slot is.
            a.counters.talk_time = a.counters.talk_time + (now - a.slots[i].since);
            self.agents.mark_loaded(ix);
            if wrap_up.is_zero() {
                self.slot_wrap_up_ended(ix, id);
            } else {
                let until = now + wrap_up;
                let timer =
                    self.timers.schedule(until, TimerKind::SlotWrapUpEnd { agent: ix, conversation: id.clone() });
                self.agents[ix as usize].slots[i].wrap_up = Some(timer);
                self.conversations.get_mut(id).unwrap().status = ConversationStatus::PostProcessing;
                self.emit(Update::WrapUp { conversation: id.clone(), agent: agent_id, until });
            }
            return;
        }
        a.counters.talk_time = a.counters.talk_time + (now - a.state_since);
        if wrap_up.is_zero() {
            self.agents[ix as usize].conversation = None;
            self.end_conversation(id, ConversationStatus::Closed, None);
            self.set_state(ix, State::Waiting);
            self.lifecycle("on_agent_freed", id, Some(ix));
        } else {
            let until = now + wrap_up;
            let timer = self.timers.schedule(until, TimerKind::WrapUpEnd { agent: ix });
            self.agents[ix as usize].state_timer = Some(timer);
            self.conversations.get_mut(id).unwrap().status = ConversationStatus::PostProcessing;
            self.emit(Update::WrapUp { conversation: id.clone(), agent: agent_id, until });
            self.set_state(ix, State::PostProcessing);
        }
    }

    pub(super) fn wrap_up_ended(&mut self, ix: AgentIx) {
        let a = &mut self.agents[ix as usize];
        a.state_timer = None;
        let finished = a.conversation.take();
        if let Some(id) = &finished {
            self.end_conversation(id, ConversationStatus::Closed, None);
        }
        if self.agents[ix as usize].state == State::PostProcessing {
            self.set_state(ix, State::Waiting);
            if let Some(id) = &finished {
                self.lifecycle("on_agent_freed", id, Some(ix));
            }
        }
    }

    /// A conversation on a shared channel is done, wrap-up and all: its slot frees.
    pub(super) fn slot_wrap_up_ended(&mut self, ix: AgentIx, id: &Arc<str>) {
        let a = &mut self.agents[ix as usize];
        let Some(i) = a.slot(id) else { return };
        a.slots.remove(i);
        self.agents.mark(ix);
        self.end_conversation(id, ConversationStatus::Closed, None);
        self.lifecycle("on_agent_freed", id, Some(ix));
    }

    pub(super) fn abandon(&mut self, conversation: &str) -> Result<(), InputError> {
        let c =
            self.conversations.get(conversation).ok_or_else(|| InputError::UnknownConversation(conversation.into()))?;
        let id = c.id.clone();
        match c.status {
            ConversationStatus::Queued | ConversationStatus::Offered => {
                self.revoke_offer(&id, "abandoned");
                self.emit(Update::Abandoned { conversation: id.clone() });
                self.end_conversation(&id, ConversationStatus::Abandoned, Some("the customer left".into()));
                self.lifecycle("on_abandoned", &id, None);
                Ok(())
            }
            ConversationStatus::Assigned => {
                self.emit(Update::Abandoned { conversation: id.clone() });
                let agent = self.conversations[&id].agent.as_deref().and_then(|a| self.agents.keyed(a));
                self.lifecycle("on_abandoned", &id, agent);
                self.finish_talk(&id);
                Ok(())
            }
            status => Err(InputError::Illegal(format!(
                "conversation `{}` is already {}",
                unit::external(conversation),
                status.as_str()
            ))),
        }
    }

    pub(super) fn max_wait_exceeded(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        c.max_wait_timer = None;
        if !c.status.is_waiting() {
            return;
        }
        let q = c.queue as usize;
        self.revoke_offer(id, "max_wait_exceeded");
        let queue = self.queues[q].id.clone();
        self.emit(Update::MaxWaitExceeded { conversation: id.clone(), queue });
        match self.rules.queues[q].on_max_wait.clone() {
            Some(to) => {
                self.overflow(id, &to);
                self.decide(id, 1);
            }
            None => self.end_conversation(id, ConversationStatus::MaxWaitExceeded, Some("max wait exceeded".into())),
        }
    }

    pub(super) fn end_conversation(&mut self, id: &Arc<str>, status: ConversationStatus, reason: Option<String>) {
        let now = self.now();
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        c.status = status;
        c.ended_at = Some(now);
        c.end_reason = reason;
        self.timers.cancel(c.max_wait_timer.take());
        self.timers.cancel(c.retry_timer.take());
        let q = c.queue as usize;
        self.queues[q].waiting.retain(|w| w != id);
        self.scripts.drop_conversation(id);
        if status == ConversationStatus::Closed {
            self.emit(Update::Closed { conversation: id.clone() });
        }
        self.forget_later(id.clone());
    }

    /// Keeps an ended conversation readable until `retain_ended` newer ones have ended, or it
    /// ended longer than `retain_ended_for` ago (checked as others end). One that a workflow
    /// instance still works on stays until the instance finishes.
    pub(super) fn forget_later(&mut self, id: Arc<str>) {
        self.ended.push_back(id);
        let cutoff = self.config.retain_ended_for.map(|d| self.now - d);
        while let Some(front) = self.ended.front() {
            let ended_at = self.conversations.get(front).and_then(|c| c.ended_at);
            let too_old = cutoff.is_some_and(|cutoff| ended_at.is_some_and(|t| t < cutoff));
            if self.ended.len() <= self.config.retain_ended && !too_old {
                break;
            }
            if let Some(old) = self.ended.pop_front() {
                if self.conversations.get(&old).is_some_and(|c| c.workflows.is_empty()) {
                    self.conversations.remove(&old);
                }
            }
        }
    }

    pub(super) fn overflow(&mut self, id: &Arc<str>, to: &str) {
        let Some(target) = self.rules.queue_index(to) else {
            return;
        };
        let now = self.now();
        let c = self.conversations.get_mut(id).expect("conversation exists");
        let from = c.queue as usize;
        c.queue = target as u32;
        c.queued_at = now;
        self.queues[from].waiting.retain(|w| w != id);
        self.queues[target].waiting.push_back(id.clone());
        let to_id = self.queues[target].id.clone();
        let _ = self.scripts.move_conversation(&self.conversations[id], &to_id);
        self.emit(Update::Overflowed { conversation: id.clone(), from: self.queues[from].id.clone(), to: to_id });
    }

    pub(super) fn offer_timed_out(&mut self, offer_id: u64) {
        let Some(offer) = self.offers.remove(&offer_id) else {
            return;
        };
        let id = offer.conversation.clone();
        let names = offer.agents.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect();
        self.emit(Update::TimedOut { conversation: id.clone(), agents: names });
        for &ix in &offer.agents {
            self.end_attempt(&id, ix, AttemptOutcome::TimedOut, None);
            self.unring(ix, &id);
            self.missed(ix);
        }
        if let Some(c) = self.conversations.get_mut(&id) {
            c.offer = None;
            c.status = ConversationStatus::Queued;
            self.timers.cancel(c.retry_timer.take());
        }
        self.decide(&id, 0);
    }

    /// A missed offer: the team decides whether that means state Missed or presence Inactive,
    /// and after `max_no_answer` misses in a row where the agent goes.
    pub(super) fn missed(&mut self, ix: AgentIx) {
        let team = self.team(ix).clone();
        let a = &mut self.agents[ix as usize];
        a.counters.missed += 1;
        a.counters.missed_in_row += 1;
        if team.max_no_answer > 0 && a.counters.missed_in_row >= team.max_no_answer {
            a.counters.missed_in_row = 0;
            match team.on_max_no_answer {
                Some(Escalation::Presence(p)) => {
                    self.set_state(ix, State::Waiting);
                    self.set_presence(ix, &p);
                }
                Some(Escalation::Pause(cause)) => {
                    self.agents[ix as usize].pause_cause = Some(cause);
                    self.set_state(ix, State::Paused);
                }
                None => self.set_state(ix, State::Waiting),
            }
            return;
        }
        match team.on_miss {
            MissAction::Missed if !team.no_answer_delay.is_zero() => {
                let timer = self.timers.schedule(self.now() + team.no_answer_delay, TimerKind::MissedEnd { agent: ix });
                self.agents[ix as usize].state_timer = Some(timer);
                self.set_state(ix, State::Missed);
            }
            MissAction::Missed => self.set_state(ix, State::Waiting),
            MissAction::Inactive => {
                self.set_state(ix, State::Waiting);
                self.set_presence(ix, "inactive");
            }
        }
    }

    /// Takes back a pending offer without fault (the customer left, max wait).
    pub(super) fn revoke_offer(&mut self, id: &Arc<str>, reason: &'static str) {
        let Some(offer_id) = self.conversations.get(id).and_then(|c| c.offer) else {
            return;
        };
        let agents = self.offers.get(&offer_id).map(|o| o.agents.clone()).unwrap_or_default();
        for ix in agents {
            self.take_back(id, ix, reason);
        }
        self.drop_offer(id);
    }

    /// Takes one agent out of every offer ringing them; a conversation is decided again if
    /// nobody is left ringing.
    pub(super) fn withdraw_offer_from(&mut self, ix: AgentIx, reason: &'static str) {
        self.withdraw_offers(ix, reason, |_| true);
    }

    /// [`Engine::withdraw_offer_from`] for the offers of the queues `which` picks.
    pub(super) fn withdraw_offers(&mut self, ix: AgentIx, reason: &'static str, which: impl Fn(&QueueDef) -> bool) {
        let picked: Vec<u64> = self.agents[ix as usize]
            .ringing()
            .filter(|o| {
                let queue = self.offers.get(o).and_then(|o| self.conversations.get(&o.conversation)).map(|c| c.queue);
                queue.is_some_and(|q| which(&self.rules.queues[q as usize]))
            })
            .collect();
        for offer_id in picked {
            let Some(offer) = self.offers.get_mut(&offer_id) else { continue };
            offer.agents.retain(|&o| o != ix);
            let (id, empty) = (offer.conversation.clone(), offer.agents.is_empty());
            self.take_back(&id, ix, reason);
            if empty {
                self.drop_offer(&id);
                self.decide(&id, 0);
            }
        }
    }

    pub(super) fn drop_offer(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        if let Some(offer) = c.offer.take().and_then(|o| self.offers.remove(&o)) {
            self.timers.cancel(Some(offer.timer));
        }
        self.timers.cancel(c.retry_timer.take());
        if c.status == ConversationStatus::Offered {
            c.status = ConversationStatus::Queued;
        }
    }

    pub(super) fn end_attempt(
        &mut self,
        id: &Arc<str>,
        ix: AgentIx,
        outcome: AttemptOutcome,
        reason: Option<&'static str>,
    ) {
        let now = self.now();
        let Some(c) = self.conversations.get_mut(id) else {
            return;
        };
        let agent = &self.agents[ix as usize].id;
        if let Some(attempt) =
            c.attempts.iter_mut().rev().find(|a| a.agent == *agent && a.outcome == AttemptOutcome::Pending)
        {
            attempt.outcome = outcome;
            attempt.ended_at = Some(now);
            attempt.reason = reason;
            let _ = self.scripts.record_attempt(id, attempt);
        }
    }
}
