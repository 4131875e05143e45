//! Rollups in a SQLite ledger: the schema v3 step (rollup tables, `team` and the
//! integer cost columns on `requests`), the writer's upserts, the resumable backfill of
//! a v2 ledger, `rebuild-rollups`, and the aggregate query. Blocking, like the rest of
//! the SQLite sink; the semantics (what a record adds) are `rollup`'s.

use rusqlite::{
    params, Connection, OptionalExtension, Row, ToSql, Transaction, TransactionBehavior,
};

use super::scan;
use super::{decode, sql_err};
use crate::ledger::rollup::columns::{self, Dim, Tier, DAILY, HOURLY};
use crate::ledger::rollup::plan::Source;
use crate::ledger::rollup::query::{self, non_empty, Dialect, GroupValue, Groups, UsageQuery};
use crate::ledger::rollup::{
    contribution, floor_to, money, RebuildReport, RollupBatch, RollupKey, Sums, COUNT_MAX, DAY_MS,
};
use crate::ledger::{LedgerError, UsageRecord};

/// The summed columns of both tiers, one literal for `concat!` (the DDL must be a
/// `&'static str` in the migration list). `columns` names them; a test compares.
macro_rules! sum_columns {
    () => {
        concat!(
            "requests INTEGER NOT NULL, errors INTEGER NOT NULL, input_tokens INTEGER NOT NULL, ",
            "cached_input_tokens INTEGER NOT NULL, cache_write_tokens INTEGER NOT NULL, ",
            "output_tokens INTEGER NOT NULL, reasoning_tokens INTEGER NOT NULL, ",
            "estimated_requests INTEGER NOT NULL, unpriced_requests INTEGER NOT NULL, ",
            "billable_requests INTEGER NOT NULL, billable_costed_requests INTEGER NOT NULL, ",
            "compared_requests INTEGER NOT NULL, drift_requests INTEGER NOT NULL, ",
            "drift_reported_tokens INTEGER NOT NULL, drift_counted_tokens INTEGER NOT NULL, ",
            "hidden_reasoning_requests INTEGER NOT NULL, cost_usd_micros INTEGER NOT NULL, ",
            "cost_usd_femtos INTEGER NOT NULL, billable_cost_usd_micros INTEGER NOT NULL, ",
            "billable_cost_usd_femtos INTEGER NOT NULL, ",
            "compared_cost_usd_micros INTEGER NOT NULL, ",
            "compared_cost_usd_femtos INTEGER NOT NULL, ",
            "cheapest_allowed_usd_micros INTEGER NOT NULL, ",
            "cheapest_allowed_usd_femtos INTEGER NOT NULL, ",
            "cheapest_any_usd_micros INTEGER NOT NULL, cheapest_any_usd_femtos INTEGER NOT NULL, ",
            "latency_b00 INTEGER NOT NULL, latency_b01 INTEGER NOT NULL, ",
            "latency_b02 INTEGER NOT NULL, latency_b03 INTEGER NOT NULL, ",
            "latency_b04 INTEGER NOT NULL, latency_b05 INTEGER NOT NULL, ",
            "latency_b06 INTEGER NOT NULL, latency_b07 INTEGER NOT NULL, ",
            "latency_b08 INTEGER NOT NULL, latency_b09 INTEGER NOT NULL, ",
            "latency_b10 INTEGER NOT NULL, latency_b11 INTEGER NOT NULL, ",
            "latency_b12 INTEGER NOT NULL, latency_b13 INTEGER NOT NULL, ",
            "latency_b14 INTEGER NOT NULL, latency_b15 INTEGER NOT NULL, ",
            "latency_b16 INTEGER NOT NULL, latency_b17 INTEGER NOT NULL, ",
            "latency_b18 INTEGER NOT NULL, latency_b19 INTEGER NOT NULL, ",
            "latency_b20 INTEGER NOT NULL, latency_b21 INTEGER NOT NULL, ",
            "latency_b22 INTEGER NOT NULL, latency_b23 INTEGER NOT NULL, ",
            "latency_max_ms INTEGER NOT NULL, ttfb_b00 INTEGER NOT NULL, ",
            "ttfb_b01 INTEGER NOT NULL, ttfb_b02 INTEGER NOT NULL, ttfb_b03 INTEGER NOT NULL, ",
            "ttfb_b04 INTEGER NOT NULL, ttfb_b05 INTEGER NOT NULL, ttfb_b06 INTEGER NOT NULL, ",
            "ttfb_b07 INTEGER NOT NULL, ttfb_b08 INTEGER NOT NULL, ttfb_b09 INTEGER NOT NULL, ",
            "ttfb_b10 INTEGER NOT NULL, ttfb_b11 INTEGER NOT NULL, ttfb_b12 INTEGER NOT NULL, ",
            "ttfb_b13 INTEGER NOT NULL, ttfb_b14 INTEGER NOT NULL, ttfb_b15 INTEGER NOT NULL, ",
            "ttfb_b16 INTEGER NOT NULL, ttfb_b17 INTEGER NOT NULL, ttfb_b18 INTEGER NOT NULL, ",
            "ttfb_b19 INTEGER NOT NULL, ttfb_b20 INTEGER NOT NULL, ttfb_b21 INTEGER NOT NULL, ",
            "ttfb_b22 INTEGER NOT NULL, ttfb_b23 INTEGER NOT NULL, ttfb_max_ms INTEGER NOT NULL, ",
        )
    };
}

