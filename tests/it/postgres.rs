//! rota on PostgreSQL (`db = "postgres://…"`), against a real server the tests start
//! themselves (`common::postgres`): the crash test, the store's refusals and the notification
//! log's retention, each as on SQLite; and several nodes on one database, one owning it under
//! a lease: failover when the owner is killed, and fencing of an owner paused past its lease.

use crate::common;
use crate::crash;

use std::process::Command;

use common::postgres::Cluster;
use common::{fixture, Scratch};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_inputs_and_timers_survive_sigkill_on_postgresql() {
    let cluster = Cluster::get();
    crash::survives_sigkill(&cluster.database()).await;
}

#[test]
fn a_notification_id_the_database_already_has_fails_the_step_loudly() {
    let cluster = Cluster::get();
    crash::collision_fails_the_step(&mut rota::store::PostgresStore::open(&cluster.database()).unwrap());
}

#[test]
fn the_notification_log_on_postgresql_forgets_what_is_done_after_its_window() {
    let cluster = Cluster::get();
    crash::log_forgets_what_is_done(&mut rota::store::PostgresStore::open(&cluster.database()).unwrap());
}

/// A `rota serve` node of a cluster on one database: its output read on a thread of its own.
struct Node {
    name: &'static str,
    child: std::process::Child,
    lines: std::sync::mpsc::Receiver<String>,
    base: Option<String>,
}

impl Node {
    fn start(dir: &std::path::Path, name: &'static str, db: &str) -> Node {
        Node::start_with(dir, name, db, "")
    }

