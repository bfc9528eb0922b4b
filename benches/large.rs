//! Queue size sweep: one queue of 10, 100, 1,000 and 10,000 members, half of them signed in
//! in call-center mode and half not (status ready), for each stdlib policy in Lua and the
//! same policy in Rust, in one run. Each cycle a conversation arrives, the agent offered it
//! accepts, and it is closed, so every decision finds free agents. Figures: decision p50 and
//! p99 (the engine's own measurement of each decision), decisions per second of wall time
//! (the whole cycle's work), and the bytes of one decision's trace as the API shows it.
//!
//! With `-- --day`, a large center's day instead: 10,000 agents (8,000 signed in, in
//! call-center mode) in 500 queues of 200 to 2,000 members that overlap, the five policies
//! taking turns, 20,000 conversations arriving in random queues; each is accepted by whoever
//! it is offered to and closed 3,000 arrivals later (about 3,000 agents busy). Figures:
//! events per second, decision p50/p99, and the live heap (Rust and Lua) after loading and
//! at the end.
//!
//! With `-- --serve`, `rota serve` itself: 10,000 agents in 20 queues of 500, all signed
//! in, and 10,000 conversations through `POST /v1/batch` (arrive, accept, close), so the
//! server keeps 10,000 ended ones; its resident memory is read from `/proc`.
//!
//! `cargo bench --bench large` (add `-- --cycles 2000` for more decisions per cell),
//! `cargo bench --bench large -- --day`, `cargo bench --bench large -- --serve`.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::policy::Policy;
use rota::time::Timestamp;
use rota::{Engine, EngineConfig, Input, Update, VirtualClock};

mod common;
#[path = "common/rng.rs"]
mod rng;
#[path = "common/rust_policies.rs"]
mod rust_policies;
use rng::Rng;

/// mimalloc, as the binary, with the live bytes counted for the day's memory figures.
#[global_allocator]
static ALLOC: common::Counting = common::Counting;

const SIZES: [usize; 4] = [10, 100, 1_000, 10_000];
const POLICIES: [&str; 5] =
    ["longest_idle", "round_robin", "fewest_conversations", "least_talk_time", "strictly_in_order"];

/// A scripts folder with one queue of `size` members under `policy`: the first half will be
/// signed in in call-center mode, so the policies that go in queue order find one at once.
fn scripts(size: usize, policy: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rota-bench-large-{size}-{policy}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("rules.lua"),
        format!(
            "local all = {{}}\nfor i = 1, {size} do agents.define {{ id = \"a\" .. i }}; all[i] = \"a\" .. i end\n\
             queues.define {{ id = \"q\", agents = all, policy = \"{policy}\" }}\n"
        ),
    )
    .unwrap();
    dir
}

struct Cell {
    p50_us: f64,
    p99_us: f64,
    per_second: f64,
    trace_bytes: usize,
}

fn run(size: usize, policy: &str, rust: bool, cycles: usize) -> Cell {
    let dir = scripts(size, policy);
    let mut config = EngineConfig::new(&dir);
    config.record_latencies = true;
    config.retain_ended = 100;
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap());
    let policies: Vec<Box<dyn Policy>> = if rust { rust_policies::rust_policies() } else { Vec::new() };
    let mut engine = Engine::new(config, Arc::new(clock), policies).unwrap_or_else(|e| panic!("{e}"));
    for i in 1..=size / 2 {
        engine.handle(Input::SignIn { agent: format!("a{i}") }).unwrap();
        engine.handle(Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() }).unwrap();
    }
    engine.metrics_mut().latencies.clear();
    let decisions = engine.metrics().decisions;
    let mut trace_bytes = 0;
    let began = Instant::now();
    for n in 0..cycles {
        let id = format!("c{n}");
        let new = NewConversation { id: id.clone(), queue: "q".into(), ..Default::default() };
        let updates = engine.handle(Input::Arrive(Box::new(new))).unwrap();
        for u in &updates {
            if let Update::Decided { trace, .. } = &u.update {
                trace_bytes = serde_json::to_vec(&**trace).unwrap().len();
            }
        }
        let offered = updates.iter().any(|u| matches!(u.update, Update::Offered { .. }));
        assert!(offered, "{policy} with {size}: no free agent was offered c{n}");
        engine.handle(Input::Accept { conversation: id.clone(), agent: None }).unwrap();
        engine.handle(Input::Close { conversation: id }).unwrap();
    }
    let seconds = began.elapsed().as_secs_f64();
    let _ = std::fs::remove_dir_all(&dir);
    let m = engine.metrics();
    let mut lat = m.latencies.clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    Cell { p50_us: pct(0.50), p99_us: pct(0.99), per_second: (m.decisions - decisions) as f64 / seconds, trace_bytes }
}

