//! Importing public price catalogs into tollgate's own: LiteLLM's
//! `model_prices_and_context_window.json` (USD per token) and pydantic's genai-prices
//! (`prices/data.json`, a list of providers, or one provider's YAML file
//! `prices/providers/<id>.yml`: models with USD per 1M tokens).
//!
//! Owns reading those formats into [`ImportRow`]s, exactly: every JSON number is taken
//! from its decimal text (never through an `f64` calculation) and per-token prices are
//! scaled to per-1M with `Decimal`. Writing the rows into a catalog file is `merge`.
//! Long-context tiers and service-tier prices are mapped onto the catalog's (`tiered`).
//! Entries without an input and output price (conditional by date, image-only) are
//! skipped and listed, never guessed.

mod merge;
#[cfg(test)]
mod tests;
mod tiered;

use std::str::FromStr;

use rust_decimal::Decimal;
use serde_json::Value;

pub use merge::{merge, MergeOptions, MergeSummary};
use tiered::Flat;

use super::{PriceTier, ServiceTier};

/// A catalog format tollgate can import.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// LiteLLM's `model_prices_and_context_window.json`.
    Litellm,
    /// pydantic genai-prices' `data.json` (a list of providers), or one provider object
    /// (JSON, or the YAML of `prices/providers/<id>.yml`).
    GenaiPrices,
}

impl Format {
    /// `litellm` or `genai-prices`.
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "litellm" => Some(Self::Litellm),
            "genai-prices" => Some(Self::GenaiPrices),
            _ => None,
        }
    }

    /// Tag used in row ids.
    pub fn tag(self) -> &'static str {
        match self {
            Self::Litellm => "litellm",
            Self::GenaiPrices => "genai-prices",
        }
    }
}

/// One imported price, per 1M tokens, before it gets dates and an id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportRow {
    /// tollgate offer key, `<provider>/<model>`.
    pub offer: String,
    /// The entry's key in the source file (its provenance).
    pub source_key: String,
    /// USD per 1M uncached input tokens.
    pub input_per_mtok: Decimal,
    /// USD per 1M cache-read tokens, when the source gives one.
    pub cached_input_per_mtok: Option<Decimal>,
    /// USD per 1M cache-write tokens, when the source gives one.
    pub cache_write_per_mtok: Option<Decimal>,
    /// USD per 1M output tokens.
    pub output_per_mtok: Decimal,
    /// Long-context tiers, ascending, each naming the prices the row names.
    pub tiers: Vec<PriceTier>,
    /// The service tier this row prices (`flex`, `priority`); `None` = default.
    pub service_tier: Option<ServiceTier>,
}

impl ImportRow {
    fn new(offer: String, source_key: &str, flat: Flat, tiers: Vec<PriceTier>) -> Self {
        ImportRow {
            offer,
            source_key: source_key.to_owned(),
            input_per_mtok: flat.input,
            cached_input_per_mtok: flat.cached,
            cache_write_per_mtok: flat.write,
            output_per_mtok: flat.output,
            tiers,
            service_tier: None,
        }
    }
}

/// What a source file yielded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Parsed {
    /// Rows read, in file order.
    pub rows: Vec<ImportRow>,
    /// Entries left out, each with why.
    pub skipped: Vec<String>,
}

/// Why a source file could not be read at all.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// Not JSON.
    #[error("not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// JSON of the wrong shape.
    #[error("unexpected shape: {0}")]
    Shape(&'static str),
}

/// Read a source file of `format`.
pub fn parse(format: Format, text: &str) -> Result<Parsed, ImportError> {
    let value: Value = match (format, serde_json::from_str(text)) {
        (_, Ok(v)) => v,
        // genai-prices keeps its sources as YAML. YAML numbers arrive as f64; Rust
        // prints an f64 as the shortest decimal that reads back to it, which is the
        // literal as written for any price with fewer than 16 significant digits, so
        // `decimal` below still sees the file's own digits.
        (Format::GenaiPrices, Err(json_err)) => {
            serde_yaml_ng::from_str(text).map_err(|_| json_err)?
        }
        (Format::Litellm, Err(e)) => return Err(e.into()),
    };
    match format {
        Format::Litellm => litellm(&value),
        Format::GenaiPrices => genai_prices(&value),
    }
}

/// A JSON number's exact decimal value, from its text (`3e-06` included).
pub fn decimal(value: &Value) -> Option<Decimal> {
    let Value::Number(n) = value else {
        return None;
    };
    let text = n.to_string();
    let d = if text.contains(['e', 'E']) {
        Decimal::from_scientific(&text).ok()?
    } else {
        Decimal::from_str(&text).ok()?
    };
    (!d.is_sign_negative() || d.is_zero()).then(|| d.normalize())
}

