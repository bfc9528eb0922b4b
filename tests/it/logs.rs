//! What `rota serve` logs, read from its stderr: `tracing` events as text or JSON lines, the
//! request log naming the token, script `log.*` lines with their file:line, reload results,
//! and `RUST_LOG` choosing what is written.

use crate::common::{self, Scratch};

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const RULES: &str = r#"
agents.define { id = "anna" }
policies.register("chatty", {
    decide = function(ctx)
        log.warn("deciding", ctx.conversation.id)
        return policies.wait()
    end,
})
queues.define { id = "q", agents = { "anna" }, policy = "chatty" }
"#;

/// A running `rota serve` whose stderr lines arrive on a channel.
struct Logged {
    server: common::Server,
    lines: mpsc::Receiver<String>,
    seen: Vec<String>,
}

impl Logged {
    fn start(scratch: &Scratch, format: &str, filter: Option<&str>) -> Logged {
        let config = scratch.0.join("rota.toml");
        std::fs::write(
            &config,
            format!(
                "listen = \"127.0.0.1:0\"\ndb = {:?}\nscripts = {:?}\n[[tokens]]\ntoken = \"secret-1\"\nunits = [\"*\"]\nname = \"pbx\"\n",
                scratch.0.join("rota.db").display().to_string(),
                scratch.0.join("rules").display().to_string(),
            ),
        )
        .unwrap();
        let mut command = Command::new(env!("CARGO_BIN_EXE_rota"));
        command.args(["serve", "--log-format", format, "--config"]).arg(&config);
        command.env_remove("RUST_LOG");
        if let Some(filter) = filter {
            command.env("RUST_LOG", filter);
        }
        let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut out = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = out.next().unwrap().unwrap();
        let base = first.strip_prefix("rota listening on ").unwrap().to_string();
        std::thread::spawn(move || for _ in out {});
        let (said, lines) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            BufReader::new(stderr).lines().map_while(Result::ok).for_each(|l| drop(said.send(l)))
        });
        Logged { server: common::Server { child, base }, lines, seen: Vec::new() }
    }

    /// The first line (from the start) that `wanted` accepts, within 10 s.
    fn until(&mut self, what: &str, wanted: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(line) = self.seen.iter().find(|l| wanted(l)) {
                return line.clone();
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let line =
                self.lines.recv_timeout(left).unwrap_or_else(|_| panic!("no {what} within 10 s: {:#?}", self.seen));
            self.seen.push(line);
        }
    }

    async fn post(&self, path: &str, body: Value) -> u16 {
        let res = common::http_client()
            .post(format!("{}{path}", self.server.base))
            .bearer_auth("secret-1")
            .json(&body)
            .send()
            .await
            .unwrap();
        res.status().as_u16()
    }

    fn stop(mut self) -> Vec<String> {
        let _ = self.server.child.kill();
        let _ = self.server.child.wait();
        self.seen.extend(self.lines.try_iter());
        self.seen
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_logs_requests_script_lines_and_reloads_as_json() {
    let scratch = Scratch::new(&[("rules/rules.lua", RULES)]);
    let mut logged = Logged::start(&scratch, "json", None);
    assert_eq!(logged.post("/v1/conversations", json!({"id": "c1", "queue": "q"})).await, 201);
    let event = |line: &str| serde_json::from_str::<Value>(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));

    // The request: method, the route as declared, status, latency and the token's name (never the token).
    let line = logged.until("request line", |l| l.contains("\"rota::http\"") && l.contains("/v1/conversations"));
    let request = event(&line);
    assert_eq!(
        (&request["level"], &request["method"], &request["route"], &request["status"], &request["token"]),
        (&json!("INFO"), &json!("POST"), &json!("/v1/conversations"), &json!(201), &json!("pbx")),
        "{line}"
    );
    assert!(request["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{line}");
    assert!(request["timestamp"].as_str().is_some_and(|t| t.starts_with("20")), "{line}");
    assert!(!line.contains("secret-1"), "{line}");

    // The policy's log.warn, with its file and line.
    let line = logged.until("script line", |l| l.contains("deciding"));
    let said = event(&line);
    assert_eq!((&said["level"], &said["target"]), (&json!("WARN"), &json!("rota::rules")), "{line}");
    assert_eq!(said["message"], "rules.lua:5: deciding c1", "{line}");

    // A reload, and one refused with the file:line at fault.
    std::fs::write(scratch.0.join("rules/rules.lua"), format!("{RULES}\n-- changed\n")).unwrap();
    assert_eq!(logged.post("/v1/scripts/reload", json!({})).await, 200);
    let line = logged.until("reload line", |l| l.contains("scripts reloaded"));
    assert_eq!(event(&line)["generation"], 2, "{line}");
    std::fs::write(scratch.0.join("rules/rules.lua"), "queues.define { id = }").unwrap();
    assert_eq!(logged.post("/v1/scripts/reload", json!({})).await, 422);
    let line = logged.until("refused reload", |l| l.contains("reload rejected"));
    assert_eq!(event(&line)["level"], "WARN", "{line}");
    assert!(line.contains("rules.lua:1"), "{line}");

    for line in logged.stop() {
        event(&line);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rust_log_chooses_what_the_text_log_holds() {
    let scratch = Scratch::new(&[("rules/rules.lua", RULES)]);
    let mut logged = Logged::start(&scratch, "text", Some("warn"));
    assert_eq!(logged.post("/v1/conversations", json!({"id": "c1", "queue": "q"})).await, 201);
    let line = logged.until("script line", |l| l.contains("deciding"));
    assert!(line.contains(" WARN rota::rules: rules.lua:5: deciding c1"), "{line}");
    // A second request is answered before its own script line is logged; by then the first
    // request's line would have been written too, were it let through.
    assert_eq!(logged.post("/v1/conversations", json!({"id": "c2", "queue": "q"})).await, 201);
    logged.until("second script line", |l| l.contains("deciding c2"));
    let lines = logged.stop();
    assert!(!lines.iter().any(|l| l.contains("rota::http")), "info is filtered out: {lines:#?}");
}
