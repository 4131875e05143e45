//! Text forms of usage answers: CSV (written by the `csv` crate, RFC 4180, one row per
//! group or record, no totals row so a spreadsheet's sum equals the total) and the
//! aligned table that `tollgate report` prints. Formatting only.

use std::borrow::Cow;
use std::fmt::Write as _;

use chrono::SecondsFormat;
use serde_json::Value;

use super::summary::{Percentiles, Stats, UsageSummary};
use super::{RecordPage, UsageError};
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
pub fn summary_csv(s: &UsageSummary) -> Result<String, UsageError> {
    let mut out = CsvText::with_capacity(256 * (s.groups.len() + 1));
    out.row(s.group_by.iter().copied().chain(STAT_COLUMNS))?;
    for g in &s.groups {
        let dims = s.group_by.iter().map(|k| text(g.group.get(*k)));
        let cells: Vec<String> = dims.chain(stat_cells(&g.stats)).collect();
        out.row(cells.iter().map(String::as_str))?;
    }
    Ok(out.into_string()?)
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
pub fn records_csv(p: &RecordPage) -> Result<String, UsageError> {
    let mut out = CsvText::with_capacity(RECORD_ROW_BYTES * (p.requests.len() + 1));
    out.record_header()?;
    for r in &p.requests {
        out.record_row(r)?;
    }
    Ok(out.into_string()?)
}

/// About the size of one record's row, to size a page's buffer once.
pub const RECORD_ROW_BYTES: usize = 320;

/// CSV text being written: RFC 4180 (`\r\n` after every row; a cell is quoted when it
/// holds a comma, a quote or a line break, and inner quotes are doubled) by the `csv`
/// crate, into one buffer for a whole page. Cells a spreadsheet would run as a formula
/// are defused first ([`defused`]).
pub struct CsvText {
    writer: csv::Writer<Vec<u8>>,
    /// Reused for the digits of numeric cells, so a row allocates nothing.
    digits: String,
}

impl CsvText {
    /// An empty text with room for about `bytes` bytes.
    pub fn with_capacity(bytes: usize) -> Self {
        let writer = csv::WriterBuilder::new()
            .terminator(csv::Terminator::CRLF)
            .from_writer(Vec::with_capacity(bytes));
        Self {
            writer,
            digits: String::new(),
        }
    }

    /// Write one row of text cells.
    pub fn row<'a>(&mut self, cells: impl IntoIterator<Item = &'a str>) -> Result<(), csv::Error> {
        for c in cells {
            self.writer.write_field(defused(c).as_bytes())?;
        }
        self.end_row()
    }

    /// The header row of a record export.
    pub fn record_header(&mut self) -> Result<(), csv::Error> {
        self.row(RECORD_COLUMNS)
    }

    /// One record as a row, in [`RECORD_COLUMNS`] order: text as it is, numbers in
    /// decimal, enums by their stored names, `None` as an empty cell.
    pub fn record_row(&mut self, r: &UsageRecord) -> Result<(), csv::Error> {
        let created_at = r.created_at.to_rfc3339_opts(SecondsFormat::AutoSi, true);
        self.text(&r.request_id)?;
        self.text(&created_at)?;
        self.text(&r.key_name)?;
        self.text(&r.route)?;
        for t in [
            &r.logical_model,
            &r.provider,
            &r.upstream_model,
            &r.region,
            &r.jurisdiction,
            &r.processing_scope,
        ] {
            self.text(t.as_deref().unwrap_or(""))?;
        }
        self.text(if r.stream { "true" } else { "false" })?;
        for n in [
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.reasoning_tokens,
        ] {
            self.number(n)?;
        }
        self.text(r.usage_source.as_str())?;
        self.number(r.cost_usd)?;
        self.text(r.price_id.as_deref().unwrap_or(""))?;
        self.text(r.pricing.as_str())?;
        self.number(Some(r.latency_ms))?;
        self.number(r.ttfb_ms)?;
        self.number(Some(r.status))?;
        self.text(r.outcome.as_str())?;
        self.text(r.error_code.as_deref().unwrap_or(""))?;
        self.number(Some(r.attempts))?;
        self.end_row()
    }

    /// The text written so far.
    pub fn into_bytes(self) -> Result<Vec<u8>, csv::Error> {
        self.writer
            .into_inner()
            .map_err(|e| csv::Error::from(e.into_error()))
    }

    /// The text written so far, as a `String` (every cell was UTF-8 text).
    pub fn into_string(self) -> Result<String, csv::Error> {
        let bytes = self.into_bytes()?;
        Ok(String::from_utf8(bytes)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()))
    }

    fn text(&mut self, cell: &str) -> Result<(), csv::Error> {
        self.writer.write_field(defused(cell).as_bytes())
    }

    /// A number's digits; never quoted or defused (a negative number stays a number).
    fn number(&mut self, n: Option<impl std::fmt::Display>) -> Result<(), csv::Error> {
        self.digits.clear();
        if let Some(n) = n {
            // Writing into a String cannot fail.
            let _ = write!(self.digits, "{n}");
        }
        self.writer.write_field(self.digits.as_bytes())
    }

    fn end_row(&mut self) -> Result<(), csv::Error> {
        self.writer.write_record(std::iter::empty::<&[u8]>())
    }
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

