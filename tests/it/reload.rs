//! Scripts change while inputs stream in over HTTP: valid versions are swapped in, invalid ones
//! are refused with file:line, and no input is lost or fails because of a reload.

use crate::common;

use std::sync::Arc;

use common::Scratch;
use reqwest::StatusCode;
use rota::http::{router, ApiConfig, Token};
use rota::runtime::Builder;
use rota::store::SqliteStore;
use serde_json::{json, Value};

const TOKEN: &str = "reload-test";

fn rules(timeout: &str) -> String {
    format!(
        "teams.define {{ id = \"desk\" }}\n\
         agents.define {{ id = \"ada\", team = \"desk\" }}\n\
         queues.define {{ id = \"line\", agents = {{ \"ada\" }}, policy = \"round_robin\", options = {{ timeout = \"{timeout}\" }} }}\n"
    )
}

/// The API over `handle` with a token for every unit; its base URL.
async fn serve_api(handle: &Arc<rota::runtime::Handle>) -> String {
    let config = ApiConfig::with_tokens([Token::new(TOKEN, ["*"])]);
    // Dropping the closer leaves event streams open, which is all these tests need.
    let (app, _) = router(handle.clone(), &config);
    common::serve(app).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_input_is_lost_or_refused_while_scripts_reload() {
    let scripts = Scratch::new(&[("rules.lua", &rules("10s"))]);
    let db = Scratch::new(&[]);
    let store = SqliteStore::open(db.0.join("rota.db")).unwrap();
    let handle = Arc::new(Builder::new(&scripts.0).store(store).start().unwrap());
    let base = serve_api(&handle).await;
    let client = common::http_client();

    const N: usize = 300;
    let sender = {
        let (client, base) = (client.clone(), base.clone());
        tokio::spawn(async move {
            let mut refused = Vec::new();
            for k in 0..N {
                let body = json!({"id": format!("c{k}"), "queue": "line"});
                let res = client
                    .post(format!("{base}/v1/conversations"))
                    .bearer_auth(TOKEN)
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                if res.status() != StatusCode::CREATED {
                    refused.push(format!("c{k}: {} {}", res.status(), res.text().await.unwrap()));
                }
            }
            refused
        })
    };

    let reload = || async {
        let res = client.post(format!("{base}/v1/scripts/reload")).bearer_auth(TOKEN).send().await.unwrap();
        (res.status(), res.json::<Value>().await.unwrap())
    };
    let mut generation = 1;
    for round in 0..10 {
        if round % 2 == 0 {
            scripts.write(&[("rules.lua", &rules(&format!("{}s", 11 + round)))]);
            let (status, body) = reload().await;
            assert_eq!(status, StatusCode::OK, "{body}");
            generation += 1;
            assert_eq!(body["generation"], generation);
        } else {
            scripts.write(&[(
                "rules.lua",
                &format!("{}\nqueues.define {{ id = \"x\", policy = \"round_robn\" }}\n", rules("1s")),
            )]);
            let (status, body) = reload().await;
            assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
            assert!(
                body["message"].as_str().unwrap().contains("rules.lua:5: queue `x`: unknown policy `round_robn`"),
                "{body}"
            );
            let status = handle.script_status().await.unwrap();
            assert_eq!(status.generation, generation, "a rejected version must not replace the running one");
        }
    }
    let refused = sender.await.unwrap();
    assert!(refused.is_empty(), "inputs refused during reloads: {refused:?}");
    let waiting = handle.read(|e| e.waiting("line").unwrap().len()).await.unwrap();
    assert_eq!(waiting, N, "every conversation is still there");
    let status = handle.script_status().await.unwrap();
    assert_eq!((status.generation, status.last_error.is_some()), (6, true));
}

/// A hostile file dropped into the scripts folder of a running `rota serve` is checked away
/// from the engine: while it burns its whole load budget, requests keep being answered at
/// once, and afterwards the status names the file and line that ran away.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_runaway_file_being_checked_does_not_hold_up_the_engine() {
    let scripts = Scratch::new(&[("rules.lua", &rules("10s"))]);
    let config = scripts.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"{TOKEN}\"\nunits = [\"*\"]\n\
             [http]\nreload_debounce_ms = 50\n",
            scripts.0.join("rota.db").display().to_string(),
            scripts.0.display().to_string()
        ),
    )
    .unwrap();
    let mut server = common::spawn(&config);
    let client = common::http_client();
    std::fs::write(scripts.0.join("zz_hostile.lua"), "local n = 0\nwhile true do n += 1 end\n").unwrap();

    // Until the check has given up on the file (2 s of CPU), every request is answered promptly.
    let started = std::time::Instant::now();
    let mut slowest = std::time::Duration::ZERO;
    let status = loop {
        let asked = std::time::Instant::now();
        let res = client.get(format!("{}/v1/scripts", server.base)).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let status: Value = res.json().await.unwrap();
        slowest = slowest.max(asked.elapsed());
        if !status["last_error"].is_null() {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(30), "the hostile file was never refused");
    };
    assert!(started.elapsed() > std::time::Duration::from_millis(1500), "the check ran its load budget");
    assert!(slowest < std::time::Duration::from_millis(500), "a request waited {slowest:?} during the check");
    let error = &status["last_error"][0];
    assert_eq!((error["file"].as_str(), error["line"].as_u64()), (Some("zz_hostile.lua"), Some(2)), "{status}");
    assert!(error["message"].as_str().unwrap().contains("CPU budget"), "{status}");
    assert_eq!(status["generation"], 1, "the old rules keep running");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// A valid generation that is slow to load (its top level computes for a while) is loaded
