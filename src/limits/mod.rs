//! Limits: per-key rate limits (requests and tokens per minute), per-offer upstream
//! quotas (requests per minute and per day, tokens per minute) and USD budgets per key
//! and per team (UTC day, calendar month). Built once from `Settings`, shared in an
//! `Arc`, every method `&self`, synchronous and lock-light: rate limiters are governor
//! GCRA cells updated lock-free, and the only locks guard one offer's multi-limiter
//! decision or one account's decimal sums, each held for a few comparisons.
//!
//! This module decides; it does not answer HTTP (a refusal converts into a
//! `GatewayError`, and `api::error` picks the status), does not route (routing skips
//! an offer that refuses) and does not write the ledger (it only reads it at start-up
//! to rebuild spend).
//!
//! Known bounds: the budget check is not a reservation, so requests admitted together
//! can overrun a budget by what they cost together; the next request is then refused.

mod budget;
mod carry;
mod gcra;
mod quota;
mod shared;
mod store;
#[cfg(test)]
mod tests;

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, SecondsFormat, Utc};
use rust_decimal::Decimal;

use crate::api::error::{ErrorCode, GatewayError};
use crate::config::Settings;
use budget::{Account, Exceeded};
use gcra::{Gcra, TokioClock, Wait};
use quota::OfferQuota;

const MAX_RETRY_AFTER_SECS: u64 = 32 * 24 * 60 * 60;

/// Which limit refused a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RefusalKind {
    /// The key's requests or tokens per minute (429 `rate_limited`).
    RateLimited,
    /// An offer's upstream quota; routing tries the next offer.
    QuotaExhausted,
    /// The key's or its team's USD budget (429 `budget_exceeded`).
    BudgetExceeded,
}

impl RefusalKind {
    /// The `limit` label of `tollgate_ratelimited_total`: a closed set.
    pub fn metric_label(self) -> &'static str {
        match self {
            Self::RateLimited => "rate_limit",
            Self::QuotaExhausted => "upstream_quota",
            Self::BudgetExceeded => "budget",
        }
    }
}

/// A refused request: which limit, when to retry, and a message for the app that
/// says which limit, when it resets and what to do. Never contains secrets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct LimitRefusal {
    pub kind: RefusalKind,
    /// Until the limit lets this request through; `Duration::MAX` when it never will
    /// (a request larger than a tokens-per-minute burst).
    pub retry_after: Duration,
    pub message: String,
}

impl LimitRefusal {
    /// The app-facing error. An exhausted quota reaches the app only when every offer
    /// refused, and then it is a rate limit with the upstream's reset.
    pub fn into_gateway_error(self) -> GatewayError {
        let code = match self.kind {
            RefusalKind::RateLimited | RefusalKind::QuotaExhausted => ErrorCode::RateLimited,
            RefusalKind::BudgetExceeded => ErrorCode::BudgetExceeded,
        };
        let secs = self.retry_after_secs();
        GatewayError::new(code, self.message).with_retry_after(secs)
    }

    /// `retry-after` in whole seconds, rounded up and at least 1, so a client that
    /// obeys it is not refused again for a fraction of a second; at most 32 days (past
    /// any monthly reset), so "never" is still a sane header.
    pub fn retry_after_secs(&self) -> u64 {
        secs(self.retry_after).clamp(1, MAX_RETRY_AFTER_SECS)
    }
}

