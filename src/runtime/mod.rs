//! The embedding API: a builder that starts an engine loop on its own thread, and an async handle.
//!
//! The Lua VM cannot move between threads, so the engine lives on one thread for its
//! whole life; the [`Handle`] sends it commands and awaits the replies.
//!
//! With a [`Store`](crate::store::Store), the loop is durable: at start it replays the journal (see [`crate::store`])
//! on a virtual clock, then switches to the real one, so timers that fell due while the process
//! was down fire at once and the others keep their times. While running it takes every command
//! already queued as one batch, journals the steps the batch took in one transaction (group
//! commit), and only then replies and publishes updates: nothing is acknowledged before it is
//! durable.
//!
//! - `builder`: [`Builder`], what an engine starts with, and starting it;
//! - `handle`: [`Handle`], the async side, and the commands it sends the loop;
//! - `recovery`: building the engine at start, from the scripts or by replaying the journal;
//! - `commit`: the engine thread's loop, group commit, and publishing after it;
//! - `snapshots`: when the loop takes a snapshot, and the thread that writes it;
//! - `history`: the recent events, numbered, for a client resuming its event stream;
//! - `partitioned`: [`Partitioned`], an engine per partition of the organization units, reloaded as one.

mod builder;
mod commit;
mod handle;
mod history;
mod partitioned;
mod recovery;
mod snapshots;

pub use builder::{Builder, LogSink};
pub use handle::{BatchResults, Deliveries, Guard, Handle, Notifications};
pub use history::{EventHistory, Since, KEEP_EVENTS};
pub use partitioned::Partitioned;
pub use snapshots::SnapshotPolicy;
