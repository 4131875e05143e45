use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};

use super::*;
use crate::ledger::sqlite::SqliteSink;
use crate::ledger::{LedgerSink, Outcome, PricingStatus, UsageRecord, UsageSource};

const DAY: Duration = Duration::from_secs(86_400);

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 15, 12, 0, 0).unwrap()
}

fn record(id: String, at: DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        request_id: id,
        created_at: at,
        key_name: "team-a".into(),
        team: None,
        route: "chat_completions".into(),
        logical_model: Some("o1".into()),
        provider: Some("openai".into()),
        upstream_model: Some("o1".into()),
        region: Some("openai:us".into()),
        jurisdiction: Some("US".into()),
        processing_scope: Some("global".into()),
        stream: false,
        input_tokens: Some(10),
        cached_input_tokens: Some(0),
        cache_write_tokens: Some(0),
        cache_write_1h_tokens: None,
        output_tokens: Some(5),
        reasoning_tokens: Some(0),
        usage_source: UsageSource::Reported,
        cost_usd: None,
        price_id: None,
        pricing: PricingStatus::Unpriced,
        latency_ms: 100,
        ttfb_ms: Some(50),
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        attempts: 1,
        policy: crate::ledger::PolicyJson::default(),
        audit: crate::ledger::PriceAudit::default(),
    }
}

fn ids(path: &std::path::Path) -> BTreeSet<String> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT request_id FROM requests").unwrap();
    let rows = stmt.query_map([], |r| r.get::<_, String>(0)).unwrap();
    rows.map(Result::unwrap).collect()
}

fn pinned(t: DateTime<Utc>) -> Now {
    Arc::new(move || t)
}

#[tokio::test]
async fn sqlite_records_past_the_retention_are_deleted_in_batches_and_newer_ones_stay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let sink = SqliteSink::open(&path).unwrap();
    let cutoff = now() - chrono::Duration::days(90);
    // 12,001 records before the cutoff (three batches: 5,000, 5,000 and 2,001) ...
    let old: Vec<UsageRecord> = (0..12_001)
        .map(|i| {
            record(
                format!("old-{i}"),
                cutoff - chrono::Duration::seconds(i + 1),
            )
        })
        .collect();
    // ... and newer ones, the first exactly at the cutoff (kept: only older ones go).
    let new: Vec<UsageRecord> = (0..300)
        .map(|i| record(format!("new-{i}"), cutoff + chrono::Duration::hours(i)))
        .collect();
    sink.write_batch(&old).await.unwrap();
    sink.write_batch(&new).await.unwrap();

    let task = Retention::start(
        LedgerStore::Sqlite(path.clone()),
        Some(90 * DAY),
        pinned(now()),
    )
    .expect("a retention is configured");
    let done = task.wait_for(|p| p.sweeps >= 1).await;
    task.stop().await;

    assert_eq!(done.deleted, 12_001);
    assert_eq!(done.batches, 3, "{done:?}");
    let expected: BTreeSet<String> = new.iter().map(|r| r.request_id.clone()).collect();
    assert_eq!(ids(&path), expected);
}

#[tokio::test]
async fn a_sqlite_ledger_kept_forever_needs_no_task() {
    let store = LedgerStore::Sqlite("unused.db".into());
    assert!(Retention::start(store, None, pinned(now())).is_none());
}

#[tokio::test]
async fn the_writer_keeps_writing_while_old_records_are_deleted() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let sink = SqliteSink::open(&path).unwrap();
    let cutoff = now() - chrono::Duration::days(90);
    for chunk in 0..6 {
        let old: Vec<UsageRecord> = (0..5_000)
            .map(|i| {
                let n = chunk * 5_000 + i;
                record(
                    format!("old-{n}"),
                    cutoff - chrono::Duration::seconds(n + 1),
                )
            })
            .collect();
        sink.write_batch(&old).await.unwrap();
    }
    drop(sink);
    let (ledger, writer) = crate::ledger::Ledger::open_sqlite(&path, Default::default())
        .await
        .unwrap();
    let task = Retention::start(
        LedgerStore::Sqlite(path.clone()),
        Some(90 * DAY),
        pinned(now()),
    )
    .unwrap();
    // Once deleting has begun, the gateway's records keep landing.
    task.wait_for(|p| p.batches >= 1).await;
    let mut written = BTreeSet::new();
    for i in 0..50 {
        let r = record(format!("live-{i}"), now());
        written.insert(r.request_id.clone());
        ledger.record(r);
        ledger.flush().await.unwrap();
    }
    let done = task.wait_for(|p| p.sweeps >= 1).await;
    task.stop().await;
    writer.shutdown().await.unwrap();
    assert_eq!(done.deleted, 30_000);
    assert_eq!(ids(&path), written);
}
