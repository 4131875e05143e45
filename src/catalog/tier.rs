//! The two price rules that depend on the request itself rather than on its time:
//! long-context tiers (a row's other rates once the prompt passes a size) and service
//! tiers (the row for the processing tier the answer says served the request).
//!
//! Owns choosing the tier for a request's tokens, the row for a served tier, and the
//! text that tells which of them applied (`price_id` notes). Reading the tiers from the
//! catalog file is `catalog`; the arithmetic is `super::cost`.

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::{cost, PriceBook, PriceRow, TokenCounts};
use crate::tokens::{ServiceTier, Usage};

/// A row's rates for requests whose input is larger than `above_input_tokens`.
///
/// A tier names every price its row names (validated by `catalog`), so a tier never
/// mixes its rates with the row's by omission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PriceTier {
    /// The tier applies when the request's input tokens (cached and cache-write ones
    /// included) are strictly more than this.
    pub above_input_tokens: u64,
    /// USD per 1M uncached input tokens above the threshold.
    pub input_per_mtok: Decimal,
    /// USD per 1M cache-read input tokens above the threshold.
    pub cached_input_per_mtok: Option<Decimal>,
    /// USD per 1M cache-write input tokens above the threshold.
    pub cache_write_per_mtok: Option<Decimal>,
    /// USD per 1M 1-hour cache-write input tokens above the threshold.
    pub cache_write_1h_per_mtok: Option<Decimal>,
    /// USD per 1M output tokens above the threshold.
    pub output_per_mtok: Decimal,
}

/// The per-token rates one request is billed at: a row's own, or one of its tiers'.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rates {
    pub input_per_mtok: Decimal,
    pub cached_input_per_mtok: Option<Decimal>,
    pub cache_write_per_mtok: Option<Decimal>,
    pub cache_write_1h_per_mtok: Option<Decimal>,
    pub output_per_mtok: Decimal,
}

impl PriceRow {
    /// The tier `tokens` fall in: the one with the highest threshold their input
    /// exceeds (tiers are sorted ascending at load); `None` = the row's own rates.
    pub fn tier_for(&self, tokens: &TokenCounts) -> Option<&PriceTier> {
        self.tiers
            .iter()
            .rev()
            .find(|t| tokens.input > t.above_input_tokens)
    }

    /// The rates `tokens` are billed at under this row.
    pub fn rates_for(&self, tokens: &TokenCounts) -> Rates {
        match self.tier_for(tokens) {
            Some(t) => Rates {
                input_per_mtok: t.input_per_mtok,
                cached_input_per_mtok: t.cached_input_per_mtok,
                cache_write_per_mtok: t.cache_write_per_mtok,
                cache_write_1h_per_mtok: t.cache_write_1h_per_mtok,
                output_per_mtok: t.output_per_mtok,
            },
            None => Rates {
                input_per_mtok: self.input_per_mtok,
                cached_input_per_mtok: self.cached_input_per_mtok,
                cache_write_per_mtok: self.cache_write_per_mtok,
                cache_write_1h_per_mtok: self.cache_write_1h_per_mtok,
                output_per_mtok: self.output_per_mtok,
            },
        }
    }
}

/// How one request was priced: the row, the tier of it, and whether the served
/// service tier had no row of its own.
#[derive(Debug, Clone, PartialEq)]
pub struct Applied<'a> {
    pub row: &'a PriceRow,
    /// The long-context tier used; `None` = the row's own rates.
    pub tier: Option<&'a PriceTier>,
    /// The answer named this service tier, the catalog has no row for it, and the
    /// default row priced the request instead.
    pub unlisted_service_tier: Option<ServiceTier>,
    /// Exact USD cost.
    pub cost: Decimal,
}

impl Applied<'_> {
    /// What the ledger and the `tollgate` object report as `price_id`: the row's id,
    /// then a `#`-note for each rule that changed the price, so a record says how it
    /// was priced without a column of its own:
    /// `#above_input_tokens=200000` (a long-context tier) and `#service_tier=flex`
    /// (flex served it, no flex row: priced at this default row).
    pub fn price_id(&self) -> String {
        let mut id = self.row.id.clone();
        if let Some(t) = self.tier {
            id.push_str(&format!("#above_input_tokens={}", t.above_input_tokens));
        }
        if let Some(s) = self.unlisted_service_tier {
            id.push_str("#service_tier=");
            id.push_str(s.as_str());
        }
        id
    }
}

impl PriceBook {
    /// Price `usage` for `offer` at `at` by every rule: the row of the service tier
    /// the answer says served it (a default-tier answer, or a tier without rows, uses
    /// the offer's default rows), then the long-context tier its input falls in.
    /// `None` = unpriced.
    pub fn apply(&self, offer: &str, at: DateTime<Utc>, usage: &Usage) -> Option<Applied<'_>> {
        let served = usage.service_tier.filter(|t| *t != ServiceTier::Default);
        let own = served.and_then(|t| self.lookup_service_tier(offer, at, Some(t)));
        let (row, unlisted) = match own {
            Some(row) => (row, None),
            None => (self.lookup(offer, at)?, served),
        };
        let tokens = usage.token_counts();
        Some(Applied {
            row,
            tier: row.tier_for(&tokens),
            unlisted_service_tier: unlisted,
            cost: cost(&tokens, row),
        })
    }
}

#[cfg(test)]
mod tests;
