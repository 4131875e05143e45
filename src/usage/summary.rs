//! `/admin/usage` and `tollgate report`: ledger rows in a window folded into groups
//! (requests, errors, tokens by type, exact cost, estimated and unpriced counts,
//! latency and TTFB percentiles). Costs are summed as `rust_decimal` from the
//! ledger's TEXT column, never as SQL REAL, so totals match the ledger to the last
//! decimal. Reads only; blocking.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use rusqlite::{params, Connection};
use rust_decimal::Decimal;
use serde::Serialize;
use serde_json::{Map, Value};

use super::params::{rfc3339, Filter, GroupKey};
use super::UsageError;

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
    /// Requests whose usage tollgate counted itself (no provider report).
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

/// The columns a summary needs, one ledger row.
struct Row {
    created_at_ms: i64,
    key: String,
    model: Option<String>,
    provider: Option<String>,
    jurisdiction: Option<String>,
    tokens: [Option<i64>; 5],
    usage_source: String,
    cost_usd: Option<String>,
    pricing: String,
    latency_ms: i64,
    ttfb_ms: Option<i64>,
    status: i64,
    outcome: String,
}

const SELECT: &str = "SELECT created_at_ms, key_name, logical_model, provider, jurisdiction,
    input_tokens, cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
    usage_source, cost_usd, pricing, latency_ms, ttfb_ms, status, outcome
    FROM requests
    WHERE created_at_ms >= ?1 AND created_at_ms < ?2
      AND (?3 IS NULL OR key_name = ?3) AND (?4 IS NULL OR logical_model = ?4)";

/// Accumulates one group. Latencies are kept to compute exact percentiles: memory is
/// two integers per request in the window.
#[derive(Default)]
struct Acc {
    stats: Stats,
    latency: Vec<u64>,
    ttfb: Vec<u64>,
}

/// Summarise the records matching `filter`, grouped by `group_by`.
pub fn summarize(
    conn: &Connection,
    filter: &Filter,
    group_by: &[GroupKey],
) -> Result<UsageSummary, UsageError> {
    let mut stmt = conn.prepare(SELECT)?;
    let rows = stmt.query_map(
        params![
            filter.from.timestamp_millis(),
            filter.to.timestamp_millis(),
            filter.key,
            filter.model
        ],
        |r| {
            Ok(Row {
                created_at_ms: r.get(0)?,
                key: r.get(1)?,
                model: r.get(2)?,
                provider: r.get(3)?,
                jurisdiction: r.get(4)?,
                tokens: [r.get(5)?, r.get(6)?, r.get(7)?, r.get(8)?, r.get(9)?],
                usage_source: r.get(10)?,
                cost_usd: r.get(11)?,
                pricing: r.get(12)?,
                latency_ms: r.get(13)?,
                ttfb_ms: r.get(14)?,
                status: r.get(15)?,
                outcome: r.get(16)?,
            })
        },
    )?;
    let mut groups: BTreeMap<Vec<Option<String>>, Acc> = BTreeMap::new();
    let mut totals = Acc::default();
    for row in rows {
        let row = row?;
        let cost = row
            .cost_usd
            .as_deref()
            .map(|c| {
                Decimal::from_str(c).map_err(|_| UsageError::InvalidValue {
                    column: "cost_usd",
                    value: c.to_owned(),
                })
            })
            .transpose()?;
        let key: Vec<Option<String>> = group_by.iter().map(|g| dimension(&row, *g)).collect();
        add(groups.entry(key).or_default(), &row, cost);
        add(&mut totals, &row, cost);
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
    Ok(UsageSummary {
        from: rfc3339(filter.from),
        to: rfc3339(filter.to),
        group_by: group_by.iter().map(|g| g.as_str()).collect(),
        groups,
        totals: totals.finish(),
    })
}

fn dimension(row: &Row, g: GroupKey) -> Option<String> {
    let at = || DateTime::<Utc>::from_timestamp_millis(row.created_at_ms);
    match g {
        GroupKey::Key => Some(row.key.clone()),
        GroupKey::Model => row.model.clone(),
        GroupKey::Provider => row.provider.clone(),
        GroupKey::Jurisdiction => row.jurisdiction.clone(),
        GroupKey::Day => at().map(|t| t.format("%Y-%m-%d").to_string()),
        GroupKey::Hour => at().map(|t| t.format("%Y-%m-%dT%H:00:00Z").to_string()),
    }
}

fn add(acc: &mut Acc, row: &Row, cost: Option<Decimal>) {
    let s = &mut acc.stats;
    let n = |v: Option<i64>| v.and_then(|v| u64::try_from(v).ok()).unwrap_or(0);
    s.requests += 1;
    if row.status >= 400 || row.outcome == "upstream_error" {
        s.errors += 1;
    }
    let [input, cached, cache_write, output, reasoning] = row.tokens;
    s.input_tokens += n(input);
    s.cached_input_tokens += n(cached);
    s.cache_write_tokens += n(cache_write);
    s.output_tokens += n(output);
    s.reasoning_tokens += n(reasoning);
    s.cost_usd += cost.unwrap_or_default();
    s.estimated_requests += u64::from(row.usage_source == "estimated");
    s.unpriced_requests += u64::from(row.pricing == "unpriced");
    acc.latency.push(n(Some(row.latency_ms)));
    if let Some(t) = row.ttfb_ms {
        acc.ttfb.push(n(Some(t)));
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
}
