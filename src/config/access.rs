//! Configuration of who may do what: residency policies, per-key rate limits,
//! budgets of keys and teams, per-offer upstream quotas and the routing section.
//! Raw shapes (as written) and their validated forms, with the checks that turn one
//! into the other. Enforcement lives in `policy`, `routing` and `limits`.

use std::collections::BTreeSet;
use std::time::Duration;

use rust_decimal::Decimal;
use serde::Deserialize;

use super::residency::{self, Scope, JURISDICTION_EXPECTED};

/// `[policy]` and a key's `residency`: where a key's prompts may go.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawResidencyPolicy {
    pub allow_jurisdictions: Option<Vec<String>>,
    pub deny_jurisdictions: Vec<String>,
    pub allow_regions: Option<Vec<String>>,
    pub allow_scopes: Option<Vec<String>>,
}

/// A validated residency policy. `None` allow-lists mean "any".
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResidencyPolicy {
    pub allow_jurisdictions: Option<BTreeSet<String>>,
    pub deny_jurisdictions: BTreeSet<String>,
    pub allow_regions: Option<BTreeSet<String>>,
    pub allow_scopes: Option<BTreeSet<Scope>>,
}

impl ResidencyPolicy {
    /// A policy allowing only `jurisdictions` and constraining nothing else: what a
    /// request's `x-tollgate-residency` header asks for.
    pub fn only_jurisdictions(jurisdictions: BTreeSet<String>) -> Self {
        Self {
            allow_jurisdictions: Some(jurisdictions),
            ..Self::default()
        }
    }

    /// This policy narrowed by `other`: the result allows an offer exactly when both
    /// do, so nothing `other` declares can widen `self` (nor the reverse). Deny lists
    /// unite, allow lists intersect, and an absent allow list constrains nothing.
    /// The one rule for `[policy]` narrowed by a key's `residency` (at validation)
    /// and for a key narrowed by `x-tollgate-residency` (per request).
    pub fn narrow(&self, other: &Self) -> Self {
        let deny_jurisdictions: BTreeSet<String> = self
            .deny_jurisdictions
            .union(&other.deny_jurisdictions)
            .cloned()
            .collect();
        // Dropping denied entries from the allow list changes nothing it allows, and
        // keeps `check-config`'s summary from listing a jurisdiction on both sides.
        let allow_jurisdictions = intersect(&self.allow_jurisdictions, &other.allow_jurisdictions)
            .map(|mut a| {
                a.retain(|j| !deny_jurisdictions.contains(j));
                a
            });
        Self {
            allow_jurisdictions,
            deny_jurisdictions,
            allow_regions: intersect(&self.allow_regions, &other.allow_regions),
            allow_scopes: intersect(&self.allow_scopes, &other.allow_scopes),
        }
    }

    /// One line for operators (`tollgate check-config`), in the config's own key
    /// names: `allow_jurisdictions=[EU] deny_jurisdictions=[CN] allow_regions=any
    /// allow_scopes=[regional, datazone]`; `any` is an absent allow list.
    pub fn summary(&self) -> String {
        fn list<'a>(items: impl Iterator<Item = &'a str>) -> String {
            format!("[{}]", items.collect::<Vec<_>>().join(", "))
        }
        fn allow<'a, T: 'a>(
            items: Option<&'a BTreeSet<T>>,
            name: impl Fn(&'a T) -> &'a str,
        ) -> String {
            items.map_or_else(|| "any".to_owned(), |s| list(s.iter().map(name)))
        }
        format!(
            "allow_jurisdictions={} deny_jurisdictions={} allow_regions={} allow_scopes={}",
            allow(self.allow_jurisdictions.as_ref(), String::as_str),
            list(self.deny_jurisdictions.iter().map(String::as_str)),
            allow(self.allow_regions.as_ref(), String::as_str),
            allow(self.allow_scopes.as_ref(), |s| s.as_str()),
        )
    }
}

