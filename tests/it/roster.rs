//! The roster's walks (`ctx:members`, `ctx:skilled`) against a scan of `ctx.candidates` on
//! random states: a policy computes every answer both ways in each decision and fails the
//! decision when they differ, while random inputs move agents through every status, state,
//! presence, availability, load and counter the roster keeps. A third queue's policy scans
//! the old way and logs the host reasons it sees; its traces, which the host now makes from
//! the roster's counts, must say the same.

use crate::common;

use std::collections::BTreeMap;
use std::fmt::Write;

use common::*;
use rota::conversation::NewConversation;
use rota::decision::Decided;
use rota::time::Duration;
use rota::update::{Stamped, Update};
use rota::Clock;
use rota::Input;

const AGENTS: usize = 24;
const SKILLS: [&str; 3] = ["en", "de", "fr"];

/// The comparison, in Luau. The scans are the stdlib's own full-scan helpers
/// (`candidates.best`, `candidates.reason`), so the walks are held to what the policies
/// computed before there was a roster.
const COMPARE: &str = r#"
local candidates = require("rota.candidates")

local function id(a)
    return if a then a.id else "nobody"
end

local function same(what, scan, walk)
    if scan ~= walk then
        error(what .. ": the scan says " .. scan .. ", the walk says " .. walk)
    end
end

local function eligible(ctx)
    local out = {}
    for i, a in ctx.candidates do
        if candidates.reason(ctx, a) == nil then
            table.insert(out, i)
        end
    end
    return out
end

local function walked(iterator)
    local out = {}
    for a, i in iterator do
        table.insert(out, a.id .. "@" .. i)
    end
    return table.concat(out, " ")
end

local function named(ctx, positions)
    local out = {}
    for _, i in positions do
        table.insert(out, ctx.queue.agents[i].id .. "@" .. i)
    end
    return table.concat(out, " ")
end

-- A policy of the old kind (a scan, no walk) that logs what the host's part of its trace
-- must be: every member the queue cannot offer this conversation, counted by reason, and
-- the first ten of them.
policies.register("scan_and_wait", {
    decide = function(ctx)
        local counts, first = {}, {}
        for _, a in ctx.candidates do
            local why = candidates.blocked(ctx.queue, a, ctx.conversation.channel)
            if why then
                counts[why] = (counts[why] or 0) + 1
                if #first < 10 then
                    table.insert(first, a.id .. ":" .. why)
                end
            end
        end
        local all = {}
        for why, n in counts do
            table.insert(all, why .. "=" .. n)
        end
        table.sort(all)
        log.info("expect " .. table.concat(all, ",") .. " | " .. table.concat(first, " "))
        return policies.wait()
    end,
})

