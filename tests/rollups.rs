//! Usage, savings and budget answers from rollups equal a straightforward fold over the
//! records, to the last decimal and token: a 100,000-record SQLite ledger written through
//! the gateway's own writer (duplicates included), asked through the admin API for
//! several groupings and windows (hour-aligned and not); `tollgate ledger rebuild-rollups`
//! reproduces the writer's rollups exactly; and a schema v2 ledger file upgrades in place.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failed step fails the test"
)]

mod common;
mod ledger_fixture;

use std::path::Path;

use common::*;
use ledger_fixture as fixture;
use ledger_fixture::checks::{self, config};
use rusqlite::Connection;
use tollgate::ledger::{Ledger, LedgerOptions, LedgerStore, UsageRecord};

/// Both rollup tables, every row, in key order.
fn dump(path: &Path) -> Vec<Vec<String>> {
    let conn = Connection::open(path).unwrap();
    ["usage_hourly", "usage_daily"]
        .iter()
        .flat_map(|t| {
            let mut stmt = conn
                .prepare(&format!("SELECT * FROM {t} ORDER BY 1, 2, 3, 4, 5, 6"))
                .unwrap();
            let n = stmt.column_count();
            stmt.query_map([], |row| {
                (0..n)
                    .map(|i| {
                        row.get::<_, rusqlite::types::Value>(i)
                            .map(|v| format!("{v:?}"))
                    })
                    .collect::<Result<Vec<_>, _>>()
            })
            .unwrap()
            .map(Result::unwrap)
            .collect::<Vec<_>>()
        })
        .collect()
}

#[tokio::test]
async fn a_100k_record_ledger_answers_exactly_like_the_per_record_fold() {
    let records = fixture::records(100_000, 12);
    let stored = fixture::stored(&records);
    assert!(stored.len() < records.len(), "duplicates are in the input");
    let mut gw = start_gateway(&config()).await;
    let app = gw.app.as_ref().unwrap().state();
    checks::write(&app.ledger, &records).await;
    assert_eq!(
        read_count(&gw.ledger_path),
        stored.len() as i64,
        "duplicates are not stored"
    );

    checks::assert_answers_equal_the_fold(&gw, &stored).await;
    checks::assert_daily_spend_equals_the_fold(&app.store, &stored).await;
    drop(app);
    gw.stop().await;

    // The rebuild reproduces the writer's rollups row for row, number for number.
    let before = dump(&gw.ledger_path);
    assert!(before.len() > 1_000, "{} rollup rows", before.len());
    let rebuild = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_tollgate"))
            .args(["ledger", "rebuild-rollups", "--ledger"])
            .arg(&gw.ledger_path)
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let said = rebuild(&[]);
    assert!(
        said.contains(&format!("rolled up {} records", stored.len())),
        "{said}"
    );
    assert_eq!(dump(&gw.ledger_path), before);

    // As retention leaves it: older records gone, their rollups kept. A rebuild from the
    // first day still whole recomputes the rest and keeps the older rows.
    let cut = chrono::DateTime::parse_from_rfc3339("2026-03-05T00:00:00Z").unwrap();
    let gone = Connection::open(&gw.ledger_path)
        .unwrap()
        .execute(
            "DELETE FROM requests WHERE created_at_ms < ?1",
            [cut.timestamp_millis()],
        )
        .unwrap();
    assert!(gone > 10_000);
    let kept = stored.iter().filter(|r| r.created_at >= cut).count();
    let said = rebuild(&["--from", "2026-03-05T13:00:00Z"]);
    assert!(
        said.contains(&format!("rolled up {kept} records")),
        "{said}"
    );
    assert_eq!(dump(&gw.ledger_path), before);
}

fn read_count(path: &Path) -> i64 {
    Connection::open(path)
        .unwrap()
        .query_row("SELECT count(*) FROM requests", [], |r| r.get(0))
        .unwrap()
}

/// The schema of a ledger file as tollgate before rollups (schema v2) created it.
const V2_SCHEMA: &str = "
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY NOT NULL, created_at TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL, key_name TEXT NOT NULL, route TEXT NOT NULL,
        logical_model TEXT, provider TEXT, upstream_model TEXT, region TEXT,
        jurisdiction TEXT, processing_scope TEXT, stream INTEGER NOT NULL,
        input_tokens INTEGER, cached_input_tokens INTEGER, cache_write_tokens INTEGER,
        output_tokens INTEGER, reasoning_tokens INTEGER, usage_source TEXT NOT NULL,
        cost_usd TEXT, price_id TEXT, pricing TEXT NOT NULL, latency_ms INTEGER NOT NULL,
        ttfb_ms INTEGER, status INTEGER NOT NULL, outcome TEXT NOT NULL, error_code TEXT,
        attempts INTEGER NOT NULL, policy TEXT NOT NULL
    );
    CREATE INDEX requests_created_at_ms ON requests (created_at_ms);
    CREATE INDEX requests_key_name ON requests (key_name);
    CREATE INDEX requests_logical_model ON requests (logical_model);
    CREATE INDEX requests_provider ON requests (provider);
    ALTER TABLE requests ADD COLUMN cheapest_allowed_cost_usd TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_allowed_offer TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_any_cost_usd TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_any_offer TEXT;
    ALTER TABLE requests ADD COLUMN counted_input_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN counted_output_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN output_verifiable INTEGER;
    PRAGMA user_version = 2;
