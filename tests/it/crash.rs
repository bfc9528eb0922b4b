//! A child `rota serve` under a stream of inputs is killed with SIGKILL at random moments and
//! restarted, 20 times: every acknowledged input must be there afterwards, pending timers keep
//! their original due times, every timer fires once (as the event stream sees it), never early,
//! and the webhook message of every acknowledged conversation reaches its receiver. A snapshot
//! is taken every three steps and the journal behind the snapshots is forgotten at once (no
//! audit window), so kills also land while a snapshot is written and the journal pruned, and
//! starts begin from the newest snapshot that made it.

use crate::common;

use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{fixture, spawn, Scratch};
use reqwest::{Client, StatusCode};
use rota::time::Timestamp;
use serde_json::{json, Value};

const TOKEN: &str = "crash-test";
const CYCLES: usize = 20;
const MAX_WAIT_MS: i64 = 3000; // north_line's max_wait
const OFFER_TIMEOUT_MS: i64 = 1000; // its round_robin timeout

fn at(v: &Value) -> Timestamp {
    Timestamp::parse_rfc3339(v.as_str().unwrap_or_else(|| panic!("a time: {v}"))).unwrap()
}

/// A small deterministic generator, so a failing run can be repeated.
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

/// Follows the server's event stream until it ends, noting each conversation whose max-wait
/// timer fired (a `max_wait_exceeded` event) and when.
async fn watch_timers(
    client: &Client,
    base: &str,
    fired: Arc<Mutex<Vec<(String, Timestamp)>>>,
    count: tokio::sync::watch::Sender<usize>,
) -> tokio::task::JoinHandle<()> {
    let mut events = common::follow_events(client, base, TOKEN, "").await;
    tokio::spawn(async move {
        while let Some((kind, v, _)) = events.recv().await {
            if kind == "max_wait_exceeded" {
                let mut fired = fired.lock().unwrap();
                fired.push((v["conversation"].as_str().unwrap().to_string(), at(&v["at"])));
                let _ = count.send(fired.len());
            }
        }
    })
}

async fn get(client: &Client, base: &str, path: &str) -> (StatusCode, Value) {
    let res = client.get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    (res.status(), res.json().await.unwrap_or(Value::Null))
}

