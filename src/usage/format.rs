//! Text forms of usage answers: CSV (RFC 4180 quoting, one row per group or record,
//! no totals row so a spreadsheet's sum equals the total) and the aligned table that
//! `tollgate report` prints. Formatting only.

use serde_json::Value;

use super::summary::{Percentiles, Stats, UsageSummary};
use super::RecordPage;
use crate::ledger::UsageRecord;

const STAT_COLUMNS: [&str; 17] = [
    "requests",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "cost_usd",
    "estimated_requests",
    "unpriced_requests",
    "estimated_share",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "ttfb_p50_ms",
    "ttfb_p95_ms",
    "ttfb_p99_ms",
];

/// One CSV row per group: the group's dimensions, then its numbers.
pub fn summary_csv(s: &UsageSummary) -> String {
    let mut out = String::new();
    let header: Vec<&str> = s.group_by.iter().copied().chain(STAT_COLUMNS).collect();
    push_row(&mut out, header.iter().map(|h| (*h).to_owned()));
    for g in &s.groups {
        let dims = s.group_by.iter().map(|k| text(g.group.get(*k)));
        push_row(&mut out, dims.chain(stat_cells(&g.stats)));
    }
    out
}

/// The columns of a record's CSV row: every field but the policy decision (nested JSON).
const RECORD_COLUMNS: [&str; 26] = [
    "request_id",
    "created_at",
    "key_name",
    "route",
    "logical_model",
    "provider",
    "upstream_model",
    "region",
    "jurisdiction",
    "processing_scope",
    "stream",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "usage_source",
    "cost_usd",
    "price_id",
    "pricing",
    "latency_ms",
    "ttfb_ms",
    "status",
    "outcome",
    "error_code",
    "attempts",
];

/// One CSV row per record (the policy decision is left out: it is nested JSON).
pub fn records_csv(p: &RecordPage) -> String {
    let mut out = String::new();
    push_record_header(&mut out);
    for r in &p.requests {
        push_record_row(&mut out, r);
    }
    out
}

/// The header row of [`records_csv`], for writing records a row at a time.
pub fn push_record_header(out: &mut String) {
    push_row(out, RECORD_COLUMNS.iter().map(|c| (*c).to_owned()));
}

/// One record as a row of [`records_csv`].
pub fn push_record_row(out: &mut String, r: &UsageRecord) {
    let v = serde_json::to_value(r).unwrap_or(Value::Null);
    push_row(out, RECORD_COLUMNS.iter().map(|c| text(v.get(*c))));
}

/// An aligned plain-text table, one line per group and a total line.
pub fn summary_table(s: &UsageSummary) -> String {
    let head = [
        "requests", "errors", "input", "output", "cost_usd", "est%", "unpriced", "p50_ms", "p95_ms",
    ];
    let mut rows: Vec<Vec<String>> = Vec::new();
    rows.push(
        s.group_by
            .iter()
            .map(|g| (*g).to_owned())
            .chain(head.map(str::to_owned))
            .collect(),
    );
    for g in &s.groups {
        let dims = s.group_by.iter().map(|k| match g.group.get(*k) {
            Some(Value::String(v)) => v.clone(),
            _ => "-".to_owned(),
        });
        rows.push(dims.chain(table_cells(&g.stats)).collect());
    }
    let mut total: Vec<String> = vec![String::new(); s.group_by.len()];
    if let Some(first) = total.first_mut() {
        "TOTAL".clone_into(first);
    } else {
        total.push("TOTAL".to_owned());
        if let Some(h) = rows.first_mut() {
            h.insert(0, String::new());
        }
    }
    rows.push(total.into_iter().chain(table_cells(&s.totals)).collect());
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|i| {
            rows.iter()
                .filter_map(|r| r.get(i))
                .map(String::len)
                .max()
                .unwrap_or(0)
        })
        .collect();
    let mut out = format!("usage from {} to {}\n", s.from, s.to);
    for row in &rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .enumerate()
            .map(|(i, (c, w))| {
                if i < s.group_by.len().max(1) {
                    format!("{c:<w$}")
                } else {
                    format!("{c:>w$}")
                }
            })
            .collect();
        out.push_str(cells.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn table_cells(s: &Stats) -> impl Iterator<Item = String> {
    let opt = |v: Option<u64>| v.map_or("-".to_owned(), |v| v.to_string());
    [
        s.requests.to_string(),
        s.errors.to_string(),
        s.input_tokens.to_string(),
        s.output_tokens.to_string(),
        s.cost_usd.to_string(),
        format!("{:.1}", s.estimated_share * 100.0),
        s.unpriced_requests.to_string(),
        opt(s.latency_ms.p50),
        opt(s.latency_ms.p95),
    ]
    .into_iter()
}

fn stat_cells(s: &Stats) -> impl Iterator<Item = String> {
    let p = |p: &Percentiles| {
        [p.p50, p.p95, p.p99].map(|v| v.map(|v| v.to_string()).unwrap_or_default())
    };
    [
        s.requests.to_string(),
        s.errors.to_string(),
        s.input_tokens.to_string(),
        s.cached_input_tokens.to_string(),
        s.cache_write_tokens.to_string(),
        s.output_tokens.to_string(),
        s.reasoning_tokens.to_string(),
        s.cost_usd.to_string(),
        s.estimated_requests.to_string(),
        s.unpriced_requests.to_string(),
        s.estimated_share.to_string(),
    ]
    .into_iter()
    .chain(p(&s.latency_ms))
    .chain(p(&s.ttfb_ms))
}

/// A JSON value as a CSV cell: strings bare, null empty, anything else as JSON.
fn text(v: Option<&Value>) -> String {
    match v {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

fn push_row(out: &mut String, cells: impl Iterator<Item = String>) {
    let quoted: Vec<String> = cells.map(|c| quote(&c)).collect();
    out.push_str(&quoted.join(","));
    out.push_str("\r\n");
}

/// RFC 4180: quote a cell holding a comma, quote or line break; double inner quotes.
/// A leading `=`, `+`, `-` or `@` is prefixed with `'` so spreadsheets do not run it.
fn quote(cell: &str) -> String {
    let cell = if cell.starts_with(['=', '+', '@'])
        || (cell.starts_with('-') && cell.parse::<f64>().is_err())
    {
        format!("'{cell}")
    } else {
        cell.to_owned()
    };
    if cell.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", cell.replace('"', "\"\""))
    } else {
        cell
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(quote("a,b"), "\"a,b\"");
        assert_eq!(quote("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(quote("=SUM(A1)"), "'=SUM(A1)");
        assert_eq!(quote("-1.5"), "-1.5");
        assert_eq!(quote("0.0317"), "0.0317");
    }
}
