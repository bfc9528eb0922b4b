//! An existing axum server that runs everything `rota serve` does from the one library call
//! (the engine on its SQLite file, email and webhook delivery, hot reload of the scripts) and
//! mounts rota's API beside its own routes, under its own authentication, with its own
//! `/healthz` and its own 404; and drives the same engine through the Rust handle: its
//! `/hello/{agent}` route signs an agent in.
//!
//! Run with `cargo run --example axum_mount`, then for example:
//!   curl -X POST localhost:7979/hello/anna
//!   curl -H 'X-User: supervisor' localhost:7979/v1/agents/anna

use std::sync::Arc;

use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rota::config::Config;
use rota::http::{api_router, ApiConfig, Auth, Scope};
use rota::runtime::Handle;
use rota::server::Server;
use rota::Input;

async fn hello(State(rota): State<Arc<Handle>>, Path(agent): Path<String>) -> String {
    match rota.submit(Input::SignIn { agent: agent.clone() }).await {
        Ok(updates) => format!("welcome, {agent} ({} update(s))\n", updates.len()),
        Err(e) => format!("cannot sign {agent} in: {e}\n"),
    }
}

/// The host's own authentication (here a header naming the user; a real host checks a session
/// or a JWT): it decides which of rota's organization units the caller may see.
async fn host_auth(mut req: Request, next: Next) -> Response {
    let scope = match req.headers().get("x-user").and_then(|v| v.to_str().ok()) {
        Some("supervisor") => Scope::units(["*"]),
        Some("north-lead") => Scope::units(["north"]),
        _ => return (StatusCode::UNAUTHORIZED, "who are you?\n").into_response(),
    };
    req.extensions_mut().insert(scope);
    next.run(req).await
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    // State and the messages rota sends (files here: no SMTP server is configured) in a folder
    // of its own; the scripts are the example ones, reloaded when they change.
    let state = std::env::temp_dir().join(format!("rota-axum-mount-{}", std::process::id()));
    let mut config = Config::default();
    config.db = state.join("rota.db");
    config.scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts").into();
    config.notify.outbox_dir = state.join("outbox");
    std::fs::create_dir_all(&state)?;
    let (reloaded, mut reloads) = tokio::sync::mpsc::unbounded_channel();
    let server = Server::start(&config, Server::builder(&config)?, reloaded)?;
    tokio::spawn(async move {
        while let Some(result) = reloads.recv().await {
            println!("scripts reloaded: {result:?}");
        }
    });
    let rota = server.handle().clone();

    let mut api = ApiConfig::default();
    api.auth = Auth::Host;
    let (api, closer) = api_router(rota.clone(), &api);
    let app = Router::new()
        .route("/hello/{agent}", post(hello))
        .with_state(rota.clone())
        .merge(api.layer(middleware::from_fn(host_auth)))
        .route("/healthz", get(|| async { "the host is fine\n" }))
        .fallback(|| async { (StatusCode::NOT_FOUND, "the host has no such page\n") });

    let listener = tokio::net::TcpListener::bind("127.0.0.1:7979").await?;
    println!("listening on http://{}", listener.local_addr()?);
    rota::http::serve(listener, app, async move {
        let _ = tokio::signal::ctrl_c().await;
        closer.close();
    })
    .await?;
    server.stop().await?;
    Ok(())
}
