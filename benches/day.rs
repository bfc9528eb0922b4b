//! A contact-center day: 1,000 agents in 100 queues, conversations arriving all day, some
//! offers missed, wrap-ups, pauses and presence changes. Run twice in one process on the
//! same workload: once with the stdlib Lua policies, once with the same policies in Rust.
//!
//! `cargo bench --bench day` (add `-- --hours 2` for a shorter day). With `-- --channels`,
//! a multi-channel day: agents take one call (exclusive) or up to three chats, and 60% of
//! the conversations are chats, arriving twice as often.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::policy::Policy;
use rota::time::{Duration, Timestamp};
use rota::{Engine, EngineConfig, Input, Stamped, Update, VirtualClock};

mod common;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/rust_policies.rs"]
mod rust_policies;
use rng::Rng;
use rust_policies::rust_policies;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

const QUEUES: usize = 100;
const POLICIES: [&str; 5] =
    ["longest_idle", "round_robin", "fewest_conversations", "least_talk_time", "strictly_in_order"];

/// The policies the queues rotate through: all five, or those named in
/// `ROTA_BENCH_POLICIES` (comma-separated), to profile one at a time.
fn policies() -> Vec<String> {
    match std::env::var("ROTA_BENCH_POLICIES") {
        Ok(list) => list.split(',').map(|p| p.trim().to_string()).collect(),
        Err(_) => POLICIES.iter().map(|p| p.to_string()).collect(),
    }
}

