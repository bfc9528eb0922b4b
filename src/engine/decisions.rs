//! Asking a policy, checking its decision, tracing it and carrying it out.

use std::sync::Arc;

use super::*;
use crate::capacity::{Limit, Slot};
use crate::roster::Walked;
use crate::rules::{AfterHours, Exhaustion};
use crate::script::Lent;
use crate::time::Duration;

/// What a decision's policy passed over: its own reasons (`ctx:skip`) and what its walks
/// of the roster found.
#[derive(Default)]
struct PassedOver {
    skipped: Vec<(AgentIx, Reason)>,
    walked: Walked,
}

/// The longest a failing queue's backoff grows to (unless its own `retry_after_error` is longer).
const MAX_BACKOFF: Duration = Duration(10 * 60 * 1000);

impl Engine {
    /// Asks the queue's policy about a waiting conversation and carries out the decision.
    /// While an offer is ringing, only an offer to more agents (ring progressively) is applied.
    pub(super) fn decide(&mut self, id: &Arc<str>, hops: u32) {
        self.decide_with(id, hops, None);
    }

    /// [`Engine::decide`], saying in the trace why the policy is asked now.
    pub(super) fn decide_because(&mut self, id: &Arc<str>, cause: String) {
        self.decide_with(id, 0, Some(cause));
    }

    fn decide_with(&mut self, id: &Arc<str>, hops: u32, cause: Option<String>) {
        self.flush_view();
        let Some(mut c) = self.conversations.get_mut(id) else {
            return;
        };
        if !c.status.is_waiting() {
            return;
        }
        let q = c.queue;
        c.seen_epoch = self.queues[q as usize].epoch;
        if !c.passed.is_empty() {
            self.unpass_returned(id);
            c = self.conversations.get_mut(id).expect("still there");
        }
        let ringing: Vec<AgentIx> =
            c.offer.and_then(|o| self.offers.get(&o)).map(|o| o.agents.clone()).unwrap_or_default();
        if ringing.is_empty() {
            if let Some((decision, by)) = self.after_hours(q) {
                self.conclude(id, q, decision, by, None, PassedOver::default(), cause, &ringing, hops);
                return;
            }
        }
        let policy = self.rules.queues[q as usize].policy.clone();
        let mut passed = PassedOver::default();
        let started = std::time::Instant::now();
        // Who decided, when not the queue's own policy.
        let mut by = None;
        let mut error = None;
        let mut decided = self.ask(&policy, false, id, q, &ringing, &mut passed);
        if let Err(first) = &decided {
            // The queue's fallback policy decides instead; if there is none, or it fails too,
            // the host's fallback below (wait and retry) does.
            self.metrics.policy_errors += 1;
            let mut message = first.clone();
            passed = PassedOver::default();
            let fallback = self.rules.queues[q as usize].fallback.clone();
            if let Some(f) = fallback.filter(|f| *f != policy) {
                decided = self.ask(&f, true, id, q, &ringing, &mut passed);
                match &decided {
                    Ok(_) => by = Some(format!("{f} (fallback)")),
                    Err(e) => message = format!("{message}; {f} (fallback): {e}"),
                }
            }
            if decided.is_err() {
                passed = PassedOver::default();
                by = Some("host fallback".into());
            }
            error = Some(message);
        }
        let nanos = started.elapsed().as_nanos().min(u32::MAX as u128) as u32;
        self.metrics.latency.observe(nanos);
        if self.config.record_latencies {
            self.metrics.latencies.push(nanos);
        }
        self.metrics.decisions += 1;
        // What the policy logged belongs before the decision it led to.
        for (level, message) in self.scripts.take_logs() {
            self.emit(Update::Log { level, message });
        }
        let mut decision = match decided {
            Ok(decision) => {
                self.queues[q as usize].failing = 0;
                decision
            }
            Err(_) => Decision::Wait { retry_after: Some(self.backoff(q)), for_agents: Vec::new() },
        };
        self.until_closing(q, &mut decision);
        self.conclude(id, q, decision, by.unwrap_or(policy), error, passed, cause, &ringing, hops);
    }

