//! The PostgreSQL store: the same journal, snapshots, outbox and notifications as the SQLite
//! file, in a database several rota processes can reach (`db = "postgres://…"`).
//!
//! The `postgres` client is synchronous but runs a Tokio runtime of its own inside, which
//! must not be entered from an async task (the API's handlers read the notification log). So
//! every connection lives on a thread of its own ([`Conn`]) and a call hands it a closure and
//! waits for the answer: callable from the engine thread, a deliverer or an async handler
//! alike, at the cost of one thread hand-over per call (the journal's group commit makes that
//! one per batch of steps).
//!
//! One node writes a database at a time, under a lease kept in the database itself
//! (`rota_lease`: the owner's node name, an epoch, and an expiry on the database's clock, so
//! the nodes' own clocks do not matter). The owner renews it on a heartbeat thread every third
//! of its length. Another node takes it only once it has expired, raising the epoch; every
//! write of the owner (a batch of the journal, a snapshot) checks in its own transaction that
//! the epoch is still its own and the lease unexpired, holding the lease row while it commits.
//! So an owner that was paused past its lease (a GC pause, SIGSTOP, a lost network) can never
//! write after another node took over: its next write is refused ([`StoreError::Fenced`]),
//! and the engine loop stops. A node that starts under its own name takes its lease over at
//! once (a restart after a crash); a clean stop gives the lease up.

use crate::partition::{Partition, Partitioning};
use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Instant;

use postgres::{Client, NoTls, Row};

use super::sqlite::{FORMAT, JOURNAL_FORMAT};
use super::{ClusterLog, ClusterNode, ClusterPartition, ClusterView};
use super::{JournalStep, NotificationLog, Record, SnapshotSink, Store, StoreError, StoredSnapshot};
use crate::notification::{Attempt, DeliveryStatus, Filter, LogEntry, Notification, Outcome};
use crate::outbox::{Message, Outbox, Pending};
use crate::time::{Duration, Timestamp};

/// How a node holds a database: under its name, for this long unless renewed.
#[derive(Clone, Debug)]
pub struct Lease {
    pub node: String,
    pub duration: std::time::Duration,
    /// Where this node listens, for the others to say (standbys name the owner's).
    pub address: Option<String>,
    /// How long a deliverer's claim on a message lasts: longer than any one delivery attempt,
    /// so a claim runs out only when its claimer died (or was paused that long).
    pub claim: std::time::Duration,
}

impl Default for Lease {
    /// The machine's host name, 10 seconds.
    fn default() -> Self {
        let host = std::fs::read_to_string("/proc/sys/kernel/hostname").unwrap_or_default();
        let node = Some(host.trim().to_string()).filter(|h| !h.is_empty()).unwrap_or_else(|| "rota".into());
        let (duration, claim) = (std::time::Duration::from_secs(10), std::time::Duration::from_secs(60));
        Lease { node, duration, address: None, claim }
    }
}

/// Whether `db` names a PostgreSQL database rather than a SQLite file.
pub fn is_postgres(db: &str) -> bool {
    db.starts_with("postgres://") || db.starts_with("postgresql://")
}

type Job = Box<dyn FnOnce(&mut Client) + Send>;

/// A connection on its own thread; see the module documentation.
struct Conn {
    jobs: mpsc::Sender<Job>,
}

impl Conn {
    /// A connection to `url`, working in `schema` (a partition's) when one is given.
    fn open(url: &str, schema: Option<&str>) -> Result<Conn, StoreError> {
        let (jobs, incoming) = mpsc::channel::<Job>();
        let (ready, opened) = mpsc::channel();
        let url = url.to_string();
        // Schema names are made here (`rota_p` and a number), never taken from outside.
        let enter = schema.map(|s| format!("CREATE SCHEMA IF NOT EXISTS {s}; SET search_path TO {s}"));
        std::thread::Builder::new()
            .name("rota-postgres".into())
            .spawn(move || {
                match Client::connect(&url, NoTls).and_then(|mut c| {
                    if let Some(enter) = &enter {
                        c.batch_execute(enter)?;
                    }
                    Ok(c)
                }) {
                    Ok(mut client) => {
                        let _ = ready.send(Ok(()));
                        for job in incoming {
                            job(&mut client);
                        }
                    }
                    Err(e) => {
                        let _ = ready.send(Err(pg(e)));
                    }
                }
            })
            .map_err(|e| io(format!("cannot start a PostgreSQL connection thread: {e}")))?;
        opened.recv().map_err(|_| io("the PostgreSQL connection thread ended".into()))??;
        Ok(Conn { jobs })
    }

    /// Runs `f` on the connection and returns what it returned.
    fn with<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<R, StoreError> + Send + 'static,
    ) -> Result<R, StoreError> {
        let (reply, answer) = mpsc::channel();
        self.jobs
            .send(Box::new(move |client| {
                let _ = reply.send(f(client));
            }))
            .map_err(|_| io("the PostgreSQL connection thread ended".into()))?;
        answer.recv().map_err(|_| io("the PostgreSQL connection thread ended during a call".into()))?
    }
}

pub struct PostgresStore {
    conn: Conn,
    url: String,
    /// The partition whose journal stream this is, and its schema (none: the only partition,
    /// in the database's own tables).
    partition: Partition,
    schema: Option<String>,
    /// The epoch of this node's lease; every write checks it.
    epoch: i64,
    held: Arc<Held>,
    lease: Lease,
}

