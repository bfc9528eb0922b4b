//! Queue size sweep: one queue of 10, 100, 1,000 and 10,000 members, half of them signed in
//! in call-center mode and half not (status ready), for each stdlib policy in Lua and the
//! same policy in Rust, in one run. Each cycle a conversation arrives, the agent offered it
//! accepts, and it is closed, so every decision finds free agents. Figures: decision p50 and
//! p99 (the engine's own measurement of each decision), decisions per second of wall time
//! (the whole cycle's work), and the bytes of one decision's trace as the API shows it.
//!
//! `cargo bench --bench large` (add `-- --cycles 2000` for more decisions per cell).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::policy::Policy;
use rota::time::Timestamp;
use rota::{Engine, EngineConfig, Input, Update, VirtualClock};

#[path = "rust_policies.rs"]
mod rust_policies;

/// The allocator the `rota` binary uses.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

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

fn main() {
    let args: Vec<String> = std::env::args().collect();
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
