//! The embedded default store: the journal in one SQLite file (WAL, `synchronous=FULL`).

use std::fs::File;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use std::sync::Arc;

use super::NotificationLog;
use super::{JournalStep, Record, SnapshotSink, Store, StoreError, StoredSnapshot};
use crate::notification::{Attempt, DeliveryStatus, Filter, LogEntry, Notification, Outcome};
use crate::outbox::{Message, Outbox, Pending};
use crate::time::{Duration, Timestamp};

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held for the life of the store: a second process on the same file fails to take it.
    _lock: File,
}

/// The store's layout, kept in the database's `user_version`: 1 has the journal, the outbox,
/// the notifications with their delivery attempts, and a format per journal record; 2 adds
/// snapshots of the engine. A store of an older format is migrated when opened; a newer one
/// is refused, naming both.
pub const FORMAT: i64 = 2;

/// How this rota writes a journal record's step (the `format` column); a record written in a
/// newer way is refused on replay rather than read into a different state.
pub const JOURNAL_FORMAT: i64 = 1;

/// What a store file holds, read without taking it over (`rota store info`).
#[derive(Debug)]
#[non_exhaustive]
pub struct StoreInfo {
    /// The file's format (`user_version`: 0 for a store written before formats were numbered).
    pub format: i64,
    pub journal_records: u64,
    /// The clock readings of the first and the last journal record.
    pub first: Option<Timestamp>,
    pub last: Option<Timestamp>,
    /// Rows per table.
    pub tables: Vec<(String, u64)>,
    pub file_bytes: u64,
    /// The newest snapshot: its journal position, when it was taken, its size in bytes.
    pub latest_snapshot: Option<(u64, Timestamp, u64)>,
    /// The position of the last journal record (more than `journal_records` once the journal
    /// behind the snapshots was forgotten).
    pub last_position: u64,
}

impl StoreInfo {
    /// Reads `path` read-only, beside a server that may have it open.
    pub fn read(path: &Path) -> Result<StoreInfo, StoreError> {
        if !path.exists() {
            return Err(io(format!("{} does not exist", path.display())));
        }
        let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY).map_err(sql)?;
        let format: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
        let mut tables = Vec::new();
        let has = |table: &str| {
            conn.query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = ?1", [table], |r| {
                r.get::<_, i64>(0)
            })
            .map(|n| n > 0)
            .map_err(sql)
        };
        for table in ["journal", "outbox", "notifications", "delivery_attempts", "snapshots"] {
            // A store of an older format has no snapshots yet.
            if table == "snapshots" && !has(table)? {
                continue;
            }
            let rows: i64 = conn.query_row(&format!("SELECT COUNT(*) FROM {table}"), [], |r| r.get(0)).map_err(sql)?;
            tables.push((table.to_string(), rows as u64));
        }
        let latest_snapshot = match has("snapshots")? {
            false => None,
            true => conn
                .query_row("SELECT seq, at, LENGTH(state) FROM snapshots ORDER BY seq DESC LIMIT 1", [], |r| {
                    Ok((r.get::<_, i64>(0)? as u64, Timestamp(r.get(1)?), r.get::<_, i64>(2)? as u64))
                })
                .optional()
                .map_err(sql)?,
        };
        let (first, last, last_position): (Option<i64>, Option<i64>, i64) = conn
            .query_row("SELECT MIN(at), MAX(at), COALESCE(MAX(seq), 0) FROM journal", [], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })
            .map_err(sql)?;
        let file_bytes = file_bytes(path);
        Ok(StoreInfo {
            format,
            journal_records: tables[0].1,
            first: first.map(Timestamp),
            last: last.map(Timestamp),
            tables,
            file_bytes,
            latest_snapshot,
            last_position: last_position as u64,
        })
    }
}

