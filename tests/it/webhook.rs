//! Webhooks over real sockets: signed, in order, filtered by unit, retried while the receiver
//! fails, and kept in the outbox across a restart while it is down.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::Router;
use common::{fixture, Scratch};
use hmac::{Hmac, KeyInit, Mac};
use rota::runtime::{Builder, Handle};
use rota::store::SqliteStore;
use rota::webhook::{Retry, Webhook};
use rota::Input;
use serde_json::Value;
use sha2::Sha256;
use tokio::sync::watch;

const SECRET: &str = "a-secret-of-some-length";

/// What the receiver was sent: (delivery id, event header, signature header, body).
type Seen = Arc<Mutex<Vec<(String, String, String, String)>>>;

#[derive(Clone, Default)]
struct Receiver {
    seen: Seen,
    /// Requests still to refuse with a 503.
    refuse: Arc<Mutex<usize>>,
}

async fn receive(State(r): State<Receiver>, headers: HeaderMap, body: String) -> StatusCode {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_string();
    r.seen.lock().unwrap().push((header("x-rota-delivery"), header("x-rota-event"), header("x-rota-signature"), body));
    let mut refuse = r.refuse.lock().unwrap();
    if *refuse > 0 {
        *refuse -= 1;
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    StatusCode::OK
}

async fn listen_on(listener: tokio::net::TcpListener, receiver: Receiver) {
    let app = Router::new().route("/hook", post(receive)).with_state(receiver);
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
}

fn hook(port: u16) -> Webhook {
    let mut hook = Webhook::new("crm", format!("http://127.0.0.1:{port}/hook"), SECRET);
    hook.units = vec!["north".into()];
    hook
}

fn retry() -> Retry {
    let mut retry = Retry::default();
    retry.first = Duration::from_millis(20);
    retry.max = Duration::from_millis(200);
    retry.timeout = Duration::from_secs(2);
    retry
}

/// Starts the engine on the two-unit fixture with the webhook's route, and its deliverer.
fn start(db: &std::path::Path, hook: &Webhook) -> (Arc<Handle>, watch::Sender<bool>, std::thread::JoinHandle<()>) {
    let handle =
        Builder::new(fixture("units")).store(SqliteStore::open(db).unwrap()).route(hook.route()).start().unwrap();
    let (stop, stopped) = watch::channel(false);
    let deliverer =
        rota::webhook::spawn(handle.take_deliveries().unwrap(), vec![hook.clone()], retry(), stopped).unwrap();
    (Arc::new(handle), stop, deliverer)
}

/// Waits until `done` holds, for at most 10 seconds.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn verify(signature: &str, body: &str) {
    let (t, v1) = signature.strip_prefix("t=").and_then(|s| s.split_once(",v1=")).expect("t=...,v1=...");
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(format!("{t}.{body}").as_bytes());
    let expected: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(v1, expected, "signature of {body}");
}

async fn sign_in(handle: &Handle, agent: &str) {
    handle.submit(Input::SignIn { agent: agent.into() }).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_signed_in_order_for_their_units_and_retried_until_taken() {
    let scratch = Scratch::new(&[]);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let receiver = Receiver { refuse: Arc::new(Mutex::new(2)), ..Receiver::default() };
    let port = listener.local_addr().unwrap().port();
    listen_on(listener, receiver.clone()).await;
    let (handle, stop, deliverer) = start(&scratch.0.join("rota.db"), &hook(port));

    sign_in(&handle, "sara").await; // south: not for this webhook
    sign_in(&handle, "nora").await;
    sign_in(&handle, "nils").await;
    let seen = receiver.seen.clone();
    until("two sign-ins delivered", || {
        seen.lock().unwrap().iter().filter(|(_, _, _, b)| b.contains("\"agent_presence\"")).count() >= 2 + 2
    })
    .await;
    until("an empty backlog", || handle.outbox_backlog()["crm"] == 0).await;

    let seen = seen.lock().unwrap().clone();
    // The first message was refused twice and sent again with the same id before any other.
    assert_eq!(seen[0].0, seen[1].0);
    assert_eq!(seen[1].0, seen[2].0);
    let delivered: Vec<&(String, String, String, String)> = seen[2..].iter().collect();
    let ids: Vec<i64> = delivered.iter().map(|d| d.0.parse().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "in order, each once: {ids:?}");
    let mut agents = Vec::new();
    for (_, event, signature, body) in &delivered {
        verify(signature, body);
        let json: Value = serde_json::from_str(body).unwrap();
        assert_eq!((json["type"].as_str(), json["unit"].as_str()), (Some(event.as_str()), Some("north")), "{body}");
        if json["type"] == "agent_presence" {
            agents.push(json["agent"].as_str().unwrap().to_string());
        }
    }
    assert_eq!(agents, ["nora", "nils"], "sara is in the south unit");

    let _ = stop.send(true);
    deliverer.join().unwrap();
    handle.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_wait_in_the_outbox_across_a_restart_while_the_receiver_is_down() {
    let scratch = Scratch::new(&[]);
    let db = scratch.0.join("rota.db");
    // A port nobody listens on yet.
    let port = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap().local_addr().unwrap().port();
    let (handle, stop, deliverer) = start(&db, &hook(port));
    sign_in(&handle, "nora").await;
    sign_in(&handle, "nils").await;
    let waiting = handle.outbox_backlog()["crm"];
    assert!(waiting >= 2, "every north update waits: {waiting}");
    let _ = stop.send(true);
    deliverer.join().unwrap();
    handle.close().await.unwrap();
    drop(handle);

    let receiver = Receiver::default();
    listen_on(tokio::net::TcpListener::bind(("127.0.0.1", port)).await.unwrap(), receiver.clone()).await;
    let (handle, stop, deliverer) = start(&db, &hook(port));
    assert_eq!(handle.outbox_backlog()["crm"], waiting, "the backlog came back from the file");
    let seen = receiver.seen.clone();
    until("the backlog delivered", || seen.lock().unwrap().len() as u64 == waiting).await;
    until("an empty backlog", || handle.outbox_backlog()["crm"] == 0).await;
    let bodies: Vec<String> = seen.lock().unwrap().iter().map(|s| s.3.clone()).collect();
    assert!(bodies[0].contains("\"nora\"") && bodies.iter().any(|b| b.contains("\"nils\"")), "{bodies:?}");
    let _ = stop.send(true);
    deliverer.join().unwrap();
    handle.close().await.unwrap();
}
