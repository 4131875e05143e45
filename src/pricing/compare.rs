//! Price comparison: every offer of a logical model and of its comparison groups, priced
//! for one usage at one instant, with whether a residency policy allows it.
//!
//! Owns the candidate list of a model (its offers plus those of every model sharing a
//! `[comparison]` group with it, each (provider, price key) once) and the ordering of quotes
//! (cheapest first, unpriced last). It is pure: no I/O, no ledger, no HTTP. Serving the list
//! is `server::prices`, the per-request record of the cheapest alternatives is
//! `metering::audit`.

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::Serialize;

use crate::catalog::{cost, PriceBook, TokenCounts};
use crate::config::{Residency, ResidencyPolicy, Settings};
use crate::policy::{self, Exclusion};

/// One offer that may be compared: where it runs and which catalog key prices it.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The logical model that offers it (the first one, when several share the offer).
    pub model: String,
    /// Index into `Settings::providers`.
    pub provider_index: usize,
    /// The provider entry's id.
    pub provider: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// Catalog offer key; `None` = knowingly unpriced.
    pub price_key: Option<String>,
    /// Where the offer runs.
    pub residency: Residency,
}

/// A candidate priced for one usage.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Quote {
    /// The logical model that offers it.
    pub model: String,
    /// The provider entry's id.
    pub provider: String,
    /// The model name sent upstream.
    pub upstream_model: String,
    /// Catalog offer key; `None` = knowingly unpriced.
    pub offer: Option<String>,
    /// Exact USD cost for the usage; `None` = no price row covers the instant.
    #[serde(with = "rust_decimal::serde::str_option")]
    pub cost_usd: Option<Decimal>,
    /// The catalog row that priced it.
    pub price_id: Option<String>,
    /// When that row's figures were last checked.
    pub as_of: Option<NaiveDate>,
    /// Serving region.
    pub region: String,
    /// Serving jurisdiction.
    pub jurisdiction: String,
    /// `regional`, `datazone` or `global`.
    pub processing_scope: &'static str,
    /// Whether the policy the quotes were made for allows this offer.
    pub allowed: bool,
    /// Why the policy excludes it; `None` when allowed.
    pub excluded_reason: Option<&'static str>,
}

/// Every candidate for `model`: its own offers first, then those of models sharing a
/// comparison group with it, each (provider, price key) once. `None` for an unknown model.
pub fn candidates(settings: &Settings, model: &str) -> Option<Vec<Candidate>> {
    let own = settings.models.iter().find(|m| m.name == model)?;
    let mut names = vec![own.name.as_str()];
    for group in settings
        .comparison_groups
        .iter()
        .filter(|g| g.models.iter().any(|m| m == model))
    {
        for m in &group.models {
            if !names.contains(&m.as_str()) {
                names.push(m);
            }
        }
    }
    let mut out: Vec<Candidate> = Vec::new();
    for m in names
        .iter()
        .filter_map(|n| settings.models.iter().find(|m| m.name == *n))
    {
        for offer in &m.offers {
            let Some(p) = settings.providers.get(offer.provider) else {
                continue;
            };
            let duplicate = out
                .iter()
                .any(|c| c.provider_index == offer.provider && c.price_key == offer.price);
            if !duplicate {
                out.push(Candidate {
                    model: m.name.clone(),
                    provider_index: offer.provider,
                    provider: p.id.clone(),
                    upstream_model: offer.upstream_model.clone(),
                    price_key: offer.price.clone(),
                    residency: p.residency.clone(),
                });
            }
        }
    }
    Some(out)
}

/// Why `policy` excludes `candidate`; `None` when allowed (or when no policy is given).
pub fn exclusion_of(
    settings: &Settings,
    policy: Option<&ResidencyPolicy>,
    candidate: &Candidate,
) -> Option<Exclusion> {
    let provider = settings.providers.get(candidate.provider_index)?;
    policy::exclusion(policy?, None, provider)
}

/// Price every candidate for `tokens` at `at`: cheapest first, ties in candidate order,
/// unpriced last. With `policy`, each quote says whether it allows the offer and why not.
pub fn quote(
    settings: &Settings,
    prices: &PriceBook,
    candidates: &[Candidate],
    tokens: &TokenCounts,
    at: DateTime<Utc>,
    policy: Option<&ResidencyPolicy>,
) -> Vec<Quote> {
    let mut quotes: Vec<Quote> = candidates
        .iter()
        .map(|c| {
            let row = c.price_key.as_deref().and_then(|k| prices.lookup(k, at));
            let excluded = exclusion_of(settings, policy, c);
            Quote {
                model: c.model.clone(),
                provider: c.provider.clone(),
                upstream_model: c.upstream_model.clone(),
                offer: c.price_key.clone(),
                cost_usd: row.map(|r| cost(tokens, r)),
                price_id: row.map(|r| r.id.clone()),
                as_of: row.map(|r| r.as_of),
                region: c.residency.region.clone(),
                jurisdiction: c.residency.jurisdiction.clone(),
                processing_scope: c.residency.scope.as_str(),
                allowed: excluded.is_none(),
                excluded_reason: excluded.map(Exclusion::as_str),
            }
        })
        .collect();
    // Stable sort: equal costs keep the configured order.
    quotes.sort_by_key(|q| (q.cost_usd.is_none(), q.cost_usd));
    quotes
}

/// The cheapest priced offer among `candidates` (optionally only those `allowed`), as
/// (cost, price key). Ties go to the earlier candidate.
pub fn cheapest<'a>(
    prices: &PriceBook,
    candidates: impl Iterator<Item = &'a Candidate>,
    tokens: &TokenCounts,
    at: DateTime<Utc>,
) -> Option<(Decimal, &'a str)> {
    let mut best: Option<(Decimal, &str)> = None;
    for c in candidates {
        let Some(key) = c.price_key.as_deref() else {
            continue;
        };
        let Some(row) = prices.lookup(key, at) else {
            continue;
        };
        let amount = cost(tokens, row);
        if best.is_none_or(|(b, _)| amount < b) {
            best = Some((amount, key));
        }
    }
    best
}