/// A webhook receiver that notes the conversation of every `queued` message it is sent.
async fn sink() -> (u16, Arc<Mutex<Vec<String>>>) {
    let got: Arc<Mutex<Vec<String>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let noted = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| async move {
            let v: Value = serde_json::from_str(&body).unwrap();
            noted.lock().unwrap().push(v["conversation"].as_str().unwrap().to_string());
            StatusCode::OK
        }),
    );
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (port, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_inputs_and_timers_survive_sigkill() {
    survives_sigkill("rota.db").await;
}

/// The crash test on the store `db` names (a SQLite file in the scratch folder, or a
/// PostgreSQL database's URL).
pub async fn survives_sigkill(db: &str) {
    let dir = Scratch::new(&[]);
    let config = dir.0.join("rota.toml");
    let scripts = fixture("units");
    let (sink_port, delivered) = sink().await;
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"{TOKEN}\"\nunits = [\"*\"]\n\
             [[webhooks]]\nname = \"sink\"\nurl = \"http://127.0.0.1:{sink_port}/hook\"\nsecret = \"sixteen-chars-or-more\"\n\
             events = [\"queued\"]\n[delivery]\nfirst_retry_ms = 20\n[store]\nsnapshot_every_steps = 3\naudit_days = 0\n",
            scripts.display().to_string()
        ),
    )
    .unwrap();
    let client = common::http_client();
    let mut rng = Lcg(7);
    // Conversation id -> when its creation was acknowledged as queued.
    let acked: Arc<Mutex<Vec<(String, Timestamp)>>> = Arc::default();
    // Conversations whose max-wait timer was seen firing, over all runs.
    let fired: Arc<Mutex<Vec<(String, Timestamp)>>> = Arc::default();

    for cycle in 0..CYCLES {
        let mut server = spawn(&config);
        let base = server.base.clone();
        if cycle == 0 {
            for agent in ["nora", "nils"] {
                for (method, path, body) in [
                    ("POST", "sign_in", json!({})),
                    ("PUT", "status", json!({"status": "callcenter"})),
                    ("POST", "work_day/start", json!({})),
                ] {
                    let url = format!("{base}/v1/agents/{agent}/{path}");
                    let req = if method == "POST" { client.post(url) } else { client.put(url) };
                    let res = req.bearer_auth(TOKEN).json(&body).send().await.unwrap();
                    assert_eq!(res.status(), StatusCode::OK);
                }
            }
        }
        // Everything acknowledged before this start must have survived the kills.
        let before = acked.lock().unwrap().clone();
        let (_, timers) = get(&client, &base, "/v1/timers").await;
        for (id, arrived) in &before {
            let (status, c) = get(&client, &base, &format!("/v1/conversations/{id}")).await;
            assert_eq!(status, StatusCode::OK, "cycle {cycle}: acknowledged conversation {id} is lost");
            assert_eq!(at(&c["arrived_at"]), *arrived, "cycle {cycle}: {id}");
            let due =
                timers["timers"].as_array().unwrap().iter().find(|t| t["subject"] == **id && t["kind"] == "max_wait");
            if let Some(t) = due {
                assert_eq!((at(&t["due"]) - *arrived).0, MAX_WAIT_MS, "cycle {cycle}: {id}'s max-wait timer moved");
            }
        }

        // A timer seen firing before the kill has fired for good: same end, same time.
        let seen_firing = fired.lock().unwrap().clone();
        for (id, when) in seen_firing {
            let (_, c) = get(&client, &base, &format!("/v1/conversations/{id}")).await;
            assert_eq!(c["status"], "max_wait_exceeded", "cycle {cycle}: {id}");
            assert_eq!(at(&c["ended_at"]), when, "cycle {cycle}: {id}'s max-wait timer fired again after the restart");
        }
        let (fired_tx, mut fired_count) = tokio::sync::watch::channel(fired.lock().unwrap().len());
        let seen_before = *fired_count.borrow();
        let watcher = watch_timers(&client, &base, fired.clone(), fired_tx).await;
        // Stream inputs; kill the server once a random number of them has been acknowledged.
        let target = before.len() + 2 + rng.below(10) as usize;
        let (count_tx, mut count) = tokio::sync::watch::channel(before.len());
        let sender = {
            let (client, base, acked, before) = (client.clone(), base.clone(), acked.clone(), before.len());
            tokio::spawn(async move {
                // Stops on its own after a while, so cycles that wait for a timer stay small.
                for k in 0..target - before + 20 {
                    let id = format!("c{cycle}-{k}");
                    let body = json!({"id": id, "queue": "north_line"});
                    let Ok(res) =
                        client.post(format!("{base}/v1/conversations")).bearer_auth(TOKEN).json(&body).send().await
                    else {
                        return;
                    };
                    if res.status() != StatusCode::CREATED {
                        return;
                    }
                    let Ok(v) = res.json::<Value>().await else { return };
                    let mut list = acked.lock().unwrap();
                    list.push((id, at(&v["updates"][0]["at"])));
                    let _ = count_tx.send(list.len());
                }
            })
        };
        tokio::time::timeout(Duration::from_secs(30), count.wait_for(|&n| n >= target))
            .await
            .expect("inputs are acknowledged")
            .unwrap();
        if cycle % 4 == 3 {
            // Some kills come right after a timer fired while the server was up.
            tokio::time::timeout(Duration::from_secs(30), fired_count.wait_for(|&n| n > seen_before))
                .await
                .expect("a max-wait timer fires")
                .unwrap();
        }
        server.child.kill().unwrap();
        server.child.wait().unwrap();
        sender.await.unwrap();
        watcher.await.unwrap();
    }

    // A last run: every conversation must end by its max-wait timer, once, never early.
    let mut server = spawn(&config);
    let (fired_tx, _) = tokio::sync::watch::channel(0);
    let watcher = watch_timers(&client, &server.base, fired.clone(), fired_tx).await;
    let all = acked.lock().unwrap().clone();
    assert!(all.len() >= CYCLES * 2);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    for (id, arrived) in &all {
        let c = loop {
            let (_, c) = get(&client, &server.base, &format!("/v1/conversations/{id}")).await;
            if c["status"] != "queued" && c["status"] != "offered" {
                break c;
            }
            assert!(tokio::time::Instant::now() < deadline, "{id} never ended: {c}");
            tokio::task::yield_now().await;
        };
        assert_eq!(c["status"], "max_wait_exceeded", "{id}: {c}");
        assert!((at(&c["ended_at"]) - *arrived).0 >= MAX_WAIT_MS, "{id} ended early: {c}");
        for attempt in c["attempts"].as_array().unwrap() {
            if attempt["outcome"] == "timed_out" {
                let waited = (at(&attempt["ended_at"]) - at(&attempt["offered_at"])).0;
                assert!(waited >= OFFER_TIMEOUT_MS, "{id}: an offer timed out after {waited} ms: {c}");
            }
            assert_ne!(attempt["outcome"], "pending", "{id}: {c}");
        }
    }
    // The outbox kept the message of every acknowledged conversation through the kills.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    for (id, _) in &all {
        while !delivered.lock().unwrap().contains(id) {
            assert!(tokio::time::Instant::now() < deadline, "the webhook message of {id} never arrived");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    server.child.kill().unwrap();
    server.child.wait().unwrap();
    watcher.await.unwrap();
    let fired = fired.lock().unwrap().clone();
    for (id, _) in &all {
        let times = fired.iter().filter(|(f, _)| f == id).count();
        assert!(times <= 1, "{id}'s max-wait timer fired {times} times");
    }
    // The starts above began from snapshots, not from the first record. A killed server's
    // hold on a PostgreSQL database goes when the database sees its connection close.
    let path = if rota::store::is_postgres(db) { db.into() } else { dir.0.join(db) };
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let mut store = loop {
        match rota::store::open(&path) {
            Ok(store) => break store,
            Err(rota::store::StoreError::Locked { .. }) if std::time::Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(20)).await
            }
            Err(e) => panic!("{e}"),
        }
    };
    let position = store.latest_snapshot().unwrap().expect("snapshots were taken").position;
    let records = store.records().unwrap().len() as u64;
    assert!(position > records / 2, "the newest snapshot is of record {position} of {records}");
}

