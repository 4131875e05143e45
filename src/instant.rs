//! The one reading of a time an operator types: the `from`, `to` and `at` query
//! parameters of the admin and price endpoints and the `--from`, `--to` and `--at`
//! options of the command line.
//!
//! The rule, the same everywhere: an RFC 3339 instant is taken as it is, and a window
//! is `[from, to)`, so an instant as `to` is exclusive. A bare UTC date `D` means the
//! start of `D` as `from` (or `at`) and the end of `D` as `to`, so `to=D` includes all
//! of day `D` and `from=D&to=D` is that one day. Pure parsing; nothing here reads the
//! clock or decides a default window.

use chrono::{DateTime, NaiveDate, Utc};

/// Which end of a window a time names; it decides what a bare date means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// `from` or `at`: a date is its midnight UTC.
    Start,
    /// `to`: a date is the next midnight UTC, so the window includes the whole day.
    End,
}

/// What [`parse`] accepts, for messages that refuse a value.
pub const EXPECTED: &str = "RFC 3339 (2026-11-28T09:00:00Z) or a UTC date (2026-11-28)";

/// Parse `text` as the `bound` end of a window; `None` when it is neither an RFC 3339
/// instant nor a `YYYY-MM-DD` date (surrounding spaces are ignored).
pub fn parse(text: &str, bound: Bound) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
    let day = match bound {
        Bound::Start => day,
        Bound::End => day.succ_opt()?,
    };
    Some(day.and_time(chrono::NaiveTime::MIN).and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, d, h, 0, 0).unwrap()
    }

    #[test]
    fn a_date_starts_its_day_as_from_and_ends_it_as_to() {
        assert_eq!(parse("2026-11-27", Bound::Start), Some(at(27, 0)));
        assert_eq!(parse("2026-11-27", Bound::End), Some(at(28, 0)));
        assert_eq!(
            parse("2026-12-31", Bound::End),
            Some(Utc.with_ymd_and_hms(2027, 1, 1, 0, 0, 0).unwrap())
        );
    }

    #[test]
    fn an_instant_is_taken_as_it_is_at_either_end() {
        for bound in [Bound::Start, Bound::End] {
            assert_eq!(parse("2026-11-27T09:00:00Z", bound), Some(at(27, 9)));
            assert_eq!(parse(" 2026-11-27T10:00:00+01:00 ", bound), Some(at(27, 9)));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "yesterday",
            "2026-11-31",
            "27.11.2026",
            "2026-11-27T09:00",
        ] {
            assert_eq!(parse(bad, Bound::End), None, "{bad:?}");
        }
    }
}
