//! The engine through its Rust API: reloads that keep work, timers, availability, the async
//! handle and policies written in Rust.

use crate::common;

use common::*;
use rota::agent::AgentIx;
use rota::decision::{Decision, Reason};
use rota::directory::AgentRecord;
use rota::policy::{DecisionContext, Policy};
use rota::rules::PolicySpec;
use rota::runtime::Builder;
use rota::store::SqliteStore;
use rota::time::{Duration, Timestamp};
use rota::{EngineConfig, Input, VirtualClock};
use serde_json::json;

const AGENTS: &str = "agents.define { id = \"a1\" }\nagents.define { id = \"a2\" }\n";

fn queue(policy: &str) -> String {
    format!(
        "queues.define {{ id = \"q\", agents = {{ \"a1\", \"a2\" }}, policy = \"{policy}\", options = {{ {} }} }}\n",
        if policy == "strictly_in_order" { "pass_after = \"1h\"" } else { "timeout = \"1h\"" }
    )
}

#[test]
fn a_reload_keeps_agents_conversations_and_timers_and_reevaluates_waiting_ones() {
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", &queue("strictly_in_order"))]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(arrive("c1", "q")).unwrap();
    let updates = engine.handle(arrive("c2", "q")).unwrap();
    // Strictly in order, c2 waits for a1, who is ringing for c1.
    assert!(
        lines(&updates).iter().any(|l| l.starts_with("c2 decision by strictly_in_order in q: wait")),
        "{updates:?}"
    );
    let timers_before = engine.timers();

    dir.write(&[("queues.lua", &queue("longest_idle"))]);
    let (generation, updates) = engine.reload().unwrap();
    assert_eq!(generation, 2);
    let lines = lines(&updates);
    assert!(
        lines.contains(
            &"c2 decision by longest_idle in q (scripts reloaded (generation 2)): offer a2 (1h); skipped a1 (state_offered)"
                .to_string()
        ),
        "{lines:?}"
    );
    assert!(!lines.iter().any(|l| l.starts_with("c1 ")), "c1 keeps its offer: {lines:?}");
    assert_eq!(engine.agent("a1").unwrap().state.as_str(), "offered");
    assert_eq!(engine.conversation("c1").unwrap().status.as_str(), "offered");
    let c1_timeout = &timers_before.iter().find(|t| t.kind == "offer_timeout" && t.subject == "c1").unwrap().due;
    assert!(engine.timers().iter().any(|t| t.kind == "offer_timeout" && t.subject == "c1" && &t.due == c1_timeout));
    assert_eq!(engine.conversation("c2").unwrap().traces.last().unwrap().generation, 2);
}

#[test]
fn a_broken_reload_keeps_the_old_rules_running() {
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", &queue("longest_idle"))]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1", "a2"]);
    dir.write(&[(
        "queues.lua",
        "queues.define { id = \"q\", agents = { \"a1\" }, policy = \"longest_idle\", max_wait = \"5 minutes\" }",
    )]);
    let err = engine.reload().unwrap_err();
    assert_eq!(err.diagnostics[0].to_string(), "queues.lua:1: queues.define: field `max_wait`: bad duration `5 minutes`: use a number with a unit, like 30s, 5m, 12h, 1h30m or 1d");
    assert_eq!(engine.generation(), 1);
    let updates = engine.handle(arrive("c1", "q")).unwrap();
    assert!(lines(&updates).contains(&"c1 offered to a1 (timeout 1h)".to_string()));

    // A reload may not drop a queue that still holds conversations.
    dir.write(&[("queues.lua", "")]);
    let err = engine.reload().unwrap_err();
    assert!(err.diagnostics[0].message.contains("queue `q` was removed but still holds 1 conversation(s)"), "{err}");
    assert_eq!(engine.conversation("c1").unwrap().status.as_str(), "offered");
}

