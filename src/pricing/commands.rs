//! The price commands behind `tollgate prices`, `tollgate prices import` and
//! `tollgate reprice`: each takes its options and returns the text to print, so
//! `main.rs` stays a thin argument parser and the commands are testable in-process.
//! They read files (config, catalog, ledger) and `import` writes the catalog; nothing
//! here serves requests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};

use super::compare::{self, Quote};
use super::reprice::{self, Repricer, Target};
use crate::catalog::import::{self, Format, MergeOptions};
use crate::catalog::{PriceBook, PricingError, TokenCounts};
use crate::config::Settings;
use crate::ledger::filter::Filter;
use crate::ledger::{LedgerError, LedgerStore};
use crate::pricing::query::{self, PriceQuery};

/// Why a price command failed; the message says what to change.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// A bad option.
    #[error("{0}")]
    Usage(String),
    /// The catalog could not be read or would become invalid.
    #[error(transparent)]
    Pricing(#[from] PricingError),
    /// The ledger could not be read.
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The imported file is not in the format named.
    #[error("{path}: {source}")]
    Import {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        source: import::ImportError,
    },
}

/// `tollgate prices` options.
#[derive(Debug, Clone)]
pub struct PricesOptions {
    /// One model, or every configured model.
    pub model: Option<String>,
    /// Usage to price.
    pub tokens: TokenCounts,
    /// Instant to price at.
    pub at: DateTime<Utc>,
    /// Judge `allowed` by this key's policy; `None` leaves it open.
    pub key: Option<String>,
    /// JSON (the endpoint's document per model) instead of a table.
    pub json: bool,
}

/// Every offer of the model(s), priced, as a table or JSON.
pub fn prices(settings: &Settings, opts: &PricesOptions) -> Result<String, CommandError> {
    query::check_parts(&opts.tokens).map_err(|p| CommandError::Usage(p.message))?;
    let policy = match &opts.key {
        None => None,
        Some(name) => Some(
            &settings
                .keys
                .iter()
                .find(|k| &k.name == name)
                .ok_or_else(|| CommandError::Usage(format!("unknown key {name:?}")))?
                .residency,
        ),
    };
    let models: Vec<&str> = match &opts.model {
        Some(m) => vec![m.as_str()],
        None => settings.models.iter().map(|m| m.name.as_str()).collect(),
    };
    let mut out = String::new();
    let mut docs = Vec::new();
    for model in models {
        let candidates = compare::candidates(settings, model)
            .ok_or_else(|| CommandError::Usage(format!("unknown model {model:?}")))?;
        let quotes = compare::quote(
            settings,
            &settings.prices,
            &candidates,
            &opts.tokens,
            opts.at,
            policy,
        );
        if opts.json {
            let q = PriceQuery {
                model: model.to_owned(),
                tokens: opts.tokens,
                at: Some(opts.at),
            };
            let groups: Vec<&str> = settings
                .comparison_groups
                .iter()
                .filter(|g| g.models.iter().any(|m| m == model))
                .map(|g| g.name.as_str())
                .collect();
            docs.push(query::answer(&q, opts.at, &groups, &quotes));
        } else {
            let _ = writeln!(
                out,
                "{model} at {} ({} in, {} cached, {} out, {} reasoning)",
                opts.at.to_rfc3339(),
                opts.tokens.input,
                opts.tokens.cached_input,
                opts.tokens.output,
                opts.tokens.reasoning
            );
            out.push_str(&table(&quotes, policy.is_some()));
            out.push('\n');
        }
    }
    if opts.json {
        let doc = match docs.len() {
            1 => docs.pop().unwrap_or_default(),
            _ => serde_json::Value::Array(docs),
        };
        out = serde_json::to_string_pretty(&doc).unwrap_or_default();
        out.push('\n');
    }
    Ok(out)
}