/// A cell a spreadsheet would run as a formula (a leading `=`, `+` or `@`, or a `-`
/// that does not start a number) gets a `'` in front, which spreadsheets show as text.
/// Quoting is the `csv` writer's job.
fn defused(cell: &str) -> Cow<'_, str> {
    if cell.starts_with(['=', '+', '@']) || (cell.starts_with('-') && cell.parse::<f64>().is_err())
    {
        Cow::Owned(format!("'{cell}"))
    } else {
        Cow::Borrowed(cell)
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};
    use rust_decimal::Decimal;

    use super::*;
    use crate::ledger::{Outcome, PricingStatus, UsageSource};

    fn row(cells: &[&str]) -> String {
        let mut out = CsvText::with_capacity(0);
        out.row(cells.iter().copied()).unwrap();
        out.into_string().unwrap()
    }

    #[test]
    fn csv_cells_are_quoted_and_formulas_defused() {
        assert_eq!(
            row(&["a,b", "say \"hi\""]),
            "\"a,b\",\"say \"\"hi\"\"\"\r\n"
        );
        assert_eq!(
            row(&["=SUM(A1)", "-1.5", "0.0317", ""]),
            "'=SUM(A1),-1.5,0.0317,\r\n"
        );
        assert_eq!(row(&["-x", "+1", "@a"]), "'-x,'+1,'@a\r\n");
    }

    fn record(i: u32) -> UsageRecord {
        let some = |s: &str| Some(s.to_owned());
        UsageRecord {
            request_id: format!("tg-{i}"),
            created_at: Utc.with_ymd_and_hms(2026, 11, 27, 9, 0, i).unwrap()
                + chrono::Duration::milliseconds(i64::from(i) * 7),
            key_name: "team-a".into(),
            team: some("t"),
            route: "chat_completions".into(),
            logical_model: some("deepseek-r1"),
            provider: i
                .is_multiple_of(2)
                .then(|| "azure-swedencentral".to_owned()),
            upstream_model: some("DeepSeek-R1"),
            region: some("azure:swedencentral"),
            jurisdiction: some("EU"),
            processing_scope: some("global"),
            stream: i.is_multiple_of(3),
            input_tokens: Some(13),
            cached_input_tokens: (i % 2 == 1).then_some(5),
            cache_write_tokens: None,
            cache_write_1h_tokens: None,
            output_tokens: Some(327 + u64::from(i)),
            reasoning_tokens: Some(200),
            usage_source: UsageSource::ALL[i as usize % 4],
            cost_usd: (i % 4 != 3).then(|| Decimal::new(1_981_500 + i64::from(i), 8)),
            price_id: some("azure-ai-foundry/DeepSeek-R1/2025-02-01"),
            pricing: PricingStatus::ALL[i as usize % 3],
            latency_ms: 1234,
            ttfb_ms: i.is_multiple_of(2).then_some(56),
            status: 200,
            outcome: Outcome::ALL[i as usize % 4],
            error_code: i.is_multiple_of(5).then(|| "upstream_timeout".to_owned()),
            attempts: 1 + i % 2,
            policy: crate::ledger::PolicyJson::default(),
            audit: crate::ledger::PriceAudit::default(),
        }
    }

    /// The rendering before the `csv` writer: every column through `serde_json::Value`.
    fn through_json(r: &UsageRecord) -> Vec<String> {
        let v = serde_json::to_value(r).unwrap();
        RECORD_COLUMNS.iter().map(|c| text(v.get(*c))).collect()
    }

    #[test]
    fn record_rows_keep_the_columns_and_cells_of_the_serde_rendering() {
        let page = RecordPage {
            from: String::new(),
            to: String::new(),
            requests: (0..12).map(record).collect(),
            next_cursor: None,
        };
        let text = records_csv(&page).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let header: Vec<String> = reader
            .headers()
            .unwrap()
            .iter()
            .map(str::to_owned)
            .collect();
        assert_eq!(header, RECORD_COLUMNS);
        let rows: Vec<Vec<String>> = reader
            .records()
            .map(|r| r.unwrap().iter().map(str::to_owned).collect())
            .collect();
        let expected: Vec<Vec<String>> = page.requests.iter().map(through_json).collect();
        assert_eq!(rows, expected);
    }

    #[test]
    fn a_cell_with_commas_quotes_and_line_breaks_reads_back_exactly() {
        let nasty = "a, \"quoted\" b\nsecond line\r\nthird, \"\"\"";
        let mut r = record(1);
        r.key_name = nasty.to_owned();
        r.error_code = Some("x\ny".to_owned());
        let page = RecordPage {
            from: String::new(),
            to: String::new(),
            requests: vec![r, record(2)],
            next_cursor: None,
        };
        let text = records_csv(&page).unwrap();
        let mut reader = csv::Reader::from_reader(text.as_bytes());
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2, "{text}");
        assert_eq!(rows[0].get(2), Some(nasty));
        assert_eq!(rows[0].get(24), Some("x\ny"));
        assert_eq!(rows[1].get(0), Some("tg-2"));
    }
}
