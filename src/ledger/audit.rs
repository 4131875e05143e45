//! The price audit carried by every ledger record: what the same usage would have cost
//! on the cheapest offer the caller's policy allowed and on the cheapest offer anywhere
//! (within the model and its comparison groups), and tollgate's own token counts beside
//! the provider's. This file owns the shape; `metering::audit` fills it in.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// Comparison costs and verification counts of one request; every field `None` when not
/// computed (no upstream reached, nothing billable, or no tokenizer).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct PriceAudit {
    /// Cost of this usage on the cheapest priced offer the key's policy allowed.
    // No `serde(with = str_option)`: the record flattens this struct, and through a
    // flatten buffer a `null` reaches that visitor as a unit it refuses; plain
    // `Option<Decimal>` reads it, and still writes the decimal as a string.
    pub cheapest_allowed_cost_usd: Option<Decimal>,
    /// Catalog offer key of that offer.
    pub cheapest_allowed_offer: Option<String>,
    /// Cost of this usage on the cheapest priced offer of any jurisdiction.
    pub cheapest_any_cost_usd: Option<Decimal>,
    /// Catalog offer key of that offer.
    pub cheapest_any_offer: Option<String>,
    /// Prompt tokens as tollgate counted them with the offer's tokenizer.
    pub counted_input_tokens: Option<u64>,
    /// Visible output tokens (content and visible reasoning) as tollgate counted them.
    pub counted_output_tokens: Option<u64>,
    /// `false` when the provider billed reasoning tollgate never saw (o1): only output
    /// minus reasoning can be checked against the visible text.
    pub output_verifiable: Option<bool>,
}
