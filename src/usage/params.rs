//! The usage API's parameters: the time window (`from`/`to`), the `group_by` list
//! and the key/model filters, parsed from the strings an operator typed into a URL
//! or the `tollgate report` command line. Pure parsing; no I/O.

use chrono::{DateTime, Duration, SecondsFormat, Utc};

use super::UsageError;
use crate::instant::{self, Bound};

/// A dimension usage can be grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GroupKey {
    /// The app key's configured name.
    Key,
    /// The team of the key (`[[keys]] team`) when the request was made.
    Team,
    /// The logical model the app asked for.
    Model,
    /// The provider entry that served (or last tried).
    Provider,
    /// The serving jurisdiction.
    Jurisdiction,
    /// The UTC day the request started, `YYYY-MM-DD`.
    Day,
    /// The UTC hour the request started, `YYYY-MM-DDTHH:00:00Z`.
    Hour,
}

impl GroupKey {
    /// Every dimension, in the order the help text lists them.
    pub const ALL: [Self; 7] = [
        Self::Key,
        Self::Team,
        Self::Model,
        Self::Provider,
        Self::Jurisdiction,
        Self::Day,
        Self::Hour,
    ];

    /// The name used in `group_by` and as the field name in each group.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Key => "key",
            Self::Team => "team",
            Self::Model => "model",
            Self::Provider => "provider",
            Self::Jurisdiction => "jurisdiction",
            Self::Day => "day",
            Self::Hour => "hour",
        }
    }
}

/// Which records a query reads: `from` inclusive, `to` exclusive, optional filters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Filter {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// Only this app key's records; `None` = every key.
    pub key: Option<String>,
    /// Only this logical model's records; `None` = every model.
    pub model: Option<String>,
}

impl Filter {
    /// The same window and selection as the ledger's scan filter.
    pub fn to_scan(&self) -> crate::ledger::filter::Filter {
        crate::ledger::filter::Filter {
            from: Some(self.from),
            to: Some(self.to),
            key_name: self.key.clone(),
            logical_model: self.model.clone(),
        }
    }

    /// Parse `from`/`to` by the one rule of [`crate::instant`]: a bare date as `to`
    /// means the end of that day, so `from=2026-11-01&to=2026-11-30` covers all of
    /// November; an RFC 3339 instant as `to` is exclusive.
    /// Without `from`/`to` the window is the 24 hours before `now`.
    pub fn parse(
        from: Option<&str>,
        to: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Self, UsageError> {
        let to = match non_empty(to) {
            Some(s) => parse_instant("to", s, Bound::End)?,
            None => now,
        };
        let from = match non_empty(from) {
            Some(s) => parse_instant("from", s, Bound::Start)?,
            None => to - Duration::hours(24),
        };
        if from >= to {
            return Err(UsageError::bad_param(
                "from",
                format!(
                    "`from` ({}) must be before `to` ({})",
                    rfc3339(from),
                    rfc3339(to)
                ),
            ));
        }
        Ok(Self {
            from,
            to,
            key: None,
            model: None,
        })
    }

    /// Restrict to one key and/or one model (empty strings mean no restriction).
    pub fn with(mut self, key: Option<&str>, model: Option<&str>) -> Self {
        self.key = non_empty(key).map(str::to_owned);
        self.model = non_empty(model).map(str::to_owned);
        self
    }
}

/// Parse a comma-separated `group_by` (e.g. `provider,day`). Empty means one group
/// holding everything. `day` and `hour` exclude each other.
pub fn parse_group_by(s: Option<&str>) -> Result<Vec<GroupKey>, UsageError> {
    let mut keys: Vec<GroupKey> = Vec::new();
    for part in non_empty(s).unwrap_or("").split(',').map(str::trim) {
        if part.is_empty() {
            continue;
        }
        let Some(k) = GroupKey::ALL.iter().copied().find(|k| k.as_str() == part) else {
            let names: Vec<&str> = GroupKey::ALL.iter().map(|k| k.as_str()).collect();
            return Err(UsageError::bad_param(
                "group_by",
                format!(
                    "unknown group {part:?}; use a comma-separated list of: {}",
                    names.join(", ")
                ),
            ));
        };
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    if keys.contains(&GroupKey::Day) && keys.contains(&GroupKey::Hour) {
        return Err(UsageError::bad_param(
            "group_by",
            "group by `day` or by `hour`, not both",
        ));
    }
    Ok(keys)
}

/// An instant as RFC 3339 in UTC with a `Z`, to the second.
pub fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

fn parse_instant(param: &'static str, s: &str, bound: Bound) -> Result<DateTime<Utc>, UsageError> {
    instant::parse(s, bound).ok_or_else(|| {
        UsageError::bad_param(
            param,
            format!("{s:?} is not a time; use {}", instant::EXPECTED),
        )
    })
}

fn non_empty(s: Option<&str>) -> Option<&str> {
    s.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 28, 12, 0, 0).unwrap()
    }

    #[test]
    fn default_window_is_the_last_24_hours() {
        let f = Filter::parse(None, None, now()).unwrap();
        assert_eq!(f.to, now());
        assert_eq!(
            f.from,
            Utc.with_ymd_and_hms(2026, 11, 27, 12, 0, 0).unwrap()
        );
    }

    #[test]
    fn a_date_as_to_includes_that_whole_day() {
        let f = Filter::parse(Some("2026-11-01"), Some("2026-11-30"), now()).unwrap();
        assert_eq!(f.from, Utc.with_ymd_and_hms(2026, 11, 1, 0, 0, 0).unwrap());
        assert_eq!(f.to, Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap());
    }

    #[test]
    fn bad_times_name_the_parameter() {
        let e = Filter::parse(Some("yesterday"), None, now()).unwrap_err();
        assert!(
            matches!(e, UsageError::BadParam { param: "from", .. }),
            "{e}"
        );
        let e = Filter::parse(Some("2026-11-28"), Some("2026-11-27T00:00:00Z"), now()).unwrap_err();
        assert!(e.to_string().contains("must be before"), "{e}");
    }

    #[test]
    fn group_by_rejects_unknown_names_and_day_with_hour() {
        assert_eq!(
            parse_group_by(Some("provider, day,provider")).unwrap(),
            vec![GroupKey::Provider, GroupKey::Day]
        );
        assert!(parse_group_by(Some("region"))
            .unwrap_err()
            .to_string()
            .contains("jurisdiction"));
        assert!(parse_group_by(Some("day,hour")).is_err());
        assert!(parse_group_by(None).unwrap().is_empty());
    }
}