    /// Tells the policy of the conversation's queue of a lifecycle event (`on_offer_accepted`,
    /// `on_declined`, `on_abandoned`, `on_closed`, `on_agent_freed`), if it listens, so it can
    /// keep its memory true. A hook that fails is logged with its file and line and counted
    /// with the policy errors; it never refuses the input that caused it.
    pub(super) fn lifecycle(&mut self, hook: &'static str, conversation: &Arc<str>, agent: Option<AgentIx>) {
        let Some(c) = self.conversations.get(conversation) else { return };
        let q = c.queue as usize;
        // Most policies have no hooks: asked on every accept, close and freed agent, this
        // check must cost nothing more than a lookup.
        if !self.scripts.has_hook(&self.rules.queues[q].policy, hook) {
            return;
        }
        let policy = self.rules.queues[q].policy.clone();
        let data = self.conversation_data(conversation);
        // The agent's table shows the state the event left them in.
        self.flush_view();
        self.scripts.scope(&self.rules.queues[q].unit, self.now());
        let now = self.now().as_secs_f64();
        let result = self.scripts.hook(&policy, hook, q, agent, &data, now);
        for (level, message) in self.scripts.take_logs() {
            self.emit(Update::Log { level, message });
        }
        if let Err(e) = result {
            self.metrics.policy_errors += 1;
            self.emit(Update::Log { level: "error", message: format!("policy `{policy}` {hook}: {e}") });
        }
    }

    /// A conversation as plain data for scripts the host calls outside a decision (hooks,
    /// computed workflow values): id, key, queue, channel, parties, attributes, priority,
    /// status and agent.
    pub(super) fn conversation_data(&self, conversation: &str) -> serde_json::Value {
        let Some(c) = self.conversations.get(conversation) else { return serde_json::Value::Null };
        serde_json::json!({
            "id": crate::unit::external(&c.id),
            "key": &*c.id,
            "queue": &*self.queues[c.queue as usize].id,
            "channel": c.data.channel,
            "caller": c.data.caller,
            "service": c.data.service,
            "attributes": c.data.attributes,
            "priority": c.data.priority,
            "status": c.status.as_str(),
            "agent": c.agent.as_deref().map(crate::unit::external),
        })
    }

    /// Traces a decision and carries it out.
    #[allow(clippy::too_many_arguments)]
    fn conclude(
        &mut self,
        id: &Arc<str>,
        q: u32,
        decision: Decision,
        by: String,
        error: Option<String>,
        passed: PassedOver,
        cause: Option<String>,
        ringing: &[AgentIx],
        hops: u32,
    ) {
        let trace = Trace {
            at: self.now(),
            cause,
            queue: self.queues[q as usize].id.clone(),
            policy: by,
            generation: self.scripts.generation(),
            considered: self.queues[q as usize].members.len(),
            skipped: self.skips(q, &self.conversations[id].data.channel, &decision, passed),
            decision: self.record(&decision),
            error,
        };
        let trace = Arc::new(trace);
        self.conversations.get_mut(id).unwrap().traces.push(trace.clone());
        self.emit(Update::Decided { conversation: id.clone(), trace });
        self.apply(id, q, decision, ringing, hops);
    }

    /// What the queue does instead of asking its policy while its business hours are closed,
    /// and who decided it (`after hours (office)`); `None` while open or without hours.
    fn after_hours(&self, q: u32) -> Option<(Decision, String)> {
        let def = &self.rules.queues[q as usize];
        let hours = self.rules.hours.get(def.hours.as_ref()?)?;
        let now = self.now();
        if hours.open_at(now) {
            return None;
        }
        let decision = match &def.after_hours {
            AfterHours::Wait => Decision::Wait {
                retry_after: hours.next_change(now).map(|t| (t - now).max(Duration(1)).min(Duration::MAX)),
                for_agents: Vec::new(),
            },
            AfterHours::Overflow(to) => Decision::Overflow { queue: to.clone() },
            AfterHours::GiveUp(reason) => Decision::GiveUp { reason: reason.clone() },
        };
        Some((decision, format!("after hours ({})", hours.id)))
    }