/// Quotes as an aligned text table.
pub fn table(quotes: &[Quote], with_policy: bool) -> String {
    let mut rows = vec![[
        "cost_usd",
        "model",
        "provider",
        "offer",
        "jurisdiction",
        "region",
        "scope",
        "price_id",
        "as_of",
        "allowed",
    ]
    .map(str::to_owned)];
    for q in quotes {
        let allowed = match (with_policy, q.excluded_reason) {
            (false, _) => "-".to_owned(),
            (true, None) => "yes".to_owned(),
            (true, Some(why)) => format!("no ({why})"),
        };
        rows.push([
            q.cost_usd.map_or("unpriced".into(), |c| c.to_string()),
            q.model.clone(),
            q.provider.clone(),
            q.offer.clone().unwrap_or_else(|| "-".into()),
            q.jurisdiction.clone(),
            q.region.clone(),
            q.processing_scope.to_owned(),
            q.price_id.clone().unwrap_or_else(|| "-".into()),
            q.as_of.map_or("-".into(), |d| d.to_string()),
            allowed,
        ]);
    }
    let mut widths = [0_usize; 10];
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in &rows {
        let line: Vec<String> = row
            .iter()
            .zip(widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", line.join("  ").trim_end());
    }
    out
}

/// `tollgate reprice` options.
#[derive(Debug, Clone)]
pub struct RepriceOptions {
    /// The ledger (SQLite file or PostgreSQL).
    pub ledger: LedgerStore,
    /// Records from this instant (inclusive) to `to` (exclusive).
    pub filter: Filter,
    /// An offer key of the catalog, or a logical model of `settings`.
    pub target: String,
}

/// Price the recorded traffic as if it had gone to the target; totals per model and day.
pub async fn reprice(
    prices: &PriceBook,
    settings: Option<&Settings>,
    opts: &RepriceOptions,
) -> Result<String, CommandError> {
    let target = if let Some(candidates) =
        settings.and_then(|s| compare::candidates(s, &opts.target))
    {
        // A model's own offers only: "as o1" means o1, not its whole comparison group.
        let own: Vec<_> = candidates
            .into_iter()
            .filter(|c| c.model == opts.target)
            .collect();
        Target::Model {
            name: opts.target.clone(),
            candidates: own,
        }
    } else if prices.has_offer(&opts.target) {
        Target::Offer(opts.target.clone())
    } else {
        return Err(CommandError::Usage(format!(
            "--as {:?} is neither a catalog offer key (such as \"openai/o1\") nor a configured model{}",
            opts.target,
            if settings.is_none() { " (give --config to name models)" } else { "" }
        )));
    };
    let fold = Repricer::new(prices.clone(), target.clone());
    let fold = opts
        .ledger
        .fold_records(&opts.filter, fold, |fold, r| fold.add(&r))
        .await?;
    Ok(reprice::render(&target, &fold.lines, &fold.caveats()))
}

/// `tollgate prices import` options.
#[derive(Debug, Clone)]
pub struct ImportOptions {
    /// The source file's format.
    pub format: Format,
    /// The source file.
    pub file: PathBuf,
    /// The catalog to write into.
    pub into: PathBuf,
    /// `as_of` of the imported rows.
    pub as_of: NaiveDate,
    /// `effective_from` of the imported rows.
    pub effective_from: NaiveDate,
    /// Replace own rows of the same offer and day.
    pub overwrite: bool,
}

/// Import a public catalog into a tollgate catalog file; returns a summary to print.
pub fn import(opts: &ImportOptions) -> Result<String, CommandError> {
    let read = |path: &Path| {
        std::fs::read_to_string(path).map_err(|source| CommandError::Io {
            path: path.to_path_buf(),
            source,
        })
    };
    let parsed =
        import::parse(opts.format, &read(&opts.file)?).map_err(|source| CommandError::Import {
            path: opts.file.clone(),
            source,
        })?;
    let existing = if opts.into.exists() {
        read(&opts.into)?
    } else {
        String::new()
    };
    let label = opts.file.file_name().map_or_else(
        || opts.file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    );
    let merge_opts = MergeOptions {
        file_label: label,
        format: opts.format,
        as_of: opts.as_of,
        effective_from: opts.effective_from,
        overwrite: opts.overwrite,
    };
    let (text, summary) = import::merge(&existing, &parsed.rows, &merge_opts)?;
    std::fs::write(&opts.into, text).map_err(|source| CommandError::Io {
        path: opts.into.clone(),
        source,
    })?;
    let mut out = format!(
        "{}: {} rows added, {} replaced, {} kept (tollgate's own row wins; --overwrite replaces it), {} entries skipped\n",
        opts.into.display(),
        summary.added,
        summary.replaced,
        summary.kept_existing.len(),
        parsed.skipped.len()
    );
    let skipped: BTreeMap<&str, ()> = parsed.skipped.iter().map(|s| (s.as_str(), ())).collect();
    for s in skipped.keys().take(20) {
        let _ = writeln!(out, "  skipped {s}");
    }
    Ok(out)
}
