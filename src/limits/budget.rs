//! Spend against a USD budget per UTC day and per calendar month (UTC), for one key
//! or one team. Owns the windows, the exact sums and their rebuild from the ledger
//! file; it does not price anything (`pricing` does) and never writes the ledger.
//!
//! Money stays `rust_decimal` behind a per-account mutex held for one addition or
//! comparison: integer nano-USD in an atomic would be lock-free but is only exact
//! while every price has at most nine decimal places, a property of today's catalog
//! that nothing enforces, and a budget that silently rounds is a budget nobody trusts.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use chrono::{DateTime, Datelike, Months, NaiveDate, TimeDelta, Utc};
use rust_decimal::Decimal;

use super::LimitsError;
use crate::config::Budget;

/// Which budget period refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Period {
    Day,
    Month,
}

impl Period {
    fn describe(self) -> &'static str {
        match self {
            Self::Day => "daily budget (UTC day)",
            Self::Month => "monthly budget (calendar month, UTC)",
        }
    }

    pub(super) fn config_key(self) -> &'static str {
        match self {
            Self::Day => "usd_per_day",
            Self::Month => "usd_per_month",
        }
    }
}

/// A refusal: what was spent of which limit, and when that period starts over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Exceeded {
    pub(super) period: Period,
    pub(super) limit: Decimal,
    pub(super) spent: Decimal,
    pub(super) resets_at: DateTime<Utc>,
}

impl Exceeded {
    pub(super) fn describe(&self) -> String {
        format!(
            "has spent ${} of its ${} {}",
            self.spent.normalize(),
            self.limit.normalize(),
            self.period.describe()
        )
    }
}

/// Spend in the current day and month; a window older than the one asked about
/// counts as zero, so crossing midnight or a month end needs no timer.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(super) struct Spent {
    day: Option<NaiveDate>,
    day_usd: Decimal,
    /// The first day of the month.
    month: Option<NaiveDate>,
    month_usd: Decimal,
}

impl Spent {
    fn add(&mut self, at: DateTime<Utc>, usd: Decimal) {
        let (day, month) = windows(at);
        // A cost arriving after its window has been replaced (a request that started
        // before midnight and ended after) belongs to a period no longer enforced.
        if self.day.is_none_or(|d| d < day) {
            self.day = Some(day);
            self.day_usd = Decimal::ZERO;
        }
        if self.day == Some(day) {
            self.day_usd += usd;
        }
        if self.month.is_none_or(|m| m < month) {
            self.month = Some(month);
            self.month_usd = Decimal::ZERO;
        }
        if self.month == Some(month) {
            self.month_usd += usd;
        }
    }

    fn at(&self, now: DateTime<Utc>) -> (Decimal, Decimal) {
        let (day, month) = windows(now);
        // `>=`: if the wall clock steps back, keep what was spent rather than forget it.
        let day_usd = if self.day.is_some_and(|d| d >= day) {
            self.day_usd
        } else {
            Decimal::ZERO
        };
        let month_usd = if self.month.is_some_and(|m| m >= month) {
            self.month_usd
        } else {
            Decimal::ZERO
        };
        (day_usd, month_usd)
    }
}

fn windows(at: DateTime<Utc>) -> (NaiveDate, NaiveDate) {
    let day = at.date_naive();
    (day, day.with_day(1).unwrap_or(day))
}

/// When the period containing `now` ends. Saturates at the end of chrono's range
/// rather than failing, since no budget can be enforced there anyway.
fn resets_at(period: Period, now: DateTime<Utc>) -> DateTime<Utc> {
    let (day, month) = windows(now);
    let next = match period {
        Period::Day => day.succ_opt(),
        Period::Month => month.checked_add_months(Months::new(1)),
    };
    next.and_then(|d| d.and_hms_opt(0, 0, 0))
        .map_or(DateTime::<Utc>::MAX_UTC, |t| t.and_utc())
}

/// One budget and its spend. The spend is shared with the same account of earlier
/// and later configurations ([`Account::sharing_spend`]), so a reload keeps it and a
/// request finishing on the previous configuration still charges the current one.
#[derive(Debug)]
pub(super) struct Account {
    budget: Budget,
    spent: Arc<Mutex<Spent>>,
}

impl Account {
    /// `None` for a budget without limits: nothing to track.
    pub(super) fn new(budget: Budget) -> Option<Arc<Self>> {
        (budget.usd_per_day.is_some() || budget.usd_per_month.is_some()).then(|| {
            Arc::new(Self {
                budget,
                spent: Arc::new(Mutex::new(Spent::default())),
            })
        })
    }

