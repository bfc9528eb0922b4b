//! rota: a host for contact-center rules written in Luau (a sandboxed, typed Lua).
//!
//! The Rust core owns agents, presence, queues, conversations and timers; Luau
//! scripts decide who gets a conversation next. Start with [`engine::Engine`]
//! for a synchronous, deterministic core, or [`runtime::Builder`] for an async
//! handle that runs the engine on its own thread.

// Every unsafe block says why it is sound, and an unsafe fn's body does not get a free pass.
#![warn(clippy::undocumented_unsafe_blocks, unsafe_op_in_unsafe_fn)]

pub mod agent;
pub mod calendar;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod decision;
pub mod delivery;
pub mod directory;
pub mod editor;
pub mod engine;
pub mod error;
pub mod http;
pub mod input;
pub mod instance;
pub mod notification;
pub mod offer;
pub mod outbound;
pub mod outbox;
pub mod policy;
pub mod presence;
pub mod rules;
pub mod runtime;
pub mod scenario;
pub mod schedule;
pub mod script;
pub mod server;
pub mod starter;
pub mod store;
pub mod template;
pub mod testing;
pub mod time;
pub mod timer;
pub mod unit;
pub mod update;
pub mod views;
pub mod watch;
pub mod webhook;
pub mod workflow;

pub use clock::{Clock, SystemClock, VirtualClock};
pub use engine::{Engine, EngineConfig};
pub use error::{Diagnostic, EngineError, InputError, LoadError};
pub use input::Input;
pub use script::Sources;
pub use update::{Stamped, Update};