    /// A conversation left waiting in a queue that does something else after hours is asked
    /// again when the hours close, so it meets `after_hours` then, not when someone frees up.
    fn until_closing(&self, q: u32, decision: &mut Decision) {
        let def = &self.rules.queues[q as usize];
        if def.after_hours == AfterHours::Wait {
            return;
        }
        let Some(hours) = def.hours.as_ref().and_then(|h| self.rules.hours.get(h)) else { return };
        let Decision::Wait { retry_after, .. } = decision else { return };
        let now = self.now();
        if let Some(closing) = hours.next_change(now) {
            let until = (closing - now).max(Duration(1)).min(Duration::MAX);
            *retry_after = Some(retry_after.map_or(until, |r| r.min(until)));
        }
    }

    /// How long a conversation whose decision failed waits before it is asked again: the
    /// queue's `retry_after_error`, doubled for each decision of the queue that failed in a
    /// row before this one (up to 64 times, and at least up to [`MAX_BACKOFF`]), so a policy
    /// that keeps failing cannot take the engine's time from the queues that work.
    fn backoff(&mut self, q: u32) -> Duration {
        let delay = self.next_backoff(q as usize);
        let queue = &mut self.queues[q as usize];
        queue.failing = queue.failing.saturating_add(1);
        delay
    }

    fn next_backoff(&self, q: usize) -> Duration {
        let base = self.rules.queues[q].retry_after_error;
        Duration(base.0.saturating_mul(1 << self.queues[q].failing.min(6))).min(MAX_BACKOFF.max(base))
    }

    /// A queue's decisions that failed in a row, and the delay its next failed one will get
    /// (for `/metrics`).
    pub fn failing_queue(&self, queue: &str) -> Option<(u32, Duration)> {
        let q = self.rules.queue_index(queue)?;
        Some((self.queues[q].failing, self.next_backoff(q)))
    }