/// Why the spend could not be rebuilt from the ledger.
#[derive(Debug, thiserror::Error)]
pub enum LimitsError {
    #[error("could not read the ledger to rebuild budgets: {0}")]
    Ledger(#[from] crate::ledger::LedgerError),
    #[error("the ledger holds a time out of range: {0} ms")]
    InvalidTime(i64),
    #[error("limits.redis_url: {0}")]
    Redis(#[from] redis::RedisError),
}

#[derive(Debug)]
struct KeyLimits {
    name: String,
    /// Shared with the same key's limiter of the previous configuration when its
    /// limit did not change (see `carry`).
    requests_per_minute: Option<Arc<Gcra>>,
    tokens_per_minute: Option<Arc<Gcra>>,
    budget: Option<Arc<Account>>,
    team: Option<usize>,
}

#[derive(Debug)]
struct TeamLimits {
    name: String,
    budget: Option<Arc<Account>>,
}

#[derive(Debug)]
struct ModelLimits {
    name: String,
    offers: Vec<OfferLimits>,
}

/// One offer's quota, and what identifies the offer across configurations.
#[derive(Debug)]
struct OfferLimits {
    /// `<provider id>/<upstream model>`, with `#<n>` for the n-th repeat within the
    /// model: what a reload matches offers by (indexes shift when offers are added),
    /// and what names the offer's state in Redis.
    identity: String,
    /// `None`: the offer has no quota.
    quota: Option<Arc<OfferQuota>>,
}

/// Every limit of one configuration. Indices are those of the `Settings` it was built
/// from; an index it does not know has no limits.
#[derive(Debug)]
pub struct Limits {
    keys: Vec<KeyLimits>,
    teams: Vec<TeamLimits>,
    models: Vec<ModelLimits>,
    /// Redis, when `[limits] redis_url` is set and this was built by [`Limits::connect`].
    backend: Option<shared::Backend>,
}

impl Limits {
    /// Build the limiters where `settings` says: in this process, or shared through
    /// Redis (`[limits] redis_url`; connects lazily, and needs a tokio runtime).
    pub fn connect(settings: &Settings) -> Result<Self, LimitsError> {
        let mut limits = Self::new(settings);
        if let Some(shared) = &settings.shared_limits {
            limits.backend = Some(shared::Backend::connect(shared)?);
        }
        Ok(limits)
    }

    /// Whether limits are shared through Redis rather than kept in this process.
    pub fn is_shared(&self) -> bool {
        self.backend.is_some()
    }

    /// Build in-process limiters (ignoring any `redis_url`); the rate-limit clock is
    /// tokio's, starting now.
    pub fn new(settings: &Settings) -> Self {
        let clock = TokioClock::new();
        let gcra = |n: Option<u32>| {
            n.and_then(NonZeroU32::new)
                .map(|n| Arc::new(Gcra::per_minute(n, clock)))
        };
        Self {
            keys: settings
                .keys
                .iter()
                .map(|k| KeyLimits {
                    name: k.name.clone(),
                    requests_per_minute: gcra(k.rate_limit.requests_per_minute),
                    tokens_per_minute: gcra(k.rate_limit.tokens_per_minute),
                    budget: Account::new(k.budget),
                    team: k.team,
                })
                .collect(),
            teams: settings
                .teams
                .iter()
                .map(|t| TeamLimits {
                    name: t.name.clone(),
                    budget: Account::new(t.budget),
                })
                .collect(),
            models: settings
                .models
                .iter()
                .map(|m| ModelLimits {
                    name: m.name.clone(),
                    offers: carry::offer_identities(settings, m)
                        .into_iter()
                        .zip(&m.offers)
                        .map(|(identity, o)| OfferLimits {
                            identity,
                            quota: OfferQuota::new(&o.quota, clock).map(Arc::new),
                        })
                        .collect(),
                })
                .collect(),
            backend: None,
        }
    }

    /// Before routing: the key's requests per minute (consumed when admitted), and its
    /// tokens per minute, which refuses while earlier over-use is being paid back.
    pub fn admit_request(&self, key_index: usize) -> Result<(), LimitRefusal> {
        let Some(key) = self.keys.get(key_index) else {
            return Ok(());
        };
        // Tokens first, and only peeked: a refusal there must not spend a request.
        if let Some(Err(Wait(wait))) = key.tokens_per_minute.as_ref().map(|l| l.peek(1)) {
            return Err(rate_limited(&key.name, "tokens_per_minute", wait));
        }
        if let Some(Err(Wait(wait))) = key.requests_per_minute.as_ref().map(|l| l.take(1)) {
            return Err(rate_limited(&key.name, "requests_per_minute", wait));
        }
        Ok(())
    }

    /// Per offer (model index, offer index): may it take one more request of
    /// `expected_tokens` input tokens now? Consumes from the offer's quota when it
    /// answers `Ok`, and nothing when it refuses.
    pub fn offer_available(
        &self,
        model: usize,
        offer: usize,
        expected_tokens: u32,
    ) -> Result<(), LimitRefusal> {
        let Some(m) = self.models.get(model) else {
            return Ok(());
        };
        let Some(OfferLimits { quota: Some(q), .. }) = m.offers.get(offer) else {
            return Ok(());
        };
        q.admit(expected_tokens)
            .map_err(|w| quota_exhausted(&m.name, offer, w.limit.describe(), w.wait))
    }

    /// Before routing: would `expected_cost` overrun the key's or its team's budget for
    /// the UTC day or calendar month of `now`? Refuses once a budget is spent, too.
    pub fn check_budget(
        &self,
        key_index: usize,
        expected_cost: Decimal,
        now: DateTime<Utc>,
    ) -> Result<(), LimitRefusal> {
        let Some(key) = self.keys.get(key_index) else {
            return Ok(());
        };
        if let Some(Err(e)) = key.budget.as_ref().map(|a| a.check(expected_cost, now)) {
            return Err(budget_exceeded(
                &format!("key {:?}", key.name),
                &e,
                expected_cost,
                now,
            ));
        }
        let team = key.team.and_then(|t| self.teams.get(t));
        if let Some(team) = team {
            if let Some(Err(e)) = team.budget.as_ref().map(|a| a.check(expected_cost, now)) {
                let who = format!("team {:?} of key {:?}", team.name, key.name);
                return Err(budget_exceeded(&who, &e, expected_cost, now));
            }
        }
        Ok(())
    }

    /// After the request: charge the real cost (`None`: unpriced, nothing to charge)
    /// to the key's and its team's budgets in the day of `at`, and the real tokens to
    /// the key's tokens per minute, where over-use makes its later requests wait.
    /// Pass the ledger record's `created_at` as `at`, so a restart's rebuild agrees.
    /// With Redis, the charge is queued for one background task and never waits.
    pub fn charge(&self, key_index: usize, cost: Option<Decimal>, tokens: u64, at: DateTime<Utc>) {
        if let Some(backend) = &self.backend {
            return self.charge_shared(backend, key_index, cost, tokens, at);
        }
        let Some(key) = self.keys.get(key_index) else {
            return;
        };
        if let Some(tpm) = &key.tokens_per_minute {
            tpm.charge(tokens);
        }
        let Some(cost) = cost else {
            return;
        };
        if let Some(account) = &key.budget {
            account.charge(cost, at);
        }
        if let Some(account) = self.team_account(key) {
            account.charge(cost, at);
        }
    }

    /// At start-up, before serving: set every key's and team's spend for the day and
    /// month of `now` to what the ledger records (by key name, so a team's spend is
    /// that of its keys as configured now). Replaces, not adds to, what was tracked.
    /// Does nothing with Redis, whose spend is already shared and outlives restarts.
    pub async fn rebuild_from_ledger(
        &self,
        ledger: &crate::ledger::LedgerStore,
        now: DateTime<Utc>,
    ) -> Result<(), LimitsError> {
        if self.backend.is_some() {
            return Ok(());
        }
        let (from, to) = budget::spend_window(now);
        let rows = ledger.daily_spend(from, to).await?;
        let by_key = budget::spend_by_key(&rows, now)?;
        for key in &self.keys {
            if let Some(account) = &key.budget {
                budget::restore(account, by_key.get(&key.name).into_iter(), now);
            }
        }
        for (t, team) in self.teams.iter().enumerate() {
            if let Some(account) = &team.budget {
                let members = self
                    .keys
                    .iter()
                    .filter(|k| k.team == Some(t))
                    .filter_map(|k| by_key.get(&k.name));
                budget::restore(account, members, now);
            }
        }
        Ok(())
    }

    fn team_account(&self, key: &KeyLimits) -> Option<&Arc<Account>> {
        key.team
            .and_then(|t| self.teams.get(t))
            .and_then(|t| t.budget.as_ref())
    }
}

/// Whole seconds, rounded up.
fn secs(d: Duration) -> u64 {
    d.as_secs().saturating_add(u64::from(d.subsec_nanos() > 0))
}

fn rate_limited(key: &str, limit: &str, wait: Option<Duration>) -> LimitRefusal {
    let retry_after = wait.unwrap_or(Duration::MAX);
    LimitRefusal {
        kind: RefusalKind::RateLimited,
        retry_after,
        message: format!(
            "key {key:?} is over its rate_limit.{limit}; retry in {}s, or ask an operator \
             to raise it.",
            secs(retry_after)
        ),
    }
}

fn quota_exhausted(model: &str, offer: usize, limit: &str, wait: Option<Duration>) -> LimitRefusal {
    let retry_after = wait.unwrap_or(Duration::MAX);
    let when = match wait {
        Some(_) => format!("it frees up in {}s", secs(retry_after)),
        None => "this request alone exceeds it, so it never fits".to_owned(),
    };
    LimitRefusal {
        kind: RefusalKind::QuotaExhausted,
        retry_after,
        message: format!(
            "offer {offer} of model {model:?} has used its upstream quota of {limit}; {when}. \
             Retry later, or configure another offer for this model."
        ),
    }
}

fn budget_exceeded(who: &str, e: &Exceeded, expected: Decimal, now: DateTime<Utc>) -> LimitRefusal {
    let expected = if expected > Decimal::ZERO {
        format!(
            " and this request is expected to cost ${}",
            expected.normalize()
        )
    } else {
        String::new()
    };
    LimitRefusal {
        kind: RefusalKind::BudgetExceeded,
        retry_after: budget::until(e.resets_at, now),
        message: format!(
            "{who} {}{expected}. The budget resets at {}; retry then, or ask an operator \
             to raise budget.{}.",
            e.describe(),
            e.resets_at.to_rfc3339_opts(SecondsFormat::Secs, true),
            e.period.config_key()
        ),
    }
}