/// Schema v3 (SQLite numbering): rollup tables, `team`, integer cost parts, and the
/// backfill cursor (one row while the records of a v2 ledger are still being rolled up).
pub(in crate::ledger) const ROLLUPS: &str = concat!(
    "ALTER TABLE requests ADD COLUMN team TEXT;\n",
    "ALTER TABLE requests ADD COLUMN cost_micros INTEGER;\n",
    "ALTER TABLE requests ADD COLUMN cost_femtos INTEGER;\n",
    "CREATE TABLE usage_hourly (hour_ms INTEGER NOT NULL, key_name TEXT NOT NULL, ",
    "team TEXT NOT NULL, logical_model TEXT NOT NULL, provider TEXT NOT NULL, ",
    "upstream_model TEXT NOT NULL, jurisdiction TEXT NOT NULL, route TEXT NOT NULL, ",
    "outcome TEXT NOT NULL, ",
    sum_columns!(),
    "PRIMARY KEY (hour_ms, key_name, team, logical_model, provider, upstream_model, ",
    "jurisdiction, route, outcome)) WITHOUT ROWID;\n",
    "CREATE TABLE usage_daily (day_ms INTEGER NOT NULL, key_name TEXT NOT NULL, ",
    "team TEXT NOT NULL, logical_model TEXT NOT NULL, provider TEXT NOT NULL, ",
    "jurisdiction TEXT NOT NULL, ",
    sum_columns!(),
    "PRIMARY KEY (day_ms, key_name, team, logical_model, provider, jurisdiction)) WITHOUT ROWID;\n",
    "CREATE TABLE rollup_backfill (after_ms INTEGER NOT NULL, after_id TEXT NOT NULL);\n",
    "INSERT INTO rollup_backfill VALUES (-9223372036854775808, '');\n",
);

/// Records read per backfill transaction.
const BACKFILL_BATCH: i64 = 10_000;
/// Rollup rows a rebuild folds in memory before writing them out.
const FLUSH_ROWS: usize = 50_000;

/// The upsert statements' text, built once per sink.
#[derive(Debug, Clone)]
pub(in crate::ledger) struct Upserts {
    hourly: String,
    daily: String,
}

impl Upserts {
    pub(in crate::ledger) fn new() -> Self {
        let dialect = Dialect::Sqlite { split: false };
        Self {
            hourly: query::upsert(&HOURLY, dialect),
            daily: query::upsert(&DAILY, dialect),
        }
    }
}

