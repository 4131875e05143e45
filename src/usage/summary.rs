//! `/admin/usage` and `tollgate report`: ledger rows in a window folded into groups
//! (requests, errors, tokens by type, exact cost, estimated and unpriced counts,
//! latency and TTFB percentiles). Costs are summed as `rust_decimal` from the
//! ledger's exact values, never as floating point, so totals match the ledger to the
//! last decimal. A pure fold over records read by `ledger::LedgerStore`.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use super::params::{rfc3339, Filter, GroupKey};
use crate::ledger::{Outcome, PricingStatus, UsageRecord, UsageSource};

/// The answer of `/admin/usage` (the dashboard consumes this exact shape).
#[derive(Debug, Clone, Serialize)]
pub struct UsageSummary {
    pub from: String,
    pub to: String,
    pub group_by: Vec<&'static str>,
    pub groups: Vec<Group>,
    pub totals: Stats,
}

/// One group: its dimension values (`null` when the record has none, e.g. no
/// provider was reached) and its numbers.
#[derive(Debug, Clone, Serialize)]
pub struct Group {
    pub group: Map<String, Value>,
    #[serde(flatten)]
    pub stats: Stats,
}

/// The numbers of a group or of the whole window.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Stats {
    pub requests: u64,
    /// Requests answered with an error status, or whose stream broke upstream.
    pub errors: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Exact sum of the priced requests' costs (unpriced requests add nothing).
    pub cost_usd: Decimal,
    /// Requests whose usage tollgate counted itself (no provider report, or an
    /// implausible one).
    pub estimated_requests: u64,
    /// Requests with billable usage but no catalog price.
    pub unpriced_requests: u64,
    /// `estimated_requests / requests`; 0 when there are no requests.
    pub estimated_share: f64,
    pub latency_ms: Percentiles,
    /// Over the requests that sent a first byte.
    pub ttfb_ms: Percentiles,
}

/// Nearest-rank percentiles; `None` when there is no sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

/// Accumulates one group. Latencies are kept to compute exact percentiles: memory is
/// two integers per request in the window.
#[derive(Default)]
struct Acc {
    stats: Stats,
    latency: Vec<u64>,
    ttfb: Vec<u64>,
}

/// Summarise `records` (those of the ledger matching `filter`, as
/// `LedgerStore::records` returns them), grouped by `group_by`.
pub fn summarize(records: &[UsageRecord], filter: &Filter, group_by: &[GroupKey]) -> UsageSummary {
    let mut groups: BTreeMap<Vec<Option<String>>, Acc> = BTreeMap::new();
    let mut totals = Acc::default();
    for record in records {
        let key: Vec<Option<String>> = group_by.iter().map(|g| dimension(record, *g)).collect();
        add(groups.entry(key).or_default(), record);
        add(&mut totals, record);
    }
    let groups = groups
        .into_iter()
        .map(|(values, acc)| Group {
            group: group_by
                .iter()
                .zip(values)
                .map(|(g, v)| (g.as_str().to_owned(), v.map_or(Value::Null, Value::from)))
                .collect(),
            stats: acc.finish(),
        })
        .collect();
    UsageSummary {
        from: rfc3339(filter.from),
        to: rfc3339(filter.to),
        group_by: group_by.iter().map(|g| g.as_str()).collect(),
        groups,
        totals: totals.finish(),
    }
}

fn dimension(r: &UsageRecord, g: GroupKey) -> Option<String> {
    match g {
        GroupKey::Key => Some(r.key_name.clone()),
        GroupKey::Model => r.logical_model.clone(),
        GroupKey::Provider => r.provider.clone(),
        GroupKey::Jurisdiction => r.jurisdiction.clone(),
        GroupKey::Day => Some(r.created_at.format("%Y-%m-%d").to_string()),
        GroupKey::Hour => Some(r.created_at.format("%Y-%m-%dT%H:00:00Z").to_string()),
    }
}

