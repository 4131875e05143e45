//! The request path's limit checks, awaited: in-process limits answer at once, and
//! with `[limits] redis_url` the same decisions are taken in Redis so that every
//! replica sharing it enforces one limit. When Redis cannot answer, `on_redis_error`
//! decides (by default: rate limits and quotas allow, budgets deny), and the
//! decision is counted in `tollgate_limits_backend_errors_total`.
//!
//! Redis state, under `key_prefix`: `key:<name>:rpm|tpm` and `offer:<model>:<provider
//! id>/<upstream model>:rpm|tpm|rpd` (GCRA arrival times, and for the day a sorted set of admission
//! times: a rolling 24 hours as in-process), `budget:key|team:<name>:day:<YYYY-MM-DD>`
//! and `...:month:<YYYY-MM>` (pico-dollars spent, expiring after their period).

use std::time::Duration;

use chrono::{DateTime, Utc};
use rust_decimal::Decimal;

use super::budget::{self, Account};
use super::store::{Limiter, Refused, Store};
use super::{rate_limited, LimitRefusal, Limits, RefusalKind};
use crate::config::limits::{OnRedisError, SharedLimitsSettings};

/// Shared limits: the store plus what to decide without it.
#[derive(Debug)]
pub(super) struct Backend {
    pub(super) store: Store,
    pub(super) on_rate_limit_error: OnRedisError,
    pub(super) on_budget_error: OnRedisError,
}

impl Backend {
    pub(super) fn connect(settings: &SharedLimitsSettings) -> Result<Self, redis::RedisError> {
        Ok(Self {
            store: Store::connect(settings)?,
            on_rate_limit_error: settings.on_rate_limit_error,
            on_budget_error: settings.on_budget_error,
        })
    }

    /// `on_redis_error` for a rate limit: `Ok` (allow) or the refusal `deny` builds.
    fn rate_error(
        &self,
        e: &redis::RedisError,
        deny: impl FnOnce() -> LimitRefusal,
    ) -> Result<(), LimitRefusal> {
        let denied = self.on_rate_limit_error == OnRedisError::Deny;
        crate::telemetry::metrics::record_limits_backend_error(denied);
        tracing::warn!(error = %e, denied, "shared rate limits unavailable; on_redis_error decides");
        if denied {
            Err(deny())
        } else {
            Ok(())
        }
    }

    pub(super) fn key(&self, name: &str, limit: &str) -> String {
        format!("{}key:{name}:{limit}", self.store.prefix)
    }

    pub(super) fn account(&self, kind: &str, name: &str) -> String {
        format!("{}budget:{kind}:{name}", self.store.prefix)
    }
}

const UNAVAILABLE_RETRY: Duration = Duration::from_secs(5);

impl Limits {
    /// [`Limits::admit_request`], shared through Redis when configured.
    pub async fn admit_request_async(&self, key_index: usize) -> Result<(), LimitRefusal> {
        let Some(backend) = &self.backend else {
            return self.admit_request(key_index);
        };
        let Some(key) = self.keys.get(key_index) else {
            return Ok(());
        };
        let mut limiters = Vec::new();
        let mut names = Vec::new();
        // Tokens are only peeked: a refusal there must not spend a request.
        if let Some(tpm) = &key.tokens_per_minute {
            limiters.push(Limiter::Peek {
                key: backend.key(&key.name, "tpm"),
                per_minute: tpm.limit(),
                n: 1,
            });
            names.push("tokens_per_minute");
        }
        if let Some(rpm) = &key.requests_per_minute {
            limiters.push(Limiter::Take {
                key: backend.key(&key.name, "rpm"),
                per_minute: rpm.limit(),
                n: 1,
            });
            names.push("requests_per_minute");
        }
        if limiters.is_empty() {
            return Ok(());
        }
        match backend.store.decide(&limiters).await {
            Ok(refused) => match refused_by(refused, &names) {
                Some((limit, wait)) => Err(rate_limited(&key.name, limit, wait)),
                None => Ok(()),
            },
            Err(e) => {
                backend.rate_error(&e, || unavailable(RefusalKind::RateLimited, "rate limits"))
            }
        }
    }

