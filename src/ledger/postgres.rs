//! The PostgreSQL ledger, for fleets: every replica writes its records into one
//! `requests` table and every replica's usage API reads all of them. Chosen by a
//! `postgres://` URL in `ledger.url`.
//!
//! Each record is stored twice over: the columns operators filter and sum on
//! (times, key, team, model, provider, jurisdiction, tokens, cost as exact `NUMERIC`)
//! and the whole record as `json`, which is what tollgate reads back, so a record round
//! trips exactly, field for field, without a second decoder to keep in step with
//! SQLite's. The writer adds each batch to the rollup tables in the same transaction
//! (`rollups`); aggregate reads come from them. The schema is migrated at
//! start-up under an advisory lock, so replicas starting together do not race. Writes
//! go through a small connection pool; a database that is down fails the batch, which
//! the writer keeps and retries. Connections are encrypted as the URL's `sslmode`
//! says (see [`tls`]). `requests` is partitioned by month, so retention drops whole
//! months (see [`partitions`]).

pub mod partitions;
pub(super) mod rollups;
mod tls;

use std::collections::HashSet;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use rust_decimal::Decimal;
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::IsolationLevel;

use super::filter::{page_sql, Filter, PageParams, PageValue};
use super::rollup::query::{Groups, UsageQuery};
use super::rollup::{self, RebuildReport, RollupBatch};
use super::{LedgerError, LedgerSink, UsageRecord};
use rollups::Upserts;

/// Schema migrations; entry `n` takes the stored version from `n` to `n + 1`. Append only.
const MIGRATIONS: &[&str] = &[
    "
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
",
    rollups::ROLLUPS,
    // Monthly partitions (retention drops whole months); see `partitions`.
    partitions::MIGRATION,
];

/// Any number: the lock only has to be the same for every tollgate migrating this database.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465; // "tollgate"

// The key is (request_id, created_at_ms), as a partitioned table needs: a record sent
// again (a retried batch) has both the same, so it is still the first one that stands.
// One statement per batch: every column arrives as an array and `unnest` turns them back
// into rows, which is several times faster than a statement per record, pipelined or
// not. `RETURNING` names the records actually stored, the ones the rollups count.
const INSERT: &str = "INSERT INTO requests (
        request_id, created_at, created_at_ms, key_name, logical_model, provider, region,
        jurisdiction, processing_scope, input_tokens, cached_input_tokens,
        cache_write_tokens, output_tokens, reasoning_tokens, usage_source, cost_usd,
        pricing, latency_ms, ttfb_ms, status, outcome, error_code, record, team)
    SELECT * FROM unnest($1::TEXT[], $2::TIMESTAMPTZ[], $3::BIGINT[], $4::TEXT[],
        $5::TEXT[], $6::TEXT[], $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::BIGINT[],
        $11::BIGINT[], $12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::TEXT[],
        $16::NUMERIC[], $17::TEXT[], $18::BIGINT[], $19::BIGINT[], $20::INTEGER[],
        $21::TEXT[], $22::TEXT[], $23::JSON[], $24::TEXT[])
    ON CONFLICT (request_id, created_at_ms) DO NOTHING
    RETURNING request_id, created_at_ms";

/// Connections a replica keeps to the ledger database: one writer and a few readers.
const POOL_SIZE: usize = 4;

/// How long connecting may take when the URL sets no `connect_timeout`.
const CONNECT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// A pooled PostgreSQL ledger. Cheap to clone; every clone shares the pool.
#[derive(Clone)]
pub struct PostgresLedger {
    pool: Pool,
    upserts: Arc<Upserts>,
}

impl std::fmt::Debug for PostgresLedger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The URL may carry a password: never shown.
        f.debug_struct("PostgresLedger").finish_non_exhaustive()
    }
}

fn pg_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError {
    move |e| LedgerError::Postgres {
        op,
        message: describe(&e),
    }
}

/// The server's own message where there is one, else the error and its causes
/// ("error performing TLS handshake: invalid peer certificate: UnknownIssuer"), which
/// tokio-postgres leaves out of its `Display`. Neither ever contains the URL.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    if let Some(db) = e.as_db_error() {
        return format!("{}: {}", db.code().code(), db.message());
    }
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        message = format!("{message}: {c}");
        cause = c.source();
    }
    message
}