/// What the heartbeat thread and the store share.
struct Held {
    /// The lease could not be renewed: another node may own the database now.
    lost: AtomicBool,
    /// The store is gone; the heartbeat stops.
    done: mpsc::Sender<()>,
}

impl PostgresStore {
    /// Connects to `url` under the default [`Lease`]; see [`PostgresStore::open_as`].
    pub fn open(url: &str) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_as(url, &Lease::default())
    }

    /// Connects to `url`, creates the tables if they are missing, and takes the database's
    /// lease for `lease.node`: refused ([`StoreError::Leased`]) while another node's lease
    /// lasts; taken at once from an earlier run of the same node.
    pub fn open_as(url: &str, lease: &Lease) -> Result<PostgresStore, StoreError> {
        PostgresStore::open_partition(url, lease, &Partition::default())
    }

    /// [`PostgresStore::open_as`] for one `partition` of several: its journal stream, snapshots,
    /// outbox and notifications in a schema of its own (`rota_p0`, ...), under a lease of its
    /// own. The database records how its units are partitioned, and refuses another way
    /// ([`StoreError::Partitioning`]): a unit's state would be looked for in the wrong stream.
    pub fn open_partition(url: &str, lease: &Lease, partition: &Partition) -> Result<PostgresStore, StoreError> {
        let schema = (partition.of.count() > 1).then(|| format!("rota_p{}", partition.index));
        let conn = Conn::open(url, schema.as_deref())?;
        let shown = shown(url);
        let (node, secs, address) = (lease.node.clone(), lease.duration.as_secs_f64(), lease.address.clone());
        let (wanted, partitioned) = (partition.of.fingerprint(), schema.is_some());
        let epoch = conn.with(move |c| {
            let mut tx = c.transaction().map_err(pg)?;
            tx.batch_execute(SCHEMA).map_err(pg)?;
            check_partitioning(&mut tx, &wanted, &shown)?;
            if partitioned {
                // Delivery ids are unique across partitions: receivers drop repeated ones.
                tx.batch_execute(
                    "CREATE SEQUENCE IF NOT EXISTS public.rota_outbox_ids;
                     ALTER TABLE outbox ALTER COLUMN id SET DEFAULT nextval('public.rota_outbox_ids');",
                )
                .map_err(pg)?;
            }
            let found: Option<i64> =
                tx.query_opt("SELECT value FROM rota_meta WHERE key = 'format'", &[]).map_err(pg)?.map(|r| r.get(0));
            match found {
                Some(found) if found > FORMAT => {
                    return Err(StoreError::Format { path: shown, found, supported: FORMAT });
                }
                Some(_) => {}
                None => {
                    tx.execute("INSERT INTO rota_meta (key, value) VALUES ('format', $1)", &[&FORMAT]).map_err(pg)?;
                }
            }
            // Every node, owner or standby, says it is there each time it tries.
            tx.execute(
                "INSERT INTO rota_nodes (node, address, seen_at) VALUES ($1, $2, clock_timestamp())
                 ON CONFLICT (node) DO UPDATE SET address = EXCLUDED.address, seen_at = EXCLUDED.seen_at",
                &[&node, &address],
            )
            .map_err(pg)?;
            let taken = tx
                .query_opt(
                    "INSERT INTO rota_lease (id, owner, epoch, expires_at, address)
                     VALUES (1, $1, 1, clock_timestamp() + make_interval(secs => $2), $3)
                     ON CONFLICT (id) DO UPDATE
                         SET owner = EXCLUDED.owner, epoch = rota_lease.epoch + 1, expires_at = EXCLUDED.expires_at,
                             address = EXCLUDED.address, renewed_at = clock_timestamp()
                         WHERE rota_lease.expires_at <= clock_timestamp() OR rota_lease.owner = EXCLUDED.owner
                     RETURNING epoch",
                    &[&node, &secs, &address],
                )
                .map_err(pg)?;
            let Some(taken) = taken else {
                let r = tx
                    .query_one(
                        "SELECT owner, epoch, GREATEST(0, EXTRACT(EPOCH FROM expires_at - clock_timestamp()) * 1000)::BIGINT,
                                address
                         FROM rota_lease WHERE id = 1",
                        &[],
                    )
                    .map_err(pg)?;
                let (owner, epoch, for_ms, address) = (r.get(0), r.get(1), r.get(2), r.get(3));
                // That this node was seen stands, though it takes nothing.
                tx.commit().map_err(pg)?;
                return Err(StoreError::Leased { database: shown, owner, epoch, for_ms, address });
            };
            tx.commit().map_err(pg)?;
            Ok(taken.get::<_, i64>(0))
        })?;
        let held = heartbeat(Conn::open(url, schema.as_deref())?, epoch, lease)?;
        let (url, partition, lease) = (url.to_string(), partition.clone(), lease.clone());
        Ok(PostgresStore { conn, url, partition, schema, epoch, held, lease })
    }

    fn side(&self) -> Result<Conn, StoreError> {
        Conn::open(&self.url, self.schema.as_deref())
    }

    fn claimer(&self) -> Claimer {
        Claimer { node: self.lease.node.clone(), ms: self.lease.claim.as_millis().min(i64::MAX as u128) as i64 }
    }

    /// The epoch of this node's lease.
    pub fn epoch(&self) -> i64 {
        self.epoch
    }
}

