//! rota: a host for contact-center rules written in Luau (a sandboxed, typed Lua).
//!
//! The Rust core owns agents, presence, queues, conversations and timers; Luau
//! scripts decide who gets a conversation next. Start with [`engine::Engine`]
//! for a synchronous, deterministic core, or [`runtime::Builder`] for an async
//! handle that runs the engine on its own thread.

// Every unsafe block says why it is sound, and an unsafe fn's body does not get a free pass.
#![warn(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

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
    agent, calendar, clock, conversation, decision, directory, instance, notification, offer, policy, presence,
    schedule, template, time, timer, unit, update, workflow,
};

pub use clock::{Clock, SystemClock, VirtualClock};
pub use engine::{Engine, EngineConfig};
pub use error::{Diagnostic, EngineError, InputError, LoadError};
pub use input::Input;
pub use script::Sources;
pub use update::{Stamped, Update};
