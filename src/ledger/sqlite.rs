//! The default ledger sink: one embedded SQLite file in WAL mode, table `requests`,
//! one column per `UsageRecord` field, plus the rollup tables the writer keeps in the
//! same transaction (`rollups`). This file owns the schema (versioned with
//! `PRAGMA user_version`), the row encoding and the blocking SQLite calls, which it
//! always runs on tokio's blocking pool. It does not queue, batch or retry; the
//! writer in `ledger` does.

pub(super) mod rollups;
pub mod scan;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rusqlite::{params, Connection, OpenFlags, Row, TransactionBehavior};
use rust_decimal::Decimal;

use super::rollup::query::{Groups, UsageQuery};
use super::rollup::{money, RebuildReport, RollupBatch};
use super::{
    LedgerError, LedgerSink, Outcome, PriceAudit, PricingStatus, UsageRecord, UsageSource,
};
use rollups::Upserts;

/// How long a connection waits for another one's lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Schema migrations; entry `n` takes `user_version` from `n` to `n + 1`. Append only.
pub(super) const MIGRATIONS: &[&str] = &[
    "
    CREATE TABLE requests (
        request_id TEXT PRIMARY KEY NOT NULL,
        created_at TEXT NOT NULL,
        created_at_ms INTEGER NOT NULL,
        key_name TEXT NOT NULL,
        route TEXT NOT NULL,
        logical_model TEXT,
        provider TEXT,
        upstream_model TEXT,
        region TEXT,
        jurisdiction TEXT,
        processing_scope TEXT,
        stream INTEGER NOT NULL,
        input_tokens INTEGER,
        cached_input_tokens INTEGER,
        cache_write_tokens INTEGER,
        output_tokens INTEGER,
        reasoning_tokens INTEGER,
        usage_source TEXT NOT NULL,
        cost_usd TEXT,
        price_id TEXT,
        pricing TEXT NOT NULL,
        latency_ms INTEGER NOT NULL,
        ttfb_ms INTEGER,
        status INTEGER NOT NULL,
        outcome TEXT NOT NULL,
        error_code TEXT,
        attempts INTEGER NOT NULL,
        policy TEXT NOT NULL
    );
    CREATE INDEX requests_created_at_ms ON requests (created_at_ms);
    CREATE INDEX requests_key_name ON requests (key_name);
    CREATE INDEX requests_logical_model ON requests (logical_model);
    CREATE INDEX requests_provider ON requests (provider);
",
    "
    ALTER TABLE requests ADD COLUMN cheapest_allowed_cost_usd TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_allowed_offer TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_any_cost_usd TEXT;
    ALTER TABLE requests ADD COLUMN cheapest_any_offer TEXT;
    ALTER TABLE requests ADD COLUMN counted_input_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN counted_output_tokens INTEGER;
    ALTER TABLE requests ADD COLUMN output_verifiable INTEGER;
",
    rollups::ROLLUPS,
    // Aggregates come from the rollups now; what still reads records by key or model
    // (request listing, export) walks one of these ranges newest first.
    "
    DROP INDEX requests_key_name;
    DROP INDEX requests_logical_model;
    DROP INDEX requests_provider;
    CREATE INDEX requests_key_time ON requests (key_name, created_at_ms);
    CREATE INDEX requests_model_time ON requests (logical_model, created_at_ms);
",
    // Anthropic's 1-hour cache writes, priced on their own (a part of cache_write_tokens).
    "ALTER TABLE requests ADD COLUMN cache_write_1h_tokens INTEGER;",
];

