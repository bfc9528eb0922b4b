//! The HTTP API over real sockets on 127.0.0.1: actions, reads, every error case, token scopes,
//! the event stream and the OpenAPI document.

use crate::common;

use std::sync::Arc;
use std::time::Duration;

use common::{fixture, Scratch};
use futures_util::StreamExt;
use reqwest::{Client, Method, StatusCode};
use rota::http::{router, ApiConfig, Token};
use rota::runtime::Builder;
use rota::store::SqliteStore;
use serde_json::{json, Value};

const ALL: &str = "all-units";
const NORTH: &str = "north-only";
const SOUTH: &str = "south-only";

struct Server {
    base: String,
    client: Client,
    _scratch: Scratch,
}

impl Server {
    async fn start() -> Server {
        Server::with_scripts(fixture("units")).await
    }

    async fn with_scripts(scripts: std::path::PathBuf) -> Server {
        let scratch = Scratch::new(&[]);
        let store = SqliteStore::open(scratch.0.join("rota.db")).unwrap();
        let handle =
            Arc::new(Builder::new(scripts).keep_events(rota::runtime::KEEP_EVENTS).store(store).start().unwrap());
        let tokens = vec![Token::new(ALL, ["*"]), Token::new(NORTH, ["north"]), Token::new(SOUTH, ["south"])];
        let mut config = ApiConfig::with_tokens(tokens);
        config.body_limit = 4096;
        config.cors_origins = vec!["https://console.example.com".into()];
        let (app, closer) = router(handle, &config);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(rota::http::serve(listener, app, async move {
            std::future::pending::<()>().await;
            closer.close();
        }));
        Server { base, client: common::http_client(), _scratch: scratch }
    }

    async fn call(&self, token: &str, method: Method, path: &str, body: Option<&str>) -> (StatusCode, Value) {
        let (status, _, value) = self.call_typed(token, method, path, body).await;
        (status, value)
    }