#[test]
fn timers_are_listed_in_due_order_and_fire_at_their_time() {
    let (mut engine, _clock) = engine(&fixture("policies"));
    ready(&mut engine, &["a1", "a2", "a3", "a4"]);
    engine.handle(arrive("c1", "patient")).unwrap();
    engine.handle(arrive("c2", "round_robin")).unwrap();
    let timers = engine.timers();
    let listed: Vec<(String, &str, &str)> =
        timers.iter().map(|t| (t.due.to_rfc3339(), t.kind, t.subject.as_str())).collect();
    assert_eq!(
        listed,
        vec![
            ("2026-05-04T10:00:15Z".to_string(), "offer_timeout", "c2"),
            ("2026-05-04T10:00:30Z".to_string(), "offer_timeout", "c1"),
            ("2026-05-04T10:05:00Z".to_string(), "max_wait", "c1"),
        ]
    );
    let fired = engine.advance_to(start() + Duration::from_secs(20));
    assert_eq!(fired[0].at.to_rfc3339(), "2026-05-04T10:00:15Z");
    assert_eq!(fired[0].update.describe(), "c2 offer timed out for a2");
}

#[test]
fn vacations_start_and_end_on_their_own_timers() {
    let (mut engine, _clock) = engine(&fixture("policies"));
    ready(&mut engine, &["a1"]);
    let at = |h: i64| (start() + Duration::from_secs(h * 3600)).to_rfc3339();
    engine.handle(Input::SetVacations { agent: "a1".into(), periods: vec![(at(1), at(3))] }).unwrap();
    assert!(engine.timers().iter().any(|t| t.kind == "vacation" && t.due.to_rfc3339() == at(1)));
    let updates = engine.advance_to(start() + Duration::from_secs(2 * 3600));
    assert_eq!(lines(&updates), vec!["agent a1: unavailable (on_vacation)"]);
    let updates = engine.advance_to(start() + Duration::from_secs(4 * 3600));
    assert_eq!(lines(&updates), vec!["agent a1: available"]);
    let bad = engine.handle(Input::SetVacations { agent: "a1".into(), periods: vec![(at(3), at(1))] }).unwrap_err();
    assert!(bad.to_string().contains("ends"), "{bad}");
}

#[test]
fn leaving_callcenter_mode_while_ringing_passes_the_conversation_on() {
    let (mut engine, _clock) = engine(&fixture("policies"));
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(arrive("c1", "strict")).unwrap();
    let updates = engine.handle(Input::SetStatus { agent: "a1".into(), status: "dnd".into() }).unwrap();
    let lines = lines(&updates);
    assert_eq!(lines[0], "c1 offer withdrawn from a1 (status_dnd)");
    assert!(lines.contains(&"c1 offered to a2 (timeout 1m)".to_string()), "{lines:?}");
    assert_eq!(engine.agent("a1").unwrap().counters.missed, 0, "a withdrawn offer is not a miss");
}

#[test]
fn inputs_about_unknown_things_are_refused_and_change_nothing() {
    let (mut engine, _clock) = engine(&fixture("policies"));
    let cases: Vec<(Input, &str)> = vec![
        (Input::SignIn { agent: "ghost".into() }, "unknown agent `ghost`"),
        (arrive("c1", "nowhere"), "unknown queue `nowhere`"),
        (Input::Close { conversation: "nope".into() }, "unknown conversation `nope`"),
        (Input::SetPresence { agent: "a1".into(), presence: "sleeping".into() }, "presence `sleeping` is not defined"),
        (Input::SetStatus { agent: "a1".into(), status: "napping".into() }, "unknown status `napping`"),
        (Input::Pause { agent: "a1".into(), cause: "nap".into() }, "pause cause `nap` is not defined"),
        (Input::Resume { agent: "a1".into() }, "agent `a1` is not paused"),
    ];
    for (input, expected) in cases {
        let err = engine.handle(input).unwrap_err();
        assert!(err.to_string().contains(expected), "{err} vs {expected}");
    }
    assert_eq!(engine.agent("a1").unwrap().presence, "offline");
    engine.handle(arrive("dup", "patient")).unwrap();
    assert_eq!(engine.handle(arrive("dup", "patient")).unwrap_err().to_string(), "conversation `dup` already exists");
}

