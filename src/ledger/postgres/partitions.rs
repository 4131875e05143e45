//! Monthly partitions of the PostgreSQL `requests` table, so that retention is a `DROP
//! TABLE` of whole months rather than a scan. The table is partitioned by range of
//! `created_at_ms`: one partition per UTC month, named `requests_YYYYMM`, plus
//! `requests_default`, which catches a record of a month that has no partition yet (clock
//! skew, a far-future timestamp) so no write ever fails for want of one.
//!
//! This file owns the migration that partitions an existing table, creating months ahead
//! (moving any of their records out of the default partition first, since PostgreSQL
//! refuses a partition whose range the default partition already holds rows of), and the
//! statements retention runs. When they run is `ledger::retention`'s business.

use chrono::{DateTime, Datelike, Months, NaiveDate, Utc};

use super::{pg_err, PostgresLedger};
use crate::ledger::LedgerError;

/// The partitioning migration. It works on `requests` whatever its columns by then:
/// the table is renamed, a partitioned copy of its shape is created (primary key
/// `(request_id, created_at_ms)`, which a partitioned table needs, and every other index
/// it had), a partition is made for every month that has records and for the current
/// month and the next two, the records are copied over, and the old table is dropped.
/// It runs inside the migration transaction, under the migration lock.
pub(super) const MIGRATION: &str = r"
DO $partition$
DECLARE
    index_defs TEXT[];
    def TEXT;
    old_index TEXT;
    month TIMESTAMP;
