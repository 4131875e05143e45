//! The SQLite sink against real files in a temporary directory.

use std::path::Path;

use chrono::{DateTime, Timelike};
use rusqlite::Connection;

use super::{bare, full, opts, HOUR};
use crate::ledger::filter::Filter;
use crate::ledger::sqlite::SqliteSink;
use crate::ledger::{Ledger, LedgerError, LedgerOptions};

fn count(path: &Path) -> i64 {
    let conn = Connection::open(path).unwrap();
    conn.query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap()
}

#[tokio::test]
async fn records_round_trip_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    ledger.record(full("full"));
    ledger.record(bare("bare"));
    assert_eq!(ledger.find("full").await.unwrap(), Some(full("full")));
    assert_eq!(ledger.find("bare").await.unwrap(), Some(bare("bare")));
    assert_eq!(ledger.find("never-made").await.unwrap(), None);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn find_right_after_record_sees_it_without_waiting_for_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    // An hour-long interval: only the barrier can have written the record.
    let (ledger, writer) = Ledger::open_sqlite(&path, opts(100, 256, HOUR))
        .await
        .unwrap();
    ledger.record(full("fresh"));
    assert_eq!(ledger.find("fresh").await.unwrap(), Some(full("fresh")));
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_writes_every_queued_record() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, opts(10_000, 256, HOUR))
        .await
        .unwrap();
    for i in 0..5_000 {
        ledger.record(bare(&format!("r{i}")));
    }
    writer.shutdown().await.unwrap();
    assert_eq!(ledger.dropped_total(), 0);
    assert_eq!(count(&path), 5_000);
}

#[tokio::test]
async fn reopening_an_existing_file_keeps_old_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    ledger.record(full("old"));
    writer.shutdown().await.unwrap();

    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    ledger.record(bare("new"));
    assert_eq!(ledger.find("old").await.unwrap(), Some(full("old")));
    assert_eq!(ledger.find("new").await.unwrap(), Some(bare("new")));
    writer.shutdown().await.unwrap();
    assert_eq!(count(&path), 2);
}

#[tokio::test]
async fn duplicate_request_id_keeps_the_first_record_and_the_writer_going() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    let first = full("dup");
    let mut second = full("dup");
    second.key_name = "someone-else".to_owned();
    ledger.record(first.clone());
    ledger.record(second.clone());
    ledger.record(bare("after"));
    assert_eq!(ledger.find("dup").await.unwrap(), Some(first.clone()));
    // Also across batches: a later duplicate still loses.
    ledger.record(second);
    ledger.record(bare("later"));
    assert_eq!(ledger.find("dup").await.unwrap(), Some(first));
    assert_eq!(ledger.find("later").await.unwrap(), Some(bare("later")));
    writer.shutdown().await.unwrap();
    assert_eq!(count(&path), 3);
}

#[tokio::test]
async fn columns_hold_exact_text_and_the_schema_is_versioned_and_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    ledger.record(full("a"));
    writer.shutdown().await.unwrap();

    let conn = Connection::open(&path).unwrap();
    let (cost, cost_type, created, created_ms, policy): (String, String, String, i64, String) =
        conn.query_row(
            "SELECT cost_usd, typeof(cost_usd), created_at, created_at_ms, policy FROM requests",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    assert_eq!((cost.as_str(), cost_type.as_str()), ("0.170595", "text"));
    assert_eq!(created, "2025-03-01T12:00:00.123Z");
    assert_eq!(created_ms, 1_740_830_400_123);
    assert_eq!(
        serde_json::from_str::<serde_json::Value>(&policy).unwrap(),
        full("a").policy.to_value()
    );

    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let mode: String = conn
        .query_row("PRAGMA journal_mode", [], |r| r.get(0))
        .unwrap();
    assert_eq!(mode, "wal");
    let mut stmt = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'requests' AND sql IS NOT NULL ORDER BY name")
        .unwrap();
    let indexes: Vec<String> = stmt
        .query_map([], |r| r.get(0))
        .unwrap()
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        indexes,
        [
            "requests_created_at_ms",
            "requests_key_time",
            "requests_model_time",
        ]
    );
}

