//! `/admin/requests`: the ledger's records in a window, newest first, a page at a
//! time. The cursor is the position of the last record returned
//! (`<created_at_ms>:<request_id>`), so pages stay stable while new records arrive.
//! Reads only.

use serde::Serialize;

use super::params::{rfc3339, Filter};
use super::UsageError;
use crate::ledger::{LedgerStore, UsageRecord};

/// Most records one page may hold.
pub const MAX_LIMIT: usize = 1000;
/// Records per page when `limit` is not given.
pub const DEFAULT_LIMIT: usize = 100;

/// One page of records.
#[derive(Debug, Clone, Serialize)]
pub struct RecordPage {
    pub from: String,
    pub to: String,
    pub requests: Vec<UsageRecord>,
    /// Pass as `cursor` for the next page; `None` on the last page.
    pub next_cursor: Option<String>,
}

/// Parse `limit` (1..=1000, default 100).
pub fn parse_limit(s: Option<&str>) -> Result<usize, UsageError> {
    let Some(s) = s.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(DEFAULT_LIMIT);
    };
    s.parse::<usize>()
        .ok()
        .filter(|n| (1..=MAX_LIMIT).contains(n))
        .ok_or_else(|| {
            UsageError::bad_param(
                "limit",
                format!("{s:?} is not a page size; use a whole number from 1 to {MAX_LIMIT}"),
            )
        })
}

/// The page of records after `cursor` (from the newest when `None`).
pub async fn page(
    store: &LedgerStore,
    filter: &Filter,
    limit: usize,
    cursor: Option<&str>,
) -> Result<RecordPage, UsageError> {
    let cursor = cursor
        .map(str::trim)
        .filter(|c| !c.is_empty())
        .map(parse_cursor)
        .transpose()?;
    let fetch = i64::try_from(limit.saturating_add(1)).unwrap_or(i64::MAX);
    let mut requests = store.page(&filter.to_scan(), cursor, fetch).await?;
    let more = requests.len() > limit;
    requests.truncate(limit);
    let next_cursor = more
        .then(|| requests.last())
        .flatten()
        .map(|r| format!("{}:{}", r.created_at.timestamp_millis(), r.request_id));
    Ok(RecordPage {
        from: rfc3339(filter.from),
        to: rfc3339(filter.to),
        requests,
        next_cursor,
    })
}

fn parse_cursor(s: &str) -> Result<(i64, String), UsageError> {
    s.split_once(':')
        .and_then(|(at, id)| Some((at.parse::<i64>().ok()?, id.to_owned())))
        .ok_or_else(|| {
            UsageError::bad_param(
                "cursor",
                "not a cursor; pass the `next_cursor` of the previous page unchanged",
            )
        })
}
