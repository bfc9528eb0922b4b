//! Memory levels off under a steady, ordinary load: five queues of ten agents taking calls for
//! hours of virtual time, callers who hang up after waiting, and a queue whose callers wait for
//! a skill nobody has (so their policy decides "wait" again every time an agent frees up). What
//! the engine holds — conversations, decision traces, timers, Lua memory — stops growing once
//! the kept ended conversations are full.

use crate::common;

use std::collections::BTreeMap;

use common::*;
use rota::engine::Footprint;
use rota::time::{Duration, Timestamp};
use rota::{EngineConfig, Input, Update};

const KEEP_ENDED: usize = 300;

fn rules() -> String {
    let mut s = String::new();
    for a in 0..50 {
        s += &format!("agents.define {{ id = \"a{a}\" }}\n");
    }
    for q in 0..5 {
        let members: Vec<String> = (0..10).map(|k| format!("\"a{}\"", q * 10 + k)).collect();
        s += &format!(
            "queues.define {{ id = \"q{q}\", agents = {{ {} }}, policy = \"longest_idle\", options = {{ timeout = \"20s\" }} }}\n",
            members.join(", ")
        );
    }
    s += r#"
policies.register("specialist", {
    decide = function(ctx)
        for _, a in ctx.candidates do
            ctx:skip(a, "no rare skill")
        end
        return policies.wait()
    end,
})
queues.define { id = "rare", agents = { "a0", "a10", "a20", "a30", "a40" }, policy = "specialist", max_wait = "20m" }
"#;
    s
}

#[test]
fn what_the_engine_holds_levels_off_under_a_steady_load() {
    let dir = Scratch::new(&[("rules.lua", &rules())]);
    let mut config = EngineConfig::new(&dir.0);
    config.retain_ended = KEEP_ENDED;
    let (mut engine, _clock) = engine_with(config);
    let agents: Vec<String> = (0..50).map(|a| format!("a{a}")).collect();
    ready(&mut engine, &agents.iter().map(String::as_str).collect::<Vec<_>>());

    // Calls being talked on, by when they end; callers waiting, by when they hang up.
    let mut talking: BTreeMap<(Timestamp, String), ()> = BTreeMap::new();
    let mut patience: BTreeMap<String, Timestamp> = BTreeMap::new();
    let mut samples: Vec<Footprint> = Vec::new();
    let mut n = 0u64;
    let step = Duration::from_secs(2);
    let hours = 4;
    for tick in 0..(hours * 1800) {
        let now = start() + Duration(step.0 * tick as i64);
        let mut updates = engine.advance_to(now);
        // One call every two seconds, spread over the queues; one a minute for the rare skill.
        n += 1;
        let (id, queue) = if tick % 30 == 0 {
            (format!("r{n}"), "rare".to_string())
        } else {
            (format!("c{n}"), format!("q{}", n % 5))
        };
        updates.extend(engine.handle(arrive(&id, &queue)).unwrap());
        // Callers of the rare skill wait until the queue's max_wait; the others hang up in 2m.
        if queue != "rare" {
            patience.insert(id, now + Duration::from_secs(120));
        }
        let mut k = 0;
        while k < updates.len() {
            if let Update::Offered { conversation, agents, .. } = updates[k].update.clone() {
                let input =
                    Input::Accept { conversation: conversation.to_string(), agent: Some(agents[0].to_string()) };
                updates.extend(engine.handle(input).unwrap());
                patience.remove(&*conversation);
                talking.insert((now + Duration::from_secs(60), conversation.to_string()), ());
            }
            k += 1;
        }
        let ended: Vec<(Timestamp, String)> = talking.range(..(now, String::new())).map(|(k, _)| k.clone()).collect();
        for key in ended {
            talking.remove(&key);
            engine.handle(Input::Close { conversation: key.1 }).unwrap();
        }
        let tired: Vec<String> = patience.iter().filter(|(_, &t)| t <= now).map(|(c, _)| c.clone()).collect();
        for c in tired {
            patience.remove(&c);
            let waiting = engine.conversation(&c).is_some_and(|c| c.status.is_waiting());
            if waiting {
                engine.handle(Input::Abandon { conversation: c }).unwrap();
            }
        }
        if tick % 1800 == 1799 {
            samples.push(engine.footprint());
        }
    }
    // Of the conversations still kept, the one asked about most often, and how many it keeps.
    let (mut most_decisions, mut most_kept) = (0, 0);
    for id in (1..=n).map(|i| format!("r{i}")) {
        if let Some(c) = engine.conversation(&id) {
            let decisions = c.traces.dropped() + c.traces.iter().map(|t| 1 + t.repeated).sum::<u64>();
            most_decisions = most_decisions.max(decisions);
            most_kept = most_kept.max(c.traces.len());
        }
    }
    let [_, second, third, fourth] = samples[..] else { panic!("{samples:?}") };
    assert!(most_decisions > 50, "a caller waiting for the rare skill was asked about {most_decisions} times");
    assert!(most_kept <= 40, "{most_kept} traces kept for one conversation");
    for later in [third, fourth] {
        assert!(later.conversations <= second.conversations + 50, "conversations: {second:?} then {later:?}");
        assert!(later.traces <= second.traces + second.traces / 10, "traces: {second:?} then {later:?}");
        assert!(later.timers <= second.timers + 50, "timers: {second:?} then {later:?}");
        assert!(later.lua_bytes <= second.lua_bytes + second.lua_bytes / 5, "Lua memory: {second:?} then {later:?}");
    }
}
