//! A property test: policies that return random decisions, many of them invalid (wrong types,
//! zero, negative, huge and NaN durations, unknown or already-tried agents, errors, error
//! values that are tables, runaway loops, writes to the host's view), one in Luau and one in
//! Rust, driven by random inputs on a virtual clock through the durable runtime. After every
//! step: the step finished within its budget, the engine still answers (no panic), every
//! conversation is in a legal status, and every pending offer has its timer. Every few hundred
//! steps, and at the end, the journal is replayed into a second engine, which must hold the
//! same state.
//!
//! `cargo test --test it property` runs a fixed seed (as CI does). A longer run:
//! `ROTA_PROPERTY_SEED=7 ROTA_PROPERTY_STEPS=50000 cargo test --release --test it property`.

use crate::common;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration as StdDuration;

use common::{start, Scratch};
use rota::agent::AgentIx;
use rota::conversation::NewConversation;
use rota::decision::{Decision, Reason};
use rota::policy::{DecisionContext, Policy};
use rota::rules::PolicySpec;
use rota::runtime::{Builder, Handle};
use rota::store::SqliteStore;
use rota::time::Duration;
use rota::{Input, VirtualClock};
use serde_json::{json, Value};

const AGENTS: [&str; 6] = ["a1", "a2", "a3", "a4", "a5", "a6"];

const RULES: &str = r#"
for i = 1, 6 do
    agents.define { id = "a" .. i, team = "t" }
end
teams.define { id = "t", wrap_up = "5s", no_answer_delay = "3s" }