    /// [`Node::start`] with more of the configuration file (sections after `[store]`).
    fn start_with(dir: &std::path::Path, name: &'static str, db: &str, more: &str) -> Node {
        use std::io::BufRead;
        let config = dir.join(format!("{name}.toml"));
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"{TOKEN}\"\nunits = [\"*\"]\n\
                 [store]\nnode = \"{name}\"\nlease_ms = {LEASE_MS}\nsnapshot_every_steps = 5\n{more}",
                fixture("units").display().to_string()
            ),
        )
        .unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_rota"))
            .args(["serve", "--config"])
            .arg(&config)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        for out in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in std::io::BufReader::new(out).lines().map_while(Result::ok) {
                    let _ = tx.send(line);
                }
            });
        }
        Node { name, child, lines, base: None }
    }

    /// Reads its output until `until` says yes or the deadline passes; the line that did.
    fn wait_for(&mut self, deadline: Instant, until: impl Fn(&str) -> bool) -> Option<String> {
        loop {
            // Past the deadline, what is already there is still read.
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if until(&line) => return Some(line),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }

    /// Whether it says it listens (it owns the database) by `deadline`; notes where.
    fn listening_by(&mut self, deadline: Instant) -> bool {
        let line = self.wait_for(deadline, |l| l.starts_with("rota listening on "));
        self.base = line.map(|l| l["rota listening on ".len()..].to_string());
        self.base.is_some()
    }

    fn signal(&self, sig: &str) {
        assert!(Command::new("kill").arg(sig).arg(self.child.id().to_string()).status().unwrap().success());
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const TOKEN: &str = "cluster-test";
const LEASE_MS: u64 = 1000;

/// Creates a conversation in `north_line` (max wait 3 s); when it arrived, if acknowledged.
async fn create(client: &reqwest::Client, base: &str, id: &str) -> Option<serde_json::Value> {
    let res = client
        .post(format!("{base}/v1/conversations"))
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({"id": id, "queue": "north_line"}))
        .send()
        .await
        .ok()?;
    (res.status() == reqwest::StatusCode::CREATED).then_some(())?;
    let reply: serde_json::Value = res.json().await.ok()?;
    // When it arrived: the time of the first update it made.
    Some(reply["updates"][0]["at"].clone())
}

async fn read(client: &reqwest::Client, base: &str, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let res = client.get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    (res.status(), res.json().await.unwrap_or_default())
}

/// Node `a` owning the database, node `b` standing by (with `more` of the configuration),
/// and where `b` answers.
fn owner_and_standby(dir: &std::path::Path, db: &str, more: &str) -> (Node, Node, String) {
    let mut a = Node::start_with(dir, "a", db, more);
    assert!(a.listening_by(Instant::now() + Duration::from_secs(30)), "a never listened");
    let mut b = Node::start_with(dir, "b", db, more);
    let said = b.wait_for(Instant::now() + Duration::from_secs(30), |l| l.starts_with("rota standing by"));
    let standby = standby_base(&said.expect("b stands by"));
    (a, b, standby)
}

/// Where a standby answers, from the line it printed.
fn standby_base(said: &str) -> String {
    said["rota standing by on ".len()..].split(": ").next().unwrap().to_string()
}

/// [`read`] through the standby `node` at `base`, which says in `Via` that it forwarded it.
async fn forwarded(
    client: &reqwest::Client,
    base: &str,
    node: &str,
    path: &str,
) -> (reqwest::StatusCode, serde_json::Value) {
    let res = client.get(format!("{base}{path}")).bearer_auth(TOKEN).send().await.unwrap();
    let via = res.headers().get("via").map(|v| v.to_str().unwrap().to_string());
    assert_eq!(via.as_deref(), Some(format!("1.1 rota-{node}").as_str()), "{path}");
    (res.status(), res.json().await.unwrap_or_default())
}

use std::time::{Duration, Instant};

/// Three nodes on one database; the owner is killed with SIGKILL at a random moment of a
/// stream of arrivals, 10 times. Each time another node takes over within the lease and a
/// little, with every acknowledged conversation and its max-wait timer's due time; the killed
/// node comes back as a standby.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_takes_over_within_the_lease_when_the_owner_is_killed() {
    let cluster = Cluster::get();
    // A password in the URL (the test server trusts everyone) is never shown.
    let db = cluster.database().replace("rota@", "rota:secret-password@");
    let dir = Scratch::new(&[]);
    let client = common::http_client();
    let mut nodes = vec![Node::start(&dir.0, "a", &db)];
    assert!(nodes[0].listening_by(Instant::now() + Duration::from_secs(30)), "node a never listened");
    for name in ["b", "c"] {
        let mut n = Node::start(&dir.0, name, &db);
        let said = n.wait_for(Instant::now() + Duration::from_secs(30), |l| l.starts_with("rota standing by"));
        let said = said.unwrap_or_else(|| panic!("node {name} did not stand by"));
        assert!(said.contains("owned by node a") && said.contains("rota:***@127.0.0.1"), "{said}");
        assert!(!said.contains("secret-password"), "{said}");
        let standby = standby_base(&said);
        let owner = nodes[0].base.clone().unwrap();
        // A standby's health check fails, naming the owner, so a load balancer picks the owner...
        let res = client.get(format!("{standby}/healthz")).send().await.unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
        assert!(res.headers().contains_key("retry-after"));
        let body: serde_json::Value = res.json().await.unwrap();
        let message = body["message"].as_str().unwrap();
        assert!(message.contains("node a owns the database and listens at") && message.contains(&owner), "{body}");
        // ...its metrics are its own: no lease, and whose it saw...
        let metrics = client.get(format!("{standby}/metrics")).send().await.unwrap().text().await.unwrap();
        for line in
            ["rota_lease_held{partition=\"all\"} 0", "rota_cluster_lease_epoch{partition=\"all\",owner=\"a\"} 1"]
        {
            assert!(metrics.lines().any(|l| l == line), "{line} not in {metrics}");
        }
        // ...and the API is the owner's, forwarded.
        let (status, agents) = forwarded(&client, &standby, name, "/v1/agents").await;
        assert_eq!(status, reqwest::StatusCode::OK, "{agents}");
        // The same agents in the same states since the same moments (time in state moves on).
        let states = |v: &serde_json::Value| -> Vec<String> {
            v["agents"].as_array().unwrap().iter().map(|a| format!("{} {}", a["id"], a["state_since"])).collect()
        };
        assert_eq!(states(&agents), states(&read(&client, &owner, "/v1/agents").await.1));
        nodes.push(n);
    }
    let metrics = client.get(format!("{}/metrics", nodes[0].base.as_ref().unwrap())).send().await.unwrap();
    let metrics = metrics.text().await.unwrap();
    for line in ["rota_lease_held{partition=\"all\"} 1", "rota_cluster_lease_epoch{partition=\"all\",owner=\"a\"} 1"] {
        assert!(metrics.lines().any(|l| l == line), "{line} not in the owner's {metrics}");
    }
    for node in ["a", "b", "c"] {
        let seen = format!("rota_cluster_node_seen_seconds{{node=\"{node}\"}} ");
        assert!(metrics.lines().any(|l| l.starts_with(&seen)), "{seen} not in the owner's {metrics}");
    }
    // The owner shows who shares the database.
    let (status, cluster) = read(&client, nodes[0].base.as_ref().unwrap(), "/v1/cluster").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{cluster}");
    let seen: Vec<(&str, bool)> = cluster["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["node"].as_str().unwrap(), n["owner"] == true))
        .collect();
    assert_eq!(seen, [("a", true), ("b", false), ("c", false)], "{cluster}");
    let partition = &cluster["partitions"][0];
    assert_eq!((partition["owner"].as_str(), partition["epoch"].as_i64()), (Some("a"), Some(1)), "{cluster}");
    let left = partition["lease_expires_in_ms"].as_i64().unwrap();
    assert!(left > 0 && left <= LEASE_MS as i64, "{cluster}");
    let mut owner = 0;
    let mut acked: Vec<(String, serde_json::Value)> = Vec::new();
    let mut takeovers = Vec::new();
    let mut seed = 11u64;
    for cycle in 0..10 {
        seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        let base = nodes[owner].base.clone().unwrap();
        // Arrivals as fast as the owner takes them (at most 40 a cycle), until the kill.
        let stream = {
            let (client, base) = (client.clone(), base.clone());
            tokio::spawn(async move {
                let mut done = Vec::new();
                for i in 0..40 {
                    let id = format!("k{cycle}-{i}");
                    match create(&client, &base, &id).await {
                        Some(arrived) => done.push((id, arrived)),
                        None => break,
                    }
                }
                done
            })
        };
        tokio::time::sleep(Duration::from_millis(100 + (seed >> 33) % 400)).await;
        nodes[owner].signal("-KILL");
        let killed = Instant::now();
        acked.extend(stream.await.unwrap());
        let deadline = killed + Duration::from_millis(LEASE_MS) + Duration::from_secs(5);
        // Whichever standby takes over first.
        let next = loop {
            let soon = || Instant::now() + Duration::from_millis(20);
            if let Some(i) = (1..3).map(|k| (owner + k) % 3).find(|&i| nodes[i].listening_by(soon())) {
                break i;
            }
            if Instant::now() >= deadline {
                let said: Vec<String> =
                    nodes.iter().map(|n| format!("{}: {:?}", n.name, n.lines.try_iter().collect::<Vec<_>>())).collect();
                panic!("cycle {cycle}: no node took over within {:?}; they said {said:#?}", deadline - killed);
            }
        };
        takeovers.push(killed.elapsed());
        let base = nodes[next].base.clone().unwrap();
        let (_, timers) = read(&client, &base, "/v1/timers?kind=max_wait&limit=1000").await;
        for (id, arrived) in &acked {
            let (status, c) = read(&client, &base, &format!("/v1/conversations/{id}")).await;
            assert_eq!(status, reqwest::StatusCode::OK, "cycle {cycle}: acknowledged {id} is lost");
            assert_eq!(&c["arrived_at"], arrived, "cycle {cycle}: {id}");
            if let Some(t) = timers["timers"].as_array().unwrap().iter().find(|t| t["subject"] == **id) {
                let due = rota::time::Timestamp::parse_rfc3339(t["due"].as_str().unwrap()).unwrap();
                let arrived = rota::time::Timestamp::parse_rfc3339(arrived.as_str().unwrap()).unwrap();
                assert_eq!((due - arrived).0, 3000, "cycle {cycle}: {id}'s max-wait timer moved");
            }
        }
        let (_, cluster) = read(&client, &base, "/v1/cluster").await;
        let partition = &cluster["partitions"][0];
        assert_eq!(partition["owner"].as_str(), Some(nodes[next].name), "cycle {cycle}: {cluster}");
        assert_eq!(partition["epoch"].as_i64(), Some(cycle as i64 + 2), "cycle {cycle}: one takeover, one epoch");
        // The killed node comes back, as a standby under its own name.
        let name = nodes[owner].name;
        nodes[owner] = Node::start(&dir.0, name, &db);
        let said =
            nodes[owner].wait_for(Instant::now() + Duration::from_secs(30), |l| l.starts_with("rota standing by"));
        let said = said.unwrap_or_else(|| panic!("cycle {cycle}: node {name} did not come back as a standby"));
        // Through it, the new owner's API.
        if let Some((id, arrived)) = acked.last() {
            let (status, c) = forwarded(&client, &standby_base(&said), name, &format!("/v1/conversations/{id}")).await;
            assert_eq!((status, &c["arrived_at"]), (reqwest::StatusCode::OK, arrived), "cycle {cycle}: {c}");
        }
        owner = next;
    }
    eprintln!("takeovers after SIGKILL (lease {LEASE_MS} ms): {takeovers:?}");
    assert!(acked.len() > 30, "only {} conversations were acknowledged", acked.len());
}

/// `rota serve` with two partitions (north's and south's): a node holds both leases, and a
/// standby forwards to it; when it dies, the standby takes both over, each from its own
/// stream, and `/v1/cluster` names it owner of each.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_serves_every_partition_and_a_standby_takes_them_all_over() {
    let cluster = Cluster::get();
    let db = cluster.database();
    let dir = Scratch::new(&[]);
    let client = common::http_client();
    let partitions = "[partitions]\ncount = 2\n[partitions.units]\nnorth = 0\nsouth = 1\n";
    let (a, mut b, b_standby) = owner_and_standby(&dir.0, &db, partitions);
    for (id, queue) in [("n1", "north_line"), ("s1", "south_line")] {
        let res = client
            .post(format!("{b_standby}/v1/conversations"))
            .bearer_auth(TOKEN)
            .json(&serde_json::json!({"id": id, "queue": queue}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), reqwest::StatusCode::CREATED, "{id}");
    }
    let owners = |view: &serde_json::Value| -> Vec<(String, String, i64)> {
        let partitions = view["partitions"].as_array().unwrap().iter();
        partitions
            .map(|p| {
                (p["id"].as_str().unwrap().into(), p["owner"].as_str().unwrap().into(), p["epoch"].as_i64().unwrap())
            })
            .collect()
    };
    let (_, view) = read(&client, a.base.as_ref().unwrap(), "/v1/cluster").await;
    assert_eq!(owners(&view), [("p0".into(), "a".into(), 1), ("p1".into(), "a".into(), 1)], "{view}");
    a.signal("-KILL");
    assert!(
        b.listening_by(Instant::now() + Duration::from_millis(LEASE_MS) + Duration::from_secs(5)),
        "b did not take over"
    );
    let base = b.base.clone().unwrap();
    for id in ["n1", "s1"] {
        assert_eq!(read(&client, &base, &format!("/v1/conversations/{id}")).await.0, reqwest::StatusCode::OK, "{id}");
    }
    let (_, view) = read(&client, &base, "/v1/cluster").await;
    assert_eq!(owners(&view), [("p0".into(), "b".into(), 2), ("p1".into(), "b".into(), 2)], "{view}");
    let (_, agents) = read(&client, &base, "/v1/agents").await;
    assert_eq!(agents["agents"].as_array().unwrap().len(), 3, "{agents}");
}