/// away from the engine: until it is swapped in, requests keep being answered at once, and the
/// engine thread only swaps it in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_valid_generation_loads_away_from_the_engine() {
    let scripts = Scratch::new(&[("rules.lua", &rules("10s"))]);
    let limits = rota::script::Limits::default().cpu_per_load(std::time::Duration::from_secs(120));
    let handle = Arc::new(Builder::new(&scripts.0).limits(limits).start().unwrap());
    let base = serve_api(&handle).await;
    let client = common::http_client();

    let slow = format!("{}\nlocal n = 0\nfor i = 1, 30000000 do n += i % 7 end\n", rules("12s"));
    scripts.write(&[("rules.lua", &slow)]);
    let started = std::time::Instant::now();
    let reload = tokio::spawn({
        let handle = handle.clone();
        async move { handle.reload().await }
    });
    let mut slowest = std::time::Duration::ZERO;
    let mut asked = 0;
    while !reload.is_finished() {
        let at = std::time::Instant::now();
        let res = client.get(format!("{base}/v1/agents")).bearer_auth(TOKEN).send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        slowest = slowest.max(at.elapsed());
        asked += 1;
    }
    let took = started.elapsed();
    assert_eq!(reload.await.unwrap().unwrap(), 2, "the slow generation is valid and swapped in");
    assert!(took > std::time::Duration::from_millis(800), "the load was not slow ({took:?}): the test proves nothing");
    assert!(
        slowest < took / 4,
        "a request waited {slowest:?} while the generation loaded for {took:?} ({asked} requests)"
    );
}