impl SqliteStore {
    /// Opens (or creates) the database at `path`, refusing if another process has it open.
    pub fn open(path: impl AsRef<Path>) -> Result<SqliteStore, StoreError> {
        let path = path.as_ref();
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io(format!("cannot create {}: {e}", dir.display())))?;
        }
        let lock_path = PathBuf::from(format!("{}.lock", path.display()));
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(|e| io(format!("cannot open {}: {e}", lock_path.display())))?;
        if lock.try_lock().is_err() {
            return Err(StoreError::Locked { path: path.display().to_string(), lock: lock_path.display().to_string() });
        }
        let conn = Connection::open(path).map_err(sql)?;
        conn.pragma_update(None, "journal_mode", "WAL").map_err(sql)?;
        conn.pragma_update(None, "synchronous", "FULL").map_err(sql)?;
        // A snapshot written on its own connection holds the write lock for a moment: the
        // journal waits for it rather than failing the step.
        conn.busy_timeout(std::time::Duration::from_secs(60)).map_err(sql)?;
        let found: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).map_err(sql)?;
        if found > FORMAT {
            return Err(StoreError::Format { path: path.display().to_string(), found, supported: FORMAT });
        }
        let tx = conn.unchecked_transaction().map_err(sql)?;
        // Format 0 (before formats were numbered) is format 1 without the journal's `format`
        // column; its records are format 1's.
        let has_journal: bool = tx
            .query_row("SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = 'journal'", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(sql)?
            > 0;
        if found == 0 && has_journal {
            tx.execute_batch("ALTER TABLE journal ADD COLUMN format INTEGER NOT NULL DEFAULT 1").map_err(sql)?;
        }
        tx.execute_batch(
            "CREATE TABLE IF NOT EXISTS journal (
                 seq    INTEGER PRIMARY KEY,
                 at     INTEGER NOT NULL,            -- milliseconds since the Unix epoch
                 step   TEXT NOT NULL,               -- JSON of a store::JournalStep
                 format INTEGER NOT NULL DEFAULT 1   -- how `step` is written (JOURNAL_FORMAT)
             );
             CREATE TABLE IF NOT EXISTS outbox (
                 id       INTEGER PRIMARY KEY,
                 channel  TEXT NOT NULL,
                 kind     TEXT NOT NULL,
                 body     TEXT NOT NULL,
                 attempts INTEGER NOT NULL DEFAULT 0,
                 due      INTEGER NOT NULL DEFAULT 0,  -- ms; not tried before
                 error    TEXT                         -- why the last attempt failed
             );
             CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);
             CREATE TABLE IF NOT EXISTS notifications (
                 id           INTEGER PRIMARY KEY,   -- the engine's notification id
                 unit         TEXT NOT NULL,
                 conversation TEXT NOT NULL,
                 recipient    TEXT NOT NULL,
                 channel      TEXT NOT NULL,
                 body         TEXT NOT NULL,         -- JSON of a notification::Notification
                 status       TEXT NOT NULL DEFAULT 'pending',
                 attempts     INTEGER NOT NULL DEFAULT 0,
                 due          INTEGER NOT NULL,      -- ms; not tried before
                 sent_at      INTEGER,
                 last_error   TEXT,
                 provider_id  TEXT,
                 reported     INTEGER NOT NULL DEFAULT 0  -- a dead one's delivery_failed was taken
             );
             CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, due);
             CREATE INDEX IF NOT EXISTS notifications_recipient ON notifications (recipient, sent_at);
             CREATE TABLE IF NOT EXISTS delivery_attempts (
                 notification INTEGER NOT NULL,
                 at           INTEGER NOT NULL,
                 outcome      TEXT NOT NULL,         -- sent, retry, dead
                 detail       TEXT NOT NULL
             );
             CREATE INDEX IF NOT EXISTS delivery_attempts_notification ON delivery_attempts (notification);
             CREATE TABLE IF NOT EXISTS snapshots (
                 seq    INTEGER PRIMARY KEY,   -- the last journal record whose state it holds
                 at     INTEGER NOT NULL,      -- ms: the engine's clock then
                 format INTEGER NOT NULL,      -- engine::SNAPSHOT_FORMAT it is written in
                 state  BLOB NOT NULL
             );",
        )
        .map_err(sql)?;
        tx.pragma_update(None, "user_version", FORMAT).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(SqliteStore { conn, path: path.to_path_buf(), _lock: lock })
    }
}

/// The outbox side of a [`SqliteStore`]'s file, on its own connection.
pub(super) struct SqliteOutbox {
    conn: Connection,
}