/// A policy in Rust: the first agent in queue order who can take the conversation.
struct FirstFree;

impl Policy for FirstFree {
    fn spec(&self) -> PolicySpec {
        PolicySpec { name: "first_free".into(), ..Default::default() }
    }

    fn decide(&mut self, ctx: &DecisionContext<'_>, skipped: &mut Vec<(AgentIx, Reason)>) -> Result<Decision, String> {
        for &ix in ctx.candidates {
            let agent = &ctx.agents[ix as usize];
            if ctx.tried(agent) {
                skipped.push((ix, Reason::Fixed("already_tried")));
                continue;
            }
            match ctx.blocked(agent) {
                None => {
                    return Ok(Decision::Offer {
                        agents: vec![ix],
                        timeout: Duration::from_secs(10),
                        extend_after: None,
                    })
                }
                Some(why) => skipped.push((ix, Reason::Fixed(why))),
            }
        }
        Ok(Decision::Wait { retry_after: None, for_agents: Vec::new() })
    }
}

#[tokio::test]
async fn the_async_handle_runs_rust_policies_on_virtual_time() {
    let dir = Scratch::new(&[
        ("agents.lua", AGENTS),
        ("queues.lua", "queues.define { id = \"q\", agents = { \"a1\", \"a2\" }, policy = \"first_free\" }"),
    ]);
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-05-04T10:00:00Z").unwrap());
    let rota = Builder::new(&dir.0).clock(clock).policy(FirstFree).start().unwrap();
    let mut stream = rota.subscribe();
    for a in ["a1", "a2"] {
        rota.submit(Input::SignIn { agent: a.into() }).await.unwrap();
        rota.submit(Input::SetStatus { agent: a.into(), status: "callcenter".into() }).await.unwrap();
    }
    let updates = rota.submit(arrive("c1", "q")).await.unwrap();
    assert!(lines(&updates).contains(&"c1 offered to a1 (timeout 10s)".to_string()));
    let fired = rota.advance(Duration::from_secs(10)).await.unwrap();
    assert!(
        lines(&fired)
            .contains(&"c1 decision by first_free in q: offer a2 (10s); skipped a1 (already_tried)".to_string()),
        "{:?}",
        lines(&fired)
    );
    let a2 = rota.agent("a2").await.unwrap().unwrap();
    assert_eq!(a2.state.as_str(), "offered");
    let err = rota.submit(Input::Accept { conversation: "c1".into(), agent: Some("a1".into()) }).await.unwrap_err();
    assert!(err.to_string().contains("the offer was timed_out"), "{err}");

    // The stream saw the same updates, in order.
    let mut seen = Vec::new();
    while let Ok(u) = stream.try_recv() {
        seen.push(u.stamped.update.describe());
    }
    assert!(
        seen.iter().position(|l| l == "c1 offered to a1 (timeout 10s)")
            < seen.iter().position(|l| l == "c1 offer timed out for a1")
    );
    rota.shutdown();
}

fn record(fields: serde_json::Value) -> Box<AgentRecord> {
    serde_json::from_value(fields).unwrap()
}

