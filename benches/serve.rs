//! The `rota serve` targets: durable events/s with group commit, HTTP create+accept+close
//! against a bare axum handler in the same run, reload time for 50 script files, and memory
//! with 1,000,000 pending timers.
//!
//! `cargo bench --bench serve` runs all four; name some to run only those:
//! `cargo bench --bench serve -- durable http reload timers`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use rota::conversation::NewConversation;
use rota::engine::{Engine, EngineConfig};
use rota::http::{router, ApiConfig, Token};
use rota::runtime::{Builder, Handle};
use rota::store::SqliteStore;
use rota::time::Timestamp;
use rota::timer::{TimerKind, Timers};
use rota::{Input, Stamped, Update, VirtualClock};
use serde_json::{json, Value};

mod common;
#[path = "common/scratch.rs"]
mod shared;
use shared::scratch;

#[global_allocator]
static ALLOC: common::Counting = common::Counting;

fn live_mb() -> f64 {
    common::live_bytes() as f64 / 1e6
}

/// Agents in the durable and HTTP runs: more than the clients, so an arrival always finds one free.
const AGENTS: usize = 400;
/// Concurrent senders (API clients, or tasks on the Rust handle).
const CLIENTS: usize = 128;
const RUN: StdDuration = StdDuration::from_secs(8);

fn main() {
    let args: Vec<String> = std::env::args().skip(1).filter(|a| !a.starts_with('-')).collect();
    let wanted = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    println!("machine: {} cores", std::thread::available_parallelism().map_or(0, |n| n.get()));
    if wanted("durable") {
        rt.block_on(durable());
    }
    if wanted("http") {
        rt.block_on(http());
    }
    if wanted("reload") {
        reload();
    }
    if wanted("timers") {
        timers();
    }
}

/// One queue served round-robin by [`AGENTS`] agents with no wrap-up, so a closed
/// conversation frees its agent at once.
fn line_scripts() -> PathBuf {
    let dir = scratch("line");
    let rules = format!(
        "for i = 1, {AGENTS} do agents.define {{ id = \"a\" .. i }} end\n\
         local all = {{}}\nfor i = 1, {AGENTS} do all[i] = \"a\" .. i end\n\
         queues.define {{ id = \"line\", agents = all, policy = \"round_robin\", options = {{ timeout = \"1h\" }} }}\n"
    );
    std::fs::write(dir.join("line.lua"), rules).unwrap();
    dir
}

/// Starts the engine on [`line_scripts`] with a fresh SQLite journal and every agent ready.
async fn durable_engine(name: &str) -> (Arc<Handle>, PathBuf) {
    let db = scratch(name).join("rota.db");
    let handle = Builder::new(line_scripts()).store(SqliteStore::open(&db).unwrap()).start().unwrap();
    for i in 1..=AGENTS {
        let agent = format!("a{i}");
        handle.submit(Input::SignIn { agent: agent.clone() }).await.unwrap();
        handle.submit(Input::SetStatus { agent, status: "callcenter".into() }).await.unwrap();
    }
    (Arc::new(handle), db)
}

fn offered_to(updates: &[Stamped]) -> Option<String> {
    updates.iter().find_map(|u| match &u.update {
        Update::Offered { agents, .. } => agents.first().map(|a| a.to_string()),
        _ => None,
    })
}

