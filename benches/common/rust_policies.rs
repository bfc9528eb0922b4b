//! The stdlib policies written in Rust, as a host would write its own: the same choices as
//! the Lua ones, for benchmarks that run both on one workload.

use std::collections::HashMap;
use std::sync::Arc;

use rota::agent::{Agent, AgentIx};
use rota::decision::{Decision, Reason};
use rota::policy::{DecisionContext, Policy};
use rota::rules::{Exhaustion, PolicySpec};
use rota::time::{Duration, Timestamp};

/// `unfit` of `stdlib/rota/candidates.lua`, in Rust: why an available agent should not be offered.
fn unfit(ctx: &DecisionContext<'_>, a: &Agent) -> Option<&'static str> {
    if let Some(why) = a.unavailable(ctx.track_work_day) {
        return Some(why);
    }
    let lacks =
        ctx.conversation.data.requires.iter().any(|(skill, level)| a.def.skills.get(skill).is_none_or(|l| l < level));
    lacks.then_some("missing_skill")
}

/// The agent at `ix` if it can take the conversation and is fit for it; otherwise `None`,
/// with the policy's reason recorded (the host traces agents who cannot take offers at all).
fn fit<'a>(ctx: &DecisionContext<'a>, ix: AgentIx, skipped: &mut Vec<(AgentIx, Reason)>) -> Option<&'a Agent> {
    let a = &ctx.agents[ix as usize];
    if ctx.blocked(a).is_some() {
        return None;
    }
    if let Some(why) = unfit(ctx, a) {
        skipped.push((ix, Reason::Fixed(why)));
        return None;
    }
    Some(a)
}

fn timeout(ctx: &DecisionContext<'_>, key: &str) -> Duration {
    Duration::from_secs_f64(ctx.option_f64(key).unwrap_or(30.0))
}

/// `candidates.best`: the best agent by `better`, untried agents first.
fn best(
    ctx: &DecisionContext<'_>,
    skipped: &mut Vec<(AgentIx, Reason)>,
    better: impl Fn(&Agent, &Agent) -> bool,
) -> Decision {
    let (mut best, mut fallback): (Option<&Agent>, Option<&Agent>) = (None, None);
    for &ix in ctx.candidates {
        let Some(a) = fit(ctx, ix, skipped) else { continue };
        if ctx.tried(a) {
            if fallback.is_none_or(|f| better(a, f)) {
                fallback = Some(a);
            }
        } else if best.is_none_or(|b| better(a, b)) {
            best = Some(a);
        }
    }
    match best.or(fallback) {
        Some(a) => Decision::Offer { agents: vec![a.ix], timeout: timeout(ctx, "timeout"), extend_after: None },
        None => Decision::Wait { retry_after: None, for_agents: Vec::new() },
    }
}

struct Ranked(&'static str, fn(&Agent, &Agent) -> bool);

impl Policy for Ranked {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: self.0.into(), ..Default::default() }
    }
    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        Ok(best(ctx, skipped, self.1))
    }
}

#[derive(Default)]
struct RoundRobin {
    last: HashMap<u32, usize>,
}

impl Policy for RoundRobin {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: "round_robin".into(), ..Default::default() }
    }
    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        let n = ctx.candidates.len();
        let start = *self.last.get(&ctx.queue_index).unwrap_or(&0);
        let mut fallback = None;
        for step in 1..=n {
            let i = (start + step - 1) % n + 1;
            let ix = ctx.candidates[i - 1];
            let Some(a) = fit(ctx, ix, skipped) else { continue };
            if ctx.tried(a) {
                fallback = fallback.or(Some(i));
            } else {
                self.last.insert(ctx.queue_index, i);
                return Ok(Decision::Offer { agents: vec![ix], timeout: timeout(ctx, "timeout"), extend_after: None });
            }
        }
        if let Some(i) = fallback {
            self.last.insert(ctx.queue_index, i);
            let ix = ctx.candidates[i - 1];
            return Ok(Decision::Offer { agents: vec![ix], timeout: timeout(ctx, "timeout"), extend_after: None });
        }
        Ok(Decision::Wait { retry_after: None, for_agents: Vec::new() })
    }
}

/// `strictly_in_order` with its per-conversation memo (round, position and since when).
#[derive(Default)]
struct Strict {
    memo: HashMap<Arc<str>, (u32, usize, Timestamp)>,
}

impl Policy for Strict {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: "strictly_in_order".into(), ..Default::default() }
    }
    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        let pass_after = timeout(ctx, "pass_after");
        let check = ctx.options.get("check_availability").and_then(|v| v.as_bool()).unwrap_or(true);
        let c = ctx.conversation;
        // A new round (after the list was exhausted) starts over, as the Lua memo does.
        let started = c.queued_at.max(c.round_started_at);
        let (mut pos, mut since) = match self.memo.get(&c.id) {
            Some(&(round, pos, since)) if round == c.round => (pos, since),
            _ => (0, started),
        };
        let patient = c.round == 1 || *ctx.on_exhausted != Exhaustion::Wait;
        while pos < ctx.candidates.len() {
            let ix = ctx.candidates[pos];
            let a = &ctx.agents[ix as usize];
            let why = if let Some(u) = a.unavailable(ctx.track_work_day).filter(|_| check) {
                Reason::Fixed(u)
            } else if ctx.tried(a) {
                Reason::Fixed(ctx.blocked(a).unwrap_or("already_tried"))
            } else {
                match ctx.blocked(a) {
                    None => {
                        self.memo.insert(c.id.clone(), (c.round, pos, since));
                        return Ok(Decision::Offer { agents: vec![ix], timeout: pass_after, extend_after: None });
                    }
                    Some(blocked) => {
                        let waited = ctx.now - since;
                        if patient && waited < pass_after {
                            self.memo.insert(c.id.clone(), (c.round, pos, since));
                            let retry_after = Some(Duration(pass_after.0 - waited.0));
                            return Ok(Decision::Wait { retry_after, for_agents: vec![ix] });
                        }
                        match patient {
                            true => Reason::Text(Arc::from(format!("{blocked} for pass_after"))),
                            false => Reason::Fixed(blocked),
                        }
                    }
                }
            };
            skipped.push((ix, why));
            pos += 1;
            since = ctx.now;
        }
        self.memo.insert(c.id.clone(), (c.round, pos, since));
        Ok(Decision::Exhausted { reason: "every agent in the list was tried".into() })
    }
}

pub fn rust_policies() -> Vec<Box<dyn Policy>> {
    vec![
        Box::new(Ranked("longest_idle", |a, b| a.idle_since < b.idle_since)),
        Box::new(Ranked("fewest_conversations", |a, b| a.counters.answered < b.counters.answered)),
        Box::new(Ranked("least_talk_time", |a, b| a.counters.talk_time < b.counters.talk_time)),
        Box::new(RoundRobin::default()),
        Box::new(Strict::default()),
    ]
}