#[test]
fn a_second_server_on_the_same_database_refuses_to_start() {
    let dir = Scratch::new(&[]);
    let config = dir.0.join("rota.toml");
    std::fs::write(
        &config,
        format!("listen = \"127.0.0.1:0\"\nscripts = {:?}\n", fixture("units").display().to_string()),
    )
    .unwrap();
    let mut first = spawn(&config);
    let second = Command::new(env!("CARGO_BIN_EXE_rota")).args(["serve", "--config"]).arg(&config).output().unwrap();
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    assert!(!second.status.success());
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(stderr.contains("rota.db is in use by another rota process"), "{stderr}");
}

/// An email to agent ada about `conversation`, as the engine hands it to the store.
pub(crate) fn email_to_ada(id: u64, conversation: &str) -> Arc<rota::notification::Notification> {
    Arc::new(rota::notification::Notification {
        id,
        unit: "default".into(),
        conversation: conversation.into(),
        rule: "r".into(),
        event: "missed".into(),
        recipient: "ada".into(),
        channel: rota::rules::DeliveryChannel::Email,
        kind: rota::template::Kind::Notification,
        address: "ada@example.com".into(),
        template: "t".into(),
        message: Default::default(),
        created: Timestamp(0),
        undeliverable: None,
    })
}

/// A notification id the store already holds is never dropped in silence (it used to be
/// `INSERT OR IGNORE`): the step fails, saying why, and nothing of it is stored.
#[test]
fn a_notification_id_the_store_already_has_fails_the_step_loudly() {
    let dir = Scratch::new(&[]);
    collision_fails_the_step(&mut rota::store::SqliteStore::open(dir.0.join("rota.db")).unwrap());
}