impl Store for SqliteStore {
    fn replay(&mut self, after: u64, each: &mut dyn FnMut(Record) -> Result<(), StoreError>) -> Result<(), StoreError> {
        let mut stmt =
            self.conn.prepare("SELECT seq, at, step, format FROM journal WHERE seq > ?1 ORDER BY seq").map_err(sql)?;
        let mut rows = stmt.query([after as i64]).map_err(sql)?;
        while let Some(row) = rows.next().map_err(sql)? {
            let (seq, at, format): (i64, i64, i64) =
                (row.get(0).map_err(sql)?, row.get(1).map_err(sql)?, row.get(3).map_err(sql)?);
            if format > JOURNAL_FORMAT {
                return Err(StoreError::RecordFormat { seq, found: format, supported: JOURNAL_FORMAT });
            }
            let step: JournalStep = serde_json::from_str(
                row.get_ref(2).map_err(sql)?.as_str().map_err(|e| StoreError::Corrupt { seq, why: e.to_string() })?,
            )
            .map_err(|e| StoreError::Corrupt { seq, why: e.to_string() })?;
            each(Record { at: Timestamp(at), step })?;
        }
        Ok(())
    }

    fn position(&mut self) -> Result<u64, StoreError> {
        let seq: i64 =
            self.conn.query_row("SELECT COALESCE(MAX(seq), 0) FROM journal", [], |r| r.get(0)).map_err(sql)?;
        Ok(seq as u64)
    }

    fn latest_snapshot(&mut self) -> Result<Option<StoredSnapshot>, StoreError> {
        self.conn
            .query_row("SELECT seq, at, format, state FROM snapshots ORDER BY seq DESC LIMIT 1", [], |r| {
                Ok(StoredSnapshot {
                    position: r.get::<_, i64>(0)? as u64,
                    at: Timestamp(r.get(1)?),
                    format: r.get(2)?,
                    bytes: r.get(3)?,
                })
            })
            .optional()
            .map_err(sql)
    }

