//! An existing tokio program runs everything `rota serve` does from the one library builder:
//! the engine on its store, its own axum app with rota's API merged under its own auth and
//! its own `/healthz`, email delivery (to files here, no SMTP configured) and hot reload.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::common::{self, Scratch};
use rota::config::Config;
use rota::server::Server;

const RULES: &str = r#"
agents.define { id = "ada", email = "ada@example.com" }
agents.define { id = "bo", email = "bo@example.com" }
templates.define { id = "missed", subject = "missed {{ conversation.id }}", email = "<p>{{ event.reason }}</p>" }
standby.define { id = "alert", on = "missed", notify = { agents = { "bo" } }, channels = "email", template = "missed" }
queues.define { id = "line", agents = { "ada" }, policy = "round_robin", options = { timeout = "TIMEOUT" }, standby = "alert" }
"#;

/// Waits for `done` with a deadline (no fixed sleeps).
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within 20 s");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_program_runs_the_whole_server_from_the_library() {
    let scripts = Scratch::new(&[("rules.lua", &RULES.replace("TIMEOUT", "1s"))]);
    let state = Scratch::new(&[]);
    let mut config = Config::default();
    config.db = state.0.join("rota.db");
    config.scripts = scripts.0.clone();
    config.notify.outbox_dir = state.0.join("outbox");
    config.http.reload_debounce_ms = 50;
    let (reloaded, mut reloads) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(&config, Server::builder(&config).unwrap(), reloaded).unwrap();

    // The host's app: its own /healthz, rota's API under the host's authentication.
    let mut api = server.api_config();
    api.auth = rota::http::Auth::Host;
    let (routes, _closer) = rota::http::api_router(server.handle().clone(), &api);
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "host" })).merge(routes.layer(
        axum::middleware::from_fn(|mut req: axum::extract::Request, next: axum::middleware::Next| async move {
            req.extensions_mut().insert(rota::http::Scope::units(["*"]));
            next.run(req).await
        }),
    ));
    let base = common::serve(app).await;
    let client = common::http_client();
    assert_eq!(client.get(format!("{base}/healthz")).send().await.unwrap().text().await.unwrap(), "host");
    for (method, path, body) in [
        ("POST", "/v1/agents/ada/sign_in", "{}"),
        ("PUT", "/v1/agents/ada/status", r#"{"status":"callcenter"}"#),
        ("POST", "/v1/conversations", r#"{"id":"c1","queue":"line"}"#),
    ] {
        let res = client
            .request(method.parse().unwrap(), format!("{base}{path}"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.text().await.unwrap());
    }

    // Ada lets it ring out: bo's email is delivered, by the server's own deliverer.
    let outbox = state.0.join("outbox");
    until("the missed-call email", || {
        std::fs::read_dir(&outbox)
            .map(|d| d.flatten().any(|e| e.path().extension().is_some_and(|x| x == "eml")))
            .unwrap_or(false)
    })
    .await;

    // The scripts change: the server's watcher reloads them.
    std::fs::write(scripts.0.join("rules.lua"), RULES.replace("TIMEOUT", "5s")).unwrap();
    let generation = tokio::time::timeout(Duration::from_secs(20), reloads.recv()).await.unwrap().unwrap();
    assert_eq!(generation.unwrap(), 2);

    let handle = Arc::clone(server.handle());
    server.stop().await.unwrap();
    assert!(handle.agent("ada").await.is_err(), "the engine has stopped");
}