/// Per-token prices arrive as binary floats (`3.3333333333333335e-07`); per million
/// tokens they are rounded to the places a catalog accepts (`file::MTOK_DECIMALS`),
/// far below a cent on any real volume.
fn per_mtok(per_token: Decimal) -> Option<Decimal> {
    per_token
        .checked_mul(Decimal::from(1_000_000_u32))
        .map(|d| d.round_dp(super::file::MTOK_DECIMALS).normalize())
}

/// Offer keys must be one word; LiteLLM keys sometimes already carry the provider prefix.
fn offer_key(provider: &str, model: &str) -> Option<String> {
    let key = if model.starts_with(&format!("{provider}/")) {
        model.to_owned()
    } else {
        format!("{provider}/{model}")
    };
    (!key.contains(char::is_whitespace) && !provider.is_empty()).then_some(key)
}

fn litellm(value: &Value) -> Result<Parsed, ImportError> {
    let Value::Object(entries) = value else {
        return Err(ImportError::Shape(
            "expected an object of model name -> { input_cost_per_token, ... }",
        ));
    };
    let mut out = Parsed::default();
    for (key, entry) in entries {
        // LiteLLM's file documents its fields in a first entry that is no model.
        if key == "sample_spec" {
            continue;
        }
        match litellm_rows(key, entry) {
            Ok(rows) => out.rows.extend(rows),
            Err(why) => out.skipped.push(format!("{key}: {why}")),
        }
    }
    Ok(out)
}

/// An entry's default-tier row, then a row for each service tier it prices.
fn litellm_rows(key: &str, entry: &Value) -> Result<Vec<ImportRow>, String> {
    let price = |name: &str| entry.get(name).and_then(decimal).and_then(per_mtok);
    let provider = entry
        .get("litellm_provider")
        .and_then(Value::as_str)
        .ok_or("no litellm_provider")?;
    let offer = offer_key(provider, key).ok_or("model name contains whitespace")?;
    let base = Flat {
        input: price("input_cost_per_token").ok_or("no input_cost_per_token number")?,
        // DeepSeek's entries name their cache-hit price differently.
        cached: price("cache_read_input_token_cost")
            .or_else(|| price("input_cost_per_token_cache_hit")),
        write: price("cache_creation_input_token_cost"),
        output: price("output_cost_per_token").ok_or("no output_cost_per_token number")?,
    };
    let tiers = tiered::litellm_tiers(entry, "", &base)?;
    let mut rows = vec![ImportRow::new(offer.clone(), key, base, tiers)];
    for tier in [ServiceTier::Flex, ServiceTier::Priority] {
        let Some(flat) = tiered::litellm_service_tier(entry, tier) else {
            continue;
        };
        let flat = flat?;
        let suffix = format!("_{}", tier.as_str());
        let tiers = tiered::litellm_tiers(entry, &suffix, &flat)?;
        rows.push(ImportRow {
            service_tier: Some(tier),
            ..ImportRow::new(offer.clone(), key, flat, tiers)
        });
    }
    Ok(rows)
}

fn genai_prices(value: &Value) -> Result<Parsed, ImportError> {
    let providers: Vec<&Value> = match value {
        Value::Array(list) => list.iter().collect(),
        Value::Object(_) => vec![value],
        _ => {
            return Err(ImportError::Shape(
                "expected a list of providers or one provider",
            ))
        }
    };
    let mut out = Parsed::default();
    for provider in providers {
        let Some(pid) = provider.get("id").and_then(Value::as_str) else {
            out.skipped.push("a provider without an id".into());
            continue;
        };
        let models = provider.get("models").and_then(Value::as_array);
        for model in models.into_iter().flatten() {
            let Some(mid) = model.get("id").and_then(Value::as_str) else {
                out.skipped.push(format!("{pid}: a model without an id"));
                continue;
            };
            let source_key = format!("{pid}/{mid}");
            let prices = match model.get("prices") {
                Some(Value::Object(p)) => tiered::genai_prices(p),
                Some(_) => {
                    Err("conditional prices (a list by date or constraint); add them by hand")
                }
                None => Err("no prices"),
            };
            match (prices, offer_key(pid, mid)) {
                (Ok((flat, tiers)), Some(offer)) => {
                    out.rows
                        .push(ImportRow::new(offer, &source_key, flat, tiers));
                }
                (Ok(_), None) => out
                    .skipped
                    .push(format!("{source_key}: id contains whitespace")),
                (Err(why), _) => out.skipped.push(format!("{source_key}: {why}")),
            }
        }
    }
    Ok(out)
}