/// Records how the database's units are partitioned the first time, and refuses another way.
/// A database a rota without partitions wrote (its own tables hold a journal) is one partition.
fn check_partitioning(tx: &mut postgres::Transaction, wanted: &str, database: &str) -> Result<(), StoreError> {
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS public.rota_partitioning (id INTEGER PRIMARY KEY CHECK (id = 1), fingerprint TEXT NOT NULL)",
    )
    .map_err(pg)?;
    let found: Option<String> =
        tx.query_opt("SELECT fingerprint FROM public.rota_partitioning", &[]).map_err(pg)?.map(|r| r.get(0));
    let found = match found {
        Some(found) => found,
        None => {
            let unpartitioned: bool = tx
                .query_one(
                    "SELECT to_regclass('public.journal') IS NOT NULL AND to_regclass('public.rota_lease') IS NOT NULL",
                    &[],
                )
                .map_err(pg)?
                .get(0);
            let written = unpartitioned
                && tx.query_one("SELECT EXISTS (SELECT 1 FROM public.journal)", &[]).map_err(pg)?.get::<_, bool>(0);
            let found = match written {
                true => Partitioning::single().fingerprint(),
                false => wanted.to_string(),
            };
            // Another node may record it at the same moment: the first one's stands.
            tx.execute(
                "INSERT INTO public.rota_partitioning (id, fingerprint) VALUES (1, $1) ON CONFLICT (id) DO NOTHING",
                &[&found],
            )
            .map_err(pg)?;
            tx.query_one("SELECT fingerprint FROM public.rota_partitioning", &[]).map_err(pg)?.get(0)
        }
    };
    match found == wanted {
        true => Ok(()),
        false => Err(StoreError::Partitioning { database: database.to_string(), found, wanted: wanted.to_string() }),
    }
}

