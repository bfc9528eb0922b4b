//! A policy that runs away, bombs memory, errors or misbehaves fails that one decision:
//! the trace says why, the conversation falls back (queue fallback policy, else wait and
//! retry), and the engine keeps deciding.

use crate::common;

use common::*;
use rota::conversation::NewConversation;
use rota::Input;

fn bomb(id: &str, queue: &str, kind: &str) -> Input {
    let mut attributes = std::collections::BTreeMap::new();
    attributes.insert("kind".to_string(), serde_json::Value::from(kind));
    Input::Arrive(Box::new(NewConversation { id: id.into(), queue: queue.into(), attributes, ..Default::default() }))
}

/// An engine whose policies may use 4 MiB (so the memory bomb hits the cap quickly).
fn small_engine() -> (rota::Engine, rota::VirtualClock) {
    let mut config = rota::EngineConfig::new(fixture("sandbox"));
    config.limits.memory = 4 * 1024 * 1024;
    engine_with(config)
}

/// (kind of misbehaviour, text the trace's error must contain)
const CASES: &[(&str, &str)] = &[
    ("loop", "rules.lua:8: CPU budget of 20ms exceeded"),
    ("pcall_loop", "CPU budget of 20ms exceeded"),
    ("coroutine_loop", "CPU budget of 20ms exceeded"),
    ("pattern", "rules.lua:25: CPU budget of 20ms exceeded"),
    ("memory", "memory"),
    ("error", "rules.lua:40: attempt to index nil"),
    ("bad_return", "rules.lua:213: policy `bomb`: policy returned integer"),
    ("busy_agent", "who cannot take it (state_offered)"),
    ("define_at_runtime", "definitions can only be made while the scripts load"),
    ("wait_zero", "rules.lua:213: policy `bomb`: policies.wait's retry time must be longer than zero"),
    ("wait_negative", "policies.wait: a duration cannot be negative"),
    ("wait_huge", "policies.wait: a duration can be at most 366d"),
    ("wait_nan", "policies.wait: a duration must be a number of seconds, got NaN"),
    ("step_zero", "extend_after must be longer than zero"),
    ("tostring_error", "rules.lua:109: error value of type table"),
    ("table_error", "rules.lua:118: error value of type table"),
    ("library_error", "rules.lua:122: invalid argument #2 to 'format'"),
    ("skip_flood", "ctx:skip: more than 5000 skips in one decision"),
];

#[test]
fn each_misbehaving_policy_fails_only_its_decision() {
    let (mut engine, _clock) = small_engine();
    ready(&mut engine, &["a1", "a2"]);
    // a1 is ringing for a good conversation, so "busy_agent" offers to someone who cannot take it.
    engine.handle(bomb("good-0", "bombs", "ok")).unwrap();
    for (i, (kind, expected)) in CASES.iter().enumerate() {
        let id = format!("bad-{i}");
        let updates = engine.handle(bomb(&id, "bombs", kind)).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let c = engine.conversation(&id).unwrap();
        let trace = c.traces.last().unwrap();
        let error = trace.error.as_deref().unwrap_or_else(|| panic!("{kind}: no error in trace {trace:?}"));
        assert!(error.contains(expected), "{kind}: error {error:?} does not mention {expected:?}");
        assert!(error.starts_with("rules.lua:"), "{kind}: every script error names a file and line: {error:?}");
        assert_eq!(trace.policy, "host fallback", "{kind}");
        // Each failure in a row doubles the queue's retry delay, up to 64 times or 10 minutes.
        let backoff = rota::time::Duration((45_000i64 << i.min(6)).min(600_000));
        assert_eq!(trace.decision.to_string(), format!("wait (retry in {backoff})"), "{kind}");
        assert_eq!(c.status.as_str(), "queued", "{kind}");
        assert!(lines(&updates).iter().any(|l| l.contains("policy error")), "{kind}: {updates:?}");
    }
    assert_eq!(engine.metrics().policy_errors, CASES.len() as u64);

    // The host is fine: a well-behaved decision right after still offers.
    let updates = engine.handle(bomb("good-1", "bombs", "ok")).unwrap();
    assert!(lines(&updates).contains(&"good-1 offered to a2 (timeout 30s)".to_string()), "{updates:?}");
    // A decision that works resets the backoff; the failed ones are asked again when their
    // retry falls due.
    assert_eq!(engine.failing_queue("bombs"), Some((0, rota::time::Duration::from_secs(45))));
    let retried = engine.advance_to(start() + rota::time::Duration::from_secs(45));
    assert!(lines(&retried).iter().any(|l| l.starts_with("bad-0 decision")), "{retried:?}");
}

