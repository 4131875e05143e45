//! Where a gateway's records live, for everything that reads them back beside the
//! writer: the usage API, the savings report, `tollgate report` and `reprice`, and the
//! budget rebuild at start-up. SQLite reads open the file read-only on the blocking
//! pool; PostgreSQL reads share the pool of the fleet ledger.

use std::path::{Path, PathBuf};

use rust_decimal::Decimal;

use super::postgres::PostgresLedger;
use super::scan::{self, Filter};
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

    /// Every record matching `filter`, oldest first.
    pub async fn records(&self, filter: &Filter) -> Result<Vec<UsageRecord>, LedgerError> {
        match self {
            Self::Sqlite(path) => {
                let (path, filter) = (path.clone(), filter.clone());
                tokio::task::spawn_blocking(move || scan::records(&path, &filter)).await?
            }
            Self::Postgres(pg) => pg.records(filter).await,
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

    /// `(key name, created_at_ms, cost)` of every priced record in `[from_ms, to_ms)`.
    pub async fn spend_rows(
        &self,
        from_ms: i64,
        to_ms: i64,
    ) -> Result<Vec<(String, i64, Decimal)>, LedgerError> {
        match self {
            Self::Sqlite(path) => {
                let path = path.clone();
                tokio::task::spawn_blocking(move || scan::spend_rows(&path, from_ms, to_ms)).await?
            }
            Self::Postgres(pg) => pg.spend_rows(from_ms, to_ms).await,
        }
    }
}
