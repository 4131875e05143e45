//! Usage numbers read straight from a ledger, for the admin usage API, the dashboard
//! and `tollgate report` alike: parameters (`params`), grouped summaries with exact
//! decimal costs (`summary`), record paging (`records`), and their CSV and table forms
//! (`format`).
//!
//! Sums come from `ledger::LedgerStore`'s rollups (SQLite file or PostgreSQL alike),
//! records only page by page. Nothing here writes the ledger (only `ledger` does) or
//! serves HTTP (`server` does).

pub mod export;
pub mod format;
pub mod params;
pub mod records;
pub mod report;
pub mod summary;

use std::path::PathBuf;

use crate::ledger::LedgerError;

pub use params::{parse_group_by, Filter, GroupKey};
pub use records::{page, parse_limit, RecordPage};
pub use summary::{summarize, summary, UsageSummary};

/// Why a usage query failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum UsageError {
    /// A parameter the caller gave is wrong; the message says what is accepted.
    #[error("{param}: {message}")]
    BadParam {
        param: &'static str,
        message: String,
    },
    #[error("no ledger file at {path}; check ledger.path (tollgate creates it on first start)")]
    NoLedger { path: PathBuf },
    #[error("the ledger column {column} holds an invalid value {value:?}")]
    InvalidValue { column: &'static str, value: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// Writing CSV into memory failed (it cannot, short of a bug in the writer).
    #[error("could not write CSV: {0}")]
    Csv(String),
}

impl From<csv::Error> for UsageError {
    fn from(e: csv::Error) -> Self {
        Self::Csv(e.to_string())
    }
}

impl UsageError {
    /// A bad parameter named `param`.
    pub fn bad_param(param: &'static str, message: impl Into<String>) -> Self {
        Self::BadParam {
            param,
            message: message.into(),
        }
    }
}
