//! Rollups in a real SQLite file: the schema matches the column names the queries use,
//! money carries exactly, counts saturate instead of failing, duplicates count once,
//! and an interrupted backfill resumes where it stopped.

use rusqlite::Connection;
use rust_decimal_macros::dec;

use super::*;
use crate::ledger::rollup::HOUR_MS;
use crate::ledger::sqlite::SqliteSink;
use crate::ledger::tests::{bare, full};
use crate::ledger::LedgerSink;

fn sink() -> (tempfile::TempDir, std::path::PathBuf, SqliteSink) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let sink = SqliteSink::open(&path).unwrap();
    (dir, path, sink)
}

fn everything() -> UsageQuery {
    UsageQuery {
        from_ms: i64::MIN,
        to_ms: i64::MAX,
        ..UsageQuery::default()
    }
}

fn total(path: &std::path::Path, q: &UsageQuery) -> Sums {
    let groups = crate::ledger::sqlite::usage(path, q).unwrap();
    let mut all = Sums::default();
    groups.values().for_each(|s| all.merge(s));
    all
}

#[test]
fn the_tables_have_exactly_the_columns_the_queries_name() {
    let (_dir, path, _sink) = sink();
    let conn = Connection::open(&path).unwrap();
    for tier in [&HOURLY, &DAILY] {
        let mut stmt = conn
            .prepare(&format!(
                "SELECT name FROM pragma_table_info('{}')",
                tier.table
            ))
            .unwrap();
        let mut names: Vec<String> = stmt
            .query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect();
        let mut want: Vec<String> = tier
            .key_columns()
            .iter()
            .map(|c| (*c).to_owned())
            .chain(columns::summed_integers())
            .chain(Dialect::Sqlite { split: false }.money_columns())
            .chain(columns::maxima())
            .collect();
        names.sort();
        want.sort();
        assert_eq!(names, want, "{}", tier.table);
    }
}

#[tokio::test]
async fn femtos_carry_into_micros_and_duplicates_count_once() {
    let (_dir, path, sink) = sink();
    let mut a = full("a");
    a.cost_usd = Some(dec!(0.999999999999999));
    let mut b = full("b");
    b.cost_usd = Some(dec!(0.000000000000001));
    sink.write_batch(&[a.clone(), b]).await.unwrap();
    // The same id again, in a later batch and within one: stored once, counted once.
    let mut again = a.clone();
    again.cost_usd = Some(dec!(100));
    sink.write_batch(&[again.clone(), bare("c"), again])
        .await
        .unwrap();
    let s = total(&path, &everything());
    assert_eq!((s.requests, s.cost_usd), (3, dec!(1)));
    let conn = Connection::open(&path).unwrap();
    let parts: (i64, i64) = conn
        .query_row(
            "SELECT cost_usd_micros, cost_usd_femtos FROM usage_daily WHERE key_name = 'team-a'",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    assert_eq!(parts, (1_000_000, 0), "the femto part stays below 10^9");
}

#[tokio::test]
async fn counts_saturate_in_rows_and_in_sums_instead_of_failing() {
    let (_dir, path, sink) = sink();
    let huge = |id: &str, hour: i64| {
        let mut r = bare(id);
        r.input_tokens = Some(u64::MAX);
        r.created_at = chrono::DateTime::from_timestamp_millis(hour * HOUR_MS).unwrap();
        r
    };
    // Two records in one row: the upsert saturates. Two more rows: SQLite's SUM would
    // overflow, so the query sums 32-bit halves instead.
    sink.write_batch(&[huge("a", 1)]).await.unwrap();
    sink.write_batch(&[huge("b", 1), huge("c", 2), huge("d", 30)])
        .await
        .unwrap();
    let s = total(&path, &everything());
    assert_eq!((s.requests, s.input_tokens), (4, COUNT_MAX));
    let hourly = UsageQuery {
        from_ms: 0,
        to_ms: 3 * HOUR_MS,
        group_by: vec![Dim::Hour],
        ..UsageQuery::default()
    };
    let groups = crate::ledger::sqlite::usage(&path, &hourly).unwrap();
    let tokens: Vec<u64> = groups.values().map(|s| s.input_tokens).collect();
    assert_eq!(tokens, [COUNT_MAX, COUNT_MAX]);
}

#[tokio::test]
async fn an_interrupted_backfill_resumes_after_its_cursor() {
    let (_dir, path, sink) = sink();
    let records: Vec<_> = (0..5)
        .map(|i| {
            let mut r = full(&format!("r{i}"));
            r.created_at = chrono::DateTime::from_timestamp_millis(1_000 * i).unwrap();
            r
        })
        .collect();
    sink.write_batch(&records).await.unwrap();
    drop(sink);
    // As if a backfill had rolled up the first two records and stopped.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch(
        "DELETE FROM usage_hourly; DELETE FROM usage_daily;
         INSERT INTO rollup_backfill VALUES (1000, 'r1');",
    )
    .unwrap();
    drop(conn);
    SqliteSink::open(&path).unwrap();
    let s = total(&path, &everything());
    assert_eq!(s.requests, 3, "r2, r3 and r4");
    let conn = Connection::open(&path).unwrap();
    let left: i64 = conn
        .query_row("SELECT count(*) FROM rollup_backfill", [], |r| r.get(0))
        .unwrap();
    assert_eq!(left, 0);
}