/// A standby serves the owner's API: a request goes on as it came, body and token included,
/// the owner's answer (a refusal too) comes back as it was, and the event stream flows
/// through. A request another node already forwarded is not forwarded again, and an event
/// stream open through a standby does not hold up its takeover when the owner stops answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_standby_forwards_the_api_and_the_event_stream_to_the_owner() {
    let cluster = Cluster::get();
    let db = cluster.database();
    let dir = Scratch::new(&[]);
    let client = common::http_client();
    let (a, mut b, b_base) = owner_and_standby(&dir.0, &db, "");
    let a_base = a.base.clone().unwrap();

    let mut events = common::follow_events(&client, &b_base, TOKEN, "").await;
    let post = |base: &str, body: serde_json::Value| {
        client.post(format!("{base}/v1/conversations")).bearer_auth(TOKEN).json(&body).send()
    };
    let res = post(&b_base, serde_json::json!({"id": "via_b", "queue": "north_line"})).await.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::CREATED);
    assert_eq!(res.headers()["via"], "1.1 rota-b");
    assert_eq!(read(&client, &a_base, "/v1/conversations/via_b").await.0, reqwest::StatusCode::OK, "not on the owner");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let event = tokio::time::timeout_at(deadline, events.recv()).await.expect("via_b's event through b");
        if event.expect("the stream through b ended").1.to_string().contains("via_b") {
            break;
        }
    }
    // The owner's refusal, as the owner gave it.
    let wrong = serde_json::json!({"id": "lost", "queue": "no_such_queue"});
    let (direct, through) = (post(&a_base, wrong.clone()).await.unwrap(), post(&b_base, wrong).await.unwrap());
    assert!(direct.status().is_client_error());
    assert_eq!(through.status(), direct.status());
    assert_eq!(through.json::<serde_json::Value>().await.unwrap(), direct.json::<serde_json::Value>().await.unwrap());
    // Another node forwarded it already: not again.
    let res = client.get(format!("{b_base}/v1/agents")).bearer_auth(TOKEN).header("via", "1.1 rota-c").send().await;
    let res = res.unwrap();
    assert_eq!(res.status(), reqwest::StatusCode::SERVICE_UNAVAILABLE);
    let body: serde_json::Value = res.json().await.unwrap();
    assert!(body["message"].as_str().unwrap().contains("forwarded to this node by another"), "{body}");

    // The owner stops answering with the stream through b still open: b takes over all the same.
    a.signal("-STOP");
    let stopped = Instant::now();
    assert!(b.listening_by(stopped + Duration::from_secs(4)), "b's takeover waited for the stream it was forwarding");
    a.signal("-CONT");
}

