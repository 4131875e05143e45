//! Aggregate queries over rollups: what to group by and filter on ([`UsageQuery`]),
//! the group a contribution belongs to, and the SQL text both backends run (the
//! `SUM ... GROUP BY` over a tier, and the writer's upsert). Executing it is the
//! backends' job (`sqlite::rollups`, `postgres::rollups`); this file does no I/O.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use super::columns::{self, Dim, Tier, DAILY};
use super::plan::{self, Segment};
use super::{floor_to, RollupKey, Sums, DAY_MS};

/// An aggregate over `[from_ms, to_ms)`, optionally one key and one logical model,
/// grouped by `group_by` (empty: one group holding everything).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UsageQuery {
    pub from_ms: i64,
    pub to_ms: i64,
    pub key: Option<String>,
    pub model: Option<String>,
    pub group_by: Vec<Dim>,
}

/// One dimension's value in a group: text (`None` when records had none, e.g. no
/// provider was reached) or, for `Day` and `Hour`, the period's start in Unix ms.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum GroupValue {
    Text(Option<String>),
    Time(i64),
}

/// Sums per group, the group's values in `group_by` order.
pub type Groups = BTreeMap<Vec<GroupValue>, Sums>;

impl UsageQuery {
    /// The sources that answer this query: the daily tier only when it keeps every
    /// dimension grouped by (the filters, key and model, it always keeps).
    /// `oldest_record_ms` is the oldest record still stored (`i64::MAX` for none): a
    /// ragged edge before it is read as its whole hour (see `plan::widen_before`). It is
    /// only looked at when [`Self::is_ragged`].
    pub fn plan(&self, oldest_record_ms: i64) -> Vec<Segment> {
        let daily = self.group_by.iter().all(|d| DAILY.has(*d));
        let (from, to) = plan::widen_before(self.from_ms, self.to_ms, oldest_record_ms);
        plan::plan(from, to, daily)
    }

    /// Whether the window has an edge inside an hour (so the plan depends on the oldest
    /// record still stored).
    pub fn is_ragged(&self) -> bool {
        plan::is_ragged(self.from_ms, self.to_ms)
    }

    /// The group of an hourly contribution's key.
    pub fn group_of(&self, key: &RollupKey) -> Vec<GroupValue> {
        self.group_by
            .iter()
            .map(|d| match d {
                Dim::Day => GroupValue::Time(floor_to(key.start_ms, DAY_MS)),
                Dim::Hour => GroupValue::Time(key.start_ms),
                _ => GroupValue::Text(d.text(key).and_then(non_empty)),
            })
            .collect()
    }

    /// Whether a record's key passes the key and model filters (the SQL applies
    /// them to rows; this applies them to records folded in Rust).
    pub fn admits(&self, key: &RollupKey) -> bool {
        self.key.as_ref().is_none_or(|k| *k == key.key_name)
            && self.model.as_ref().is_none_or(|m| *m == key.logical_model)
    }
}

/// `""` (a stored `NULL`) back to `None`.
pub fn non_empty(text: &str) -> Option<String> {
    (!text.is_empty()).then(|| text.to_owned())
}

/// The SQL flavour: placeholders, and how money and overflow are handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Money as two integers. `split` sums each integer as its high and low 32 bits,
    /// which cannot overflow SQLite's `SUM` (which fails on overflow rather than
    /// saturating): the fallback when the plain query hit an overflow.
    Sqlite { split: bool },
    /// Money as `NUMERIC`; `SUM(BIGINT)` is `NUMERIC` and cannot overflow.
    Postgres,
}

impl Dialect {
    fn param(self, n: usize) -> String {
        match self {
            Self::Sqlite { .. } => format!("?{n}"),
            Self::Postgres => format!("${n}"),
        }
    }

    /// Money columns as stored.
    pub fn money_columns(self) -> Vec<String> {
        columns::MONEY
            .iter()
            .flat_map(|m| match self {
                Self::Sqlite { .. } => vec![format!("{m}_micros"), format!("{m}_femtos")],
                Self::Postgres => vec![(*m).to_owned()],
            })
            .collect()
    }
}

/// The floor-to-day of an hourly tier's time column, also before 1970.
fn day_of(column: &str) -> String {
    format!("({column} - ((({column} % {DAY_MS}) + {DAY_MS}) % {DAY_MS}))")
}

/// The group expressions of `group_by` over `tier`.
fn group_exprs(tier: &Tier, group_by: &[Dim]) -> Vec<String> {
    group_by
        .iter()
        .map(|d| match d {
            Dim::Day if tier.period_ms >= DAY_MS => tier.time_column.to_owned(),
            Dim::Day => day_of(tier.time_column),
            Dim::Hour => tier.time_column.to_owned(),
            text => text.column().unwrap_or("''").to_owned(),
        })
        .collect()
}

