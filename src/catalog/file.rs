//! Reading and validating the price catalog file (`config/prices.toml`).
//!
//! Owns the file format: field names, decimal-string prices, dates, windows, and every check a
//! catalog must pass before it may price a request. It collects *all* problems, each with a path
//! such as `prices[3].output_per_mtok`, instead of stopping at the first. Rows are read field by
//! field from the TOML tree rather than through a serde derive because serde stops at the first
//! error; unknown fields are still rejected everywhere, as `deny_unknown_fields` would. It does
//! not choose rows for requests or compute costs (see `super`).

use std::collections::HashMap;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use rust_decimal::Decimal;
use toml::{Table, Value};

use super::{PriceProblem, PriceRow, PriceTier, ServiceTier, TimeWindow};

const ROW_FIELDS: &[&str] = &[
    "id",
    "offer",
    "currency",
    "input_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "output_per_mtok",
    "per_request_fee",
    "effective_from",
    "effective_until",
    "windows",
    "tiers",
    "service_tier",
    "source",
    "as_of",
    "confidence",
    "notes",
];
const WINDOW_FIELDS: &[&str] = &["start", "end", "days"];
const TIER_FIELDS: &[&str] = &[
    "above_input_tokens",
    "input_per_mtok",
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
    "output_per_mtok",
];
/// The optional prices a tier must name exactly when its row does.
const OPTIONAL_PRICES: [&str; 3] = [
    "cached_input_per_mtok",
    "cache_write_per_mtok",
    "cache_write_1h_per_mtok",
];

/// Parses and validates a whole catalog; on failure returns every problem found.
pub(super) fn parse(text: &str) -> Result<Vec<PriceRow>, Vec<PriceProblem>> {
    let table: Table = match text.parse() {
        Ok(table) => table,
        Err(e) => return Err(vec![syntax_problem(text, &e)]),
    };
    let mut problems: Vec<PriceProblem> = table
        .keys()
        .filter(|k| k.as_str() != "prices")
        .map(|k| problem(k, "unknown field; expected only [[prices]] tables"))
        .collect();
    let entries = match table.get("prices") {
        Some(Value::Array(entries)) => entries.as_slice(),
        other => {
            let found = other.map_or("nothing", Value::type_str);
            let message = format!("expected [[prices]] tables, found {found}");
            problems.push(problem("prices", message));
            &[]
        }
    };
    let mut rows = Vec::with_capacity(entries.len());
    let mut first_index_of_id: HashMap<&str, usize> = HashMap::new();
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("prices[{i}]");
        let Value::Table(entry) = entry else {
            problems.push(problem(&path, "expected a table ([[prices]])"));
            continue;
        };
        if let Some(Value::String(id)) = entry.get("id") {
            if let Some(first) = first_index_of_id.insert(id, i) {
                let message = format!("duplicate id {id:?}, already used by prices[{first}]");
                problems.push(problem(format!("{path}.id"), message));
            }
        }
        let before = problems.len();
        let row = read_row(entry, &path, &mut problems);
        if let (Some(row), true) = (row, problems.len() == before) {
            rows.push((i, row));
        }
    }
    check_ambiguity(&rows, &mut problems);
    if problems.is_empty() {
        Ok(rows.into_iter().map(|(_, row)| row).collect())
    } else {
        Err(problems)
    }
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> PriceProblem {
    PriceProblem {
        path: path.into(),
        message: message.into(),
    }
}

fn syntax_problem(text: &str, e: &toml::de::Error) -> PriceProblem {
    let offset = e.span().map_or(0, |span| span.start);
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    problem(format!("line {line}, column {column}"), e.message().trim())
}

/// Typed access to one TOML table that records problems under `path` as it goes.
struct Fields<'a, 'p> {
    table: &'a Table,
    path: &'a str,
    problems: &'p mut Vec<PriceProblem>,
}