/// An owner paused past its lease (SIGSTOP) while another node takes over writes nothing once
/// it runs again (SIGCONT): its next write is refused, and it steps down.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_paused_past_its_lease_is_fenced_and_steps_down() {
    let cluster = Cluster::get();
    let db = cluster.database();
    let dir = Scratch::new(&[]);
    let client = common::http_client();
    let (mut a, mut b, _) = owner_and_standby(&dir.0, &db, "");
    let a_base = a.base.clone().unwrap();
    assert!(create(&client, &a_base, "before").await.is_some());

    a.signal("-STOP");
    assert!(b.listening_by(Instant::now() + Duration::from_secs(10)), "b did not take over from a paused owner");
    let b_base = b.base.clone().unwrap();
    assert!(create(&client, &b_base, "on_b").await.is_some());
    a.signal("-CONT");
    // The paused owner's first write after it wakes is refused...
    assert!(create(&client, &a_base, "on_a").await.is_none(), "the deposed owner acknowledged a write");
    // ...and it steps down, saying why.
    let said = a.wait_for(Instant::now() + Duration::from_secs(10), |l| l.contains("lost") && l.contains("lease"));
    assert!(said.is_some(), "a did not say it lost its lease");
    let deadline = Instant::now() + Duration::from_secs(10);
    while a.child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the deposed owner kept running");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for (id, want) in [
        ("before", reqwest::StatusCode::OK),
        ("on_b", reqwest::StatusCode::OK),
        ("on_a", reqwest::StatusCode::NOT_FOUND),
    ] {
        assert_eq!(read(&client, &b_base, &format!("/v1/conversations/{id}")).await.0, want, "{id}");
    }
}