/// Add a batch's contributions to both tiers, inside the caller's transaction.
pub(in crate::ledger) fn write(
    tx: &Transaction<'_>,
    upserts: &Upserts,
    batch: &RollupBatch,
) -> rusqlite::Result<()> {
    for (sql, tier, rows) in [
        (&upserts.hourly, &HOURLY, &batch.hourly),
        (&upserts.daily, &DAILY, &batch.daily),
    ] {
        let mut stmt = tx.prepare_cached(sql)?;
        for (key, sums) in rows {
            let ints = integer_params(sums);
            let mut params: Vec<&dyn ToSql> = vec![&key.start_ms];
            params.extend(tier.dims.iter().map(|d| dim_param(*d, key)));
            params.extend(ints.iter().map(|v| v as &dyn ToSql));
            stmt.execute(params.as_slice())?;
        }
    }
    Ok(())
}

fn dim_param(dim: Dim, key: &RollupKey) -> &dyn ToSql {
    match dim {
        Dim::Key => &key.key_name,
        Dim::Team => &key.team,
        Dim::Model => &key.logical_model,
        Dim::Provider => &key.provider,
        Dim::UpstreamModel => &key.upstream_model,
        Dim::Jurisdiction => &key.jurisdiction,
        Dim::Route => &key.route,
        Dim::Outcome => &key.outcome,
        Dim::Day | Dim::Hour => &key.start_ms,
    }
}

/// Summed integers, money parts and maxima, in upsert parameter order.
fn integer_params(s: &Sums) -> Vec<i64> {
    let int = |v: u64| i64::try_from(v.min(COUNT_MAX)).unwrap_or(i64::MAX);
    let mut out: Vec<i64> = columns::integers(s).into_iter().map(int).collect();
    for m in s.money() {
        let (micros, femtos) = money::to_parts(m);
        out.extend([micros, femtos]);
    }
    out.extend([int(s.latency.max), int(s.ttfb.max)]);
    out
}