/// Renews the lease of `epoch` every third of `duration` on a thread of its own; marks it
/// lost when a renewal finds it taken or expired, or none succeeded for a whole `duration`.
fn heartbeat(conn: Conn, epoch: i64, lease: &Lease) -> Result<Arc<Held>, StoreError> {
    let (done, stop) = mpsc::channel();
    let held = Arc::new(Held { lost: AtomicBool::new(false), done });
    let watched = Arc::downgrade(&held);
    let (duration, secs, node) = (lease.duration, lease.duration.as_secs_f64(), lease.node.clone());
    std::thread::Builder::new()
        .name("rota-lease".into())
        .spawn(move || {
            let mut renewed = Instant::now();
            while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(duration / 3) {
                let Some(held) = watched.upgrade() else { return };
                let node = node.clone();
                let kept = conn.with(move |c| {
                    let n = c
                        .execute(
                            "UPDATE rota_lease
                             SET expires_at = clock_timestamp() + make_interval(secs => $2), renewed_at = clock_timestamp()
                             WHERE id = 1 AND epoch = $1 AND expires_at > clock_timestamp()",
                            &[&epoch, &secs],
                        )
                        .map_err(pg)?;
                    c.execute("UPDATE rota_nodes SET seen_at = clock_timestamp() WHERE node = $1", &[&node])
                        .map_err(pg)?;
                    Ok(n == 1)
                });
                match kept {
                    Ok(true) => renewed = Instant::now(),
                    Ok(false) => {
                        held.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    // The database could not be reached: the lease lasts what it lasts.
                    Err(_) if renewed.elapsed() >= duration => {
                        held.lost.store(true, Ordering::SeqCst);
                        return;
                    }
                    Err(_) => {}
                }
            }
        })
        .map_err(|e| io(format!("cannot start the lease heartbeat: {e}")))?;
    Ok(held)
}

/// The fence, as a query of `epoch` (`$1`): the lease row while it is still that epoch's and
/// unexpired, held (`FOR SHARE`) until the write that read it commits, so a takeover (which
/// updates the row) comes wholly before or after the write.
const LEASE_HELD: &str =
    "SELECT epoch FROM rota_lease WHERE id = 1 AND epoch = $1 AND expires_at > clock_timestamp() FOR SHARE";

/// In a write's transaction: refuses it unless the lease of `epoch` is still this node's.
fn fence(tx: &mut postgres::Transaction, epoch: i64, database: &str) -> Result<(), StoreError> {
    match tx.query_opt(LEASE_HELD, &[&epoch]).map_err(pg)? {
        Some(_) => Ok(()),
        None => Err(fenced(tx, epoch, database)),
    }
}

/// The refusal of a write under `epoch`, naming the epoch the lease has now.
fn fenced(c: &mut impl postgres::GenericClient, epoch: i64, database: &str) -> StoreError {
    match c.query_one("SELECT epoch FROM rota_lease WHERE id = 1", &[]) {
        Ok(row) => StoreError::Fenced { database: database.to_string(), epoch, now: row.get(0) },
        Err(e) => pg(e),
    }
}

impl Drop for PostgresStore {
    /// A clean stop gives the lease up, so a standby takes over at once.
    fn drop(&mut self) {
        let _ = self.held.done.send(());
        let epoch = self.epoch;
        let _ = self.conn.with(move |c| {
            c.execute("UPDATE rota_lease SET expires_at = clock_timestamp() WHERE id = 1 AND epoch = $1", &[&epoch])
                .map(drop)
                .map_err(pg)
        });
    }
}

/// The tables, as the SQLite store has them (milliseconds as BIGINT, JSON as TEXT).
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS rota_meta (key TEXT PRIMARY KEY, value BIGINT NOT NULL);
CREATE TABLE IF NOT EXISTS rota_lease (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    owner      TEXT NOT NULL,
    epoch      BIGINT NOT NULL,
    expires_at TIMESTAMPTZ NOT NULL,
    address    TEXT,
    renewed_at TIMESTAMPTZ NOT NULL DEFAULT clock_timestamp()
);
CREATE TABLE IF NOT EXISTS rota_nodes (
    node    TEXT PRIMARY KEY,
    address TEXT,
    seen_at TIMESTAMPTZ NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    seq    BIGSERIAL PRIMARY KEY,
    at     BIGINT NOT NULL,
    step   TEXT NOT NULL,
    format BIGINT NOT NULL DEFAULT 1
);
CREATE TABLE IF NOT EXISTS outbox (
    id       BIGSERIAL PRIMARY KEY,
    channel  TEXT NOT NULL,
    kind     TEXT NOT NULL,
    body     TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    due      BIGINT NOT NULL DEFAULT 0,
    error    TEXT,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ
);
CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);
CREATE TABLE IF NOT EXISTS notifications (
    id           BIGINT PRIMARY KEY,
    unit         TEXT NOT NULL,
    conversation TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    channel      TEXT NOT NULL,
    body         TEXT NOT NULL,
    status       TEXT NOT NULL DEFAULT 'pending',
    attempts     INTEGER NOT NULL DEFAULT 0,
    due          BIGINT NOT NULL,
    sent_at      BIGINT,
    last_error   TEXT,
    provider_id  TEXT,
    reported     BOOLEAN NOT NULL DEFAULT FALSE,
    claimed_by    TEXT,
    claimed_until TIMESTAMPTZ
);
-- Databases made before deliverers claimed messages.
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_by TEXT;
ALTER TABLE outbox ADD COLUMN IF NOT EXISTS claimed_until TIMESTAMPTZ;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS claimed_by TEXT;
ALTER TABLE notifications ADD COLUMN IF NOT EXISTS claimed_until TIMESTAMPTZ;
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, due);
CREATE INDEX IF NOT EXISTS notifications_recipient ON notifications (recipient, sent_at);
CREATE TABLE IF NOT EXISTS delivery_attempts (
    seq          BIGSERIAL PRIMARY KEY,
    notification BIGINT NOT NULL,
    at           BIGINT NOT NULL,
    outcome      TEXT NOT NULL,
    detail       TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_attempts_notification ON delivery_attempts (notification);
CREATE TABLE IF NOT EXISTS snapshots (
    seq    BIGINT PRIMARY KEY,
    at     BIGINT NOT NULL,
    format BIGINT NOT NULL,
    state  BYTEA NOT NULL
);
";

impl Store for PostgresStore {
    fn replay(&mut self, after: u64, each: &mut dyn FnMut(Record) -> Result<(), StoreError>) -> Result<(), StoreError> {
        // Read in pages on the connection's thread, handed over a page at a time, so the
        // journal is never in memory whole.
        const PAGE: i64 = 2000;
        let mut after = after as i64;
        loop {
            let rows: Vec<(i64, i64, String, i64)> = self.conn.with(move |c| {
                let rows = c
                    .query(
                        "SELECT seq, at, step, format FROM journal WHERE seq > $1 ORDER BY seq LIMIT $2",
                        &[&after, &PAGE],
                    )
                    .map_err(pg)?;
                Ok(rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect())
            })?;
            let done = (rows.len() as i64) < PAGE;
            for (seq, at, step, format) in rows {
                if format > JOURNAL_FORMAT {
                    return Err(StoreError::RecordFormat { seq, found: format, supported: JOURNAL_FORMAT });
                }
                let step: JournalStep =
                    serde_json::from_str(&step).map_err(|e| StoreError::Corrupt { seq, why: e.to_string() })?;
                each(Record { at: Timestamp(at), step })?;
                after = seq;
            }
            if done {
                return Ok(());
            }
        }
    }

    fn position(&mut self) -> Result<u64, StoreError> {
        self.conn.with(|c| {
            let seq: i64 = c.query_one("SELECT COALESCE(MAX(seq), 0) FROM journal", &[]).map_err(pg)?.get(0);
            Ok(seq as u64)
        })
    }

    fn latest_snapshot(&mut self) -> Result<Option<StoredSnapshot>, StoreError> {
        self.conn.with(|c| {
            let row = c
                .query_opt("SELECT seq, at, format, state FROM snapshots ORDER BY seq DESC LIMIT 1", &[])
                .map_err(pg)?;
            Ok(row.map(|r| StoredSnapshot {
                position: r.get::<_, i64>(0) as u64,
                at: Timestamp(r.get(1)),
                format: r.get::<_, i64>(2) as u32,
                bytes: r.get(3),
            }))
        })
    }

    fn snapshots(&self) -> Result<Box<dyn SnapshotSink>, StoreError> {
        Ok(Box::new(PostgresSnapshots { conn: self.side()?, epoch: self.epoch, database: shown(&self.url) }))
    }

    fn check(&mut self) -> Result<(), StoreError> {
        match self.held.lost.load(Ordering::SeqCst) {
            false => Ok(()),
            true => Err(StoreError::Fenced { database: shown(&self.url), epoch: self.epoch, now: 0 }),
        }
    }

    fn check_every(&self) -> Option<std::time::Duration> {
        Some(self.lease.duration / 3)
    }

    fn cluster(&self) -> Result<Option<Box<dyn ClusterLog>>, StoreError> {
        let (lease, partition) = (self.lease.clone(), self.partition.name());
        Ok(Some(Box::new(PostgresCluster { conn: self.side()?, lease, partition })))
    }

    fn append(
        &mut self,
        records: &[Record],
        messages: &[Message],
        notifications: &[Arc<Notification>],
    ) -> Result<(), StoreError> {
        if records.is_empty() && messages.is_empty() && notifications.is_empty() {
            return Ok(());
        }
        let journal: Vec<(i64, String)> = records
            .iter()
            .map(|r| Ok((r.at.0, serde_json::to_string(&r.step).map_err(|e| io(e.to_string()))?)))
            .collect::<Result<_, StoreError>>()?;
        let messages: Vec<Message> = messages.to_vec();
        let notifications: Vec<Arc<Notification>> = notifications.to_vec();
        self.check()?;
        let (epoch, database) = (self.epoch, shown(&self.url));
        self.conn.with(move |c| {
            let (ats, steps): (Vec<i64>, Vec<String>) = journal.into_iter().unzip();
            if messages.is_empty() && notifications.is_empty() {
                // Steps alone (most batches): one statement, atomic by itself, fenced by the
                // lease row it reads — the group commit is one round trip.
                let inserted = c
                    .execute(
                        &format!(
                            "WITH lease AS ({LEASE_HELD})
                             INSERT INTO journal (at, step, format)
                             SELECT a, s, $4 FROM UNNEST($2::BIGINT[], $3::TEXT[]) AS t (a, s), lease"
                        ),
                        &[&epoch, &ats, &steps, &JOURNAL_FORMAT],
                    )
                    .map_err(pg)?;
                return match inserted as usize == ats.len() {
                    true => Ok(()),
                    false => Err(fenced(c, epoch, &database)),
                };
            }
            let mut tx = c.transaction().map_err(pg)?;
            fence(&mut tx, epoch, &database)?;
            if !ats.is_empty() {
                // One statement for the whole batch of steps.
                tx.execute(
                    "INSERT INTO journal (at, step, format) SELECT a, s, $3 FROM UNNEST($1::BIGINT[], $2::TEXT[]) AS t (a, s)",
                    &[&ats, &steps, &JOURNAL_FORMAT],
                )
                .map_err(pg)?;
            }
            for m in &messages {
                tx.execute("INSERT INTO outbox (channel, kind, body) VALUES ($1, $2, $3)", &[&m.channel, &m.kind, &m.body])
                    .map_err(pg)?;
            }
            for n in &notifications {
                let body = serde_json::to_string(n.as_ref()).map_err(|e| io(e.to_string()))?;
                let status = if n.undeliverable.is_some() { "dead" } else { "pending" };
                let inserted = tx
                    .execute(
                        "INSERT INTO notifications
                         (id, unit, conversation, recipient, channel, body, due, status, last_error, reported)
                         VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $8, $9) ON CONFLICT (id) DO NOTHING",
                        &[
                            &(n.id as i64),
                            &n.unit,
                            &n.conversation,
                            &n.recipient,
                            &n.channel.as_str(),
                            &body,
                            &status,
                            &n.undeliverable,
                            &n.undeliverable.is_some(),
                        ],
                    )
                    .map_err(pg)?;
                // Never dropped in silence: the step fails, and the engine stops.
                if inserted == 0 {
                    return Err(StoreError::Collision { what: "notification", id: n.id });
                }
            }
            tx.commit().map_err(pg)
        })
    }

    fn outbox(&self) -> Result<Box<dyn Outbox>, StoreError> {
        Ok(Box::new(PostgresOutbox { conn: self.side()?, claimer: self.claimer() }))
    }

    fn notifications(&self) -> Result<Box<dyn NotificationLog>, StoreError> {
        Ok(Box::new(PostgresNotifications { conn: self.side()?, claimer: self.claimer() }))
    }
}