/// The fence itself, without the heartbeat's help: an owner whose lease another node took
/// (here its lease is made to end early, as a long pause would) has its next write refused in
/// that write's own transaction, before its heartbeat (due in 20 s) could notice; nothing of
/// the write is stored, and the new owner's writes go on.
#[test]
fn a_write_after_another_node_took_the_lease_is_refused_in_its_own_transaction() {
    use rota::store::{JournalStep, Lease, PostgresStore, Record, Store, StoreError};
    let cluster = Cluster::get();
    let db = cluster.database();
    let lease = |node: &str| Lease { node: node.into(), duration: Duration::from_secs(60), ..Lease::default() };
    let step = |at| Record { at: rota::time::Timestamp(at), step: JournalStep::Timers };
    let mut a = PostgresStore::open_as(&db, &lease("a")).unwrap();
    a.append(&[step(1)], &[], &[]).unwrap();
    match PostgresStore::open_as(&db, &lease("b")) {
        Err(StoreError::Leased { owner, .. }) => assert_eq!(owner, "a"),
        other => panic!("b took a held lease: {:?}", other.map(|s| s.epoch())),
    }
    // a's lease runs out while a is (as good as) paused.
    std::thread::spawn({
        let db = db.clone();
        move || {
            let mut c = postgres::Client::connect(&db, postgres::NoTls).unwrap();
            c.execute("UPDATE rota_lease SET expires_at = clock_timestamp()", &[]).unwrap();
        }
    })
    .join()
    .unwrap();
    let mut b = PostgresStore::open_as(&db, &lease("b")).unwrap();
    assert_eq!(b.epoch(), a.epoch() + 1);
    let refused = a.append(&[step(2)], &[], &[]).unwrap_err();
    assert!(matches!(refused, StoreError::Fenced { now, .. } if now == b.epoch()), "{refused}");
    b.append(&[step(3)], &[], &[]).unwrap();
    let at: Vec<i64> = b.records().unwrap().iter().map(|r| r.at.0).collect();
    assert_eq!(at, [1, 3], "the deposed owner's write is not in the journal");
}