impl<'a> Fields<'a, '_> {
    fn new<'p>(
        table: &'a Table,
        path: &'a str,
        known: &[&str],
        problems: &'p mut Vec<PriceProblem>,
    ) -> Fields<'a, 'p> {
        for key in table.keys().filter(|k| !known.contains(&k.as_str())) {
            let expected = known.join(", ");
            let message = format!("unknown field; expected one of: {expected}");
            problems.push(problem(format!("{path}.{key}"), message));
        }
        Fields {
            table,
            path,
            problems,
        }
    }

    fn push(&mut self, key: &str, message: String) {
        self.problems
            .push(problem(format!("{}.{key}", self.path), message));
    }

    /// `Some(Some(text))` when present, `Some(None)` when absent, `None` when mistyped.
    fn string(&mut self, key: &str, example: &str) -> Option<Option<&'a str>> {
        match self.table.get(key) {
            None => Some(None),
            Some(Value::String(text)) => Some(Some(text.as_str())),
            Some(other) => {
                let found = other.type_str();
                self.push(
                    key,
                    format!("expected a string such as {example:?}, found {found}"),
                );
                None
            }
        }
    }

    fn required<T>(
        &mut self,
        key: &str,
        example: &str,
        convert: impl FnOnce(&'a str) -> Result<T, String>,
    ) -> Option<T> {
        match self.string(key, example)? {
            Some(text) => self.convert(key, text, convert),
            None => {
                self.push(
                    key,
                    format!("missing; expected a value such as {example:?}"),
                );
                None
            }
        }
    }

    /// `Some(None)` when absent, `None` when present but invalid.
    fn optional<T>(
        &mut self,
        key: &str,
        example: &str,
        convert: impl FnOnce(&'a str) -> Result<T, String>,
    ) -> Option<Option<T>> {
        match self.string(key, example)? {
            Some(text) => self.convert(key, text, convert).map(Some),
            None => Some(None),
        }
    }

    fn convert<T>(
        &mut self,
        key: &str,
        text: &'a str,
        convert: impl FnOnce(&'a str) -> Result<T, String>,
    ) -> Option<T> {
        convert(text).map_err(|m| self.push(key, m)).ok()
    }
}

fn read_row(table: &Table, path: &str, problems: &mut Vec<PriceProblem>) -> Option<PriceRow> {
    let mut f = Fields::new(table, path, ROW_FIELDS, problems);
    let id = f.required("id", "openai/o1/2024-12-17", key_text);
    let offer = f.required("offer", "openai/o1", key_text);
    let _currency = f.required("currency", "USD", currency);
    let input = f.required("input_per_mtok", "2.19", mtok_price);
    let cached = f.optional("cached_input_per_mtok", "0.55", mtok_price);
    let write = f.optional("cache_write_per_mtok", "3.75", mtok_price);
    let write_1h = f.optional("cache_write_1h_per_mtok", "6", mtok_price);
    let output = f.required("output_per_mtok", "2.19", mtok_price);
    let fee = f.optional("per_request_fee", "0.005", fee_price);
    let from = f.required("effective_from", "2025-02-26T16:30:00Z", instant);
    let until = f.optional("effective_until", "2025-09-05T16:00:00Z", instant);
    let source = f.required("source", "api-docs.deepseek.com pricing page", non_empty);
    let as_of = f.required("as_of", "2025-02-26", date);
    let confidence = f.optional("confidence", "high", confidence);
    let notes = f.optional("notes", "why this figure", non_empty);
    let service_tier = f.optional("service_tier", "flex", service_tier);
    if let (Some(from), Some(Some(until))) = (from, until) {
        if until <= from {
            let message = format!("{until} is not after effective_from {from}");
            f.push("effective_until", message);
        }
    }
    let windows = read_windows(table, path, problems);
    let tiers = read_tiers(table, path, problems);
    Some(PriceRow {
        id: id?.to_owned(),
        offer: offer?.to_owned(),
        input_per_mtok: input?,
        cached_input_per_mtok: cached?,
        cache_write_per_mtok: write?,
        cache_write_1h_per_mtok: write_1h?,
        output_per_mtok: output?,
        per_request_fee: fee?,
        effective_from: from?,
        effective_until: until?,
        windows: windows?,
        tiers: tiers?,
        service_tier: service_tier?,
        source: source?.to_owned(),
        as_of: as_of?,
        confidence: confidence?.map(str::to_owned),
        notes: notes?.map(str::to_owned),
    })
}

fn read_windows(
    table: &Table,
    path: &str,
    problems: &mut Vec<PriceProblem>,
) -> Option<Vec<TimeWindow>> {
    let entries = match table.get("windows") {
        None => return Some(Vec::new()),
        Some(Value::Array(entries)) if entries.is_empty() => {
            let message = "empty list; omit `windows` for a row that applies at all hours";
            problems.push(problem(format!("{path}.windows"), message));
            return None;
        }
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            let found = other.type_str();
            let message = format!("expected a list of {{ start, end }} tables, found {found}");
            problems.push(problem(format!("{path}.windows"), message));
            return None;
        }
    };
    let mut windows = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{path}.windows[{i}]");
        match read_window(entry, &path, problems) {
            Some(window) => windows.push(window),
            None => ok = false,
        }
    }
    ok.then_some(windows)
}

