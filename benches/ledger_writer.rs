//! Ledger writer throughput: synthetic records (`tollgate::seed`, drawn from
//! config/tollgate.example.toml) enqueued through `Ledger::record` as fast as they come
//! and written by the real background writer, into a SQLite file and, when
//! `TOLLGATE_TEST_POSTGRES_URL` is set, into a fresh PostgreSQL database (created and
//! dropped here). The time runs from the first enqueue until `flush` returns, i.e. until
//! every record is durable. Record generation is not timed.
//!
//! Run: `cargo bench --bench ledger_writer` (release build). `LEDGER_BENCH_RECORDS`
//! sets the record count (default 200,000). Figures go in README.md under "Performance".

#![expect(
    clippy::unwrap_used,
    clippy::print_stdout,
    reason = "a benchmark binary: it prints its figures and stops on any failure"
)]

use std::path::Path;
use std::time::Duration;

use tollgate::ledger::postgres::PostgresLedger;
use tollgate::ledger::{Ledger, LedgerOptions, LedgerSink, UsageRecord};
use tollgate::seed::{Generator, SeedOptions};

/// Batch sizes measured: the default (256) and a larger one.
const BATCH_SIZES: [usize; 2] = [256, 1_024];

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

/// Enqueue every record, then wait until all are written. Returns the wall time.
async fn run<S: LedgerSink>(sink: S, records: &[UsageRecord], batch_size: usize) -> Duration {
    let opts = LedgerOptions {
        // Room for every record: the benchmark measures the writer, not drops.
        queue_capacity: records.len() + 1,
        batch_size,
        flush_interval: Duration::from_millis(200),
    };
    let (ledger, writer) = Ledger::start(sink, opts).unwrap();
    let started = tokio::time::Instant::now();
    for r in records {
        ledger.record(r.clone());
    }
    ledger.flush().await.unwrap();
    let took = started.elapsed();
    assert_eq!(ledger.dropped_total(), 0);
    writer.shutdown().await.unwrap();
    took
}

fn row(backend: &str, batch: usize, n: usize, took: Duration) {
    let rate = n as f64 / took.as_secs_f64();
    println!(
        "| {backend} | {batch} | {n} | {:.2} s | {rate:.0} |",
        took.as_secs_f64()
    );
}

async fn postgres_database(admin_url: &str) -> (String, String) {
    let name = format!("tollgate_bench_{}", uuid::Uuid::now_v7().simple());
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    let (base, query) = admin_url
        .split_once('?')
        .map_or((admin_url, None), |(b, q)| (b, Some(q)));
    let mut url = format!("{}/{name}", &base[..base.rfind('/').unwrap()]);
    if let Some(q) = query {
        url = format!("{url}?{q}");
    }
    (name, url)
}

async fn drop_database(admin_url: &str, name: &str) {
    let (client, conn) = tokio_postgres::connect(admin_url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
        .batch_execute(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await
        .unwrap();
}

#[tokio::main]
async fn main() {
    let n: u64 = std::env::var("LEDGER_BENCH_RECORDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200_000);
    let records = records(n);
    println!("| ledger | batch size | records | time to durable | records/s |");
    println!("|---|---|---|---|---|");
    for batch in BATCH_SIZES {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ledger.db");
        let sink =
            tokio::task::spawn_blocking(move || tollgate::ledger::sqlite::SqliteSink::open(&path))
                .await
                .unwrap()
                .unwrap();
        row(
            "SQLite (WAL, synchronous=FULL)",
            batch,
            records.len(),
            run(sink, &records, batch).await,
        );
    }
    let Ok(admin_url) = std::env::var("TOLLGATE_TEST_POSTGRES_URL") else {
        println!("\n(PostgreSQL skipped: TOLLGATE_TEST_POSTGRES_URL is unset)");
        return;
    };
    for batch in BATCH_SIZES {
        let (name, url) = postgres_database(&admin_url).await;
        let pg = PostgresLedger::connect(&url).await.unwrap();
        let first = records.first().unwrap().created_at;
        let last = records.last().unwrap().created_at;
        pg.ensure_partitions(first, last).await.unwrap();
        row(
            "PostgreSQL (monthly partitions)",
            batch,
            records.len(),
            run(pg, &records, batch).await,
        );
        drop_database(&admin_url, &name).await;
    }
}
