//! Partitions (`rota::runtime::Partitioned`): each group of organization units in an engine of
//! its own, with its own journal, reloaded as one.

use crate::common::{fixture, Scratch};

use rota::partition::Partitioning;
use rota::runtime::{Builder, Partitioned};
use rota::store::SqliteStore;

/// north in partition 0, south in partition 1.
fn two() -> Partitioning {
    Partitioning::new(2, [("north".to_string(), 0), ("south".to_string(), 1)].into()).unwrap()
}

fn arrive(id: &str, queue: &str) -> rota::Input {
    rota::Input::Arrive(Box::new(serde_json::from_value(serde_json::json!({"id": id, "queue": queue})).unwrap()))
}

fn start(dir: &std::path::Path, scripts: &std::path::Path) -> Partitioned {
    Partitioned::start(two(), |p| {
        let store = SqliteStore::open(dir.join(format!("rota-{}.db", p.name()))).unwrap();
        Builder::new(scripts).store(store)
    })
    .unwrap()
}

async fn agents(h: &rota::Handle) -> Vec<String> {
    h.read(|e| e.agents().iter().map(|a| a.def.id.clone()).collect()).await.unwrap()
}

async fn status(rota: &Partitioned) -> Vec<rota::engine::ScriptStatus> {
    let mut out = Vec::new();
    for h in rota.handles() {
        out.push(h.script_status().await.unwrap());
    }
    out
}

/// Each partition holds its own units' agents, queues and conversations and nothing of the
/// others', journals only what it did, and comes back from its own journal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_holds_its_own_units_and_journal() {
    let dir = Scratch::new(&[]);
    let scripts = fixture("units");
    let rota = start(&dir.0, &scripts);
    let (north, south) = (rota.unit("north"), rota.unit("south"));
    assert_eq!(agents(north).await, ["nora", "nils"]);
    assert_eq!(agents(south).await, ["sara"]);
    north.submit(rota::Input::SignIn { agent: "nora".into() }).await.unwrap();
    south.submit(arrive("s1", "south_line")).await.unwrap();
    // Another partition's queue and agent are unknown here, as another unit's are to a token.
    assert!(north.submit(arrive("s2", "south_line")).await.is_err());
    assert!(south.submit(rota::Input::SignIn { agent: "nora".into() }).await.is_err());
    for h in rota.handles() {
        h.close().await.unwrap();
    }
    drop(rota);
    // Each journal has its own partition's inputs.
    let inputs = |name: &str| -> Vec<String> {
        let c = rusqlite::Connection::open(dir.0.join(format!("rota-{name}.db"))).unwrap();
        let mut q = c.prepare("SELECT step FROM journal").unwrap();
        let steps: Vec<String> = q.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
        steps.into_iter().filter(|s| !s.contains("\"Scripts\"") && !s.contains("scripts")).collect()
    };
    let (p0, p1) = (inputs("p0"), inputs("p1"));
    assert!(p0.len() == 1 && p0[0].contains("nora"), "{p0:?}");
    assert!(p1.len() == 1 && p1[0].contains("s1"), "{p1:?}");
    let rota = start(&dir.0, &scripts);
    assert!(rota.unit("north").agent("nora").await.unwrap().unwrap().online);
    assert!(rota.unit("south").conversation("s1").await.unwrap().is_some());
    assert!(rota.unit("north").conversation("s1").await.unwrap().is_none());
}

/// A reload reaches every partition or none: one partition refusing (a queue it still has a
/// caller in is gone) keeps the others on their generation too, each saying why; broken
/// scripts are refused by all with their file and line; good ones reach all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_reaches_every_partition_or_none() {
    let dir = Scratch::new(&[]);
    let scripts = dir.0.join("scripts");
    std::fs::create_dir_all(&scripts).unwrap();
    let rules = std::fs::read_to_string(fixture("units").join("rules.lua")).unwrap();
    std::fs::write(scripts.join("rules.lua"), &rules).unwrap();
    let rota = start(&dir.0, &scripts);
    rota.unit("south").submit(arrive("s1", "south_line")).await.unwrap();

    // south_line still has s1 waiting: partition 1 refuses, so partition 0 does not change.
    let without_south_line = rules.replace("queues.define { id = \"south_line\"", "local _ = { id = \"south_line\"");
    assert_ne!(without_south_line, rules);
    std::fs::write(scripts.join("rules.lua"), &without_south_line).unwrap();
    let refused = rota.reload().await.unwrap_err().to_string();
    assert!(refused.contains("queue `south_line` was removed but still holds 1 conversation"), "{refused}");
    for (p, s) in status(&rota).await.iter().enumerate() {
        assert_eq!(s.generation, 1, "partition {p} moved on alone");
        let why = format!("{:?}", s.last_error);
        assert!(why.contains("south_line"), "partition {p} does not say why: {why}");
    }
    // Broken scripts: refused by all, with the file and line.
    std::fs::write(scripts.join("rules.lua"), format!("{rules}\nqueues.define {{ id = 1 }}\n")).unwrap();
    let refused = rota.reload().await.unwrap_err().to_string();
    assert!(refused.contains("rules.lua:"), "{refused}");
    assert!(status(&rota).await.iter().all(|s| s.generation == 1 && s.last_error.is_some()));
    // Good scripts reach every partition.
    std::fs::write(scripts.join("rules.lua"), format!("{rules}\n-- a comment\n")).unwrap();
    assert_eq!(rota.reload().await.unwrap(), 2);
    assert!(status(&rota).await.iter().all(|s| s.generation == 2 && s.last_error.is_none()));
    // The journal has the new generation in both.
    assert!(rota.unit("south").conversation("s1").await.unwrap().is_some());
}