/// Scripts that live in a database rather than a folder: an embedder hands them over as text,
/// laid out as a folder would be (a module in `lib/`, a test file left out), reloads them the
/// same way, and a durable engine restarts on them with its state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scripts_given_as_text_load_reload_and_restart() {
    let files = |timeout: &str| {
        vec![
            ("lib/pick.lua".to_string(), "return { first = function(list) return list[1] end }".to_string()),
            ("rules.lua".to_string(), rules(timeout)),
            ("rules_test.lua".to_string(), "this is not Lua and must not be loaded".to_string()),
            (
                "policy.lua".to_string(),
                "local pick = require(\"lib.pick\")\npolicies.register(\"first\", { decide = function(ctx) return policies.offer(pick.first(ctx.candidates), 5) end })\n".to_string(),
            ),
        ]
    };
    let sources = rota::Sources::from_files(files("10s")).unwrap();
    assert_eq!(sources.modules.len(), 1, "{sources:?}");
    assert_eq!(sources.rules.iter().map(|(f, _)| f.as_str()).collect::<Vec<_>>(), ["policy.lua", "rules.lua"]);

    let db = Scratch::new(&[]);
    let store = || SqliteStore::open(db.0.join("rota.db")).unwrap();
    let handle = Builder::from_sources(sources).store(store()).start().unwrap();
    handle.submit(rota::Input::SignIn { agent: "ada".into() }).await.unwrap();
    assert_eq!(handle.reload_sources(rota::Sources::from_files(files("12s")).unwrap()).await.unwrap(), 2);
    let broken = rota::Sources::from_files(vec![("rules.lua".into(), "queues.define { id = 1 }".into())]).unwrap();
    let err = handle.reload_sources(broken).await.unwrap_err().to_string();
    assert!(err.contains("rules.lua:1:"), "{err}");
    assert_eq!(handle.script_status().await.unwrap().generation, 2, "the old rules keep running");
    handle.shutdown();

    let again = Builder::from_sources(rota::Sources::from_files(files("12s")).unwrap()).store(store()).start().unwrap();
    let ada = again.agent("ada").await.unwrap().unwrap();
    assert!(ada.online, "the journal's state came back");
    assert_eq!(again.script_status().await.unwrap().generation, 2, "the same scripts: no new generation");
    assert!(rota::Sources::from_files(vec![("lib/x.lua".into(), String::new())]).is_err(), "no rule file");
}

