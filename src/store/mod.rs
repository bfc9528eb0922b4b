//! Durable state: a journal of every step the engine took, behind a trait so back ends can change.
//!
//! The engine is deterministic given its inputs and clock readings, so its whole state — agents,
//! conversations with their attempts and traces, pending timers, policy memory in Lua — is
//! recorded as the steps that produced it: the scripts of each generation, each accepted input,
//! each batch of timers that fired, all with the clock reading they ran at. Replaying the journal
//! on a virtual clock rebuilds the state exactly; see [`crate::runtime`] for the replay and the
//! group commit.

mod postgres;
mod sqlite;

use serde::{Deserialize, Serialize};

use std::sync::Arc;

use crate::input::Input;
use crate::notification::{Attempt, Filter, LogEntry, Notification, Outcome};
use crate::outbox::{Message, Outbox};
use crate::script::Sources;
use crate::time::{Duration, Timestamp};

pub use postgres::{is_postgres, Lease, PostgresStore};
pub use sqlite::{Compacted, SqliteStore, StoreInfo, FORMAT, JOURNAL_FORMAT};

/// A snapshot of the engine as the store keeps it: the journal position whose state it holds
/// (every record up to and including it), the clock reading then, and its bytes.
#[derive(Clone, Debug)]
pub struct StoredSnapshot {
    pub position: u64,
    pub at: Timestamp,
    /// The snapshot format its bytes are written in (the engine's to judge).
    pub format: u32,
    pub bytes: Vec<u8>,
}

/// Where snapshots are written, on a connection of their own so the engine thread does not
/// wait for the write.
pub trait SnapshotSink: Send + 'static {
    /// Keeps `snapshot`, and only the newest `keep` snapshots (at least this one); then
    /// forgets the journal behind the oldest snapshot kept, except its last `audit` (on the
    /// snapshot's clock). Returns how many journal records were forgotten.
    fn save(&mut self, snapshot: &StoredSnapshot, keep: usize, audit: Duration) -> Result<u64, StoreError>;
}

/// One step of the engine.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "step", rename_all = "snake_case")]
pub enum JournalStep {
    /// A generation of scripts was loaded (every journal starts with one).
    Scripts { sources: Sources },
    /// An input the engine accepted (rejected inputs change nothing and are not kept).
    Input { input: Input },
    /// The timers due at this time fired.
    Timers,
}

/// A step with the clock reading it ran at.
#[derive(Clone, Debug, PartialEq)]
pub struct Record {
    pub at: Timestamp,
    pub step: JournalStep,
}

/// Where the journal and the outbox are kept.
pub trait Store: Send + 'static {
    /// Hands every record after journal position `after` to `each`, oldest first, as it is
    /// read: the journal is never held in memory whole. Stops at the first error, `each`'s or
    /// the store's.
    fn replay(&mut self, after: u64, each: &mut dyn FnMut(Record) -> Result<(), StoreError>) -> Result<(), StoreError>;

    /// The position of the last journal record (0 for none).
    fn position(&mut self) -> Result<u64, StoreError>;

    /// The newest snapshot, if one was taken.
    fn latest_snapshot(&mut self) -> Result<Option<StoredSnapshot>, StoreError>;

    /// A writer of snapshots for another thread.
    fn snapshots(&self) -> Result<Box<dyn SnapshotSink>, StoreError>;

    /// Every record, oldest first, in memory (for tools and tests; start-up streams them).
    fn records(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut out = Vec::new();
        self.replay(0, &mut |r| {
            out.push(r);
            Ok(())
        })?;
        Ok(out)
    }

    /// Appends records, and the outbox messages and notifications they produced, in one
    /// transaction that is durable when this returns.
    fn append(
        &mut self,
        records: &[Record],
        messages: &[Message],
        notifications: &[Arc<Notification>],
    ) -> Result<(), StoreError>;

    /// A second handle on the outbox, for the deliverers (on their own thread).
    fn outbox(&self) -> Result<Box<dyn Outbox>, StoreError>;

    /// A handle on the notifications and their delivery log, for the deliverer and the API.
    fn notifications(&self) -> Result<Box<dyn NotificationLog>, StoreError>;

    /// Whether this process may still write: an error (a lease lost to another node) stops
    /// the engine loop as a failed commit does.
    fn check(&mut self) -> Result<(), StoreError> {
        Ok(())
    }

    /// How often an idle engine loop should [`Store::check`]; `None`: never needed.
    fn check_every(&self) -> Option<std::time::Duration> {
        None
    }

    /// A reader of the nodes sharing this store and who owns it (`GET /v1/cluster`); `None`
    /// for a store only one process uses.
    fn cluster(&self) -> Result<Option<Box<dyn ClusterLog>>, StoreError> {
        Ok(None)
    }
}