    fn snapshots(&self) -> Result<Box<dyn SnapshotSink>, StoreError> {
        Ok(Box::new(SqliteSnapshots { conn: self.side_connection()? }))
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
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut insert =
                tx.prepare_cached("INSERT INTO journal (at, step, format) VALUES (?1, ?2, ?3)").map_err(sql)?;
            for r in records {
                let step = serde_json::to_string(&r.step).map_err(|e| io(e.to_string()))?;
                insert.execute(params![r.at.0, step, JOURNAL_FORMAT]).map_err(sql)?;
            }
            let mut insert =
                tx.prepare_cached("INSERT INTO outbox (channel, kind, body) VALUES (?1, ?2, ?3)").map_err(sql)?;
            for m in messages {
                insert.execute(params![m.channel, m.kind, m.body]).map_err(sql)?;
            }
            let mut insert = tx
                .prepare_cached(
                    "INSERT INTO notifications
                     (id, unit, conversation, recipient, channel, body, due, status, last_error, reported)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )
                .map_err(sql)?;
            for n in notifications {
                let body = serde_json::to_string(n.as_ref()).map_err(|e| io(e.to_string()))?;
                insert
                    // Due at once: `created` is on the engine's clock, which may be virtual.
                    // One that could not be made is dead at once; the engine raised its
                    // delivery_failed itself, so it counts as reported.
                    .execute(params![
                        n.id as i64,
                        n.unit,
                        n.conversation,
                        n.recipient,
                        n.channel.as_str(),
                        body,
                        0,
                        if n.undeliverable.is_some() { "dead" } else { "pending" },
                        n.undeliverable,
                        n.undeliverable.is_some() as i64,
                    ])
                    .map_err(|e| match e.sqlite_error_code() {
                        // Never dropped in silence: the step fails, and the engine stops.
                        Some(rusqlite::ErrorCode::ConstraintViolation) => {
                            StoreError::Collision { what: "notification", id: n.id }
                        }
                        _ => sql(e),
                    })?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn outbox(&self) -> Result<Box<dyn Outbox>, StoreError> {
        Ok(Box::new(SqliteOutbox { conn: self.side_connection()? }))
    }

    fn notifications(&self) -> Result<Box<dyn NotificationLog>, StoreError> {
        Ok(Box::new(SqliteNotifications { conn: self.side_connection()? }))
    }
}

impl SqliteStore {
    /// A connection for a deliverer or a reader on another thread.
    fn side_connection(&self) -> Result<Connection, StoreError> {
        let conn = Connection::open(&self.path).map_err(sql)?;
        // Losing a "delivered" mark in a power cut only sends that message again, so marks need
        // no fsync of their own; the messages themselves were written with the journal.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        Ok(conn)
    }
}

/// The snapshots of a [`SqliteStore`]'s file, on their own connection.
pub(super) struct SqliteSnapshots {
    conn: Connection,
}

impl SnapshotSink for SqliteSnapshots {
    fn save(&mut self, snapshot: &StoredSnapshot, keep: usize, audit: Duration) -> Result<u64, StoreError> {
        // One transaction: a snapshot is there whole or not at all, whenever the process dies.
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute(
            "INSERT OR REPLACE INTO snapshots (seq, at, format, state) VALUES (?1, ?2, ?3, ?4)",
            params![snapshot.position as i64, snapshot.at.0, snapshot.format, snapshot.bytes],
        )
        .map_err(sql)?;
        tx.execute(
            "DELETE FROM snapshots WHERE seq NOT IN (SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?1)",
            [keep.max(1) as i64],
        )
        .map_err(sql)?;
        let pruned = prune_journal(&tx, snapshot.at - audit)?;
        tx.commit().map_err(sql)?;
        Ok(pruned)
    }
}

/// What the store takes on disk: the file and its write-ahead log.
fn file_bytes(path: &Path) -> u64 {
    let size = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    size(path) + size(Path::new(&format!("{}-wal", path.display())))
}

/// Forgets the journal records before the oldest snapshot kept and before `before`. The
/// record a snapshot was taken at stays, so the journal's last position never goes back.
fn prune_journal(conn: &Connection, before: Timestamp) -> Result<u64, StoreError> {
    let n = conn
        .execute(
            "DELETE FROM journal WHERE at < ?1 AND seq < (SELECT COALESCE(MIN(seq), 0) FROM snapshots)",
            [before.0],
        )
        .map_err(sql)?;
    Ok(n as u64)
}

/// What [`SqliteStore::compact`] did.
#[derive(Debug)]
#[non_exhaustive]
pub struct Compacted {
    pub journal_records: u64,
    pub notifications: u64,
    pub bytes_before: u64,
    pub bytes_after: u64,
}

impl SqliteStore {
    /// Retention on demand (`rota store compact`): forgets the journal behind the oldest
    /// snapshot except its last `audit`, and done notifications from before
    /// `notifications_before`, then gives the space back to the file system (VACUUM).
    pub fn compact(
        &mut self,
        now: Timestamp,
        audit: Duration,
        notifications_before: Option<Timestamp>,
    ) -> Result<Compacted, StoreError> {
        let bytes_before = file_bytes(&self.path);
        let journal_records = prune_journal(&self.conn, now - audit)?;
        let notifications = match notifications_before {
            Some(before) => self.notifications()?.prune(before)?,
            None => 0,
        };
        self.conn.execute_batch("VACUUM; PRAGMA wal_checkpoint(TRUNCATE);").map_err(sql)?;
        Ok(Compacted { journal_records, notifications, bytes_before, bytes_after: file_bytes(&self.path) })
    }
}

/// The notifications of a [`SqliteStore`]'s file and their delivery log, on their own connection.
pub(super) struct SqliteNotifications {
    conn: Connection,
}

const ENTRY_COLUMNS: &str = "body, status, attempts, due, last_error, provider_id";

fn entry(row: &rusqlite::Row) -> rusqlite::Result<LogEntry> {
    let body: String = row.get(0)?;
    let notification: Notification = serde_json::from_str(&body)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, Box::new(e)))?;
    let status: String = row.get(1)?;
    Ok(LogEntry {
        notification,
        status: DeliveryStatus::parse(&status).unwrap_or(DeliveryStatus::Pending),
        attempts: row.get(2)?,
        due: Timestamp(row.get(3)?),
        last_error: row.get(4)?,
        provider_id: row.get(5)?,
    })
}

impl SqliteNotifications {
    fn entries(&mut self, sql_text: &str, args: &[&dyn rusqlite::ToSql]) -> Result<Vec<LogEntry>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql_text).map_err(sql)?;
        let rows = stmt.query_map(args, entry).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}

impl NotificationLog for SqliteNotifications {
    fn due(&mut self, now: Timestamp, limit: u32) -> Result<Vec<LogEntry>, StoreError> {
        let q = format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE status = 'pending' AND due <= ?1 ORDER BY due, id LIMIT ?2");
        self.entries(&q, &[&now.0, &limit])
    }

    fn next_due(&mut self) -> Result<Option<Timestamp>, StoreError> {
        self.conn
            .query_row("SELECT MIN(due) FROM notifications WHERE status = 'pending'", [], |r| {
                r.get::<_, Option<i64>>(0)
            })
            .map(|t| t.map(Timestamp))
            .map_err(sql)
    }