/// Two units in two partitions, served over HTTP by one API: each request reaches the
/// partition of what it names, lists and the event stream cover both. (The tests add an agent
/// `alex` to south as well: ids live per unit.)
const TWO_UNITS: &str = r#"
agents.define { id = "alex", unit = "north" }
agents.define { id = "nora", unit = "north" }
agents.define { id = "sara", unit = "south" }
queues.define { id = "north_line", unit = "north", agents = { "alex", "nora" }, policy = "round_robin" }
queues.define { id = "south_line", unit = "south", agents = { "sara" }, policy = "round_robin" }
"#;

const ALL: &str = "all-units";
const SOUTH: &str = "south-only";

struct Api {
    base: String,
    client: reqwest::Client,
    _dir: Scratch,
}

impl Api {
    async fn start() -> Api {
        let dir = Scratch::new(&[("scripts/rules.lua", TWO_UNITS)]);
        let scripts = dir.0.join("scripts");
        let rota = Partitioned::start(two(), |p| {
            let store = SqliteStore::open(dir.0.join(format!("rota-{}.db", p.name()))).unwrap();
            Builder::new(&scripts).keep_events(rota::runtime::KEEP_EVENTS).store(store)
        })
        .unwrap();
        let tokens = vec![rota::http::Token::new(ALL, ["*"]), rota::http::Token::new(SOUTH, ["south"])];
        let (app, _closer) = rota::http::router(std::sync::Arc::new(rota), &rota::http::ApiConfig::with_tokens(tokens));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(rota::http::serve(listener, app, std::future::pending()));
        Api { base, client: crate::common::http_client(), _dir: dir }
    }

