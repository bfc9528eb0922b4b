//! An embedding program gives scripts a function of its own (a CRM lookup): a policy calls
//! it, a `rota test` case calls it, its error fails one decision at the script's line, and the
//! editor definitions declare it.

use crate::common;

use common::{arrive, ready, Scratch};
use rota::runtime::Builder;
use rota::script::HostFunctions;
use serde_json::{json, Value};

/// `crm.tier(number)`: what the CRM knows of a caller.
fn crm() -> HostFunctions {
    let mut functions = HostFunctions::default();
    functions
        .add(
            "crm",
            "tier",
            "(number: string?) -> string",
            "The caller's tier in the CRM",
            |args: Vec<Value>| match args.first().and_then(Value::as_str) {
                Some("+4791000001") => Ok(json!("vip")),
                Some("+4700000000") => Err("the CRM is down".into()),
                _ => Ok(json!("standard")),
            },
        )
        .unwrap();
    functions
}

const RULES: &str = r#"
agents.define { id = "junior" }
agents.define { id = "senior" }
policies.register("by_tier", {
    decide = function(ctx)
        local want = if crm.tier(ctx.conversation.caller.number) == "vip" then "senior" else "junior"
        for _, a in ctx.candidates do
            if a.id == want and not a.blocked then
                return policies.offer(a, 20)
            end
        end
        return policies.wait()
    end,
})
queues.define { id = "line", agents = { "junior", "senior" }, policy = "by_tier" }
"#;

#[test]
fn a_policy_and_a_test_case_call_the_hosts_function() {
    let dir = Scratch::new(&[
        ("rules.lua", RULES),
        (
            "rules_test.lua",
            r#"local test = require("rota.test")
it("sends a VIP to the senior agent", function()
    test.ready("junior")
    test.ready("senior")
    test.eq(crm.tier("+4791000001"), "vip")
    local call = test.arrive("line", { caller = { number = "+4791000001" } })
    test.expect_offer(call, "senior")
end)
"#,
        ),
    ]);
    // The engine, as an embedder builds it.
    let mut config = rota::EngineConfig::new(&dir.0);
    config.functions = crm();
    let clock = rota::VirtualClock::starting_at(common::start());
    let mut engine = rota::Engine::new(config, std::sync::Arc::new(clock), Vec::new()).unwrap();
    ready(&mut engine, &["junior", "senior"]);
    engine.handle(arrive("plain", "line")).unwrap();
    let vip = rota::conversation::NewConversation {
        id: "vip".into(),
        queue: "line".into(),
        caller: rota::conversation::Party { number: Some("+4791000001".into()), ..Default::default() },
        ..Default::default()
    };
    let updates = engine.handle(rota::Input::Arrive(Box::new(vip))).unwrap();
    assert!(common::lines(&updates).contains(&"vip offered to senior (timeout 20s)".to_string()), "{updates:?}");

    // Its error fails that one decision, at the script's line.
    let down = rota::conversation::NewConversation {
        id: "down".into(),
        queue: "line".into(),
        caller: rota::conversation::Party { number: Some("+4700000000".into()), ..Default::default() },
        ..Default::default()
    };
    engine.handle(rota::Input::Arrive(Box::new(down))).unwrap();
    let trace = &engine.conversation("down").unwrap().traces.iter().next().unwrap().trace.error;
    let error = trace.as_deref().unwrap_or_default();
    assert!(error.contains("rules.lua:6: crm.tier: the CRM is down"), "{error}");

    // `rota test`, as an embedder runs it for its rules.
    let mut options = rota::testing::Options::default();
    options.functions = crm();
    let results = rota::testing::run(&dir.0, &options).unwrap();
    assert_eq!(rota::testing::report::totals(&results), (1, 0), "{results:?}");
    // Without the host, the rules do not know `crm`: the case fails.
    let results = rota::testing::run(&dir.0, &rota::testing::Options::default()).unwrap();
    assert_eq!(rota::testing::report::totals(&results).1, 1);

    // The editor definitions declare it.
    let written = rota::editor::write_types_with(&dir.0, &crm()).unwrap();
    let definitions = std::fs::read_to_string(written.iter().find(|p| p.ends_with("rota.d.luau")).unwrap()).unwrap();
    assert!(
        definitions
            .contains("declare crm: {\n    -- The caller's tier in the CRM\n    tier: (number: string?) -> string,"),
        "{definitions}"
    );

    // A builder takes them too, and refuses rota's own namespaces.
    let _ = Builder::new(&dir.0).functions(crm());
    let mut clash = HostFunctions::default();
    let refused = clash.add("queues", "x", "() -> ()", "", |_| Ok(Value::Null)).unwrap_err();
    assert!(refused.to_string().contains("rota's or Luau's own"), "{refused}");
}