pub fn collision_fails_the_step(store: &mut dyn rota::store::Store) {
    use rota::store::{JournalStep, Record};
    let notification = |conversation: &str| email_to_ada(7, conversation);
    let step = |at| Record { at: Timestamp(at), step: JournalStep::Timers };
    store.append(&[step(1)], &[], &[notification("c1")]).unwrap();
    let err = store.append(&[step(2)], &[], &[notification("c2")]).unwrap_err().to_string();
    assert!(err.contains("notification 7 is already in the store") && err.contains("nothing of this step"), "{err}");
    // The step's journal record went with it.
    assert_eq!(store.records().unwrap().len(), 1);
}

/// The store says which format it is (SQLite `user_version`): a store written before formats
/// were numbered, and one written before snapshots (each kept as a fixture, written by the
/// rota of its format) is migrated, replays to the same state and takes snapshots; a store of a newer format, or a journal record written in a newer way, is
/// refused with both versions named, never read into a different state.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_store_is_migrated_and_a_newer_one_refused() {
    use rota::store::SqliteStore;
    let dir = Scratch::new(&[]);
    let version = |db: &std::path::Path| -> i64 {
        rusqlite::Connection::open(db).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap()
    };
    let scripts = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts");
    for format in [0, 1] {
        let db = dir.0.join(format!("format-{format}.db"));
        common::older_store(format, &db);
        assert_eq!(version(&db), i64::from(format));
        let policy =
            rota::runtime::SnapshotPolicy::new(1, rota::time::Duration::from_secs(60), 2, rota::time::Duration::ZERO);
        let handle =
            rota::Builder::new(&scripts).snapshots(policy).store(SqliteStore::open(&db).unwrap()).start().unwrap();
        // What the old rota did is there: anna signed in, c1 came in (its timers have fired
        // since, whenever this runs).
        assert!(handle.conversation("c1").await.unwrap().is_some(), "format {format}: c1 replayed");
        assert!(handle.agent("anna").await.unwrap().expect("anna").online, "format {format}: anna's sign-in replayed");
        // The migrated store takes snapshots like a new one.
        handle.submit(rota::Input::SignIn { agent: "bjorn".into() }).await.unwrap();
        handle.close().await.unwrap();
        drop(handle);
        assert_eq!(version(&db), rota::store::FORMAT);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        while rota::store::StoreInfo::read(&db).unwrap().latest_snapshot.is_none() {
            assert!(std::time::Instant::now() < deadline, "format {format}: no snapshot was written");
            tokio::task::yield_now().await;
        }
        let handle = rota::Builder::new(&scripts).store(SqliteStore::open(&db).unwrap()).start().unwrap();
        assert!(handle.agent("bjorn").await.unwrap().expect("bjorn").online, "format {format}: after the snapshot");
        handle.close().await.unwrap();
    }

    // A newer store.
    let newer = dir.0.join("newer.db");
    common::format0_store(&newer);
    rusqlite::Connection::open(&newer).unwrap().pragma_update(None, "user_version", 99).unwrap();
    let err = SqliteStore::open(&newer).err().expect("refused").to_string();
    assert!(err.contains("store format 99") && err.contains("reads formats up to 2"), "{err}");

    // A journal record written in a newer way (in a journal no snapshot covers yet).
    let db = dir.0.join("newer-record.db");
    common::older_store(1, &db);
    let conn = rusqlite::Connection::open(&db).unwrap();
    conn.execute("UPDATE journal SET format = 2 WHERE seq = (SELECT MAX(seq) FROM journal)", []).unwrap();
    drop(conn);
    let err = match rota::Builder::new(&scripts).store(SqliteStore::open(&db).unwrap()).start() {
        Ok(_) => panic!("a record of a newer format was replayed"),
        Err(e) => e.to_string(),
    };
    assert!(err.contains("journal format 2") && err.contains("reads up to 1"), "{err}");
}

