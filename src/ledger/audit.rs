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
    #[serde(with = "decimal_text")]
    pub cheapest_allowed_cost_usd: Option<Decimal>,
    /// Catalog offer key of that offer.
    pub cheapest_allowed_offer: Option<String>,
    /// Cost of this usage on the cheapest priced offer of any jurisdiction.
    #[serde(with = "decimal_text")]
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

/// An optional decimal as text, read back from JSON `null` too. The record flattens this
/// struct into itself, and through `flatten` serde hands a `null` to
/// `rust_decimal::serde::str_option` as a unit, which it refuses: a record without these
/// costs (a rejected or unpriced request) could be written as JSON but not read back.
mod decimal_text {
    use std::str::FromStr;

    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(v: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
        rust_decimal::serde::str_option::serialize(v, s)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
        Option::<String>::deserialize(d)?
            .map(|text| Decimal::from_str(&text).map_err(serde::de::Error::custom))
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Regression: a PostgreSQL ledger could not read back a record without comparison
    // costs ("invalid type: null, expected a Decimal"), which every rejected request is.
    #[test]
    fn a_record_without_comparison_costs_reads_back_from_json() {
        let json = serde_json::json!({
            "cheapest_allowed_cost_usd": null,
            "cheapest_any_cost_usd": "0.0105",
        });
        let wrapped: Wrapper = serde_json::from_value(json).unwrap();
        assert_eq!(wrapped.audit.cheapest_allowed_cost_usd, None);
        assert_eq!(
            wrapped.audit.cheapest_any_cost_usd,
            Some(Decimal::new(105, 4))
        );
        let text = serde_json::to_string(&wrapped).unwrap();
        assert!(
            text.contains("\"cheapest_any_cost_usd\":\"0.0105\""),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<Wrapper>(&text).unwrap(), wrapped);
    }

    /// Flattened, as `UsageRecord` carries it.
    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Wrapper {
        #[serde(flatten)]
        audit: PriceAudit,
    }
}
