//! What a request is known to be (`RequestFacts`: who asked, for what, which offer
//! served it) and its priced usage (`Priced`), with the one function that prices a
//! usage for the offer at the request's start time.
//!
//! These are plain data shared by the stages that end a request: `finalize` (the
//! record), `summary` (the `tollgate` object) and `audit` (cheaper alternatives). It
//! sits below all three so that none of them depends on another for its inputs. It
//! does no I/O and emits nothing.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use crate::api::openai::ChatRequest;
use crate::config::Residency;
use crate::ledger::{PricingStatus, UsageSource};
use crate::pricing::PriceBook;
use crate::tokens::estimate::TokenizerKind;
use crate::tokens::Usage;

/// The offer that served (or last tried to serve) a request.
#[derive(Debug, Clone)]
pub struct ServedBy {
    pub provider_id: String,
    pub upstream_model: String,
    pub residency: Residency,
    /// Catalog offer key; `None` = knowingly unpriced.
    pub price_key: Option<String>,
    pub tokenizer: TokenizerKind,
}

/// What is known about a request from its start.
#[derive(Debug, Clone)]
pub struct RequestFacts {
    pub request_id: String,
    pub created_at: DateTime<Utc>,
    pub started: tokio::time::Instant,
    pub key_name: String,
    /// The key's team (`[[keys]] team`), recorded so usage can be grouped by it.
    pub team: Option<String>,
    /// The authenticated key's index, once known: budgets and token limits are charged to it.
    pub key_index: Option<usize>,
    pub route: &'static str,
    pub logical_model: Option<String>,
    pub is_streaming: bool,
    /// The parsed request, shared (not copied), to count the prompt if usage never arrives.
    pub request: Option<Arc<ChatRequest>>,
    /// The client's output limit when `request` does not carry it (a surface served
    /// without a chat request), so implausible usage is still caught.
    pub max_output_tokens: Option<u64>,
    pub served: Option<ServedBy>,
    /// (model index, offer index) of the attempt that served, for routing feedback.
    pub slot: Option<(usize, usize)>,
    pub attempts: u32,
    /// The policy decision, encoded when the record is stored.
    pub policy: crate::ledger::PolicyJson,
}

/// A priced usage: what goes into the `tollgate` object and the record.
#[derive(Debug, Clone)]
pub struct Priced {
    pub usage: Usage,
    pub source: UsageSource,
    pub cost_usd: Option<Decimal>,
    pub price_id: Option<String>,
    pub pricing: PricingStatus,
}

/// Price `usage` for the offer at the request's start time. No catalog row means
/// `unpriced` with no cost, never $0.
pub fn price(
    prices: &PriceBook,
    facts: &RequestFacts,
    usage: Usage,
    source: UsageSource,
) -> Priced {
    let key = facts.served.as_ref().and_then(|s| s.price_key.as_deref());
    // The served service tier and the long-context tier both come from the usage
    // itself; which of them applied is noted in `price_id` (see `Applied::price_id`).
    let applied = key.and_then(|k| prices.apply(k, facts.created_at, &usage));
    let billable = source != UsageSource::None;
    let (cost_usd, price_id, pricing) = match (applied, billable, &facts.served) {
        (_, _, None) | (_, false, _) => (None, None, PricingStatus::NotApplicable),
        (Some(a), true, Some(_)) => (Some(a.cost), Some(a.price_id()), PricingStatus::Priced),
        (None, true, Some(_)) => (None, None, PricingStatus::Unpriced),
    };
    Priced {
        usage,
        source,
        cost_usd,
        price_id,
        pricing,
    }
}
