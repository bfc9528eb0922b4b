//! Start-up against history. A store that has taken N inputs starts from its newest snapshot
//! and the journal after it, so start-up follows the live state, not the history (shown
//! against a full replay of the same journal); and simulated days with the retention windows
//! keep the file's size flat.
//!
//! `cargo bench --bench startup` (histories of 100,000, 1,000,000 and 10,000,000 inputs);
//! `cargo bench --bench startup -- --inputs 100000,1000000`;
//! `cargo bench --bench startup -- --days 30 --rate 2` (retention over simulated days).

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use rota::conversation::NewConversation;
use rota::engine::{Engine, EngineConfig, SNAPSHOT_FORMAT};
use rota::runtime::{Builder, SnapshotPolicy};
use rota::store::{JournalStep, Record, SnapshotSink, SqliteStore, Store, StoreInfo, StoredSnapshot};
use rota::time::{Duration, Timestamp};
use rota::{Clock, Input, Update, VirtualClock};

/// 50 agents in 5 queues: a center whose live state stays the same size however long it runs.
const RULES: &str = r#"
for i = 1, 50 do agents.define { id = "a" .. i } end
local all = {}
for i = 1, 50 do table.insert(all, "a" .. i) end
for q = 1, 5 do
    queues.define { id = "q" .. q, agents = all, policy = "longest_idle", options = { timeout = "30s" } }
end
"#;

/// Drives an engine and journals what it does into a store the way `rota serve` does:
/// accepted inputs and timer batches as records, appended in batches, a snapshot after every
/// `every` records, written through the store's snapshot sink (which prunes behind it).
struct Writer {
    engine: Engine,
    clock: VirtualClock,
    store: SqliteStore,
    sink: Box<dyn SnapshotSink>,
    pending: Vec<Record>,
    since_snapshot: u64,
    every: u64,
    audit: Duration,
    inputs: u64,
    next: u64,
    talking: std::collections::VecDeque<String>,
    /// The longest the engine took to write a snapshot out (what the engine loop pauses for;
    /// the database write happens on another thread in `rota serve`).
    longest_pause: f64,
}

impl Writer {
    fn new(scripts: &Path, db: &Path, start: Timestamp, every: u64, audit: Duration) -> Writer {
        let clock = VirtualClock::starting_at(start);
        let engine = Engine::new(EngineConfig::new(scripts), Arc::new(clock.clone()), Vec::new()).unwrap();
        let store = SqliteStore::open(db).unwrap();
        let sink = store.snapshots().unwrap();
        let first = Record { at: start, step: JournalStep::Scripts { sources: engine.sources().clone() } };
        let mut w = Writer {
            engine,
            clock,
            store,
            sink,
            pending: vec![first],
            since_snapshot: 0,
            every,
            audit,
            inputs: 0,
            next: 0,
            talking: Default::default(),
            longest_pause: 0.0,
        };
        for i in 1..=50 {
            w.input(Input::SignIn { agent: format!("a{i}") });
            w.input(Input::SetStatus { agent: format!("a{i}"), status: "callcenter".into() });
        }
        w
    }

    fn input(&mut self, input: Input) -> Vec<rota::Stamped> {
        let at = self.engine.now();
        match self.engine.handle(input.clone()) {
            Ok(updates) => {
                self.pending.push(Record { at, step: JournalStep::Input { input } });
                self.inputs += 1;
                updates
            }
            Err(_) => Vec::new(),
        }
    }

    /// One conversation's worth of inputs: it arrives, is accepted, and one that came 20
    /// earlier is closed; `gap` of virtual time between inputs.
    fn cycle(&mut self, gap: Duration) {
        self.next += 1;
        let id = format!("c{}", self.next);
        self.tick(gap);
        let new = NewConversation { id: id.clone(), queue: format!("q{}", 1 + self.next % 5), ..Default::default() };
        let updates = self.input(Input::Arrive(Box::new(new)));
        let offered = updates.iter().find_map(|u| match &u.update {
            Update::Offered { agents, .. } => Some(agents[0].to_string()),
            _ => None,
        });
        if let Some(agent) = offered {
            self.tick(gap);
            self.input(Input::Accept { conversation: id.clone(), agent: Some(agent) });
            self.talking.push_back(id);
        }
        if self.talking.len() > 20 {
            let done = self.talking.pop_front().unwrap();
            self.tick(gap);
            self.input(Input::Close { conversation: done });
        }
        if self.pending.len() >= 10_000 {
            self.flush();
        }
    }

    fn tick(&mut self, gap: Duration) {
        let until = self.clock.now() + gap;
        while let Some(_fired) = self.engine.fire_next(until) {
            self.pending.push(Record { at: self.engine.now(), step: JournalStep::Timers });
        }
        self.engine.advance_to(until);
    }

    fn flush(&mut self) {
        self.store.append(&self.pending, &[], &[]).unwrap();
        self.since_snapshot += self.pending.len() as u64;
        self.pending.clear();
        if self.since_snapshot >= self.every {
            self.since_snapshot = 0;
            let position = self.store.position().unwrap();
            let began = Instant::now();
            let bytes = self.engine.snapshot().unwrap().bytes;
            self.longest_pause = self.longest_pause.max(began.elapsed().as_secs_f64());
            let snapshot = StoredSnapshot { position, at: self.engine.now(), format: SNAPSHOT_FORMAT, bytes };
            self.sink.save(&snapshot, 2, self.audit).unwrap();
        }
    }
}

