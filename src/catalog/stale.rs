//! Catalog freshness: rows still in force whose figures were last checked (`as_of`)
//! longer ago than `[pricing] max_age`. Pure; start-up logs and exports the result.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::{PriceBook, PriceRow};

/// Rows in force at or after `now` (not yet ended) whose `as_of` is older than `max_age`.
/// History rows that have ended are never stale: their figures are not used any more.
pub fn stale_rows(book: &PriceBook, max_age: Duration, now: DateTime<Utc>) -> Vec<&PriceRow> {
    let Ok(age) = chrono::Duration::from_std(max_age) else {
        return Vec::new();
    };
    let Some(oldest_fresh) = now.date_naive().checked_sub_signed(age) else {
        return Vec::new();
    };
    book.rows()
        .iter()
        .filter(|r| r.effective_until.is_none_or(|until| until > now))
        .filter(|r| r.as_of < oldest_fresh)
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn only_rows_in_force_and_older_than_max_age_are_stale() {
        let book = PriceBook::from_toml_str(
            r#"
[[prices]]
id = "a/1"
offer = "a"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-01-01"
effective_until = "2025-06-01"
source = "test"
as_of = "2025-01-01"

[[prices]]
id = "a/2"
offer = "a"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-06-01"
source = "test"
as_of = "2025-06-01"

[[prices]]
id = "b/1"
offer = "b"
currency = "USD"
input_per_mtok = "1"
output_per_mtok = "2"
effective_from = "2025-06-01"
source = "test"
as_of = "2025-12-01"
"#,
        )
        .unwrap();
        let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
        let stale = stale_rows(&book, Duration::from_secs(180 * 86_400), now);
        let ids: Vec<&str> = stale.iter().map(|r| r.id.as_str()).collect();
        assert_eq!(ids, ["a/2"]);
    }
}