    async fn call(
        &self,
        token: &str,
        method: reqwest::Method,
        path: &str,
        body: serde_json::Value,
    ) -> (u16, serde_json::Value) {
        let mut req = self.client.request(method.clone(), format!("{}{path}", self.base)).bearer_auth(token);
        if method != reqwest::Method::GET {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap();
        (res.status().as_u16(), res.json().await.unwrap_or_default())
    }

    async fn get(&self, token: &str, path: &str) -> (u16, serde_json::Value) {
        self.call(token, reqwest::Method::GET, path, serde_json::Value::Null).await
    }

    async fn post(&self, token: &str, path: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
        self.call(token, reqwest::Method::POST, path, body).await
    }
}

fn ids(list: &serde_json::Value, field: &str) -> Vec<String> {
    list[field].as_array().unwrap().iter().map(|v| v["id"].as_str().unwrap().to_string()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_over_partitions_reaches_each_thing_where_it_is() {
    use serde_json::json;
    let api = Api::start().await;
    let mut events = crate::common::follow_events(&api.client, &api.base, ALL, "").await;
    let (status, said) = api.post(SOUTH, "/v1/agents", json!({"id": "alex", "unit": "south"})).await;
    assert_eq!(status, 201, "{said}");
    // Sign-ins by a unit's token, or by the all-units token naming the unit of an id both have.
    assert_eq!(api.post(SOUTH, "/v1/agents/alex/sign_in", json!({})).await.0, 200);
    let (status, said) = api.post(ALL, "/v1/agents/alex/sign_in", json!({})).await;
    assert_eq!(status, 409, "alex is in both units, in two partitions: {said}");
    assert!(
        said["message"].as_str().unwrap().contains("north") && said["message"].as_str().unwrap().contains("south"),
        "{said}"
    );
    assert_eq!(api.post(ALL, "/v1/agents/alex/sign_in?unit=north", json!({})).await.0, 200);
    for agent in ["nora", "sara"] {
        assert_eq!(api.post(ALL, &format!("/v1/agents/{agent}/sign_in"), json!({})).await.0, 200, "{agent}");
        let status = json!({"status": "callcenter"});
        assert_eq!(api.call(ALL, reqwest::Method::PUT, &format!("/v1/agents/{agent}/status"), status).await.0, 200);
    }
    // Conversations arrive in each unit's queue, through the partition holding it.
    for (id, queue) in [("n1", "north_line"), ("s1", "south_line")] {
        let (status, said) = api.post(ALL, "/v1/conversations", json!({"id": id, "queue": queue})).await;
        assert_eq!(status, 201, "{said}");
    }
    assert_eq!(api.post(SOUTH, "/v1/conversations", json!({"id": "x", "queue": "north_line"})).await.0, 404);
    // Lists cover both partitions, page by page without repeats or gaps.
    let (_, agents) = api.get(ALL, "/v1/agents").await;
    // In each partition in the order they came (south's alex by the API, after sara).
    assert_eq!(ids(&agents, "agents"), ["alex", "nora", "sara", "alex"]);
    let mut paged = Vec::new();
    let mut path = "/v1/agents?limit=1".to_string();
    loop {
        let (_, page) = api.get(ALL, &path).await;
        paged.extend(page["agents"].as_array().unwrap().iter().map(|a| format!("{}/{}", a["unit"], a["id"])));
        match page["next_cursor"].as_str() {
            Some(c) => path = format!("/v1/agents?limit=1&cursor={c}"),
            None => break,
        }
    }
    assert_eq!(paged.len(), 4, "{paged:?}");
    assert_eq!(paged.iter().collect::<std::collections::BTreeSet<_>>().len(), 4, "{paged:?}");
    assert_eq!(ids(&api.get(SOUTH, "/v1/agents").await.1, "agents"), ["sara", "alex"]);
    let (_, conversations) = api.get(ALL, "/v1/conversations").await;
    let mut found = ids(&conversations, "conversations");
    found.sort();
    assert_eq!(found, ["n1", "s1"]);
    assert_eq!(ids(&api.get(ALL, "/v1/queues").await.1, "queues"), ["north_line", "south_line"]);
    // An action reaches the conversation's partition; a batch splits across both.
    assert_eq!(api.post(ALL, "/v1/conversations/s1/accept", json!({})).await.0, 200);
    let batch = json!({"inputs": [{"accept": {"conversation": "n1"}}, {"close": {"conversation": "s1"}}, {"close": {"conversation": "nowhere"}}]});
    let (status, results) = api.post(ALL, "/v1/batch", batch).await;
    assert_eq!(status, 200, "{results}");
    let statuses: Vec<u64> =
        results["results"].as_array().unwrap().iter().map(|r| r["status"].as_u64().unwrap()).collect();
    assert_eq!(statuses, [200, 200, 404]);
    // The event stream has both partitions' events.
    let mut seen = std::collections::BTreeSet::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !(seen.contains("n1") && seen.contains("s1")) {
        let (_, data, _) =
            tokio::time::timeout_at(deadline, events.recv()).await.expect("both partitions' events").unwrap();
        for id in ["n1", "s1"] {
            if data.to_string().contains(&format!("\"{id}\"")) {
                seen.insert(id);
            }
        }
    }
    // Metrics add the partitions up.
    let metrics = api.client.get(format!("{}/metrics", api.base)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.lines().any(|l| l == "rota_queue_waiting{queue=\"north_line\",unit=\"north\"} 0"), "{metrics}");
    let inputs: u64 = metrics.lines().find_map(|l| l.strip_prefix("rota_inputs_total ")).unwrap().parse().unwrap();
    assert!(inputs >= 12, "{inputs}");
}

/// An event stream resumed from an event's id picks up in every partition where it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_stream_over_partitions_resumes_where_it_was_in_each() {
    use futures_util::StreamExt;
    use serde_json::json;
    let api = Api::start().await;
    let res = api.client.get(format!("{}/v1/events", api.base)).bearer_auth(ALL).send().await.unwrap();
    let mut body = res.bytes_stream();
    assert_eq!(api.post(ALL, "/v1/agents/sara/sign_in", json!({})).await.0, 200);
    let mut text = String::new();
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    while !text.split("\n\n").any(|e| e.contains("id: ") && text.contains(&format!("{e}\n\n"))) {
        let chunk = tokio::time::timeout_at(deadline, body.next()).await.expect("sara's sign-in").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    let event = text.split("\n\n").find(|e| e.contains("id: ")).unwrap().to_string();
    let id = event.lines().find_map(|l| l.strip_prefix("id: ")).unwrap().to_string();
    let data = event.lines().find_map(|l| l.strip_prefix("data: ")).unwrap().to_string();
    assert_eq!(id.split('~').count(), 2, "{id}: a position in each partition");
    drop(body);
    // Meanwhile, something in each partition.
    assert_eq!(api.post(ALL, "/v1/agents/nora/sign_in", json!({})).await.0, 200);
    assert_eq!(api.post(ALL, "/v1/agents/sara/sign_out", json!({})).await.0, 200);
    let res = api.client.get(format!("{}/v1/events", api.base)).bearer_auth(ALL).header("last-event-id", &id).send();
    let mut body = res.await.unwrap().bytes_stream();
    let mut text = String::new();
    while !(text.contains("\"nora\"") && text.contains("\"sara\"")) {
        let chunk =
            tokio::time::timeout_at(deadline, body.next()).await.expect("what was missed in both").unwrap().unwrap();
        text.push_str(&String::from_utf8_lossy(&chunk));
    }
    assert!(!text.contains("event: reset"), "{text}");
    // The event the id named is not sent again.
    assert!(!text.contains(&data), "{data} again in {text}");
}