/// Roll up the records of a ledger migrated from v2, `BACKFILL_BATCH` records per
/// transaction in (created_at_ms, request_id) order, resuming where a previous run
/// stopped; also fills `requests.cost_micros`/`cost_femtos`. Returns records done.
pub(in crate::ledger) fn backfill(
    conn: &mut Connection,
    upserts: &Upserts,
) -> Result<u64, LedgerError> {
    let mut done = 0;
    loop {
        let tx = conn
            .transaction_with_behavior(TransactionBehavior::Immediate)
            .map_err(sql_err("backfill"))?;
        let cursor: Option<(i64, String)> = tx
            .query_row("SELECT after_ms, after_id FROM rollup_backfill", [], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()
            .map_err(sql_err("backfill"))?;
        let Some((after_ms, after_id)) = cursor else {
            return Ok(done);
        };
        let records = page_after(&tx, after_ms, &after_id)?;
        let Some(last) = records.last() else {
            tx.execute("DELETE FROM rollup_backfill", [])
                .map_err(sql_err("backfill"))?;
            tx.commit().map_err(sql_err("backfill"))?;
            return Ok(done);
        };
        let next = (last.created_at.timestamp_millis(), last.request_id.clone());
        let mut batch = RollupBatch::default();
        {
            let mut set_cost = tx
                .prepare_cached(
                    "UPDATE requests SET cost_micros = ?1, cost_femtos = ?2 WHERE request_id = ?3",
                )
                .map_err(sql_err("backfill"))?;
            for r in &records {
                batch.add(r);
                if let Some(cost) = r.cost_usd {
                    let (micros, femtos) = money::to_parts(cost);
                    set_cost
                        .execute(params![micros, femtos, r.request_id])
                        .map_err(sql_err("backfill"))?;
                }
            }
        }
        write(&tx, upserts, &batch).map_err(sql_err("backfill"))?;
        tx.execute(
            "UPDATE rollup_backfill SET after_ms = ?1, after_id = ?2",
            params![next.0, next.1],
        )
        .map_err(sql_err("backfill"))?;
        tx.commit().map_err(sql_err("backfill"))?;
        done += records.len() as u64;
    }
}

fn page_after(
    tx: &Transaction<'_>,
    after_ms: i64,
    after_id: &str,
) -> Result<Vec<UsageRecord>, LedgerError> {
    let mut stmt = tx
        .prepare_cached(
            "SELECT * FROM requests
             WHERE created_at_ms >= ?1 AND (created_at_ms > ?1 OR request_id > ?2)
             ORDER BY created_at_ms, request_id LIMIT ?3",
        )
        .map_err(sql_err("backfill"))?;
    let mut rows = stmt
        .query(params![after_ms, after_id, BACKFILL_BATCH])
        .map_err(sql_err("backfill"))?;
    let mut out = Vec::new();
    while let Some(row) = rows.next().map_err(sql_err("backfill"))? {
        out.push(decode(row)?);
    }
    Ok(out)
}

/// Recompute both tiers from the records created from the UTC day of `from_ms` on, in
/// one write transaction: rows before that day are kept (with retention, their records
/// may be gone), readers see the old rollups until it commits, and the gateway's writer
/// waits (and retries) meanwhile.
pub(in crate::ledger) fn rebuild(
    conn: &mut Connection,
    upserts: &Upserts,
    from_ms: i64,
) -> Result<RebuildReport, LedgerError> {
    let err = sql_err("rebuild rollups");
    let from = floor_to(from_ms, DAY_MS);
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(&err)?;
    tx.execute("DELETE FROM usage_hourly WHERE hour_ms >= ?1", [from])
        .map_err(&err)?;
    tx.execute("DELETE FROM usage_daily WHERE day_ms >= ?1", [from])
        .map_err(&err)?;
    let mut batch = RollupBatch::default();
    let mut records = 0;
    {
        let mut stmt = tx
            .prepare("SELECT * FROM requests WHERE created_at_ms >= ?1")
            .map_err(&err)?;
        let mut rows = stmt.query([from]).map_err(&err)?;
        while let Some(row) = rows.next().map_err(&err)? {
            batch.add(&decode(row)?);
            records += 1;
            if batch.len() >= FLUSH_ROWS {
                write(&tx, upserts, &std::mem::take(&mut batch)).map_err(&err)?;
            }
        }
    }
    write(&tx, upserts, &batch).map_err(&err)?;
    let count = |tier: &Tier| {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {} >= ?1",
            tier.table, tier.time_column
        );
        tx.query_row(&sql, [from], |r| r.get::<_, i64>(0))
            .map(|n| u64::try_from(n).unwrap_or(0))
    };
    let report = RebuildReport {
        records,
        hourly_rows: count(&HOURLY).map_err(&err)?,
        daily_rows: count(&DAILY).map_err(&err)?,
    };
    tx.commit().map_err(&err)?;
    Ok(report)
}

/// Answer `q` from one read snapshot: tiers for whole periods, records for the rest.
pub(in crate::ledger) fn usage(
    conn: &mut Connection,
    q: &UsageQuery,
) -> Result<Groups, LedgerError> {
    let tx = conn.transaction().map_err(sql_err("read"))?;
    let mut groups = Groups::new();
    let oldest = if q.is_ragged() {
        tx.query_row("SELECT MIN(created_at_ms) FROM requests", [], |row| {
            row.get::<_, Option<i64>>(0)
        })
        .map_err(sql_err("read"))?
        .unwrap_or(i64::MAX)
    } else {
        i64::MIN
    };
    for seg in q.plan(oldest) {
        match seg.source {
            Source::Daily => tier_rows(&tx, &DAILY, q, seg.from_ms, seg.to_ms, &mut groups)?,
            Source::Hourly => tier_rows(&tx, &HOURLY, q, seg.from_ms, seg.to_ms, &mut groups)?,
            Source::Records => {
                let range = crate::ledger::filter::Range {
                    from_ms: seg.from_ms,
                    to_ms: seg.to_ms,
                    key_name: q.key.as_deref(),
                    logical_model: q.model.as_deref(),
                };
                scan::for_each(&tx, &range, |r| {
                    let (key, sums) = contribution(&r);
                    if q.admits(&key) {
                        groups.entry(q.group_of(&key)).or_default().merge(&sums);
                    }
                })?;
            }
        }
    }
    tx.commit().map_err(sql_err("read"))?;
    Ok(groups)
}