policies.register("compare", {
    options = { timeout = { type = "duration", default = "40s" } },
    decide = function(ctx)
        for order, field in { idle = "idle_since", answered = "answered", talk_time = "talk_time" } do
            local scan = candidates.best(ctx, function(a, b) return a[field] < b[field] end)
            same(order, id(scan), id(candidates.first(ctx, order)))
        end
        local fit = eligible(ctx)
        log.info("fit " .. #fit)
        same("queue order", named(ctx, fit), walked(ctx:members("queue")))
        -- Round robin's walk: after a position, round once.
        local n = #ctx.queue.agents
        local start = math.random(0, n + 1)
        local round = {}
        for step = 1, n do
            local i = (start + step - 1) % n + 1
            if table.find(fit, i) then
                table.insert(round, i)
            end
        end
        if start >= 1 and start <= n then
            same("queue order after " .. start, named(ctx, round), walked(ctx:members("queue", start)))
        end
        for _, skill in { "en", "de", "fr", "xx" } do
            local with = {}
            for _, i in fit do
                if ctx.queue.agents[i].skills[skill] ~= nil then
                    table.insert(with, i)
                end
            end
            table.sort(with, function(i, j)
                local a, b = ctx.queue.agents[i].skills[skill], ctx.queue.agents[j].skills[skill]
                return a > b or (a == b and i < j)
            end)
            same("skilled " .. skill, named(ctx, with), walked(ctx:skilled(skill)))
        end
        -- Offering only now and then leaves a crowd to choose from in most decisions.
        local a = candidates.first(ctx, "idle")
        if a == nil or math.random(3) > 1 then
            return policies.wait()
        end
        return policies.offer(a, ctx.options.timeout)
    end,
})
"#;

struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Agents with random skills and capacities, two queues over them in different orders (one
/// routing ready agents too, one allowing only some presences), custom presences and causes.
fn rules(rng: &mut Rng) -> String {
    let mut r = String::from(
        "presence.define { id = \"lunch\", base = \"away\" }\n\
         presence.define { id = \"backoffice\", base = \"busy_dnd\" }\n\
         presence.pause_cause { id = \"coffee\" }\n\
         agents.track_work_day(true)\n",
    );
    for i in 0..AGENTS {
        let mut skills = Vec::new();
        for s in SKILLS {
            if rng.below(2) == 0 {
                // Levels repeat, so ties are common.
                skills.push(format!("{s} = {}", 1 + rng.below(3)));
            }
        }
        let capacity = match rng.below(3) {
            0 => ", capacity = { chat = 2 }",
            1 => ", capacity = { chat = 0 }",
            _ => "",
        };
        writeln!(r, "agents.define {{ id = \"a{i}\", skills = {{ {} }}{capacity} }}", skills.join(", ")).unwrap();
    }
    let forward: Vec<String> = (0..AGENTS).map(|i| format!("\"a{i}\"")).collect();
    let backward: Vec<String> = forward.iter().rev().cloned().collect();
    writeln!(r, "queues.define {{ id = \"q1\", agents = {{ {} }}, policy = \"compare\" }}", forward.join(", "))
        .unwrap();
    writeln!(
        r,
        "queues.define {{ id = \"q2\", agents = {{ {} }}, policy = \"compare\", statuses = {{ \"ready\", \"callcenter\" }}, \
         allowed = {{ presence.base.available, presence.base.away }} }}",
        backward.join(", ")
    )
    .unwrap();
    writeln!(
        r,
        "queues.define {{ id = \"q3\", agents = {{ {} }}, policy = \"scan_and_wait\", allowed = {{ presence.base.available }} }}",
        forward.join(", ")
    )
    .unwrap();
    r
}

#[test]
fn a_walk_of_the_roster_and_a_scan_of_the_candidates_choose_the_same_agents() {
    let mut rng = Rng(7);
    let dir = Scratch::new(&[("rules.lua", &rules(&mut rng)), ("compare.lua", COMPARE)]);
    // Each decision scans and walks every order in Lua: in a debug build on a busy machine
    // that can take longer than the default budget, which is not what this test is about.
    let mut config = rota::engine::EngineConfig::new(&dir.0);
    config.limits.cpu_per_call = std::time::Duration::from_secs(5);
    let (mut engine, clock) = engine_with(config);
    let mut conversations: Vec<String> = Vec::new();
    let mut seen = Seen::default();
    // Everyone starts at work, so there is a crowd to choose from.
    for i in 0..AGENTS {
        let agent = format!("a{i}");
        engine.handle(Input::SignIn { agent: agent.clone() }).unwrap();
        engine.handle(Input::StartWorkDay { agent: agent.clone() }).unwrap();
        engine.handle(Input::SetStatus { agent, status: "callcenter".into() }).unwrap();
    }
    for step in 0..2000 {
        let agent = format!("a{}", rng.below(AGENTS as u64));
        let conversation = match conversations.len() {
            0 => "none".to_string(),
            // Mostly recent ones, which are still going on.
            n => conversations[n - 1 - rng.below(n.min(8) as u64) as usize].clone(),
        };
        // Arrivals are rare next to what frees agents up, so decisions often have several to
        // choose from and their orders matter.
        let input = match rng.below(30) {
            0..=1 => {
                let id = format!("c{step}");
                conversations.push(id.clone());
                let mut requires = BTreeMap::new();
                if rng.below(3) == 0 {
                    requires.insert(SKILLS[rng.below(3) as usize].to_string(), (1 + rng.below(3)) as f64);
                }
                Input::Arrive(Box::new(NewConversation {
                    id,
                    queue: ["q1", "q2", "q3"][rng.below(3) as usize].into(),
                    channel: if rng.below(2) == 0 { "voice" } else { "chat" }.into(),
                    requires,
                    ..Default::default()
                }))
            }
            2..=4 => Input::Accept { conversation, agent: None },
            5 => Input::Decline { conversation, agent: None },
            6..=8 => Input::Close { conversation },
            9 => Input::Abandon { conversation },
            10..=12 => Input::SignIn { agent },
            13 => Input::SignOut { agent },
            14..=16 => Input::SetStatus {
                agent,
                status: ["callcenter", "callcenter", "ready", "dnd"][rng.below(4) as usize].into(),
            },
            17 => Input::SetPresence {
                agent,
                presence: ["available", "available", "lunch", "backoffice"][rng.below(4) as usize].into(),
            },
            18 => Input::Pause { agent, cause: "coffee".into() },
            19..=20 => Input::Resume { agent },
            21..=23 => Input::StartWorkDay { agent },
            24 => Input::EndWorkDay { agent },
            25 => Input::SetDismissed { agent, dismissed: rng.below(4) == 0 },
            _ => {
                let updates = engine.advance_to(clock.now() + Duration::from_secs(1 + rng.below(60) as i64));
                seen.check(step, &updates);
                continue;
            }
        };
        if let Ok(updates) = engine.handle(input) {
            seen.check(step, &updates);
        }
    }
    // Enough decisions with a choice to make, offers to move agents' counters along, and
    // traces of the old kind with reasons in them.
    let Seen { crowded, offered, traced, .. } = seen;
    assert!(
        crowded > 400 && offered > 600 && traced > 5000,
        "{crowded} decisions with a choice, {offered} offers, {traced} traces"
    );
}

#[derive(Default)]
struct Seen {
    /// Decisions with two or more to choose from.
    crowded: usize,
    offered: usize,
    /// Traces of `scan_and_wait` with at least one reason, checked.
    traced: usize,
    /// What `scan_and_wait` logged last.
    expected: Option<String>,
}

impl Seen {
    /// Fails on a decision whose policy failed (a walk and a scan differed) and on a trace
    /// that is not what `scan_and_wait` expected; counts what was exercised.
    fn check(&mut self, step: usize, updates: &[Stamped]) {
        for u in updates {
            match &u.update {
                Update::Decided { conversation, trace } => {
                    assert!(trace.error.is_none(), "step {step}, {conversation}: {}", trace.error.as_deref().unwrap());
                    self.offered += matches!(trace.decision, Decided::Offer { .. }) as usize;
                    if trace.policy == "scan_and_wait" {
                        let mut all: Vec<String> =
                            trace.skipped.counts().iter().map(|(why, n)| format!("{why}={n}")).collect();
                        all.sort();
                        let first: Vec<String> =
                            trace.skipped.iter().map(|s| format!("{}:{}", s.agent, s.reason)).collect();
                        let said = format!("{} | {}", all.join(","), first.join(" "));
                        assert_eq!(Some(&said), self.expected.as_ref(), "step {step}, {conversation}");
                        self.traced += !all.is_empty() as usize;
                    }
                }
                // What the policies logged: how many could take it, or what the trace must say.
                Update::Log { message, .. } => {
                    if let Some(expected) = message.split("expect ").nth(1) {
                        self.expected = Some(expected.to_string());
                    } else if message.split("fit ").nth(1).and_then(|n| n.parse::<u32>().ok()).is_some_and(|n| n >= 2) {
                        self.crowded += 1;
                    }
                }
                _ => {}
            }
        }
    }
}

/// What a policy may get wrong with a walk fails that decision with a message that says
/// what to fix, and the next decision works: a walk kept in a memo and used in a later
/// decision, an order that does not exist, and starts that are zero, negative, huge or NaN.
#[test]
fn a_walk_misused_fails_one_decision_and_says_why() {
    let rules = r#"
agents.define { id = "a1" }
agents.define { id = "a2" }
local kept = nil
policies.register("misuse", {
    decide = function(ctx)
        local how = ctx.conversation.attributes.how
        if how == "keep" then
            kept = ctx:members("idle")
        elseif how == "reuse" then
            kept()
        elseif how == "unknown" then
            ctx:members("fastest")
        elseif how == "skill_without_name" then
            ctx:skilled(nil)
        elseif how == "start_on_idle" then
            ctx:members("idle", 1)
        else
            local n = 0
            for a, i in ctx:members("queue", tonumber(how)) do
                n += 1
            end
            if n ~= 2 then
                error("a start of " .. how .. " walked " .. n .. " members")
            end
        end
        return policies.wait()
    end,
})
queues.define { id = "q", agents = { "a1", "a2" }, policy = "misuse" }
"#;
    let dir = Scratch::new(&[("rules.lua", rules)]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1", "a2"]);
    let cases = [
        ("keep", None),
        ("reuse", Some("rules.lua:11: a ctx:members walk was used after its decision")),
        (
            "unknown",
            Some("rules.lua:13: ctx:members: unknown order `fastest` (one of: queue, idle, answered, talk_time)"),
        ),
        ("skill_without_name", Some("rules.lua:15: ctx:skilled expects a skill name")),
        ("start_on_idle", Some("rules.lua:17: ctx:members: only the \"queue\" order takes a start")),
        ("0", None),
        ("-5", None),
        ("1e300", None),
        ("nan", Some("rules.lua:20: ctx:members(\"queue\", after): `after` must be a position in ctx.queue.agents")),
        ("2", None),
    ];
    for (i, (how, failure)) in cases.into_iter().enumerate() {
        let id = format!("c{i}");
        let mut c = NewConversation { id: id.clone(), queue: "q".into(), ..Default::default() };
        c.attributes.insert("how".into(), serde_json::json!(how));
        engine.handle(Input::Arrive(Box::new(c))).unwrap();
        let trace = engine.conversation(&id).unwrap().traces.last().unwrap().clone();
        match failure {
            None => assert_eq!(trace.error, None, "{how}"),
            Some(message) => {
                let error = trace.error.clone().unwrap_or_else(|| panic!("{how}: no error"));
                assert!(error.starts_with(message), "{how}: {error}");
            }
        }
    }
}
