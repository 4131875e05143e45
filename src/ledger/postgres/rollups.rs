//! Rollups in a PostgreSQL ledger: the schema v3 step, the writer's pipelined upserts,
//! the backfill of a v2 database (inside the migration transaction, under its advisory
//! lock), `rebuild-rollups`, and the aggregate query. Money is `NUMERIC`, summed exactly
//! by PostgreSQL; counts are `BIGINT`, whose `SUM` is `NUMERIC` and cannot overflow.

use std::collections::BTreeMap;

use deadpool_postgres::Transaction;
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Portal, Row};

use crate::ledger::filter::Range;
use crate::ledger::rollup::columns::{self, Dim, Tier, DAILY, HOURLY};
use crate::ledger::rollup::plan::Source;
use crate::ledger::rollup::query::{self, non_empty, Dialect, GroupValue, Groups, UsageQuery};
use crate::ledger::rollup::{
    contribution, floor_to, RebuildReport, RollupBatch, RollupKey, Sums, COUNT_MAX, DAY_MS,
};
use crate::ledger::{LedgerError, UsageRecord};

/// The summed columns of both tiers, one literal for `concat!`. `columns` names them.
macro_rules! sum_columns {
    () => {
        concat!(
            "requests BIGINT NOT NULL, errors BIGINT NOT NULL, input_tokens BIGINT NOT NULL, ",
            "cached_input_tokens BIGINT NOT NULL, cache_write_tokens BIGINT NOT NULL, ",
            "output_tokens BIGINT NOT NULL, reasoning_tokens BIGINT NOT NULL, ",
            "estimated_requests BIGINT NOT NULL, unpriced_requests BIGINT NOT NULL, ",
            "billable_requests BIGINT NOT NULL, billable_costed_requests BIGINT NOT NULL, ",
            "compared_requests BIGINT NOT NULL, drift_requests BIGINT NOT NULL, ",
            "drift_reported_tokens BIGINT NOT NULL, drift_counted_tokens BIGINT NOT NULL, ",
            "hidden_reasoning_requests BIGINT NOT NULL, cost_usd NUMERIC NOT NULL, ",
            "billable_cost_usd NUMERIC NOT NULL, compared_cost_usd NUMERIC NOT NULL, ",
            "cheapest_allowed_usd NUMERIC NOT NULL, cheapest_any_usd NUMERIC NOT NULL, ",
            "latency_b00 BIGINT NOT NULL, latency_b01 BIGINT NOT NULL, ",
            "latency_b02 BIGINT NOT NULL, latency_b03 BIGINT NOT NULL, ",
            "latency_b04 BIGINT NOT NULL, latency_b05 BIGINT NOT NULL, ",
            "latency_b06 BIGINT NOT NULL, latency_b07 BIGINT NOT NULL, ",
            "latency_b08 BIGINT NOT NULL, latency_b09 BIGINT NOT NULL, ",
            "latency_b10 BIGINT NOT NULL, latency_b11 BIGINT NOT NULL, ",
            "latency_b12 BIGINT NOT NULL, latency_b13 BIGINT NOT NULL, ",
            "latency_b14 BIGINT NOT NULL, latency_b15 BIGINT NOT NULL, ",
            "latency_b16 BIGINT NOT NULL, latency_b17 BIGINT NOT NULL, ",
            "latency_b18 BIGINT NOT NULL, latency_b19 BIGINT NOT NULL, ",
            "latency_b20 BIGINT NOT NULL, latency_b21 BIGINT NOT NULL, ",
            "latency_b22 BIGINT NOT NULL, latency_b23 BIGINT NOT NULL, ",
            "latency_max_ms BIGINT NOT NULL, ttfb_b00 BIGINT NOT NULL, ttfb_b01 BIGINT NOT NULL, ",
            "ttfb_b02 BIGINT NOT NULL, ttfb_b03 BIGINT NOT NULL, ttfb_b04 BIGINT NOT NULL, ",
            "ttfb_b05 BIGINT NOT NULL, ttfb_b06 BIGINT NOT NULL, ttfb_b07 BIGINT NOT NULL, ",
            "ttfb_b08 BIGINT NOT NULL, ttfb_b09 BIGINT NOT NULL, ttfb_b10 BIGINT NOT NULL, ",
            "ttfb_b11 BIGINT NOT NULL, ttfb_b12 BIGINT NOT NULL, ttfb_b13 BIGINT NOT NULL, ",
            "ttfb_b14 BIGINT NOT NULL, ttfb_b15 BIGINT NOT NULL, ttfb_b16 BIGINT NOT NULL, ",
            "ttfb_b17 BIGINT NOT NULL, ttfb_b18 BIGINT NOT NULL, ttfb_b19 BIGINT NOT NULL, ",
            "ttfb_b20 BIGINT NOT NULL, ttfb_b21 BIGINT NOT NULL, ttfb_b22 BIGINT NOT NULL, ",
            "ttfb_b23 BIGINT NOT NULL, ttfb_max_ms BIGINT NOT NULL, ",
        )
    };
}