/// Ends the lease of the node owning `db` now, as a long pause of that node would.
fn end_lease(db: &str) {
    sql(db, "UPDATE rota_lease SET expires_at = clock_timestamp()");
}

/// A deposed owner may still be delivering when another node takes over. What its deliverers
/// claimed is theirs while the claim lasts: the new owner's deliverers leave it alone (each
/// message is delivered once while its claimer lives), take what nobody holds, and deliver a
/// claimed message again, with its id, only once the claim has run out (the claimer died).
#[test]
fn a_message_another_node_claimed_is_delivered_again_only_once_its_claim_runs_out() {
    use rota::notification::Outcome;
    use rota::outbox::{Claim, Message};
    use rota::store::{JournalStep, Lease, PostgresStore, Record, Store};
    use rota::time::Timestamp;
    const CLAIM: Duration = Duration::from_millis(1500);
    let cluster = Cluster::get();
    let db = cluster.database();
    let lease =
        |node: &str| Lease { node: node.into(), duration: Duration::from_secs(60), claim: CLAIM, ..Lease::default() };
    let mut a = PostgresStore::open_as(&db, &lease("a")).unwrap();
    let message = |body: &str| Message { channel: "hook".into(), kind: "offered".into(), body: body.into() };
    let notifications = [crash::email_to_ada(1, "c1"), crash::email_to_ada(2, "c2")];
    a.append(&[Record { at: Timestamp(1), step: JournalStep::Timers }], &[message("1"), message("2")], &notifications)
        .unwrap();
    let (mut a_out, mut a_log) = (a.outbox().unwrap(), a.notifications().unwrap());
    let now = Timestamp(10);
    // a's deliverers take the first message and both notifications...
    let first = a_out.head("hook").unwrap().unwrap();
    assert_eq!(a_out.claim(first.id).unwrap(), Claim::Held);
    let ids = |due: Vec<rota::notification::LogEntry>| due.iter().map(|e| e.notification.id).collect::<Vec<_>>();
    assert_eq!(ids(a_log.due(now, 10).unwrap()), [1, 2]);
    let claimed = Instant::now();
    // ...and b takes the database over while they are under way.
    end_lease(&db);
    let b = PostgresStore::open_as(&db, &lease("b")).unwrap();
    let (mut b_out, mut b_log) = (b.outbox().unwrap(), b.notifications().unwrap());
    assert_eq!(b_out.head("hook").unwrap().unwrap().id, first.id, "the head waits for a");
    match b_out.claim(first.id).unwrap() {
        Claim::Taken { by, for_ms } => assert!(by == "a" && for_ms > 0 && for_ms <= 1500, "{by} {for_ms}"),
        Claim::Held => panic!("b claimed the message a is delivering"),
    }
    assert_eq!(ids(b_log.due(now, 10).unwrap()), [0u64; 0], "b took the notifications a is delivering");
    assert_eq!(b_log.next_due().unwrap(), None, "b would wake for a's notifications");
    // What a finishes is done for everyone; the next message is nobody's yet, so b takes it.
    a_out.delivered(first.id).unwrap();
    let sent = Outcome::Sent { provider_id: None, detail: "250 ok".into() };
    a_log.record(1, Timestamp(11), &sent, None).unwrap();
    let second = b_out.head("hook").unwrap().unwrap();
    assert_ne!(second.id, first.id);
    assert_eq!(b_out.claim(second.id).unwrap(), Claim::Held);
    // A retry lets go of the claim: whoever looks next may deliver it.
    b_out.retry(second.id, Timestamp(0), "503").unwrap();
    assert_eq!(a_out.claim(second.id).unwrap(), Claim::Held);
    // a dies holding notification 2: once its claim has run out, b delivers it, same id.
    let deadline = claimed + CLAIM + Duration::from_secs(5);
    let taken = loop {
        let due = ids(b_log.due(now, 10).unwrap());
        if !due.is_empty() {
            break due;
        }
        assert!(Instant::now() < deadline, "a's claim on notification 2 never ran out");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(taken, [2]);
    assert!(claimed.elapsed() >= CLAIM - Duration::from_millis(50), "taken after {:?}", claimed.elapsed());
}

/// Partitions on PostgreSQL: each its own journal stream (a schema of its own) under a lease
/// of its own, so a partition whose lease is taken stops while the others go on; delivery ids
/// are unique across partitions; and the database refuses to be read partitioned another way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_partition_on_postgresql_has_its_own_stream_and_lease() {
    use rota::outbox::Message;
    use rota::partition::Partitioning;
    use rota::store::{JournalStep, Lease, PostgresStore, Record, Store, StoreError};
    let cluster = Cluster::get();
    let db = cluster.database();
    let two = || Partitioning::new(2, [("north".to_string(), 0), ("south".to_string(), 1)].into()).unwrap();
    let lease = |node: &str| Lease { node: node.into(), duration: Duration::from_secs(60), ..Lease::default() };
    let start = |node: &'static str| {
        let db = db.clone();
        rota::runtime::Partitioned::start(two(), move |p| {
            let store = PostgresStore::open_partition(&db, &lease(node), p).unwrap();
            rota::Builder::new(fixture("units")).store(store)
        })
        .unwrap()
    };
    let rota = start("a");
    rota.unit("north").submit(rota::Input::SignIn { agent: "nora".into() }).await.unwrap();
    rota.unit("south").submit(rota::Input::SignIn { agent: "sara".into() }).await.unwrap();
    let handles: Vec<_> = rota.handles().iter().collect();
    for h in &handles {
        h.close().await.unwrap();
    }
    drop(handles);
    drop(rota);
    for (schema, has, lacks) in [("rota_p0", "nora", "sara"), ("rota_p1", "sara", "nora")] {
        let steps = sql(&db, &format!("SELECT step FROM {schema}.journal WHERE step NOT LIKE '%\"scripts\"%'"));
        let steps = steps.join("\n");
        assert!(steps.contains(has) && !steps.contains(lacks), "{schema}: {steps}");
    }

    // Back from their own streams; p1's lease is taken by node b: p1 stops, p0 goes on.
    let rota = start("a");
    assert!(rota.unit("south").agent("sara").await.unwrap().unwrap().online);
    sql(&db, "UPDATE rota_p1.rota_lease SET expires_at = clock_timestamp()");
    let b = PostgresStore::open_partition(&db, &lease("b"), &std::sync::Arc::new(two()).part(1)).unwrap();
    let refused = rota.unit("south").submit(rota::Input::SignOut { agent: "sara".into() }).await.unwrap_err();
    assert!(refused.to_string().contains("lease") || refused.to_string().contains("stopped"), "{refused}");
    rota.unit("north").submit(rota::Input::SignOut { agent: "nora".into() }).await.unwrap();
    assert!(rota.unit("south").stopped().await.is_err(), "p1 stopped, saying why");
    drop(b);

    // Delivery ids: one sequence across partitions.
    let store = |i| PostgresStore::open_partition(&db, &lease("a"), &std::sync::Arc::new(two()).part(i)).unwrap();
    let message = Message { channel: "hook".into(), kind: "offered".into(), body: "{}".into() };
    let step = Record { at: rota::time::Timestamp(i64::MAX / 4), step: JournalStep::Timers };
    let mut ids = Vec::new();
    for i in [1, 0, 1] {
        let mut s = store(i);
        s.append(std::slice::from_ref(&step), std::slice::from_ref(&message), &[]).unwrap();
        ids.push(s.outbox().unwrap().head("hook").unwrap().unwrap().id);
        let _ = s.outbox().unwrap().delivered(ids[ids.len() - 1]);
    }
    assert!(ids[0] != ids[1] && ids[1] != ids[2] && ids[0] != ids[2], "{ids:?}");

    // Partitioned another way: refused, naming both ways.
    let three = std::sync::Arc::new(Partitioning::new(3, Default::default()).unwrap());
    match PostgresStore::open_partition(&db, &lease("a"), &three.part(0)) {
        Err(StoreError::Partitioning { found, wanted, .. }) => {
            assert_eq!((found.as_str(), wanted.as_str()), ("fnv1a/2 north=0 south=1", "fnv1a/3"))
        }
        other => panic!("opened under another partitioning: {:?}", other.map(|s| s.epoch())),
    }
    match PostgresStore::open_as(&db, &lease("a")) {
        Err(StoreError::Partitioning { wanted, .. }) => assert_eq!(wanted, "fnv1a/1"),
        other => panic!("opened unpartitioned: {:?}", other.map(|s| s.epoch())),
    }
}