/// Arrive, accept, close from [`CLIENTS`] tasks on the Rust handle, every input durable.
async fn durable() {
    let (handle, db) = durable_engine("durable").await;
    let inputs = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + RUN;
    let started = Instant::now();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (handle, inputs) = (handle.clone(), inputs.clone());
            tokio::spawn(async move {
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let id = format!("c{client}-{n}");
                    let new = NewConversation { id: id.clone(), queue: "line".into(), ..Default::default() };
                    let updates = handle.submit(Input::Arrive(Box::new(new))).await.unwrap();
                    let agent = offered_to(&updates).expect("a free agent");
                    handle.submit(Input::Accept { conversation: id.clone(), agent: Some(agent) }).await.unwrap();
                    handle.submit(Input::Close { conversation: id }).await.unwrap();
                    inputs.fetch_add(3, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let secs = started.elapsed().as_secs_f64();
    let n = inputs.load(Ordering::Relaxed);
    let size = std::fs::metadata(db.with_extension("db-wal")).map_or(0, |m| m.len())
        + std::fs::metadata(&db).map_or(0, |m| m.len());
    println!(
        "durable: {n} inputs (arrive+accept+close) from {CLIENTS} tasks in {secs:.1} s = {:.0} durable inputs/s; journal {:.1} MB",
        n as f64 / secs,
        size as f64 / 1e6
    );
}

/// The same three requests against rota's router and against a bare axum handler that only
/// parses the body and answers JSON, on the same machine, in the same run, with the same client.
async fn http() {
    let (handle, _db) = durable_engine("http").await;
    let config = ApiConfig::with_tokens([Token::new("t", ["*"])]);
    let (app, _closer) = router(handle, &config);
    let rota_base = listen(app).await;

    let bare = Router::new()
        .route(
            "/v1/conversations",
            post(|Json(c): Json<NewConversation>| async move {
                Json(json!({ "id": c.id, "updates": [{ "type": "offered", "agents": ["a1"] }] }))
            }),
        )
        .route(
            "/v1/conversations/{id}/accept",
            post(|Json(b): Json<Value>| async move { Json(json!({ "updates": [b] })) }),
        )
        .route(
            "/v1/conversations/{id}/close",
            post(|Json(_): Json<Value>| async move { Json(json!({ "updates": [] })) }),
        );
    let bare_base = listen(bare).await;

    // Warm both up, then measure them one after the other with the same load.
    load(&bare_base, "warm-bare", StdDuration::from_secs(1)).await;
    load(&rota_base, "warm-rota", StdDuration::from_secs(1)).await;
    let bare = load(&bare_base, "bare", RUN).await;
    let rota = load(&rota_base, "rota", RUN).await;
    println!(
        "http: create+accept+close cycles over {CLIENTS} keep-alive connections, client in the same process: \
         bare axum handler {:.0}/s ({:.0} µs CPU per cycle), rota with its durable engine {:.0}/s ({:.0} µs CPU per cycle) \
         = {:.2} of bare",
        bare.0,
        bare.1,
        rota.0,
        rota.1,
        rota.0 / bare.0
    );
}

async fn listen(app: Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    base
}

/// CPU seconds this process has used (user and system), from `/proc/self/stat`.
fn cpu_secs() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<f64> = after_name.split_whitespace().map(|f| f.parse().unwrap_or(0.0)).collect();
    // utime and stime are fields 14 and 15 of the line, in clock ticks (100 per second on Linux).
    (fields.get(11).unwrap_or(&0.0) + fields.get(12).unwrap_or(&0.0)) / 100.0
}

/// Create, accept (by the agent offered) and close, from [`CLIENTS`] clients: cycles per second,
/// and CPU microseconds per cycle (client, server and engine together).
async fn load(base: &str, tag: &str, run: StdDuration) -> (f64, f64) {
    let cycles = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + run;
    let started = Instant::now();
    let cpu = cpu_secs();
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (base, tag, cycles) = (base.to_string(), tag.to_string(), cycles.clone());
            tokio::spawn(async move {
                let http = rota::outbound::client(StdDuration::from_secs(3600), None).unwrap();
                let post =
                    |path: String, body: Value| http.post(format!("{base}{path}")).bearer_auth("t").json(&body).send();
                let mut n = 0;
                while Instant::now() < deadline {
                    n += 1;
                    let id = format!("{tag}-{client}-{n}");
                    let res = post("/v1/conversations".into(), json!({ "id": id, "queue": "line" })).await.unwrap();
                    assert!(res.status().is_success(), "create: {}", res.status());
                    let created: Value = res.json().await.unwrap();
                    let agent = created["updates"]
                        .as_array()
                        .and_then(|u| u.iter().find(|u| u["type"] == "offered"))
                        .map(|u| u["agents"][0].clone())
                        .expect("an offer");
                    let res = post(format!("/v1/conversations/{id}/accept"), json!({ "agent": agent })).await.unwrap();
                    assert!(res.status().is_success(), "accept: {}", res.status());
                    let res = post(format!("/v1/conversations/{id}/close"), json!({})).await.unwrap();
                    assert!(res.status().is_success(), "close: {}", res.status());
                    cycles.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.unwrap();
    }
    let n = cycles.load(Ordering::Relaxed) as f64;
    (n / started.elapsed().as_secs_f64(), (cpu_secs() - cpu) * 1e6 / n)
}

/// 50 files: 10 of agents (20 each), 10 of teams and presences, 20 of queues, 10 of Lua
/// policies; each reload changes one file, so nothing is skipped as identical.
fn reload() {
    let dir = scratch("reload");
    write_fifty(&dir);
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-05-04T10:00:00Z").unwrap());
    let mut engine = Engine::new(EngineConfig::new(&dir), Arc::new(clock), Vec::new()).unwrap();
    let files = engine.script_status().files.len();
    let mut times = Vec::new();
    for round in 0..60 {
        std::fs::write(dir.join("teams_00.lua"), format!("-- round {round}\n{}", team_file(0))).unwrap();
        let t = Instant::now();
        engine.reload().unwrap();
        times.push(t.elapsed().as_secs_f64() * 1e3);
    }
    times.drain(..10);
    times.sort_by(f64::total_cmp);
    let pick = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "reload: {files} script files, 200 agents, 20 queues, 10 Lua policies: median {:.2} ms, p90 {:.2} ms, max {:.2} ms ({} reloads)",
        pick(0.5),
        pick(0.9),
        pick(1.0),
        times.len()
    );
}

fn team_file(i: usize) -> String {
    format!(
        "teams.define {{ id = \"team{i}\", wrap_up = \"30s\", no_answer_delay = \"10s\", max_no_answer = 3 }}\n\
         presence.define {{ id = \"custom{i}\", text = \"Custom {i}\", base = \"away\" }}\n"
    )
}

fn write_fifty(dir: &Path) {
    for f in 0..10 {
        let agents: String = (0..20)
            .map(|k| {
                let n = f * 20 + k;
                format!("agents.define {{ id = \"ag{n}\", team = \"team{f}\", email = \"ag{n}@example.com\", skills = {{ en = {k} }} }}\n")
            })
            .collect();
        std::fs::write(dir.join(format!("agents_{f:02}.lua")), agents).unwrap();
        std::fs::write(dir.join(format!("teams_{f:02}.lua")), team_file(f)).unwrap();
        let policy = format!(
            "policies.register(\"mine{f}\", {{ options = {{ timeout = \"duration\" }}, decide = function(ctx)\n\
             \x20   local best\n\
             \x20   for _, a in ipairs(ctx.candidates) do\n\
             \x20       if a.blocked == nil and (best == nil or a.idle_since < best.idle_since) then best = a end\n\
             \x20   end\n\
             \x20   if best then return policies.offer(best, ctx.options.timeout) end\n\
             \x20   return policies.wait()\n\
             end }})\n"
        );
        std::fs::write(dir.join(format!("policy_{f:02}.lua")), policy).unwrap();
    }
    for q in 0..20 {
        let members: Vec<String> = (0..10).map(|k| format!("\"ag{}\"", (q * 10 + k) % 200)).collect();
        let queue = format!(
            "queues.define {{ id = \"q{q}\", agents = {{ {} }}, policy = \"mine{}\", options = {{ timeout = \"20s\" }}, max_wait = \"5m\" }}\n",
            members.join(", "),
            q % 10
        );
        std::fs::write(dir.join(format!("queues_{q:02}.lua")), queue).unwrap();
    }
}

/// The timer index with 1,000,000 pending timers of the kinds a busy engine holds (max-wait
/// and retry timers naming their conversation, offer timeouts, wrap-up ends), conversation ids
/// included; then the whole engine with 100,000 waiting conversations, each with its timer.
fn timers() {
    let before = live_mb();
    let mut timers = Timers::default();
    let base = Timestamp::parse_rfc3339("2026-05-04T10:00:00Z").unwrap();
    for i in 0..1_000_000u64 {
        let due = base + rota::time::Duration::from_secs((i % 86_400) as i64);
        let kind = match i % 4 {
            0 => TimerKind::MaxWait { conversation: Arc::from(format!("conversation-{i:07}").as_str()) },
            1 => TimerKind::Retry { conversation: Arc::from(format!("conversation-{i:07}").as_str()) },
            2 => TimerKind::OfferTimeout { offer: i },
            _ => TimerKind::WrapUpEnd { agent: (i % 10_000) as u32 },
        };
        timers.schedule(due, kind);
    }
    println!(
        "timers: {} pending timers hold {:.1} MB of heap (index and conversation ids)",
        timers.len(),
        live_mb() - before
    );
    drop(timers);

    let dir = scratch("waiting");
    std::fs::write(
        dir.join("q.lua"),
        "agents.define { id = \"a\" }\nqueues.define { id = \"q\", agents = { \"a\" }, policy = \"longest_idle\", max_wait = \"1d\" }\n",
    )
    .unwrap();
    let clock = VirtualClock::starting_at(base);
    let mut engine = Engine::new(EngineConfig::new(&dir), Arc::new(clock), Vec::new()).unwrap();
    let before = live_mb();
    const WAITING: usize = 100_000;
    for i in 0..WAITING {
        let new = NewConversation { id: format!("c{i:07}"), queue: "q".into(), ..Default::default() };
        engine.handle(Input::Arrive(Box::new(new))).unwrap();
    }
    let grown = live_mb() - before;
    println!(
        "timers: the engine with {} waiting conversations and {} pending max-wait timers grew by {grown:.1} MB \
         ({:.0} bytes per waiting conversation, Lua view included)",
        WAITING,
        engine.pending_timers(),
        grown * 1e6 / WAITING as f64
    );
}
