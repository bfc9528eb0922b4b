//! The domain: the values the engine works with (agents, conversations, offers, decisions,
//! timers, presences, schedules, templates, workflows, notifications, time), with no arrow back
//! to the engine, the scripts, the store, the runtime or the HTTP layer (a test checks the
//! imports). Each module is re-exported at the crate root (`rota::agent`, ...).

pub mod agent;
pub mod calendar;
pub mod capacity;
pub mod clock;
pub mod conversation;
pub mod decision;
pub mod directory;
pub mod hours;
pub mod instance;
pub mod kv;
pub mod notification;
pub mod offer;
pub mod partition;
pub mod policy;
pub mod presence;
pub mod roster;
pub mod schedule;
pub mod template;
pub mod time;
pub mod timer;
pub mod unit;
pub mod update;
pub mod workflow;