    /// This account's budget (possibly changed by a reload) over `old`'s spend, the
    /// very same sums: the new limit applies to what was already spent.
    pub(super) fn sharing_spend(&self, old: &Account) -> Arc<Self> {
        Arc::new(Self {
            budget: self.budget,
            spent: old.spent.clone(),
        })
    }

    /// Refuse when a period's budget is already spent or `expected` would overrun it;
    /// when both refuse, the month (the later reset) is reported.
    pub(super) fn check(&self, expected: Decimal, now: DateTime<Utc>) -> Result<(), Exceeded> {
        let (day_usd, month_usd) = self.lock().at(now);
        check_spent(&self.budget, day_usd, month_usd, expected, now)
    }

    /// The configured limits.
    pub(super) fn budget(&self) -> &Budget {
        &self.budget
    }

    pub(super) fn charge(&self, usd: Decimal, at: DateTime<Utc>) {
        self.lock().add(at, usd);
    }

    /// Spend in the day and month of `now`.
    #[cfg(test)]
    pub(super) fn spent_at(&self, now: DateTime<Utc>) -> (Decimal, Decimal) {
        self.lock().at(now)
    }

    fn replace(&self, spent: Spent) {
        *self.lock() = spent;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Spent> {
        self.spent.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// [`Account::check`] over spend kept elsewhere (Redis).
pub(super) fn check_spent(
    budget: &Budget,
    day_usd: Decimal,
    month_usd: Decimal,
    expected: Decimal,
    now: DateTime<Utc>,
) -> Result<(), Exceeded> {
    let over = |period, limit: Option<Decimal>, spent: Decimal| {
        let limit = limit?;
        (spent >= limit || spent + expected > limit).then(|| Exceeded {
            period,
            limit,
            spent,
            resets_at: resets_at(period, now),
        })
    };
    let month = over(Period::Month, budget.usd_per_month, month_usd);
    match month.or_else(|| over(Period::Day, budget.usd_per_day, day_usd)) {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// The `[from, to)` window, in Unix milliseconds, whose ledger spend `spend_by_key`
/// needs for `now`: from the start of this month to the start of the next. Both ends
/// are UTC midnights, so the ledger answers it from daily rollups alone.
pub fn spend_window(now: DateTime<Utc>) -> (i64, i64) {
    let (_, month) = windows(now);
    let ms = |d: NaiveDate| {
        d.and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc().timestamp_millis())
    };
    let from = ms(month).unwrap_or(i64::MIN);
    let until = ms(resets_at(Period::Month, now).date_naive()).unwrap_or(i64::MAX);
    (from, until)
}

/// Spend per key name in the day and month of `now`, summed from the ledger's
/// `(key name, created_at_ms, cost)` of `spend_window(now)`: one row per key and UTC
/// day (its start as the time), or per record; either gives the same sums.
pub(super) fn spend_by_key(
    rows: &[(String, i64, Decimal)],
    now: DateTime<Utc>,
) -> Result<HashMap<String, Spent>, LimitsError> {
    let (day, _) = windows(now);
    let mut out: HashMap<String, Spent> = HashMap::new();
    for (key, at_ms, usd) in rows {
        let at = DateTime::<Utc>::from_timestamp_millis(*at_ms)
            .ok_or(LimitsError::InvalidTime(*at_ms))?;
        let spent = out.entry(key.clone()).or_default();
        spent.add(now, Decimal::ZERO);
        if at.date_naive() == day {
            spent.day_usd += usd;
        }
        spent.month_usd += usd;
    }
    Ok(out)
}

/// Set `account` to the sum of `parts` (one key's, or a team's keys' spend).
pub(super) fn restore<'a>(
    account: &Account,
    parts: impl Iterator<Item = &'a Spent>,
    now: DateTime<Utc>,
) {
    let mut total = Spent::default();
    total.add(now, Decimal::ZERO);
    for part in parts {
        total.day_usd += part.day_usd;
        total.month_usd += part.month_usd;
    }
    account.replace(total);
}

/// How long until `at`, never negative.
pub(super) fn until(at: DateTime<Utc>, now: DateTime<Utc>) -> std::time::Duration {
    (at - now)
        .max(TimeDelta::zero())
        .to_std()
        .unwrap_or_default()
}
