//! Reading stored records back from a SQLite ledger file without holding them all: the
//! records of a time range streamed one at a time into a fold (the ragged edges of a
//! usage query, `tollgate reprice`), and `/admin/requests`' pages. Read-only (a separate
//! connection, which WAL lets run beside the writer) and blocking: async callers use
//! `spawn_blocking`. It does not aggregate or price anything; callers do.

use std::path::Path;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OpenFlags};

use super::sqlite::{decode, sql_err, MIGRATIONS};
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

    /// The same selection as a borrowed range.
    pub fn range(&self) -> Range<'_> {
        let (from_ms, to_ms) = self.bounds_ms();
        Range {
            from_ms,
            to_ms,
            key_name: self.key_name.as_deref(),
            logical_model: self.logical_model.as_deref(),
        }
    }
}

/// `[from_ms, to_ms)` by start time, optionally one key and one logical model.
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub key_name: Option<&'a str>,
    pub logical_model: Option<&'a str>,
}

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
    if found < super::rollup::introduced_by(MIGRATIONS, super::rollup::sqlite::ROLLUPS) {
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

/// The newest-first page query over `requests`, written for the filters at hand so the
/// database walks one index range and stops after `LIMIT` rows: a fixed text with
/// `(? IS NULL OR column = ?)` terms would keep it from using the key or model index, and a
/// cursor tested row by row would make page N walk every row of the pages before it. The
/// cursor instead becomes the range's upper bound (only rows sharing its millisecond are
/// tested one by one). `param(n)` writes placeholder `n`; parameters are bound in
/// [`PageParams::values`] order.
pub fn page_sql(select: &str, p: &PageParams<'_>, param: fn(usize) -> String) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        param(n)
    };
    let mut sql = format!(
        "{select} FROM requests WHERE created_at_ms >= {} AND created_at_ms < {}",
        next(),
        next()
    );
    if p.cursor.is_some() {
        let (at, id) = (next(), next());
        sql += &format!(" AND (created_at_ms < {at} OR request_id < {id})");
    }
    if p.key_name.is_some() {
        sql += &format!(" AND key_name = {}", next());
    }
    if p.logical_model.is_some() {
        sql += &format!(" AND logical_model = {}", next());
    }
    sql += &format!(
        " ORDER BY created_at_ms DESC, request_id DESC LIMIT {}",
        next()
    );
    sql
}

/// The values of one page query: the filter's window narrowed by the cursor.
#[derive(Debug, Clone)]
pub struct PageParams<'a> {
    pub from_ms: i64,
    /// Exclusive; at most one past the cursor's millisecond.
    pub to_ms: i64,
    pub cursor: Option<(i64, &'a String)>,
    pub key_name: Option<&'a String>,
    pub logical_model: Option<&'a String>,
    pub fetch: i64,
}

impl<'a> PageParams<'a> {
    pub fn of(filter: &'a Filter, cursor: Option<&'a (i64, String)>, fetch: i64) -> Self {
        let (from_ms, to_ms) = filter.bounds_ms();
        let cursor = cursor.map(|(at, id)| (*at, id));
        Self {
            from_ms,
            to_ms: cursor.map_or(to_ms, |(at, _)| to_ms.min(at.saturating_add(1))),
            cursor,
            key_name: filter.key_name.as_ref(),
            logical_model: filter.logical_model.as_ref(),
            fetch,
        }
    }
}

/// One bound value of a page query (both backends bind these).
#[derive(Debug, Clone, Copy)]
pub enum PageValue<'a> {
    Int(&'a i64),
    Text(&'a String),
}

impl<'a> PageParams<'a> {
    /// The values in [`page_sql`]'s placeholder order.
    pub fn values(&'a self) -> Vec<PageValue<'a>> {
        let mut out = vec![PageValue::Int(&self.from_ms), PageValue::Int(&self.to_ms)];
        if let Some((at, id)) = &self.cursor {
            out.extend([PageValue::Int(at), PageValue::Text(id)]);
        }
        out.extend(self.key_name.map(PageValue::Text));
        out.extend(self.logical_model.map(PageValue::Text));
        out.push(PageValue::Int(&self.fetch));
        out
    }
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
