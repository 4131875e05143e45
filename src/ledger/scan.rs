//! Reading ranges of stored records back from a SQLite ledger file, for the what-if
//! repricing CLI and the savings report. Read-only (a separate connection, which WAL
//! lets run beside the writer) and blocking: async callers use `spawn_blocking`.
//! It does not aggregate or price anything; callers do.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::sqlite::{decode, sql_err};
use super::{LedgerError, UsageRecord};

/// Which records to read: `[from, to)` by start time, optionally one key and one model.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive lower bound; `None` = from the first record.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound; `None` = to the last record.
    pub to: Option<DateTime<Utc>>,
    /// Only this key's records; `None` = every key.
    pub key_name: Option<String>,
    /// Only this logical model's records; `None` = every model.
    pub logical_model: Option<String>,
}

const SELECT_RANGE: &str = "SELECT * FROM requests
    WHERE created_at_ms >= ?1 AND created_at_ms < ?2
      AND (?3 IS NULL OR key_name = ?3)
      AND (?4 IS NULL OR logical_model = ?4)
    ORDER BY created_at_ms, request_id";

/// Every record matching `filter`, oldest first. Blocking.
pub fn records(path: &Path, filter: &Filter) -> Result<Vec<UsageRecord>, LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: std::sync::Arc::new(e),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_err("read"))?;
    let from = filter.from.map_or(i64::MIN, |t| t.timestamp_millis());
    let to = filter.to.map_or(i64::MAX, |t| t.timestamp_millis());
    let mut stmt = conn.prepare(SELECT_RANGE).map_err(sql_err("read"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            from,
            to,
            filter.key_name,
            filter.logical_model
        ])
        .map_err(sql_err("read"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err("read"))? {
        out.push(decode(row)?);
    }
    Ok(out)
}
