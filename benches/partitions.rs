//! Partitions: the same inputs for two organization units handled by one engine (one
//! partition) and by two engines on their own threads (`Partitioned`, a unit each), durable,
//! in one run.
//!
//! `cargo bench --bench partitions` (add `-- --cycles 20000` for a longer list). With
//! `-- --postgres URL` (a server's `postgres` database) both also run on PostgreSQL, in a
//! fresh database of that server each time (the two partitions in schemas of their own).

#[path = "common/scratch.rs"]
mod shared;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::partition::{Partition, Partitioning};
use rota::runtime::{Builder, Handle, Partitioned};
use rota::store::Store;
use rota::time::Timestamp;
use rota::{Input, VirtualClock};

/// The allocator the `rota` binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

const UNITS: [&str; 2] = ["north", "south"];
/// Clients at once per unit, each submitting whole cycles one input at a time.
const CLIENTS: usize = 16;
/// Inputs per `submit_many` call.
const BATCH: usize = 999;

fn scratch(name: &str) -> PathBuf {
    shared::scratch(&format!("partitions-{name}"))
}

/// Per unit: 50 agents, one round-robin queue, no wrap-up.
fn scripts() -> PathBuf {
    let dir = scratch("scripts");
    let mut rules = String::new();
    for unit in UNITS {
        rules.push_str(&format!(
            "local {unit} = {{}}\nfor i = 1, 50 do agents.define {{ id = \"{unit}\" .. i, unit = \"{unit}\" }}; {unit}[i] = \"{unit}\" .. i end\n\
             queues.define {{ id = \"{unit}_line\", unit = \"{unit}\", agents = {unit}, policy = \"round_robin\", options = {{ timeout = \"1h\" }} }}\n"
        ));
    }
    std::fs::write(dir.join("rules.lua"), rules).unwrap();
    dir
}

/// One unit's inputs: its agents signed in and ready (the setup), then cycles of a
/// conversation arriving, accepted by whoever it is offered to, and closed.
type Workload = (Vec<Input>, Vec<[Input; 3]>);

fn workload(unit: &str, cycles: usize) -> Workload {
    let mut setup = Vec::new();
    for i in 1..=50 {
        setup.push(Input::SignIn { agent: format!("{unit}{i}") });
        setup.push(Input::SetStatus { agent: format!("{unit}{i}"), status: "callcenter".into() });
    }
    let cycles = (0..cycles)
        .map(|n| {
            let id = format!("{unit}-c{n}");
            let queue = format!("{unit}_line");
            [
                Input::Arrive(Box::new(NewConversation { id: id.clone(), queue, ..Default::default() })),
                Input::Accept { conversation: id.clone(), agent: None },
                Input::Close { conversation: id },
            ]
        })
        .collect();
    (setup, cycles)
}

fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap()
}

fn median(mut times: Vec<f64>) -> f64 {
    times.sort_by(f64::total_cmp);
    times[times.len() / 2]
}