impl PostgresLedger {
    /// Connect to `url` and migrate the schema. Fails when the database cannot be
    /// reached, or its certificate is not trusted under `sslmode`: a fleet replica
    /// should not start without its ledger.
    pub async fn connect(url: &str) -> Result<Self, LedgerError> {
        let setup = |op| move |message| LedgerError::Postgres { op, message };
        let tls = crate::config::urls::postgres_tls(url).map_err(setup("parse the URL"))?;
        let (connector, mode) = tls::connector(&tls).map_err(setup("set up TLS"))?;
        let mut config: tokio_postgres::Config = tls
            .url
            .parse()
            .map_err(|e: tokio_postgres::Error| setup("parse the URL")(describe(&e)))?;
        config.ssl_mode(mode);
        if config.get_connect_timeout().is_none() {
            // A database host that is gone should fail a batch, not hang the writer.
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager = Manager::from_config(
            config,
            connector,
            ManagerConfig {
                // A connection the database dropped while down is noticed and replaced.
                recycling_method: RecyclingMethod::Verified,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .build()
            .map_err(|e| LedgerError::Postgres {
                op: "build the pool",
                message: e.to_string(),
            })?;
        let ledger = Self {
            pool,
            upserts: Arc::new(Upserts::new()),
        };
        ledger.migrate().await?;
        // Before the first write, so this month's records land in their own partition.
        ledger.ensure_partitions_ahead(chrono::Utc::now()).await?;
        Ok(ledger)
    }

    async fn client(&self) -> Result<deadpool_postgres::Client, LedgerError> {
        self.pool.get().await.map_err(|e| LedgerError::Postgres {
            op: "connect",
            message: match e {
                deadpool_postgres::PoolError::Backend(e) => describe(&e),
                other => other.to_string(),
            },
        })
    }

    async fn migrate(&self) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("migrate"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err("migrate"))?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS tollgate_schema (version INTEGER NOT NULL);
             INSERT INTO tollgate_schema SELECT 0 WHERE NOT EXISTS (SELECT 1 FROM tollgate_schema);",
        )
        .await
        .map_err(pg_err("migrate"))?;
        let found: i32 = tx
            .query_one("SELECT version FROM tollgate_schema", &[])
            .await
            .map_err(pg_err("migrate"))?
            .get(0);
        let supported = i32::try_from(MIGRATIONS.len()).unwrap_or(i32::MAX);
        if found > supported {
            return Err(LedgerError::SchemaTooNew {
                path: "postgresql ledger".into(),
                found: found.into(),
                supported: supported.into(),
            });
        }
        let start = usize::try_from(found).unwrap_or(0);
        for step in MIGRATIONS.get(start..).unwrap_or_default() {
            tx.batch_execute(step).await.map_err(pg_err("migrate"))?;
        }
        if i64::from(found) < rollup::introduced_by(MIGRATIONS, rollups::ROLLUPS) {
            // Replicas starting meanwhile wait on the lock: none writes until this commits.
            let rolled = rollups::backfill(&tx, &self.upserts, i64::MIN).await?;
            if rolled > 0 {
                tracing::info!(
                    records = rolled,
                    "ledger records rolled up (rollup backfill)"
                );
            }
        }
        tx.execute("UPDATE tollgate_schema SET version = $1", &[&supported])
            .await
            .map_err(pg_err("migrate"))?;
        tx.commit().await.map_err(pg_err("migrate"))
    }

    /// Answer an aggregate query from one snapshot (a read-only, repeatable-read
    /// transaction), so rollups and records agree.
    pub async fn usage(&self, q: &UsageQuery) -> Result<Groups, LedgerError> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .isolation_level(IsolationLevel::RepeatableRead)
            .read_only(true)
            .start()
            .await
            .map_err(pg_err("read"))?;
        let groups = rollups::usage(&tx, q).await?;
        tx.commit().await.map_err(pg_err("read"))?;
        Ok(groups)
    }

