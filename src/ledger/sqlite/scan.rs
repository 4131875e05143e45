//! Reading stored records back from a SQLite ledger file without holding them all: the
//! records of a time range streamed one at a time into a fold (the ragged edges of a
//! usage query, `tollgate reprice`), and `/admin/requests`' pages. Read-only (a separate
//! connection, which WAL lets run beside the writer) and blocking: async callers use
//! `spawn_blocking`. It does not aggregate or price anything; callers do.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use super::{decode, sql_err, MIGRATIONS};
use crate::ledger::filter::{page_sql, Filter, PageParams, PageValue, Range};
use crate::ledger::{LedgerError, UsageRecord};

const SELECT_RANGE: &str = "SELECT * FROM requests
    WHERE created_at_ms >= ?1 AND created_at_ms < ?2
      AND (?3 IS NULL OR key_name = ?3)
      AND (?4 IS NULL OR logical_model = ?4)
    ORDER BY created_at_ms, request_id";

/// A read-only connection to the ledger file, refusing a file the gateway has not
/// migrated to rollups yet, or not finished rolling up (its sums would be short).
pub fn open(path: &Path) -> Result<Connection, LedgerError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(|e| LedgerError::Open {
        path: path.to_path_buf(),
        source: std::sync::Arc::new(e),
    })?;
    conn.busy_timeout(std::time::Duration::from_secs(5))
        .map_err(sql_err("read"))?;
    let found: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql_err("read"))?;
    let upgrade = || LedgerError::NeedsUpgrade {
        path: path.to_path_buf(),
        found,
        needed: i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX),
    };
    if found < crate::ledger::rollup::introduced_by(MIGRATIONS, super::rollups::ROLLUPS) {
        return Err(upgrade());
    }
    // A backfill that has not finished (the gateway stopped during its upgrade) would
    // make the rollups answer short.
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM rollup_backfill", [], |r| r.get(0))
        .map_err(sql_err("read"))?;
    if pending > 0 {
        return Err(upgrade());
    }
    Ok(conn)
}

/// Feed every record in `range` to `f`, oldest first, one at a time. Blocking.
pub fn for_each(
    conn: &Connection,
    range: &Range<'_>,
    mut f: impl FnMut(UsageRecord),
) -> Result<(), LedgerError> {
    let mut stmt = conn.prepare_cached(SELECT_RANGE).map_err(sql_err("read"))?;
    let mut rows = stmt
        .query(rusqlite::params![
            range.from_ms,
            range.to_ms,
            range.key_name,
            range.logical_model
        ])
        .map_err(sql_err("read"))?;
    while let Some(row) = rows.next().map_err(sql_err("read"))? {
        f(decode(row)?);
    }
    Ok(())
}

/// Fold every record matching `filter` into `acc`, oldest first. Blocking.
pub fn fold<A>(
    path: &Path,
    filter: &Filter,
    mut acc: A,
    mut f: impl FnMut(&mut A, UsageRecord),
) -> Result<A, LedgerError> {
    let conn = open(path)?;
    for_each(&conn, &filter.range(), |r| f(&mut acc, r))?;
    Ok(acc)
}

/// Up to `fetch` records matching `filter`, newest first, strictly before `cursor`
/// (`created_at_ms`, `request_id`) when given. Blocking.
pub fn page(
    path: &Path,
    filter: &Filter,
    cursor: Option<(i64, String)>,
    fetch: i64,
) -> Result<Vec<UsageRecord>, LedgerError> {
    let conn = open(path)?;
    let p = PageParams::of(filter, cursor.as_ref(), fetch);
    let sql = page_sql("SELECT *", &p, |n| format!("?{n}"));
    let mut stmt = conn.prepare_cached(&sql).map_err(sql_err("read"))?;
    let values: Vec<&dyn rusqlite::ToSql> = p
        .values()
        .into_iter()
        .map(|v| -> &dyn rusqlite::ToSql {
            match v {
                PageValue::Int(i) => i,
                PageValue::Text(t) => t,
            }
        })
        .collect();
    let mut rows = stmt.query(values.as_slice()).map_err(sql_err("read"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err("read"))? {
        out.push(decode(row)?);
    }
    Ok(out)
}