/// Re-evaluation without polling, from outside: a PATCH of a waiting conversation's
/// attributes re-routes it at once, and a reload asks every waiting conversation under the
/// new rules at once, even one no agent can take (the new policy gives it up).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_or_a_reload_routes_a_waiting_conversation_again_at_once() {
    // VIPs go to the senior agent, others wait for the junior; neither is signed in yet
    // except the senior.
    let policy = |vip_rule: &str| {
        format!(
            "agents.define {{ id = \"junior\" }}\n\
             agents.define {{ id = \"senior\" }}\n\
             policies.register(\"tiered\", {{ decide = function(ctx)\n\
                 {vip_rule}\n\
                 local want = if ctx.conversation.attributes.vip then \"senior\" else \"junior\"\n\
                 for _, a in ctx.candidates do\n\
                     if a.id == want and not a.blocked then return policies.offer(a, 60) end\n\
                 end\n\
                 return policies.wait()\n\
             end }})\n\
             queues.define {{ id = \"line\", agents = {{ \"junior\", \"senior\" }}, policy = \"tiered\" }}\n"
        )
    };
    let scripts = Scratch::new(&[("rules.lua", &policy(""))]);
    let handle = Arc::new(Builder::new(&scripts.0).start().unwrap());
    let base = serve_api(&handle).await;
    let client = common::http_client();
    let call = |method: reqwest::Method, path: &str, body: Value| {
        let req = client.request(method, format!("{base}{path}")).bearer_auth(TOKEN).json(&body);
        async move {
            let res = req.send().await.unwrap();
            (res.status(), res.json::<Value>().await.unwrap())
        }
    };
    use reqwest::Method;
    for (method, path, body) in [
        (Method::POST, "sign_in", json!({})),
        (Method::PUT, "status", json!({"status": "callcenter"})),
        (Method::POST, "work_day/start", json!({})),
    ] {
        assert_eq!(call(method, &format!("/v1/agents/senior/{path}"), body).await.0, StatusCode::OK);
    }
    let (status, created) = call(Method::POST, "/v1/conversations", json!({"id": "c1", "queue": "line"})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(!created.to_string().contains("offered"), "an ordinary caller waits for the junior: {created}");

    // The caller turns out to be a VIP: re-routed to the senior in the same reply.
    let (status, changed) = call(Method::PATCH, "/v1/conversations/c1", json!({"attributes": {"vip": true}})).await;
    assert_eq!(status, StatusCode::OK, "{changed}");
    let updates = changed["updates"].as_array().unwrap();
    let decided = updates.iter().find(|u| u["type"] == "decided").expect("decided again");
    assert_eq!(decided["cause"], "changed: attributes.vip", "{changed}");
    assert!(changed.to_string().contains(r#""agents":["senior"]"#), "{changed}");

    // A second conversation that nobody can take; the new rules give such callers up.
    let (_, second) = call(Method::POST, "/v1/conversations", json!({"id": "c2", "queue": "line"})).await;
    assert!(!second.to_string().contains("offered"), "{second}");
    scripts.write(&[(
        "rules.lua",
        &policy("if not ctx.conversation.attributes.vip then return policies.give_up(\"closed for now\") end"),
    )]);
    let (status, reloaded) = call(Method::POST, "/v1/scripts/reload", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reloaded}");
    let (_, c2) = call(Method::GET, "/v1/conversations/c2", Value::Null).await;
    assert_eq!(c2["status"], "gave_up", "{c2}");
    let last = c2["traces"].as_array().unwrap().last().unwrap().clone();
    assert_eq!(last["cause"], "scripts reloaded (generation 2)", "{c2}");

    // A change to a conversation that is no longer waiting is refused and changes nothing.
    let (status, refused) = call(Method::PATCH, "/v1/conversations/c2", json!({"attributes": {"vip": true}})).await;
    assert_eq!((status, refused["error"].as_str()), (StatusCode::CONFLICT, Some("illegal_state_change")), "{refused}");
}

/// The scripts' `kv` memory is the engine's: per unit, it survives a reload (a new VM) and a
/// restart (the journal replayed), and a unit never sees another's keys.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_survives_reloads_and_restarts_per_unit() {
    let rules = |version: &str| {
        format!(
            "-- version {version}\n\
             agents.define {{ id = \"ada\" }}\n\
             agents.define {{ id = \"sam\", unit = \"south\" }}\n\
             policies.register(\"counting\", {{ decide = function(ctx)\n\
                 if not ctx.conversation.memo.counted then\n\
                     ctx.conversation.memo.counted = true\n\
                     log.info(ctx.queue.id .. \" arrivals \" .. kv.incr(\"arrivals\"))\n\
                 end\n\
                 return policies.wait()\n\
             end }})\n\
             queues.define {{ id = \"north_line\", agents = {{ \"ada\" }}, policy = \"counting\" }}\n\
             queues.define {{ id = \"south_line\", unit = \"south\", agents = {{ \"sam\" }}, policy = \"counting\" }}\n"
        )
    };
    let scripts = Scratch::new(&[("rules.lua", &rules("1"))]);
    let db = Scratch::new(&[]);
    let start = || Builder::new(&scripts.0).store(SqliteStore::open(db.0.join("rota.db")).unwrap()).start().unwrap();
    let said = |updates: Vec<rota::Stamped>| -> Vec<String> {
        updates.iter().map(|u| u.update.describe()).filter(|l| l.contains(" arrivals ")).collect()
    };
    let arrive = |id: &str, queue: &str| {
        rota::Input::Arrive(Box::new(rota::NewConversation {
            id: id.into(),
            queue: queue.into(),
            ..Default::default()
        }))
    };

    let handle = start();
    assert_eq!(
        said(handle.submit(arrive("c1", "north_line")).await.unwrap()),
        ["log info: rules.lua:7: north_line arrivals 1"]
    );
    scripts.write(&[("rules.lua", &rules("2"))]);
    assert_eq!(handle.reload().await.unwrap(), 2);
    assert_eq!(
        said(handle.submit(arrive("c2", "north_line")).await.unwrap()),
        ["log info: rules.lua:7: north_line arrivals 2"]
    );
    // Another unit counts on its own.
    assert_eq!(
        said(handle.submit(arrive("c3", "south_line")).await.unwrap()),
        ["log info: rules.lua:7: south_line arrivals 1"]
    );
    handle.close().await.unwrap();
    drop(handle);

    let handle = start();
    assert_eq!(
        said(handle.submit(arrive("c4", "north_line")).await.unwrap()),
        ["log info: rules.lua:7: north_line arrivals 3"]
    );
    handle.close().await.unwrap();
}
