//! The savings report over recorded traffic: per comparison group and model, what was
//! spent, what the cheapest offer the policy allowed would have cost (the potential
//! saving), and what the policy itself cost over the cheapest offer anywhere (the
//! residency premium); and per provider, the drift between reported and counted tokens.
//!
//! The sums are the ledger's rollups grouped by model and provider (see
//! `ledger::rollup::contribution` for which records count where), exact `Decimal`s;
//! this file only shapes them. Reading is `ledger::LedgerStore::usage`; serving is
//! `server::savings`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::config::ComparisonGroup;
use crate::ledger::filter::Filter;
use crate::ledger::rollup::columns::Dim;
use crate::ledger::rollup::query::{GroupValue, Groups, UsageQuery};
use crate::ledger::rollup::Sums;

/// The ledger query whose groups [`report`] reads: everything in `filter`'s window,
/// grouped by logical model and provider.
pub fn query(filter: &Filter) -> UsageQuery {
    let (from_ms, to_ms) = filter.bounds_ms();
    UsageQuery {
        from_ms,
        to_ms,
        group_by: vec![Dim::Model, Dim::Provider],
        ..UsageQuery::default()
    }
}

/// Build the report from the groups of [`query`]. `groups` maps models to comparison
/// groups; a model in no group is reported under group `null`.
pub fn report(rows: &Groups, groups: &[ComparisonGroup]) -> Value {
    let mut models: BTreeMap<&str, Sums> = BTreeMap::new();
    let mut drift: BTreeMap<&str, Sums> = BTreeMap::new();
    for (group, sums) in rows {
        let [GroupValue::Text(model), GroupValue::Text(provider)] = group.as_slice() else {
            continue;
        };
        if let Some(model) = model.as_deref().filter(|_| sums.billable_requests > 0) {
            models.entry(model).or_default().merge(sums);
        }
        if let Some(provider) = provider.as_deref().filter(|_| sums.drift_requests > 0) {
            drift.entry(provider).or_default().merge(sums);
        }
    }
    let mut out = Vec::new();
    for (model, t) in &models {
        let member_of: Vec<&str> = groups
            .iter()
            .filter(|g| g.models.iter().any(|m| m == model))
            .map(|g| g.name.as_str())
            .collect();
        let names: Vec<Option<&str>> = if member_of.is_empty() {
            vec![None]
        } else {
            member_of.into_iter().map(Some).collect()
        };
        for group in names {
            out.push(model_row(group, model, t));
        }
    }
    out.sort_by(|a, b| a["group"].as_str().cmp(&b["group"].as_str()));
    let drift: Vec<Value> = drift
        .iter()
        .map(|(provider, d)| {
            json!({
                "provider": provider,
                "requests": d.drift_requests,
                "reported_tokens": d.drift_reported_tokens,
                "counted_tokens": d.drift_counted_tokens,
                "drift_ratio": ratio(d.drift_reported_tokens, d.drift_counted_tokens),
                "requests_with_hidden_reasoning": d.hidden_reasoning_requests,
            })
        })
        .collect();
    json!({"models": out, "drift": drift})
}

fn model_row(group: Option<&str>, model: &str, t: &Sums) -> Value {
    let usd = |d: Decimal| d.normalize().to_string();
    json!({
        "group": group,
        "model": model,
        "requests": t.billable_requests,
        "priced_requests": t.billable_costed_requests,
        "unpriced_requests": t.billable_requests.saturating_sub(t.billable_costed_requests),
        "compared_requests": t.compared_requests,
        "spend_usd": usd(t.billable_cost_usd),
        "cheapest_allowed_usd": usd(t.cheapest_allowed_usd),
        "cheapest_any_usd": usd(t.cheapest_any_usd),
        "potential_saving_usd": usd(t.compared_cost_usd - t.cheapest_allowed_usd),
        "residency_premium_usd": usd(t.cheapest_allowed_usd - t.cheapest_any_usd),
    })
}

/// reported / counted to 4 decimal places, as a string; `None` with nothing counted.
fn ratio(reported: u64, counted: u64) -> Option<String> {
    (counted > 0).then(|| {
        (Decimal::from(reported) / Decimal::from(counted))
            .round_dp(4)
            .normalize()
            .to_string()
    })
}