/// The nodes and the lease, read on their own connection.
struct PostgresCluster {
    conn: Conn,
    lease: Lease,
    /// The partition's name (`all`, `p0`, ...).
    partition: String,
}

impl ClusterLog for PostgresCluster {
    fn view(&mut self) -> Result<ClusterView, StoreError> {
        let (node, window) = (self.lease.node.clone(), 3.0 * self.lease.duration.as_secs_f64());
        let id = self.partition.clone();
        self.conn.with(move |c| {
            let ms = |t: &str| format!("(EXTRACT(EPOCH FROM {t}) * 1000)::BIGINT");
            let lease = c
                .query_one(
                    &format!(
                        "SELECT owner, epoch, {}, {} FROM rota_lease WHERE id = 1",
                        ms("expires_at - clock_timestamp()"),
                        ms("clock_timestamp() - renewed_at")
                    ),
                    &[],
                )
                .map_err(pg)?;
            let owner: String = lease.get(0);
            let nodes = c
                .query(
                    &format!(
                        "SELECT node, address, {} FROM rota_nodes
                         WHERE seen_at > clock_timestamp() - make_interval(secs => $1) ORDER BY node",
                        ms("clock_timestamp() - seen_at")
                    ),
                    &[&window],
                )
                .map_err(pg)?;
            let mut nodes: Vec<ClusterNode> = nodes
                .iter()
                .map(|r| ClusterNode {
                    owner: r.get::<_, String>(0) == owner,
                    node: r.get(0),
                    address: r.get(1),
                    seen_ms_ago: r.get(2),
                })
                .collect();
            nodes.sort_by_key(|n| !n.owner);
            let partition = ClusterPartition {
                id,
                owner,
                epoch: lease.get(1),
                lease_expires_in_ms: lease.get(2),
                lease_age_ms: lease.get(3),
            };
            Ok(ClusterView { node, nodes, partitions: vec![partition] })
        })
    }
}