    /// [`Limits::offer_available`], shared through Redis when configured.
    pub async fn offer_available_async(
        &self,
        model: usize,
        offer: usize,
        expected_tokens: u32,
    ) -> Result<(), LimitRefusal> {
        let Some(backend) = &self.backend else {
            return self.offer_available(model, offer, expected_tokens);
        };
        let Some(m) = self.models.get(model) else {
            return Ok(());
        };
        let Some(super::OfferLimits {
            quota: Some(q),
            identity,
        }) = m.offers.get(offer)
        else {
            return Ok(());
        };
        let (rpm, tpm, rpd) = q.limits();
        // By identity, not index: a reload that inserts an offer must not hand this
        // offer's state to another.
        let key = |limit: &str| {
            format!(
                "{}offer:{}:{identity}:{limit}",
                backend.store.prefix, m.name
            )
        };
        let mut limiters = Vec::new();
        let mut names = Vec::new();
        if let Some(max) = rpd {
            limiters.push(Limiter::Day {
                key: key("rpd"),
                max,
            });
            names.push("requests per day");
        }
        if let Some(per_minute) = rpm {
            limiters.push(Limiter::Take {
                key: key("rpm"),
                per_minute,
                n: 1,
            });
            names.push("requests per minute");
        }
        if let Some(per_minute) = tpm {
            let n = u64::from(expected_tokens);
            limiters.push(Limiter::Take {
                key: key("tpm"),
                per_minute,
                n,
            });
            names.push("tokens per minute");
        }
        match backend.store.decide(&limiters).await {
            Ok(refused) => match refused_by(refused, &names) {
                Some((limit, wait)) => Err(super::quota_exhausted(&m.name, offer, limit, wait)),
                None => Ok(()),
            },
            Err(e) => backend.rate_error(&e, || {
                unavailable(RefusalKind::QuotaExhausted, "upstream quotas")
            }),
        }
    }

    /// [`Limits::check_budget`], shared through Redis when configured.
    pub async fn check_budget_async(
        &self,
        key_index: usize,
        expected_cost: Decimal,
        now: DateTime<Utc>,
    ) -> Result<(), LimitRefusal> {
        let Some(backend) = &self.backend else {
            return self.check_budget(key_index, expected_cost, now);
        };
        let Some(key) = self.keys.get(key_index) else {
            return Ok(());
        };
        let team = key.team.and_then(|t| self.teams.get(t));
        let mut accounts: Vec<(String, String, &Account)> = Vec::new();
        if let Some(a) = &key.budget {
            accounts.push((
                format!("key {:?}", key.name),
                backend.account("key", &key.name),
                a,
            ));
        }
        if let Some((team, a)) = team.and_then(|t| t.budget.as_ref().map(|a| (t, a))) {
            let who = format!("team {:?} of key {:?}", team.name, key.name);
            accounts.push((who, backend.account("team", &team.name), a));
        }
        for (who, redis_key, account) in accounts {
            let (day, month) = match backend.store.spent(&redis_key, now).await {
                Ok(spent) => spent,
                Err(e) => {
                    let denied = backend.on_budget_error == OnRedisError::Deny;
                    crate::telemetry::metrics::record_limits_backend_error(denied);
                    tracing::warn!(error = %e, denied, "shared budgets unavailable; on_redis_error decides");
                    if denied {
                        return Err(unavailable(RefusalKind::BudgetExceeded, "budgets"));
                    }
                    continue;
                }
            };
            if let Err(e) = budget::check_spent(account.budget(), day, month, expected_cost, now) {
                return Err(super::budget_exceeded(&who, &e, expected_cost, now));
            }
        }
        Ok(())
    }

    /// [`Limits::charge`] for shared limits: queued for the one charge task.
    pub(super) fn charge_shared(
        &self,
        backend: &Backend,
        key_index: usize,
        cost: Option<Decimal>,
        tokens: u64,
        at: DateTime<Utc>,
    ) {
        let Some(key) = self.keys.get(key_index) else {
            return;
        };
        let tokens = key
            .tokens_per_minute
            .as_ref()
            .filter(|_| tokens > 0)
            .map(|tpm| (backend.key(&key.name, "tpm"), tpm.limit(), tokens));
        let mut accounts = Vec::new();
        if cost.is_some() {
            if key.budget.is_some() {
                accounts.push(backend.account("key", &key.name));
            }
            if let Some(t) = key.team.and_then(|t| self.teams.get(t)) {
                if t.budget.is_some() {
                    accounts.push(backend.account("team", &t.name));
                }
            }
        }
        if tokens.is_none() && accounts.is_empty() {
            return;
        }
        let pico = cost.map_or(0, super::store::to_pico);
        backend.store.charge(super::store::Charge {
            tokens,
            accounts,
            pico,
            at,
        });
    }
}

/// The refusing limiter's name and wait, from a decision over limiters named `names`.
fn refused_by(
    refused: Refused,
    names: &[&'static str],
) -> Option<(&'static str, Option<Duration>)> {
    let (index, wait) = refused?;
    Some((names.get(index).copied().unwrap_or("limit"), wait))
}

/// The refusal when Redis cannot answer and `on_redis_error` says deny.
fn unavailable(kind: RefusalKind, what: &str) -> LimitRefusal {
    LimitRefusal {
        kind,
        retry_after: UNAVAILABLE_RETRY,
        message: format!(
            "tollgate cannot reach the shared store (Redis) that enforces {what}, and is \
             configured to refuse rather than risk exceeding them \
             (limits.on_redis_error); retry in {}s.",
            UNAVAILABLE_RETRY.as_secs()
        ),
    }
}
