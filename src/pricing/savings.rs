//! The savings report over recorded traffic: per comparison group and model, what was
//! spent, what the cheapest offer the policy allowed would have cost (the potential
//! saving), and what the policy itself cost over the cheapest offer anywhere (the
//! residency premium); and per provider, the drift between reported and counted tokens.
//!
//! Pure: it sums the audit columns `metering::audit` stored with each record, exactly,
//! with `Decimal`. Reading records is `ledger::scan`; serving is `server::savings`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::{json, Value};

use crate::config::ComparisonGroup;
use crate::ledger::{PricingStatus, UsageRecord, UsageSource};
use crate::metering::audit::verifiable_pair;

#[derive(Debug, Default)]
struct ModelTotals {
    requests: u64,
    priced: u64,
    unpriced: u64,
    spend: Decimal,
    cheapest_allowed: Decimal,
    cheapest_any: Decimal,
    /// Requests whose spend and both alternatives are known; only these enter savings.
    compared: u64,
    compared_spend: Decimal,
}

#[derive(Debug, Default)]
struct DriftTotals {
    requests: u64,
    reported: u64,
    counted: u64,
    hidden_reasoning: u64,
}

/// Build the report from records (any order). `groups` maps models to comparison groups;
/// a model in no group is reported under group `null`.
pub fn report(records: &[UsageRecord], groups: &[ComparisonGroup]) -> Value {
    let mut models: BTreeMap<&str, ModelTotals> = BTreeMap::new();
    let mut drift: BTreeMap<&str, DriftTotals> = BTreeMap::new();
    for r in records {
        let Some(model) = r.logical_model.as_deref() else {
            continue;
        };
        if r.pricing == PricingStatus::NotApplicable {
            continue;
        }
        let t = models.entry(model).or_default();
        t.requests += 1;
        match r.cost_usd {
            Some(cost) => {
                t.priced += 1;
                t.spend += cost;
                if let (Some(allowed), Some(any)) = (
                    r.audit.cheapest_allowed_cost_usd,
                    r.audit.cheapest_any_cost_usd,
                ) {
                    t.compared += 1;
                    t.compared_spend += cost;
                    t.cheapest_allowed += allowed;
                    t.cheapest_any += any;
                }
            }
            None => t.unpriced += 1,
        }
        if let (UsageSource::Reported, Some(provider), Some((rep, cnt))) =
            (r.usage_source, r.provider.as_deref(), verifiable_pair(r))
        {
            let d = drift.entry(provider).or_default();
            d.requests += 1;
            d.reported += rep;
            d.counted += cnt;
            if r.audit.output_verifiable == Some(false) {
                d.hidden_reasoning += 1;
            }
        }
    }
    let mut rows = Vec::new();
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
            rows.push(model_row(group, model, t));
        }
    }
    rows.sort_by(|a, b| a["group"].as_str().cmp(&b["group"].as_str()));
    let drift: Vec<Value> = drift
        .iter()
        .map(|(provider, d)| {
            json!({
                "provider": provider,
                "requests": d.requests,
                "reported_tokens": d.reported,
                "counted_tokens": d.counted,
                "drift_ratio": ratio(d.reported, d.counted),
                "requests_with_hidden_reasoning": d.hidden_reasoning,
            })
        })
        .collect();
    json!({"models": rows, "drift": drift})
}

fn model_row(group: Option<&str>, model: &str, t: &ModelTotals) -> Value {
    json!({
        "group": group,
        "model": model,
        "requests": t.requests,
        "priced_requests": t.priced,
        "unpriced_requests": t.unpriced,
        "compared_requests": t.compared,
        "spend_usd": t.spend.normalize().to_string(),
        "cheapest_allowed_usd": t.cheapest_allowed.normalize().to_string(),
        "cheapest_any_usd": t.cheapest_any.normalize().to_string(),
        "potential_saving_usd": (t.compared_spend - t.cheapest_allowed).normalize().to_string(),
        "residency_premium_usd": (t.cheapest_allowed - t.cheapest_any).normalize().to_string(),
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
