//! Price catalog and cost function: which price applies to an offer at an instant, and what a
//! request's tokens cost under it.
//!
//! Owns the immutable [`PriceBook`] snapshot (loaded once from `config/prices.toml`, shared
//! behind an `Arc`), the selection rule for dated and time-of-day rows, and the exact-decimal
//! [`cost`] function. It does not read provider usage (that is `metering`, which hands over
//! [`TokenCounts`]), decide what to do with an unpriced request (the caller records it as
//! unpriced, never as $0), or write records. Money is `rust_decimal::Decimal`, never `f64`.
//! It depends on nothing but `tokens`, so the configuration can load it; what combines
//! prices with the configuration, the policy and the ledger (comparisons, repricing,
//! savings, the `prices` commands) is `pricing`, one layer up.

mod file;
pub mod import;
pub mod stale;
#[cfg(test)]
mod tests;
mod tier;
mod window;

pub use crate::tokens::{ServiceTier, TokenCounts};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;

pub use tier::{Applied, PriceTier, Rates};
pub use window::TimeWindow;

/// One catalog row: the prices of one offer for one period (and possibly some hours of the day).
#[derive(Debug, Clone, PartialEq)]
pub struct PriceRow {
    /// Unique, stable id; reported as `price_id` with every priced request.
    pub id: String,
    /// Price key that provider offers reference, e.g. `"deepseek/deepseek-reasoner"`.
    pub offer: String,
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: Decimal,
    /// USD per 1M cache-read input tokens; `None` bills them at `input_per_mtok`.
    pub cached_input_per_mtok: Option<Decimal>,
    /// USD per 1M cache-write input tokens (Anthropic's 5-minute writes); `None` bills
    /// them at `input_per_mtok`.
    pub cache_write_per_mtok: Option<Decimal>,
    /// USD per 1M input tokens written to a 1-hour cache (Anthropic, 2× input); `None`
    /// bills them at `cache_write_per_mtok`.
    pub cache_write_1h_per_mtok: Option<Decimal>,
    /// USD per 1M output tokens, reasoning included.
    pub output_per_mtok: Decimal,
    /// USD charged once per request (Perplexity search fees); `None` means no fee.
    pub per_request_fee: Option<Decimal>,
    /// Long-context tiers, ascending by threshold: above a tier's input size the whole
    /// request is billed at the tier's rates. Empty = the row's rates at every size.
    pub tiers: Vec<PriceTier>,
    /// The service tier (`flex`, `priority`, `scale`) whose answers this row prices;
    /// `None` = the default tier, which also prices tiers that have no row.
    pub service_tier: Option<ServiceTier>,
    /// First instant the row applies (inclusive).
    pub effective_from: DateTime<Utc>,
    /// First instant the row no longer applies (exclusive); `None` means open-ended.
    pub effective_until: Option<DateTime<Utc>>,
    /// UTC time-of-day windows; empty means the row applies at all hours (the fallback).
    pub windows: Vec<TimeWindow>,
    /// Where the figures come from.
    pub source: String,
    /// Day the figures were last checked against `source`.
    pub as_of: NaiveDate,
    /// `high`, `medium` or `low`; `None` means not stated.
    pub confidence: Option<String>,
    /// Free-form remarks (assumptions, approximate dates).
    pub notes: Option<String>,
}

impl PriceRow {
    /// Whether `at` lies in `[effective_from, effective_until)`.
    pub fn is_effective_at(&self, at: DateTime<Utc>) -> bool {
        self.effective_from <= at && self.effective_until.is_none_or(|until| at < until)
    }

    /// Whether the row may price a request made at `at`: effective then, and inside one of its
    /// windows if it has any.
    pub fn applies_at(&self, at: DateTime<Utc>) -> bool {
        self.is_effective_at(at)
            && (self.windows.is_empty() || self.windows.iter().any(|w| w.contains(at)))
    }
}

/// One thing wrong with a catalog, located by a path such as `prices[3].output_per_mtok`
/// (indices count `[[prices]]` tables from 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceProblem {
    /// Dotted path of the offending value (or `line L, column C` for TOML syntax errors).
    pub path: String,
    /// What is wrong and what is accepted.
    pub message: String,
}

impl std::fmt::Display for PriceProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Why a price catalog could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PricingError {
    /// The file could not be read.
    #[error("cannot read the price catalog: {source}")]
    Read {
        /// File that was asked for.
        path: PathBuf,
        /// Underlying I/O error.
        source: std::io::Error,
    },
    /// The catalog was read but is not valid; every problem found is listed.
    #[error("{} problem(s) in the price catalog:{}", .problems.len(), render(.problems))]
    Invalid {
        /// All problems, in file order.
        problems: Vec<PriceProblem>,
    },
}

impl PricingError {
    /// The validation problems; empty for a read error.
    pub fn problems(&self) -> &[PriceProblem] {
        match self {
            PricingError::Read { .. } => &[],
            PricingError::Invalid { problems } => problems,
        }
    }
}

fn render(problems: &[PriceProblem]) -> String {
    problems.iter().map(|p| format!("\n  {p}")).collect()
}