#[tokio::test]
async fn directory_agents_take_work_and_survive_reloads_and_restarts() {
    let dir = Scratch::new(&[
        ("agents.lua", "teams.define { id = \"desk\" }\nagents.define { id = \"a1\", email = \"a1@example.com\" }\n"),
        ("queues.lua", "queues.define { id = \"q\", agents = { \"a1\" }, policy = \"longest_idle\" }\n"),
    ]);
    let db = dir.0.join("rota.db");
    let clock = VirtualClock::starting_at(start());
    let rota = Builder::new(&dir.0).clock(clock.clone()).store(SqliteStore::open(&db).unwrap()).start().unwrap();
    let created = rota
        .submit(Input::CreateAgent {
            agent: "d1".into(),
            record: record(json!({"team": "desk", "time_zone": "Europe/Oslo", "queues": ["q"]})),
        })
        .await
        .unwrap();
    assert_eq!(lines(&created), ["agent d1 created"]);
    // Only the directory agent is ready, so the conversation can only go to it.
    for input in
        [Input::SignIn { agent: "d1".into() }, Input::SetStatus { agent: "d1".into(), status: "callcenter".into() }]
    {
        rota.submit(input).await.unwrap();
    }
    let updates = rota.submit(arrive("c1", "q")).await.unwrap();
    assert!(lines(&updates).contains(&"c1 offered to d1 (timeout 30s)".to_string()), "{:?}", lines(&updates));

    // A record laid over a scripted agent wins for the fields it sets, and only those.
    let email = record(json!({"email": "new@example.com", "phone": "+47 22 00 00 00"}));
    rota.submit(Input::UpdateAgent { agent: "a1".into(), record: email }).await.unwrap();
    rota.submit(Input::UpdateAgent { agent: "d1".into(), record: record(json!({"time_zone": null})) }).await.unwrap();

    // A reload rebuilds the rules; the directory stays laid over them.
    dir.write(&[("queues.lua", "queues.define { id = \"q\", agents = { \"a1\" }, policy = \"round_robin\" }\n")]);
    assert_eq!(rota.reload().await.unwrap(), 2);
    async fn check(rota: &rota::runtime::Handle) {
        let a1 = rota.agent("a1").await.unwrap().unwrap();
        let contact = (a1.def.email.as_deref(), a1.def.phone.as_deref());
        assert_eq!(contact, (Some("new@example.com"), Some("+47 22 00 00 00")));
        let d1 = rota.agent("d1").await.unwrap().unwrap();
        assert_eq!((d1.def.team.as_deref(), d1.def.time_zone.as_deref()), (Some("desk"), None));
        assert_eq!(d1.queues, [0], "d1 is still a member of q");
        assert_eq!(d1.state.as_str(), "offered");
    }
    check(&rota).await;
    rota.close().await.unwrap();
    rota.shutdown();

    let again = Builder::new(&dir.0).clock(clock).store(SqliteStore::open(&db).unwrap()).start().unwrap();
    check(&again).await;
    again.shutdown();
}

#[test]
fn directory_records_are_checked_before_anything_changes() {
    let dir = Scratch::new(&[
        ("agents.lua", AGENTS),
        ("queues.lua", "teams.define { id = \"desk\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"longest_idle\" }\n"),
    ]);
    let (mut engine, _clock) = engine(&dir.0);
    let cases = [
        ("a1", json!({}), "agent `a1` already exists"),
        ("x y", json!({}), "must be non-empty, without spaces"),
        ("n", json!({"team": "night"}), "team `night` is not defined (defined: desk)"),
        ("n", json!({"time_zone": "Mars/Olympus"}), "not an IANA time zone"),
        ("n", json!({"email": "nobody"}), "not an email address"),
        ("n", json!({"phone": "call me"}), "not a phone number"),
        ("n", json!({"weight": -1.0}), "at least 0"),
        ("n", json!({"queues": ["elsewhere"]}), "unit `default` has no queue `elsewhere`"),
        // Another unit's queue is answered like a queue that does not exist.
        ("n", json!({"unit": "south", "queues": ["q"]}), "unit `south` has no queue `q`"),
    ];
    for (id, fields, expected) in cases {
        let err = engine.handle(Input::CreateAgent { agent: id.into(), record: record(fields.clone()) }).unwrap_err();
        assert!(err.to_string().contains(expected), "{id} {fields}: {err}");
    }
    let err =
        engine.handle(Input::UpdateAgent { agent: "a1".into(), record: record(json!({"unit": "south"})) }).unwrap_err();
    assert!(err.to_string().contains("an agent's unit cannot change"), "{err}");
    assert_eq!(engine.agents().len(), 2, "no agent was added");
    assert_eq!(engine.agent("a1").unwrap().def.unit, "default");
}