#[tokio::test]
async fn created_at_is_kept_to_the_millisecond() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    let mut record = bare("ns");
    record.created_at = DateTime::from_timestamp(1_740_830_400, 123_456_789).unwrap();
    ledger.record(record);
    let found = ledger.find("ns").await.unwrap().unwrap();
    assert_eq!(found.created_at.nanosecond(), 123_000_000);
    writer.shutdown().await.unwrap();
}

#[tokio::test]
async fn a_file_from_a_newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    Connection::open(&path)
        .unwrap()
        .pragma_update(None, "user_version", 99)
        .unwrap();
    let opened = Ledger::open_sqlite(&path, LedgerOptions::default()).await;
    assert!(matches!(
        opened,
        Err(LedgerError::SchemaTooNew {
            found: 99,
            supported: 5,
            ..
        })
    ));
}

#[tokio::test]
async fn open_creates_missing_parent_directories() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("var/lib/tollgate/ledger.db");
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    ledger.record(bare("a"));
    writer.shutdown().await.unwrap();
    assert_eq!(count(&path), 1);
}

#[tokio::test]
async fn a_version_1_file_gains_the_audit_columns_and_keeps_its_records() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(super::super::sqlite::MIGRATIONS[0])
            .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        conn.execute(
            "INSERT INTO requests (request_id, created_at, created_at_ms, key_name, route, stream, usage_source, pricing, latency_ms, status, outcome, attempts, policy)
             VALUES ('old', '2025-03-01T12:00:00.000Z', 1740830400000, 'k', 'chat_completions', 0, 'none', 'not_applicable', 1, 400, 'rejected', 0, 'null')",
            [],
        )
        .unwrap();
    }
    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    let old = ledger.find("old").await.unwrap().unwrap();
    assert_eq!(old.audit, crate::ledger::PriceAudit::default());
    writer.shutdown().await.unwrap();
}

/// What SQLite plans for one page query, one line per step.
fn page_plan(path: &std::path::Path, filter: &Filter, cursor: Option<(i64, String)>) -> String {
    use crate::ledger::filter::{page_sql, PageParams};
    let conn = Connection::open(path).unwrap();
    let p = PageParams::of(filter, cursor.as_ref(), 100);
    let sql = page_sql("SELECT *", &p, |n| format!("?{n}"));
    let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
    let n = stmt.parameter_count();
    let nulls: Vec<Option<i64>> = vec![None; n];
    let rows = stmt
        .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
        .unwrap();
    rows.map(Result::unwrap).collect::<Vec<_>>().join("\n")
}

#[tokio::test]
async fn request_pages_walk_one_index_range_bounded_by_the_cursor() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    drop(SqliteSink::open(&path).unwrap());
    let by_key = Filter {
        key_name: Some("k".into()),
        ..Filter::default()
    };
    let plan = page_plan(&path, &by_key, Some((5, "id".into())));
    assert!(
        plan.contains("requests_key_time (key_name=? AND created_at_ms>? AND created_at_ms<?)"),
        "{plan}"
    );
    let by_model = Filter {
        logical_model: Some("m".into()),
        ..Filter::default()
    };
    let plan = page_plan(&path, &by_model, None);
    assert!(
        plan.contains("requests_model_time (logical_model=?"),
        "{plan}"
    );
    let plan = page_plan(&path, &Filter::default(), Some((5, "id".into())));
    assert!(
        plan.contains("requests_created_at_ms (created_at_ms>? AND created_at_ms<?)"),
        "the cursor bounds the range: {plan}"
    );
    assert!(!plan.contains("TEMP B-TREE FOR ORDER BY"), "{plan}");
    let cursor = (5, "id".to_owned());
    let p = crate::ledger::filter::PageParams::of(&by_key, Some(&cursor), 10);
    assert_eq!(
        p.to_ms, 6,
        "rows newer than the cursor's millisecond are not walked"
    );
}
