//! `/admin/usage` and `tollgate report`: spend, tokens, errors and latency per group
//! over a window (requests, errors, tokens by type, exact cost, estimated and unpriced
//! counts, latency and TTFB percentiles). The sums come from the ledger's rollups
//! (`LedgerStore::usage`), so memory grows with the number of groups, never with the
//! number of records; costs are exact decimals, so totals match the ledger to the last
//! decimal. Percentiles come from the rollups' fixed latency buckets (see
//! `ledger::rollup::histogram`). This file maps the API's parameters onto that query
//! and its answer onto the response shape.

use chrono::DateTime;
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use super::params::{rfc3339, Filter, GroupKey};
use super::UsageError;
use crate::ledger::rollup::columns::Dim;
use crate::ledger::rollup::query::{GroupValue, Groups, UsageQuery};
use crate::ledger::rollup::{BucketPercentiles, Histogram, Sums};
use crate::ledger::LedgerStore;

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

/// Latency percentiles from the rollups' buckets: for each, the upper bound of the
/// bucket holding the nearest-rank sample, never above the largest sample of the group
/// (so the true nearest-rank value is at most this, and above the bucket below);
/// `None` when there is no sample.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Percentiles {
    pub p50: Option<u64>,
    pub p95: Option<u64>,
    pub p99: Option<u64>,
}

impl From<BucketPercentiles> for Percentiles {
    fn from(p: BucketPercentiles) -> Self {
        Self {
            p50: p.p50,
            p95: p.p95,
            p99: p.p99,
        }
    }
}

/// The rollup dimension of an API group key.
fn dim(g: GroupKey) -> Dim {
    match g {
        GroupKey::Key => Dim::Key,
        GroupKey::Team => Dim::Team,
        GroupKey::Model => Dim::Model,
        GroupKey::Provider => Dim::Provider,
        GroupKey::Jurisdiction => Dim::Jurisdiction,
        GroupKey::Day => Dim::Day,
        GroupKey::Hour => Dim::Hour,
    }
}

/// The ledger query answering `filter` grouped by `group_by`.
pub fn query(filter: &Filter, group_by: &[GroupKey]) -> UsageQuery {
    UsageQuery {
        from_ms: filter.from.timestamp_millis(),
        to_ms: filter.to.timestamp_millis(),
        key: filter.key.clone(),
        model: filter.model.clone(),
        group_by: group_by.iter().map(|g| dim(*g)).collect(),
    }
}

/// Read and summarise the usage of `filter`, grouped by `group_by`.
pub async fn summary(
    store: &LedgerStore,
    filter: &Filter,
    group_by: &[GroupKey],
) -> Result<UsageSummary, UsageError> {
    let groups = store.usage(&query(filter, group_by)).await?;
    Ok(summarize(&groups, filter, group_by))
}

/// Shape the ledger's `groups` (of the query [`query`] builds) as the API answer.
pub fn summarize(groups: &Groups, filter: &Filter, group_by: &[GroupKey]) -> UsageSummary {
    let mut totals = Sums::default();
    let groups = groups
        .iter()
        .map(|(values, sums)| {
            totals.merge(sums);
            Group {
                group: group_by
                    .iter()
                    .zip(values)
                    .map(|(g, v)| (g.as_str().to_owned(), json_value(*g, v)))
                    .collect(),
                stats: stats(sums),
            }
        })
        .collect();
    UsageSummary {
        from: rfc3339(filter.from),
        to: rfc3339(filter.to),
        group_by: group_by.iter().map(|g| g.as_str()).collect(),
        groups,
        totals: stats(&totals),
    }
}

fn json_value(g: GroupKey, v: &GroupValue) -> Value {
    match v {
        GroupValue::Text(t) => t.clone().map_or(Value::Null, Value::from),
        GroupValue::Time(ms) => {
            let format = match g {
                GroupKey::Hour => "%Y-%m-%dT%H:00:00Z",
                _ => "%Y-%m-%d",
            };
            DateTime::from_timestamp_millis(*ms)
                .map_or(Value::Null, |t| Value::from(t.format(format).to_string()))
        }
    }
}

fn stats(s: &Sums) -> Stats {
    let percentiles = |h: &Histogram| Percentiles::from(h.percentiles());
    Stats {
        requests: s.requests,
        errors: s.errors,
        input_tokens: s.input_tokens,
        cached_input_tokens: s.cached_input_tokens,
        cache_write_tokens: s.cache_write_tokens,
        output_tokens: s.output_tokens,
        reasoning_tokens: s.reasoning_tokens,
        cost_usd: s.cost_usd.normalize(),
        estimated_requests: s.estimated_requests,
        unpriced_requests: s.unpriced_requests,
        estimated_share: if s.requests > 0 {
            s.estimated_requests as f64 / s.requests as f64
        } else {
            0.0
        },
        latency_ms: percentiles(&s.latency),
        ttfb_ms: percentiles(&s.ttfb),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::rollup::contribution;
    use crate::ledger::UsageRecord;

    // Regression: issue 10 — summed u64::MAX token counts wrapped the totals. Counts
    // now saturate at i64::MAX (what a BIGINT rollup column holds), money at the
    // largest amount one record may add times the records.
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
        let (_, one) = contribution(&record);
        let mut sums = one.clone();
        sums.merge(&one);
        let s = stats(&sums);
        assert_eq!(s.input_tokens, i64::MAX as u64);
        assert_eq!(s.output_tokens, 2);
        assert_eq!(s.cost_usd, Decimal::from(i64::MAX) / Decimal::from(500_000));
        assert_eq!(s.estimated_requests, 2);
    }
}
