//! The embedded default store: the journal in one SQLite file (WAL, `synchronous=FULL`).

use std::fs::File;
use std::path::{Path, PathBuf};

use rusqlite::{params, Connection};

use super::{Record, Step, Store, StoreError};
use crate::time::Timestamp;

pub struct SqliteStore {
    conn: Connection,
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
             );",
        )
        .map_err(sql)?;
        Ok(SqliteStore { conn, _lock: lock })
    }
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

    fn append(&mut self, records: &[Record]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let tx = self.conn.transaction().map_err(sql)?;
        {
            let mut insert = tx.prepare_cached("INSERT INTO journal (at, step) VALUES (?1, ?2)").map_err(sql)?;
            for r in records {
                let step = serde_json::to_string(&r.step).map_err(|e| io(e.to_string()))?;
                insert.execute(params![r.at.0, step]).map_err(sql)?;
            }
        }
        tx.commit().map_err(sql)
    }
}

fn sql(e: rusqlite::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn io(message: String) -> StoreError {
    StoreError::Io(message)
}