/// An immutable, validated price catalog; cheap to share behind an `Arc`.
#[derive(Debug, Clone, Default)]
pub struct PriceBook {
    /// Rows in file order.
    rows: Vec<PriceRow>,
    /// Offer key -> indices into `rows`, most specific first: windowed rows, then later
    /// `effective_from`, so the first row that applies is the answer.
    by_offer: BTreeMap<String, Vec<usize>>,
}

impl PriceBook {
    /// Parses and validates a catalog, reporting every problem at once.
    pub fn from_toml_str(text: &str) -> Result<PriceBook, PricingError> {
        let rows = file::parse(text).map_err(|problems| PricingError::Invalid { problems })?;
        let mut by_offer: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        for (i, row) in rows.iter().enumerate() {
            by_offer.entry(row.offer.clone()).or_default().push(i);
        }
        for indices in by_offer.values_mut() {
            indices.sort_by_key(|&i| {
                rows.get(i)
                    .map(|r| (r.windows.is_empty(), std::cmp::Reverse(r.effective_from)))
            });
        }
        Ok(PriceBook { rows, by_offer })
    }

    /// Reads and validates the catalog file at `path`.
    pub fn load(path: &Path) -> Result<PriceBook, PricingError> {
        let text = std::fs::read_to_string(path).map_err(|source| PricingError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        PriceBook::from_toml_str(&text)
    }

    /// The default-tier row pricing `offer` at instant `at`: among rows effective then
    /// whose windows (if any) contain `at`, windowed rows beat all-hours rows and a later
    /// `effective_from` beats an earlier one. `None` means unpriced (unknown offer, or no
    /// row covers `at`). Rows of a service tier are left out: see [`PriceBook::apply`].
    pub fn lookup(&self, offer: &str, at: DateTime<Utc>) -> Option<&PriceRow> {
        self.lookup_service_tier(offer, at, None)
    }

    /// As [`PriceBook::lookup`], among the rows of one service tier only (`None` =
    /// the default tier's rows).
    pub fn lookup_service_tier(
        &self,
        offer: &str,
        at: DateTime<Utc>,
        service_tier: Option<ServiceTier>,
    ) -> Option<&PriceRow> {
        self.by_offer
            .get(offer)?
            .iter()
            .filter_map(|&i| self.rows.get(i))
            .find(|row| row.service_tier == service_tier && row.applies_at(at))
    }

    /// Whether the catalog has any row for `offer`, at any time.
    pub fn has_offer(&self, offer: &str) -> bool {
        self.by_offer.contains_key(offer)
    }

    /// Every offer key in the catalog, sorted, each once.
    pub fn offers(&self) -> impl Iterator<Item = &str> {
        self.by_offer.keys().map(String::as_str)
    }

    /// All rows in file order.
    pub fn rows(&self) -> &[PriceRow] {
        &self.rows
    }
}

/// Exact USD cost: (input - cached - cache_write)·in + cached·cached_in +
/// (cache_write - cache_write_1h)·write + cache_write_1h·write_1h + output·out, all /1e6,
/// + fee.
///
/// The rates are those of the long-context tier `tokens.input` falls in (the whole
/// request at that tier's rates, never split at the threshold), else the row's own.
///
/// Reasoning is NOT added (it is inside output). The subtraction saturates if a provider
/// reports more cached tokens than input tokens. Never negative, never rounded: the result is
/// exact and normalized. Only absurd amounts (beyond about 7.9e28 USD) cannot be represented;
/// the result then saturates at `Decimal::MAX` instead of panicking.
pub fn cost(tokens: &TokenCounts, row: &PriceRow) -> Decimal {
    let uncached = tokens
        .input
        .saturating_sub(tokens.cached_input)
        .saturating_sub(tokens.cache_write);
    let rates = row.rates_for(tokens);
    let input_price = rates.input_per_mtok;
    let write_price = rates.cache_write_per_mtok.unwrap_or(input_price);
    let terms = [
        (uncached, input_price),
        (
            tokens.cached_input,
            rates.cached_input_per_mtok.unwrap_or(input_price),
        ),
        (
            tokens.cache_write.saturating_sub(tokens.cache_write_1h),
            write_price,
        ),
        (
            tokens.cache_write_1h.min(tokens.cache_write),
            rates.cache_write_1h_per_mtok.unwrap_or(write_price),
        ),
        (tokens.output, rates.output_per_mtok),
    ];
    let per_mtok = terms
        .iter()
        .try_fold(Decimal::ZERO, |sum, &(count, price)| {
            Decimal::from(count)
                .checked_mul(price)
                .and_then(|amount| sum.checked_add(amount))
        });
    let fee = row.per_request_fee.unwrap_or(Decimal::ZERO);
    per_mtok
        .and_then(|sum| sum.checked_div(Decimal::from(1_000_000_u32)))
        .and_then(|sum| sum.checked_add(fee))
        .unwrap_or(Decimal::MAX)
        .max(Decimal::ZERO)
        .normalize()
}