/// Seconds from opening the store to the first answer of the started engine (what `/healthz`
/// waits for).
fn start_up(scripts: &Path, db: &Path, at: Timestamp) -> f64 {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let began = Instant::now();
    let handle = Builder::new(scripts)
        .clock(VirtualClock::starting_at(at))
        .snapshots(SnapshotPolicy::new(u64::MAX, Duration(i64::MAX / 2), 2, Duration(i64::MAX / 2)))
        .store(SqliteStore::open(db).unwrap())
        .start()
        .unwrap();
    rt.block_on(handle.script_status()).unwrap();
    let seconds = began.elapsed().as_secs_f64();
    rt.block_on(handle.close()).unwrap();
    seconds
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("rota-bench-startup-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("scripts")).unwrap();
    std::fs::write(dir.join("scripts/rules.lua"), RULES).unwrap();
    dir
}

fn history(sizes: &[u64]) {
    println!("| inputs | journal records | file MB | snapshot KB | longest snapshot pause | start from snapshot | start by full replay |");
    println!("|---|---|---|---|---|---|---|");
    for &n in sizes {
        let dir = scratch(&format!("history-{n}"));
        let (scripts, db) = (dir.join("scripts"), dir.join("rota.db"));
        let start = Timestamp::parse_rfc3339("2026-03-02T08:00:00Z").unwrap();
        let began = Instant::now();
        // No audit pruning here: the whole journal stays, for the full replay to compare with.
        let mut w = Writer::new(&scripts, &db, start, 100_000, Duration(i64::MAX / 2));
        while w.inputs < n {
            w.cycle(Duration(50));
        }
        w.flush();
        // The last snapshot taken is at most 100,000 records behind; take one at the end, as
        // a server that ran this long would have one a few minutes old.
        w.since_snapshot = u64::MAX / 2;
        w.flush();
        let end = w.engine.now();
        let pause_ms = w.longest_pause * 1e3;
        let wrote = began.elapsed().as_secs_f64();
        drop(w);
        let info = StoreInfo::read(&db).unwrap();
        let snapshot_kb = info.latest_snapshot.map_or(0, |(_, _, b)| b) as f64 / 1e3;
        let from_snapshot = start_up(&scripts, &db, end);
        let full = if n <= 1_000_000 {
            rusqlite::Connection::open(&db).unwrap().execute("DELETE FROM snapshots", []).unwrap();
            format!("{:.2} s", start_up(&scripts, &db, end))
        } else {
            "(not run)".into()
        };
        println!(
            "| {n} | {} | {:.0} | {snapshot_kb:.0} | {pause_ms:.0} ms | {from_snapshot:.2} s | {full} |",
            info.journal_records,
            mb(info.file_bytes)
        );
        eprintln!("  ({n} inputs written in {wrote:.0} s)");
        let _ = std::fs::remove_dir_all(dir);
    }
}

fn days(days: u64, rate: f64) {
    println!("{rate} inputs/s for {days} simulated days; snapshots every 100,000 records; 7-day audit window");
    println!();
    println!("| day | inputs | journal records | file MB | start-up |");
    println!("|---|---|---|---|---|");
    let dir = scratch("days");
    let (scripts, db) = (dir.join("scripts"), dir.join("rota.db"));
    let start = Timestamp::parse_rfc3339("2026-03-02T00:00:00Z").unwrap();
    let gap = Duration((1000.0 / rate) as i64);
    let mut w = Writer::new(&scripts, &db, start, 100_000, Duration::from_secs(7 * 86_400));
    for day in 1..=days {
        let until = start + Duration::from_secs(day as i64 * 86_400);
        while w.engine.now() < until {
            w.cycle(gap);
        }
        if day % 5 == 0 || day == 1 || day == days {
            w.flush();
            let info = StoreInfo::read(&db).unwrap();
            // The writer keeps the store; a start is measured on a copy of it.
            let copy = dir.join(format!("day-{day}.db"));
            let conn = rusqlite::Connection::open(&db).unwrap();
            conn.execute("VACUUM INTO ?1", [copy.to_str().unwrap()]).unwrap();
            drop(conn);
            let took = start_up(&scripts, &copy, w.engine.now());
            let _ = std::fs::remove_file(&copy);
            println!("| {day} | {} | {} | {:.0} | {took:.2} s |", w.inputs, info.journal_records, mb(info.file_bytes));
        }
    }
    let _ = std::fs::remove_dir_all(dir);
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str| args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).cloned();
    if let Some(d) = arg("--days") {
        let rate = arg("--rate").and_then(|r| r.parse().ok()).unwrap_or(2.0);
        days(d.parse().unwrap(), rate);
        return;
    }
    let sizes: Vec<u64> = arg("--inputs")
        .map(|s| s.split(',').map(|n| n.trim().parse().unwrap()).collect())
        .unwrap_or_else(|| vec![100_000, 1_000_000, 10_000_000]);
    history(&sizes);
}
