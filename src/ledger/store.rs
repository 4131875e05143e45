//! Where a gateway's records live, for everything that reads them back beside the
//! writer: the usage API, the savings report, `tollgate report` and `reprice`, the
//! budget rebuild at start-up, and `tollgate ledger rebuild-rollups`. Aggregates come
//! from the rollups (memory bounded by the number of groups); records are only ever
//! streamed or paged, never collected whole. SQLite reads open the file read-only on
//! the blocking pool; PostgreSQL reads share the pool of the fleet ledger.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::filter::Filter;
use super::postgres::PostgresLedger;
use super::rollup::columns::Dim;
use super::rollup::query::{GroupValue, Groups, UsageQuery};
use super::rollup::RebuildReport;
use super::sqlite::scan;
use super::sqlite::{self, SqliteSink};
use super::{LedgerError, UsageRecord};
use crate::config::secret::Secret;

/// The stored ledger: a SQLite file or a PostgreSQL database.
#[derive(Clone, Debug)]
pub enum LedgerStore {
    Sqlite(PathBuf),
    Postgres(PostgresLedger),
}

impl LedgerStore {
    /// The PostgreSQL ledger at `url` when one is configured (connecting and migrating
    /// it), else the SQLite file at `path` (not opened until read).
    pub async fn open(path: &Path, url: Option<&Secret>) -> Result<Self, LedgerError> {
        Ok(match url {
            Some(url) => Self::Postgres(PostgresLedger::connect(url.expose()).await?),
            None => Self::Sqlite(path.to_path_buf()),
        })
    }

    /// Sums per group over a window: whole days and hours from the rollups, the
    /// minutes at either ragged end folded from their records.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Groups, LedgerError> {
        match self {
            Self::Sqlite(path) => {
                let (path, q) = (path.clone(), q.clone());
                tokio::task::spawn_blocking(move || sqlite::usage(&path, &q)).await?
            }
            Self::Postgres(pg) => pg.usage(q).await,
        }
    }

    /// Fold every record matching `filter` into `acc`, oldest first, one record in
    /// memory at a time (a page on PostgreSQL). For what rollups cannot answer.
    pub async fn fold_records<A, F>(&self, filter: &Filter, acc: A, f: F) -> Result<A, LedgerError>
    where
        A: Send + 'static,
        F: FnMut(&mut A, UsageRecord) + Send + 'static,
    {
        match self {
            Self::Sqlite(path) => {
                let (path, filter) = (path.clone(), filter.clone());
                tokio::task::spawn_blocking(move || scan::fold(&path, &filter, acc, f)).await?
            }
            Self::Postgres(pg) => pg.fold_records(filter, acc, f).await,
        }
    }

    /// Up to `fetch` records matching `filter`, newest first, strictly before `cursor`
    /// (`created_at_ms`, `request_id`) when given.
    pub async fn page(
        &self,
        filter: &Filter,
        cursor: Option<(i64, String)>,
        fetch: i64,
    ) -> Result<Vec<UsageRecord>, LedgerError> {
        match self {
            Self::Sqlite(path) => {
                let (path, filter) = (path.clone(), filter.clone());
                tokio::task::spawn_blocking(move || scan::page(&path, &filter, cursor, fetch))
                    .await?
            }
            Self::Postgres(pg) => pg.page(filter, cursor, fetch).await,
        }
    }

    /// `(key name, start of the UTC day in Unix ms, exact spend)` per key and day with
    /// records in `[from_ms, to_ms)`, for rebuilding budgets.
    pub async fn daily_spend(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, i64, Decimal)>, LedgerError> {
        let q = UsageQuery {
            from_ms,
            to_ms,
            group_by: vec![Dim::Key, Dim::Day],
            ..UsageQuery::default()
        };
        let groups = self.usage(&q).await?;
        Ok(groups
            .into_iter()
            .filter_map(|(group, sums)| match group.as_slice() {
                [GroupValue::Text(key), GroupValue::Time(day)] => {
                    Some((key.clone().unwrap_or_default(), *day, sums.cost_usd))
                }
                _ => None,
            })
            .collect())
    }

    /// Recompute the rollups from the records (`tollgate ledger rebuild-rollups`): all
    /// of them, or only from the UTC day of `from` on, keeping older rows (whose records
    /// retention may have deleted). On SQLite this opens (and migrates) the file for
    /// writing.
    pub async fn rebuild_rollups(
        &self,
        from: Option<DateTime<Utc>>,
    ) -> Result<RebuildReport, LedgerError> {
        let from_ms = from.map_or(i64::MIN, |t| t.timestamp_millis());
        match self {
            Self::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || {
                    SqliteSink::open(&path)?.rebuild_rollups(from_ms)
                })
                .await?
            }
            Self::Postgres(pg) => pg.rebuild_rollups(from_ms).await,
        }
    }
}