    /// Asks a policy (Rust or Lua) and runs the host's checks on what it returned.
    fn ask(
        &mut self,
        policy: &str,
        as_fallback: bool,
        id: &Arc<str>,
        q: u32,
        ringing: &[AgentIx],
        passed: &mut PassedOver,
    ) -> Result<Decision, String> {
        let now = self.now();
        let PassedOver { skipped, walked } = passed;
        let decision = if let Some(p) = self.rust_policies.get_mut(policy) {
            let qdef = &self.rules.queues[q as usize];
            let ctx = DecisionContext {
                conversation: &self.conversations[id],
                queue_id: &qdef.id,
                queue_index: q,
                allowed: qdef.allowed,
                statuses: qdef.statuses,
                on_exhausted: &qdef.on_exhausted,
                candidates: &self.queues[q as usize].members,
                agents: &self.agents,
                options: if as_fallback { &qdef.fallback_options } else { &qdef.options },
                now,
                track_work_day: self.rules.settings.track_work_day,
                ringing,
                roster: &self.roster,
                walked: Default::default(),
            };
            // A panicking Rust policy fails this decision like a Lua error would; the engine
            // thread (and every other conversation) carries on.
            let decided = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| p.decide(&ctx, skipped)))
                .unwrap_or_else(|panic| Err(format!("policy `{policy}` panicked: {}", panic_text(&*panic))));
            *walked = ctx.take_walked();
            let decided = decided?;
            if let Some((ix, _)) = skipped.iter().find(|(ix, _)| *ix as usize >= self.agents.len()) {
                return Err(format!("policy skipped agent number {ix}, but there are only {}", self.agents.len()));
            }
            Ok(decided)
        } else {
            self.scripts.scope(&self.rules.queues[q as usize].unit, now);
            let data = &self.conversations[id].data;
            let mut lent = Some(Lent {
                roster: std::mem::take(&mut self.roster),
                queue: q,
                channel: data.channel.clone(),
                requires: data.requires.clone(),
                walked: Walked::default(),
                serial: 0,
            });
            let decided = self.scripts.decide(policy, id, q, now, ringing, as_fallback, skipped, &mut lent);
            match lent {
                Some(lent) => {
                    self.roster = lent.roster;
                    *walked = lent.walked;
                }
                // Not handed back (it always is): built again rather than lost.
                None => self.rebuild_roster(),
            }
            decided.map_err(|f| f.message)
        };
        decision.and_then(|d| self.check(&d, id, q, ringing).map(|()| d)).map_err(|m| self.located(policy, m))
    }

    /// A policy's failure with a place to look: where the error was raised when Luau said,
    /// else where a Lua policy was registered (a malformed decision, a host check).
    fn located(&self, policy: &str, message: String) -> String {
        match self.rules.policies.get(policy) {
            Some(spec) if !script::has_location(&message) && !spec.at.file.is_empty() => {
                format!("{}:{}: policy `{policy}`: {message}", spec.at.file, spec.at.line.unwrap_or(0))
            }
            _ => message,
        }
    }

    /// The host's own checks on a decision, so a buggy policy cannot offer to a busy agent.
    fn check(&self, decision: &Decision, id: &str, q: u32, ringing: &[AgentIx]) -> Result<(), String> {
        let channel = self.conversations[id].data.channel.as_str();
        let named = match decision {
            Decision::Offer { agents, .. } => agents.as_slice(),
            Decision::Wait { for_agents, .. } => for_agents.as_slice(),
            _ => &[],
        };
        if let Some(ix) = named.iter().find(|&&ix| ix as usize >= self.agents.len()) {
            return Err(format!("policy named agent number {ix}, but there are only {}", self.agents.len()));
        }
        match decision {
            Decision::Offer { agents, timeout, extend_after } => {
                if agents.is_empty() {
                    return Err("policy offered to nobody; return policies.wait() instead".into());
                }
                if timeout.0 <= 0 || *timeout > Duration::MAX {
                    return Err(format!("offer timeout must be longer than zero and at most {}", Duration::MAX));
                }
                if extend_after.is_some_and(|d| d.0 <= 0 || d > Duration::MAX) {
                    return Err(format!(
                        "offer_many's extend_after must be longer than zero and at most {} (zero would ring \
                         more agents at once, again and again)",
                        Duration::MAX
                    ));
                }
                for (i, &ix) in agents.iter().enumerate() {
                    let a = &self.agents[ix as usize];
                    if agents[..i].contains(&ix) {
                        return Err(format!("policy offered to {} twice", a.def.id));
                    }
                    if self.roster.position(q, ix).is_none() {
                        return Err(format!(
                            "policy offered to {}, who is not in queue {}",
                            a.def.id, self.queues[q as usize].id
                        ));
                    }
                    if ringing.contains(&ix) {
                        continue;
                    }
                    match self.unable_for(ix, q, channel) {
                        Some("presence_not_allowed") => {
                            return Err(format!(
                                "policy offered to {}, whose presence {} the queue does not allow",
                                a.def.id, a.base
                            ))
                        }
                        Some(why) => return Err(format!("policy offered to {}, who cannot take it ({why})", a.def.id)),
                        None => {}
                    }
                }
                Ok(())
            }
            Decision::Wait { retry_after: Some(d), .. } if d.0 <= 0 || *d > Duration::MAX => Err(format!(
                "policies.wait's retry time must be longer than zero and at most {} (zero would ask again at \
                 once, forever); return policies.wait() to wait for a change instead",
                Duration::MAX
            )),
            Decision::Overflow { queue } if self.rules.queue_index(queue).is_none() => {
                Err(format!("policy overflowed to unknown queue `{queue}`"))
            }
            Decision::Overflow { queue } if **queue == *self.queues[q as usize].id => {
                Err(format!("policy overflowed to its own queue `{queue}`"))
            }
            _ => Ok(()),
        }
    }

    /// What the trace says about the members not offered ([`Roster::skipped`]), naming the
    /// first `limits.trace_skips` of them (all of them for a queue with `full_traces`).
    fn skips(&self, q: u32, channel: &str, decision: &Decision, passed: PassedOver) -> Skipped {
        let PassedOver { skipped, mut walked } = passed;
        let offered: &[AgentIx] = match decision {
            Decision::Offer { agents, .. } => agents,
            _ => &[],
        };
        let named = if self.rules.queues[q as usize].full_traces { usize::MAX } else { self.config.trace_skips };
        self.roster.skipped(q, channel, offered, skipped, &mut walked, named, self.agents.names().clone())
    }

    /// The decision as the trace keeps it, with agent ids instead of indexes.
    pub(super) fn record(&self, decision: &Decision) -> Decided {
        match decision {
            Decision::Offer { agents, timeout, extend_after } => Decided::Offer {
                agents: agents.iter().map(|&ix| self.agents.names().get(ix).clone()).collect(),
                timeout: *timeout,
                extend_after: *extend_after,
            },
            Decision::Wait { retry_after, for_agents } => Decided::Wait {
                retry_after: *retry_after,
                for_agents: for_agents.iter().map(|&ix| self.agents.names().get(ix).clone()).collect(),
            },
            Decision::Overflow { queue } => Decided::Overflow { queue: queue.clone() },
            Decision::GiveUp { reason } => Decided::GiveUp { reason: reason.clone() },
            Decision::Exhausted { reason } => Decided::Exhausted { reason: reason.clone() },
        }
    }

    pub(super) fn apply(&mut self, id: &Arc<str>, q: u32, decision: Decision, ringing: &[AgentIx], hops: u32) {
        let now = self.now();
        match decision {
            Decision::Offer { agents, timeout, extend_after } => {
                let new: Vec<AgentIx> = agents.into_iter().filter(|ix| !ringing.contains(ix)).collect();
                let offer_id = match self.conversations[id].offer {
                    Some(existing) => existing,
                    None => {
                        let offer_id = self.next_offer;
                        self.next_offer += 1;
                        let timer = self.timers.schedule(now + timeout, TimerKind::OfferTimeout { offer: offer_id });
                        let offer = Offer {
                            id: offer_id,
                            conversation: id.clone(),
                            agents: Vec::new(),
                            expires: now + timeout,
                            timer,
                        };
                        self.offers.insert(offer_id, offer);
                        let c = self.conversations.get_mut(id).unwrap();
                        c.offer = Some(offer_id);
                        c.status = ConversationStatus::Offered;
                        offer_id
                    }
                };
                let expires = self.offers[&offer_id].expires;
                let queue = self.queues[q as usize].id.clone();
                if !new.is_empty() {
                    let names = new.iter().map(|&ix| self.agents[ix as usize].id.clone()).collect();
                    self.emit(Update::Offered { conversation: id.clone(), agents: names, timeout: expires - now });
                }
                for &ix in &new {
                    let agent = self.agents[ix as usize].id.clone();
                    let c = self.conversations.get_mut(id).unwrap();
                    // An offer ends an exhausted stretch: the next exhaustion is heard again.
                    c.exhausted = false;
                    c.attempts.push(Attempt {
                        agent,
                        queue: queue.clone(),
                        offered_at: now,
                        ended_at: None,
                        outcome: AttemptOutcome::Pending,
                        reason: None,
                    });
                    let a = &mut self.agents[ix as usize];
                    a.counters.offered += 1;
                    let channel = &self.conversations[id].data.channel;
                    match a.def.capacity.limit(channel) {
                        Limit::Exclusive => {
                            a.offer = Some(offer_id);
                            self.set_state(ix, State::Offered);
                        }
                        // Beside other chats: the agent's state stays theirs, the slot is taken.
                        Limit::Shared(_) => {
                            a.slots.push(Slot {
                                conversation: id.clone(),
                                channel: channel.as_str().into(),
                                offer: Some(offer_id),
                                since: now,
                                wrap_up: None,
                            });
                            self.agents.mark_loaded(ix);
                        }
                    }
                }
                self.offers.get_mut(&offer_id).unwrap().agents.extend(&new);
                if let Some(step) = extend_after.filter(|&s| now + s < expires) {
                    let c = self.conversations.get_mut(id).unwrap();
                    self.timers.cancel(c.retry_timer.take());
                    c.retry_timer =
                        Some(self.timers.schedule(now + step, TimerKind::Retry { conversation: id.clone() }));
                }
            }
            // While an offer rings, anything but "offer more" leaves it ringing.
            _ if !ringing.is_empty() => {}
            Decision::Wait { retry_after, for_agents } => {
                let c = self.conversations.get_mut(id).unwrap();
                c.waiting_for = for_agents;
                self.timers.cancel(c.retry_timer.take());
                if let Some(d) = retry_after {
                    c.retry_timer = Some(self.timers.schedule(now + d, TimerKind::Retry { conversation: id.clone() }));
                }
            }
            Decision::Overflow { queue } => {
                if hops >= MAX_OVERFLOW_HOPS {
                    self.give_up(id, format!("overflowed {MAX_OVERFLOW_HOPS} times in a row"));
                } else {
                    self.overflow(id, &queue);
                    self.decide(id, hops + 1);
                }
            }
            Decision::GiveUp { reason } => self.give_up(id, reason),
            Decision::Exhausted { reason } => self.exhaust(id, q, reason, hops),
        }
    }

    /// Agents who let the conversation go in an earlier round and have been away since may
    /// have it now: they are no longer `passed`.
    fn unpass_returned(&mut self, id: &Arc<str>) {
        let Some(c) = self.conversations.get_mut(id) else { return };
        let agents = &self.agents;
        let back: Vec<AgentIx> =
            c.passed.iter().filter(|&&(ix, away)| agents[ix as usize].away != away).map(|&(ix, _)| ix).collect();
        c.passed.retain(|&(ix, _)| !back.contains(&ix));
        for ix in back {
            let _ = self.scripts.unpass(id, &self.agents[ix as usize].id);
        }
    }

    /// The policy tried every agent it could. Standby rules hear `exhausted` once until an
    /// offer is made again; the queue's `on_exhausted` says what happens to the customer.
    fn exhaust(&mut self, id: &Arc<str>, q: u32, reason: String, hops: u32) {
        let now = self.now();
        let c = self.conversations.get_mut(id).expect("a decided conversation exists");
        let again = std::mem::replace(&mut c.exhausted, true);
        if !again {
            self.emit(Update::Exhausted { conversation: id.clone(), reason: reason.clone() });
        }
        let on_exhausted = self.rules.queues[q as usize].on_exhausted.clone();
        match on_exhausted {
            Exhaustion::GiveUp => self.give_up(id, reason),
            Exhaustion::Overflow(queue) => self.apply(id, q, Decision::Overflow { queue }, &[], hops),
            on_exhausted => {
                // A new round: the policy sees the conversation as if it had just come in,
                // except that a waiting round is not offered again to agents who could take
                // it now (they let it go); those who cannot now get it when they can.
                let track = self.rules.settings.track_work_day;
                let channel = &self.conversations[id].data.channel;
                let passed = match on_exhausted {
                    Exhaustion::Wait => self.queues[q as usize]
                        .members
                        .iter()
                        .filter(|&&ix| {
                            self.unable_for(ix, q, channel).is_none()
                                && self.agents[ix as usize].unavailable(track).is_none()
                        })
                        .map(|&ix| (ix, self.agents[ix as usize].away))
                        .collect(),
                    _ => Vec::new(),
                };
                let c = self.conversations.get_mut(id).expect("a decided conversation exists");
                c.round += 1;
                c.round_start = c.attempts.len();
                c.round_started_at = now;
                c.passed = passed;
                let c = &self.conversations[id];
                let queue = self.queues[c.queue as usize].id.clone();
                if let Err(e) = self.scripts.restart_conversation(c, &queue) {
                    self.emit(Update::Log { level: "warn", message: format!("{id}: could not start over: {e}") });
                }
                // Starting over at once finds the same nobody when nothing changed since the
                // last exhaustion: then it waits for an agent like `wait` does.
                if on_exhausted == Exhaustion::Restart && !again && hops < MAX_OVERFLOW_HOPS {
                    self.decide(id, hops + 1);
                } else {
                    self.apply(id, q, Decision::Wait { retry_after: None, for_agents: Vec::new() }, &[], hops);
                }
            }
        }
    }

    pub(super) fn give_up(&mut self, id: &Arc<str>, reason: String) {
        self.emit(Update::GaveUp { conversation: id.clone(), reason: reason.clone() });
        self.end_conversation(id, ConversationStatus::GaveUp, Some(reason));
    }
}

/// The message a panic carried, when it was text.
fn panic_text(panic: &(dyn std::any::Any + Send)) -> &str {
    panic.downcast_ref::<&str>().copied().or_else(|| panic.downcast_ref::<String>().map(|s| s.as_str())).unwrap_or("?")
}