fn add(acc: &mut Acc, r: &UsageRecord) {
    let s = &mut acc.stats;
    // Saturating sums: a record a ledger holds (whatever wrote it) never wraps a total.
    let add = |total: &mut u64, v: Option<u64>| *total = total.saturating_add(v.unwrap_or(0));
    let count = |total: &mut u64, yes: bool| *total = total.saturating_add(u64::from(yes));
    count(&mut s.requests, true);
    count(
        &mut s.errors,
        r.status >= 400 || r.outcome == Outcome::UpstreamError,
    );
    add(&mut s.input_tokens, r.input_tokens);
    add(&mut s.cached_input_tokens, r.cached_input_tokens);
    add(&mut s.cache_write_tokens, r.cache_write_tokens);
    add(&mut s.output_tokens, r.output_tokens);
    add(&mut s.reasoning_tokens, r.reasoning_tokens);
    s.cost_usd = s
        .cost_usd
        .checked_add(r.cost_usd.unwrap_or_default())
        .unwrap_or(Decimal::MAX);
    // Implausible reports were billed from tollgate's own count: estimates too.
    count(
        &mut s.estimated_requests,
        matches!(
            r.usage_source,
            UsageSource::Estimated | UsageSource::Implausible
        ),
    );
    count(
        &mut s.unpriced_requests,
        r.pricing == PricingStatus::Unpriced,
    );
    acc.latency.push(r.latency_ms);
    if let Some(t) = r.ttfb_ms {
        acc.ttfb.push(t);
    }
}

impl Acc {
    fn finish(mut self) -> Stats {
        let mut s = self.stats;
        if s.requests > 0 {
            s.estimated_share = s.estimated_requests as f64 / s.requests as f64;
        }
        s.latency_ms = percentiles(&mut self.latency);
        s.ttfb_ms = percentiles(&mut self.ttfb);
        s
    }
}

/// Nearest-rank percentiles (the smallest sample with at least p% of samples at or
/// below it): always a value that was observed, never an interpolation.
fn percentiles(samples: &mut [u64]) -> Percentiles {
    samples.sort_unstable();
    let at = |p: usize| {
        let rank = (p * samples.len()).div_ceil(100).max(1);
        samples.get(rank - 1).copied()
    };
    Percentiles {
        p50: at(50),
        p95: at(95),
        p99: at(99),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let mut v: Vec<u64> = (1..=100).rev().collect();
        let p = percentiles(&mut v);
        assert_eq!((p.p50, p.p95, p.p99), (Some(50), Some(95), Some(99)));
        assert_eq!(percentiles(&mut []), Percentiles::default());
        assert_eq!(percentiles(&mut [7]).p99, Some(7));
    }

    // Regression: issue 10 — summed u64::MAX token counts wrapped the totals.
    #[test]
    fn totals_saturate_instead_of_wrapping() {
        let json = r#"{"request_id":"r","created_at":"2025-01-01T00:00:00Z","key_name":"k",
            "route":"chat_completions","logical_model":null,"provider":null,"upstream_model":null,
            "region":null,"jurisdiction":null,"processing_scope":null,"stream":false,
            "input_tokens":18446744073709551615,"cached_input_tokens":null,"cache_write_tokens":null,
            "output_tokens":1,"reasoning_tokens":null,"usage_source":"implausible",
            "cost_usd":"79228162514264337593543950335","price_id":null,"pricing":"priced",
            "latency_ms":1,"ttfb_ms":null,"status":200,"outcome":"completed","error_code":null,
            "attempts":1,"policy":null}"#;
        let record: UsageRecord = serde_json::from_str(json).unwrap();
        let mut acc = Acc::default();
        add(&mut acc, &record);
        add(&mut acc, &record);
        let s = acc.finish();
        assert_eq!(s.input_tokens, u64::MAX);
        assert_eq!(s.output_tokens, 2);
        assert_eq!(s.cost_usd, Decimal::MAX);
        assert_eq!(s.estimated_requests, 2);
    }
}
