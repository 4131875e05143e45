//! The PostgreSQL ledger's monthly partitions and retention: months wholly past the
//! retention are dropped (the partition tables no longer exist), the month the cutoff
//! falls in is trimmed row by row, newer records stay; a record of a month without a
//! partition lands in the default partition and stays readable; and a ledger created
//! by an earlier tollgate (the unpartitioned `requests` table) migrates in place with
//! every record readable.
//!
//! Like tests/postgres.rs these need a PostgreSQL at `TOLLGATE_TEST_POSTGRES_URL` and
//! are ignored without it; each test creates its own database and drops it.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step fails the test"
)]

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use rust_decimal::Decimal;
use tollgate::ledger::postgres::PostgresLedger;
use tollgate::ledger::retention::Retention;
use tollgate::ledger::{LedgerSink, LedgerStore, Outcome, PricingStatus, UsageRecord, UsageSource};

/// A fresh database on the test server.
struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
}

impl TestDatabase {
    async fn create() -> Self {
        let Ok(admin_url) = std::env::var("TOLLGATE_TEST_POSTGRES_URL") else {
            panic!("TOLLGATE_TEST_POSTGRES_URL is unset: there is no PostgreSQL for the fleet ledger (.ci/run sets it)");
        };
        let name = format!("tollgate_test_{}", uuid::Uuid::now_v7().simple());
        connect(&admin_url)
            .await
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .await
            .unwrap();
        let (base, query) = admin_url
            .split_once('?')
            .map_or((admin_url.as_str(), None), |(b, q)| (b, Some(q)));
        let host_end = base.rfind('/').unwrap();
        let mut url = format!("{}/{name}", &base[..host_end]);
        if let Some(q) = query {
            url = format!("{url}?{q}");
        }
        Self {
            admin_url,
            name,
            url,
        }
    }

    async fn drop_now(self) {
        connect(&self.admin_url)
            .await
            .batch_execute(&format!(
                "DROP DATABASE IF EXISTS {} WITH (FORCE)",
                self.name
            ))
            .await
            .unwrap();
    }
}

async fn connect(url: &str) -> tokio_postgres::Client {
    let (client, conn) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(conn);
    client
}

fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, h, 0, 0).unwrap()
}

fn record(id: &str, created_at: DateTime<Utc>) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        created_at,
        key_name: "team-a".into(),
        team: None,
        route: "chat_completions".into(),
        logical_model: Some("o1".into()),
        provider: Some("openai".into()),
        upstream_model: Some("o1".into()),
        region: Some("openai:us".into()),
        jurisdiction: Some("US".into()),
        processing_scope: Some("global".into()),
        stream: true,
        input_tokens: Some(1_200),
        cached_input_tokens: Some(200),
        cache_write_tokens: Some(0),
        cache_write_1h_tokens: None,
        output_tokens: Some(300),
        reasoning_tokens: Some(100),
        usage_source: UsageSource::Reported,
        cost_usd: Some(Decimal::new(31_500, 6)),
        price_id: Some("openai/o1@2024-12-17".into()),
        pricing: PricingStatus::Priced,
        latency_ms: 2_100,
        ttfb_ms: Some(640),
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        attempts: 1,
        policy: serde_json::json!({"allowed_offers": [0], "excluded": []}).into(),
        audit: tollgate::ledger::PriceAudit::default(),
    }
}

/// Every request id in `requests`.
async fn stored_ids(client: &tokio_postgres::Client) -> BTreeSet<String> {
    let rows = client
        .query("SELECT request_id FROM requests", &[])
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

/// Whether a table of that name exists at all.
async fn exists(client: &tokio_postgres::Client, table: &str) -> bool {
    client
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table])
        .await
        .unwrap()
        .get(0)
}