/// `SELECT <groups>, <sums> FROM <tier> WHERE <window and filters> GROUP BY <groups>`.
/// Parameters: 1 from, 2 to (period starts), 3 key or NULL, 4 model or NULL. Result
/// columns: the groups, then per summed integer one column (two when split), per
/// money column its stored columns (each split too), then the maxima.
pub fn select(tier: &Tier, group_by: &[Dim], dialect: Dialect) -> String {
    let groups = group_exprs(tier, group_by);
    let split = matches!(dialect, Dialect::Sqlite { split: true });
    let sum = |c: &str| {
        if split {
            format!("SUM({c} >> 32), SUM({c} & 4294967295)")
        } else {
            format!("SUM({c})")
        }
    };
    let sums: Vec<String> = columns::summed_integers()
        .iter()
        .chain(dialect.money_columns().iter())
        .map(|c| sum(c))
        .chain(columns::maxima().iter().map(|c| format!("MAX({c})")))
        .collect();
    let p = |n| dialect.param(n);
    let text = |n| match dialect {
        Dialect::Postgres => format!("{}::TEXT", p(n)),
        Dialect::Sqlite { .. } => p(n),
    };
    let mut sql = format!(
        "SELECT {}{} FROM {} WHERE {t} >= {} AND {t} < {} \
         AND ({} IS NULL OR key_name = {}) AND ({} IS NULL OR logical_model = {})",
        groups.iter().map(|g| format!("{g}, ")).collect::<String>(),
        sums.join(", "),
        tier.table,
        p(1),
        p(2),
        text(3),
        p(3),
        text(4),
        p(4),
        t = tier.time_column,
    );
    if !groups.is_empty() {
        let _ = write!(sql, " GROUP BY {}", groups.join(", "));
    }
    sql
}

/// The writer's upsert of one row of `tier`: parameters are the key columns, the
/// summed integers, the money columns as stored and the maxima, in that order. Counts
/// saturate at `i64::MAX` (never overflowing into an error or a float); SQLite's femto
/// part carries into the micros so it stays below 10^9.
pub fn upsert(tier: &Tier, dialect: Dialect) -> String {
    let params: Vec<String> = (1..=upsert_columns(tier, dialect).len())
        .map(|n| dialect.param(n))
        .collect();
    upsert_from(tier, dialect, &format!("VALUES ({})", params.join(", ")))
}

/// PostgreSQL's upsert of many rows of `tier` in one statement: the same parameters as
/// [`upsert`], each an array holding that column of every row. The rows must have
/// distinct keys (one statement may not update a row twice).
pub fn upsert_arrays(tier: &Tier) -> String {
    let dialect = Dialect::Postgres;
    // The column types in `upsert_columns` order: time, text dimensions, sums, maxima.
    let types = std::iter::once("BIGINT")
        .chain(
            tier.dims
                .iter()
                .filter(|d| d.column().is_some())
                .map(|_| "TEXT"),
        )
        .chain(columns::summed_integers().into_iter().map(|_| "BIGINT"))
        .chain(dialect.money_columns().into_iter().map(|_| "NUMERIC"))
        .chain(columns::maxima().into_iter().map(|_| "BIGINT"));
    let arrays: Vec<String> = types
        .enumerate()
        .map(|(i, sql_type)| format!("${}::{sql_type}[]", i + 1))
        .collect();
    upsert_from(
        tier,
        dialect,
        &format!("SELECT * FROM unnest({})", arrays.join(", ")),
    )
}

/// Every column an upsert writes, in parameter order.
fn upsert_columns(tier: &Tier, dialect: Dialect) -> Vec<String> {
    tier.key_columns()
        .iter()
        .map(|c| (*c).to_owned())
        .chain(columns::summed_integers())
        .chain(dialect.money_columns())
        .chain(columns::maxima())
        .collect()
}

/// `INSERT INTO <tier> (<columns>) <rows> ON CONFLICT (<key>) DO UPDATE SET <sums>`.
fn upsert_from(tier: &Tier, dialect: Dialect, rows: &str) -> String {
    let keys = tier.key_columns();
    let maxima = columns::maxima();
    let all = upsert_columns(tier, dialect);
    let t = tier.table;
    let add = |c: &str, headroom: &str, extra: &str| {
        format!(
            "{c} = CASE WHEN {t}.{c} > {headroom} - excluded.{c} THEN 9223372036854775807 \
             ELSE {t}.{c} + excluded.{c}{extra} END"
        )
    };
    let mut sets: Vec<String> = columns::summed_integers()
        .iter()
        .map(|c| add(c, "9223372036854775807", ""))
        .collect();
    for m in columns::MONEY {
        match dialect {
            Dialect::Sqlite { .. } => {
                let (mi, fe) = (format!("{m}_micros"), format!("{m}_femtos"));
                let carried = format!(" + ({t}.{fe} + excluded.{fe}) / 1000000000");
                sets.push(add(&mi, "9223372036854775806", &carried));
                sets.push(format!("{fe} = ({t}.{fe} + excluded.{fe}) % 1000000000"));
            }
            Dialect::Postgres => sets.push(format!("{m} = {t}.{m} + excluded.{m}")),
        }
    }
    let greatest = match dialect {
        Dialect::Sqlite { .. } => "MAX",
        Dialect::Postgres => "GREATEST",
    };
    for c in &maxima {
        sets.push(format!("{c} = {greatest}({t}.{c}, excluded.{c})"));
    }
    format!(
        "INSERT INTO {t} ({}) {rows} ON CONFLICT ({}) DO UPDATE SET {}",
        all.join(", "),
        keys.join(", "),
        sets.join(", ")
    )
}