// OR IGNORE: a duplicate request id must not wedge the writer on a batch that can
// never commit; the first record stored wins.
const INSERT: &str = "INSERT OR IGNORE INTO requests (
    request_id, created_at, created_at_ms, key_name, route, logical_model, provider,
    upstream_model, region, jurisdiction, processing_scope, stream, input_tokens,
    cached_input_tokens, cache_write_tokens, output_tokens, reasoning_tokens, usage_source,
    cost_usd, price_id, pricing, latency_ms, ttfb_ms, status, outcome, error_code, attempts,
    policy, cheapest_allowed_cost_usd, cheapest_allowed_offer, cheapest_any_cost_usd,
    cheapest_any_offer, counted_input_tokens, counted_output_tokens, output_verifiable,
    team, cost_micros, cost_femtos, cache_write_1h_tokens
) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18,
    ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26, ?27, ?28, ?29, ?30, ?31, ?32, ?33, ?34, ?35,
    ?36, ?37, ?38, ?39)";

const SELECT_ONE: &str = "SELECT * FROM requests WHERE request_id = ?1";

/// A SQLite ledger file: one write connection (used only by the writer task) plus a
/// short-lived read-only connection per lookup, which WAL lets run beside writes.
pub struct SqliteSink {
    path: PathBuf,
    // Only the single writer task locks it, so it is never contended.
    writer: Arc<Mutex<Connection>>,
    upserts: Arc<Upserts>,
}

impl SqliteSink {
    /// Open or create the file (and its parent directories), switch it to WAL and
    /// migrate the schema. Blocking: call it from a blocking context.
    pub fn open(path: &Path) -> Result<Self, LedgerError> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| LedgerError::CreateDir {
                path: dir.to_path_buf(),
                source: Arc::new(e),
            })?;
        }
        let open_err = |e| LedgerError::Open {
            path: path.to_path_buf(),
            source: Arc::new(e),
        };
        let mut conn = Connection::open(path).map_err(open_err)?;
        conn.busy_timeout(BUSY_TIMEOUT).map_err(open_err)?;
        // The answer is the mode actually in force; a file system without shared
        // memory keeps the rollback journal, which is slower but still correct.
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get::<_, String>(0))
            .map_err(open_err)?;
        // FULL: a batch reported written survives power loss, not only a crash.
        conn.pragma_update(None, "synchronous", "FULL")
            .map_err(open_err)?;
        migrate(&mut conn, path)?;
        let upserts = Upserts::new();
        let rolled = rollups::backfill(&mut conn, &upserts)?;
        if rolled > 0 {
            tracing::info!(
                records = rolled,
                "ledger records rolled up (schema v3 backfill)"
            );
        }
        Ok(Self {
            path: path.to_path_buf(),
            writer: Arc::new(Mutex::new(conn)),
            upserts: Arc::new(upserts),
        })
    }

    /// Recompute the rollup rows from the UTC day of `from_ms` on from the records
    /// (`tollgate ledger rebuild-rollups`). Blocking.
    pub fn rebuild_rollups(&self, from_ms: i64) -> Result<RebuildReport, LedgerError> {
        let mut conn = self.writer.lock().unwrap_or_else(PoisonError::into_inner);
        rollups::rebuild(&mut conn, &self.upserts, from_ms)
    }
}

/// Answer an aggregate query from the ledger file at `path`. Blocking.
pub fn usage(path: &Path, q: &UsageQuery) -> Result<Groups, LedgerError> {
    let mut conn = scan::open(path)?;
    rollups::usage(&mut conn, q)
}

impl LedgerSink for SqliteSink {
    async fn write_batch(&self, batch: &[UsageRecord]) -> Result<(), LedgerError> {
        let conn = Arc::clone(&self.writer);
        let upserts = Arc::clone(&self.upserts);
        let batch = batch.to_vec();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(PoisonError::into_inner);
            insert_batch(&mut conn, &upserts, &batch).map_err(sql_err("write"))
        })
        .await?
    }

    async fn find(&self, request_id: &str) -> Result<Option<UsageRecord>, LedgerError> {
        let path = self.path.clone();
        let request_id = request_id.to_owned();
        tokio::task::spawn_blocking(move || {
            let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
            let conn = Connection::open_with_flags(&path, flags).map_err(sql_err("read"))?;
            conn.busy_timeout(BUSY_TIMEOUT).map_err(sql_err("read"))?;
            let mut stmt = conn.prepare(SELECT_ONE).map_err(sql_err("read"))?;
            let mut rows = stmt.query([&request_id]).map_err(sql_err("read"))?;
            match rows.next().map_err(sql_err("read"))? {
                Some(row) => decode(row).map(Some),
                None => Ok(None),
            }
        })
        .await?
    }
}