/// The snapshots, on their own connection.
struct PostgresSnapshots {
    conn: Conn,
    epoch: i64,
    database: String,
}

impl SnapshotSink for PostgresSnapshots {
    fn save(&mut self, snapshot: &StoredSnapshot, keep: usize, audit: Duration) -> Result<u64, StoreError> {
        let s = snapshot.clone();
        let (epoch, database) = (self.epoch, self.database.clone());
        self.conn.with(move |c| {
            // One transaction: a snapshot is there whole or not at all, and only while this
            // node owns the database (a deposed owner must not prune the journal).
            let mut tx = c.transaction().map_err(pg)?;
            fence(&mut tx, epoch, &database)?;
            tx.execute(
                "INSERT INTO snapshots (seq, at, format, state) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (seq) DO UPDATE SET at = EXCLUDED.at, format = EXCLUDED.format, state = EXCLUDED.state",
                &[&(s.position as i64), &s.at.0, &(s.format as i64), &s.bytes],
            )
            .map_err(pg)?;
            tx.execute(
                "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT $1)",
                &[&(keep.max(1) as i64)],
            )
            .map_err(pg)?;
            // The record a snapshot was taken at stays, so the journal's position never goes back.
            let pruned = tx
                .execute(
                    "DELETE FROM journal WHERE at < $1 AND seq < (SELECT COALESCE(MIN(seq), 0) FROM snapshots)",
                    &[&(s.at - audit).0],
                )
                .map_err(pg)?;
            tx.commit().map_err(pg)?;
            Ok(pruned)
        })
    }
}

/// A deliverer's name on the messages it claims, and how long a claim lasts.
#[derive(Clone)]
struct Claimer {
    node: String,
    ms: i64,
}

/// A row nobody holds: never claimed, let go of, claimed by this node (a run of it that died:
/// as with the lease, its own name takes it back at once), or claimed by a node whose claim
/// ran out. `$CLAIMER` is the node's name.
const UNCLAIMED: &str = "(claimed_until IS NULL OR claimed_until <= clock_timestamp() OR claimed_by = $CLAIMER)";

/// Sets the claim columns of the rows a statement updates.
const CLAIM: &str = "claimed_by = $CLAIMER, claimed_until = clock_timestamp() + $MS::BIGINT * INTERVAL '1 millisecond'";

/// `sql` with the claim's placeholders numbered: `$CLAIMER` as `$node`, `$MS` as `$ms`.
fn claiming(sql: &str, node: usize, ms: usize) -> String {
    sql.replace("$CLAIMER", &format!("${node}")).replace("$MS", &format!("${ms}"))
}

/// The outbox, on its own connection.
struct PostgresOutbox {
    conn: Conn,
    claimer: Claimer,
}

impl Outbox for PostgresOutbox {
    fn claim(&mut self, id: i64) -> Result<crate::outbox::Claim, StoreError> {
        use crate::outbox::Claim;
        let claimer = self.claimer.clone();
        self.conn.with(move |c| {
            // SKIP LOCKED: a row another deliverer is claiming this instant is theirs, not
            // something to wait for.
            let q = claiming(
                &format!(
                    "UPDATE outbox SET {CLAIM} WHERE id = (SELECT id FROM outbox WHERE id = $1 AND {UNCLAIMED} \
                     FOR UPDATE SKIP LOCKED) RETURNING id"
                ),
                2,
                3,
            );
            if c.query_opt(&q, &[&id, &claimer.node, &claimer.ms]).map_err(pg)?.is_some() {
                return Ok(Claim::Held);
            }
            let held = c
                .query_opt(
                    "SELECT COALESCE(claimed_by, ''), GREATEST(0, CEIL(EXTRACT(EPOCH FROM claimed_until - clock_timestamp()) * 1000))::BIGINT \
                     FROM outbox WHERE id = $1",
                    &[&id],
                )
                .map_err(pg)?;
            Ok(match held {
                Some(r) => Claim::Taken { by: r.get(0), for_ms: r.get::<_, Option<i64>>(1).unwrap_or(0) as u64 },
                None => Claim::Taken { by: String::new(), for_ms: 0 },
            })
        })
    }

    fn head(&mut self, channel: &str) -> Result<Option<Pending>, StoreError> {
        let channel = channel.to_string();
        self.conn.with(move |c| {
            let row = c
                .query_opt(
                    "SELECT id, kind, body, attempts, due FROM outbox WHERE channel = $1 ORDER BY id LIMIT 1",
                    &[&channel],
                )
                .map_err(pg)?;
            Ok(row.map(|r| Pending {
                id: r.get(0),
                message: Message { channel: channel.clone(), kind: r.get(1), body: r.get(2) },
                attempts: r.get::<_, i32>(3) as u32,
                due: Timestamp(r.get(4)),
            }))
        })
    }

    fn delivered(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn.with(move |c| c.execute("DELETE FROM outbox WHERE id = $1", &[&id]).map(drop).map_err(pg))
    }

