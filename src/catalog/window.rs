//! Time-of-day price windows (DeepSeek's off-peak hours, its 2026 weekday peak hours).
//!
//! Owns the parsing of `"HH:MM"` bounds and weekday names and the question "is this instant
//! inside the window?". It does not decide which catalog row wins; that is `PriceBook::lookup`.
//! All times are UTC: providers publish their windows in UTC (or Beijing time, which has no
//! daylight saving), so there is no time-zone database involved.

use chrono::{DateTime, Datelike, Timelike, Utc, Weekday};

const DAY_SECS: u32 = 86_400;
const WEEK_SECS: u32 = 7 * DAY_SECS;

/// A daily UTC time-of-day range `[start, end)`, optionally limited to some weekdays.
///
/// When `end` is earlier than `start` the window wraps past midnight (16:30–00:30), and the
/// weekday filter applies to the day on which the window *starts*, so a Friday 22:00–02:00
/// window covers Saturday 01:00 too.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeWindow {
    start: u32,
    end: u32,
    /// `None` means every day of the week.
    days: Option<Vec<Weekday>>,
}

impl TimeWindow {
    /// Builds a window from the catalog's text form: `start` and `end` as `"HH:MM"` (`end` may
    /// be `"24:00"`), `days` as lowercase three-letter names; `None` means every day.
    ///
    /// Returns one message per field at fault, keyed by field name, so the caller can attach
    /// the full path.
    pub(super) fn parse(
        start: &str,
        end: &str,
        days: Option<&[String]>,
    ) -> Result<TimeWindow, Vec<(&'static str, String)>> {
        let mut problems = Vec::new();
        let mut clock = |field: &'static str, text: &str, allow_end_of_day: bool| match parse_clock(
            text,
            allow_end_of_day,
        ) {
            Ok(secs) => Some(secs),
            Err(message) => {
                problems.push((field, message));
                None
            }
        };
        let start_secs = clock("start", start, false);
        let end_secs = clock("end", end, true);
        let days = match days {
            None => None,
            Some([]) => {
                problems.push((
                    "days",
                    "empty list never matches; omit `days` for every day".to_owned(),
                ));
                None
            }
            Some(names) => {
                let mut parsed = Vec::with_capacity(names.len());
                for name in names {
                    match parse_weekday(name) {
                        Some(d) if !parsed.contains(&d) => parsed.push(d),
                        Some(_) => problems.push(("days", format!("{name:?} is listed twice"))),
                        None => problems.push((
                            "days",
                            format!("unknown day {name:?}; expected one of: mon, tue, wed, thu, fri, sat, sun"),
                        )),
                    }
                }
                Some(parsed)
            }
        };
        match (start_secs, end_secs) {
            (Some(s), Some(e)) if s == e => {
                problems.push((
                    "end",
                    format!("equals start ({start}); a window must not be empty (omit `windows` for all day)"),
                ));
                Err(problems)
            }
            (Some(start), Some(end)) if problems.is_empty() => Ok(TimeWindow { start, end, days }),
            _ => Err(problems),
        }
    }

    /// Whether `at` falls inside this window. Start is inclusive and end exclusive, so with
    /// DeepSeek's windows 00:30:00 is standard time and 00:29:59 is still off-peak.
    pub fn contains(&self, at: DateTime<Utc>) -> bool {
        let t = at.num_seconds_from_midnight();
        let start_day = if self.start < self.end {
            if t < self.start || t >= self.end {
                return false;
            }
            at.weekday()
        } else if t >= self.start {
            at.weekday()
        } else if t < self.end {
            // The part after midnight belongs to the window that started yesterday.
            at.weekday().pred()
        } else {
            return false;
        };
        self.days
            .as_ref()
            .is_none_or(|days| days.contains(&start_day))
    }

    /// Whether some instant lies in both windows; used to reject catalogs where two rows of
    /// equal rank could claim the same request.
    pub(super) fn overlaps(&self, other: &TimeWindow) -> bool {
        let mine = self.week_spans();
        let theirs = other.week_spans();
        mine.iter()
            .any(|&(s1, e1)| theirs.iter().any(|&(s2, e2)| s1 < e2 && s2 < e1))
    }

    /// The window as half-open spans in seconds since Monday 00:00, split at the week's end.
    fn week_spans(&self) -> Vec<(u32, u32)> {
        let all = [
            Weekday::Mon,
            Weekday::Tue,
            Weekday::Wed,
            Weekday::Thu,
            Weekday::Fri,
            Weekday::Sat,
            Weekday::Sun,
        ];
        let days = self.days.as_deref().unwrap_or(&all);
        let mut spans = Vec::with_capacity(days.len() * 2);
        for day in days {
            let base = day.num_days_from_monday() * DAY_SECS;
            let start = base + self.start;
            let end = if self.start < self.end {
                base + self.end
            } else {
                base + DAY_SECS + self.end
            };
            if end > WEEK_SECS {
                spans.push((start, WEEK_SECS));
                spans.push((0, end - WEEK_SECS));
            } else {
                spans.push((start, end));
            }
        }
        spans
    }
}

/// Parses `"HH:MM"` into seconds since midnight; `"24:00"` only where `allow_end_of_day`.
fn parse_clock(text: &str, allow_end_of_day: bool) -> Result<u32, String> {
    let bad = || format!("not a time {text:?}; expected \"HH:MM\" in UTC such as \"16:30\"");
    let (h, m) = text.split_once(':').ok_or_else(bad)?;
    let two_digits = |s: &str| s.len() == 2 && s.bytes().all(|b| b.is_ascii_digit());
    if !two_digits(h) || !two_digits(m) {
        return Err(bad());
    }
    let hours: u32 = h.parse().map_err(|_| bad())?;
    let minutes: u32 = m.parse().map_err(|_| bad())?;
    let secs = hours * 3600 + minutes * 60;
    if minutes < 60 && (hours < 24 || (allow_end_of_day && secs == DAY_SECS)) {
        Ok(secs)
    } else {
        Err(bad())
    }
}

fn parse_weekday(name: &str) -> Option<Weekday> {
    Some(match name {
        "mon" => Weekday::Mon,
        "tue" => Weekday::Tue,
        "wed" => Weekday::Wed,
        "thu" => Weekday::Thu,
        "fri" => Weekday::Fri,
        "sat" => Weekday::Sat,
        "sun" => Weekday::Sun,
        _ => return None,
    })
}
