//! A quiet server keeps its promises. What timers do reaches the outside on a quiet line: an idle `rota serve` (no request after
//! the conversation arrives) publishes a timed-out offer on the event stream and emails the
//! person on duty, over real sockets and a real SMTP server, within a second of the due time.

use crate::common;

use std::time::{Duration as StdDuration, Instant};

use common::smtp::{free_port, Smtp};
use common::Scratch;

const RULES: &str = r#"
agents.define { id = "anna", name = "Anna", email = "anna@example.com", time_zone = "UTC" }
agents.define { id = "duty", name = "Duty", email = "duty@example.com", time_zone = "UTC" }
queues.define { id = "q", agents = { "anna" }, policy = "longest_idle", options = { timeout = "1s" },
                standby = "missed_call" }
templates.define { id = "missed", subject = "{{ conversation.id }} was missed", email = "<p>Call back.</p>" }
standby.define { id = "missed_call", on = "missed", notify = { agents = { "duty" } }, channels = "email",
                 template = "missed" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_server_publishes_and_emails_a_missed_offer_at_once() {
    let scratch = Scratch::new(&[("rules.lua", RULES)]);
    let smtp = Smtp::start(&scratch.0.join("maildir"), free_port());
    let config = scratch.0.join("rota.toml");
    std::fs::write(
        &config,
        format!(
            "listen = \"127.0.0.1:0\"\ndb = {db:?}\nscripts = {scripts:?}\n[[tokens]]\ntoken = \"t\"\nunits = [\"*\"]\n\
             [email]\nhost = \"127.0.0.1\"\nport = {port}\ntls = \"none\"\nfrom = \"Rota <rota@example.com>\"\n",
            db = scratch.0.join("rota.db").display().to_string(),
            scripts = scratch.0.display().to_string(),
            port = smtp.port,
        ),
    )
    .unwrap();
    let mut server = common::spawn(&config);
    let base = server.base.clone();
    let client = common::http_client();
    let send = |method: reqwest::Method, path: &str, body: serde_json::Value| {
        let request = client.request(method, format!("{base}{path}")).bearer_auth("t").json(&body);
        async move {
            let res = request.send().await.unwrap();
            assert!(res.status().is_success(), "{}", res.text().await.unwrap());
        }
    };
    let post = |path: &'static str, body: serde_json::Value| send(reqwest::Method::POST, path, body);
    post("/v1/agents/anna/sign_in", serde_json::json!({})).await;
    send(reqwest::Method::PUT, "/v1/agents/anna/status", serde_json::json!({ "status": "callcenter" })).await;
    post("/v1/agents/anna/work_day/start", serde_json::json!({})).await;
    let mut events = common::follow_events(&client, &base, "t", "?queue=q").await;
    post("/v1/conversations", serde_json::json!({ "id": "call-1", "queue": "q" })).await;
    // The offer is made; from here on nobody talks to the server.
    let offered = loop {
        let (kind, _, at) = events.recv().await.expect("the stream stays open");
        if kind == "offered" {
            break at;
        }
    };
    let due = offered + StdDuration::from_secs(1);
    let deadline = due + StdDuration::from_secs(1);

    let timed_out = tokio::time::timeout_at(deadline.into(), async {
        loop {
            let (kind, data, at) = events.recv().await.expect("the stream stays open");
            if kind == "timed_out" {
                return (data, at);
            }
        }
    })
    .await;
    let (data, _) = timed_out.expect("the timed-out offer reaches the event stream within a second of its due time");
    assert_eq!(data["conversation"], "call-1");

    while !smtp.mails().iter().any(|m| m.header("subject") == "call-1 was missed") {
        assert!(Instant::now() < deadline, "the missed-call email reaches the SMTP server within a second");
        tokio::time::sleep(StdDuration::from_millis(10)).await;
    }
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// With no tokens configured the development token (printed in the README) is the only key, so
/// the server refuses to listen beyond the machine, and says how to configure one.
#[test]
fn without_tokens_the_server_refuses_a_public_address() {
    let scratch = Scratch::new(&[("rules.lua", RULES)]);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--listen", "0.0.0.0:0", "--scripts"])
        .arg(&scratch.0)
        .arg("--db")
        .arg(scratch.0.join("rota.db"))
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains("the development token works only on a loopback address"), "{said}");
    assert!(said.contains("[[tokens]]"), "{said}");
    assert!(!scratch.0.join("rota.db").exists(), "no database is made for a server that does not start");
}

/// A deliverer's claim on a message must outlast any one delivery attempt, or another node
/// could send a message again while its first sending is still under way: a claim shorter
/// than twice the longest timeout is refused when the configuration is read, naming both.
#[test]
fn a_claim_shorter_than_a_delivery_may_take_is_refused_at_start() {
    let said = refused_at_start("[store]\nclaim_ms = 30000\n[delivery]\ntimeout_ms = 20000\n");
    assert!(said.contains("store.claim_ms (30000)") && said.contains("delivery.timeout_ms: 20000 ms"), "{said}");
}

/// What `rota serve` says as it refuses to start with the configuration `toml`.
fn refused_at_start(toml: &str) -> String {
    let scratch = Scratch::new(&[("rules.lua", RULES)]);
    let config = scratch.0.join("rota.toml");
    std::fs::write(&config, toml).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--config"])
        .arg(&config)
        .current_dir(&scratch.0)
        .output()
        .unwrap();
    assert!(!out.status.success());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Partitions keep a journal and a lease each and the database records how the units are
/// partitioned: a SQLite file cannot, so more than one partition on one is refused at start.
#[test]
fn partitions_on_a_sqlite_file_are_refused_at_start() {
    let said = refused_at_start("[partitions]\ncount = 2\n");
    assert!(said.contains("partitions.count above 1 needs a PostgreSQL database"), "{said}");
}

/// A message that cannot be made shows in the server's own output, not only in the API.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_prints_a_message_that_cannot_be_made() {
    use std::io::{BufRead, BufReader};
    let rules = r#"
agents.define { id = "anna", name = "Anna", time_zone = "UTC" }
queues.define { id = "q", agents = { "anna" }, policy = "longest_idle", standby = "hung_up" }
templates.define { id = "hung_up", subject = "{{ conversation.id }} hung up", email = "<p>Call back.</p>" }
standby.define { id = "hung_up", on = "abandoned", channels = "email", template = "hung_up",
                 notify = function(event) return { "anna" } end }
"#;
    let scratch = Scratch::new(&[("rules/rules.lua", rules)]);
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_rota"))
        .args(["serve", "--listen", "127.0.0.1:0", "--scripts"])
        .arg(scratch.0.join("rules"))
        .arg("--db")
        .arg(scratch.0.join("rota.db"))
        .current_dir(&scratch.0)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
    let first = out.next().unwrap().unwrap();
    let base = first.strip_prefix("rota listening on ").unwrap().to_string();
    // Keep draining stdout: a server writing to a closed pipe would stop.
    std::thread::spawn(move || for _ in out {});
    let (said, heard) = std::sync::mpsc::channel();
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || BufReader::new(stderr).lines().map_while(Result::ok).for_each(|l| drop(said.send(l))));
    let client = common::http_client();
    let token = "rota-dev-token";
    for (path, body) in [
        ("/v1/conversations", serde_json::json!({ "id": "c1", "queue": "q" })),
        ("/v1/conversations/c1/abandon", serde_json::json!({})),
    ] {
        let res = client.post(format!("{base}{path}")).bearer_auth(token).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}");
    }
    let deadline = Instant::now() + StdDuration::from_secs(10);
    let expected = "ERROR rota::rules: standby rule `hung_up`: agent `anna` has no email address";
    let mut lines = Vec::new();
    while !lines.iter().any(|l: &String| l.contains(expected)) {
        let left = deadline.saturating_duration_since(Instant::now());
        lines.push(heard.recv_timeout(left).unwrap_or_else(|_| panic!("not printed within 10 s: {lines:?}")));
    }
    let _ = child.kill();
    let _ = child.wait();
}