/// Schema v2 (PostgreSQL numbering; SQLite's v3): `team` on `requests` and the two
/// rollup tables. The backfill runs after the steps, in the same transaction
/// ([`backfill`]).
pub(in crate::ledger) const ROLLUPS: &str = concat!(
    "ALTER TABLE requests ADD COLUMN team TEXT;\n",
    "CREATE TABLE usage_hourly (hour_ms BIGINT NOT NULL, key_name TEXT NOT NULL, ",
    "team TEXT NOT NULL, logical_model TEXT NOT NULL, provider TEXT NOT NULL, ",
    "upstream_model TEXT NOT NULL, jurisdiction TEXT NOT NULL, route TEXT NOT NULL, ",
    "outcome TEXT NOT NULL, ",
    sum_columns!(),
    "PRIMARY KEY (hour_ms, key_name, team, logical_model, provider, upstream_model, ",
    "jurisdiction, route, outcome));\n",
    "CREATE TABLE usage_daily (day_ms BIGINT NOT NULL, key_name TEXT NOT NULL, ",
    "team TEXT NOT NULL, logical_model TEXT NOT NULL, provider TEXT NOT NULL, ",
    "jurisdiction TEXT NOT NULL, ",
    sum_columns!(),
    "PRIMARY KEY (day_ms, key_name, team, logical_model, provider, jurisdiction));\n",
);

/// Rollup rows folded in memory before they are written out.
const FLUSH_ROWS: usize = 50_000;

/// The upsert statements' text, built once per pool.
#[derive(Debug)]
pub(in crate::ledger) struct Upserts {
    hourly: String,
    daily: String,
}

impl Upserts {
    pub(in crate::ledger) fn new() -> Self {
        Self {
            hourly: query::upsert_arrays(&HOURLY),
            daily: query::upsert_arrays(&DAILY),
        }
    }
}

/// A tier's rows as one array per column, in `query::upsert_arrays`' parameter order.
struct RowArrays<'a> {
    start_ms: Vec<i64>,
    dims: Vec<Vec<&'a str>>,
    ints: Vec<Vec<i64>>,
    money: [Vec<Decimal>; 5],
    maxima: [Vec<i64>; 2],
}

impl<'a> RowArrays<'a> {
    fn of(tier: &Tier, rows: &'a BTreeMap<RollupKey, Sums>) -> Self {
        let int = |v: u64| i64::try_from(v.min(COUNT_MAX)).unwrap_or(i64::MAX);
        let text_dims: Vec<Dim> = tier
            .dims
            .iter()
            .copied()
            .filter(|d| d.column().is_some())
            .collect();
        let mut out = Self {
            start_ms: Vec::with_capacity(rows.len()),
            dims: vec![Vec::with_capacity(rows.len()); text_dims.len()],
            ints: vec![Vec::with_capacity(rows.len()); columns::summed_integers().len()],
            money: Default::default(),
            maxima: Default::default(),
        };
        for (key, sums) in rows {
            out.start_ms.push(key.start_ms);
            for (column, d) in out.dims.iter_mut().zip(&text_dims) {
                column.push(d.text(key).unwrap_or(""));
            }
            for (column, v) in out.ints.iter_mut().zip(columns::integers(sums)) {
                column.push(int(v));
            }
            for (column, v) in out.money.iter_mut().zip(sums.money()) {
                column.push(v);
            }
            for (column, v) in out.maxima.iter_mut().zip([sums.latency.max, sums.ttfb.max]) {
                column.push(int(v));
            }
        }
        out
    }

    fn params(&self) -> Vec<&(dyn ToSql + Sync)> {
        let mut out: Vec<&(dyn ToSql + Sync)> = vec![&self.start_ms];
        out.extend(self.dims.iter().map(|v| v as &(dyn ToSql + Sync)));
        out.extend(self.ints.iter().map(|v| v as &(dyn ToSql + Sync)));
        out.extend(self.money.iter().map(|v| v as &(dyn ToSql + Sync)));
        out.extend(self.maxima.iter().map(|v| v as &(dyn ToSql + Sync)));
        out
    }
}