fn migrate(conn: &mut Connection, path: &Path) -> Result<(), LedgerError> {
    let supported = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
    // IMMEDIATE: two processes opening a new file at once must not both create it.
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(sql_err("migrate"))?;
    let found: i64 = tx
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .map_err(sql_err("migrate"))?;
    if found > supported {
        return Err(LedgerError::SchemaTooNew {
            path: path.to_path_buf(),
            found,
            supported,
        });
    }
    let applied = usize::try_from(found).unwrap_or(0);
    for sql in MIGRATIONS.iter().skip(applied) {
        tx.execute_batch(sql).map_err(sql_err("migrate"))?;
    }
    tx.pragma_update(None, "user_version", supported)
        .map_err(sql_err("migrate"))?;
    tx.commit().map_err(sql_err("migrate"))
}

/// One transaction for the whole batch, records and rollups together: one commit (and
/// fsync) per batch, not per record, and rollups never disagree with the records.
fn insert_batch(
    conn: &mut Connection,
    upserts: &Upserts,
    batch: &[UsageRecord],
) -> rusqlite::Result<()> {
    let tx = conn.transaction()?;
    let mut rollups = RollupBatch::default();
    {
        let mut stmt = tx.prepare_cached(INSERT)?;
        for r in batch {
            let (cost_micros, cost_femtos) = r.cost_usd.map(money::to_parts).unzip();
            let inserted = stmt.execute(params![
                r.request_id,
                r.created_at.to_rfc3339_opts(SecondsFormat::Millis, true),
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
                r.input_tokens.map(sql_int),
                r.cached_input_tokens.map(sql_int),
                r.cache_write_tokens.map(sql_int),
                r.output_tokens.map(sql_int),
                r.reasoning_tokens.map(sql_int),
                r.usage_source.as_str(),
                r.cost_usd.map(|c| c.to_string()),
                r.price_id,
                r.pricing.as_str(),
                sql_int(r.latency_ms),
                r.ttfb_ms.map(sql_int),
                r.status,
                r.outcome.as_str(),
                r.error_code,
                r.attempts,
                r.policy.to_string(),
                r.audit.cheapest_allowed_cost_usd.map(|c| c.to_string()),
                r.audit.cheapest_allowed_offer,
                r.audit.cheapest_any_cost_usd.map(|c| c.to_string()),
                r.audit.cheapest_any_offer,
                r.audit.counted_input_tokens.map(sql_int),
                r.audit.counted_output_tokens.map(sql_int),
                r.audit.output_verifiable,
                r.team,
                cost_micros,
                cost_femtos,
                r.cache_write_1h_tokens.map(sql_int),
            ])?;
            // A duplicate is not stored, so it must not be counted either.
            if inserted == 0 {
                tracing::warn!(request_id = %r.request_id, "duplicate ledger record ignored; the first one stands");
            } else {
                rollups.add(r);
            }
        }
    }
    rollups::write(&tx, upserts, &rollups)?;
    tx.commit()
}

/// SQLite integers are i64. Clamping (rather than failing) keeps one absurd value
/// from making its whole batch unwritable forever.
fn sql_int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

pub(super) fn sql_err(op: &'static str) -> impl Fn(rusqlite::Error) -> LedgerError {
    move |e| LedgerError::Sqlite {
        op,
        source: Arc::new(e),
    }
}

