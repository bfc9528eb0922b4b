//! A function of the embedding program for scripts: `crm.tier(number)` looks a caller up in
//! the program's own CRM. A policy sends VIPs to the senior agent with it, and the rules' own
//! `rota test` case calls it too. Run with `cargo run --example host_function`.

use std::error::Error;

use rota::runtime::Builder;
use rota::script::HostFunctions;
use rota::testing::{report, Options};
use rota::Input;
use serde_json::{json, Value};

const RULES: &str = r#"
agents.define { id = "junior" }
agents.define { id = "senior" }
-- VIPs (as the CRM says) go to the senior agent, everyone else to the junior one.
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

const TEST: &str = r#"
local test = require("rota.test")
it("sends a VIP to the senior agent", function()
    test.ready("junior")
    test.ready("senior")
    test.eq(crm.tier("+4791000001"), "vip")
    test.expect_offer(test.arrive("line", { caller = { number = "+4791000001" } }), "senior")
end)
"#;

/// The program's CRM, as scripts see it.
fn crm() -> HostFunctions {
    let mut functions = HostFunctions::default();
    let tier = |args: Vec<Value>| match args.first().and_then(Value::as_str) {
        Some("+4791000001") => Ok(json!("vip")),
        _ => Ok(json!("standard")),
    };
    functions
        .add("crm", "tier", "(number: string?) -> string", "The caller's tier in the CRM", tier)
        .expect("a new name");
    functions
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn Error>> {
    let dir = std::env::temp_dir().join(format!("rota-host-function-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    std::fs::write(dir.join("rules.lua"), RULES)?;
    std::fs::write(dir.join("rules_test.lua"), TEST)?;

    // The rules' tests, with the program's functions.
    let results = rota::testing::run(&dir, &Options::default().functions(crm()))?;
    print!("{}", report::render(report::Format::Human, &results, Default::default()));
    let (_, failed) = report::totals(&results);

    // The engine, with the same functions.
    let rota = Builder::new(&dir).functions(crm()).start()?;
    for agent in ["junior", "senior"] {
        rota.submit(Input::SignIn { agent: agent.into() }).await?;
        rota.submit(Input::SetStatus { agent: agent.into(), status: "callcenter".into() }).await?;
    }
    let vip = serde_json::from_value(json!({ "id": "c1", "queue": "line", "caller": { "number": "+4791000001" } }))?;
    for update in rota.submit(Input::Arrive(Box::new(vip))).await? {
        println!("{}", update.update.describe());
    }
    rota.close().await?;
    std::fs::remove_dir_all(&dir)?;
    if failed > 0 {
        return Err("the rules' tests failed".into());
    }
    Ok(())
}