fn read_window(entry: &Value, path: &str, problems: &mut Vec<PriceProblem>) -> Option<TimeWindow> {
    let Value::Table(table) = entry else {
        let message = "expected a table such as { start = \"16:30\", end = \"00:30\" }";
        problems.push(problem(path, message));
        return None;
    };
    let mut f = Fields::new(table, path, WINDOW_FIELDS, problems);
    let start = f.required("start", "16:30", Ok);
    let end = f.required("end", "00:30", Ok);
    let days = match table.get("days") {
        None => Some(None),
        Some(Value::Array(names)) => {
            let names: Option<Vec<String>> = names
                .iter()
                .map(|n| n.as_str().map(str::to_owned))
                .collect();
            if names.is_none() {
                f.push(
                    "days",
                    "expected a list of day names such as [\"mon\", \"fri\"]".into(),
                );
            }
            names.map(Some)
        }
        Some(other) => {
            let found = other.type_str();
            f.push(
                "days",
                format!("expected a list such as [\"mon\", \"fri\"], found {found}"),
            );
            None
        }
    };
    let (start, end, days) = (start?, end?, days?);
    match TimeWindow::parse(start, end, days.as_deref()) {
        Ok(window) => Some(window),
        Err(field_problems) => {
            for (key, message) in field_problems {
                f.push(key, message);
            }
            None
        }
    }
}

/// `tiers = [ { above_input_tokens = 200000, input_per_mtok = "2.5", ... } ]`: each
/// tier is checked on its own (every problem reported), then against its row: it must
/// name exactly the optional prices the row names, and thresholds must ascend.
fn read_tiers(
    table: &Table,
    path: &str,
    problems: &mut Vec<PriceProblem>,
) -> Option<Vec<PriceTier>> {
    let entries = match table.get("tiers") {
        None => return Some(Vec::new()),
        Some(Value::Array(entries)) if entries.is_empty() => {
            let message = "empty list; omit `tiers` for a row priced the same at every size";
            problems.push(problem(format!("{path}.tiers"), message));
            return None;
        }
        Some(Value::Array(entries)) => entries,
        Some(other) => {
            let found = other.type_str();
            let message = format!(
                "expected a list of {{ above_input_tokens, input_per_mtok, output_per_mtok, ... }} tables, found {found}"
            );
            problems.push(problem(format!("{path}.tiers"), message));
            return None;
        }
    };
    let row_names: Vec<&str> = OPTIONAL_PRICES
        .into_iter()
        .filter(|k| table.contains_key(*k))
        .collect();
    let mut tiers: Vec<PriceTier> = Vec::with_capacity(entries.len());
    let mut ok = true;
    for (i, entry) in entries.iter().enumerate() {
        let path = format!("{path}.tiers[{i}]");
        let Some(tier) = read_tier(entry, &path, &row_names, problems) else {
            ok = false;
            continue;
        };
        if let Some(before) = tiers.last().map(|t| t.above_input_tokens) {
            if tier.above_input_tokens <= before {
                let message = format!(
                    "{} is not above the previous tier's {before}; list tiers by ascending, unique above_input_tokens",
                    tier.above_input_tokens
                );
                problems.push(problem(format!("{path}.above_input_tokens"), message));
                ok = false;
            }
        }
        tiers.push(tier);
    }
    ok.then_some(tiers)
}