/// Add a batch's contributions to both tiers inside the caller's transaction: one
/// statement per tier, rows in key order (see `RollupBatch`) so that two replicas'
/// transactions lock them in the same order and cannot deadlock.
pub(in crate::ledger) async fn write(
    tx: &Transaction<'_>,
    upserts: &Upserts,
    batch: &RollupBatch,
) -> Result<(), tokio_postgres::Error> {
    for (sql, tier, rows) in [
        (&upserts.hourly, &HOURLY, &batch.hourly),
        (&upserts.daily, &DAILY, &batch.daily),
    ] {
        if rows.is_empty() {
            continue;
        }
        let stmt = tx.prepare_cached(sql).await?;
        let arrays = RowArrays::of(tier, rows);
        tx.execute(&stmt, &arrays.params()).await?;
    }
    Ok(())
}

fn pg_err(op: &'static str) -> impl Fn(tokio_postgres::Error) -> LedgerError {
    move |e| LedgerError::Postgres {
        op,
        message: super::describe(&e),
    }
}

fn decode_record(row: &Row) -> Result<UsageRecord, LedgerError> {
    super::decode(row)
}

/// Roll up every record created at or after `from_ms` into rollup tables holding none
/// of them, inside the caller's transaction, reading the records through a portal a
/// page at a time and writing the folded rows out whenever they grow large. Returns
/// the records rolled up.
pub(in crate::ledger) async fn backfill(
    tx: &Transaction<'_>,
    upserts: &Upserts,
    from_ms: i64,
) -> Result<u64, LedgerError> {
    let err = pg_err("roll up records");
    let portal = tx
        .bind(
            "SELECT record FROM requests WHERE created_at_ms >= $1",
            &[&from_ms],
        )
        .await
        .map_err(&err)?;
    let mut batch = RollupBatch::default();
    let mut done = 0_u64;
    loop {
        let page = next_page(tx, &portal).await?;
        for r in &page {
            batch.add(r);
        }
        done += page.len() as u64;
        if batch.len() >= FLUSH_ROWS {
            write(tx, upserts, &std::mem::take(&mut batch))
                .await
                .map_err(&err)?;
        }
        if page.len() < PAGE_ROWS {
            break;
        }
    }
    write(tx, upserts, &batch).await.map_err(&err)?;
    Ok(done)
}

/// Recompute both tiers from the records created from the UTC day of `from_ms` on,
/// in the caller's transaction; rows before that day are kept. The rollup tables are
/// locked against writes first (`EXCLUSIVE`: readers go on), so a writer's batch either
/// committed before (and its records are read here) or waits and adds its own
/// contribution after this commits: nothing is counted twice or missed.
pub(in crate::ledger) async fn rebuild(
    tx: &Transaction<'_>,
    upserts: &Upserts,
    from_ms: i64,
) -> Result<RebuildReport, LedgerError> {
    let err = pg_err("rebuild rollups");
    let from = floor_to(from_ms, DAY_MS);
    tx.batch_execute("LOCK TABLE usage_hourly, usage_daily IN EXCLUSIVE MODE")
        .await
        .map_err(&err)?;
    for tier in [&HOURLY, &DAILY] {
        let sql = format!(
            "DELETE FROM {} WHERE {} >= $1",
            tier.table, tier.time_column
        );
        tx.execute(&sql, &[&from]).await.map_err(&err)?;
    }
    let records = backfill(tx, upserts, from).await?;
    let count = |tier: &'static Tier| async move {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} >= $1",
            tier.table, tier.time_column
        );
        tx.query_one(&sql, &[&from])
            .await
            .map(|r| u64::try_from(r.get::<_, i64>(0)).unwrap_or(0))
    };
    Ok(RebuildReport {
        records,
        hourly_rows: count(&HOURLY).await.map_err(&err)?,
        daily_rows: count(&DAILY).await.map_err(&err)?,
    })
}

const SELECT_RANGE: &str = "SELECT record FROM requests
    WHERE created_at_ms >= $1 AND created_at_ms < $2
      AND ($3::TEXT IS NULL OR key_name = $3) AND ($4::TEXT IS NULL OR logical_model = $4)
    ORDER BY created_at_ms, request_id";

/// Records fetched per round trip while streaming: memory holds one page, whatever
/// the range holds.
const PAGE_ROWS: usize = 1_000;