/// The nodes of a store several processes share, as the store sees them now.
pub trait ClusterLog: Send + 'static {
    fn view(&mut self) -> Result<ClusterView, StoreError>;
}

/// Who shares a database and who owns it: `GET /v1/cluster`.
#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ClusterView {
    /// The node answering.
    pub node: String,
    /// Every node seen in the last three leases, owner first.
    pub nodes: Vec<ClusterNode>,
    /// Who owns what: one partition, every unit, for now.
    pub partitions: Vec<ClusterPartition>,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ClusterNode {
    pub node: String,
    /// Where it says it listens while it owns the database.
    pub address: Option<String>,
    pub owner: bool,
    /// How long ago it last renewed its lease or tried to take one.
    pub seen_ms_ago: i64,
}

#[derive(Clone, Debug, Serialize, schemars::JsonSchema)]
pub struct ClusterPartition {
    /// `all`: every organization unit.
    pub id: String,
    pub owner: String,
    pub epoch: i64,
    /// How long the owner's lease lasts unless renewed (negative: expired that long ago).
    pub lease_expires_in_ms: i64,
    /// How long ago it was last renewed or taken.
    pub lease_age_ms: i64,
}

/// Opens the store `db` names: a PostgreSQL database for a `postgres://` (or
/// `postgresql://`) URL, held under the default [`Lease`], else a SQLite file.
pub fn open(db: &std::path::Path) -> Result<Box<dyn Store>, StoreError> {
    open_as(db, &Lease::default())
}

/// [`open`], a PostgreSQL database held under `lease`.
pub fn open_as(db: &std::path::Path, lease: &Lease) -> Result<Box<dyn Store>, StoreError> {
    open_partition(db, lease, &crate::partition::Partition::default())
}

/// [`open_as`], one `partition` of several: on PostgreSQL its own schema and lease
/// ([`PostgresStore::open_partition`]); a SQLite file is always the only partition (the
/// configuration refuses more on one).
pub fn open_partition(
    db: &std::path::Path,
    lease: &Lease,
    partition: &crate::partition::Partition,
) -> Result<Box<dyn Store>, StoreError> {
    match db.to_str().filter(|d| is_postgres(d)) {
        Some(url) => Ok(Box::new(PostgresStore::open_partition(url, lease, partition)?)),
        None => Ok(Box::new(SqliteStore::open(db)?)),
    }
}

/// How `db` is shown in messages and logs: a PostgreSQL URL without its password.
pub fn shown(db: &std::path::Path) -> String {
    let text = db.display().to_string();
    if is_postgres(&text) {
        postgres::shown(&text)
    } else {
        text
    }
}

