//! rota: a host for contact-center rules written in Luau (a sandboxed, typed Lua).
//!
//! The Rust core owns agents, presence, queues, conversations, timers, delivery channels and
//! persistence; integrators' Luau scripts decide who gets a conversation next, who is alerted
//! when a call is missed, what those messages say and what each custom presence means. There
//! are three ways in, each built on the one before.
//!
//! # The engine: synchronous and deterministic
//!
//! [`Engine`] owns the state. Give it an [`Input`]; it answers with the [`Update`]s the input
//! caused. It never reads the wall clock: on a [`VirtualClock`] it is a function of its inputs,
//! which is what tests, simulations and scenario files use.
//!
//! ```
//! use std::sync::Arc;
//! use rota::{Engine, EngineConfig, Input, NewConversation, Timestamp, Update, VirtualClock};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let clock = VirtualClock::starting_at(Timestamp::parse_rfc3339("2026-03-02T09:00:00Z")?);
//! let scripts = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts");
//! let mut engine = Engine::new(EngineConfig::new(scripts), Arc::new(clock), Vec::new())?;
//! engine.handle(Input::SignIn { agent: "olga".into() })?;
//! engine.handle(Input::SetStatus { agent: "olga".into(), status: "callcenter".into() })?;
//! engine.handle(Input::StartWorkDay { agent: "olga".into() })?;
//!
//! let chat = NewConversation { id: "chat-1".into(), queue: "whatsapp_line".into(), ..Default::default() };
//! let updates = engine.handle(Input::Arrive(Box::new(chat)))?;
//! assert!(updates.iter().any(|u| matches!(&u.update, Update::Offered { agents, .. } if agents[0].as_ref() == "olga")));
//! # Ok(()) }
//! ```
//!
//! # The handle: the engine on its own thread, durable
//!
//! [`Builder`] starts the engine on a thread of its own and gives an async [`Handle`]. With a
//! [`store::Store`] (SQLite by default) every step is journaled before it is acknowledged and a
//! restart replays the journal; timers fire on their own; [`Handle::reload`] swaps in edited
//! scripts without losing work. [`Builder::policy`] adds Rust policies,
//! [`Builder::functions`] Lua functions of the program's own (a CRM lookup, say).
//!
//! ```
//! use rota::{Builder, Input};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let rota = Builder::new(concat!(env!("CARGO_MANIFEST_DIR"), "/scripts")).start()?;
//! let mut events = rota.subscribe();
//! rota.submit(Input::SignIn { agent: "olga".into() }).await?;
//! assert_eq!(events.recv().await?.agents[0].as_ref(), "olga");
//! rota.close().await?;
//! # Ok(()) }
//! ```
//!
//! # The server: everything `rota serve` runs, inside a program
//!
//! [`Server`] sets up, from one [`config::Config`], what `rota serve` does: the engine on its
//! SQLite store, email/SMS/webhook delivery, the webhook outbox and the scripts watcher. The
//! HTTP API is an axum router without a fallback ([`http::api_router`]) that merges into the
//! program's own app, under its own authentication if it likes ([`http::Auth::Host`]); the
//! operational routes are apart ([`http::ops_router`]).
//!
//! ```no_run
//! use rota::{config::Config, http, Server};
//!
//! # async fn serve() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = Config::default();
//! config.scripts = "scripts".into();
//! let (reloaded, _reloads) = tokio::sync::mpsc::unbounded_channel();
//! let server = Server::start(&config, Server::builder(&config)?, reloaded)?;
//! let (api, closer) = http::api_router(server.engines().clone(), &server.api_config());
//! let app = axum::Router::new().merge(api); // beside the program's own routes
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:7878").await?;
//! http::serve(listener, app, async move {
//!     let _ = tokio::signal::ctrl_c().await;
//!     closer.close();
//! })
//! .await?;
//! server.stop().await?;
//! # Ok(()) }
//! ```
//!
//! `examples/` has each of these whole (`embed.rs`, `axum_mount.rs`, `host_function.rs`).
//! ARCHITECTURE.md maps the modules; the domain values are at the root ([`agent`],
//! [`conversation`], [`time`], ...), and errors are [`error`]'s types.

// Every unsafe block says why it is sound, and an unsafe fn's body does not get a free pass.
#![warn(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]
// An item is `pub` only where an embedder can reach it; the rest is `pub(crate)`.
#![warn(unreachable_pub)]

pub mod config;
pub mod delivery;
pub mod domain;
pub mod editor;
pub mod engine;
pub mod error;
pub mod http;
pub mod input;
pub mod outbound;
pub mod outbox;
pub mod rules;
pub mod runtime;
pub mod scenario;
pub mod script;
pub mod server;
pub mod starter;
pub mod store;
pub mod testing;
pub mod views;
pub mod watch;
pub mod webhook;

// The domain's modules at the root, where embedders and the rest of the crate name them.
pub use domain::{
    agent, calendar, capacity, clock, conversation, decision, directory, hours, instance, kv, notification, offer,
    partition, policy, presence, roster, schedule, template, time, timer, unit, update, workflow,
};

pub use clock::{Clock, SystemClock, VirtualClock};
pub use conversation::NewConversation;
pub use decision::Decision;
pub use engine::{Engine, EngineConfig};
pub use error::{Diagnostic, EngineError, InputError, LoadError};
pub use input::Input;
pub use policy::{DecisionContext, Policy};
pub use runtime::{Builder, Handle};
pub use script::{HostFunctions, Limits, Sources};
pub use server::{Server, ServerError};
pub use time::{Duration, Timestamp};
pub use update::{Stamped, Update};
