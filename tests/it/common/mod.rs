//! Helpers shared by the integration tests: engines on a virtual clock, scratch script folders.

#![allow(dead_code)]

pub mod browser;
pub mod postgres;
pub mod smtp;
pub mod walkthrough;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use rota::conversation::NewConversation;
use rota::time::Timestamp;
use rota::{Engine, EngineConfig, Input, Stamped, VirtualClock};

pub fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

/// Writes, at `path`, the store the rota before store formats were numbered left behind
/// (`tests/fixtures/store/format-0.sql`, its SQL dump: no database file is kept in git).
pub fn format0_store(path: &Path) {
    older_store(0, path);
}

/// Writes, at `path`, a store of an older `format` as the rota of that format left it
/// (`tests/fixtures/store/format-N.sql`: 0 before formats were numbered, 1 before snapshots).
pub fn older_store(format: u32, path: &Path) {
    let sql = std::fs::read_to_string(fixture(&format!("store/format-{format}.sql"))).unwrap();
    rusqlite::Connection::open(path).unwrap().execute_batch(&sql).unwrap();
}

pub fn start() -> Timestamp {
    Timestamp::parse_rfc3339("2026-05-04T10:00:00Z").unwrap()
}

/// An engine on `scripts` at a fixed virtual time.
pub fn engine(scripts: &Path) -> (Engine, VirtualClock) {
    engine_with(EngineConfig::new(scripts))
}

pub fn engine_with(config: EngineConfig) -> (Engine, VirtualClock) {
    let clock = VirtualClock::starting_at(start());
    let engine = Engine::new(config, Arc::new(clock.clone()), Vec::new()).unwrap_or_else(|e| panic!("{e}"));
    (engine, clock)
}

/// Signs agents in, in call-center mode.
pub fn ready(engine: &mut Engine, agents: &[&str]) {
    for a in agents {
        engine.handle(Input::SignIn { agent: a.to_string() }).unwrap();
        engine.handle(Input::SetStatus { agent: a.to_string(), status: "callcenter".into() }).unwrap();
        engine.handle(Input::StartWorkDay { agent: a.to_string() }).unwrap();
    }
}

pub fn arrive(id: &str, queue: &str) -> Input {
    Input::Arrive(Box::new(NewConversation { id: id.into(), queue: queue.into(), ..Default::default() }))
}

pub fn lines(updates: &[Stamped]) -> Vec<String> {
    updates.iter().map(|u| u.update.describe()).collect()
}

/// A scratch folder holding the given files, removed when dropped.
pub struct Scratch(pub PathBuf);

impl Scratch {
    pub fn new(files: &[(&str, &str)]) -> Scratch {
        static NEXT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("rota-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let scratch = Scratch(dir);
        scratch.write(files);
        scratch
    }

    pub fn write(&self, files: &[(&str, &str)]) {
        for (name, text) in files {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub struct Server {
    pub child: Child,
    pub base: String,
}

/// Starts `rota serve` (the binary under test) and waits for the line that says where it listens.
pub fn spawn(config: &std::path::Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--config"])
        .arg(config)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("rota serve starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = lines.next().expect("a first line").unwrap();
    let base = first.strip_prefix("rota listening on ").unwrap_or_else(|| panic!("unexpected: {first}")).to_string();
    // Keep draining stdout so the child never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// Serves `app` on a free port of 127.0.0.1 until the test ends; its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(rota::http::serve(listener, app, std::future::pending()));
    base
}

/// A reqwest client for talking to the server under test (`Client::new()` would panic: rota
/// builds reqwest without a process-wide TLS provider; see `rota::outbound`).
pub fn http_client() -> reqwest::Client {
    rota::outbound::client(std::time::Duration::from_secs(3600), None).unwrap()
}

/// Follows `/v1/events{query}` on a server: each event as (type, data, when it was read).
pub async fn follow_events(
    client: &reqwest::Client,
    base: &str,
    token: &str,
    query: &str,
) -> tokio::sync::mpsc::UnboundedReceiver<(String, serde_json::Value, std::time::Instant)> {
    use futures_util::StreamExt;
    let res = client.get(format!("{base}/v1/events{query}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 200, "the event stream opens");
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut body = res.bytes_stream();
        let mut text = String::new();
        while let Some(Ok(chunk)) = body.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(end) = text.find("\n\n") {
                let event: String = text.drain(..end + 2).collect();
                let kind = event.lines().find_map(|l| l.strip_prefix("event: "));
                let data = event.lines().find_map(|l| l.strip_prefix("data: "));
                if let (Some(kind), Some(data)) = (kind, data) {
                    let value = serde_json::from_str(data).unwrap_or(serde_json::Value::Null);
                    if tx.send((kind.to_string(), value, std::time::Instant::now())).is_err() {
                        return;
                    }
                }
            }
        }
    });
    rx
}