/// The partition (table) that holds a record.
async fn partition_of(client: &tokio_postgres::Client, id: &str) -> String {
    client
        .query_one(
            "SELECT tableoid::regclass::TEXT FROM requests WHERE request_id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn postgres_retention_drops_old_months_and_trims_the_month_of_the_cutoff() {
    let db = TestDatabase::create().await;
    let pg = PostgresLedger::connect(&db.url).await.unwrap();
    pg.ensure_partitions(at(2024, 3, 1, 0), at(2024, 7, 1, 0))
        .await
        .unwrap();
    // Retention 91 days at 2024-09-14: the cutoff is 2024-06-15T00:00Z.
    let now = at(2024, 9, 14, 0);
    let keep = Duration::from_secs(91 * 86_400);
    let cutoff = at(2024, 6, 15, 0);
    let mut records = vec![
        record("march", at(2024, 3, 10, 12)),
        record(
            "may-last-second",
            at(2024, 6, 1, 0) - chrono::Duration::seconds(1),
        ),
        record("june-before-cutoff", cutoff - chrono::Duration::hours(1)),
        record("june-at-cutoff", cutoff),
        record("july", at(2024, 7, 1, 0)),
        record("ancient-in-default", at(2001, 1, 1, 0)),
        record("future-in-default", at(2099, 1, 1, 0)),
    ];
    // Enough in the cutoff's month to take more than one batch.
    records.extend((0..6_000).map(|i| {
        record(
            &format!("june-{i}"),
            cutoff - chrono::Duration::seconds(i + 2),
        )
    }));
    for chunk in records.chunks(2_000) {
        pg.write_batch(chunk).await.unwrap();
    }
    let client = connect(&db.url).await;
    assert_eq!(partition_of(&client, "march").await, "requests_202403");
    assert_eq!(
        partition_of(&client, "ancient-in-default").await,
        "requests_default"
    );

    let clock: tollgate::ledger::retention::Now = Arc::new(move || now);
    let task = Retention::start(LedgerStore::Postgres(pg.clone()), Some(keep), clock).unwrap();
    let done = task.wait_for(|p| p.sweeps >= 1).await;
    task.stop().await;

    // March, April and May were dropped whole: the tables are gone, not emptied.
    for month in ["requests_202403", "requests_202404", "requests_202405"] {
        assert!(!exists(&client, month).await, "{month} must be dropped");
    }
    let children: BTreeSet<String> = pg
        .partitions()
        .await
        .unwrap()
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert!(!children.contains("requests_202404"), "{children:?}");
    assert!(
        children.contains("requests_202406"),
        "the cutoff's month stays: {children:?}"
    );
    assert!(children.contains("requests_default"));
    assert_eq!(done.dropped_partitions, 3, "{done:?}");
    // June and the default partition were trimmed row by row: 6,000 + 1 + 1.
    assert_eq!(done.deleted, 6_002, "{done:?}");
    assert!(done.batches >= 2, "{done:?}");
    let expected: BTreeSet<String> = ["june-at-cutoff", "july", "future-in-default"]
        .map(str::to_owned)
        .into();
    assert_eq!(stored_ids(&client).await, expected);
    // The months ahead of the (pinned) clock were created by the same run.
    assert!(exists(&client, "requests_202411").await);
    db.drop_now().await;
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn a_record_of_a_month_without_a_partition_lands_in_the_default_one_and_stays_readable() {
    let db = TestDatabase::create().await;
    let pg = PostgresLedger::connect(&db.url).await.unwrap();
    let client = connect(&db.url).await;
    let far = record("far-future", at(2099, 5, 3, 10));
    assert!(!exists(&client, "requests_209905").await);
    pg.write_batch(std::slice::from_ref(&far)).await.unwrap();
    // The same record again (a retried batch) is ignored, not an error.
    pg.write_batch(std::slice::from_ref(&far)).await.unwrap();
    assert_eq!(
        partition_of(&client, "far-future").await,
        "requests_default"
    );
    assert_eq!(pg.find("far-future").await.unwrap(), Some(far.clone()));
    let store = LedgerStore::Postgres(pg.clone());
    let filter = tollgate::ledger::filter::Filter {
        from: Some(at(2099, 5, 1, 0)),
        to: Some(at(2099, 6, 1, 0)),
        ..Default::default()
    };
    assert_eq!(
        store.page(&filter, None, 10).await.unwrap(),
        vec![far.clone()]
    );

    // When its month's partition is created later, the record moves into it.
    let created = pg
        .ensure_partitions(at(2099, 5, 1, 0), at(2099, 5, 1, 0))
        .await
        .unwrap();
    assert_eq!(created, vec!["requests_209905".to_owned()]);
    assert_eq!(partition_of(&client, "far-future").await, "requests_209905");
    assert_eq!(pg.find("far-future").await.unwrap(), Some(far));
    let count: i64 = client
        .query_one("SELECT count(*) FROM requests", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(count, 1);
    db.drop_now().await;
}

/// The PostgreSQL schema before partitioning (tollgate_schema version 1), verbatim.
const UNPARTITIONED_SCHEMA: &str = "
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY,
        created_at TIMESTAMPTZ NOT NULL,
        created_at_ms BIGINT NOT NULL,
        key_name TEXT NOT NULL,
        logical_model TEXT,
        provider TEXT,
        region TEXT,
        jurisdiction TEXT,
        processing_scope TEXT,
        input_tokens BIGINT,
        cached_input_tokens BIGINT,
        cache_write_tokens BIGINT,
        output_tokens BIGINT,
        reasoning_tokens BIGINT,
        usage_source TEXT NOT NULL,
        cost_usd NUMERIC,
        pricing TEXT NOT NULL,
        latency_ms BIGINT NOT NULL,
        ttfb_ms BIGINT,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        error_code TEXT,
        record JSON NOT NULL
    );
    CREATE INDEX requests_created_at_ms ON requests (created_at_ms);
    CREATE INDEX requests_key_name ON requests (key_name, created_at_ms);
    CREATE INDEX requests_logical_model ON requests (logical_model, created_at_ms);
    CREATE TABLE tollgate_schema (version INTEGER NOT NULL);
    INSERT INTO tollgate_schema VALUES (1);
";

/// Store `r` the way the unpartitioned schema's writer did.
async fn insert_unpartitioned(client: &tokio_postgres::Client, r: &UsageRecord) {
    let int = |v: Option<u64>| v.map(|v| i64::try_from(v).unwrap());
    client
        .execute(
            "INSERT INTO requests (request_id, created_at, created_at_ms, key_name,
                logical_model, provider, region, jurisdiction, processing_scope, input_tokens,
                cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens,
                usage_source, cost_usd, pricing, latency_ms, ttfb_ms, status, outcome,
                error_code, record)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,
                $17, $18, $19, $20, $21, $22, $23)",
            &[
                &r.request_id,
                &r.created_at,
                &r.created_at.timestamp_millis(),
                &r.key_name,
                &r.logical_model,
                &r.provider,
                &r.region,
                &r.jurisdiction,
                &r.processing_scope,
                &int(r.input_tokens),
                &int(r.cached_input_tokens),
                &int(r.cache_write_tokens),
                &int(r.output_tokens),
                &int(r.reasoning_tokens),
                &r.usage_source.as_str(),
                &r.cost_usd,
                &r.pricing.as_str(),
                &i64::try_from(r.latency_ms).unwrap(),
                &int(r.ttfb_ms),
                &i32::from(r.status),
                &r.outcome.as_str(),
                &r.error_code,
                &tokio_postgres::types::Json(r),
            ],
        )
        .await
        .unwrap();
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_POSTGRES_URL (a PostgreSQL); .ci/run sets it and runs this"]
async fn an_unpartitioned_postgres_ledger_migrates_with_every_record_readable() {
    let db = TestDatabase::create().await;
    let client = connect(&db.url).await;
    client.batch_execute(UNPARTITIONED_SCHEMA).await.unwrap();
    let mut records: Vec<UsageRecord> = (0..90)
        .map(|i| {
            let t = at(2025, 1, 1, 0) + chrono::Duration::hours(i * 24 + i % 7);
            record(
                &format!("old-{i}"),
                t + chrono::Duration::milliseconds(i * 37),
            )
        })
        .collect();
    records.push(record("before-2000", at(1999, 12, 31, 23)));
    let mut unpriced = record("unpriced", at(2025, 2, 14, 9));
    unpriced.cost_usd = None;
    unpriced.pricing = PricingStatus::Unpriced;
    records.push(unpriced);
    for r in &records {
        insert_unpartitioned(&client, r).await;
    }

    let pg = PostgresLedger::connect(&db.url).await.unwrap();

    let kind: i8 = client
        .query_one(
            "SELECT relkind::\"char\" FROM pg_class WHERE relname = 'requests'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(kind as u8, b'p', "requests is a partitioned table");
    assert!(!exists(&client, "requests_unpartitioned").await);
    for month in ["requests_202501", "requests_202502", "requests_202503"] {
        assert!(exists(&client, month).await, "{month}");
    }
    assert_eq!(
        partition_of(&client, "before-2000").await,
        "requests_default"
    );
    assert_eq!(partition_of(&client, "old-0").await, "requests_202501");
    for r in &records {
        assert_eq!(pg.find(&r.request_id).await.unwrap().as_ref(), Some(r));
    }
    // Every index of the old table is on the new one, and the new primary key.
    let indexes: BTreeSet<String> = client
        .query(
            "SELECT indexname::TEXT FROM pg_indexes WHERE tablename = 'requests'",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    for ix in [
        "requests_pkey",
        "requests_created_at_ms",
        "requests_key_name",
        "requests_logical_model",
    ] {
        assert!(indexes.contains(ix), "{ix} missing: {indexes:?}");
    }
    // Listing pages through all of them, and the writer goes on writing.
    let store = LedgerStore::Postgres(pg.clone());
    let all = store
        .page(&tollgate::ledger::filter::Filter::default(), None, 1_000)
        .await
        .unwrap();
    assert_eq!(all.len(), records.len());
    let live = record("after-migration", Utc::now());
    pg.write_batch(std::slice::from_ref(&live)).await.unwrap();
    assert_eq!(pg.find("after-migration").await.unwrap(), Some(live));
    // A second start finds the schema current and changes nothing.
    drop(pg);
    let again = PostgresLedger::connect(&db.url).await.unwrap();
    assert_eq!(stored_ids(&client).await.len(), records.len() + 1);
    drop(again);
    db.drop_now().await;
}