-- Every kind of decision, valid or not, picked by the VM's deterministic math.random.
local durations = { 30, 5, "10s", 0, -5, 1e16, 0 / 0, "12x", true }
local function any(list)
    return list[math.random(#list)]
end

policies.register("chaos", {
    decide = function(ctx)
        local c = ctx.candidates
        local pick = math.random(100)
        local someone = c[math.random(#c)]
        if pick <= 30 then
            for _, a in c do
                if not a.blocked and not ctx.tried[a.id] then
                    return policies.offer(a, 20)
                end
            end
            return policies.wait()
        elseif pick <= 40 then
            return policies.offer(someone, any(durations))
        elseif pick <= 48 then
            return policies.offer_many({ someone, someone, c[1] }, 20, any(durations))
        elseif pick <= 58 then
            return policies.wait(any(durations), math.random(2) == 1 and someone or nil)
        elseif pick <= 62 then
            return policies.wait(nil, { { idx = 99 } })
        elseif pick <= 66 then
            return policies.overflow(any({ "rust_q", "lua_q", "nowhere", 7 }))
        elseif pick <= 69 then
            return policies.give_up("chaos")
        elseif pick <= 72 then
            error("chaos error")
        elseif pick <= 75 then
            error(setmetatable({}, { __tostring = function() while true do end end }))
        elseif pick <= 77 then
            while true do end
        elseif pick <= 80 then
            someone.weight = 5
        elseif pick <= 83 then
            table.sort(c, function(a, b) return a.id > b.id end)
            ctx:skip(c[1], string.rep("r", 500))
            return policies.wait(1)
        elseif pick <= 86 then
            local t = {}
            t.t = t
            ctx.conversation.memo.loop = t
            return policies.wait(2)
        elseif pick <= 90 then
            return 42
        elseif pick <= 93 then
            return nil
        end
        return "offer", { idx = -1 }, 20
    end,
})

queues.define { id = "lua_q", agents = { "a1", "a2", "a3", "a4" }, policy = "chaos", retry_after_error = "3s",
                max_wait = "10m", on_max_wait = "rust_q" }
queues.define { id = "rust_q", agents = { "a3", "a4", "a5", "a6" }, policy = "rust_chaos", retry_after_error = "4s",
                max_wait = "15m" }
"#;

/// A small deterministic generator, so a failing run can be repeated from its seed.
struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        self.0 >> 33
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// The Rust side of the chaos: random decisions, deterministic in what the policy is shown
/// (the journal is replayed through it), many of them invalid.
struct RustChaos;

impl Policy for RustChaos {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: "rust_chaos".into(), ..Default::default() }
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        let seed = ctx.conversation.id.bytes().fold(ctx.now.0 as u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
        let mut rng = Lcg(seed ^ (ctx.conversation.attempts.len() as u64) << 17);
        let c = ctx.candidates;
        let someone = c[rng.below(c.len() as u64) as usize];
        let secs = |rng: &mut Lcg| {
            [Duration::from_secs(20), Duration::ZERO, Duration(-5), Duration(i64::MAX)][rng.below(4) as usize]
        };
        Ok(match rng.below(10) {
            0..=3 => match c.iter().find(|&&ix| ctx.blocked(&ctx.agents[ix as usize]).is_none()) {
                Some(&ix) => Decision::Offer { agents: vec![ix], timeout: Duration::from_secs(20), extend_after: None },
                None => Decision::Wait { retry_after: None, for_agents: Vec::new() },
            },
            4 => Decision::Offer {
                agents: vec![someone, someone],
                timeout: secs(&mut rng),
                extend_after: Some(secs(&mut rng)),
            },
            5 => Decision::Wait { retry_after: Some(secs(&mut rng)), for_agents: vec![rng.below(50) as AgentIx] },
            6 => Decision::Overflow { queue: ["lua_q", "rust_q", "nowhere"][rng.below(3) as usize].into() },
            7 => {
                skipped.push((rng.below(40) as AgentIx, Reason::Fixed("made up")));
                Decision::Wait { retry_after: Some(Duration::from_secs(3)), for_agents: Vec::new() }
            }
            8 if rng.below(4) == 0 => panic!("rust chaos"),
            _ => return Err("rust chaos error".into()),
        })
    }
}

fn start_engine(scripts: &Path, db: &Path) -> Handle {
    let clock = VirtualClock::starting_at(start());
    let store = SqliteStore::open(db).unwrap();
    Builder::new(scripts).clock(clock).store(store).policy(RustChaos).start().unwrap()
}

/// What a user could see of the state: every conversation and agent as the API shows them,
/// and the pending timers.
async fn snapshot(handle: &Handle, conversations: &[String]) -> Value {
    let ids = conversations.to_vec();
    handle
        .read(move |e| {
            let cs: BTreeMap<&String, Value> = ids
                .iter()
                .filter_map(|id| Some((id, json!(rota::views::conversation(e, e.conversation(id)?)))))
                .collect();
            // Time in state is read off the clock, which a replay leaves at the last step's time
            // (advancing a virtual clock past no timer is not a step), so it is left out.
            let agents: Vec<Value> = e
                .agents()
                .iter()
                .map(|a| {
                    let mut v = json!(rota::views::agent(e, a));
                    v.as_object_mut().map(|o| o.remove("time_in_state_ms"));
                    v
                })
                .collect();
            serde_json::json!({ "conversations": cs, "agents": agents, "timers": e.timers(), "now": e.now() })
        })
        .await
        .unwrap()
}

/// The legal shapes of a conversation, and an offer timer for every offer pending.
async fn check_invariants(handle: &Handle, ids: &[String], step: usize) {
    let ids = ids.to_vec();
    let problems = handle
        .read(move |e| {
            let mut problems = Vec::new();
            let timers = e.timers();
            for id in &ids {
                let Some(c) = e.conversation(id) else { continue };
                let pending = c.attempts.iter().filter(|a| a.outcome.as_str() == "pending").count();
                let timed = timers.iter().any(|t| t.kind == "offer_timeout" && t.subject == **id);
                let status = c.status.as_str();
                let ok = match status {
                    "offered" => pending > 0 && timed && c.offer.is_some(),
                    "queued" => pending == 0 && !timed && c.offer.is_none(),
                    "assigned" | "post_processing" => pending == 0 && c.agent.is_some(),
                    "closed" | "abandoned" | "gave_up" | "max_wait_exceeded" => {
                        pending == 0 && !timed && c.ended_at.is_some()
                    }
                    _ => false,
                };
                if !ok {
                    problems.push(format!("{id}: {status} with {pending} pending offer(s), timer {timed}"));
                }
            }
            problems
        })
        .await
        .expect("the engine still answers (no panic)");
    assert!(problems.is_empty(), "step {step}: {problems:?}");
}

/// A second engine replayed from a copy of the journal holds the same state.
async fn check_replay(handle: &Handle, dir: &Path, db: &Path, ids: &[String], step: usize) {
    let live = snapshot(handle, ids).await;
    let copy = dir.join(format!("replay-{step}"));
    std::fs::create_dir_all(&copy).unwrap();
    for suffix in ["", "-wal"] {
        let from = format!("{}{suffix}", db.display());
        if Path::new(&from).exists() {
            std::fs::copy(&from, copy.join(format!("rota.db{suffix}"))).unwrap();
        }
    }
    let replayed = start_engine(dir, &copy.join("rota.db"));
    let again = snapshot(&replayed, ids).await;
    replayed.shutdown();
    if live != again {
        let (a, b) = (live.to_string(), again.to_string());
        let at = a.bytes().zip(b.bytes()).position(|(x, y)| x != y).unwrap_or(0);
        panic!(
            "step {step}: replay differs near …{}… vs …{}…",
            &a[at.saturating_sub(200)..(at + 200).min(a.len())],
            &b[at.saturating_sub(200)..(at + 200).min(b.len())]
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn random_policies_and_inputs_keep_every_invariant() {
    let seed: u64 = std::env::var("ROTA_PROPERTY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(1);
    let steps: usize = std::env::var("ROTA_PROPERTY_STEPS").ok().and_then(|s| s.parse().ok()).unwrap_or(1500);
    let scratch = Scratch::new(&[("rules.lua", RULES)]);
    let db = scratch.0.join("state").join("rota.db");
    std::fs::create_dir_all(db.parent().unwrap()).unwrap();
    let handle = Arc::new(start_engine(&scratch.0, &db));
    let mut rng = Lcg(seed);
    let mut ids: Vec<String> = Vec::new();
    let budget = StdDuration::from_secs(5);
    for step in 0..steps {
        let agent = AGENTS[rng.below(AGENTS.len() as u64) as usize].to_string();
        let conversation = match ids.len() {
            0 => "none".to_string(),
            n => ids[rng.below(n as u64) as usize].clone(),
        };
        let input = match rng.below(20) {
            0..=3 => {
                let id = format!("c{step}");
                ids.push(id.clone());
                let queue = if rng.below(2) == 0 { "lua_q" } else { "rust_q" };
                Input::Arrive(Box::new(NewConversation { id, queue: queue.into(), ..Default::default() }))
            }
            4..=6 => Input::Accept { conversation, agent: Some(agent) },
            7 => Input::Decline { conversation, agent: Some(agent) },
            8 => Input::Close { conversation },
            9 => Input::Abandon { conversation },
            10 => Input::SignIn { agent },
            11 => Input::SignOut { agent },
            12 => Input::SetStatus { agent, status: ["callcenter", "ready", "dnd"][rng.below(3) as usize].into() },
            13 => Input::StartWorkDay { agent },
            14 => Input::EndWorkDay { agent },
            _ => {
                let by = Duration::from_secs(rng.below(90) as i64);
                let advanced = tokio::time::timeout(budget, handle.advance(by)).await;
                let advanced = advanced.unwrap_or_else(|_| panic!("step {step}: advancing {by} took over {budget:?}"));
                advanced.unwrap_or_else(|e| panic!("step {step}: advance: {e}"));
                check_invariants(&handle, &ids, step).await;
                continue;
            }
        };
        let shown = format!("{input:?}");
        match tokio::time::timeout(budget, handle.submit(input)).await {
            Err(_) => panic!("step {step}: {shown} took over {budget:?}"),
            Ok(Ok(_) | Err(rota::EngineError::Input(_))) => {}
            Ok(Err(e)) => panic!("step {step}: the engine failed on {shown}: {e}"),
        }
        check_invariants(&handle, &ids, step).await;
        if step % 500 == 499 {
            check_replay(&handle, &scratch.0, &db, &ids, step).await;
        }
    }
    check_replay(&handle, &scratch.0, &db, &ids, steps).await;
    let decisions = handle.read(|e| (e.metrics().decisions, e.metrics().policy_errors)).await.unwrap();
    let ended = {
        let ids = ids.clone();
        handle
            .read(move |e| ids.iter().filter(|id| e.conversation(id).is_some_and(|c| c.status.is_ended())).count())
            .await
            .unwrap()
    };
    eprintln!(
        "seed {seed}: {steps} steps, {} conversations ({ended} ended), decisions and failures {decisions:?}",
        ids.len()
    );
    assert!(decisions.0 > 200 && decisions.1 > 50, "the chaos was exercised: {decisions:?}");
}