#[test]
fn a_queue_with_a_fallback_policy_uses_it_when_its_policy_fails() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1", "a2"]);
    let updates = engine.handle(bomb("c1", "rescued", "error")).unwrap();
    let trace = engine.conversation("c1").unwrap().traces.last().unwrap().clone();
    assert_eq!(trace.policy, "ring_all (fallback)");
    assert_eq!(trace.decision.to_string(), "offer a1, a2 (30s)");
    assert!(trace.error.as_deref().unwrap().contains("attempt to index nil"));
    assert!(lines(&updates).contains(&"c1 offered to a1, a2 (timeout 30s)".to_string()));
}

#[test]
fn scripts_cannot_reach_files_processes_or_load_code() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1"]);
    let updates = engine.handle(bomb("c1", "bombs", "escape")).unwrap();
    assert!(lines(&updates).contains(&"c1 given up: reachable: none".to_string()), "{updates:?}");
}

#[test]
fn memory_is_usable_again_after_a_memory_bomb() {
    let (mut engine, _clock) = small_engine();
    ready(&mut engine, &["a1", "a2"]);
    for i in 0..3 {
        engine.handle(bomb(&format!("m{i}"), "bombs", "memory")).unwrap();
    }
    let after = engine.lua_memory();
    assert!(after < 32 * 1024 * 1024, "the bombs' garbage was collected ({after} bytes in use)");
    let updates = engine.handle(bomb("ok", "bombs", "ok")).unwrap();
    assert!(lines(&updates).iter().any(|l| l == "ok offered to a1 (timeout 30s)"), "{updates:?}");
}

#[test]
fn agent_tables_a_policy_froze_still_show_the_agents_as_they_are() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(bomb("f1", "bombs", "freeze")).unwrap();
    let updates = engine.handle(bomb("c1", "bombs", "ok")).unwrap();
    assert!(lines(&updates).contains(&"c1 offered to a1 (timeout 30s)".to_string()), "{updates:?}");
    // a1 is ringing now: a policy reading its (frozen) table sees that and goes on to a2.
    let updates = engine.handle(bomb("c2", "bombs", "ok")).unwrap();
    assert!(lines(&updates).contains(&"c2 offered to a2 (timeout 30s)".to_string()), "{updates:?}");
    // And to scripts the tables stay frozen.
    let updates = engine.handle(bomb("c3", "bombs", "frozen")).unwrap();
    assert!(lines(&updates).contains(&"c3 given up: frozen: true".to_string()), "{updates:?}");
}

#[test]
fn a_skip_reason_whose_tostring_never_returns_is_shown_by_its_type() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(bomb("c1", "bombs", "tostring_skip")).unwrap();
    let trace = engine.conversation("c1").unwrap().traces.last().unwrap().clone();
    let skips: Vec<String> = trace.skipped.iter().map(|s| format!("{} ({})", s.agent, s.reason)).collect();
    assert_eq!(skips, ["a1 (a table value)"]);
}

/// A Rust policy that misbehaves the way a buggy embedder's might, chosen by `kind`.
struct Buggy;

impl rota::policy::Policy for Buggy {
    fn spec(&self) -> rota::rules::PolicySpec {
        rota::rules::PolicySpec { name: "buggy".into(), ..Default::default() }
    }

    fn decide(
        &mut self,
        ctx: &rota::policy::DecisionContext<'_>,
        skipped: &mut Vec<(rota::agent::AgentIx, rota::decision::Reason)>,
    ) -> Result<rota::decision::Decision, String> {
        use rota::decision::Decision;
        use rota::time::Duration;
        let kind = ctx.conversation.data.attributes.get("kind").and_then(|k| k.as_str()).unwrap_or("");
        match kind {
            "panic" => panic!("the embedder's bug"),
            "out_of_range" => {
                Ok(Decision::Offer { agents: vec![4000], timeout: Duration::from_secs(5), extend_after: None })
            }
            "wait_for_ghost" => Ok(Decision::Wait { retry_after: None, for_agents: vec![u32::MAX as _] }),
            "skip_ghost" => {
                skipped.push((9999, rota::decision::Reason::Fixed("ghost")));
                Ok(Decision::Wait { retry_after: None, for_agents: Vec::new() })
            }
            "wait_zero" => Ok(Decision::Wait { retry_after: Some(Duration::ZERO), for_agents: Vec::new() }),
            _ => Ok(Decision::Offer {
                agents: vec![ctx.candidates[0]],
                timeout: Duration::from_secs(5),
                extend_after: None,
            }),
        }
    }
}

