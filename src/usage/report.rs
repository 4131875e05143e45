//! `tollgate report`: the usage API's numbers straight from a ledger file, for
//! operators without a running server. The command line lives in `main.rs`; this
//! file finds the ledger, runs the same summary as `/admin/usage` and formats it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{format, parse_group_by, summary, Filter, UsageError};
use crate::config::secret::Secret;
use crate::config::ConfigError;
use crate::ledger::LedgerStore;

/// Output forms of `tollgate report`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ReportFormat {
    /// Aligned columns with a total line.
    Table,
    /// One row per group, no totals row.
    Csv,
    /// Exactly the `/admin/usage` JSON.
    Json,
}

/// What to report.
#[derive(Debug, Clone)]
pub struct ReportRequest<'a> {
    pub ledger: &'a LedgerStore,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub group_by: Option<&'a str>,
    pub format: ReportFormat,
    /// The end of the default window.
    pub now: DateTime<Utc>,
}

/// The report's text.
pub async fn report(req: &ReportRequest<'_>) -> Result<String, UsageError> {
    let filter = Filter::parse(req.from, req.to, req.now)?;
    let group_by = parse_group_by(req.group_by)?;
    if let LedgerStore::Sqlite(path) = req.ledger {
        if !path.exists() {
            return Err(UsageError::NoLedger { path: path.clone() });
        }
    }
    let summary = summary(req.ledger, &filter, &group_by).await?;
    Ok(match req.format {
        ReportFormat::Table => format::summary_table(&summary),
        ReportFormat::Csv => format::summary_csv(&summary)?,
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&summary).unwrap_or_default();
            s.push('\n');
            s
        }
    })
}

/// The ledger a config file names: `ledger.url` when set (resolving `env:NAME`), else
/// `ledger.path` (with `TOLLGATE__LEDGER__...` applied), without validating the rest:
/// a report must not need the providers' secrets.
pub fn ledger_from_config(config: &Path) -> Result<(PathBuf, Option<Secret>), ConfigError> {
    let raw = crate::config::load(config, std::env::vars().collect())?;
    let env = |name: &str| std::env::var(name).ok();
    let mut problems = Vec::new();
    let url = crate::config::urls::ledger_url(&raw.ledger, &env, &mut |key, problem| {
        problems.push(format!("{key}: {problem}"));
    });
    if !problems.is_empty() {
        return Err(ConfigError { problems });
    }
    Ok((PathBuf::from(raw.ledger.path), url))
}