    /// Fold every record matching `filter` into `acc`, oldest first, a page at a time.
    pub async fn fold_records<A>(
        &self,
        filter: &Filter,
        mut acc: A,
        mut f: impl FnMut(&mut A, UsageRecord),
    ) -> Result<A, LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("read"))?;
        rollups::fold_range(&tx, &filter.range(), |r| f(&mut acc, r)).await?;
        tx.commit().await.map_err(pg_err("read"))?;
        Ok(acc)
    }

    /// Recompute the rollup rows from the UTC day of `from_ms` on from the records, in
    /// one transaction under the migration lock (see `rollups::rebuild` for why
    /// writers may go on).
    pub async fn rebuild_rollups(&self, from_ms: i64) -> Result<RebuildReport, LedgerError> {
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg_err("rebuild rollups"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])
            .await
            .map_err(pg_err("rebuild rollups"))?;
        let report = rollups::rebuild(&tx, &self.upserts, from_ms).await?;
        tx.commit().await.map_err(pg_err("rebuild rollups"))?;
        Ok(report)
    }

    /// Up to `fetch` records matching `filter`, newest first, strictly before `cursor`
    /// (`created_at_ms`, `request_id`) when given.
    pub async fn page(
        &self,
        filter: &Filter,
        cursor: Option<(i64, String)>,
        fetch: i64,
    ) -> Result<Vec<UsageRecord>, LedgerError> {
        let client = self.client().await?;
        let p = PageParams::of(filter, cursor.as_ref(), fetch);
        let sql = page_sql("SELECT record", &p, |n| format!("${n}"));
        let stmt = client.prepare_cached(&sql).await.map_err(pg_err("read"))?;
        let values: Vec<&(dyn ToSql + Sync)> = p
            .values()
            .into_iter()
            .map(|v| -> &(dyn ToSql + Sync) {
                match v {
                    PageValue::Int(i) => i,
                    PageValue::Text(t) => t,
                }
            })
            .collect();
        let rows = client.query(&stmt, &values).await.map_err(pg_err("read"))?;
        rows.iter().map(decode).collect()
    }
}

impl LedgerSink for PostgresLedger {
    async fn write_batch(&self, batch: &[UsageRecord]) -> Result<(), LedgerError> {
        let batch = first_of_each(batch);
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("write"))?;
        let insert = tx.prepare_cached(INSERT).await.map_err(pg_err("write"))?;
        let columns = Columns::of(&batch);
        let stored = tx
            .query(&insert, &columns.params())
            .await
            .map_err(pg_err("write"))?;
        let stored: HashSet<(&str, i64)> = stored
            .iter()
            .map(|row| (row.get::<_, &str>(0), row.get::<_, i64>(1)))
            .collect();
        let mut rollups = RollupBatch::default();
        for r in batch {
            // A duplicate is not stored (ON CONFLICT DO NOTHING), so it is not counted.
            if stored.contains(&record_key(r)) {
                rollups.add(r);
            } else {
                tracing::warn!(request_id = %r.request_id, "duplicate ledger record ignored; the first one stands");
            }
        }
        rollups::write(&tx, &self.upserts, &rollups)
            .await
            .map_err(pg_err("write"))?;
        tx.commit().await.map_err(pg_err("write"))
    }

    async fn find(&self, request_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT record FROM requests WHERE request_id = $1",
                &[&request_id],
            )
            .await
            .map_err(pg_err("read"))?;
        row.as_ref().map(decode).transpose()
    }
}

/// What identifies a stored record: its id and its start (the partitioned key).
fn record_key(r: &UsageRecord) -> (&str, i64) {
    (r.request_id.as_str(), r.created_at.timestamp_millis())
}

/// The batch without records sent twice within it: one multi-row insert cannot tell
/// which of two equal rows it stored, so only the first is offered (the rest are logged
/// as duplicates, as a record already in the table is).
fn first_of_each(batch: &[UsageRecord]) -> Vec<&UsageRecord> {
    let mut seen = HashSet::with_capacity(batch.len());
    batch
        .iter()
        .filter(|r| seen.insert(record_key(r)))
        .collect()
}

