//! CSV rows/s of a record export, formatting only (no ledger reads): synthetic records
//! (`tollgate::seed`, drawn from config/tollgate.example.toml) written a page of 1,000
//! at a time, as `/admin/export` writes them. Two ways side by side: today's
//! `usage::format::CsvText` (the `csv` crate, one buffer per page, cells straight from
//! the record) and the way before it (each record through `serde_json::to_value`, each
//! cell quoted by hand into a `String`), kept here only as the baseline.
//!
//! Run: `cargo bench --bench export_csv` (release build). `EXPORT_BENCH_RECORDS` sets
//! the record count (default 200,000). Figures go in README.md under "Performance".

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark binary: it prints its figures and stops on any failure"
)]

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tollgate::ledger::UsageRecord;
use tollgate::seed::{Generator, SeedOptions};
use tollgate::usage::format::{CsvText, RECORD_ROW_BYTES};

const PAGE: usize = 1_000;
const RUNS: usize = 5;

fn records(n: u64) -> Vec<UsageRecord> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/tollgate.example.toml");
    let settings = tollgate::check_settings_skipping_secrets(&path).unwrap();
    let opts = SeedOptions {
        records: n,
        end: chrono::Utc::now(),
        days: 90,
        seed: 1,
    };
    Generator::new(&settings, &opts).unwrap().collect()
}

fn with_csv_crate(records: &[UsageRecord]) -> usize {
    let mut bytes = 0;
    for page in records.chunks(PAGE) {
        let mut text = CsvText::with_capacity(RECORD_ROW_BYTES * (page.len() + 1));
        for r in page {
            text.record_row(r).unwrap();
        }
        bytes += text.into_bytes().unwrap().len();
    }
    bytes
}

/// The columns of the export, as the baseline reads them out of a JSON object.
const COLUMNS: [&str; 26] = [
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

fn through_json(records: &[UsageRecord]) -> usize {
    let mut bytes = 0;
    for page in records.chunks(PAGE) {
        let mut out = String::new();
        for r in page {
            let v = serde_json::to_value(r).unwrap_or(Value::Null);
            let cells: Vec<String> = COLUMNS
                .iter()
                .map(|c| match v.get(*c) {
                    None | Some(Value::Null) => String::new(),
                    Some(Value::String(s)) => quote(s),
                    Some(other) => quote(&other.to_string()),
                })
                .collect();
            out.push_str(&cells.join(","));
            out.push_str("\r\n");
        }
        bytes += out.len();
    }
    bytes
}

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

/// The median of `RUNS` timings of `f` over `records`, and the bytes it wrote.
fn median(records: &[UsageRecord], f: fn(&[UsageRecord]) -> usize) -> (Duration, usize) {
    let mut times = Vec::new();
    let mut bytes = 0;
    for _ in 0..RUNS {
        let started = Instant::now();
        bytes = std::hint::black_box(f(std::hint::black_box(records)));
        times.push(started.elapsed());
    }
    times.sort();
    (times[RUNS / 2], bytes)
}

fn main() {
    let n: u64 = std::env::var("EXPORT_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let records = records(n);
    println!("export CSV formatting, {n} records, pages of {PAGE}, median of {RUNS} runs");
    for (name, f) in [
        (
            "csv crate (CsvText)",
            with_csv_crate as fn(&[UsageRecord]) -> usize,
        ),
        ("serde_json::Value + hand quoting (before)", through_json),
    ] {
        let (took, bytes) = median(&records, f);
        let rate = n as f64 / took.as_secs_f64();
        println!(
            "  {name:<42} {:>8.3} s  {rate:>12.0} rows/s  {:>6.1} MB",
            took.as_secs_f64(),
            bytes as f64 / 1e6
        );
    }
}