/// Retention of the notification log: sent notifications, and dead ones whose failure the
/// engine has heard of, go with their attempts once older than the window; pending ones and
/// dead ones not yet reported stay, whatever their age.
#[test]
fn the_notification_log_forgets_what_is_done_after_its_window() {
    let dir = Scratch::new(&[]);
    log_forgets_what_is_done(&mut rota::store::SqliteStore::open(dir.0.join("rota.db")).unwrap());
}

pub fn log_forgets_what_is_done(store: &mut dyn rota::store::Store) {
    use rota::notification::Outcome;
    let n = |id: u64| email_to_ada(id, &format!("c{id}"));
    store.append(&[], &[], &[n(1), n(2), n(3), n(4)]).unwrap();
    let mut log = store.notifications().unwrap();
    let day = 86_400_000;
    let sent = Outcome::Sent { provider_id: None, detail: "250 ok".into() };
    let dead = Outcome::Permanent { error: "550 no such user".into() };
    log.record(1, Timestamp(day), &sent, None).unwrap(); // sent on day 1
    log.record(2, Timestamp(day), &dead, None).unwrap(); // dead on day 1, reported
    log.reported(2).unwrap();
    log.record(3, Timestamp(day), &dead, None).unwrap(); // dead on day 1, not reported yet
                                                         // 4 is still pending.
    assert_eq!(log.prune(Timestamp(day)).unwrap(), 0, "nothing is older than the window yet");
    assert_eq!(log.prune(Timestamp(3 * day)).unwrap(), 2);
    assert!(log.get(1).unwrap().is_none() && log.get(2).unwrap().is_none());
    let (kept, attempts) = log.get(3).unwrap().expect("an unreported dead notification stays");
    assert_eq!((kept.notification.id, attempts.len()), (3, 1));
    assert!(log.get(4).unwrap().is_some(), "a pending notification stays");
}

/// With snapshots every few steps and no audit window, the journal behind the oldest snapshot
/// kept is forgotten as the server runs; a start needs only the newest snapshot and the
/// journal after it, and comes back to the same state. `rota store compact` does the same on
/// demand, beside no server, and gives the space back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_journal_behind_the_snapshots_is_forgotten_and_a_start_needs_only_the_rest() {
    use rota::runtime::SnapshotPolicy;
    use rota::store::{SqliteStore, StoreInfo};
    let dir = Scratch::new(&[]);
    let db = dir.0.join("rota.db");
    let scripts = fixture("units");
    let policy = SnapshotPolicy::new(5, rota::time::Duration::from_secs(3600), 2, rota::time::Duration::ZERO);
    let start = || {
        rota::Builder::new(&scripts).snapshots(policy.clone()).store(SqliteStore::open(&db).unwrap()).start().unwrap()
    };
    let handle = start();
    for agent in ["nora", "nils"] {
        handle.submit(rota::Input::SignIn { agent: agent.into() }).await.unwrap();
    }
    for i in 0..60 {
        let new = rota::NewConversation { id: format!("c{i}"), queue: "north_line".into(), ..Default::default() };
        handle.submit(rota::Input::Arrive(Box::new(new))).await.unwrap();
    }
    // The snapshot thread writes and prunes in the background.
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    let info = loop {
        let info = StoreInfo::read(&db).unwrap();
        if info.latest_snapshot.is_some_and(|(p, _, _)| p + 5 >= info.last_position) && info.journal_records < 20 {
            break info;
        }
        assert!(std::time::Instant::now() < deadline, "the journal was not pruned: {info:?}");
        tokio::task::yield_now().await;
    };
    assert!(info.last_position >= 62, "{info:?}");
    handle.close().await.unwrap();
    drop(handle);

    let handle = start();
    for i in [0, 31, 59] {
        let c = handle.conversation(&format!("c{i}")).await.unwrap();
        assert!(c.is_some(), "c{i} is back after a start from the snapshot");
    }
    assert!(handle.agent("nils").await.unwrap().unwrap().online);
    handle.close().await.unwrap();
    drop(handle);

    let out = Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["store", "compact", "--db"])
        .arg(&db)
        .current_dir(&dir.0)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && text.contains("forgot") && text.contains("size:"),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