";

/// Store `records` as the v2 writer did (no team, cost as text only).
fn write_v2(path: &Path, records: &[UsageRecord]) {
    let mut conn = Connection::open(path).unwrap();
    conn.execute_batch(V2_SCHEMA).unwrap();
    let tx = conn.transaction().unwrap();
    {
        let mut stmt = tx
            .prepare(
                "INSERT OR IGNORE INTO requests VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10,
                 ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26,
                 ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35)",
            )
            .unwrap();
        for r in records {
            let v = serde_json::to_value(r).unwrap();
            let text = |f: &str| v[f].as_str().map(str::to_owned);
            let int = |f: &str| v[f].as_i64();
            stmt.execute(rusqlite::params![
                r.request_id,
                r.created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                r.created_at.timestamp_millis(),
                r.key_name,
                r.route,
                r.logical_model,
                r.provider,
                r.upstream_model,
                r.region,
                r.jurisdiction,
                r.processing_scope,
                r.stream,
                int("input_tokens"),
                int("cached_input_tokens"),
                int("cache_write_tokens"),
                int("output_tokens"),
                int("reasoning_tokens"),
                text("usage_source"),
                r.cost_usd.map(|c| c.to_string()),
                r.price_id,
                text("pricing"),
                int("latency_ms"),
                int("ttfb_ms"),
                r.status,
                text("outcome"),
                r.error_code,
                r.attempts,
                r.policy.to_string(),
                r.audit.cheapest_allowed_cost_usd.map(|c| c.to_string()),
                r.audit.cheapest_allowed_offer,
                r.audit.cheapest_any_cost_usd.map(|c| c.to_string()),
                r.audit.cheapest_any_offer,
                r.audit.counted_input_tokens.map(|c| c as i64),
                r.audit.counted_output_tokens.map(|c| c as i64),
                r.audit.output_verifiable,
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
}

#[tokio::test]
async fn a_v2_ledger_file_upgrades_in_place_with_its_rollups_backfilled() {
    // More than two backfill batches (10,000 records each), with ties on the millisecond.
    let records = fixture::records(25_000, 2);
    let mut stored = fixture::stored(&records);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    write_v2(&path, &records);
    let store = LedgerStore::Sqlite(path.clone());
    let refused = tollgate::usage::summary(
        &store,
        &tollgate::usage::Filter::parse(Some("2026-03-01"), Some("2026-03-12"), chrono::Utc::now())
            .unwrap(),
        &[],
    )
    .await
    .unwrap_err();
    assert!(
        refused.to_string().contains("schema version 2"),
        "{refused}"
    );

    let (ledger, writer) = Ledger::open_sqlite(&path, LedgerOptions::default())
        .await
        .unwrap();
    writer.shutdown().await.unwrap();
    drop(ledger);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, 5);
    let pending: i64 = conn
        .query_row("SELECT count(*) FROM rollup_backfill", [], |r| r.get(0))
        .unwrap();
    assert_eq!(pending, 0, "the backfill finished");
    let (micros, femtos): (i64, i64) = conn
        .query_row(
            "SELECT sum(cost_micros), sum(cost_femtos) FROM requests WHERE cost_usd IS NOT NULL",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .unwrap();
    let total: rust_decimal::Decimal = stored.iter().filter_map(|r| r.cost_usd).sum();
    assert_eq!(
        rust_decimal::Decimal::from(micros) / rust_decimal::Decimal::from(1_000_000)
            + rust_decimal::Decimal::new(femtos, 15),
        total,
        "the integer cost columns were backfilled exactly"
    );

    // Old records have no team: the fold sees them as v2 stored them.
    for r in &mut stored {
        r.team = None;
    }
    for (query, from, to) in fixture::windows() {
        let mut parts = query.split('&').map(|p| p.split_once('=').unwrap().1);
        let filter =
            tollgate::usage::Filter::parse(parts.next(), parts.next(), chrono::Utc::now()).unwrap();
        for grouping in ["", "key,team", "model,provider,jurisdiction", "hour"] {
            let group_by = tollgate::usage::parse_group_by(Some(grouping)).unwrap();
            let names: Vec<&str> = group_by.iter().map(|g| g.as_str()).collect();
            let summary = tollgate::usage::summary(&store, &filter, &group_by)
                .await
                .unwrap();
            let body = serde_json::to_value(&summary).unwrap();
            let want = fixture::usage(&stored, from, to, &names, None, None);
            assert_eq!(
                fixture::usage_from_api(&body, &names),
                want,
                "{query} {grouping}"
            );
        }
    }
}