/// The rules of the day, for `agents` agents: every queue lists 10 agents of its own and
/// 10 of the next queue, so each agent serves two queues.
fn scripts(agents: usize, channels: bool) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rota-bench-day-{agents}-{channels}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let per_queue = agents / QUEUES;
    let rules = format!(
        r#"
teams.define {{ id = "t", wrap_up = "10s", no_answer_delay = "5s", max_no_answer = 3, on_max_no_answer = {{ pause = "no_answer" }}{capacity} }}
presence.define {{ id = "training", text = "Away - in training", base = "away" }}
presence.pause_cause {{ id = "no_answer" }}
presence.pause_cause {{ id = "break" }}
for i = 1, {agents} do agents.define {{ id = "agent" .. i, team = "t" }} end
-- The cheapest possible policy, to measure what a decision costs around the policy itself.
policies.register("probe_wait", {{ options = {{ timeout = "duration" }}, decide = function(ctx) return policies.wait() end }})
local used = {{ "{}" }}
for q = 0, {q_last} do
    local members = {{}}
    for k = 1, {per_queue} do table.insert(members, "agent" .. (q * {per_queue} + k)) end
    for k = 1, {per_queue} do table.insert(members, "agent" .. (((q + 1) % {QUEUES}) * {per_queue} + k)) end
    local p = used[q % #used + 1]
    local options = p == "strictly_in_order" and {{ pass_after = "20s" }} or {{ timeout = "20s" }}
    queues.define {{ id = "q" .. q, agents = members, policy = p, options = options }}
end
"#,
        policies().join("\", \""),
        q_last = QUEUES - 1,
        capacity = if channels { r#", capacity = { voice = "exclusive", chat = 3 }"# } else { "" },
    );
    std::fs::write(dir.join("rules.lua"), rules).unwrap();
    dir
}

struct Outcome {
    events: u64,
    decisions: u64,
    seconds: f64,
    p50_ns: u32,
    p99_ns: u32,
    conversations: u64,
    answered: u64,
    missed: u64,
}

/// The agents' and customers' side of the day: reacts to offers, talks, takes breaks.
fn run_day(scripts: &Path, agents: usize, hours: i64, rust: bool, channels: bool) -> Outcome {
    let start = Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
    let clock = VirtualClock::starting_at(start);
    let mut config = EngineConfig::new(scripts);
    config.record_latencies = true;
    config.retain_ended = 2_000;
    let policies: Vec<Box<dyn Policy>> = if rust { rust_policies() } else { Vec::new() };
    let mut engine = Engine::new(config, Arc::new(clock.clone()), policies).unwrap_or_else(|e| panic!("{e}"));
    for i in 1..=agents {
        let agent = format!("agent{i}");
        engine.handle(Input::SignIn { agent: agent.clone() }).unwrap();
        engine.handle(Input::SetStatus { agent, status: "callcenter".into() }).unwrap();
    }
    engine.metrics_mut().latencies.clear();
    let setup_inputs = engine.metrics().inputs;

    let mut rng = Rng(42);
    let mut plan = Plan::default();
    let end = start + Duration::from_secs(hours * 3600);
    // About 3.7 conversations a second keep 1,000 agents ~70% busy (3 min talk, 10 s wrap-up).
    // Chats (three at once) take less of an agent: twice the arrivals keep them as busy.
    let mean_gap_ms = 270 * 1000 / agents as i64 / if channels { 2 } else { 1 };
    let mut t = start;
    let mut n = 0u64;
    while t < end {
        t = t + Duration(1 + rng.below(2 * mean_gap_ms as u64) as i64);
        n += 1;
        let chat = channels && rng.chance(60);
        plan.push(t, PlanItem::Arrive(n, rng.below(QUEUES as u64) as u32, chat));
    }
    for i in 1..=agents {
        // Each agent goes to training once and takes one break during the day.
        let at = start + Duration::from_secs(rng.below((hours * 3600) as u64) as i64);
        plan.push(at, PlanItem::Presence(i as u32, "training"));
        plan.push(at + Duration::from_secs(600), PlanItem::Presence(i as u32, "available"));
        let at = start + Duration::from_secs(rng.below((hours * 3600) as u64) as i64);
        plan.push(at, PlanItem::Pause(i as u32));
    }

    let debug = std::env::var_os("ROTA_BENCH_DEBUG").is_some();
    let mut tally: std::collections::BTreeMap<(String, String), u64> = Default::default();
    let began = Instant::now();
    loop {
        let next_plan = plan.next_at();
        let next_timer = engine.next_due();
        let updates: Vec<Stamped> = match (next_plan, next_timer) {
            (None, None) => break,
            (Some(p), Some(d)) if d <= p => {
                clock.set(d);
                engine.fire_due()
            }
            (None, Some(d)) => {
                if d > end + Duration::from_secs(3600) {
                    break;
                }
                clock.set(d);
                engine.fire_due()
            }
            (Some(_), _) => {
                let (at, item) = plan.pop().unwrap();
                clock.set(at);
                let input = match item {
                    PlanItem::Arrive(n, q, chat) => Input::Arrive(Box::new(NewConversation {
                        id: format!("c{n}"),
                        queue: format!("q{q}"),
                        channel: if chat { "chat" } else { "voice" }.into(),
                        ..Default::default()
                    })),
                    PlanItem::Accept(c, a) => Input::Accept { conversation: c.to_string(), agent: Some(a.to_string()) },
                    PlanItem::Close(c) => Input::Close { conversation: c.to_string() },
                    PlanItem::Presence(a, p) => Input::SetPresence { agent: format!("agent{a}"), presence: p.into() },
                    PlanItem::Pause(a) => Input::Pause { agent: format!("agent{a}"), cause: "break".into() },
                    PlanItem::Resume(a) => Input::Resume { agent: a.to_string() },
                };
                // Some inputs are refused on purpose-free grounds (pausing a busy agent, accepting
                // an offer that just timed out): that is part of a real day, and costs the same.
                engine.handle(input).unwrap_or_default()
            }
        };
        let now = clock_now(&clock);
        for u in updates {
            if debug {
                if let Update::Decided { trace, .. } = &u.update {
                    let kind = trace.decision.to_string().split(' ').next().unwrap_or("").to_string();
                    *tally.entry((trace.policy.clone(), kind)).or_insert(0u64) += 1;
                }
            }
            match u.update {
                // 90% of offers are answered after 2-10 s; the rest time out (a miss).
                Update::Offered { conversation, agents, .. } if rng.chance(90) => {
                    let at = now + Duration::from_secs(2 + rng.below(9) as i64);
                    plan.push(at, PlanItem::Accept(conversation, agents[0].clone()));
                }
                Update::Accepted { conversation, .. } => {
                    let at = now + Duration::from_secs(60 + rng.below(241) as i64);
                    plan.push(at, PlanItem::Close(conversation));
                }
                Update::AgentState { agent, state: "paused", .. } => {
                    plan.push(now + Duration::from_secs(300), PlanItem::Resume(agent));
                }
                _ => {}
            }
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    if std::env::var_os("ROTA_BENCH_DEBUG").is_some() {
        let waiting: usize = (0..QUEUES).map(|q| engine.waiting(&format!("q{q}")).map_or(0, |w| w.len())).sum();
        let decisions = engine.metrics().decisions;
        eprintln!("waiting at the end: {waiting}; decisions {decisions}; timers {}", engine.pending_timers());
        for ((policy, kind), n) in &tally {
            eprintln!("  {policy:>22} {kind:>9} {n}");
        }
    }
    let m = engine.metrics();
    let mut lat = m.latencies.clone();
    lat.sort_unstable();
    let pct =
        |p: f64| lat.get(((lat.len() as f64 * p) as usize).min(lat.len().saturating_sub(1))).copied().unwrap_or(0);
    let answered: u64 = engine.agents().iter().map(|a| a.counters.answered as u64).sum();
    let missed: u64 = engine.agents().iter().map(|a| a.counters.missed as u64).sum();
    Outcome {
        events: m.inputs - setup_inputs + m.timers_fired,
        decisions: m.decisions,
        seconds,
        p50_ns: pct(0.50),
        p99_ns: pct(0.99),
        conversations: n,
        answered,
        missed,
    }
}

fn clock_now(clock: &VirtualClock) -> Timestamp {
    use rota::Clock;
    clock.now()
}

/// What the outside world does next, in (time, order of planning) order. The day's arrivals
/// are drawn up front in time order, so they wait in a list; only what is planned in
/// reaction to the engine (and the presence changes) goes through a heap, which keeps the
/// driver's own cost small beside the engine's.
#[derive(Default)]
struct Plan {
    arrivals: std::collections::VecDeque<(Timestamp, u64, PlanItem)>,
    heap: BinaryHeap<Reverse<(Timestamp, u64, PlanItem)>>,
    seq: u64,
}

impl Plan {
    fn push(&mut self, at: Timestamp, item: PlanItem) {
        self.seq += 1;
        let in_order = self.arrivals.back().is_none_or(|&(t, _, _)| t <= at);
        if matches!(item, PlanItem::Arrive(..)) && in_order {
            self.arrivals.push_back((at, self.seq, item));
        } else {
            self.heap.push(Reverse((at, self.seq, item)));
        }
    }

    /// Which comes first: the next arrival (true) or the heap's top (false).
    fn arrival_first(&self) -> Option<bool> {
        match (self.arrivals.front(), self.heap.peek()) {
            (None, None) => None,
            (Some(_), None) => Some(true),
            (None, Some(_)) => Some(false),
            (Some(&(t, s, _)), Some(Reverse((u, r, _)))) => Some((t, s) < (*u, *r)),
        }
    }

    fn next_at(&self) -> Option<Timestamp> {
        match self.arrival_first()? {
            true => self.arrivals.front().map(|a| a.0),
            false => self.heap.peek().map(|Reverse(h)| h.0),
        }
    }

    fn pop(&mut self) -> Option<(Timestamp, PlanItem)> {
        match self.arrival_first()? {
            true => self.arrivals.pop_front().map(|(t, _, item)| (t, item)),
            false => self.heap.pop().map(|Reverse((t, _, item))| (t, item)),
        }
    }
}

#[derive(PartialEq, Eq, PartialOrd, Ord)]
enum PlanItem {
    /// A conversation, its queue, and whether it is a chat.
    Arrive(u64, u32, bool),
    Accept(Arc<str>, Arc<str>),
    Close(Arc<str>),
    Presence(u32, &'static str),
    Pause(u32),
    Resume(Arc<str>),
}

/// Live bytes (Rust heap + Lua heap) of an engine with `agents` agents signed in.
fn memory_with(agents: usize) -> (isize, usize) {
    let dir = scripts(agents, false);
    let before = common::live_bytes();
    let clock = VirtualClock::starting_at(Timestamp(0));
    let mut engine = Engine::new(EngineConfig::new(&dir), Arc::new(clock), Vec::new()).unwrap();
    for i in 1..=agents {
        let agent = format!("agent{i}");
        engine.handle(Input::SignIn { agent: agent.clone() }).unwrap();
        engine.handle(Input::SetStatus { agent, status: "callcenter".into() }).unwrap();
    }
    let rust = common::live_bytes() - before;
    let lua = engine.lua_memory();
    drop(engine);
    let _ = std::fs::remove_dir_all(dir);
    (rust, lua)
}

/// `--probe`: the cost of one arrive + decide + abandon cycle on each queue policy, with
/// half the agents busy, so a policy's own cost can be told from the engine's.
fn probe(dir: &Path, agents: usize) {
    let clock = VirtualClock::starting_at(Timestamp(0));
    let mut engine = Engine::new(EngineConfig::new(dir), Arc::new(clock), Vec::new()).unwrap();
    for i in 1..=agents {
        let agent = format!("agent{i}");
        engine.handle(Input::SignIn { agent: agent.clone() }).unwrap();
        let status = if i % 2 == 0 { "callcenter" } else { "ready" };
        engine.handle(Input::SetStatus { agent, status: status.into() }).unwrap();
    }
    for q in 0..policies().len() {
        let n = 20_000;
        let started = Instant::now();
        for i in 0..n {
            let id = format!("p{q}-{i}");
            let arrive = NewConversation { id: id.clone(), queue: format!("q{q}"), ..Default::default() };
            engine.handle(Input::Arrive(Box::new(arrive))).unwrap();
            engine.handle(Input::Abandon { conversation: id }).unwrap();
        }
        let ns = started.elapsed().as_nanos() / n as u128;
        println!("q{q} ({}): {ns} ns per arrive + decide + abandon", policies()[q]);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--probe") {
        let dir = scripts(1000, false);
        probe(&dir, 1000);
        let _ = std::fs::remove_dir_all(dir);
        return;
    }
    let hours = args
        .iter()
        .position(|a| a == "--hours")
        .and_then(|i| args.get(i + 1))
        .and_then(|h| h.parse().ok())
        .unwrap_or(8);
    let agents = 1000;
    let channels = args.iter().any(|a| a == "--channels");
    let dir = scripts(agents, channels);
    println!("contact-center day: {agents} agents, {QUEUES} queues (20 agents each), {hours} h of virtual time");
    if channels {
        println!("multi-channel: a call (exclusive) or up to 3 chats per agent; 60% chats, twice the arrivals");
    }
    println!("policies: {}", policies().join(", "));
    println!();
    println!("| policies | events | decisions | wall s | events/s | decision p50 | decision p99 | conversations | answered | missed |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    let mut rates = Vec::new();
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    for (label, rust) in [("Lua (stdlib)", false), ("Rust (same logic)", true)] {
        if only.as_deref().is_some_and(|o| o != if rust { "rust" } else { "lua" }) {
            continue;
        }
        let o = run_day(&dir, agents, hours, rust, channels);
        let rate = o.events as f64 / o.seconds;
        rates.push(rate);
        println!(
            "| {label} | {} | {} | {:.2} | {:.0} | {:.1} µs | {:.1} µs | {} | {} | {} |",
            o.events,
            o.decisions,
            o.seconds,
            rate,
            o.p50_ns as f64 / 1000.0,
            o.p99_ns as f64 / 1000.0,
            o.conversations,
            o.answered,
            o.missed
        );
    }
    println!();
    if rates.len() == 2 {
        println!("Lua run at {:.2} of the Rust run's speed", rates[0] / rates[1]);
    }
    let (rust_small, lua_small) = memory_with(100);
    let (rust_large, lua_large) = memory_with(1000);
    let per_agent_rust = (rust_large - rust_small) as f64 / 900.0;
    let per_agent_lua = (lua_large as f64 - lua_small as f64) / 900.0;
    println!(
        "memory per agent (marginal, 100 -> 1000 agents): {:.0} B Rust heap + {:.0} B Lua heap = {:.0} B",
        per_agent_rust,
        per_agent_lua,
        per_agent_rust + per_agent_lua
    );
    let _ = std::fs::remove_dir_all(dir);
}