#[tokio::test]
async fn ragged_edges_come_from_records_and_whole_hours_from_rollups() {
    let (_dir, path, sink) = sink();
    let at = |ms: i64, id: &str| {
        let mut r = full(id);
        r.created_at = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        r
    };
    let h = HOUR_MS;
    sink.write_batch(&[
        at(h - 1, "before"),
        at(h, "first"),
        at(2 * h + 5, "mid"),
        at(3 * h + 10, "late"),
    ])
    .await
    .unwrap();
    drop(sink);
    // Rollups alone would count "first" and "mid" wherever they are: remove the rows
    // of the ragged hours to prove those come from records.
    let conn = Connection::open(&path).unwrap();
    conn.execute_batch("DELETE FROM usage_hourly WHERE hour_ms IN (0, 10800000)")
        .unwrap();
    let q = |from_ms, to_ms| {
        total(
            &path,
            &UsageQuery {
                from_ms,
                to_ms,
                ..UsageQuery::default()
            },
        )
        .requests
    };
    assert_eq!(q(h, 3 * h), 2, "whole hours: first, mid");
    assert_eq!(q(h - 1, 3 * h + 11), 4, "ragged ends from records");
    assert_eq!(q(3 * h + 10, 3 * h + 11), 1);
    assert_eq!(q(h + 1, 2 * h + 6), 1, "inside the hours: records only");
}

#[tokio::test]
async fn a_ragged_edge_whose_records_retention_deleted_counts_its_whole_hour() {
    let (_dir, path, sink) = sink();
    let at = |ms: i64, id: &str| {
        let mut r = full(id);
        r.created_at = chrono::DateTime::from_timestamp_millis(ms).unwrap();
        r
    };
    let h = HOUR_MS;
    sink.write_batch(&[
        at(h + 5, "early"),
        at(h + 50, "later"),
        at(2 * h + 5, "kept"),
        at(3 * h + 10, "late"),
    ])
    .await
    .unwrap();
    drop(sink);
    let requests = |from_ms, to_ms| {
        total(
            &path,
            &UsageQuery {
                from_ms,
                to_ms,
                ..UsageQuery::default()
            },
        )
        .requests
    };
    assert_eq!(
        requests(h + 10, 4 * h),
        3,
        "before retention: records answer"
    );
    // Retention deletes the oldest records; the hourly rollup keeps their hour.
    let conn = Connection::open(&path).unwrap();
    conn.execute("DELETE FROM requests WHERE created_at_ms < ?1", [2 * h])
        .unwrap();
    assert_eq!(
        requests(h + 10, 4 * h),
        4,
        "the edge's hour, whole: not 1 (the records left in it)"
    );
    assert_eq!(
        requests(h + 10, h + 20),
        2,
        "both ends before the oldest record"
    );
    assert_eq!(requests(2 * h + 6, 4 * h), 1, "an edge after it is exact");
}

#[test]
fn readers_know_which_schema_version_brought_rollups() {
    use crate::ledger::rollup::introduced_by;
    assert_eq!(introduced_by(crate::ledger::sqlite::MIGRATIONS, ROLLUPS), 3);
    assert_eq!(introduced_by(&["a", ROLLUPS, "later"], ROLLUPS), 2);
    assert_eq!(introduced_by(&["a"], ROLLUPS), i64::MAX);
}

#[tokio::test]
async fn readers_refuse_a_file_whose_backfill_has_not_finished() {
    let (_dir, path, sink) = sink();
    sink.write_batch(&[full("a")]).await.unwrap();
    drop(sink);
    // As a v2 file looks right after its schema step, before any backfill batch.
    Connection::open(&path)
        .unwrap()
        .execute_batch(
            "DELETE FROM usage_hourly; DELETE FROM usage_daily;
             INSERT INTO rollup_backfill VALUES (-9223372036854775808, '');",
        )
        .unwrap();
    let refused = crate::ledger::sqlite::usage(&path, &everything()).unwrap_err();
    assert!(
        matches!(refused, LedgerError::NeedsUpgrade { found: 5, .. }),
        "{refused}"
    );
    SqliteSink::open(&path).unwrap();
    assert_eq!(
        total(&path, &everything()).requests,
        1,
        "finished, and counted once"
    );
}