    fn record(
        &mut self,
        id: u64,
        at: Timestamp,
        outcome: &Outcome,
        retry_at: Option<Timestamp>,
    ) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        let (kind, detail) = match (outcome, retry_at) {
            (Outcome::Sent { provider_id, detail }, _) => {
                tx.execute(
                    "UPDATE notifications SET status = 'sent', attempts = attempts + 1, sent_at = ?2, provider_id = ?3, last_error = NULL WHERE id = ?1",
                    params![id as i64, at.0, provider_id],
                )
                .map_err(sql)?;
                ("sent", detail.clone())
            }
            (Outcome::Transient { error, .. } | Outcome::Permanent { error }, Some(due)) => {
                tx.execute(
                    "UPDATE notifications SET attempts = attempts + 1, due = ?2, last_error = ?3 WHERE id = ?1",
                    params![id as i64, due.0, error],
                )
                .map_err(sql)?;
                ("retry", format!("{error}; next attempt at {due}"))
            }
            (Outcome::Transient { error, .. } | Outcome::Permanent { error }, None) => {
                tx.execute(
                    "UPDATE notifications SET status = 'dead', attempts = attempts + 1, last_error = ?2, reported = 0 WHERE id = ?1",
                    params![id as i64, error],
                )
                .map_err(sql)?;
                ("dead", error.clone())
            }
        };
        tx.execute(
            "INSERT INTO delivery_attempts (notification, at, outcome, detail) VALUES (?1, ?2, ?3, ?4)",
            params![id as i64, at.0, kind, detail],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    fn defer(&mut self, id: u64, at: Timestamp, why: &str, due: Timestamp) -> Result<(), StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        tx.execute("UPDATE notifications SET due = ?2, last_error = ?3 WHERE id = ?1", params![id as i64, due.0, why])
            .map_err(sql)?;
        tx.execute(
            "INSERT INTO delivery_attempts (notification, at, outcome, detail) VALUES (?1, ?2, 'limited', ?3)",
            params![id as i64, at.0, format!("{why} until {due}")],
        )
        .map_err(sql)?;
        tx.commit().map_err(sql)
    }

    fn unreported(&mut self) -> Result<Vec<LogEntry>, StoreError> {
        let q = format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE status = 'dead' AND reported = 0 ORDER BY id");
        self.entries(&q, &[])
    }

    fn reported(&mut self, id: u64) -> Result<(), StoreError> {
        self.conn.execute("UPDATE notifications SET reported = 1 WHERE id = ?1", params![id as i64]).map_err(sql)?;
        Ok(())
    }

    fn list(&mut self, filter: &Filter) -> Result<Vec<LogEntry>, StoreError> {
        let q = format!(
            "SELECT {ENTRY_COLUMNS} FROM notifications
             WHERE (?1 IS NULL OR status = ?1) AND (?2 IS NULL OR recipient = ?2)
               AND (?3 IS NULL OR conversation = ?3) AND (?4 IS NULL OR unit = ?4)
               AND (?6 IS NULL OR id < ?6)
             ORDER BY id DESC LIMIT ?5"
        );
        let limit = filter.limit.unwrap_or(100).min(1001);
        let before = filter.before.map(|b| b as i64);
        self.entries(&q, &[&filter.status, &filter.recipient, &filter.conversation, &filter.unit, &limit, &before])
    }

    fn get(&mut self, id: u64) -> Result<Option<(LogEntry, Vec<Attempt>)>, StoreError> {
        let q = format!("SELECT {ENTRY_COLUMNS} FROM notifications WHERE id = ?1");
        let Some(e) = self.entries(&q, &[&(id as i64)])?.pop() else { return Ok(None) };
        let mut stmt = self
            .conn
            .prepare_cached("SELECT at, outcome, detail FROM delivery_attempts WHERE notification = ?1 ORDER BY rowid")
            .map_err(sql)?;
        let attempts = stmt
            .query_map(params![id as i64], |r| {
                Ok(Attempt { at: Timestamp(r.get(0)?), outcome: r.get(1)?, detail: r.get(2)? })
            })
            .map_err(sql)?
            .collect::<Result<_, _>>()
            .map_err(sql)?;
        Ok(Some((e, attempts)))
    }