fn tier_rows(
    tx: &Transaction<'_>,
    tier: &Tier,
    q: &UsageQuery,
    from_ms: i64,
    to_ms: i64,
    groups: &mut Groups,
) -> Result<(), LedgerError> {
    match try_tier_rows(tx, tier, q, (from_ms, to_ms), false, groups) {
        // SUM fails on overflow rather than saturating: sum the halves instead.
        Err(rusqlite::Error::SqliteFailure(_, Some(m))) if m.contains("integer overflow") => {
            try_tier_rows(tx, tier, q, (from_ms, to_ms), true, groups)
        }
        other => other,
    }
    .map_err(sql_err("read"))
}

fn try_tier_rows(
    tx: &Transaction<'_>,
    tier: &Tier,
    q: &UsageQuery,
    (from_ms, to_ms): (i64, i64),
    split: bool,
    groups: &mut Groups,
) -> rusqlite::Result<()> {
    let sql = query::select(tier, &q.group_by, Dialect::Sqlite { split });
    let mut stmt = tx.prepare_cached(&sql)?;
    let mut rows = stmt.query(params![from_ms, to_ms, q.key, q.model])?;
    let mut found = Vec::new();
    while let Some(row) = rows.next()? {
        if let Some(g) = decode_group(row, &q.group_by, split)? {
            found.push(g);
        }
    }
    // Merged only once every row was read, so a retry after an overflow starts clean.
    for (group, sums) in found {
        groups.entry(group).or_default().merge(&sums);
    }
    Ok(())
}

/// One aggregate row; `None` for the empty row an ungrouped `SUM` gives on no rows.
fn decode_group(
    row: &Row<'_>,
    group_by: &[Dim],
    split: bool,
) -> rusqlite::Result<Option<(Vec<GroupValue>, Sums)>> {
    let mut i = 0;
    let mut group = Vec::with_capacity(group_by.len());
    for d in group_by {
        group.push(match d {
            Dim::Day | Dim::Hour => GroupValue::Time(row.get(i)?),
            _ => GroupValue::Text(non_empty(&row.get::<_, String>(i)?)),
        });
        i += 1;
    }
    let mut next = || -> rusqlite::Result<Option<i128>> {
        let v = if split {
            let hi: Option<i64> = row.get(i)?;
            let lo: Option<i64> = row.get(i + 1)?;
            i += 2;
            hi.zip(lo)
                .map(|(h, l)| i128::from(h) * (1_i128 << 32) + i128::from(l))
        } else {
            i += 1;
            row.get::<_, Option<i64>>(i - 1)?.map(i128::from)
        };
        Ok(v)
    };
    let count = |v: i128| u64::try_from(v.clamp(0, i128::from(COUNT_MAX))).unwrap_or(0);
    let mut ints = Vec::new();
    for _ in columns::summed_integers() {
        ints.push(next()?);
    }
    if ints.first().copied().flatten().is_none() {
        return Ok(None);
    }
    let mut sums = Sums::default();
    columns::set_integers(&mut sums, ints.into_iter().map(|v| count(v.unwrap_or(0))));
    for m in sums.money_mut() {
        let micros = next()?.unwrap_or(0);
        let femtos = next()?.unwrap_or(0);
        *m = money::from_parts(micros, femtos);
    }
    let max = |v: Option<i64>| u64::try_from(v.unwrap_or(0)).unwrap_or(0);
    sums.latency.max = max(row.get(i)?);
    sums.ttfb.max = max(row.get(i + 1)?);
    Ok(Some((group, sums)))
}

#[cfg(test)]
mod tests;
