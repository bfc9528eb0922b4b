//! The embedded default store: the journal in one SQLite file (WAL, `synchronous=FULL`).

use std::fs::File;
use std::path::{Path, PathBuf};

use std::collections::BTreeMap;

use rusqlite::{params, Connection, OptionalExtension};

use super::{Record, Step, Store, StoreError};
use crate::outbox::{Message, Outbox, Pending};
use crate::time::Timestamp;

pub struct SqliteStore {
    conn: Connection,
    path: PathBuf,
    /// Held for the life of the store: a second process on the same file fails to take it.
    _lock: File,
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
        conn.execute_batch(
            "CREATE TABLE IF NOT EXISTS journal (
                 seq  INTEGER PRIMARY KEY,
                 at   INTEGER NOT NULL,  -- milliseconds since the Unix epoch
                 step TEXT NOT NULL      -- JSON of a store::Step
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
             CREATE INDEX IF NOT EXISTS outbox_channel ON outbox (channel, id);",
        )
        .map_err(sql)?;
        Ok(SqliteStore { conn, path: path.to_path_buf(), _lock: lock })
    }
}

/// The outbox side of a [`SqliteStore`]'s file, on its own connection.
pub struct SqliteOutbox {
    conn: Connection,
}

impl Store for SqliteStore {
    fn records(&mut self) -> Result<Vec<Record>, StoreError> {
        let mut stmt = self.conn.prepare("SELECT seq, at, step FROM journal ORDER BY seq").map_err(sql)?;
        let rows = stmt
            .query_map([], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, i64>(1)?, row.get::<_, String>(2)?)))
            .map_err(sql)?;
        let mut out = Vec::new();
        for row in rows {
            let (seq, at, step) = row.map_err(sql)?;
            let step: Step =
                serde_json::from_str(&step).map_err(|e| StoreError::Corrupt { seq, why: e.to_string() })?;
            out.push(Record { at: Timestamp(at), step });
        }
        Ok(out)
    }

    fn append(&mut self, records: &[Record], messages: &[Message]) -> Result<(), StoreError> {
        if records.is_empty() && messages.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO journal (at, step) VALUES (?1, ?2)").map_err(sql)?;
            for r in records {
                let step = serde_json::to_string(&r.step).map_err(|e| io(e.to_string()))?;
                insert.execute(params![r.at.0, step]).map_err(sql)?;
            }
            let mut insert =
                tx.prepare_cached("INSERT INTO outbox (channel, kind, body) VALUES (?1, ?2, ?3)").map_err(sql)?;
            for m in messages {
                insert.execute(params![m.channel, m.kind, m.body]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }

    fn outbox(&self) -> Result<Box<dyn Outbox>, StoreError> {
        let conn = Connection::open(&self.path).map_err(sql)?;
        // Losing a "delivered" mark in a power cut only sends that message again, so marks need
        // no fsync of their own; the messages themselves were written with the journal.
        conn.pragma_update(None, "synchronous", "NORMAL").map_err(sql)?;
        conn.busy_timeout(std::time::Duration::from_secs(5)).map_err(sql)?;
        Ok(Box::new(SqliteOutbox { conn }))
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
    StoreError::Io(e.to_string())
}

fn io(message: String) -> StoreError {
    StoreError::Io(message)
}