    fn prune(&mut self, before: Timestamp) -> Result<u64, StoreError> {
        let tx = self.conn.transaction().map_err(sql)?;
        // Pending ones, and dead ones the engine has not heard of, are never pruned.
        tx.execute_batch("CREATE TEMP TABLE IF NOT EXISTS pruning (id INTEGER PRIMARY KEY); DELETE FROM pruning;")
            .map_err(sql)?;
        tx.execute(
            "INSERT INTO pruning (id)
             SELECT n.id FROM notifications n
             WHERE (n.status = 'sent' AND n.sent_at < ?1)
                OR (n.status = 'dead' AND n.reported = 1
                    AND COALESCE((SELECT MAX(a.at) FROM delivery_attempts a WHERE a.notification = n.id), n.due) < ?1)",
            params![before.0],
        )
        .map_err(sql)?;
        tx.execute("DELETE FROM delivery_attempts WHERE notification IN (SELECT id FROM pruning)", []).map_err(sql)?;
        let n = tx.execute("DELETE FROM notifications WHERE id IN (SELECT id FROM pruning)", []).map_err(sql)?;
        tx.commit().map_err(sql)?;
        Ok(n as u64)
    }

    fn revive(&mut self, id: u64, now: Timestamp) -> Result<bool, StoreError> {
        let n = self
            .conn
            .execute(
                "UPDATE notifications SET status = 'pending', due = ?2, attempts = 0 WHERE id = ?1 AND status = 'dead'",
                params![id as i64, now.0],
            )
            .map_err(sql)?;
        Ok(n == 1)
    }

    fn counts(&mut self) -> Result<Vec<(String, u64)>, StoreError> {
        let mut out: Vec<(String, u64)> = ["pending", "sent", "dead"].iter().map(|s| (s.to_string(), 0)).collect();
        let mut stmt =
            self.conn.prepare_cached("SELECT status, COUNT(*) FROM notifications GROUP BY status").map_err(sql)?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)? as u64))).map_err(sql)?;
        for row in rows {
            let (status, n) = row.map_err(sql)?;
            if let Some(slot) = out.iter_mut().find(|(s, _)| *s == status) {
                slot.1 = n;
            }
        }
        let limited: i64 = self
            .conn
            .query_row("SELECT COUNT(*) FROM delivery_attempts WHERE outcome = 'limited'", [], |r| r.get(0))
            .map_err(sql)?;
        out.push(("rate_limited".into(), limited as u64));
        Ok(out)
    }

    fn sent_since(&mut self, unit: &str, recipient: &str, channel: &str, since: Timestamp) -> Result<u32, StoreError> {
        self.conn
            .prepare_cached(
                "SELECT COUNT(*) FROM notifications
                 WHERE recipient = ?1 AND channel = ?2 AND sent_at >= ?3 AND unit = ?4",
            )
            .and_then(|mut s| s.query_row(params![recipient, channel, since.0, unit], |r| r.get(0)))
            .map_err(sql)
    }
}

impl Outbox for SqliteOutbox {
    fn head(&mut self, channel: &str) -> Result<Option<Pending>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT id, kind, body, attempts, due FROM outbox WHERE channel = ?1 ORDER BY id LIMIT 1")
            .map_err(sql)?;
        stmt.query_row(params![channel], |row| {
            Ok(Pending {
                id: row.get(0)?,
                message: Message { channel: channel.to_string(), kind: row.get(1)?, body: row.get(2)? },
                attempts: row.get(3)?,
                due: Timestamp(row.get(4)?),
            })
        })
        .optional()
        .map_err(sql)
    }

    fn delivered(&mut self, id: i64) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM outbox WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id]))
            .map_err(sql)?;
        Ok(())
    }

    fn retry(&mut self, id: i64, due: Timestamp, error: &str) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE outbox SET attempts = attempts + 1, due = ?2, error = ?3 WHERE id = ?1")
            .and_then(|mut s| s.execute(params![id, due.0, error]))
            .map_err(sql)?;
        Ok(())
    }

    fn backlog(&mut self) -> Result<BTreeMap<String, u64>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT channel, COUNT(*) FROM outbox GROUP BY channel").map_err(sql)?;
        let rows =
            stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)? as u64))).map_err(sql)?;
        rows.collect::<Result<_, _>>().map_err(sql)
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Io { message: e.to_string(), source: Some(Box::new(e)) }
}

fn io(message: String) -> StoreError {
    StoreError::Io { message, source: None }
}
