//! Workflows end to end: the callback story over the HTTP API (task list, buttons, the event
//! stream, refusals), an instance surviving a restart mid-workflow, and a reload that keeps
//! instances going, flags those whose stage is gone, and never drops one.

use crate::common;

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use common::{lines, Scratch};
use futures_util::StreamExt;
use reqwest::StatusCode;
use rota::conversation::{NewConversation, Party};
use rota::http::{router, ApiConfig, Token};
use rota::instance::InstanceStatus;
use rota::runtime::{Builder, Handle};
use rota::store::SqliteStore;
use rota::time::Timestamp;
use rota::{Input, VirtualClock};
use serde_json::{json, Value};

const ALL: &str = "all-units";
const NORTH: &str = "north-only";

fn callback_scripts() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/callback")
}

fn start_time() -> Timestamp {
    Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap()
}

/// The engine over `scripts` on a virtual clock, journaling into `db`.
fn handle(scripts: &Path, db: &Path) -> Handle {
    let store = SqliteStore::open(db).unwrap();
    Builder::new(scripts).clock(VirtualClock::starting_at(start_time())).store(store).start().unwrap()
}

fn missed_call(id: &str) -> Input {
    Input::Arrive(Box::new(NewConversation {
        id: id.into(),
        queue: "support".into(),
        caller: Party { name: Some("Kari Nordmann".into()), number: Some("+4791234567".into()), sip: None },
        ..Default::default()
    }))
}

struct Api {
    base: String,
    client: reqwest::Client,
}

impl Api {
    async fn call(&self, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        (status, res.json().await.unwrap_or(Value::Null))
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, reqwest::Method::GET, path, None).await
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, reqwest::Method::POST, path, Some(body)).await
    }
}

