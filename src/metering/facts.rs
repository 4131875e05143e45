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

use crate::api::openai::Prompt;
use crate::catalog::PriceBook;
use crate::config::Residency;
use crate::ledger::{PricingStatus, UsageSource};
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
    pub request: Option<Arc<dyn Prompt>>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Scope;
    use crate::tokens::ServiceTier;

    const FLEX_CATALOG: &str = r#"
[[prices]]
id = "openai/gpt-5/2025-08-07"
offer = "openai/gpt-5"
currency = "USD"
input_per_mtok = "1.25"
output_per_mtok = "10"
tiers = [ { above_input_tokens = 272000, input_per_mtok = "2.5", output_per_mtok = "15" } ]
effective_from = "2025-08-07"
source = "test"
as_of = "2025-08-07"
"#;

    fn facts() -> RequestFacts {
        RequestFacts {
            request_id: "r".into(),
            created_at: "2025-09-01T00:00:00Z".parse().unwrap(),
            started: tokio::time::Instant::now(),
            key_name: "k".into(),
            team: None,
            key_index: None,
            route: "chat_completions",
            logical_model: None,
            is_streaming: false,
            request: None,
            max_output_tokens: None,
            served: Some(ServedBy {
                provider_id: "openai".into(),
                upstream_model: "gpt-5".into(),
                residency: Residency {
                    region: "openai:us".into(),
                    jurisdiction: "US".into(),
                    scope: Scope::Global,
                },
                price_key: Some("openai/gpt-5".into()),
                tokenizer: TokenizerKind::O200kBase,
            }),
            slot: None,
            attempts: 1,
            policy: crate::ledger::PolicyJson::default(),
        }
    }

    #[test]
    fn the_record_says_which_tier_and_which_served_tier_priced_it() {
        let prices = PriceBook::from_toml_str(FLEX_CATALOG).unwrap();
        let usage = Usage {
            input: Some(272_001),
            output: Some(0),
            service_tier: Some(ServiceTier::Flex),
            ..Usage::default()
        };
        let priced = price(&prices, &facts(), usage, UsageSource::Reported);
        assert_eq!(priced.pricing, PricingStatus::Priced);
        assert_eq!(
            priced.price_id.as_deref(),
            Some("openai/gpt-5/2025-08-07#above_input_tokens=272000#service_tier=flex")
        );
        assert_eq!(priced.cost_usd, Some(rust_decimal_macros::dec!(0.6800025)));
    }
}
