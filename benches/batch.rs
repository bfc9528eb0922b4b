//! Volume: the same list of inputs handled in one run by calling `Engine::handle` directly,
//! through `Handle::submit` one at a time and `Handle::submit_many` (each in memory and with
//! the SQLite journal), and over HTTP with `POST /v1/batch` (durable).
//!
//! `cargo bench --bench batch` (add `-- --cycles 20000` for a longer list, `-- --only HTTP`
//! for the ways whose name holds a word, to profile one). With `-- --postgres URL` (a
//! server's `postgres` database, say `postgres://rota@127.0.0.1:5433/postgres`), every durable
//! way also runs with the PostgreSQL store, in a fresh database of that server each time.

#[path = "common/scratch.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::engine::{Engine, EngineConfig};
use rota::http::{router, ApiConfig, Token};
use rota::runtime::Builder;
use rota::store::Store;
use rota::time::Timestamp;
use rota::{Input, Update, VirtualClock};

/// The allocator the `rota` binary uses, so every way runs as it would in `rota serve`.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Inputs per `submit_many` call and per `/v1/batch` request: 333 whole cycles, so two
/// requests in flight hold different conversations.
const BATCH: usize = 999;
const TOKEN: &str = "bench";

fn scratch(name: &str) -> PathBuf {
    shared::scratch(&format!("batch-{name}"))
}

/// 50 agents, one queue, round robin, no wrap-up: a closed conversation frees its agent.
fn scripts() -> PathBuf {
    let dir = scratch("scripts");
    std::fs::write(
        dir.join("rules.lua"),
        "for i = 1, 50 do agents.define { id = \"a\" .. i } end\n\
         local all = {}\nfor i = 1, 50 do all[i] = \"a\" .. i end\n\
         queues.define { id = \"line\", agents = all, policy = \"round_robin\", options = { timeout = \"1h\" } }\n",
    )
    .unwrap();
    dir
}

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap()
}

/// The workload: agents signed in, then per cycle a conversation arrives, whoever it is
/// offered to accepts (the accept names no agent), and it is closed.
fn workload(scripts: &Path, cycles: usize) -> Vec<Input> {
    let mut engine =
        Engine::new(EngineConfig::new(scripts), Arc::new(VirtualClock::starting_at(start())), Vec::new()).unwrap();
    let mut inputs = Vec::new();
    for i in 1..=50 {
        inputs.push(Input::SignIn { agent: format!("a{i}") });
        inputs.push(Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() });
    }
    for input in &inputs {
        engine.handle(input.clone()).unwrap();
    }
    for n in 0..cycles {
        let id = format!("c{n}");
        let arrive =
            Input::Arrive(Box::new(NewConversation { id: id.clone(), queue: "line".into(), ..Default::default() }));
        let updates = engine.handle(arrive.clone()).unwrap();
        assert!(updates.iter().any(|u| matches!(u.update, Update::Offered { .. })), "an agent is free");
        let accept = Input::Accept { conversation: id.clone(), agent: None };
        engine.handle(accept.clone()).unwrap();
        let close = Input::Close { conversation: id };
        engine.handle(close.clone()).unwrap();
        inputs.extend([arrive, accept, close]);
    }
    inputs
}

/// The inputs after the first `setup` into a fresh engine, called directly: seconds.
fn direct(scripts: &Path, inputs: &[Input], setup: usize) -> f64 {
    let mut engine =
        Engine::new(EngineConfig::new(scripts), Arc::new(VirtualClock::starting_at(start())), Vec::new()).unwrap();
    for input in &inputs[..setup] {
        engine.handle(input.clone()).unwrap();
    }
    let began = Instant::now();
    for input in &inputs[setup..] {
        engine.handle(input.clone()).unwrap();
    }
    began.elapsed().as_secs_f64()
}