/// The intersection of two allow lists, where `None` is "everything".
fn intersect<T: Ord + Clone>(
    a: &Option<BTreeSet<T>>,
    b: &Option<BTreeSet<T>>,
) -> Option<BTreeSet<T>> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.intersection(b).cloned().collect()),
        (Some(x), None) | (None, Some(x)) => Some(x.clone()),
        (None, None) => None,
    }
}

/// A key's `rate_limit`.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawRateLimit {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// Validated per-key rate limit; `None` fields are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateLimit {
    pub requests_per_minute: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// A key's or team's `budget`, decimal USD strings.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawBudget {
    pub usd_per_day: Option<String>,
    pub usd_per_month: Option<String>,
}

/// Validated budget (UTC days and calendar months); `None` fields are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Budget {
    pub usd_per_day: Option<Decimal>,
    pub usd_per_month: Option<Decimal>,
}

/// An offer's `quota`: what the upstream account allows (e.g. GitHub Models' free tier).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
pub struct RawQuota {
    pub requests_per_minute: Option<u32>,
    pub requests_per_day: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// Validated upstream quota; `None` fields are unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Quota {
    pub requests_per_minute: Option<u32>,
    pub requests_per_day: Option<u32>,
    pub tokens_per_minute: Option<u32>,
}

/// `[[teams]]`.
#[derive(Debug, Clone, Deserialize)]
pub struct RawTeam {
    pub name: String,
    pub budget: Option<RawBudget>,
}

/// A validated team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSettings {
    pub name: String,
    pub budget: Budget,
}

/// `[routing]`: retries and the circuit breaker, for every model.
#[derive(Debug, Clone, Deserialize)]
#[serde(default)]
pub struct RawRouting {
    /// First retry delay; doubles per retry up to `max_backoff` (or `retry-after`).
    #[serde(with = "humantime_serde")]
    pub retry_backoff: Duration,
    #[serde(with = "humantime_serde")]
    pub max_backoff: Duration,
    /// Consecutive failures that open an offer's circuit breaker.
    pub breaker_failures: u32,
    /// How long an open breaker waits before letting one probe through.
    #[serde(with = "humantime_serde")]
    pub breaker_cooldown: Duration,
}

impl Default for RawRouting {
    fn default() -> Self {
        Self {
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(2),
            breaker_failures: 5,
            breaker_cooldown: Duration::from_secs(30),
        }
    }
}

/// Validated `[routing]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoutingSettings {
    pub retry_backoff: Duration,
    pub max_backoff: Duration,
    pub breaker_failures: u32,
    pub breaker_cooldown: Duration,
}

/// How a model's allowed offers are ordered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RoutingStrategy {
    /// Configured order.
    #[default]
    Priority,
    /// Lowest expected cost of this request first.
    Cheapest,
    /// Lowest moving average of time to first byte first.
    Latency,
    /// Random, proportional to each offer's `weight`.
    Weighted,
}

impl RoutingStrategy {
    /// Parse the config spelling.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "priority" => Some(Self::Priority),
            "cheapest" => Some(Self::Cheapest),
            "latency" => Some(Self::Latency),
            "weighted" => Some(Self::Weighted),
            _ => None,
        }
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Priority => "priority",
            Self::Cheapest => "cheapest",
            Self::Latency => "latency",
            Self::Weighted => "weighted",
        }
    }
}

/// Collects problems with their paths (shared with `validate`).
pub(super) type Push<'a> = &'a mut dyn FnMut(String, String);

fn jurisdiction_set(path: &str, list: &[String], push: Push<'_>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, j) in list.iter().enumerate() {
        match residency::jurisdiction(j) {
            Some(up) => {
                out.insert(up);
            }
            None => push(
                format!("{path}[{i}]"),
                format!("{j:?} is not a jurisdiction; expected {JURISDICTION_EXPECTED}"),
            ),
        }
    }
    out
}

