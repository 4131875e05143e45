//! Reading ranges of stored records back from a SQLite ledger file, for the what-if
//! repricing CLI, the savings report and the budget rebuild. Read-only (a separate connection, which WAL
//! lets run beside the writer) and blocking: async callers use `spawn_blocking`.
//! It does not aggregate or price anything; callers do.

use std::path::Path;

use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};
use rust_decimal::Decimal;

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

impl Filter {
    /// `[from, to)` in Unix milliseconds; open ends become the widest range.
    pub fn bounds_ms(&self) -> (i64, i64) {
        (
            self.from.map_or(i64::MIN, |t| t.timestamp_millis()),
            self.to.map_or(i64::MAX, |t| t.timestamp_millis()),
        )
    }
}

const SELECT_RANGE: &str = "SELECT * FROM requests
    WHERE created_at_ms >= ?1 AND created_at_ms < ?2
      AND (?3 IS NULL OR key_name = ?3)
      AND (?4 IS NULL OR logical_model = ?4)
    ORDER BY created_at_ms, request_id";

const SELECT_SPEND: &str = "SELECT key_name, created_at_ms, cost_usd FROM requests
    WHERE cost_usd IS NOT NULL AND created_at_ms >= ?1 AND created_at_ms < ?2";

fn open(path: &Path) -> Result<Connection, LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: std::sync::Arc::new(e),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_err("read"))?;
    Ok(conn)
}

/// `(key name, created_at_ms, cost)` of every priced record in `[from_ms, to_ms)`, for
/// rebuilding budgets. Blocking.
pub fn spend_rows(
    path: &Path,
    from_ms: i64,
    to_ms: i64,
) -> Result<Vec<(String, i64, Decimal)>, LedgerError> {
    let conn = open(path)?;
    let mut stmt = conn.prepare(SELECT_SPEND).map_err(sql_err("read"))?;
    let mut rows = stmt
        .query(rusqlite::params![from_ms, to_ms])
        .map_err(sql_err("read"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err("read"))? {
        let cost: String = row.get(2).map_err(sql_err("read"))?;
        let usd = Decimal::from_str(&cost).map_err(|_| LedgerError::InvalidValue {
            column: "cost_usd",
            value: cost,
        })?;
        out.push((
            row.get(0).map_err(sql_err("read"))?,
            row.get(1).map_err(sql_err("read"))?,
            usd,
        ));
    }
    Ok(out)
}

/// Every record matching `filter`, oldest first. Blocking.
pub fn records(path: &Path, filter: &Filter) -> Result<Vec<UsageRecord>, LedgerError> {
    let conn = open(path)?;
    let (from, to) = filter.bounds_ms();
    let mut stmt = conn.prepare(SELECT_RANGE).map_err(sql_err("read"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            from,
            to,
            filter.key_name,
            filter.logical_model
        ])
        .map_err(sql_err("read"))?;
    decode_all(&mut rows)
}

const SELECT_PAGE: &str = "SELECT * FROM requests
    WHERE created_at_ms >= ?1 AND created_at_ms < ?2
      AND (?3 IS NULL OR key_name = ?3) AND (?4 IS NULL OR logical_model = ?4)
      AND (?5 IS NULL OR created_at_ms < ?5 OR (created_at_ms = ?5 AND request_id < ?6))
    ORDER BY created_at_ms DESC, request_id DESC
    LIMIT ?7";

/// Up to `fetch` records matching `filter`, newest first, strictly before `cursor`
/// (`created_at_ms`, `request_id`) when given. Blocking.
pub fn page(
    path: &Path,
    filter: &Filter,
    cursor: Option<(i64, String)>,
    fetch: i64,
) -> Result<Vec<UsageRecord>, LedgerError> {
    let conn = open(path)?;
    let (from, to) = filter.bounds_ms();
    let (at, id) = cursor.map_or((None, None), |(at, id)| (Some(at), Some(id)));
    let mut stmt = conn.prepare(SELECT_PAGE).map_err(sql_err("read"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            from,
            to,
            filter.key_name,
            filter.logical_model,
            at,
            id,
            fetch
        ])
        .map_err(sql_err("read"))?;
    decode_all(&mut rows)
}

fn decode_all(rows: &mut rusqlite::Rows<'_>) -> Result<Vec<UsageRecord>, LedgerError> {
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err("read"))? {
        out.push(decode(row)?);
    }
    Ok(out)
}
