//! `tollgate report`: the usage API's numbers straight from a ledger file, for
//! operators without a running server. The command line lives in `main.rs`; this
//! file finds the ledger, runs the same summary as `/admin/usage` and formats it.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use super::{format, open_ledger, parse_group_by, summarize, Filter, UsageError};
use crate::config::ConfigError;

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
    pub ledger: &'a Path,
    pub from: Option<&'a str>,
    pub to: Option<&'a str>,
    pub group_by: Option<&'a str>,
    pub format: ReportFormat,
    /// The end of the default window.
    pub now: DateTime<Utc>,
}

/// The report's text.
pub fn report(req: &ReportRequest<'_>) -> Result<String, UsageError> {
    let filter = Filter::parse(req.from, req.to, req.now)?;
    let group_by = parse_group_by(req.group_by)?;
    let conn = open_ledger(req.ledger)?;
    let summary = summarize(&conn, &filter, &group_by)?;
    Ok(match req.format {
        ReportFormat::Table => format::summary_table(&summary),
        ReportFormat::Csv => format::summary_csv(&summary),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&summary).unwrap_or_default();
            s.push('\n');
            s
        }
    })
}

/// The ledger path a config file names (with `TOLLGATE__LEDGER__PATH` applied),
/// without validating the rest: a report must not need the providers' secrets.
pub fn ledger_path_from_config(config: &Path) -> Result<PathBuf, ConfigError> {
    let raw = crate::config::load(config, std::env::vars().collect())?;
    Ok(PathBuf::from(raw.ledger.path))
}