fn read_tier(
    entry: &Value,
    path: &str,
    row_names: &[&str],
    problems: &mut Vec<PriceProblem>,
) -> Option<PriceTier> {
    let Value::Table(table) = entry else {
        let message = "expected a table such as { above_input_tokens = 200000, input_per_mtok = \"2.50\", output_per_mtok = \"15.00\" }";
        problems.push(problem(path, message));
        return None;
    };
    let mut f = Fields::new(table, path, TIER_FIELDS, problems);
    let above = match table.get("above_input_tokens") {
        Some(Value::Integer(n)) if *n > 0 => u64::try_from(*n).ok(),
        Some(other) => {
            let shown = match other {
                Value::Integer(n) => n.to_string(),
                v => v.type_str().to_owned(),
            };
            f.push(
                "above_input_tokens",
                format!("expected a whole number of tokens above 0 such as 200000, found {shown}"),
            );
            None
        }
        None => {
            f.push(
                "above_input_tokens",
                "missing; expected the input size the tier starts above, such as 200000".into(),
            );
            None
        }
    };
    let input = f.required("input_per_mtok", "2.50", mtok_price);
    let cached = f.optional("cached_input_per_mtok", "0.625", mtok_price);
    let write = f.optional("cache_write_per_mtok", "7.50", mtok_price);
    let write_1h = f.optional("cache_write_1h_per_mtok", "12", mtok_price);
    let output = f.required("output_per_mtok", "15.00", mtok_price);
    // A tier replaces the row's rates for the whole request, so a price the row names
    // and the tier leaves out would be billed at the base rate by accident: refused.
    for key in OPTIONAL_PRICES {
        match (row_names.contains(&key), table.contains_key(key)) {
            (true, false) => f.push(
                key,
                "missing; the row names this price, so every tier must (repeat the row's figure if it does not change above the threshold)".into(),
            ),
            (false, true) => f.push(
                key,
                "the row does not name this price; name it on the row too, or drop it here".into(),
            ),
            _ => {}
        }
    }
    Some(PriceTier {
        above_input_tokens: above?,
        input_per_mtok: input?,
        cached_input_per_mtok: cached?,
        cache_write_per_mtok: write?,
        cache_write_1h_per_mtok: write_1h?,
        output_per_mtok: output?,
    })
}

/// Two rows of one offer with equal rank (same specificity and same `effective_from`) that can
/// both match an instant would make the price depend on file order; refuse the catalog instead.
fn check_ambiguity(rows: &[(usize, PriceRow)], problems: &mut Vec<PriceProblem>) {
    for (j, (index, later)) in rows.iter().enumerate() {
        let clash = rows.iter().take(j).find(|(_, earlier)| {
            earlier.offer == later.offer
                && earlier.service_tier == later.service_tier
                && earlier.effective_from == later.effective_from
                && earlier.windows.is_empty() == later.windows.is_empty()
                && (later.windows.is_empty()
                    || earlier
                        .windows
                        .iter()
                        .any(|a| later.windows.iter().any(|b| a.overlaps(b))))
        });
        if let Some((first, _)) = clash {
            let message = format!(
                "ambiguous with prices[{first}]: same offer and service_tier, same effective_from and overlapping hours; give one a later effective_from or disjoint windows"
            );
            problems.push(problem(format!("prices[{index}]"), message));
        }
    }
}