#[test]
fn a_handle_on_scripts_that_do_not_load_reports_every_problem() {
    let dir = Scratch::new(&[("a.lua", "queues.define { id = \"q\", agents = { \"x\" }, policy = \"first_free\" }")]);
    let err = Builder::new(&dir.0).start().err().expect("must not start");
    let text = err.to_string();
    assert!(text.contains("a.lua:1: queue `q`: unknown agent `x`"), "{text}");
    assert!(text.contains("a.lua:1: queue `q`: unknown policy `first_free`"), "{text}");
    let _ = EngineConfig::new(&dir.0);
}

/// A conversation keeps its own queue and unit when a reload removes that queue: it is never
/// shown as another queue's (another unit's token would see it), and removing every queue is
/// no problem either.
#[test]
fn a_removed_queues_conversations_keep_their_queue_and_unit() {
    let agents = "agents.define { id = \"s1\", unit = \"south\" }\nagents.define { id = \"n1\", unit = \"north\" }\n";
    let south = "queues.define { id = \"qa\", unit = \"south\", agents = { \"s1\" }, policy = \"ring_all\" }\n";
    let north = "queues.define { id = \"qb\", unit = \"north\", agents = { \"n1\" }, policy = \"ring_all\" }\n";
    let dir = Scratch::new(&[("agents.lua", agents), ("queues.lua", &format!("{south}{north}"))]);
    let (mut engine, _clock) = engine(&dir.0);
    engine.handle(arrive("c1", "qb")).unwrap();
    engine.handle(Input::Abandon { conversation: "c1".into() }).unwrap();
    assert_eq!(engine.conversation_scope("c1"), Some(("qb", "north")));

    dir.write(&[("queues.lua", south)]);
    engine.reload().unwrap();
    assert_eq!(engine.conversation_scope("c1"), Some(("qb", "north")), "not qa, of unit south");
    assert!(engine.handle(arrive("c2", "qb")).is_err(), "a removed queue takes no arrivals");
    assert_eq!(engine.queue_unit("qb"), None, "and is not listed");

    dir.write(&[("queues.lua", "")]);
    engine.reload().unwrap();
    assert_eq!(engine.conversation_scope("c1"), Some(("qb", "north")));

    dir.write(&[("queues.lua", &format!("{north}{south}"))]);
    engine.reload().unwrap();
    assert_eq!(engine.conversation_scope("c1"), Some(("qb", "north")));
    engine.handle(arrive("c3", "qb")).unwrap();
    assert_eq!(engine.waiting("qb").unwrap().len(), 1);
}

/// Ids live per unit in the engine too: two units' `c1` are two conversations; an input that
/// names `c1` alone is refused as ambiguous, by key it reaches the one meant, and timelines
/// show the id.
#[test]
fn two_units_may_each_have_a_conversation_of_the_same_id() {
    let (mut engine, _clock) = engine(&fixture("units"));
    ready(&mut engine, &["nora", "sara"]);
    engine.handle(arrive("c1", "north_line")).unwrap();
    let south = engine.handle(arrive("c1", "south_line")).unwrap();
    assert_eq!(lines(&south)[0], "c1 queued in south_line", "the timeline shows the id, not the key");

    let err = engine.handle(Input::Accept { conversation: "c1".into(), agent: Some("sara".into()) }).unwrap_err();
    assert!(err.to_string().contains("exists in units north, south"), "{err}");
    let key = rota::unit::key("south", "c1");
    engine.handle(Input::Accept { conversation: key.to_string(), agent: Some("sara".into()) }).unwrap();
    assert_eq!(engine.conversation(&key).unwrap().status.as_str(), "assigned");
    let north = rota::unit::key("north", "c1");
    assert_eq!(engine.conversation(&north).unwrap().status.as_str(), "offered", "north's c1 is untouched");
    // An id one unit alone has is enough.
    engine.handle(arrive("only-north", "north_line")).unwrap();
    engine.handle(Input::Abandon { conversation: "only-north".into() }).unwrap();
    assert_eq!(engine.conversation("only-north").unwrap().status.as_str(), "abandoned");
}