fn types(reply: &Value) -> Vec<&str> {
    reply["updates"].as_array().unwrap().iter().map(|u| u["type"].as_str().unwrap()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callback_workflow_runs_through_the_api() {
    let scratch = Scratch::new(&[]);
    let handle = Arc::new(handle(&callback_scripts(), &scratch.0.join("rota.db")));
    let tokens = vec![Token::new(ALL, ["*"]), Token::new(NORTH, ["north"])];
    let (app, closer) = router(handle.clone(), &ApiConfig::with_tokens(tokens));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(rota::http::serve(listener, app, async move {
        std::future::pending::<()>().await;
        closer.close();
    }));
    let api = Api { base, client: common::http_client() };
    let events = api.client.get(format!("{}/v1/events", api.base)).bearer_auth(ALL).send().await.unwrap();
    assert_eq!(events.status(), StatusCode::OK);

    let (status, _) = api
        .post(
            ALL,
            "/v1/conversations",
            json!({"id": "call-1", "queue": "support", "caller": {"name": "Kari", "number": "+4791234567"}}),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    let (status, reply) = api.post(ALL, "/v1/conversations/call-1/abandon", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    for t in ["workflow_started", "stage_entered", "task_opened", "notified"] {
        assert!(types(&reply).contains(&t), "{t} missing from {reply}");
    }

    // The task list: the task, where its workflow is, whose call it was, and its buttons.
    let (_, list) = api.get(ALL, "/v1/tasks").await;
    let tasks = list["tasks"].as_array().unwrap();
    assert_eq!(tasks.len(), 1, "{list}");
    let task = &tasks[0];
    assert_eq!(task["title"], "Call the customer back");
    assert_eq!(task["workflow"], "callback");
    assert_eq!(task["stage"], 1);
    assert_eq!(task["conversation"], "call-1");
    assert_eq!(task["caller"]["name"], "Kari");
    assert_eq!(task["buttons"], json!(["done", "no_answer"]));
    assert!(task["age_ms"].as_i64().unwrap() >= 0);
    assert_eq!(list["flagged"], json!([]));
    let id = task["id"].as_u64().unwrap();

    // The event stream carried it.
    let mut body = events.bytes_stream();
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !text.contains("event: task_opened") {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("task_opened within 10 s");
        text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
    }
    assert!(text.contains(r#""title":"Call the customer back""#), "{text}");

    // Refusals say what to fix; another unit's token does not see the task at all.
    let (status, err) = api.post(ALL, &format!("/v1/tasks/{id}/push"), json!({"button": "maybe"})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(err["field"], "button");
    assert!(err["message"].as_str().unwrap().contains("its buttons: done, no_answer"), "{err}");
    let (status, err) = api.post(ALL, "/v1/tasks/99/push", json!({"button": "done"})).await;
    assert_eq!((status, err["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_task")));
    let (status, _) = api.post(ALL, &format!("/v1/tasks/{id}/push"), json!({"buton": "done"})).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    let (status, _) = api.post(NORTH, &format!("/v1/tasks/{id}/push"), json!({"button": "done"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, north) = api.get(NORTH, "/v1/tasks").await;
    assert_eq!(north["tasks"], json!([]));

    // No answer: the task closes, and an hour later it opens again.
    let (status, reply) =
        api.post(ALL, &format!("/v1/tasks/{id}/push"), json!({"button": "no_answer", "by": "bo"})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    assert_eq!(types(&reply), vec!["task_closed", "stage_entered", "field_set"]);
    assert_eq!(api.get(ALL, "/v1/tasks").await.1["tasks"], json!([]));
    handle.advance(rota::time::Duration::from_secs(59 * 60)).await.unwrap();
    assert_eq!(api.get(ALL, "/v1/tasks").await.1["tasks"], json!([]));
    handle.advance(rota::time::Duration::from_secs(60)).await.unwrap();
    let (_, list) = api.get(ALL, "/v1/tasks").await;
    let again = &list["tasks"][0];
    assert_eq!((again["title"].as_str(), again["stage"].as_u64()), (Some("Call the customer back"), Some(1)));
    assert_ne!(again["id"], json!(id));

    // Done: the workflow finishes, with its history and the field it set.
    let path = format!("/v1/tasks/{}/push", again["id"]);
    let (status, _) = api.post(ALL, &path, json!({"button": "done", "by": "bo"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, conversation) = api.get(ALL, "/v1/conversations/call-1").await;
    assert_eq!(conversation["attributes"]["callback"], "reached");
    let instance_id = conversation["workflows"].as_array().map(Vec::len);
    assert_eq!(instance_id, Some(0), "no workflow is working on it any more: {conversation}");
    let (_, instance) = api.get(ALL, "/v1/workflow_instances/1").await;
    assert_eq!(instance["status"], "finished");
    assert_eq!(instance["note"], "called back");
    let stages: Vec<&str> = instance["history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| !s["stage"].is_null())
        .map(|s| s["event"].as_str().unwrap())
        .collect();
    assert_eq!(stages, ["start", "button:no_answer", "timer:retry", "start", "button:done"]);
    assert!(instance["history"][1]["note"].as_str().unwrap().contains("pushed by bo"), "{instance}");

    // The definitions with their stage numbers.
    let (_, workflows) = api.get(ALL, "/v1/workflows").await;
    let numbered: Vec<(u64, &str)> = workflows["workflows"][0]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["number"].as_u64().unwrap(), s["event"].as_str().unwrap()))
        .collect();
    assert_eq!(numbered, [(1, "start"), (2, "button:done"), (3, "button:no_answer"), (4, "timer:retry")]);

    // Set Workflow from outside: an unknown one is refused; once finished it may start again,
    // but not twice at once.
    let (status, err) = api.post(ALL, "/v1/conversations/call-1/workflow", json!({"workflow": "nope"})).await;
    assert_eq!((status, err["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("workflow")));
    let (status, reply) = api.post(ALL, "/v1/conversations/call-1/workflow", json!({"workflow": "callback"})).await;
    assert_eq!(status, StatusCode::OK, "{reply}");
    let (status, err) = api.post(ALL, "/v1/conversations/call-1/workflow", json!({"workflow": "callback"})).await;
    assert_eq!(status, StatusCode::CONFLICT, "{err}");
    let (_, running) = api.get(ALL, "/v1/workflow_instances?status=running").await;
    assert_eq!(running["instances"].as_array().unwrap().len(), 1);
    let (status, _) = api.get(ALL, "/v1/workflow_instances?status=sleeping").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
}

#[test]
fn a_workflow_in_the_middle_of_a_wait_survives_a_restart() {
    let scratch = Scratch::new(&[]);
    let db = scratch.0.join("rota.db");
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let first = handle(&callback_scripts(), &db);
    rt.block_on(async {
        first.submit(missed_call("call-1")).await.unwrap();
        first.submit(Input::Abandon { conversation: "call-1".into() }).await.unwrap();
        let push = Input::PushButton { task: 1, button: "no_answer".into(), by: Some("bo".into()) };
        first.submit(push).await.unwrap();
    });
    first.shutdown();

    let second = handle(&callback_scripts(), &db);
    rt.block_on(async {
        // Back where it was: waiting at the `no_answer` stage, its timer pending, no open task.
        let (status, stage, tasks, history) = second
            .read(|e| {
                let i = e.instance(1).unwrap();
                (i.status, i.event.clone(), i.tasks.len(), i.history.len())
            })
            .await
            .unwrap();
        assert_eq!((status, stage.as_str(), tasks, history), (InstanceStatus::Running, "button:no_answer", 0, 2));
        let timers = second.timers().await.unwrap();
        assert!(timers.iter().any(|t| t.kind == "workflow_wait" && t.subject == "call-1"), "{timers:?}");

        // The hour passes: the task opens again, with the next number.
        let fired = second.advance(rota::time::Duration::from_secs(60 * 60)).await.unwrap();
        assert!(
            lines(&fired)
                .contains(&"call-1 task 2 opened at stage 1: Call the customer back [done | no_answer]".into()),
            "{:#?}",
            lines(&fired)
        );
        second.submit(Input::PushButton { task: 2, button: "done".into(), by: None }).await.unwrap();
        let status = second.read(|e| e.instance(1).map(|i| i.status)).await.unwrap();
        assert_eq!(status, Some(InstanceStatus::Finished));
    });
}

#[test]
fn a_reload_keeps_instances_and_flags_those_whose_stage_is_gone() {
    let original = std::fs::read_to_string(callback_scripts().join("callback.lua")).unwrap();
    let agents = std::fs::read_to_string(callback_scripts().join("agents.lua")).unwrap();
    let scratch = Scratch::new(&[("agents.lua", &agents), ("callback.lua", &original)]);
    let (mut engine, _clock) = common::engine(&scratch.0);
    for c in ["c1", "c2"] {
        engine.handle(missed_call(c)).unwrap();
        engine.handle(Input::Abandon { conversation: c.into() }).unwrap();
    }
    // c1 waits at `start` with task 1 open; c2 waits an hour at `button:no_answer`.
    engine.handle(Input::PushButton { task: 2, button: "no_answer".into(), by: None }).unwrap();

    // "no answer" becomes "later", which simply finishes; the `no_answer` stage is gone.
    let changed = original.replace(r#"buttons = { "done", "no_answer" }"#, r#"buttons = { "done", "later" }"#).replace(
        r#"        on("button:no_answer",
            set("callback", "no answer"),
            wait("1h", "retry")),
        on("timer:retry",
            link("start")),"#,
        r#"        on("button:later", finish("later")),"#,
    );
    assert_ne!(changed, original);

    // A broken version is refused with the path of stages, and nothing changes.
    let broken = changed.replace(r#"on("button:later", finish("later"))"#, r#"on("button:later", set("x", 1))"#);
    scratch.write(&[("callback.lua", &broken)]);
    let err = engine.reload().unwrap_err().to_string();
    assert!(err.contains("unlinked end: the leg start (line 17) → button:later (line 23)"), "{err}");
    assert_eq!(engine.instance(2).unwrap().status, InstanceStatus::Running);

    scratch.write(&[("callback.lua", &changed)]);
    let (_, updates) = engine.reload().unwrap();
    assert_eq!(
        lines(&updates),
        ["c2 workflow callback#2 flagged for a person: workflow `callback` changed and no longer has a stage for `button:no_answer`"]
    );
    // Numbers stay with their stages; the new stage gets a new one.
    let numbers: Vec<_> = ["start", "button:done", "button:no_answer", "timer:retry", "button:later"]
        .iter()
        .map(|e| engine.stage_number("callback", e))
        .collect();
    assert_eq!(numbers, [Some(1), Some(2), Some(3), Some(4), Some(5)]);
    assert!(engine.timers().iter().all(|t| t.kind != "workflow_wait"), "a flagged instance waits for nothing");

    // c1 goes on from `start`: its task is still open. Its old button leads nowhere now: flagged.
    let open: Vec<u64> = engine.open_tasks().iter().map(|(_, t)| t.id).collect();
    assert_eq!(open, [1]);
    let updates = engine.handle(Input::PushButton { task: 1, button: "no_answer".into(), by: None }).unwrap();
    assert_eq!(
        lines(&updates).last().unwrap(),
        "c1 workflow callback#1 flagged for a person: workflow `callback` has no stage for `button:no_answer` any more"
    );
    assert_eq!(engine.instance(1).unwrap().status, InstanceStatus::Flagged);

    // A person resolves both: c1 goes on at `start` (with the new buttons), c2 finishes.
    let refused = engine.handle(Input::ResolveWorkflow { instance: 1, event: Some("timer:retry".into()) });
    assert!(refused.unwrap_err().to_string().contains("has no stage `timer:retry`"));
    engine.handle(Input::ResolveWorkflow { instance: 1, event: Some("start".into()) }).unwrap();
    let (_, task) = engine.open_tasks()[0];
    assert_eq!(task.buttons, ["done", "later"]);
    engine.handle(Input::ResolveWorkflow { instance: 2, event: None }).unwrap();
    assert_eq!(engine.instance(2).unwrap().note.as_deref(), Some("resolved by a person"));
    let again = engine.handle(Input::ResolveWorkflow { instance: 2, event: None });
    assert!(again.unwrap_err().to_string().contains("only a flagged one needs resolving"));

    // Removing the workflow flags what still runs on it; nothing is dropped.
    scratch.write(&[("callback.lua", "-- no workflows any more\n")]);
    let agents_only = agents.replace("workflows = { abandoned = \"callback\", max_wait = \"callback\" },", "");
    scratch.write(&[("agents.lua", &agents_only)]);
    let (_, updates) = engine.reload().unwrap();
    assert_eq!(
        lines(&updates),
        [
            "c1 task 3 closed: its stage ended",
            "c1 workflow callback#1 flagged for a person: workflow `callback` was removed"
        ]
    );
    assert_eq!(engine.instances().count(), 2);
}

/// Units are walls: naming another unit's workflow is answered exactly like naming one that
/// does not exist, so a token learns nothing about what other units have.
#[test]
fn another_units_workflow_is_answered_like_one_that_does_not_exist() {
    let dir = common::Scratch::new(&[(
        "rules.lua",
        r#"
agents.define { id = "n1", unit = "north" }
queues.define { id = "qn", unit = "north", agents = { "n1" }, policy = "ring_all" }
workflows.define { id = "south_cb", unit = "south", stages = { workflows.on("start", workflows.finish()) } }
"#,
    )]);
    let (mut engine, _clock) = common::engine(&dir.0);
    engine.handle(common::arrive("c1", "qn")).unwrap();
    let start = |engine: &mut rota::Engine, workflow: &str| {
        let input = Input::StartWorkflow { conversation: "c1".into(), workflow: workflow.into() };
        engine.handle(input).unwrap_err().to_string().replace(workflow, "WORKFLOW")
    };
    assert_eq!(start(&mut engine, "south_cb"), start(&mut engine, "no_such_wf"));
}