/// The middle one of an odd number of times.
fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args
        .iter()
        .position(|a| a == "--cycles")
        .and_then(|i| args.get(i + 1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let scripts = scripts();
    let inputs = workload(&scripts, cycles);
    // The 50 sign-ins and statuses, before any clock starts.
    let setup = 100;

    let timed = (inputs.len() - setup) as f64;
    let postgres = args.iter().position(|a| a == "--postgres").and_then(|i| args.get(i + 1)).cloned();
    // A fresh store for one run of a durable way: a SQLite file, or a new PostgreSQL database.
    let runs = std::sync::atomic::AtomicUsize::new(0);
    let store = |name: &str, on_postgres: bool| -> Box<dyn Store> {
        let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (&postgres, on_postgres) {
            (Some(server), true) => {
                let database = format!("rota_bench_{}_{run}", std::process::id());
                let admin = server.clone();
                let create = format!("CREATE DATABASE {database}");
                // The client runs a runtime of its own: off the bench's.
                std::thread::spawn(move || {
                    postgres::Client::connect(&admin, postgres::NoTls).unwrap().batch_execute(&create).unwrap()
                })
                .join()
                .unwrap();
                let url = format!("{}/{database}", &server[..server.rfind('/').unwrap()]);
                Box::new(rota::store::PostgresStore::open(&url).unwrap())
            }
            _ => Box::new(rota::store::SqliteStore::open(scratch(&format!("{name}{run}")).join("rota.db")).unwrap()),
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    let durable = |name: &str, on_postgres: bool| {
        Arc::new(
            Builder::new(&scripts)
                .clock(VirtualClock::starting_at(start()))
                .store(store(name, on_postgres))
                .start()
                .unwrap(),
        )
    };

    let in_memory = || Arc::new(Builder::new(&scripts).clock(VirtualClock::starting_at(start())).start().unwrap());
    let one_by_one = |handle: Arc<rota::runtime::Handle>| {
        rt.block_on(async {
            for input in &inputs[..setup] {
                handle.submit(input.clone()).await.unwrap();
            }
            let began = Instant::now();
            for input in &inputs[setup..] {
                handle.submit(input.clone()).await.unwrap();
            }
            began.elapsed().as_secs_f64()
        })
    };
    // `STREAMS` clients at once, each submitting whole cycles one input at a time and waiting
    // for each reply: the group commit gathers what arrives while a commit is under way.
    const STREAMS: usize = 32;
    let concurrent = |handle: Arc<rota::runtime::Handle>| {
        rt.block_on(async {
            handle.submit_many(inputs[..setup].to_vec()).await.unwrap();
            let cycles = (inputs.len() - setup) / 3;
            let per = cycles.div_ceil(STREAMS) * 3;
            let began = Instant::now();
            let tasks: Vec<_> = inputs[setup..]
                .chunks(per)
                .map(|chunk| {
                    let (handle, chunk) = (handle.clone(), chunk.to_vec());
                    tokio::spawn(async move {
                        for input in chunk {
                            handle.submit(input).await.unwrap();
                        }
                    })
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            began.elapsed().as_secs_f64()
        })
    };
    let many = |handle: Arc<rota::runtime::Handle>| {
        rt.block_on(async {
            handle.submit_many(inputs[..setup].to_vec()).await.unwrap();
            let began = Instant::now();
            for chunk in inputs[setup..].chunks(BATCH) {
                for r in handle.submit_many(chunk.to_vec()).await.unwrap() {
                    r.unwrap();
                }
            }
            began.elapsed().as_secs_f64()
        })
    };
    let only = args.iter().position(|a| a == "--only").and_then(|i| args.get(i + 1)).cloned();
    let wanted = |way: &str| only.as_ref().is_none_or(|w| way.contains(w.as_str()));
    let submit_memory = || one_by_one(in_memory());
    let many_memory = || many(in_memory());
    let submit_durable = || one_by_one(durable("submit", false));
    let many_durable = || many(durable("many", false));
    let submit_postgres = || one_by_one(durable("submit", true));
    let concurrent_durable = || concurrent(durable("streams", false));
    let concurrent_postgres = || concurrent(durable("streams", true));
    let many_postgres = || many(durable("many", true));

    // Over HTTP, with `in_flight` requests at once (the client pipelines).
    let http = |in_flight: usize, on_postgres: bool| {
        rt.block_on(async {
            use futures_util::{StreamExt, TryStreamExt};
            // As `rota serve` runs it: the recent events kept for resuming streams.
            let handle = Arc::new(
                Builder::new(&scripts)
                    .clock(VirtualClock::starting_at(start()))
                    .keep_events(rota::runtime::KEEP_EVENTS)
                    .store(store(&format!("http{in_flight}"), on_postgres))
                    .start()
                    .unwrap(),
            );
            let mut config = ApiConfig::with_tokens(vec![Token::new(TOKEN, ["*"])]);
            config.body_limit = 16 * 1024 * 1024;
            let (app, _closer) = router(handle.clone(), &config);
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let base = format!("http://{}", listener.local_addr().unwrap());
            tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
            let client = rota::outbound::client(std::time::Duration::from_secs(3600), None).unwrap();
            #[derive(serde::Deserialize)]
            struct Status {
                status: u16,
            }
            #[derive(serde::Deserialize)]
            struct Results {
                results: Vec<Status>,
            }
            #[derive(serde::Serialize)]
            struct Batch<'a> {
                inputs: &'a [Input],
            }
            let post = |chunk: &[Input]| {
                let sent =
                    client.post(format!("{base}/v1/batch")).bearer_auth(TOKEN).json(&Batch { inputs: chunk }).send();
                async move {
                    let res = sent.await?;
                    assert!(res.status().is_success());
                    let body: Results = res.json().await?;
                    assert!(body.results.iter().all(|r| r.status == 200));
                    Ok::<_, reqwest::Error>(())
                }
            };
            post(&inputs[..setup]).await.unwrap();
            let began = Instant::now();
            futures_util::stream::iter(inputs[setup..].chunks(BATCH).map(post))
                .buffered(in_flight)
                .try_collect::<Vec<()>>()
                .await
                .unwrap();
            began.elapsed().as_secs_f64()
        })
    };

    println!("{cycles} cycles of arrive + accept + close ({} inputs), 50 agents, one round-robin queue", timed as u64);
    println!(
        "batches of {BATCH} for submit_many and /v1/batch; durable: with the SQLite journal, or PostgreSQL's (group commit)"
    );
    println!("each figure the median of three rounds of every way");
    println!();
    println!("| way | seconds | inputs/s | of direct |");
    println!("|---|---|---|---|");
    let ways: [(&str, &dyn Fn() -> f64); 13] = [
        ("Engine::handle (direct, in memory)", &|| direct(&scripts, &inputs, setup)),
        ("Handle::submit, one at a time (in memory)", &submit_memory),
        ("Handle::submit_many (in memory)", &many_memory),
        ("Handle::submit, one at a time (durable)", &submit_durable),
        ("Handle::submit, 32 clients at once (durable)", &concurrent_durable),
        ("Handle::submit_many (durable)", &many_durable),
        ("HTTP POST /v1/batch (durable), one request at a time", &|| http(1, false)),
        ("HTTP POST /v1/batch (durable), two requests in flight", &|| http(2, false)),
        ("Handle::submit, one at a time (durable, PostgreSQL)", &submit_postgres),
        ("Handle::submit, 32 clients at once (durable, PostgreSQL)", &concurrent_postgres),
        ("Handle::submit_many (durable, PostgreSQL)", &many_postgres),
        ("HTTP POST /v1/batch (durable, PostgreSQL), one request at a time", &|| http(1, true)),
        ("HTTP POST /v1/batch (durable, PostgreSQL), two requests in flight", &|| http(2, true)),
    ];
    // Three rounds of every way, each way's figure the median of its three: this host's
    // speed drifts within a minute, and rounds spread the drift over all ways alike.
    let ways: Vec<_> = ways
        .into_iter()
        .filter(|(way, _)| way.starts_with("Engine") || wanted(way))
        .filter(|(way, _)| postgres.is_some() || !way.contains("PostgreSQL"))
        .collect();
    let mut times = vec![Vec::new(); ways.len()];
    for _ in 0..3 {
        for ((_, run), times) in ways.iter().zip(&mut times) {
            times.push(run());
        }
    }
    let medians: Vec<f64> = times.into_iter().map(median).collect();
    for ((way, _), seconds) in ways.iter().zip(&medians) {
        println!("| {way} | {seconds:.2} | {:.0} | {:.2} |", timed / seconds, medians[0] / seconds);
    }
}