#[test]
fn a_failing_aging_function_costs_a_conversation_its_aging_not_its_turn() {
    let rules = r#"agents.define { id = "a1" }
queues.define {
    id = "q", agents = { "a1" }, policy = "longest_idle", options = { timeout = "1h" },
    aging = function(c)
        local kind = c.attributes.kind
        if kind == "error" then error("no aging today") end
        if kind == "loop" then while true do end end
        if kind == "word" then return "high" end
        if kind == "huge" then return math.huge end
        return c.waited
    end,
}
"#;
    let dir = Scratch::new(&[("rules.lua", rules)]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1"]);
    engine.handle(arrive("first", "q")).unwrap();
    engine.handle(Input::Accept { conversation: "first".into(), agent: Some("a1".into()) }).unwrap();
    for (id, kind, priority) in [
        ("error", "error", 50),
        ("loop", "loop", 40),
        ("word", "word", 30),
        ("plain", "plain", 20),
        ("huge", "huge", 0),
    ] {
        let attributes = [("kind".to_string(), json!(kind))].into();
        let new =
            rota::NewConversation { id: id.into(), queue: "q".into(), attributes, priority, ..Default::default() };
        engine.handle(Input::Arrive(Box::new(new))).unwrap();
    }
    engine.advance_to(start() + Duration::from_secs(100));
    let errors_before = engine.metrics().policy_errors;
    let updates = engine.handle(Input::Close { conversation: "first".into() }).unwrap();
    let lines = lines(&updates);
    for (id, why) in [
        ("error", "rules.lua:6: no aging today"),
        ("loop", "CPU"),
        ("word", "must return a finite number, got \"high\""),
        ("huge", "got nil, inf or nan"),
    ] {
        assert!(
            lines.iter().any(|l| l.contains(&format!("queue `q`: aging of {id}: ")) && l.contains(why)),
            "{id}: {lines:#?}"
        );
    }
    assert_eq!(engine.metrics().policy_errors - errors_before, 4, "{lines:#?}");
    // Their own priorities still count (50, 40, 30, 0), and plain's 20 + 100 seconds waited beats them.
    assert!(lines.iter().any(|l| l == "plain offered to a1 (timeout 1h)"), "{lines:#?}");
    assert_eq!(engine.conversation("error").unwrap().status.as_str(), "queued");
}

#[test]
fn ended_conversations_are_forgotten_after_their_age_as_well_as_their_count() {
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", &queue("longest_idle"))]);
    let mut config = EngineConfig::new(&dir.0);
    config.retain_ended_for = Some(Duration::from_secs(3600));
    let (mut engine, _clock) = engine_with(config);
    for (id, at) in [("early", 0), ("late", 2 * 3600), ("latest", 2 * 3600 + 60)] {
        engine.advance_to(start() + Duration::from_secs(at));
        engine.handle(arrive(id, "q")).unwrap();
        engine.handle(Input::Abandon { conversation: id.into() }).unwrap();
    }
    // `early` ended two hours before `latest` did: past the hour, though well within the count.
    assert!(engine.conversation("early").is_none(), "an hour-old ended conversation is kept");
    assert!(engine.conversation("late").is_some() && engine.conversation("latest").is_some());
}

#[test]
fn finished_workflow_instances_are_forgotten_after_their_age() {
    let workflow = "local on, finish = workflows.on, workflows.finish\n\
                    workflows.define { id = \"note\", stages = { on(\"start\", finish(\"noted\")) } }\n";
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", &queue("longest_idle")), ("w.lua", workflow)]);
    let mut config = EngineConfig::new(&dir.0);
    config.retain_ended_for = Some(Duration::from_secs(3600));
    let (mut engine, _clock) = engine_with(config);
    for (id, at) in [("c1", 0), ("c2", 2 * 3600)] {
        engine.advance_to(start() + Duration::from_secs(at));
        engine.handle(arrive(id, "q")).unwrap();
        engine.handle(Input::StartWorkflow { conversation: id.into(), workflow: "note".into() }).unwrap();
    }
    let kept: Vec<String> = engine.instances().map(|i| i.conversation.to_string()).collect();
    assert_eq!(kept, ["c2"], "the instance that finished two hours ago is kept");
}

/// `submit_many`: many inputs in one round trip and one commit, handled in order as if one by
/// one; a refused input does not stop the others; everything accepted is durable.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_inputs_is_handled_in_order_with_one_result_each_and_made_durable() {
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", &queue("longest_idle"))]);
    let db = dir.0.join("rota.db");
    let clock = VirtualClock::starting_at(start());
    let open = || Builder::new(&dir.0).clock(clock.clone()).store(SqliteStore::open(&db).unwrap()).start().unwrap();
    let rota = open();
    let batch = vec![
        Input::SignIn { agent: "a1".into() },
        Input::SetStatus { agent: "a1".into(), status: "callcenter".into() },
        arrive("c1", "q"),
        Input::Accept { conversation: "c1".into(), agent: Some("a2".into()) }, // never offered to a2
        arrive("c1", "q"),                                                     // a duplicate
        Input::Accept { conversation: "c1".into(), agent: Some("a1".into()) },
    ];
    let results = rota.submit_many(batch).await.unwrap();
    let outcome: Vec<Result<(), String>> =
        results.iter().map(|r| r.as_ref().map(|_| ()).map_err(|e| e.to_string())).collect();
    assert_eq!(outcome.len(), 6);
    assert!(outcome[..3].iter().all(Result::is_ok) && outcome[5].is_ok(), "{outcome:?}");
    assert!(outcome[3].as_ref().unwrap_err().contains("never offered to `a2`"), "{outcome:?}");
    assert!(outcome[4].as_ref().unwrap_err().contains("c1"), "{outcome:?}");
    assert!(lines(results[2].as_ref().unwrap()).contains(&"c1 offered to a1 (timeout 1h)".to_string()));
    rota.close().await.unwrap();
    drop(rota);

    let rota = open();
    assert_eq!(rota.conversation("c1").await.unwrap().unwrap().status.as_str(), "assigned");
    assert_eq!(rota.agent("a1").await.unwrap().unwrap().state.as_str(), "busy");
    rota.close().await.unwrap();
}