/// Validate a residency policy at `path`.
pub(super) fn residency(path: &str, raw: &RawResidencyPolicy, push: Push<'_>) -> ResidencyPolicy {
    let allow_jurisdictions = raw
        .allow_jurisdictions
        .as_ref()
        .map(|l| jurisdiction_set(&format!("{path}.allow_jurisdictions"), l, push));
    let deny_jurisdictions = jurisdiction_set(
        &format!("{path}.deny_jurisdictions"),
        &raw.deny_jurisdictions,
        push,
    );
    let allow_scopes = raw.allow_scopes.as_ref().map(|l| {
        let mut set = BTreeSet::new();
        for (i, s) in l.iter().enumerate() {
            match Scope::parse(s) {
                Some(scope) => {
                    set.insert(scope);
                }
                None => push(
                    format!("{path}.allow_scopes[{i}]"),
                    format!("unknown scope {s:?}; expected one of: regional, datazone, global"),
                ),
            }
        }
        set
    });
    ResidencyPolicy {
        allow_jurisdictions,
        deny_jurisdictions,
        allow_regions: raw
            .allow_regions
            .as_ref()
            .map(|l| l.iter().cloned().collect()),
        allow_scopes,
    }
}

fn usd(path: String, value: Option<&String>, push: Push<'_>) -> Option<Decimal> {
    let v = value?;
    match v.parse::<Decimal>() {
        Ok(d) if d >= Decimal::ZERO => Some(d),
        _ => {
            push(
                path,
                format!("{v:?} is not a non-negative decimal amount such as \"25.00\""),
            );
            None
        }
    }
}

/// Validate a budget at `path`.
pub(super) fn budget(path: &str, raw: Option<&RawBudget>, push: Push<'_>) -> Budget {
    let Some(raw) = raw else {
        return Budget::default();
    };
    Budget {
        usd_per_day: usd(
            format!("{path}.usd_per_day"),
            raw.usd_per_day.as_ref(),
            push,
        ),
        usd_per_month: usd(
            format!("{path}.usd_per_month"),
            raw.usd_per_month.as_ref(),
            push,
        ),
    }
}

fn positive(path: String, v: Option<u32>, push: Push<'_>) -> Option<u32> {
    if v == Some(0) {
        push(path, "must be at least 1 (omit it for no limit)".into());
    }
    v.filter(|n| *n > 0)
}

/// Validate a key's rate limit at `path`.
pub(super) fn rate_limit(path: &str, raw: Option<&RawRateLimit>, push: Push<'_>) -> RateLimit {
    let Some(raw) = raw else {
        return RateLimit::default();
    };
    RateLimit {
        requests_per_minute: positive(
            format!("{path}.requests_per_minute"),
            raw.requests_per_minute,
            push,
        ),
        tokens_per_minute: positive(
            format!("{path}.tokens_per_minute"),
            raw.tokens_per_minute,
            push,
        ),
    }
}

/// Validate an offer's quota at `path`.
pub(super) fn quota(path: &str, raw: Option<&RawQuota>, push: Push<'_>) -> Quota {
    let Some(raw) = raw else {
        return Quota::default();
    };
    Quota {
        requests_per_minute: positive(
            format!("{path}.requests_per_minute"),
            raw.requests_per_minute,
            push,
        ),
        requests_per_day: positive(
            format!("{path}.requests_per_day"),
            raw.requests_per_day,
            push,
        ),
        tokens_per_minute: positive(
            format!("{path}.tokens_per_minute"),
            raw.tokens_per_minute,
            push,
        ),
    }
}

/// Validate `[routing]`.
pub(super) fn routing(raw: &RawRouting, push: Push<'_>) -> RoutingSettings {
    if raw.breaker_failures == 0 {
        push(
            "routing.breaker_failures".into(),
            "must be at least 1".into(),
        );
    }
    RoutingSettings {
        retry_backoff: raw.retry_backoff,
        max_backoff: raw.max_backoff.max(raw.retry_backoff),
        breaker_failures: raw.breaker_failures.max(1),
        breaker_cooldown: raw.breaker_cooldown,
    }
}