#[test]
fn a_rust_policy_that_panics_or_names_unknown_agents_fails_only_its_decision() {
    let dir = Scratch::new(&[(
        "rules.lua",
        "agents.define { id = \"a1\" }\nqueues.define { id = \"q\", agents = { \"a1\" }, policy = \"buggy\" }\n",
    )]);
    let clock = rota::VirtualClock::starting_at(start());
    let mut engine =
        rota::Engine::new(rota::EngineConfig::new(&dir.0), std::sync::Arc::new(clock), vec![Box::new(Buggy)]).unwrap();
    ready(&mut engine, &["a1"]);
    let cases = [
        ("panic", "policy `buggy` panicked: the embedder's bug"),
        ("out_of_range", "policy named agent number 4000, but there are only 1"),
        ("wait_for_ghost", "policy named agent number 4294967295"),
        ("skip_ghost", "policy skipped agent number 9999"),
        ("wait_zero", "retry time must be longer than zero"),
    ];
    for (kind, expected) in cases {
        let id = format!("c-{kind}");
        engine.handle(bomb(&id, "q", kind)).unwrap_or_else(|e| panic!("{kind}: {e}"));
        let trace = engine.conversation(&id).unwrap().traces.last().unwrap().clone();
        let error = trace.error.clone().unwrap_or_default();
        assert!(error.contains(expected), "{kind}: {error:?} does not mention {expected:?}");
        assert_eq!(trace.policy, "host fallback", "{kind}");
    }
    let updates = engine.handle(bomb("fine", "q", "ok")).unwrap();
    assert!(lines(&updates).contains(&"fine offered to a1 (timeout 5s)".to_string()), "{updates:?}");
}

#[test]
fn memory_scripts_keep_between_calls_counts_against_the_vm_cap() {
    let mut config = rota::EngineConfig::new(fixture("sandbox"));
    config.limits.memory = 4 * 1024 * 1024;
    config.limits.memory_total = 48 * 1024 * 1024;
    let (mut engine, _clock) = engine_with(config);
    ready(&mut engine, &["a1", "a2"]);
    let mut failed = None;
    for i in 0..200 {
        let id = format!("hog-{i}");
        engine.handle(bomb(&id, "bombs", "memo_hog")).unwrap();
        let trace = engine.conversation(&id).unwrap().traces.last().unwrap().clone();
        if let Some(error) = &trace.error {
            failed = Some((i, error.clone()));
            break;
        }
    }
    let (i, error) = failed.expect("a memo that grows a megabyte a decision is stopped");
    assert!(error.contains("not enough memory"), "{error}");
    assert!((20..48).contains(&i), "stopped after {i} decisions, at the 48 MiB cap");
    assert!(engine.lua_memory() <= 48 * 1024 * 1024, "{} bytes held", engine.lua_memory());
    // The host still works: agents change and their view follows.
    engine.handle(rota::Input::SignOut { agent: "a1".into() }).unwrap();
    assert_eq!(engine.agent("a1").unwrap().presence, "offline");
}

