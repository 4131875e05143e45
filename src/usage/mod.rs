//! Usage numbers read straight from a ledger file, for the admin usage API, the
//! dashboard and `tollgate report` alike: parameters (`params`), grouped summaries
//! with exact decimal costs (`summary`), record paging (`records`), and their CSV and
//! table forms (`format`).
//!
//! Everything here is a pure function over a read-only rusqlite `Connection`, and
//! blocking: the server calls it inside `spawn_blocking`. It never writes the ledger
//! (only `ledger` does) and never serves HTTP (`server` does).

pub mod format;
pub mod params;
pub mod records;
pub mod report;
pub mod summary;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::ledger::LedgerError;

pub use params::{parse_group_by, Filter, GroupKey};
pub use records::{page, parse_limit, RecordPage};
pub use summary::{summarize, UsageSummary};

/// How long a read waits for the writer's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

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
    #[error("could not read the ledger: {source}")]
    Sqlite {
        #[source]
        source: Arc<rusqlite::Error>,
    },
    #[error("the ledger column {column} holds an invalid value {value:?}")]
    InvalidValue { column: &'static str, value: String },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
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

impl From<rusqlite::Error> for UsageError {
    fn from(e: rusqlite::Error) -> Self {
        Self::Sqlite {
            source: Arc::new(e),
        }
    }
}

/// Open a ledger file read-only. WAL lets this read beside the running writer; a
/// missing file is an error rather than a new empty ledger.
pub fn open_ledger(path: &Path) -> Result<Connection, UsageError> {
    if !path.exists() {
        return Err(UsageError::NoLedger {
            path: path.to_path_buf(),
        });
    }
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}
