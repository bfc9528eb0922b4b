//! The stdlib policies written in Rust, as a host would write its own: the same choices as
//! the Lua ones, for benchmarks that run both on one workload.

use std::collections::HashMap;
use std::sync::Arc;

use rota::agent::{Agent, AgentIx};
use rota::decision::{Decision, Reason};
use rota::policy::{DecisionContext, Policy};
use rota::roster::Order;
use rota::rules::{Exhaustion, PolicySpec};
use rota::time::{Duration, Timestamp};

fn timeout(ctx: &DecisionContext<'_>, key: &str) -> Duration {
    Duration::from_secs_f64(ctx.option_f64(key).unwrap_or(30.0))
}

/// An offer to `a` with the policy's `timeout`.
fn offer(ctx: &DecisionContext<'_>, a: &Agent) -> Decision {
    Decision::Offer { agents: vec![a.ix], timeout: timeout(ctx, "timeout"), extend_after: None }
}

/// `candidates.first`: the first member in the roster's `order` who has not let the
/// conversation go yet, else the first who has.
struct Ranked(&'static str, Order);

impl Policy for Ranked {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: self.0.into(), ..Default::default() }
    }
    fn decide(&mut self, ctx: &DecisionContext<'_>, _: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        let mut fallback = None;
        for (_, a) in ctx.walk(self.1.clone(), None) {
            if !ctx.tried(a) {
                return Ok(offer(ctx, a));
            }
            fallback = fallback.or(Some(a));
        }
        Ok(match fallback {
            Some(a) => offer(ctx, a),
            None => Decision::Wait { retry_after: None, for_agents: Vec::new() },
        })
    }
}

#[derive(Default)]
struct RoundRobin {
    last: HashMap<u32, u32>,
}

impl Policy for RoundRobin {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: "round_robin".into(), ..Default::default() }
    }
    fn decide(&mut self, ctx: &DecisionContext<'_>, _: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        // The position (1-based, as in Lua) of the member offered last.
        let last = *self.last.get(&ctx.queue_index).unwrap_or(&0);
        let mut fallback = None;
        for (pos, a) in ctx.walk(Order::Queue, last.checked_sub(1)) {
            if !ctx.tried(a) {
                self.last.insert(ctx.queue_index, pos + 1);
                return Ok(offer(ctx, a));
            }
            fallback = fallback.or(Some((pos, a)));
        }
        Ok(match fallback {
            Some((pos, a)) => {
                self.last.insert(ctx.queue_index, pos + 1);
                offer(ctx, a)
            }
            None => Decision::Wait { retry_after: None, for_agents: Vec::new() },
        })
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
        Box::new(Ranked("longest_idle", Order::Idle)),
        Box::new(Ranked("fewest_conversations", Order::Answered)),
        Box::new(Ranked("least_talk_time", Order::TalkTime)),
        Box::new(RoundRobin::default()),
        Box::new(Strict::default()),
    ]
}