#[test]
fn memos_that_contain_themselves_or_nest_deep_survive_a_reload_as_a_warning() {
    let dir = Scratch::new(&[("rules.lua", &std::fs::read_to_string(fixture("sandbox/rules.lua")).unwrap())]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(bomb("c1", "bombs", "cyclic_memo")).unwrap();
    dir.write(&[("more.lua", "-- a change, so the folder reloads\n")]);
    let (_, updates) = engine.reload().unwrap();
    let said = lines(&updates);
    assert!(
        said.iter().any(|l| l.contains("queue `bombs`'s memo cannot be carried over: tables nested more than 64 deep")),
        "{said:?}"
    );
    assert!(said.iter().any(|l| l.contains("conversation `c1`'s memo cannot be carried over")), "{said:?}");
    let updates = engine.handle(bomb("c2", "bombs", "ok")).unwrap();
    assert!(lines(&updates).contains(&"c2 offered to a1 (timeout 30s)".to_string()), "{updates:?}");
}

#[test]
fn a_policy_sorts_its_own_copy_of_the_candidates_and_cannot_write_the_hosts_view() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1", "a2"]);
    let updates = engine.handle(bomb("s1", "bombs", "sort_candidates")).unwrap();
    assert!(lines(&updates).contains(&"s1 given up: sorted: a2".to_string()), "{updates:?}");
    let updates = engine.handle(bomb("s2", "bombs", "first_listed")).unwrap();
    assert!(lines(&updates).contains(&"s2 given up: first: a1, queue: a1".to_string()), "{updates:?}");
    for (kind, line) in [
        ("write_agent", 157),
        ("write_queue", 162),
        ("write_option", 167),
        ("write_conversation", 172),
        ("write_attribute", 177),
    ] {
        let id = format!("w-{kind}");
        engine.handle(bomb(&id, "bombs", kind)).unwrap();
        let trace = engine.conversation(&id).unwrap().traces.last().unwrap().clone();
        let error = trace.error.clone().unwrap_or_default();
        let expected = format!("rules.lua:{line}: attempt to modify a readonly table: agent, queue, conversation");
        assert!(error.starts_with(&expected), "{kind}: {error}");
    }
    // Nothing stuck: the agents are as the host says, in queue order.
    let updates = engine.handle(bomb("after", "bombs", "ok")).unwrap();
    assert!(lines(&updates).contains(&"after offered to a1 (timeout 30s)".to_string()), "{updates:?}");
}

#[test]
fn what_one_decision_records_and_logs_is_bounded() {
    let (mut engine, _clock) = engine(&fixture("sandbox"));
    ready(&mut engine, &["a1", "a2"]);
    engine.handle(bomb("r1", "bombs", "long_reasons")).unwrap();
    let trace = engine.conversation("r1").unwrap().traces.last().unwrap().clone();
    let reasons: Vec<String> = trace.skipped.iter().map(|s| s.reason.to_string()).collect();
    assert_eq!((reasons.len(), trace.skipped.len()), (10, 100), "ten named, all counted");
    assert!(reasons.iter().all(|r| r.len() < 250 && r.ends_with("more bytes cut)")), "{:?}", &reasons[0]);
    let counts = trace.skipped.counts();
    assert_eq!(counts.iter().map(|(_, n)| n).sum::<u32>(), 100);
    assert!(serde_json::to_string(&*trace).unwrap().len() < 8 * 1024);

    let updates = engine.handle(bomb("l1", "bombs", "log_flood")).unwrap();
    let logged: Vec<String> = lines(&updates).into_iter().filter(|l| l.starts_with("log ")).collect();
    let bytes: usize = logged.iter().map(String::len).sum();
    assert!(bytes < 40 * 1024, "{bytes} bytes logged by one decision");
    assert!(logged.iter().all(|l| l.len() < 1200), "every line cut");
    assert!(logged.last().unwrap().contains("more log lines dropped"), "{:?}", logged.last());
}

#[test]
fn a_queue_whose_policy_keeps_failing_is_retried_less_and_less_often() {
    let dir = Scratch::new(&[(
        "rules.lua",
        r#"
agents.define { id = "a1" }
agents.define { id = "a2" }
policies.register("broken", { decide = function(ctx) error("broken on purpose") end })
queues.define { id = "broken", agents = { "a1" }, policy = "broken", retry_after_error = "1s" }
queues.define { id = "fine", agents = { "a2" }, policy = "longest_idle" }
"#,
    )]);
    let (mut engine, _clock) = engine(&dir.0);
    ready(&mut engine, &["a1", "a2"]);
    for i in 0..200 {
        engine.handle(arrive(&format!("b{i}"), "broken")).unwrap();
    }
    let before = engine.metrics().decisions;
    engine.advance_to(start() + rota::time::Duration::from_secs(600));
    let retried = engine.metrics().decisions - before;
    // Retried every second, 200 conversations would take 120,000 decisions in ten minutes.
    assert!(retried < 4_000, "{retried} decisions of the failing queue in 10 minutes");
    let (failing, delay) = engine.failing_queue("broken").unwrap();
    assert!(failing > 1000 && delay == rota::time::Duration::from_secs(64), "{failing} {delay}");
    let updates = engine.handle(arrive("f1", "fine")).unwrap();
    assert!(lines(&updates).contains(&"f1 offered to a2 (timeout 30s)".to_string()), "{updates:?}");
    assert_eq!(engine.failing_queue("fine").unwrap().0, 0);
}