/// A batch's column values, one array per column, borrowed for the insert.
struct Columns<'a> {
    request_id: Vec<&'a str>,
    created_at: Vec<DateTime<Utc>>,
    created_at_ms: Vec<i64>,
    key_name: Vec<&'a str>,
    logical_model: Vec<Option<&'a str>>,
    provider: Vec<Option<&'a str>>,
    region: Vec<Option<&'a str>>,
    jurisdiction: Vec<Option<&'a str>>,
    processing_scope: Vec<Option<&'a str>>,
    tokens: [Vec<Option<i64>>; 5],
    usage_source: Vec<&'static str>,
    cost_usd: Vec<Option<Decimal>>,
    pricing: Vec<&'static str>,
    latency_ms: Vec<i64>,
    ttfb_ms: Vec<Option<i64>>,
    status: Vec<i32>,
    outcome: Vec<&'static str>,
    error_code: Vec<Option<&'a str>>,
    record: Vec<Json<&'a UsageRecord>>,
    team: Vec<Option<&'a str>>,
}

impl<'a> Columns<'a> {
    fn of(batch: &[&'a UsageRecord]) -> Self {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        let text = |f: fn(&'a UsageRecord) -> &'a Option<String>| -> Vec<Option<&'a str>> {
            batch.iter().map(|r| f(r).as_deref()).collect()
        };
        let tokens = |f: fn(&UsageRecord) -> Option<u64>| -> Vec<Option<i64>> {
            batch.iter().map(|r| f(r).map(int)).collect()
        };
        Self {
            request_id: batch.iter().map(|r| r.request_id.as_str()).collect(),
            created_at: batch.iter().map(|r| r.created_at).collect(),
            created_at_ms: batch
                .iter()
                .map(|r| r.created_at.timestamp_millis())
                .collect(),
            key_name: batch.iter().map(|r| r.key_name.as_str()).collect(),
            logical_model: text(|r| &r.logical_model),
            provider: text(|r| &r.provider),
            region: text(|r| &r.region),
            jurisdiction: text(|r| &r.jurisdiction),
            processing_scope: text(|r| &r.processing_scope),
            tokens: [
                tokens(|r| r.input_tokens),
                tokens(|r| r.cached_input_tokens),
                tokens(|r| r.cache_write_tokens),
                tokens(|r| r.output_tokens),
                tokens(|r| r.reasoning_tokens),
            ],
            usage_source: batch.iter().map(|r| r.usage_source.as_str()).collect(),
            cost_usd: batch.iter().map(|r| r.cost_usd).collect(),
            pricing: batch.iter().map(|r| r.pricing.as_str()).collect(),
            latency_ms: batch.iter().map(|r| int(r.latency_ms)).collect(),
            ttfb_ms: batch.iter().map(|r| r.ttfb_ms.map(int)).collect(),
            status: batch.iter().map(|r| i32::from(r.status)).collect(),
            outcome: batch.iter().map(|r| r.outcome.as_str()).collect(),
            error_code: text(|r| &r.error_code),
            record: batch.iter().map(|r| Json(*r)).collect(),
            team: text(|r| &r.team),
        }
    }

    /// The arrays in `INSERT`'s parameter order.
    fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        [
            &self.request_id,
            &self.created_at,
            &self.created_at_ms,
            &self.key_name,
            &self.logical_model,
            &self.provider,
            &self.region,
            &self.jurisdiction,
            &self.processing_scope,
            &self.tokens[0],
            &self.tokens[1],
            &self.tokens[2],
            &self.tokens[3],
            &self.tokens[4],
            &self.usage_source,
            &self.cost_usd,
            &self.pricing,
            &self.latency_ms,
            &self.ttfb_ms,
            &self.status,
            &self.outcome,
            &self.error_code,
            &self.record,
            &self.team,
        ]
    }
}

pub(super) fn decode(row: &tokio_postgres::Row) -> Result<UsageRecord, LedgerError> {
    let Json(record): Json<UsageRecord> =
        row.try_get(0).map_err(|e| LedgerError::InvalidValue {
            column: "record",
            value: describe(&e),
        })?;
    Ok(record)
}