/// Runs `query` on a connection of its own (off the test's runtime); the first column of each row, as text.
fn sql(db: &str, query: &str) -> Vec<String> {
    let (db, query) = (db.to_string(), query.to_string());
    std::thread::spawn(move || {
        let mut c = postgres::Client::connect(&db, postgres::NoTls).unwrap();
        c.simple_query(&query)
            .unwrap()
            .into_iter()
            .filter_map(|m| match m {
                postgres::SimpleQueryMessage::Row(r) => Some(r.get(0).unwrap_or_default().to_string()),
                _ => None,
            })
            .collect()
    })
    .join()
    .unwrap()
}

/// A database a rota without partitions wrote is one partition: opening it partitioned is
/// refused, not read as empty streams beside the state it holds.
#[test]
fn a_database_written_without_partitions_is_not_read_partitioned() {
    use rota::store::{JournalStep, Lease, PostgresStore, Record, Store, StoreError};
    let cluster = Cluster::get();
    let db = cluster.database();
    let mut old = PostgresStore::open_as(&db, &Lease::default()).unwrap();
    old.append(&[Record { at: rota::time::Timestamp(1), step: JournalStep::Timers }], &[], &[]).unwrap();
    drop(old);
    // As a rota from before partitions left it.
    sql(&db, "DROP TABLE public.rota_partitioning");
    let two = std::sync::Arc::new(rota::partition::Partitioning::new(2, Default::default()).unwrap());
    match PostgresStore::open_partition(&db, &Lease::default(), &two.part(0)) {
        Err(StoreError::Partitioning { found, .. }) => assert_eq!(found, "fnv1a/1"),
        other => panic!("read partitioned: {:?}", other.map(|s| s.epoch())),
    }
}

/// `rota store info` and `compact` read SQLite files: given a PostgreSQL URL they say so,
/// without the password, instead of treating the URL as a file name.
#[test]
fn the_store_commands_say_they_are_for_sqlite_files() {
    for command in ["info", "compact"] {
        let out = Command::new(env!("CARGO_BIN_EXE_rota"))
            .args(["store", command, "--db", "postgres://rota:hunter2@127.0.0.1:1/rota"])
            .output()
            .unwrap();
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("works on SQLite files") && stderr.contains("rota:***@127.0.0.1"), "{stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }
}