/// Up to `PAGE_ROWS` more records of an open portal.
async fn next_page(tx: &Transaction<'_>, portal: &Portal) -> Result<Vec<UsageRecord>, LedgerError> {
    let rows = tx
        .query_portal(portal, i32::try_from(PAGE_ROWS).unwrap_or(i32::MAX))
        .await
        .map_err(pg_err("read"))?;
    rows.iter().map(decode_record).collect()
}

/// Feed every record in `range` to `f`, oldest first, a page at a time.
pub(in crate::ledger) async fn fold_range(
    tx: &Transaction<'_>,
    range: &Range<'_>,
    mut f: impl FnMut(UsageRecord),
) -> Result<(), LedgerError> {
    let err = pg_err("read");
    let stmt = tx.prepare_cached(SELECT_RANGE).await.map_err(&err)?;
    let params: [&(dyn ToSql + Sync); 4] = [
        &range.from_ms,
        &range.to_ms,
        &range.key_name,
        &range.logical_model,
    ];
    let portal = tx.bind(&stmt, &params).await.map_err(&err)?;
    loop {
        let page = next_page(tx, &portal).await?;
        let last = page.len() < PAGE_ROWS;
        page.into_iter().for_each(&mut f);
        if last {
            return Ok(());
        }
    }
}

/// Answer `q` inside the caller's (read-only, repeatable-read) transaction.
pub(in crate::ledger) async fn usage(
    tx: &Transaction<'_>,
    q: &UsageQuery,
) -> Result<Groups, LedgerError> {
    let mut groups = Groups::new();
    let oldest = if q.is_ragged() {
        let row = tx
            .query_one("SELECT MIN(created_at_ms) FROM requests", &[])
            .await
            .map_err(pg_err("read"))?;
        row.get::<_, Option<i64>>(0).unwrap_or(i64::MAX)
    } else {
        i64::MIN
    };
    for seg in q.plan(oldest) {
        let tier = match seg.source {
            Source::Daily => &DAILY,
            Source::Hourly => &HOURLY,
            Source::Records => {
                let range = Range {
                    from_ms: seg.from_ms,
                    to_ms: seg.to_ms,
                    key_name: q.key.as_deref(),
                    logical_model: q.model.as_deref(),
                };
                fold_range(tx, &range, |r| {
                    let (key, sums) = contribution(&r);
                    if q.admits(&key) {
                        groups.entry(q.group_of(&key)).or_default().merge(&sums);
                    }
                })
                .await?;
                continue;
            }
        };
        let sql = query::select(tier, &q.group_by, Dialect::Postgres);
        let rows = tx
            .query(&sql, &[&seg.from_ms, &seg.to_ms, &q.key, &q.model])
            .await
            .map_err(pg_err("read"))?;
        for row in &rows {
            if let Some((group, sums)) = decode_group(row, &q.group_by)? {
                groups.entry(group).or_default().merge(&sums);
            }
        }
    }
    Ok(groups)
}

fn decode_group(
    row: &Row,
    group_by: &[Dim],
) -> Result<Option<(Vec<GroupValue>, Sums)>, LedgerError> {
    let bad = |e: tokio_postgres::Error| LedgerError::InvalidValue {
        column: "rollup",
        value: e.to_string(),
    };
    let mut group = Vec::with_capacity(group_by.len());
    for (i, d) in group_by.iter().enumerate() {
        group.push(match d {
            Dim::Day | Dim::Hour => GroupValue::Time(row.try_get(i).map_err(bad)?),
            _ => GroupValue::Text(non_empty(&row.try_get::<_, String>(i).map_err(bad)?)),
        });
    }
    let mut i = group_by.len();
    let mut ints = Vec::new();
    for _ in columns::summed_integers() {
        ints.push(row.try_get::<_, Option<Decimal>>(i).map_err(bad)?);
        i += 1;
    }
    if ints.first().copied().flatten().is_none() {
        return Ok(None);
    }
    let count = |d: Option<Decimal>| {
        d.unwrap_or_default()
            .max(Decimal::ZERO)
            .to_u64()
            .map_or(COUNT_MAX, |v| v.min(COUNT_MAX))
    };
    let mut sums = Sums::default();
    columns::set_integers(&mut sums, ints.into_iter().map(count));
    for m in sums.money_mut() {
        *m = row
            .try_get::<_, Option<Decimal>>(i)
            .map_err(bad)?
            .unwrap_or_default()
            .normalize();
        i += 1;
    }
    let max = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    sums.latency.max = max(row.try_get(i).map_err(bad)?);
    sums.ttfb.max = max(row.try_get(i + 1).map_err(bad)?);
    Ok(Some((group, sums)))
}
