//! An existing axum server that mounts rota's API beside its own routes, and drives the same
//! engine through the Rust handle: its own `/hello/{agent}` route signs an agent in.
//!
//! Run with `cargo run --example axum_mount`, then for example:
//!   curl -X POST localhost:7979/hello/anna
//!   curl -H 'Authorization: Bearer demo' localhost:7979/v1/agents/anna

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::routing::post;
use axum::Router;
use rota::http::{router, ApiConfig, Token};
use rota::runtime::{Builder, Handle};
use rota::Input;

async fn hello(State(rota): State<Arc<Handle>>, Path(agent): Path<String>) -> String {
    match rota.submit(Input::SignIn { agent: agent.clone() }).await {
        Ok(updates) => format!("welcome, {agent} ({} update(s))\n", updates.len()),
        Err(e) => format!("cannot sign {agent} in: {e}\n"),
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let rota = Arc::new(Builder::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")).start()?);
    let config =
        ApiConfig { tokens: vec![Token { token: "demo".into(), units: vec!["*".into()] }], ..Default::default() };
    let (api, closer) = router(rota.clone(), &config);
    let app = Router::new().route("/hello/{agent}", post(hello)).with_state(rota.clone()).merge(api);

    let listener = tokio::net::TcpListener::bind("127.0.0.1:7979").await?;
    println!("listening on http://{}", listener.local_addr()?);
    rota::http::serve(listener, app, async move {
        let _ = tokio::signal::ctrl_c().await;
        closer.close();
    })
    .await?;
    rota.close().await?;
    Ok(())
}
