//! The price rules the public catalogs carry beyond one flat rate, mapped onto the
//! catalog's own: long-context tiers and service-tier rows.
//!
//! - LiteLLM names a long-context price `<class>_above_<N>k_tokens` (N·1000 input
//!   tokens; LiteLLM bills the tier when the prompt is *more than* that, as the catalog
//!   does) and a service tier's price `<class>_flex` / `<class>_priority`; the two
//!   combine as `<class>_above_<N>k_tokens_priority`.
//! - genai-prices writes a tiered class as `{ base, tiers: [ { start, price } ] }`, the
//!   tier's price applying to the whole request once total input is more than `start`.
//!
//! The catalog's tier names every price its row names, so a class the source does not
//! tier at a threshold is written there at the price the source would bill (its base,
//! or its own lower tier): the imported row bills exactly what the source computes.

use std::collections::BTreeSet;

use rust_decimal::Decimal;
use serde_json::{Map, Value};

use super::{decimal, per_mtok};
use crate::catalog::{PriceTier, ServiceTier};

/// One price per token class, per 1M tokens: a row's, before tiers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Flat {
    pub input: Decimal,
    pub cached: Option<Decimal>,
    pub write: Option<Decimal>,
    pub output: Decimal,
}

/// LiteLLM's class names, in `Flat`'s order.
const INPUT: &str = "input_cost_per_token";
const CACHED: &str = "cache_read_input_token_cost";
const WRITE: &str = "cache_creation_input_token_cost";
const OUTPUT: &str = "output_cost_per_token";

/// A LiteLLM per-token price, per 1M tokens; `null` is absent.
fn litellm_price(entry: &Value, name: &str) -> Option<Decimal> {
    entry.get(name).and_then(decimal).and_then(per_mtok)
}

/// The long-context tiers of a LiteLLM entry for `base` (the entry's own rates, or a
/// service tier's with `suffix` = `"_flex"` / `"_priority"`).
pub(super) fn litellm_tiers(
    entry: &Value,
    suffix: &str,
    base: &Flat,
) -> Result<Vec<PriceTier>, String> {
    let thresholds: BTreeSet<u64> = entry
        .as_object()
        .into_iter()
        .flat_map(Map::keys)
        .filter_map(|key| litellm_threshold(key, suffix))
        .collect();
    let mut tiers = Vec::with_capacity(thresholds.len());
    for n in thresholds {
        let at = |class: &str| litellm_price(entry, &format!("{class}_above_{n}k_tokens{suffix}"));
        let above = n
            .checked_mul(1000)
            .ok_or("a threshold too large to count")?;
        let optional = |class: &str, base: Option<Decimal>| match (at(class), base) {
            (Some(_), None) => Err(format!(
                "{class}_above_{n}k_tokens{suffix} without a base {class}{suffix}; add it by hand"
            )),
            (price, base) => Ok(price.or(base)),
        };
        tiers.push(PriceTier {
            above_input_tokens: above,
            input_per_mtok: at(INPUT).unwrap_or(base.input),
            cached_input_per_mtok: optional(CACHED, base.cached)?,
            cache_write_per_mtok: optional(WRITE, base.write)?,
            cache_write_1h_per_mtok: None,
            output_per_mtok: at(OUTPUT).unwrap_or(base.output),
        });
    }
    Ok(tiers)
}

/// `N` of a key `<class>_above_<N>k_tokens<suffix>`.
fn litellm_threshold(key: &str, suffix: &str) -> Option<u64> {
    [INPUT, CACHED, WRITE, OUTPUT].iter().find_map(|class| {
        let n = key
            .strip_prefix(class)?
            .strip_prefix("_above_")?
            .strip_suffix(suffix)?
            .strip_suffix("k_tokens")?;
        n.parse::<u64>().ok().filter(|n| *n > 0)
    })
}

/// The flat rates LiteLLM gives a service tier (`_flex`, `_priority`), if it gives
/// both an input and an output price for it.
pub(super) fn litellm_service_tier(
    entry: &Value,
    tier: ServiceTier,
) -> Option<Result<Flat, String>> {
    let suffix = format!("_{}", tier.as_str());
    let price = |class: &str| litellm_price(entry, &format!("{class}{suffix}"));
    match (price(INPUT), price(OUTPUT)) {
        (None, None) => None,
        (Some(input), Some(output)) => Some(Ok(Flat {
            input,
            cached: price(CACHED),
            write: price(WRITE),
            output,
        })),
        _ => Some(Err(format!(
            "{} tier: needs both {INPUT}{suffix} and {OUTPUT}{suffix}",
            tier.as_str()
        ))),
    }
}

/// One genai-prices class: a number, or `{ base, tiers: [ { start, price } ] }`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Class {
    base: Decimal,
    /// (start, price), as the source lists them.
    tiers: Vec<(u64, Decimal)>,
}

impl Class {
    /// The price a request with more than `threshold` input tokens pays (a tier
    /// starting at `threshold` or below, the highest; else the base).
    fn at(&self, threshold: u64) -> Decimal {
        self.tiers
            .iter()
            .filter(|(start, _)| *start <= threshold)
            .max_by_key(|(start, _)| *start)
            .map_or(self.base, |(_, price)| *price)
    }
}

fn genai_class(v: &Value) -> Result<Class, &'static str> {
    if let Some(base) = decimal(v) {
        return Ok(Class {
            base,
            tiers: Vec::new(),
        });
    }
    let bad = "a price that is neither a number nor { base, tiers }; add it by hand";
    let Value::Object(tiered) = v else {
        return Err(bad);
    };
    let base = tiered.get("base").and_then(decimal).ok_or(bad)?;
    let tiers = match tiered.get("tiers") {
        None => Vec::new(),
        Some(Value::Array(list)) => list
            .iter()
            .map(|t| {
                let start = t.get("start").and_then(Value::as_u64).filter(|s| *s > 0);
                let price = t.get("price").and_then(decimal);
                start.zip(price).ok_or(bad)
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(bad),
    };
    Ok(Class { base, tiers })
}

/// A genai-prices `prices` object as flat base rates and the catalog's tiers.
pub(super) fn genai_prices(p: &Map<String, Value>) -> Result<(Flat, Vec<PriceTier>), &'static str> {
    let class = |name: &str| p.get(name).map(genai_class).transpose();
    let input = class("input_mtok")?.ok_or("no input_mtok")?;
    let output = class("output_mtok")?.ok_or("no output_mtok")?;
    let cached = class("cache_read_mtok")?;
    let write = class("cache_write_mtok")?;
    let all = [Some(&input), cached.as_ref(), write.as_ref(), Some(&output)];
    let thresholds: BTreeSet<u64> = all
        .iter()
        .flatten()
        .flat_map(|c| c.tiers.iter().map(|(start, _)| *start))
        .collect();
    let flat = Flat {
        input: input.base,
        cached: cached.as_ref().map(|c| c.base),
        write: write.as_ref().map(|c| c.base),
        output: output.base,
    };
    let tiers = thresholds
        .into_iter()
        .map(|t| PriceTier {
            above_input_tokens: t,
            input_per_mtok: input.at(t),
            cached_input_per_mtok: cached.as_ref().map(|c| c.at(t)),
            cache_write_per_mtok: write.as_ref().map(|c| c.at(t)),
            cache_write_1h_per_mtok: None,
            output_per_mtok: output.at(t),
        })
        .collect();
    Ok((flat, tiers))
}