    /// [`Server::call`], with the response's content type.
    async fn call_typed(
        &self,
        token: &str,
        method: Method,
        path: &str,
        body: Option<&str>,
    ) -> (StatusCode, String, Value) {
        let mut req = self.client.request(method, format!("{}{path}", self.base)).bearer_auth(token);
        if let Some(body) = body {
            req = req.header("content-type", "application/json").body(body.to_string());
        }
        let res = req.send().await.unwrap();
        let status = res.status();
        let kind = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
        let text = res.text().await.unwrap();
        (status, kind, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    async fn post(&self, token: &str, path: &str, body: Value) -> (StatusCode, Value) {
        self.call(token, Method::POST, path, Some(&body.to_string())).await
    }

    async fn get(&self, token: &str, path: &str) -> (StatusCode, Value) {
        self.call(token, Method::GET, path, None).await
    }

    /// Signs an agent in, in call-center mode, with the work day started.
    async fn ready(&self, agent: &str) {
        for (method, path, body) in [
            (Method::POST, "sign_in", "{}"),
            (Method::PUT, "status", r#"{"status":"callcenter"}"#),
            (Method::POST, "work_day/start", "{}"),
        ] {
            let (status, body) = self.call(ALL, method, &format!("/v1/agents/{agent}/{path}"), Some(body)).await;
            assert_eq!(status, StatusCode::OK, "{agent} {path}: {body}");
        }
    }
}

fn types(updates: &Value) -> Vec<String> {
    updates["updates"].as_array().unwrap().iter().map(|u| u["type"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_is_offered_accepted_and_closed_over_http() {
    let s = Server::start().await;
    s.ready("nora").await;
    let (status, created) =
        s.post(ALL, "/v1/conversations", json!({"id": "c1", "queue": "north_line", "caller": {"name": "Kari"}})).await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(types(&created).contains(&"offered".to_string()), "{created}");
    // A reply sums a decision up; the full trace (every skipped agent) is on the conversation.
    let decided = created["updates"].as_array().unwrap().iter().find(|u| u["type"] == "decided").unwrap();
    assert_eq!(
        (decided["decision"].as_str(), decided["skipped"].as_u64()),
        (Some("offer nora (1s)"), Some(1)),
        "{decided}"
    );

    // Without `agent`: whoever it is offered to.
    let (status, accepted) = s.post(ALL, "/v1/conversations/c1/accept", json!({})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    let (_, agent) = s.get(ALL, "/v1/agents/nora").await;
    assert_eq!((agent["state"].as_str(), agent["conversation"].as_str()), (Some("busy"), Some("c1")));
    assert!(agent["time_in_state_ms"].as_i64().unwrap() >= 0);

    let (status, _) = s.post(ALL, "/v1/conversations/c1/close", json!({})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, c) = s.get(ALL, "/v1/conversations/c1").await;
    assert_eq!(c["status"], "closed");
    assert_eq!(c["caller"]["name"], "Kari");
    assert_eq!(c["attempts"][0]["outcome"], "accepted");
    assert_eq!(c["traces"][0]["policy"], "round_robin");
    assert_eq!(c["traces"][0]["decision"], "offer nora (1s)");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agents_are_created_and_changed_through_the_directory() {
    let s = Server::start().await;
    let body = json!({"id": "olav", "unit": "north", "name": "Olav", "email": "olav@example.com",
                      "time_zone": "Europe/Oslo", "skills": {"no": 5}, "queues": ["north_line"]});
    let (status, olav) = s.post(NORTH, "/v1/agents", body).await;
    assert_eq!(status, StatusCode::CREATED, "{olav}");
    assert_eq!((olav["unit"].as_str(), olav["presence"].as_str()), (Some("north"), Some("offline")));
    assert_eq!(olav["queues"], json!(["north_line"]));

    // Olav is the only one ready, so the queue's policy offers him the conversation.
    s.ready("olav").await;
    let (_, created) = s.post(NORTH, "/v1/conversations", json!({"id": "c1", "queue": "north_line"})).await;
    let offered = &created["updates"].as_array().unwrap().iter().find(|u| u["type"] == "offered").unwrap()["agents"];
    assert_eq!(offered, &json!(["olav"]), "{created}");

    let patch = Some(r#"{"email": null, "phone": "+47 22 00 00 00", "attributes": {"floor": 3}}"#);
    let (status, olav) = s.call(NORTH, Method::PATCH, "/v1/agents/olav", patch).await;
    assert_eq!(status, StatusCode::OK, "{olav}");
    assert_eq!((olav["email"].clone(), olav["phone"].clone()), (Value::Null, json!("+47 22 00 00 00")));
    assert_eq!((olav["name"].as_str(), olav["attributes"]["floor"].as_i64()), (Some("Olav"), Some(3)));
    assert_eq!(olav["state"], "offered", "changing contact details leaves the work alone");

    // A scripted agent's contact details can be changed too; the scripts' other fields stay.
    let (_, nora) = s.call(NORTH, Method::PATCH, "/v1/agents/nora", Some(r#"{"email":"n@example.org"}"#)).await;
    assert_eq!((nora["email"].as_str(), nora["team"].as_str()), (Some("n@example.org"), Some("desk")));

    // Units: a north token cannot create in the south nor touch a south agent.
    let (status, answer) = s.post(NORTH, "/v1/agents", json!({"id": "sven", "unit": "south"})).await;
    assert_eq!((status, answer["field"].as_str()), (StatusCode::FORBIDDEN, Some("unit")), "{answer}");
    let (status, _) = s.call(NORTH, Method::PATCH, "/v1/agents/sara", Some(r#"{"phone":"123"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, answer) =
        s.post(NORTH, "/v1/agents", json!({"id": "sven", "unit": "north", "queues": ["south_line"]})).await;
    assert_eq!((status.as_u16(), answer["field"].as_str()), (422, Some("queues")), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_malformed_request_gets_a_4xx_that_names_the_problem() {
    let s = Server::start().await;
    s.ready("nora").await;
    s.post(ALL, "/v1/conversations", json!({"id": "taken", "queue": "north_line"})).await;
    let big = format!(r#"{{"id":"big","queue":"north_line","attributes":{{"x":"{}"}}}}"#, "a".repeat(5000));
    // (method, path, body, status, error code, words the message must contain)
    type Case<'a> = (Method, &'a str, Option<&'a str>, u16, &'a str, &'a str);
    let cases: Vec<Case> = vec![
        (Method::POST, "/v1/conversations", Some("{\"id\": "), 400, "bad_json", "EOF"),
        (Method::POST, "/v1/conversations", Some("[1,2]"), 400, "bad_json", "invalid type"),
        (Method::POST, "/v1/conversations", Some(r#"{"id":"x"}"#), 400, "bad_json", "missing field `queue`"),
        (
            Method::POST,
            "/v1/conversations",
            Some(r#"{"id":"x","queue":"north_line","colour":1}"#),
            400,
            "bad_json",
            "unknown field `colour`",
        ),
        (Method::POST, "/v1/conversations", Some(r#"{"id":"","queue":"north_line"}"#), 400, "bad_field", "`id`"),
        (Method::POST, "/v1/conversations", Some(r#"{"id":"x","queue":"nowhere"}"#), 404, "unknown_queue", "nowhere"),
        (
            Method::POST,
            "/v1/conversations",
            Some(r#"{"id":"taken","queue":"north_line"}"#),
            409,
            "duplicate_conversation",
            "taken",
        ),
        (Method::POST, "/v1/conversations", Some(&big), 413, "bad_body", "length limit"),
        (
            Method::POST,
            "/v1/conversations/ghost/accept",
            Some(r#"{"agent":"nora"}"#),
            404,
            "unknown_conversation",
            "ghost",
        ),
        (Method::POST, "/v1/conversations/taken/accept", Some(r#"{"agent":"nobody"}"#), 404, "unknown_agent", "nobody"),
        (
            Method::POST,
            "/v1/conversations/taken/accept",
            Some(r#"{"agent":"nils"}"#),
            409,
            "illegal_state_change",
            "nils",
        ),
        (Method::POST, "/v1/conversations/taken/accept", Some(r#"{"agent":7}"#), 400, "bad_json", "invalid type"),
        (Method::GET, "/v1/agents/nobody", None, 404, "unknown_agent", "nobody"),
        (Method::PUT, "/v1/agents/nora/presence", Some(r#"{"presence":"beach"}"#), 422, "unknown_presence", "beach"),
        (Method::PUT, "/v1/agents/nora/status", Some(r#"{"status":"asleep"}"#), 422, "invalid_field", "asleep"),
        (Method::POST, "/v1/agents/nils/pause", Some(r#"{"cause":"nap"}"#), 422, "unknown_pause_cause", "nap"),
        (Method::POST, "/v1/agents/nils/resume", Some("{}"), 409, "illegal_state_change", "not paused"),
        (
            Method::PUT,
            "/v1/agents/nils/vacations",
            Some(r#"{"periods":[{"from":"2026-07-10T00:00:00Z","to":"2026-07-01T00:00:00Z"}]}"#),
            422,
            "invalid_field",
            "before it starts",
        ),
        (Method::PUT, "/v1/agents/nils/employment", Some(r#"{"dismissed":"yes"}"#), 400, "bad_json", "invalid type"),
        (Method::POST, "/v1/agents", Some(r#"{"unit":"north"}"#), 400, "bad_field", "`id`"),
        (Method::POST, "/v1/agents", Some(r#"{"id":"o","colour":1}"#), 400, "bad_json", "unknown field `colour`"),
        (Method::POST, "/v1/agents", Some(r#"{"id":"nora","unit":"north"}"#), 409, "duplicate_agent", "nora"),
        (Method::POST, "/v1/agents", Some(r#"{"id":"o","team":"night"}"#), 422, "invalid_field", "team `night`"),
        (Method::PATCH, "/v1/agents/nobody", Some("{}"), 404, "unknown_agent", "nobody"),
        (Method::PATCH, "/v1/agents/nora", Some(r#"{"time_zone":"Oslo"}"#), 422, "invalid_field", "IANA"),
        (Method::PATCH, "/v1/agents/nora", Some(r#"{"weight":"heavy"}"#), 400, "bad_json", "invalid type"),
        (Method::GET, "/v1/queues/nowhere", None, 404, "unknown_queue", "nowhere"),
        (Method::GET, "/v1/no/such/thing", None, 404, "no_such_route", "openapi"),
        // What axum refuses before a handler runs is a problem document too.
        (Method::DELETE, "/v1/queues", None, 405, "method_not_allowed", "takes GET"),
        (
            Method::GET,
            "/v1/agents/nora?bogus=1",
            None,
            400,
            "unknown_query_parameter",
            "`bogus` (this route takes: unit)",
        ),
        (Method::GET, "/v1/queues?page=2", None, 400, "unknown_query_parameter", "`page` (this route takes: none)"),
        (Method::GET, "/v1/agents/nora?unit=[", None, 404, "unknown_agent", "nora"),
    ];
    for (method, path, body, status, error, words) in cases {
        let (got, kind, answer) = s.call_typed(ALL, method.clone(), path, body).await;
        let what = format!("{method} {path} {}", body.unwrap_or("").chars().take(80).collect::<String>());
        assert_eq!(got.as_u16(), status, "{what}: {answer}");
        assert_eq!(kind, "application/problem+json", "{what}: {answer}");
        assert_eq!((&answer["code"], &answer["status"]), (&json!(error), &json!(status)), "{what}: {answer}");
        assert_eq!(answer["type"], format!("urn:rota:problem:{error}"), "{what}: {answer}");
        assert!(answer["detail"].as_str().unwrap().contains(words), "{what}: {answer}");
        assert_eq!((&answer["error"], &answer["message"]), (&answer["code"], &answer["detail"]), "{what}: {answer}");
    }
    // The one field at fault is named, in a body or a query, missing or wrong.
    for (method, path, body, field) in [
        (Method::PUT, "/v1/agents/nora/presence", Some("{}"), "presence"),
        (Method::POST, "/v1/agents/nils/pause", Some(r#"{"cause":7}"#), "cause"),
        (
            Method::PUT,
            "/v1/agents/nils/vacations",
            Some(r#"{"periods":[{"from":"2026-07-10T00:00:00Z"}]}"#),
            "periods[0].to",
        ),
        (Method::POST, "/v1/agents", Some(r#"{"id":"o","colour":1}"#), "colour"),
        (Method::GET, "/v1/queues?page=2", None, "page"),
        (Method::GET, "/v1/agents?state=flying", None, "state"),
        (Method::GET, "/v1/conversations?status=lost", None, "status"),
        (Method::GET, "/v1/conversations?from=yesterday", None, "from"),
        (Method::GET, "/v1/agents?limit=0", None, "limit"),
        (Method::GET, "/v1/tasks?limit=many", None, "limit"),
        (Method::GET, "/v1/timers?limit=1001", None, "limit"),
        (Method::GET, "/v1/workflow_instances?cursor=%25%25", None, "cursor"),
    ] {
        let (status, answer) = s.call(ALL, method.clone(), path, body).await;
        assert_eq!((status, &answer["field"]), (StatusCode::BAD_REQUEST, &json!(field)), "{method} {path}: {answer}");
    }
    // A refused input changed nothing: the offer of `taken` to nora still stands.
    let (_, c) = s.get(ALL, "/v1/conversations/taken").await;
    assert_eq!(c["status"], "offered", "{c}");
}

/// Walks a list page by page (`limit` each) and returns the ids in the order they came.
async fn pages(s: &Server, token: &str, path: &str, key: &str, limit: usize) -> Vec<String> {
    let (mut seen, mut cursor) = (Vec::new(), None::<String>);
    let join = if path.contains('?') { '&' } else { '?' };
    loop {
        let after = cursor.as_ref().map(|c| format!("&cursor={c}")).unwrap_or_default();
        let (status, page) = s.get(token, &format!("{path}{join}limit={limit}{after}")).await;
        assert_eq!(status, StatusCode::OK, "{path}: {page}");
        let items = page[key].as_array().unwrap();
        assert!(items.len() <= limit, "{path}: {page}");
        seen.extend(items.iter().map(|i| i["id"].to_string().trim_matches('"').to_string()));
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_string()),
            None => return seen,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_list_comes_in_pages_that_neither_repeat_nor_skip() {
    let s = Server::start().await;
    s.ready("nora").await;
    s.ready("nils").await;
    for n in 1..=5 {
        s.post(ALL, "/v1/agents", json!({"id": format!("temp{n}"), "unit": "north", "queues": ["north_line"]})).await;
    }
    for n in 1..=4 {
        let (status, body) =
            s.post(ALL, "/v1/conversations", json!({"id": format!("c{n}"), "queue": "north_line"})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    // Agents in the order they were created, two by two, the same as all at once.
    let all: Vec<String> = {
        let (_, list) = s.get(ALL, "/v1/agents?limit=1000").await;
        assert!(list["next_cursor"].is_null(), "{list}");
        list["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(all.len(), 8, "{all:?}");
    assert_eq!(pages(&s, ALL, "/v1/agents", "agents", 2).await, all);
    assert_eq!(pages(&s, ALL, "/v1/agents", "agents", 3).await, all);
    // Filters: a unit's agents, a queue's members, the agents in a state.
    assert_eq!(pages(&s, SOUTH, "/v1/agents", "agents", 2).await, vec!["sara"]);
    assert_eq!(pages(&s, ALL, "/v1/agents?queue=north_line", "agents", 2).await.len(), 7);
    let busy_or_ringing = pages(&s, ALL, "/v1/agents?state=offered", "agents", 1).await;
    assert_eq!(busy_or_ringing, vec!["nora", "nils"]);

    // Conversations newest first; one that arrives between two pages is not in the later ones
    // (it is newer than the cursor) and nothing repeats.
    let (_, first) = s.get(ALL, "/v1/conversations?limit=2").await;
    let ids = |page: &Value| -> Vec<String> {
        page["conversations"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&first), vec!["c4", "c3"], "{first}");
    assert!(first["conversations"][0].get("traces").is_none(), "lists leave traces out: {first}");
    s.post(ALL, "/v1/conversations", json!({"id": "c5", "queue": "north_line"})).await;
    let cursor = first["next_cursor"].as_str().unwrap();
    let (_, second) = s.get(ALL, &format!("/v1/conversations?limit=2&cursor={cursor}")).await;
    assert_eq!(ids(&second), vec!["c2", "c1"], "{second}");
    assert!(second["next_cursor"].is_null(), "{second}");
    // Filters: by status, agent, queue and arrival time.
    let offered = pages(&s, ALL, "/v1/conversations?status=offered", "conversations", 1).await;
    assert_eq!(offered, vec!["c2", "c1"]);
    assert_eq!(pages(&s, ALL, "/v1/conversations?agent=nils", "conversations", 5).await, vec!["c2"]);
    assert_eq!(pages(&s, SOUTH, "/v1/conversations", "conversations", 5).await, Vec::<String>::new());
    assert_eq!(pages(&s, ALL, "/v1/conversations?from=2000-01-01T00:00:00Z", "conversations", 2).await.len(), 5);
    assert_eq!(pages(&s, ALL, "/v1/conversations?to=2000-01-01T00:00:00Z", "conversations", 2).await.len(), 0);

    // Timers (each offer's timeout and more) in due order, one by one, the same as at once.
    let (_, timers) = s.get(ALL, "/v1/timers?limit=1000").await;
    let due: Vec<String> = timers["timers"].as_array().unwrap().iter().map(|t| t["id"].to_string()).collect();
    assert!(due.len() >= 2, "{timers}");
    assert_eq!(pages(&s, ALL, "/v1/timers", "timers", 1).await, due);
    let offer_timeouts = pages(&s, ALL, "/v1/timers?kind=offer_timeout", "timers", 1).await;
    assert_eq!(offer_timeouts.len(), 2, "{timers}");
}

/// In a queue of 2,000 agents of whom nobody can take the call, a decision's trace names the
/// first ten it skipped and counts all 2,000 by reason: a conversation reads back in a few
/// kilobytes, not hundreds. A queue with `full_traces` names every one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_queues_traces_name_a_few_and_count_the_rest() {
    let scripts = Scratch::new(&[(
        "rules.lua",
        r#"
teams.define { id = "desk" }
local all = {}
for i = 1, 2000 do agents.define { id = "a" .. i, team = "desk" }; all[i] = "a" .. i end
queues.define { id = "big", agents = all, policy = "longest_idle" }
queues.define { id = "big_full", agents = all, policy = "longest_idle", full_traces = true }
"#,
    )]);
    let s = Server::with_scripts(scripts.0.clone()).await;
    // Half of them in call-center mode but signed out: two reasons, a thousand each.
    let inputs: Vec<Value> =
        (1..=1000).map(|i| json!({"set_status": {"agent": format!("a{i}"), "status": "callcenter"}})).collect();
    // In small batches: this server takes bodies of 4 KiB.
    for chunk in inputs.chunks(50) {
        let (status, done) = s.post(ALL, "/v1/batch", json!({ "inputs": chunk })).await;
        assert_eq!(status, StatusCode::OK, "{done}");
    }
    for (id, queue) in [("c1", "big"), ("c2", "big_full")] {
        let (status, body) = s.post(ALL, "/v1/conversations", json!({"id": id, "queue": queue})).await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }

    let (_, c1) = s.get(ALL, "/v1/conversations/c1").await;
    let trace = &c1["traces"][0];
    let named: Vec<&str> = trace["skipped"].as_array().unwrap().iter().map(|s| s["agent"].as_str().unwrap()).collect();
    assert_eq!(named, (1..=10).map(|i| format!("a{i}")).collect::<Vec<_>>(), "{} named", named.len());
    assert_eq!(trace["skipped_total"], 2000, "{trace}");
    let by_reason = trace["skipped_by_reason"].as_object().unwrap();
    assert_eq!(by_reason.len(), 2, "{trace}");
    assert!(by_reason.values().all(|n| n == 1000), "{trace}");
    let size = trace.to_string().len();
    assert!(size < 1024, "one decision's trace is {size} bytes: {trace}");
    assert!(c1.to_string().len() < 4096, "{c1}");

    let (_, c2) = s.get(ALL, "/v1/conversations/c2").await;
    let trace = &c2["traces"][0];
    assert_eq!(trace["skipped"].as_array().unwrap().len(), 2000);
    assert_eq!(trace["skipped_total"], 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_sees_and_changes_only_its_units() {
    let s = Server::start().await;
    s.ready("sara").await;
    s.ready("nora").await;
    s.post(ALL, "/v1/conversations", json!({"id": "s1", "queue": "south_line"})).await;
    s.post(ALL, "/v1/conversations", json!({"id": "n1", "queue": "north_line"})).await;

    // Another unit's things look like things that do not exist.
    assert_eq!(s.get(NORTH, "/v1/agents/sara").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(NORTH, "/v1/conversations/s1").await.0, StatusCode::NOT_FOUND);
    assert_eq!(s.get(NORTH, "/v1/queues/south_line").await.0, StatusCode::NOT_FOUND);
    let (status, _) = s.post(NORTH, "/v1/conversations", json!({"id": "x", "queue": "south_line"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.post(NORTH, "/v1/conversations/s1/accept", json!({"agent": "sara"})).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = s.call(NORTH, Method::PUT, "/v1/agents/sara/presence", Some(r#"{"presence":"away"}"#)).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (_, sara) = s.get(ALL, "/v1/agents/sara").await;
    assert_eq!((sara["presence"].as_str(), sara["state"].as_str()), (Some("available"), Some("offered")));

    // Lists are filtered.
    let ids = |v: &Value, key: &str| -> Vec<String> {
        v[key].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap().to_string()).collect()
    };
    assert_eq!(ids(&s.get(NORTH, "/v1/agents").await.1, "agents"), ["nora", "nils"]);
    assert_eq!(ids(&s.get(ALL, "/v1/agents").await.1, "agents"), ["nora", "nils", "sara"]);
    assert_eq!(ids(&s.get(NORTH, "/v1/queues").await.1, "queues"), ["north_line"]);
    let (_, timers) = s.get(NORTH, "/v1/timers").await;
    let subjects: Vec<&str> =
        timers["timers"].as_array().unwrap().iter().map(|t| t["subject"].as_str().unwrap()).collect();
    assert!(!subjects.is_empty() && subjects.iter().all(|s| *s == "n1"), "{timers}");

    // Its own unit works; reloading scripts (which serve every unit) does not.
    assert_eq!(s.post(NORTH, "/v1/conversations/n1/accept", json!({"agent": "nora"})).await.0, StatusCode::OK);
    assert_eq!(s.post(NORTH, "/v1/scripts/reload", json!({})).await.0, StatusCode::FORBIDDEN);

    // No token, or a wrong one: 401 everywhere but the two open routes.
    assert_eq!(s.get("wrong", "/v1/agents").await.0, StatusCode::UNAUTHORIZED);
    let plain = |path: &str| s.client.get(format!("{}{path}", s.base)).send();
    assert_eq!(plain("/v1/agents").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(plain("/healthz").await.unwrap().status(), StatusCode::OK);
    let metrics = plain("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("rota_queue_waiting{queue=\"south_line\",unit=\"south\"} 1"), "{metrics}");
    assert!(metrics.contains("rota_decision_seconds_count"), "{metrics}");
    assert!(metrics.contains("rota_queue_retry_backoff_seconds{queue=\"south_line\",unit=\"south\"} "), "{metrics}");
    assert!(metrics.contains("rota_queue_failing_decisions{queue=\"south_line\",unit=\"south\"} 0"), "{metrics}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_event_stream_carries_offers_filtered_by_agent_and_scoped_by_unit() {
    let s = Server::start().await;
    s.ready("nora").await;
    s.ready("sara").await;
    let open = |token: &'static str, query: &'static str| {
        s.client.get(format!("{}/v1/events{query}", s.base)).bearer_auth(token).send()
    };
    let nora = open(ALL, "?agent=nora").await.unwrap();
    let north = open(NORTH, "").await.unwrap();
    assert_eq!(nora.status(), StatusCode::OK);
    s.post(ALL, "/v1/conversations", json!({"id": "s1", "queue": "south_line"})).await;
    s.post(ALL, "/v1/conversations", json!({"id": "n1", "queue": "north_line"})).await;

    // Read each stream until its offer arrives; anything about sara or s1 on it is a leak.
    for (res, who) in [(nora, "nora"), (north, "north")] {
        let mut body = res.bytes_stream();
        let mut text = String::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while !text.contains("event: offered") {
            let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("an offer within 10 s");
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap().unwrap()));
        }
        assert!(text.contains(r#""conversation":"n1""#), "{who}: {text}");
        assert!(!text.contains("sara") && !text.contains(r#""s1""#), "{who}: {text}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_lists_every_route_the_router_serves() {
    let s = Server::start().await;
    let (status, doc) = s.get(ALL, "/v1/openapi.json").await;
    assert_eq!(status, StatusCode::OK);
    let paths = doc["paths"].as_object().unwrap();
    for route in rota::http::route_docs() {
        assert!(paths[route.path][route.method].is_object(), "{} {} is not documented", route.method, route.path);
        // The route exists: with a bad token it is refused (401), not missing (404/405).
        let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let path = route.path.replace("{id}", "nora");
        let res = s.client.request(method, format!("{}{path}", s.base)).bearer_auth("wrong").send().await.unwrap();
        let expected = if route.open { StatusCode::OK } else { StatusCode::UNAUTHORIZED };
        assert_eq!(res.status(), expected, "{} {}", route.method, route.path);
    }
    let documented: usize = paths.values().map(|p| p.as_object().unwrap().len()).sum();
    assert_eq!(documented, rota::http::route_docs().len());

    // Served without a token, so a generator can fetch it.
    let anonymous = s.client.get(format!("{}/v1/openapi.json", s.base)).send().await.unwrap();
    assert_eq!(anonymous.status(), StatusCode::OK);
    assert_eq!(anonymous.json::<Value>().await.unwrap(), doc);

    // What a client generator needs of every operation.
    let mut operations = std::collections::BTreeSet::new();
    for (path, methods) in paths {
        for (method, op) in methods.as_object().unwrap() {
            let what = format!("{method} {path}");
            assert!(operations.insert(op["operationId"].as_str().unwrap().to_string()), "{what}: operationId repeats");
            assert_eq!(op["tags"].as_array().unwrap().len(), 1, "{what}");
            let (status, reply) =
                op["responses"].as_object().unwrap().iter().find(|(s, _)| s.starts_with('2')).unwrap();
            let media = reply["content"].as_object().unwrap().keys().next().unwrap().clone();
            match path.as_str() {
                "/v1/events" => assert_eq!(media, "text/event-stream", "{what}"),
                "/healthz" | "/metrics" => assert_eq!(media, "text/plain", "{what}"),
                _ => assert_eq!(media, "application/json", "{what}"),
            }
            let creates = matches!((method.as_str(), path.as_str()), ("post", "/v1/conversations" | "/v1/agents"));
            assert_eq!(status, if creates { "201" } else { "200" }, "{what}");
            // Every route that changes something reads a body, but these two, which read none.
            if method != "get" && !matches!(path.as_str(), "/v1/notifications/{id}/retry" | "/v1/scripts/reload") {
                assert!(
                    op["requestBody"]["content"]["application/json"]["schema"].is_object(),
                    "{what}: no body schema"
                );
            }
            let open = op["security"] == json!([]);
            for code in if open { &["400"][..] } else { &["400", "401", "404", "409", "422"] } {
                assert_eq!(op["responses"][code]["$ref"], "#/components/responses/Problem", "{what} {code}");
            }
        }
    }
    let problem = &doc["components"]["responses"]["Problem"]["content"]["application/problem+json"]["schema"];
    let problem = &doc["components"]["schemas"][problem["$ref"].as_str().unwrap().rsplit('/').next().unwrap()];
    assert_eq!(
        problem["required"],
        json!(["type", "title", "status", "detail", "code", "error", "message"]),
        "{problem}"
    );
    // Query parameters are typed from the handlers' own query types.
    let list_agents = &paths["/v1/agents"]["get"]["parameters"];
    let state = list_agents.as_array().unwrap().iter().find(|p| p["name"] == "state").unwrap();
    assert!(state["schema"].to_string().contains("State"), "{state}");
}

/// Units are walls on every route: for each route that names a conversation, agent or queue,
/// a token of another unit gets exactly the answer it would get for an id that does not exist
/// (same status, same error, same message but for the id); and the event stream never
/// carries another unit's updates.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_answers_another_units_ids_like_unknown_ones() {
    let s = Server::start().await;
    s.ready("sara").await;
    s.post(ALL, "/v1/conversations", json!({"id": "s1", "queue": "south_line"})).await;
    let south = [("/v1/conversations/", "s1"), ("/v1/agents/", "sara"), ("/v1/queues/", "south_line")];
    let mut checked = 0;
    for route in rota::http::route_docs() {
        let Some((_, id)) = south.iter().find(|(prefix, _)| route.path.starts_with(prefix)) else { continue };
        if !route.path.contains("{id}") || route.open {
            continue;
        }
        let method = Method::from_bytes(route.method.to_uppercase().as_bytes()).unwrap();
        let body = (method != Method::GET).then_some("{}");
        let (theirs, their_body) = s.call(NORTH, method.clone(), &route.path.replace("{id}", id), body).await;
        let (unknown, unknown_body) = s.call(NORTH, method, &route.path.replace("{id}", "zz-unknown"), body).await;
        let scrub = |v: &Value, id: &str| v.to_string().replace(id, "ID");
        assert_eq!(
            (theirs, scrub(&their_body, id)),
            (unknown, scrub(&unknown_body, "zz-unknown")),
            "{} {}",
            route.method,
            route.path
        );
        checked += 1;
    }
    assert!(checked >= 15, "only {checked} routes checked");

    // The stream of a north token: sara's change (south) never comes, nora's (north) does.
    let mut events = common::follow_events(&s.client, &s.base, NORTH, "").await;
    s.call(ALL, Method::PUT, "/v1/agents/sara/presence", Some(r#"{"presence":"away"}"#)).await;
    s.post(ALL, "/v1/agents/nora/sign_in", json!({})).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let next = tokio::time::timeout_at(deadline, events.recv()).await.expect("nora's update within 10 s");
        let (_, data, _) = next.expect("the stream stays open");
        assert!(!data.to_string().contains("sara"), "{data}");
        if data.to_string().contains("nora") {
            break;
        }
    }
}

/// Conversation ids live per unit: each unit may have its own `c1`, creating one never tells
/// that another unit has the id, each token reaches only its own, and a token over several
/// units that see the id is asked which it means (`?unit=`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversation_ids_live_per_unit() {
    let s = Server::start().await;
    s.ready("sara").await;
    s.ready("nora").await;
    let (status, north) = s.post(NORTH, "/v1/conversations", json!({"id": "c1", "queue": "north_line"})).await;
    assert_eq!(status, StatusCode::CREATED, "{north}");
    let (status, south) = s.post(SOUTH, "/v1/conversations", json!({"id": "c1", "queue": "south_line"})).await;
    assert_eq!(status, StatusCode::CREATED, "another unit's c1 is no obstacle: {south}");
    // Updates show the id, never the engine's key.
    assert!(south.to_string().contains(r#""conversation":"c1""#), "{south}");
    assert!(!south.to_string().contains("\\u001f"), "{south}");
    let (status, again) = s.post(NORTH, "/v1/conversations", json!({"id": "c1", "queue": "north_line"})).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::CONFLICT, Some("duplicate_conversation")), "{again}");

    let (_, n) = s.get(NORTH, "/v1/conversations/c1").await;
    let (_, so) = s.get(SOUTH, "/v1/conversations/c1").await;
    assert_eq!(
        (n["id"].as_str(), n["unit"].as_str(), n["queue"].as_str()),
        (Some("c1"), Some("north"), Some("north_line"))
    );
    assert_eq!(
        (so["id"].as_str(), so["unit"].as_str(), so["queue"].as_str()),
        (Some("c1"), Some("south"), Some("south_line"))
    );

    let (status, both) = s.get(ALL, "/v1/conversations/c1").await;
    assert_eq!(
        (status, both["error"].as_str(), both["field"].as_str()),
        (StatusCode::CONFLICT, Some("ambiguous_conversation"), Some("unit")),
        "{both}"
    );
    assert!(both["message"].as_str().unwrap().contains("north, south"), "{both}");
    let (_, picked) = s.get(ALL, "/v1/conversations/c1?unit=south").await;
    assert_eq!(picked["unit"], "south", "{picked}");

    // Each action reaches its own unit's c1.
    assert_eq!(s.post(SOUTH, "/v1/conversations/c1/accept", json!({"agent": "sara"})).await.0, StatusCode::OK);
    let (_, n) = s.get(NORTH, "/v1/conversations/c1").await;
    assert_eq!(n["status"], "offered", "north's c1 is untouched: {n}");
    let (status, _) = s.post(ALL, "/v1/conversations/c1/accept?unit=north", json!({"agent": "nora"})).await;
    assert_eq!(status, StatusCode::OK);
    let (_, timers) = s.get(NORTH, "/v1/timers").await;
    assert!(
        timers.to_string().contains(r#""subject":"c1""#) || timers["timers"].as_array().unwrap().is_empty(),
        "{timers}"
    );
}

/// Agent ids live per unit too: a unit's token may create `sara` although another unit has a
/// `sara`, is never told so, and each token reaches its own; offers, updates and traces show the
/// id, never the engine's key; a token over both units is asked which it means.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn agent_ids_live_per_unit() {
    let s = Server::start().await;
    let (status, made) =
        s.post(NORTH, "/v1/agents", json!({"id": "sara", "unit": "north", "queues": ["north_line"]})).await;
    assert_eq!(status, StatusCode::CREATED, "south's sara is no obstacle: {made}");
    assert_eq!((made["id"].as_str(), made["unit"].as_str()), (Some("sara"), Some("north")), "{made}");
    let (status, again) = s.post(NORTH, "/v1/agents", json!({"id": "sara", "unit": "north"})).await;
    assert_eq!((status, again["error"].as_str()), (StatusCode::CONFLICT, Some("duplicate_agent")), "{again}");

    let (_, north) = s.get(NORTH, "/v1/agents/sara").await;
    let (_, south) = s.get(SOUTH, "/v1/agents/sara").await;
    assert_eq!((north["unit"].as_str(), south["unit"].as_str()), (Some("north"), Some("south")));
    let (status, both) = s.get(ALL, "/v1/agents/sara").await;
    assert_eq!(
        (status, both["error"].as_str(), both["field"].as_str()),
        (StatusCode::CONFLICT, Some("ambiguous_agent"), Some("unit")),
        "{both}"
    );
    assert_eq!(s.get(ALL, "/v1/agents/sara?unit=south").await.1["unit"], "south");
    // Naming the other unit's agent by the engine's key is the same as naming nobody.
    let (status, keyed) = s.get(NORTH, "/v1/agents/south%1Fsara").await;
    assert_eq!((status, keyed["error"].as_str()), (StatusCode::NOT_FOUND, Some("unknown_agent")), "{keyed}");

    // North's sara works north's line; south's sara is untouched by any of it.
    for (method, path, body) in [
        (Method::POST, "sign_in", "{}"),
        (Method::PUT, "status", r#"{"status":"callcenter"}"#),
        (Method::POST, "work_day/start", "{}"),
    ] {
        let (status, body) = s.call(NORTH, method, &format!("/v1/agents/sara/{path}"), Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{path}: {body}");
        assert!(!body.to_string().contains("\\u001f"), "{body}");
    }
    let (_, created) = s.post(NORTH, "/v1/conversations", json!({"id": "c1", "queue": "north_line"})).await;
    let offered = created["updates"].as_array().unwrap().iter().find(|u| u["type"] == "offered").cloned();
    assert_eq!(offered.as_ref().map(|o| o["agents"].clone()), Some(json!(["sara"])), "{created}");
    let (status, accepted) = s.post(NORTH, "/v1/conversations/c1/accept", json!({"agent": "sara"})).await;
    assert_eq!(status, StatusCode::OK, "{accepted}");
    assert!(accepted.to_string().contains(r#""agent":"sara""#), "{accepted}");
    let (_, c) = s.get(NORTH, "/v1/conversations/c1").await;
    assert_eq!((c["agent"].as_str(), c["attempts"][0]["agent"].as_str()), (Some("sara"), Some("sara")), "{c}");
    assert!(!c.to_string().contains("\\u001f"), "{c}");
    let (_, south) = s.get(SOUTH, "/v1/agents/sara").await;
    assert_eq!((south["online"].as_bool(), south["state"].as_str()), (Some(false), Some("waiting")), "{south}");
    let (_, north) = s.get(NORTH, "/v1/agents").await;
    let listed: Vec<&str> = north["agents"].as_array().unwrap().iter().map(|a| a["id"].as_str().unwrap()).collect();
    assert_eq!(listed, ["nora", "nils", "sara"], "{north}");
}

/// An embedder's axum app mounts the API beside its own routes: merging does not panic, the
/// host's own `/healthz` and 404 stay the host's, and its own authentication decides each
/// caller's units (rota refuses a request the host let through without a scope).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_mounts_in_a_host_app_under_the_hosts_auth() {
    use axum::http::StatusCode as S;
    use axum::response::IntoResponse;
    let handle = Arc::new(Builder::new(fixture("units")).start().unwrap());
    let mut config = ApiConfig::default();
    config.auth = rota::http::Auth::Host;
    let host_auth = |mut req: axum::extract::Request, next: axum::middleware::Next| async move {
        let scope = match req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
            Some("boss") => rota::http::Scope::units(["*"]),
            Some("north-lead") => rota::http::Scope::units(["north"]),
            Some("forgetful") => return next.run(req).await,
            _ => return (S::UNAUTHORIZED, "host: who are you?").into_response(),
        };
        req.extensions_mut().insert(scope);
        next.run(req).await
    };
    let (api, _closer) = rota::http::api_router(handle.clone(), &config);
    let app = axum::Router::new()
        .route("/healthz", axum::routing::get(|| async { "host healthz" }))
        .merge(api.layer(axum::middleware::from_fn(host_auth)))
        .nest("/rota", rota::http::ops_router(handle))
        .fallback(|| async { (S::NOT_FOUND, "host 404") });
    let base = common::serve(app).await;
    let client = common::http_client();
    let get = |path: &str, user: Option<&str>| {
        let mut req = client.get(format!("{base}{path}"));
        if let Some(u) = user {
            req = req.header("x-user", u);
        }
        async move {
            let res = req.send().await.unwrap();
            (res.status().as_u16(), res.text().await.unwrap())
        }
    };
    assert_eq!(get("/healthz", None).await, (200, "host healthz".into()));
    // rota's own operational routes, where the host put them.
    assert_eq!(get("/rota/healthz", None).await.0, 200);
    assert!(get("/rota/metrics", None).await.1.contains("rota_"), "rota's metrics under /rota");
    assert_eq!(get("/no/such/page", None).await, (404, "host 404".into()));
    assert_eq!(get("/v1/agents", None).await, (401, "host: who are you?".into()));
    let (status, all) = get("/v1/agents", Some("boss")).await;
    assert!(status == 200 && all.contains("sara") && all.contains("nora"), "{status} {all}");
    let (status, north) = get("/v1/agents", Some("north-lead")).await;
    assert!(status == 200 && !north.contains("sara") && north.contains("nora"), "{status} {north}");
    let (status, body) = get("/v1/agents", Some("forgetful")).await;
    assert!(status == 401 && body.contains("no rota scope"), "{status} {body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chats_side_by_side_show_as_load_and_a_call_waits_for_an_agent_without_them() {
    let s = Server::with_scripts(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/capacity")).await;
    s.ready("anna").await;
    for id in ["ch1", "ch2", "ch3"] {
        let (status, made) =
            s.post(ALL, "/v1/conversations", json!({"id": id, "queue": "chats", "channel": "chat"})).await;
        assert_eq!(status, StatusCode::CREATED, "{made}");
        let (status, body) = s.post(ALL, &format!("/v1/conversations/{id}/accept"), json!({"agent": "anna"})).await;
        assert_eq!(status, StatusCode::OK, "{id}: {body}");
    }
    s.post(ALL, "/v1/conversations", json!({"id": "ch4", "queue": "chats", "channel": "chat"})).await;
    let (_, anna) = s.get(ALL, "/v1/agents/anna").await;
    assert_eq!(
        (&anna["state"], &anna["load"], &anna["capacity"], &anna["conversation"]),
        (&json!("waiting"), &json!({"chat": 3}), &json!({"chat": 3, "voice": "exclusive"}), &Value::Null),
        "{anna}"
    );
    let phases: Vec<&str> = anna["slots"].as_array().unwrap().iter().map(|s| s["phase"].as_str().unwrap()).collect();
    assert_eq!(phases, ["talking"; 3], "{anna}");
    let (_, ch4) = s.get(ALL, "/v1/conversations/ch4").await;
    assert_eq!(
        (ch4["status"].as_str(), ch4["traces"][0]["skipped"][0]["reason"].as_str()),
        (Some("queued"), Some("channel_full")),
        "{ch4}"
    );

    s.post(ALL, "/v1/conversations", json!({"id": "call1", "queue": "calls"})).await;
    let (_, call) = s.get(ALL, "/v1/conversations/call1").await;
    assert_eq!(call["traces"][0]["skipped"][0]["reason"], "channel_busy", "{call}");
    // Closing a chat starts its wrap-up: the slot stays taken, the agent's state is still hers.
    s.post(ALL, "/v1/conversations/ch1/close", json!({})).await;
    let (_, anna) = s.get(ALL, "/v1/agents/anna").await;
    assert_eq!((&anna["state"], &anna["slots"][0]["phase"]), (&json!("waiting"), &json!("wrap_up")), "{anna}");

    // The directory sets an agent's own capacity over the team's; a bad one is named.
    let body = r#"{"capacity":{"chat":1}}"#;
    let (status, bo) = s.call(ALL, Method::PATCH, "/v1/agents/bo", Some(body)).await;
    assert_eq!((status, &bo["capacity"]), (StatusCode::OK, &json!({"chat": 1, "voice": "exclusive"})), "{bo}");
    let body = r#"{"capacity":{"chat":-1}}"#;
    let (status, bad) = s.call(ALL, Method::PATCH, "/v1/agents/bo", Some(body)).await;
    assert_eq!((status, bad["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("capacity")), "{bad}");
    assert!(bad["message"].as_str().unwrap().contains("capacity of channel `chat` must be a whole number"), "{bad}");
}

/// `POST /v1/batch`: inputs in order, one result each; a malformed input, one of another
/// unit's, one the batch does not take and one the engine refuses fail alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_runs_its_inputs_in_order_and_each_fails_alone() {
    let s = Server::start().await;
    let batch = json!({"inputs": [
        {"sign_in": {"agent": "nora"}},
        {"set_status": {"agent": "nora", "status": "callcenter"}},
        {"start_work_day": {"agent": "nora"}},
        {"arrive": {"id": "b1", "queue": "north_line"}},
        {"accept": {"conversation": "b1"}},
        {"arrive": {"id": "b2", "queue": "south_line"}},
        {"fly": {"to": "the moon"}},
        {"create_agent": {"agent": "x", "record": {}}},
        {"close": {"conversation": "nope"}},
    ]});
    let (status, body) = s.post(NORTH, "/v1/batch", batch).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let results = body["results"].as_array().unwrap();
    let statuses: Vec<u64> = results.iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 200, 200, 200, 404, 400, 422, 404], "{body}");
    assert_eq!(results[5]["error"], "unknown_queue", "south's queue is unknown to a north token: {body}");
    assert_eq!((results[6]["error"].as_str(), results[7]["error"].as_str()), (Some("bad_json"), Some("not_in_batch")));
    assert!(types(&results[3]).contains(&"offered".to_string()), "{body}");
    let (_, b1) = s.get(NORTH, "/v1/conversations/b1").await;
    assert_eq!((b1["status"].as_str(), b1["agent"].as_str()), (Some("assigned"), Some("nora")), "{b1}");
    let (status, _) = s.get(NORTH, "/v1/conversations/b2").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    // Every input well formed: read whole, same results.
    let batch = json!({"inputs": [{"close": {"conversation": "b1"}}, {"close": {"conversation": "b1"}}]});
    let (_, body) = s.post(NORTH, "/v1/batch", batch).await;
    let statuses: Vec<u64> =
        body["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 409], "{body}");
}

/// What a client shows in its pickers: presences with their text, pause causes, teams; and
/// the presence text on agents and in presence events.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn presences_pause_causes_and_teams_are_listed_with_their_text() {
    let s = Server::with_scripts(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/capacity")).await;
    let (_, p) = s.get(ALL, "/v1/presences").await;
    let away = p["presences"].as_array().unwrap().iter().find(|x| x["id"] == "away").cloned().unwrap();
    assert_eq!((&away["base"], &away["selectable"]), (&json!("away"), &json!(true)), "{p}");
    assert!(away["text"].as_str().is_some_and(|t| !t.is_empty()), "{p}");
    let inactive = p["presences"].as_array().unwrap().iter().find(|x| x["id"] == "inactive").cloned().unwrap();
    assert_eq!(inactive["selectable"], false, "{p}");
    let (_, c) = s.get(ALL, "/v1/pause_causes").await;
    assert!(c["pause_causes"].as_array().unwrap().iter().any(|x| x["id"] == "lunch"), "{c}");
    let (_, t) = s.get(ALL, "/v1/teams").await;
    let support = &t["teams"][0];
    assert_eq!(
        (&support["id"], &support["wrap_up_ms"], &support["capacity"]),
        (&json!("support"), &json!(10_000), &json!({"chat": 3, "voice": "exclusive"})),
        "{t}"
    );
    let (_, signed_in) = s.post(ALL, "/v1/agents/anna/sign_in", json!({})).await;
    let event = signed_in["updates"].as_array().unwrap().iter().find(|u| u["type"] == "agent_presence").cloned();
    let (_, anna) = s.get(ALL, "/v1/agents/anna").await;
    assert_eq!(event.map(|e| e["text"].clone()), Some(anna["presence_text"].clone()), "{signed_in} {anna}");
    assert!(anna["presence_text"].as_str().is_some_and(|t| !t.is_empty()), "{anna}");
}

/// Events of `/v1/events` as (id, type, data), after the `retry:` the stream starts with.
async fn events_from(
    s: &Server,
    last_event_id: Option<&str>,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, String, Value)> {
    let mut req = s.client.get(format!("{}/v1/events", s.base)).bearer_auth(ALL);
    if let Some(id) = last_event_id {
        req = req.header("last-event-id", id);
    }
    let res = req.send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = res.bytes_stream();
        let mut text = String::new();
        let mut retry_seen = false;
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let field = |name: &str| event.lines().find_map(|l| l.strip_prefix(name)).map(str::to_string);
                if field("retry:").is_some() {
                    retry_seen = true;
                }
                if let (Some(kind), Some(data)) = (field("event: "), field("data: ")) {
                    assert!(retry_seen, "the stream starts with retry:");
                    let id = field("id: ").unwrap_or_default();
                    if tx.send((id, kind, serde_json::from_str(&data).unwrap_or(Value::Null))).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}

async fn next_event(rx: &mut tokio::sync::mpsc::UnboundedReceiver<(String, String, Value)>) -> (String, String, Value) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.expect("an event comes").expect("the stream is open")
}

/// The event stream numbers its events; a client that reconnects with `Last-Event-ID` gets
/// what it missed while away, in order and once, then the live events; an id of another run
/// gets a `reset`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_event_stream_resumes_from_its_last_event_id() {
    let s = Server::start().await;
    let mut first = events_from(&s, None).await;
    s.post(ALL, "/v1/conversations", json!({"id": "e1", "queue": "north_line"})).await;
    let (last_id, kind, data) = next_event(&mut first).await;
    assert_eq!((kind.as_str(), &data["conversation"]), ("queued", &json!("e1")), "{data}");
    assert!(!last_id.is_empty(), "events carry ids");
    drop(first);

    // Away: two more conversations come in.
    for id in ["e2", "e3"] {
        s.post(ALL, "/v1/conversations", json!({"id": id, "queue": "north_line"})).await;
    }
    let mut resumed = events_from(&s, Some(&last_id)).await;
    s.post(ALL, "/v1/conversations", json!({"id": "e4", "queue": "north_line"})).await;
    let mut queued = Vec::new();
    let mut ids = Vec::new();
    while queued.len() < 3 {
        let (id, kind, data) = next_event(&mut resumed).await;
        ids.push(id);
        if kind == "queued" {
            queued.push(data["conversation"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(queued, ["e2", "e3", "e4"], "missed ones first, in order, then live ones");
    let mut unique = ids.clone();
    unique.dedup();
    assert_eq!(unique, ids, "no event twice");

    let mut other_run = events_from(&s, Some("1-1")).await;
    let (_, kind, _) = next_event(&mut other_run).await;
    assert_eq!(kind, "reset");
}

/// A browser can follow the event stream with the token in the URL (`EventSource` sends no
/// headers) and call the API from a configured origin (CORS); other origins get no
/// permission, and other routes take no token in the URL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_page_of_a_configured_origin_can_use_the_api_and_the_stream() {
    let s = Server::start().await;
    let url = |path: &str| format!("{}{path}", s.base);
    let res = s.client.get(url(&format!("/v1/events?access_token={ALL}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::OK, "the stream takes the token in its URL");
    let res = s.client.get(url(&format!("/v1/queues?access_token={ALL}"))).send().await.unwrap();
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "other routes do not");

    let preflight = |origin: &'static str| {
        s.client
            .request(Method::OPTIONS, url("/v1/conversations"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "authorization, content-type")
            .send()
    };
    let ok = preflight("https://console.example.com").await.unwrap();
    assert_eq!(
        ok.headers().get("access-control-allow-origin").and_then(|v| v.to_str().ok()),
        Some("https://console.example.com"),
        "{:?}",
        ok.headers()
    );
    let other = preflight("https://elsewhere.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none(), "{:?}", other.headers());
}