    fn retry(&mut self, id: i64, due: Timestamp, error: &str) -> Result<(), StoreError> {
        let error = error.to_string();
        self.conn.with(move |c| {
            c.execute(
                "UPDATE outbox SET attempts = attempts + 1, due = $2, error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                &[&id, &due.0, &error],
            )
            .map(drop)
            .map_err(pg)
        })
    }

    fn backlog(&mut self) -> Result<BTreeMap<String, u64>, StoreError> {
        self.conn.with(|c| {
            let rows = c.query("SELECT channel, COUNT(*) FROM outbox GROUP BY channel", &[]).map_err(pg)?;
            Ok(rows.iter().map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64)).collect())
        })
    }
}

/// The notifications and their delivery log, on their own connection.
struct PostgresNotifications {
    conn: Conn,
    claimer: Claimer,
}

const ENTRY_COLUMNS: &str = "body, status, attempts, due, last_error, provider_id";

fn entry(row: &Row) -> Result<LogEntry, StoreError> {
    let body: String = row.get(0);
    let notification: Notification = serde_json::from_str(&body).map_err(|e| io(format!("a notification: {e}")))?;
    let status: String = row.get(1);
    Ok(LogEntry {
        notification,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: row.get::<_, i32>(2) as u32,
        due: Timestamp(row.get(3)),
        last_error: row.get(4),
        provider_id: row.get(5),
    })
}

fn entries(rows: Vec<Row>) -> Result<Vec<LogEntry>, StoreError> {
    rows.iter().map(entry).collect()
}

