//! Which records a read asks for, in terms every ledger backend understands: a time
//! window with an optional key and model ([`Filter`], [`Range`]), and the newest-first
//! page query both backends run ([`page_sql`]). No I/O: the backends execute it.

use chrono::{DateTime, Utc};

/// Which records to read: `[from, to)` by start time, optionally one key and one model.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Inclusive lower bound; `None` = from the first record.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound; `None` = to the last record.
    pub to: Option<DateTime<Utc>>,
    /// Only this key's records; `None` = every key.
    pub key_name: Option<String>,
    /// Only this logical model's records; `None` = every model.
    pub logical_model: Option<String>,
}

impl Filter {
    /// `[from, to)` in Unix milliseconds; open ends become the widest range.
    pub fn bounds_ms(&self) -> (i64, i64) {
        (
            self.from.map_or(i64::MIN, |t| t.timestamp_millis()),
            self.to.map_or(i64::MAX, |t| t.timestamp_millis()),
        )
    }

    /// The same selection as a borrowed range.
    pub fn range(&self) -> Range<'_> {
        let (from_ms, to_ms) = self.bounds_ms();
        Range {
            from_ms,
            to_ms,
            key_name: self.key_name.as_deref(),
            logical_model: self.logical_model.as_deref(),
        }
    }
}

/// `[from_ms, to_ms)` by start time, optionally one key and one logical model.
#[derive(Debug, Clone, Copy)]
pub struct Range<'a> {
    pub from_ms: i64,
    pub to_ms: i64,
    pub key_name: Option<&'a str>,
    pub logical_model: Option<&'a str>,
}

/// The newest-first page query over `requests`, written for the filters at hand so the
/// database walks one index range and stops after `LIMIT` rows: a fixed text with
/// `(? IS NULL OR column = ?)` terms would keep it from using the key or model index, and a
/// cursor tested row by row would make page N walk every row of the pages before it. The
/// cursor instead becomes the range's upper bound (only rows sharing its millisecond are
/// tested one by one). `param(n)` writes placeholder `n`; parameters are bound in
/// [`PageParams::values`] order.
pub fn page_sql(select: &str, p: &PageParams<'_>, param: fn(usize) -> String) -> String {
    let mut n = 0;
    let mut next = || {
        n += 1;
        param(n)
    };
    let mut sql = format!(
        "{select} FROM requests WHERE created_at_ms >= {} AND created_at_ms < {}",
        next(),
        next()
    );
    if p.cursor.is_some() {
        let (at, id) = (next(), next());
        sql += &format!(" AND (created_at_ms < {at} OR request_id < {id})");
    }
    if p.key_name.is_some() {
        sql += &format!(" AND key_name = {}", next());
    }
    if p.logical_model.is_some() {
        sql += &format!(" AND logical_model = {}", next());
    }
    sql += &format!(
        " ORDER BY created_at_ms DESC, request_id DESC LIMIT {}",
        next()
    );
    sql
}

/// The values of one page query: the filter's window narrowed by the cursor.
#[derive(Debug, Clone)]
pub struct PageParams<'a> {
    pub from_ms: i64,
    /// Exclusive; at most one past the cursor's millisecond.
    pub to_ms: i64,
    pub cursor: Option<(i64, &'a String)>,
    pub key_name: Option<&'a String>,
    pub logical_model: Option<&'a String>,
    pub fetch: i64,
}

impl<'a> PageParams<'a> {
    pub fn of(filter: &'a Filter, cursor: Option<&'a (i64, String)>, fetch: i64) -> Self {
        let (from_ms, to_ms) = filter.bounds_ms();
        let cursor = cursor.map(|(at, id)| (*at, id));
        Self {
            from_ms,
            to_ms: cursor.map_or(to_ms, |(at, _)| to_ms.min(at.saturating_add(1))),
            cursor,
            key_name: filter.key_name.as_ref(),
            logical_model: filter.logical_model.as_ref(),
            fetch,
        }
    }
}

/// One bound value of a page query (both backends bind these).
#[derive(Debug, Clone, Copy)]
pub enum PageValue<'a> {
    Int(&'a i64),
    Text(&'a String),
}

impl<'a> PageParams<'a> {
    /// The values in [`page_sql`]'s placeholder order.
    pub fn values(&'a self) -> Vec<PageValue<'a>> {
        let mut out = vec![PageValue::Int(&self.from_ms), PageValue::Int(&self.to_ms)];
        if let Some((at, id)) = &self.cursor {
            out.extend([PageValue::Int(at), PageValue::Text(id)]);
        }
        out.extend(self.key_name.map(PageValue::Text));
        out.extend(self.logical_model.map(PageValue::Text));
        out.push(PageValue::Int(&self.fetch));
        out
    }
}
