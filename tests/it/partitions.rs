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