impl NotificationLog for PostgresNotifications {
    /// Claims them: rows another deliverer holds, or is claiming this instant, are skipped.
    fn due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let claimer = self.claimer.clone();
        self.conn.with(move |c| {
            let q = claiming(
                &format!(
                    "UPDATE notifications SET {CLAIM} WHERE id IN (SELECT id FROM notifications \
                     WHERE status = 'pending' AND due <= $1 AND {UNCLAIMED} ORDER BY due, id LIMIT $2 FOR UPDATE SKIP LOCKED) \
                     RETURNING {ENTRY_COLUMNS}"
                ),
                3,
                4,
            );
            let mut due = entries(c.query(&q, &[&now.0, &(limit as i64), &claimer.node, &claimer.ms]).map_err(pg)?)?;
            // RETURNING keeps no order.
            due.sort_by_key(|e| (e.due, e.notification.id));
            Ok(due)
        })
    }

    /// Of the notifications nobody else holds: another deliverer's are theirs until their
    /// claim runs out, which a later look (at most `MAX_SLEEP` on) sees.
    fn next_due(&mut self) -> Result<Option<Timestamp>, StoreError> {
        let node = self.claimer.node.clone();
        self.conn.with(move |c| {
            let q =
                claiming(&format!("SELECT MIN(due) FROM notifications WHERE status = 'pending' AND {UNCLAIMED}"), 1, 0);
            let due: Option<i64> = c.query_one(&q, &[&node]).map_err(pg)?.get(0);
            Ok(due.map(Timestamp))
        })
    }

    fn record(
        &mut self,
        id: u64,
        at: Timestamp,
        outcome: &Outcome,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let outcome = outcome.clone();
        let id = id as i64;
        self.conn.with(move |c| {
            let mut tx = c.transaction().map_err(pg)?;
            let (kind, detail) = match (&outcome, retry_at) {
                (Outcome::Sent { provider_id, detail }, _) => {
                    tx.execute(
                        "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = $2, provider_id = $3, last_error = NULL, claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                        &[&id, &at.0, provider_id],
                    )
                    .map_err(pg)?;
                    ("sent", detail.clone())
                }
                (Outcome::Transient { error, .. } | Outcome::Permanent { error }, Some(due)) => {
                    tx.execute(
                        "UPDATE notifications SET attempts = attempts + 1, due = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                        &[&id, &due.0, error],
                    )
                    .map_err(pg)?;
                    ("retry", format!("{error}; next attempt at {due}"))
                }
                (Outcome::Transient { error, .. } | Outcome::Permanent { error }, None) => {
                    tx.execute(
                        "UPDATE notifications SET status = 'dead', attempts = attempts + 1, last_error = $2, reported = FALSE, claimed_by = NULL, claimed_until = NULL WHERE id = $1",
                        &[&id, error],
                    )
                    .map_err(pg)?;
                    ("dead", error.clone())
                }
            };
            tx.execute(
                "INSERT INTO delivery_attempts (notification, at, outcome, detail) VALUES ($1, $2, $3, $4)",
                &[&id, &at.0, &kind, &detail],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)
        })
    }

    fn defer(&mut self, id: u64, at: Timestamp, why: &str, due: Timestamp) -> Result<(), StoreError> {
        let (id, why) = (id as i64, why.to_string());
        self.conn.with(move |c| {
            let mut tx = c.transaction().map_err(pg)?;
            tx.execute("UPDATE notifications SET due = $2, last_error = $3, claimed_by = NULL, claimed_until = NULL WHERE id = $1", &[&id, &due.0, &why])
                .map_err(pg)?;
            tx.execute(
                "INSERT INTO delivery_attempts (notification, at, outcome, detail) VALUES ($1, $2, 'limited', $3)",
                &[&id, &at.0, &format!("{why} until {due}")],
            )
            .map_err(pg)?;
            tx.commit().map_err(pg)
        })
    }

    fn unreported(&mut self) -> Result<Vec<LogEntry>, StoreError> {
        self.conn.with(|c| {
            let q =
                format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE status = 'dead' AND NOT reported ORDER BY id");
            entries(c.query(&q, &[]).map_err(pg)?)
        })
    }

    fn reported(&mut self, id: u64) -> Result<(), StoreError> {
        self.conn.with(move |c| {
            c.execute("UPDATE notifications SET reported = TRUE WHERE id = $1", &[&(id as i64)]).map(drop).map_err(pg)
        })
    }

    fn list(&mut self, filter: &Filter) -> Result<Vec<LogEntry>, StoreError> {
        let f = (
            filter.status.clone(),
            filter.recipient.clone(),
            filter.conversation.clone(),
            filter.unit.clone(),
            filter.limit.unwrap_or(100).min(1001) as i64,
            filter.before.map(|b| b as i64),
        );
        self.conn.with(move |c| {
            let q = format!(
                "SELECT {ENTRY_COLUMNS} FROM notifications
                 WHERE ($1::TEXT IS NULL OR status = $1) AND ($2::TEXT IS NULL OR recipient = $2)
                   AND ($3::TEXT IS NULL OR conversation = $3) AND ($4::TEXT IS NULL OR unit = $4)
                   AND ($6::BIGINT IS NULL OR id < $6)
                 ORDER BY id DESC LIMIT $5"
            );
            entries(c.query(&q, &[&f.0, &f.1, &f.2, &f.3, &f.4, &f.5]).map_err(pg)?)
        })
    }

    fn get(&mut self, id: u64) -> Result<Option<(LogEntry, Vec<Attempt>)>, StoreError> {
        let id = id as i64;
        self.conn.with(move |c| {
            let q = format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE id = $1");
            let Some(row) = c.query_opt(&q, &[&id]).map_err(pg)? else { return Ok(None) };
            let attempts = c
                .query("SELECT at, outcome, detail FROM delivery_attempts WHERE notification = $1 ORDER BY seq", &[&id])
                .map_err(pg)?
                .iter()
                .map(|r| Attempt { at: Timestamp(r.get(0)), outcome: r.get(1), detail: r.get(2) })
                .collect();
            Ok(Some((entry(&row)?, attempts)))
        })
    }

    fn prune(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        self.conn.with(move |c| {
            // Pending ones, and dead ones the engine has not heard of, are never pruned. The
            // statements of one query see the same rows, so `doomed` is chosen once.
            let n = c
                .execute(
                    "WITH doomed AS (
                         SELECT n.id FROM notifications n
                         WHERE (n.status = 'sent' AND n.sent_at < $1)
                            OR (n.status = 'dead' AND n.reported
                                AND COALESCE((SELECT MAX(a.at) FROM delivery_attempts a WHERE a.notification = n.id), n.due) < $1)
                     ), attempts AS (
                         DELETE FROM delivery_attempts WHERE notification IN (SELECT id FROM doomed)
                     )
                     DELETE FROM notifications WHERE id IN (SELECT id FROM doomed)",
                    &[&before.0],
                )
                .map_err(pg)?;
            Ok(n)
        })
    }

    fn revive(&mut self, id: u64, now: Timestamp) -> Result<bool, StoreError> {
        self.conn.with(move |c| {
            let n = c
                .execute(
                    "UPDATE notifications SET status = 'pending', due = $2, attempts = 0, claimed_by = NULL, claimed_until = NULL WHERE id = $1 AND status = 'dead'",
                    &[&(id as i64), &now.0],
                )
                .map_err(pg)?;
            Ok(n == 1)
        })
    }

    fn counts(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        self.conn.with(|c| {
            let mut out: Vec<(String, u64)> = ["pending", "sent", "dead"].iter().map(|s| (s.to_string(), 0)).collect();
            for r in c.query("SELECT status, COUNT(*) FROM notifications GROUP BY status", &[]).map_err(pg)? {
                let status: String = r.get(0);
                if let Some(slot) = out.iter_mut().find(|(s, _)| *s == status) {
                    slot.1 = r.get::<_, i64>(1) as u64;
                }
            }
            let limited: i64 = c
                .query_one("SELECT COUNT(*) FROM delivery_attempts WHERE outcome = 'limited'", &[])
                .map_err(pg)?
                .get(0);
            out.push(("rate_limited".into(), limited as u64));
            Ok(out)
        })
    }

    fn sent_since(&mut self, unit: &str, recipient: &str, channel: &str, since: Timestamp) -> Result<u32, StoreError> {
        let args = (unit.to_string(), recipient.to_string(), channel.to_string());
        self.conn.with(move |c| {
            let n: i64 = c
                .query_one(
                    "SELECT COUNT(*) FROM notifications
                     WHERE recipient = $1 AND channel = $2 AND sent_at >= $3 AND unit = $4",
                    &[&args.1, &args.2, &since.0, &args.0],
                )
                .map_err(pg)?
                .get(0);
            Ok(n as u32)
        })
    }
}

/// The database's address without its password, for messages and logs.
pub(super) fn shown(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let credentials = &url[scheme + 3..at];
            match credentials.split_once(':') {
                Some((user, _)) => format!("{}{user}:***{}", &url[..scheme + 3], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

fn pg(e: postgres::Error) -> StoreError {
    StoreError::Io { message: e.to_string(), source: Some(Box::new(e)) }
}

fn io(message: String) -> StoreError {
    StoreError::Io { message, source: None }
}
