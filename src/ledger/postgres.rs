//! The PostgreSQL ledger, for fleets: every replica writes its records into one
//! `requests` table and every replica's usage API reads all of them. Chosen by a
//! `postgres://` URL in `ledger.url`.
//!
//! Each record is stored twice over: the columns operators filter and sum on
//! (times, key, team, model, provider, jurisdiction, tokens, cost as exact `NUMERIC`)
//! and the whole record as `json`, which is what tollgate reads back, so a record round
//! trips exactly, field for field, without a second decoder to keep in step with
//! SQLite's. The writer adds each batch to the rollup tables in the same transaction
//! (`rollup::postgres`); aggregate reads come from them. The schema is migrated at
//! start-up under an advisory lock, so replicas starting together do not race. Writes
//! go through a small connection pool; a database that is down fails the batch, which
//! the writer keeps and retries. Connections are encrypted as the URL's `sslmode`
//! says (see [`tls`]). `requests` is partitioned by month, so retention drops whole
//! months (see [`partitions`]).

pub mod partitions;
mod tls;

use std::sync::Arc;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use tokio_postgres::types::{Json, ToSql};
use tokio_postgres::IsolationLevel;

use super::rollup::postgres::Upserts;
use super::rollup::query::{Groups, UsageQuery};
use super::rollup::{self, RebuildReport, RollupBatch};
use super::scan::Filter;
use super::{LedgerError, LedgerSink, UsageRecord};

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
    rollup::postgres::ROLLUPS,
    // Monthly partitions (retention drops whole months); see `partitions`.
    partitions::MIGRATION,
];

/// Any number: the lock only has to be the same for every tollgate migrating this database.
const MIGRATION_LOCK: i64 = 0x746f_6c6c_6761_7465; // "tollgate"

// The key is (request_id, created_at_ms), as a partitioned table needs: a record sent
// again (a retried batch) has both the same, so it is still the first one that stands.
const INSERT: &str = "INSERT INTO requests (
        request_id, created_at, created_at_ms, key_name, logical_model, provider, region,
        jurisdiction, processing_scope, input_tokens, cached_input_tokens,
        cache_write_tokens, output_tokens, reasoning_tokens, usage_source, cost_usd,
        pricing, latency_ms, ttfb_ms, status, outcome, error_code, record, team)
    VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17,
        $18, $19, $20, $21, $22, $23, $24)
    ON CONFLICT (request_id, created_at_ms) DO NOTHING";

const SELECT_PAGE: &str = "SELECT record FROM requests
    WHERE created_at_ms >= $1 AND created_at_ms < $2
      AND ($3::TEXT IS NULL OR key_name = $3) AND ($4::TEXT IS NULL OR logical_model = $4)
      AND ($5::BIGINT IS NULL OR created_at_ms < $5 OR (created_at_ms = $5 AND request_id < $6))
    ORDER BY created_at_ms DESC, request_id DESC
    LIMIT $7";

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
        if i64::from(found) < rollup::introduced_by(MIGRATIONS, rollup::postgres::ROLLUPS) {
            // Replicas starting meanwhile wait on the lock: none writes until this commits.
            let rolled = rollup::postgres::backfill(&tx, &self.upserts, i64::MIN).await?;
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
        let groups = rollup::postgres::usage(&tx, q).await?;
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
        rollup::postgres::fold_range(&tx, &filter.range(), |r| f(&mut acc, r)).await?;
        tx.commit().await.map_err(pg_err("read"))?;
        Ok(acc)
    }

    /// Recompute the rollup rows from the UTC day of `from_ms` on from the records, in
    /// one transaction under the migration lock (see `rollup::postgres::rebuild` for why
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
        let report = rollup::postgres::rebuild(&tx, &self.upserts, from_ms).await?;
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
        let (from, to) = filter.bounds_ms();
        let (at, id) = cursor.map_or((None, None), |(at, id)| (Some(at), Some(id)));
        let rows = client
            .query(
                SELECT_PAGE,
                &[
                    &from,
                    &to,
                    &filter.key_name,
                    &filter.logical_model,
                    &at,
                    &id,
                    &fetch,
                ],
            )
            .await
            .map_err(pg_err("read"))?;
        rows.iter().map(decode).collect()
    }
}

impl LedgerSink for PostgresLedger {
    async fn write_batch(&self, batch: &[UsageRecord]) -> Result<(), LedgerError> {
        let mut client = self.client().await?;
        let tx = client.transaction().await.map_err(pg_err("write"))?;
        let insert = tx.prepare_cached(INSERT).await.map_err(pg_err("write"))?;
        let columns: Vec<Columns<'_>> = batch.iter().map(Columns::of).collect();
        // Queued together, the inserts are pipelined over the one connection.
        let inserts = columns.iter().map(|c| {
            let params = c.params();
            let tx = &tx;
            let insert = &insert;
            async move { tx.execute(insert, &params).await }
        });
        let inserted = futures_util::future::try_join_all(inserts)
            .await
            .map_err(pg_err("write"))?;
        let mut rollups = RollupBatch::default();
        for (r, n) in batch.iter().zip(inserted) {
            // A duplicate is not stored (ON CONFLICT DO NOTHING), so it is not counted.
            if n == 0 {
                tracing::warn!(request_id = %r.request_id, "duplicate ledger record ignored; the first one stands");
            } else {
                rollups.add(r);
            }
        }
        rollup::postgres::write(&tx, &self.upserts, &rollups)
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

/// One record's column values, borrowed for the insert.
struct Columns<'a> {
    r: &'a UsageRecord,
    created_at_ms: i64,
    tokens: [Option<i64>; 5],
    latency_ms: i64,
    ttfb_ms: Option<i64>,
    status: i32,
    usage_source: &'static str,
    pricing: &'static str,
    outcome: &'static str,
    record: Json<&'a UsageRecord>,
}

impl<'a> Columns<'a> {
    fn of(r: &'a UsageRecord) -> Self {
        let int = |v: u64| i64::try_from(v).unwrap_or(i64::MAX);
        Self {
            r,
            created_at_ms: r.created_at.timestamp_millis(),
            tokens: [
                r.input_tokens,
                r.cached_input_tokens,
                r.cache_write_tokens,
                r.output_tokens,
                r.reasoning_tokens,
            ]
            .map(|t| t.map(int)),
            latency_ms: int(r.latency_ms),
            ttfb_ms: r.ttfb_ms.map(int),
            status: i32::from(r.status),
            usage_source: r.usage_source.as_str(),
            pricing: r.pricing.as_str(),
            outcome: r.outcome.as_str(),
            record: Json(r),
        }
    }

    fn params(&self) -> [&(dyn ToSql + Sync); 24] {
        let r = self.r;
        [
            &r.request_id,
            &r.created_at,
            &self.created_at_ms,
            &r.key_name,
            &r.logical_model,
            &r.provider,
            &r.region,
            &r.jurisdiction,
            &r.processing_scope,
            &self.tokens[0],
            &self.tokens[1],
            &self.tokens[2],
            &self.tokens[3],
            &self.tokens[4],
            &self.usage_source,
            &r.cost_usd,
            &self.pricing,
            &self.latency_ms,
            &self.ttfb_ms,
            &self.status,
            &self.outcome,
            &r.error_code,
            &self.record,
            &r.team,
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