fn day() {
    const AGENTS: usize = 10_000;
    const QUEUES: usize = 500;
    const CONVERSATIONS: usize = 20_000;
    const TALK: usize = 3_000;
    let mut rng = Rng(21);
    let dir = std::env::temp_dir().join(format!("rota-bench-large-day-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let mut rules = format!("for i = 1, {AGENTS} do agents.define {{ id = \"a\" .. i }} end\n");
    let mut memberships = 0;
    for q in 0..QUEUES {
        // A run of consecutive agents from a random start: neighbouring queues overlap.
        let size = 200 + rng.below(1_801) as usize;
        let first = rng.below(AGENTS as u64) as usize;
        memberships += size;
        let policy = POLICIES[q % POLICIES.len()];
        rules.push_str(&format!(
            "do local m = {{}}; for i = 0, {} do m[#m + 1] = \"a\" .. ((({first} + i) % {AGENTS}) + 1) end\n\
             queues.define {{ id = \"q{q}\", agents = m, policy = \"{policy}\" }} end\n",
            size - 1
        ));
    }
    std::fs::write(dir.join("rules.lua"), rules).unwrap();
    let before = common::live_bytes();
    let mut config = EngineConfig::new(&dir);
    config.record_latencies = true;
    let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap());
    let loading = Instant::now();
    let mut engine = Engine::new(config, Arc::new(clock), Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    for i in 1..=AGENTS * 8 / 10 {
        engine.handle(Input::SignIn { agent: format!("a{i}") }).unwrap();
        engine.handle(Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() }).unwrap();
    }
    let loaded = loading.elapsed().as_secs_f64();
    let heap_loaded = common::live_bytes() - before;
    engine.metrics_mut().latencies.clear();
    let (inputs, timers) = (engine.metrics().inputs, engine.metrics().timers_fired);
    let mut talking = std::collections::VecDeque::new();
    let began = Instant::now();
    for n in 0..CONVERSATIONS {
        let now = engine.now();
        engine.advance_to(now + rota::time::Duration(250));
        let id = format!("c{n}");
        let queue = format!("q{}", rng.below(QUEUES as u64));
        let updates =
            engine.handle(Input::Arrive(Box::new(NewConversation { id: id.clone(), queue, ..Default::default() })));
        let offered = updates.unwrap().iter().any(|u| matches!(u.update, Update::Offered { .. }));
        if offered && engine.handle(Input::Accept { conversation: id.clone(), agent: None }).is_ok() {
            talking.push_back(id);
        }
        if talking.len() > TALK {
            let done = talking.pop_front().unwrap();
            engine.handle(Input::Close { conversation: done }).unwrap();
        }
    }
    let seconds = began.elapsed().as_secs_f64();
    let m = engine.metrics();
    let events = m.inputs - inputs + m.timers_fired - timers;
    let mut lat = m.latencies.clone();
    lat.sort_unstable();
    let pct = |p: f64| lat[((lat.len() as f64 * p) as usize).min(lat.len() - 1)] as f64 / 1000.0;
    println!(
        "{AGENTS} agents ({} signed in), {QUEUES} queues, {memberships} memberships; {CONVERSATIONS} conversations",
        AGENTS * 8 / 10
    );
    println!();
    println!("| load s | heap after load MB | events | seconds | events/s | decisions | decision p50 µs | decision p99 µs | heap at the end MB |");
    println!("|---|---|---|---|---|---|---|---|---|");
    println!(
        "| {loaded:.1} | {:.0} | {events} | {seconds:.1} | {:.0} | {} | {:.0} | {:.0} | {:.0} |",
        heap_loaded as f64 / 1e6,
        events as f64 / seconds,
        lat.len(),
        pct(0.5),
        pct(0.99),
        (common::live_bytes() - before) as f64 / 1e6
    );
    let f = engine.footprint();
    println!();
    println!(
        "at the end: {} conversations in memory ({} waiting), {} traces, {} timers, Lua heap {:.0} MB",
        f.conversations,
        (0..QUEUES).map(|q| engine.waiting(&format!("q{q}")).map_or(0, |w| w.len())).sum::<usize>(),
        f.traces,
        f.timers,
        f.lua_bytes as f64 / 1e6
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// `VmRSS` and `VmHWM` (peak) of process `pid`, in MB.
fn rss_mb(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb = |key: &str| -> f64 {
        let line = status.lines().find(|l| l.starts_with(key)).unwrap_or_default();
        line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).unwrap_or(0.0)
    };
    (kb("VmRSS:") / 1024.0, kb("VmHWM:") / 1024.0)
}

fn serve() {
    use std::io::BufRead;
    const AGENTS: usize = 10_000;
    const CONVERSATIONS: usize = 10_000;
    let dir = std::env::temp_dir().join(format!("rota-bench-large-serve-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("rules")).unwrap();
    std::fs::write(
        dir.join("rules/rules.lua"),
        "for q = 0, 19 do local m = {}; for i = 1, 500 do m[i] = \"a\" .. (q * 500 + i); agents.define { id = m[i] } end\n\
         queues.define { id = \"q\" .. q, agents = m, policy = \"round_robin\" } end\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("rota.toml"),
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"bench\"\nunits = [\"*\"]\n\
             [http]\nbody_limit_kib = 4096\n",
            dir.join("rota.db").display().to_string(),
            dir.join("rules").display().to_string()
        ),
    )
    .unwrap();
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--config"])
        .arg(dir.join("rota.toml"))
        .env("RUST_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("rota serve starts");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let base = lines.next().unwrap().unwrap().strip_prefix("rota listening on ").unwrap().to_string();
    std::thread::spawn(move || for _ in lines {});
    let started = rss_mb(child.id());
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let client = rota::outbound::client(std::time::Duration::from_secs(3600), None).unwrap();
    let post = |inputs: Vec<Input>| {
        let body = serde_json::json!({ "inputs": inputs });
        rt.block_on(async {
            let res = client.post(format!("{base}/v1/batch")).bearer_auth("bench").json(&body).send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
            let reply: serde_json::Value = res.json().await.unwrap();
            assert!(reply["results"].as_array().unwrap().iter().all(|r| r["status"] == 200), "{reply}");
        })
    };
    for chunk in (1..=AGENTS).collect::<Vec<_>>().chunks(500) {
        post(
            chunk
                .iter()
                .flat_map(|i| {
                    [
                        Input::SignIn { agent: format!("a{i}") },
                        Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() },
                    ]
                })
                .collect(),
        );
    }
    let signed_in = rss_mb(child.id());
    for chunk in (0..CONVERSATIONS).collect::<Vec<_>>().chunks(333) {
        post(
            chunk
                .iter()
                .flat_map(|n| {
                    let id = format!("c{n}");
                    let new = NewConversation { id: id.clone(), queue: format!("q{}", n % 20), ..Default::default() };
                    [
                        Input::Arrive(Box::new(new)),
                        Input::Accept { conversation: id.clone(), agent: None },
                        Input::Close { conversation: id },
                    ]
                })
                .collect(),
        );
    }
    let ended = rss_mb(child.id());
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);
    println!("rota serve, {AGENTS} agents in 20 queues of 500, {CONVERSATIONS} conversations through /v1/batch");
    println!();
    println!("| moment | RSS MB | peak RSS MB |");
    println!("|---|---|---|");
    for (moment, (rss, peak)) in
        [("started", started), ("all agents signed in", signed_in), ("10,000 conversations ended and kept", ended)]
    {
        println!("| {moment} | {rss:.0} | {peak:.0} |");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.iter().any(|a| a == "--day") {
        return day();
    }
    if args.iter().any(|a| a == "--serve") {
        return serve();
    }
    let cycles: usize = args
        .iter()
        .position(|a| a == "--cycles")
        .and_then(|i| args.get(i + 1))
        .and_then(|c| c.parse().ok())
        .unwrap_or(500);
    println!(
        "one queue, half its members signed in in call-center mode; {cycles} arrive + accept + close cycles per cell"
    );
    println!();
    println!("| policy | members | Lua p50 µs | Lua p99 µs | Lua decisions/s | Rust p50 µs | Rust p99 µs | Rust decisions/s | trace bytes |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for policy in POLICIES {
        for size in SIZES {
            let lua = run(size, policy, false, cycles);
            let rust = run(size, policy, true, cycles);
            println!(
                "| {policy} | {size} | {:.1} | {:.1} | {:.0} | {:.1} | {:.1} | {:.0} | {} |",
                lua.p50_us, lua.p99_us, lua.per_second, rust.p50_us, rust.p99_us, rust.per_second, lua.trace_bytes
            );
        }
    }
}