/// One `requests` row as a record (the usage API pages through these).
pub(crate) fn decode(row: &Row<'_>) -> Result<UsageRecord, LedgerError> {
    let created_at: String = get(row, "created_at")?;
    let cost_usd: Option<String> = get(row, "cost_usd")?;
    let policy: String = get(row, "policy")?;
    Ok(UsageRecord {
        request_id: get(row, "request_id")?,
        created_at: DateTime::parse_from_rfc3339(&created_at)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| invalid("created_at", created_at))?,
        key_name: get(row, "key_name")?,
        team: get(row, "team")?,
        route: get(row, "route")?,
        logical_model: get(row, "logical_model")?,
        provider: get(row, "provider")?,
        upstream_model: get(row, "upstream_model")?,
        region: get(row, "region")?,
        jurisdiction: get(row, "jurisdiction")?,
        processing_scope: get(row, "processing_scope")?,
        stream: get(row, "stream")?,
        input_tokens: opt_uint(row, "input_tokens")?,
        cached_input_tokens: opt_uint(row, "cached_input_tokens")?,
        cache_write_tokens: opt_uint(row, "cache_write_tokens")?,
        cache_write_1h_tokens: opt_uint(row, "cache_write_1h_tokens")?,
        output_tokens: opt_uint(row, "output_tokens")?,
        reasoning_tokens: opt_uint(row, "reasoning_tokens")?,
        usage_source: UsageSource::from_str(&get::<String>(row, "usage_source")?)?,
        cost_usd: cost_usd
            .map(|c| Decimal::from_str(&c).map_err(|_| invalid("cost_usd", c)))
            .transpose()?,
        price_id: get(row, "price_id")?,
        pricing: PricingStatus::from_str(&get::<String>(row, "pricing")?)?,
        latency_ms: uint(row, "latency_ms")?,
        ttfb_ms: opt_uint(row, "ttfb_ms")?,
        status: uint(row, "status")?,
        outcome: Outcome::from_str(&get::<String>(row, "outcome")?)?,
        error_code: get(row, "error_code")?,
        attempts: uint(row, "attempts")?,
        policy: serde_json::from_str(&policy).map_err(|_| invalid("policy", policy))?,
        audit: PriceAudit {
            cheapest_allowed_cost_usd: opt_decimal(row, "cheapest_allowed_cost_usd")?,
            cheapest_allowed_offer: get(row, "cheapest_allowed_offer")?,
            cheapest_any_cost_usd: opt_decimal(row, "cheapest_any_cost_usd")?,
            cheapest_any_offer: get(row, "cheapest_any_offer")?,
            counted_input_tokens: opt_uint(row, "counted_input_tokens")?,
            counted_output_tokens: opt_uint(row, "counted_output_tokens")?,
            output_verifiable: get(row, "output_verifiable")?,
        },
    })
}

fn opt_decimal(row: &Row<'_>, column: &'static str) -> Result<Option<Decimal>, LedgerError> {
    let v: Option<String> = get(row, column)?;
    v.map(|c| Decimal::from_str(&c).map_err(|_| invalid(column, c)))
        .transpose()
}

fn get<T: rusqlite::types::FromSql>(row: &Row<'_>, column: &str) -> Result<T, LedgerError> {
    row.get(column).map_err(sql_err("read"))
}

fn uint<T: TryFrom<i64>>(row: &Row<'_>, column: &'static str) -> Result<T, LedgerError> {
    let v: i64 = get(row, column)?;
    T::try_from(v).map_err(|_| invalid(column, v.to_string()))
}

fn opt_uint<T: TryFrom<i64>>(
    row: &Row<'_>,
    column: &'static str,
) -> Result<Option<T>, LedgerError> {
    let v: Option<i64> = get(row, column)?;
    v.map(|v| T::try_from(v).map_err(|_| invalid(column, v.to_string())))
        .transpose()
}

fn invalid(column: &'static str, value: String) -> LedgerError {
    LedgerError::InvalidValue { column, value }
}
