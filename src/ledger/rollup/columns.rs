//! The rollup tables' columns, named once for both backends: the two tiers (which
//! dimensions each keeps), the counters, the money columns (two integers each in
//! SQLite, `NUMERIC` in PostgreSQL) and the histogram buckets. The migrations spell the
//! same names out in their DDL; a test checks they agree.

use super::histogram::BUCKETS;
use super::RollupKey;

/// A dimension rows can be grouped or filtered by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Dim {
    Key,
    Team,
    Model,
    Provider,
    UpstreamModel,
    Jurisdiction,
    Route,
    Outcome,
    /// The UTC day (from the period start).
    Day,
    /// The UTC hour (from the period start); only the hourly tier has it.
    Hour,
}

impl Dim {
    /// The column holding a text dimension; `None` for the time dimensions.
    pub fn column(self) -> Option<&'static str> {
        Some(match self {
            Self::Key => "key_name",
            Self::Team => "team",
            Self::Model => "logical_model",
            Self::Provider => "provider",
            Self::UpstreamModel => "upstream_model",
            Self::Jurisdiction => "jurisdiction",
            Self::Route => "route",
            Self::Outcome => "outcome",
            Self::Day | Self::Hour => return None,
        })
    }

    /// The value of a text dimension in `key` (`""` = none).
    pub fn text(self, key: &RollupKey) -> Option<&str> {
        Some(match self {
            Self::Key => &key.key_name,
            Self::Team => &key.team,
            Self::Model => &key.logical_model,
            Self::Provider => &key.provider,
            Self::UpstreamModel => &key.upstream_model,
            Self::Jurisdiction => &key.jurisdiction,
            Self::Route => &key.route,
            Self::Outcome => &key.outcome,
            Self::Day | Self::Hour => return None,
        })
    }
}

/// One rollup table: its name, time column, period and the dimensions it keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tier {
    pub table: &'static str,
    pub time_column: &'static str,
    pub period_ms: i64,
    /// Text dimensions, in key (and primary key) order.
    pub dims: &'static [Dim],
}

/// `usage_hourly`: every dimension of a record worth grouping by.
pub const HOURLY: Tier = Tier {
    table: "usage_hourly",
    time_column: "hour_ms",
    period_ms: super::HOUR_MS,
    dims: &[
        Dim::Key,
        Dim::Team,
        Dim::Model,
        Dim::Provider,
        Dim::UpstreamModel,
        Dim::Jurisdiction,
        Dim::Route,
        Dim::Outcome,
    ],
};

/// `usage_daily`: the dimensions the usage API, savings and budgets group by.
pub const DAILY: Tier = Tier {
    table: "usage_daily",
    time_column: "day_ms",
    period_ms: super::DAY_MS,
    dims: &[
        Dim::Key,
        Dim::Team,
        Dim::Model,
        Dim::Provider,
        Dim::Jurisdiction,
    ],
};

impl Tier {
    /// Whether this tier can group and filter by `dim`.
    pub fn has(&self, dim: Dim) -> bool {
        match dim {
            Dim::Day => true,
            Dim::Hour => self.period_ms <= super::HOUR_MS,
            text => self.dims.contains(&text),
        }
    }

    /// The key columns: time first, then the text dimensions.
    pub fn key_columns(&self) -> Vec<&'static str> {
        std::iter::once(self.time_column)
            .chain(self.dims.iter().filter_map(|d| d.column()))
            .collect()
    }
}

/// Counter columns, in `Sums::counts` order.
pub const COUNTS: [&str; 16] = [
    "requests",
    "errors",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "reasoning_tokens",
    "estimated_requests",
    "unpriced_requests",
    "billable_requests",
    "billable_costed_requests",
    "compared_requests",
    "drift_requests",
    "drift_reported_tokens",
    "drift_counted_tokens",
    "hidden_reasoning_requests",
];

/// Money columns, in `Sums::money` order. SQLite stores each as `<name>_micros` and
/// `<name>_femtos`.
pub const MONEY: [&str; 5] = [
    "cost_usd",
    "billable_cost_usd",
    "compared_cost_usd",
    "cheapest_allowed_usd",
    "cheapest_any_usd",
];

/// Histogram prefixes: `<prefix>_b00` .. `<prefix>_b23` and `<prefix>_max_ms`.
pub const HISTOGRAMS: [&str; 2] = ["latency", "ttfb"];

/// Every summed integer column: the counters, then each histogram's buckets.
pub fn summed_integers() -> Vec<String> {
    COUNTS
        .iter()
        .map(|c| (*c).to_owned())
        .chain(
            HISTOGRAMS
                .iter()
                .flat_map(|h| (0..BUCKETS).map(move |i| format!("{h}_b{i:02}"))),
        )
        .collect()
}

/// The max columns, one per histogram.
pub fn maxima() -> [String; 2] {
    HISTOGRAMS.map(|h| format!("{h}_max_ms"))
}

/// `s`'s summed integers, in [`summed_integers`] order.
pub fn integers(s: &super::Sums) -> Vec<u64> {
    s.counts()
        .into_iter()
        .chain(s.latency.buckets)
        .chain(s.ttfb.buckets)
        .collect()
}

/// Set `s`'s summed integers from values in [`summed_integers`] order.
pub fn set_integers(s: &mut super::Sums, values: impl IntoIterator<Item = u64>) {
    let mut values = values.into_iter();
    for t in s.counts_mut() {
        *t = values.next().unwrap_or(0);
    }
    let buckets = s
        .latency
        .buckets
        .iter_mut()
        .chain(s.ttfb.buckets.iter_mut());
    for t in buckets {
        *t = values.next().unwrap_or(0);
    }
}