/// A store chosen at run time ([`open`]) is a store.
impl Store for Box<dyn Store> {
    fn replay(&mut self, after: u64, each: &mut dyn FnMut(Record) -> Result<(), StoreError>) -> Result<(), StoreError> {
        (**self).replay(after, each)
    }
    fn position(&mut self) -> Result<u64, StoreError> {
        (**self).position()
    }
    fn latest_snapshot(&mut self) -> Result<Option<StoredSnapshot>, StoreError> {
        (**self).latest_snapshot()
    }
    fn snapshots(&self) -> Result<Box<dyn SnapshotSink>, StoreError> {
        (**self).snapshots()
    }
    fn append(
        &mut self,
        records: &[Record],
        messages: &[Message],
        notifications: &[Arc<Notification>],
    ) -> Result<(), StoreError> {
        (**self).append(records, messages, notifications)
    }
    fn outbox(&self) -> Result<Box<dyn Outbox>, StoreError> {
        (**self).outbox()
    }
    fn notifications(&self) -> Result<Box<dyn NotificationLog>, StoreError> {
        (**self).notifications()
    }
    fn check(&mut self) -> Result<(), StoreError> {
        (**self).check()
    }
    fn check_every(&self) -> Option<std::time::Duration> {
        (**self).check_every()
    }
    fn cluster(&self) -> Result<Option<Box<dyn ClusterLog>>, StoreError> {
        (**self).cluster()
    }
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("{path} is in use by another rota process (it holds the lock on {lock}); stop it or pick another --db")]
    Locked { path: String, lock: String },
    /// The database or the file system failed; `source` is the error it gave, when there is one.
    #[error("storage failed: {message}")]
    Io { message: String, source: Option<Box<dyn std::error::Error + Send + Sync>> },
    #[error("journal record {seq} cannot be read: {why}")]
    Corrupt { seq: i64, why: String },
    #[error("replaying journal record {seq} failed: {why}")]
    Replay { seq: usize, why: String },
    /// The store was written by a newer rota.
    #[error("{path} is store format {found}, written by a newer rota; this rota reads formats up to {supported}: run the newer rota, or restore a copy of the older format")]
    Format { path: String, found: i64, supported: i64 },
    /// A journal record written in a way this rota does not know.
    #[error("journal record {seq} is written in journal format {found}; this rota reads up to {supported}, and will not guess at it")]
    RecordFormat { seq: i64, found: i64, supported: i64 },
    /// Another node holds the database's lease (see [`PostgresStore`]).
    #[error("{database} is owned by node {owner} (epoch {epoch}) for {for_ms} ms more unless it renews its lease; this node stands by")]
    Leased { database: String, owner: String, epoch: i64, for_ms: i64, address: Option<String> },
    /// The database's units are partitioned another way than asked (the partition count or
    /// the units placed by hand changed): their state is in other journal streams.
    #[error("{database} was written with the units partitioned as `{found}`, not `{wanted}`: a unit's state would be looked for in another partition's journal; keep the partitioning the database was made with")]
    Partitioning { database: String, found: String, wanted: String },
    /// This node's lease was lost: another node may own the database now, so nothing more is
    /// written (`now` is the epoch found, 0 when the heartbeat found the lease gone).
    #[error("this node lost {database}'s lease (epoch {epoch}; another node may have taken it over): nothing more is written, and the node steps down")]
    Fenced { database: String, epoch: i64, now: i64 },
    /// A row the engine writes already exists: the engine and the store disagree about what
    /// happened (a database put back from elsewhere, say). Nothing of the step was stored.
    #[error("{what} {id} is already in the store: the engine and the database disagree about what happened (was the database restored from another copy?); nothing of this step was stored")]
    Collision { what: &'static str, id: u64 },
}

/// The notifications in the store, as the deliverer and the API see them.
pub trait NotificationLog: Send + 'static {
    /// Pending notifications due by `now`, oldest first.
    fn due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LogEntry>, StoreError>;
    /// The earliest due time of a pending notification.
    fn next_due(&mut self) -> Result<Option<Timestamp>, StoreError>;
    /// Records an attempt: sent, to be retried at `retry_at`, or dead (`retry_at` is `None`).
    fn record(
        &mut self,
        id: u64,
        at: Timestamp,
        outcome: &Outcome,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError>;
    /// Puts a notification off until `due` without counting an attempt (a rate limit holds it).
    fn defer(&mut self, id: u64, at: Timestamp, why: &str, due: Timestamp) -> Result<(), StoreError>;
    /// Dead notifications whose `delivery_failed` event the engine has not taken yet.
    fn unreported(&mut self) -> Result<Vec<LogEntry>, StoreError>;
    fn reported(&mut self, id: u64) -> Result<(), StoreError>;
    fn list(&mut self, filter: &Filter) -> Result<Vec<LogEntry>, StoreError>;
    fn get(&mut self, id: u64) -> Result<Option<(LogEntry, Vec<Attempt>)>, StoreError>;
    /// Forgets sent notifications, and dead ones whose failure was reported, whose last
    /// attempt was before `before`, with their attempts; returns how many.
    fn prune(&mut self, before: Timestamp) -> Result<u64, StoreError>;
    /// Puts a dead notification back to pending, due now; false if it is not dead.
    fn revive(&mut self, id: u64, now: Timestamp) -> Result<bool, StoreError>;
    /// Notifications per status, and `rate_limited`: how many times a send was put off.
    fn counts(&mut self) -> Result<Vec<(String, u64)>, StoreError>;
    /// How many messages went to agent `recipient` of `unit` by `channel` since `since` (for
    /// rate limits; agent ids live per unit).
    fn sent_since(&mut self, unit: &str, recipient: &str, channel: &str, since: Timestamp) -> Result<u32, StoreError>;
}
