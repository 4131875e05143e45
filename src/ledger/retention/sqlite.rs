//! Retention's SQLite statements: a read-write connection of its own (the file is in WAL
//! mode, so readers are never blocked, and the writer waits at most one batch for the
//! lock) and one batched delete. Blocking: called on tokio's blocking pool.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::ledger::sqlite::sql_err;
use crate::ledger::LedgerError;

/// How long a delete waits for the writer's lock before the run fails (and is retried).
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

// By rowid through the created_at_ms index: each statement touches at most `limit` rows
// and is its own short transaction.
const DELETE_BATCH: &str = "DELETE FROM requests WHERE rowid IN
    (SELECT rowid FROM requests WHERE created_at_ms < ?1 LIMIT ?2)";

/// Open the ledger file for deleting (never creating it: the writer did at start).
pub(super) fn open(path: &Path) -> Result<Connection, LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: Arc::new(e),
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)
        .map_err(sql_err("retention"))?;
    Ok(conn)
}

/// Delete up to `limit` records created before `cutoff_ms`; returns how many went.
pub(super) fn delete_batch(
    conn: &Connection,
    cutoff_ms: i64,
    limit: u64,
) -> Result<u64, LedgerError> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let mut stmt = conn
        .prepare_cached(DELETE_BATCH)
        .map_err(sql_err("retention"))?;
    let n = stmt
        .execute(rusqlite::params![cutoff_ms, limit])
        .map_err(sql_err("retention"))?;
    Ok(u64::try_from(n).unwrap_or(u64::MAX))
}