/// Accept and decline without naming the agent act on whoever the offer rings, and are
/// refused, naming them, when it rings for several; `advance_to` moves a virtual clock to a time.
#[tokio::test]
async fn an_offer_is_answered_without_naming_the_agent_when_it_rings_for_one() {
    let ring_all = "queues.define { id = \"q\", agents = { \"a1\", \"a2\" }, policy = \"ring_all\", options = { timeout = \"1m\" } }";
    let dir = Scratch::new(&[("agents.lua", AGENTS), ("queues.lua", ring_all)]);
    let clock = VirtualClock::starting_at(start());
    let rota = Builder::new(&dir.0).clock(clock.clone()).start().unwrap();
    for a in ["a1", "a2"] {
        rota.submit(Input::SignIn { agent: a.into() }).await.unwrap();
        rota.submit(Input::SetStatus { agent: a.into(), status: "callcenter".into() }).await.unwrap();
    }
    rota.submit(arrive("c1", "q")).await.unwrap();
    let whoever = || Input::Accept { conversation: "c1".into(), agent: None };
    let err = rota.submit(whoever()).await.unwrap_err().to_string();
    assert!(err.contains("offered to a1, a2; name the agent"), "{err}");
    rota.submit(Input::Decline { conversation: "c1".into(), agent: Some("a1".into()) }).await.unwrap();
    let updates = rota.submit(whoever()).await.unwrap();
    assert!(lines(&updates).contains(&"c1 accepted by a2".to_string()), "{:?}", lines(&updates));
    let err = rota.submit(Input::Decline { conversation: "c1".into(), agent: None }).await.unwrap_err().to_string();
    assert!(err.contains("not offered to anyone now"), "{err}");

    rota.advance_to(start() + Duration::from_secs(90)).await.unwrap();
    assert_eq!(rota::Clock::now(&clock), start() + Duration::from_secs(90));
    assert!(rota.advance_to(start()).await.is_err(), "the clock does not go back");
    rota.shutdown();
}