fn key_text(text: &str) -> Result<&str, String> {
    if text.is_empty() || text.trim() != text || text.contains(char::is_whitespace) {
        Err(format!(
            "{text:?} must be non-empty and contain no whitespace"
        ))
    } else {
        Ok(text)
    }
}

fn non_empty(text: &str) -> Result<&str, String> {
    if text.trim().is_empty() {
        Err("must not be empty".to_owned())
    } else {
        Ok(text)
    }
}

fn currency(text: &str) -> Result<(), String> {
    if text == "USD" {
        Ok(())
    } else {
        Err(format!(
            "unknown currency {text:?}; expected \"USD\" (the only currency supported)"
        ))
    }
}

/// Most decimal places of a price per million tokens: a cost is tokens × price / 10^6,
/// so nine places keep every cost exact to 10^-15 USD, which is what the ledger's
/// rollups store exactly (femto-dollars, `ledger::rollup::money`).
pub const MTOK_DECIMALS: u32 = 9;
/// Most decimal places of a per-request fee, which is added to a cost as it is.
const FEE_DECIMALS: u32 = 15;

fn mtok_price(text: &str) -> Result<Decimal, String> {
    at_most(price(text)?, MTOK_DECIMALS, "per million tokens")
}

fn fee_price(text: &str) -> Result<Decimal, String> {
    at_most(price(text)?, FEE_DECIMALS, "per request")
}

fn at_most(value: Decimal, places: u32, unit: &str) -> Result<Decimal, String> {
    if value.scale() > places {
        return Err(format!(
            "{value} has {} decimal places; a price {unit} may have at most {places}, so that \
             every cost is exact to 10^-15 USD in the ledger",
            value.scale()
        ));
    }
    Ok(value)
}

/// Plain decimal notation only: `Decimal::from_str` would also take `"1e3"` and `"1_000"`,
/// which have no place in a price list people audit by eye.
fn price(text: &str) -> Result<Decimal, String> {
    let bad = || format!("not a decimal {text:?}; expected a decimal string such as \"2.19\"");
    let digits = text.strip_prefix('-').unwrap_or(text);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(whole) || !all_digits(fraction) {
        return Err(bad());
    }
    let value = Decimal::from_str(text).map_err(|_| bad())?;
    if value.is_sign_negative() && !value.is_zero() {
        return Err(format!(
            "negative price {text:?}; prices must be zero or more"
        ));
    }
    Ok(value.normalize())
}

fn instant(text: &str) -> Result<DateTime<Utc>, String> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    date(text)
        .map(|d| d.and_time(NaiveTime::MIN).and_utc())
        .map_err(|_| {
            format!("not a date or time {text:?}; expected RFC 3339 such as \"2025-02-26T16:30:00Z\" or a date such as \"2025-02-26\" (midnight UTC)")
        })
}

fn date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d")
        .map_err(|_| format!("not a date {text:?}; expected a date such as \"2025-02-26\""))
}

fn service_tier(text: &str) -> Result<ServiceTier, String> {
    match ServiceTier::parse(text) {
        Some(ServiceTier::Default) => Err(format!(
            "{text:?} is the default tier; omit service_tier for the row that prices it"
        )),
        Some(tier) => Ok(tier),
        None => Err(format!(
            "unknown service tier {text:?}; expected one of: flex, priority, scale"
        )),
    }
}

fn confidence(text: &str) -> Result<&str, String> {
    match text {
        "high" | "medium" | "low" => Ok(text),
        _ => Err(format!(
            "unknown confidence {text:?}; expected one of: high, medium, low"
        )),
    }
}