/// How a run reaches the engine of a unit.
type Route = Arc<dyn Fn(&str) -> Arc<Handle> + Send + Sync>;

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cycles: usize = args
        .iter()
        .position(|a| a == "--cycles")
        .and_then(|i| args.get(i + 1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(10_000);
    let postgres = args.iter().position(|a| a == "--postgres").and_then(|i| args.get(i + 1)).cloned();
    let scripts = scripts();
    let work: Vec<(&str, Workload)> = UNITS.iter().map(|u| (*u, workload(u, cycles))).collect();
    let timed = (UNITS.len() * cycles * 3) as f64;
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();

    let runs = std::sync::atomic::AtomicUsize::new(0);
    // A fresh place for one run's stores: a folder of SQLite files, or a new PostgreSQL database.
    let place = |on_postgres: bool| -> String {
        let run = runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        match (&postgres, on_postgres) {
            (Some(server), true) => {
                let database = format!("rota_bench_p_{}_{run}", std::process::id());
                let (admin, create) = (server.clone(), format!("CREATE DATABASE {database}"));
                std::thread::spawn(move || {
                    postgres::Client::connect(&admin, postgres::NoTls).unwrap().batch_execute(&create).unwrap()
                })
                .join()
                .unwrap();
                format!("{}/{database}", &server[..server.rfind('/').unwrap()])
            }
            _ => scratch(&format!("run{run}")).display().to_string(),
        }
    };
    let store = |place: &str, p: &Partition| -> Box<dyn Store> {
        match rota::store::is_postgres(place) {
            true => {
                let lease = rota::store::Lease::default();
                Box::new(rota::store::PostgresStore::open_partition(place, &lease, p).unwrap())
            }
            false => {
                Box::new(rota::store::SqliteStore::open(Path::new(place).join(format!("{}.db", p.name()))).unwrap())
            }
        }
    };
    let builder = |place: &str, p: &Partition| {
        Builder::new(&scripts).clock(VirtualClock::starting_at(start())).store(store(place, p))
    };
    // Each way's engines behind a route from unit to engine (dropped after the run: they stop).
    let one = |on_postgres: bool| -> Route {
        let place = place(on_postgres);
        let handle = Arc::new(builder(&place, &Partition::default()).start().unwrap());
        Arc::new(move |_: &str| handle.clone())
    };
    let two = |on_postgres: bool| -> Route {
        let place = place(on_postgres);
        let map = UNITS.iter().enumerate().map(|(i, u)| (u.to_string(), i as u32)).collect();
        let partitioning = Partitioning::new(2, map).unwrap();
        let rota = Partitioned::start(partitioning, |p| builder(&place, p)).unwrap();
        Arc::new(move |unit: &str| rota.unit(unit).clone())
    };
    // Each unit's agents signed in and ready, before any clock starts.
    let set_up = |route: &Route| {
        let work = &work;
        let route = route.clone();
        async move {
            for (unit, (setup, _)) in work {
                route(unit).submit_many(setup.clone()).await.unwrap();
            }
        }
    };
    // CLIENTS per unit at once, one input at a time each: the group commit gathers them.
    let clients = |route: Route| {
        rt.block_on(async {
            set_up(&route).await;
            let began = Instant::now();
            let mut tasks = Vec::new();
            for (unit, (_, cycles)) in &work {
                for share in cycles.chunks(cycles.len().div_ceil(CLIENTS)) {
                    let (handle, share) = (route(unit), share.to_vec());
                    tasks.push(tokio::spawn(async move {
                        for cycle in share {
                            for input in cycle {
                                handle.submit(input).await.unwrap();
                            }
                        }
                    }));
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
            began.elapsed().as_secs_f64()
        })
    };
    // One client per unit, batches of BATCH inputs.
    let batches = |route: Route| {
        rt.block_on(async {
            set_up(&route).await;
            let began = Instant::now();
            let mut tasks = Vec::new();
            for (unit, (_, cycles)) in &work {
                let (handle, inputs) = (route(unit), cycles.iter().flatten().cloned().collect::<Vec<_>>());
                tasks.push(tokio::spawn(async move {
                    for chunk in inputs.chunks(BATCH) {
                        for r in handle.submit_many(chunk.to_vec()).await.unwrap() {
                            r.unwrap();
                        }
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
            began.elapsed().as_secs_f64()
        })
    };

    println!(
        "{cycles} cycles of arrive + accept + close in each of two units ({} inputs), 50 agents and one round-robin queue per unit",
        timed as u64
    );
    println!("durable (the SQLite journal: one file per partition; or PostgreSQL: a schema per partition); each figure the median of three rounds");
    println!();
    println!("| way | store | partitions | seconds | inputs/s |");
    println!("|---|---|---|---|---|");
    type Way<'a> = (&'a str, &'a str, u32, Box<dyn Fn() -> f64 + 'a>);
    let mut ways: Vec<Way> = Vec::new();
    for on_postgres in [false, true].into_iter().filter(|&p| !p || postgres.is_some()) {
        let store = if on_postgres { "PostgreSQL" } else { "SQLite" };
        let (one, two) = (&one, &two);
        let (clients, batches) = (&clients, &batches);
        ways.push(("Handle::submit, 16 clients per unit", store, 1, Box::new(move || clients(one(on_postgres)))));
        ways.push(("Handle::submit, 16 clients per unit", store, 2, Box::new(move || clients(two(on_postgres)))));
        ways.push(("Handle::submit_many, one client per unit", store, 1, Box::new(move || batches(one(on_postgres)))));
        ways.push(("Handle::submit_many, one client per unit", store, 2, Box::new(move || batches(two(on_postgres)))));
    }
    let mut times = vec![Vec::new(); ways.len()];
    for _ in 0..3 {
        for ((_, _, _, run), times) in ways.iter().zip(&mut times) {
            times.push(run());
        }
    }
    for ((way, store, partitions, _), times) in ways.iter().zip(times) {
        let t = median(times);
        println!("| {way} | {store} | {partitions} | {t:.3} | {:.0} |", timed / t);
    }
}