BEGIN
    -- Taken before the rename: they name `requests`, which is the new table when run.
    SELECT coalesce(array_agg(pg_get_indexdef(x.indexrelid)), '{}') INTO index_defs
        FROM pg_index x WHERE x.indrelid = 'requests'::regclass AND NOT x.indisprimary;
    ALTER TABLE requests RENAME TO requests_unpartitioned;
    -- Free the old names (the primary key's too) for the new table's indexes.
    FOR old_index IN SELECT c.relname FROM pg_index x JOIN pg_class c ON c.oid = x.indexrelid
        WHERE x.indrelid = 'requests_unpartitioned'::regclass
    LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', old_index, 'unpartitioned_' || old_index);
    END LOOP;
    CREATE TABLE requests (LIKE requests_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
        PARTITION BY RANGE (created_at_ms);
    CREATE TABLE requests_default PARTITION OF requests DEFAULT;
    -- Records outside 2000-2199 stay in the default partition.
    FOR month IN
        SELECT DISTINCT date_trunc('month', to_timestamp(created_at_ms / 1000.0) AT TIME ZONE 'UTC')
            FROM requests_unpartitioned
            WHERE created_at_ms >= 946684800000 AND created_at_ms < 7258118400000
        UNION
        SELECT date_trunc('month', now() AT TIME ZONE 'UTC') + make_interval(months => n)
            FROM generate_series(0, 2) AS n
    LOOP
        EXECUTE format('CREATE TABLE %I PARTITION OF requests FOR VALUES FROM (%s) TO (%s)',
            'requests_' || to_char(month, 'YYYYMM'),
            (extract(epoch FROM month) * 1000)::BIGINT,
            (extract(epoch FROM month + interval '1 month') * 1000)::BIGINT);
    END LOOP;
    INSERT INTO requests SELECT * FROM requests_unpartitioned;
    ALTER TABLE requests ADD CONSTRAINT requests_pkey PRIMARY KEY (request_id, created_at_ms);
    FOREACH def IN ARRAY index_defs LOOP
        EXECUTE def;
    END LOOP;
    DROP TABLE requests_unpartitioned;
END
$partition$;
";

/// Serialises partition creation between replicas (not the migration lock, which a
/// replica holds while migrating).
const PARTITION_LOCK: i64 = 0x746f_6c6c_6761_7466;

/// How long a DDL statement waits for its lock on `requests`. Waiting longer would queue
/// every insert behind it (PostgreSQL's lock queue), so past this the run fails and the
/// next one tries again.
const LOCK_TIMEOUT: &str = "SET LOCAL lock_timeout = '5s'";

/// The partition that catches records of months without one.
pub const DEFAULT_PARTITION: &str = "requests_default";

/// One UTC month: the range of one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Month(NaiveDate);

impl Month {
    /// The month `t` falls in.
    pub fn of(t: DateTime<Utc>) -> Self {
        Self(t.date_naive().with_day(1).unwrap_or(NaiveDate::MIN))
    }

    /// The month after this one.
    pub fn next(self) -> Self {
        Self(
            self.0
                .checked_add_months(Months::new(1))
                .unwrap_or(NaiveDate::MAX),
        )
    }

    /// `requests_YYYYMM`.
    pub fn table(self) -> String {
        format!("requests_{:04}{:02}", self.0.year(), self.0.month())
    }

    /// The month a `requests_YYYYMM` name stands for; `None` for any other name.
    pub fn from_table(name: &str) -> Option<Self> {
        let digits = name.strip_prefix("requests_")?;
        if digits.len() != 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let year = digits.get(..4)?.parse().ok()?;
        let month = digits.get(4..)?.parse().ok()?;
        NaiveDate::from_ymd_opt(year, month, 1).map(Self)
    }

    /// First millisecond of the month (inclusive bound).
    pub fn start_ms(self) -> i64 {
        self.0
            .and_time(chrono::NaiveTime::MIN)
            .and_utc()
            .timestamp_millis()
    }

    /// First millisecond of the next month (exclusive bound).
    pub fn end_ms(self) -> i64 {
        self.next().start_ms()
    }
}

/// What retention does for one cutoff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Partitions wholly older than the cutoff: dropped.
    pub drop: Vec<String>,
    /// Tables the cutoff falls inside (its month, and the default partition): trimmed
    /// in batches.
    pub trim: Vec<String>,
}

impl PostgresLedger {
    /// Create the partitions of every month from `from`'s to `to`'s, inclusive, that are
    /// missing. Returns the tables created.
    pub async fn ensure_partitions(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let mut created = Vec::new();
        let (mut month, last) = (Month::of(from), Month::of(to));
        while month <= last {
            if self.ensure_month(month).await? {
                created.push(month.table());
            }
            month = month.next();
        }
        Ok(created)
    }

    /// The current month's partition and the next two months'.
    pub async fn ensure_partitions_ahead(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<String>, LedgerError> {
        let ahead = now.checked_add_months(Months::new(2)).unwrap_or(now);
        self.ensure_partitions(now, ahead).await
    }

    /// Create `month`'s partition unless it exists; `true` when created.
    async fn ensure_month(&self, month: Month) -> Result<bool, LedgerError> {
        let table = month.table();
        let mut client = self.client().await?;
        let exists = |c: &tokio_postgres::Row| c.get::<_, bool>(0);
        let check = "SELECT to_regclass($1) IS NOT NULL";
        if exists(
            &client
                .query_one(check, &[&table])
                .await
                .map_err(pg_err("partition"))?,
        ) {
            return Ok(false);
        }
        let tx = client.transaction().await.map_err(pg_err("partition"))?;
        tx.batch_execute(LOCK_TIMEOUT)
            .await
            .map_err(pg_err("partition"))?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&PARTITION_LOCK])
            .await
            .map_err(pg_err("partition"))?;
        if exists(
            &tx.query_one(check, &[&table])
                .await
                .map_err(pg_err("partition"))?,
        ) {
            return Ok(false);
        }
        let (start, end) = (month.start_ms(), month.end_ms());
        // The default partition's records of this month move into it: PostgreSQL refuses
        // a partition whose range the default partition holds rows of.
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE tollgate_moving (LIKE requests) ON COMMIT DROP;
             WITH moved AS (DELETE FROM {DEFAULT_PARTITION}
                 WHERE created_at_ms >= {start} AND created_at_ms < {end} RETURNING *)
             INSERT INTO tollgate_moving SELECT * FROM moved;
             CREATE TABLE {table} PARTITION OF requests FOR VALUES FROM ({start}) TO ({end});
             INSERT INTO requests SELECT * FROM tollgate_moving;"
        ))
        .await
        .map_err(pg_err("create a partition"))?;
        tx.commit().await.map_err(pg_err("create a partition"))?;
        Ok(true)
    }

    /// The partitions of `requests`: `(table, is the default partition)`.
    pub async fn partitions(&self) -> Result<Vec<(String, bool)>, LedgerError> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.relname::TEXT, pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT'
                 FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
                 WHERE i.inhparent = 'requests'::regclass ORDER BY 1",
                &[],
            )
            .await
            .map_err(pg_err("list partitions"))?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }

    /// Which partitions retention drops and which it trims for `cutoff_ms`.
    pub async fn retention_plan(&self, cutoff_ms: i64) -> Result<RetentionPlan, LedgerError> {
        let mut plan = RetentionPlan::default();
        for (table, is_default) in self.partitions().await? {
            if is_default {
                plan.trim.push(table);
                continue;
            }
            let Some(month) = Month::from_table(&table) else {
                continue;
            };
            if month.end_ms() <= cutoff_ms {
                plan.drop.push(table);
            } else if month.start_ms() < cutoff_ms {
                plan.trim.push(table);
            }
        }
        Ok(plan)
    }

    /// Drop one partition whole (retention of a month entirely past the cutoff).
    pub async fn drop_partition(&self, table: &str) -> Result<(), LedgerError> {
        if Month::from_table(table).is_none() {
            return Err(LedgerError::InvalidValue {
                column: "partition",
                value: table.to_owned(),
            });
        }
        let mut client = self.client().await?;
        let tx = client
            .transaction()
            .await
            .map_err(pg_err("drop a partition"))?;
        tx.batch_execute(&format!("{LOCK_TIMEOUT}; DROP TABLE IF EXISTS {table}"))
            .await
            .map_err(pg_err("drop a partition"))?;
        tx.commit().await.map_err(pg_err("drop a partition"))
    }

    /// Delete up to `limit` records created before `cutoff_ms` from one partition;
    /// returns how many went.
    pub async fn delete_batch(
        &self,
        table: &str,
        cutoff_ms: i64,
        limit: u64,
    ) -> Result<u64, LedgerError> {
        if table != DEFAULT_PARTITION && Month::from_table(table).is_none() {
            return Err(LedgerError::InvalidValue {
                column: "partition",
                value: table.to_owned(),
            });
        }
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let client = self.client().await?;
        // By ctid: a TID scan of at most `limit` rows, one short transaction.
        let sql = format!(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY(
                SELECT ctid FROM {table} WHERE created_at_ms < $1 LIMIT $2))"
        );
        client
            .execute(sql.as_str(), &[&cutoff_ms, &limit])
            .await
            .map_err(pg_err("delete old records"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn months_name_their_tables_and_bound_their_ranges() {
        let t = Utc.with_ymd_and_hms(2024, 12, 31, 23, 59, 59).unwrap();
        let m = Month::of(t);
        assert_eq!(m.table(), "requests_202412");
        assert_eq!(
            m.start_ms(),
            Utc.with_ymd_and_hms(2024, 12, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(
            m.end_ms(),
            Utc.with_ymd_and_hms(2025, 1, 1, 0, 0, 0)
                .unwrap()
                .timestamp_millis()
        );
        assert_eq!(m.next().table(), "requests_202501");
        assert_eq!(Month::from_table("requests_202412"), Some(m));
        assert_eq!(Month::from_table("requests_default"), None);
        assert_eq!(Month::from_table("requests_202413"), None);
        assert_eq!(Month::from_table("requests_2024121"), None);
    }
}
