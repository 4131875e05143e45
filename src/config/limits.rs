//! The `[limits]` section: where rate limits, quotas and budgets are kept. Absent, they
//! live in each process; with `redis_url`, every replica pointing at the same Redis
//! (and `key_prefix`) enforces one shared set. Only shapes and checks the values;
//! `limits` connects and enforces.

use serde::Deserialize;

use super::secret::Secret;

/// `[limits]` as written.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawLimits {
    /// `redis://host:port/db`, or `env:NAME` holding one; `None` keeps limits in-process.
    pub redis_url: Option<String>,
    pub key_prefix: String,
    pub on_redis_error: RawOnRedisError,
}

impl Default for RawLimits {
    fn default() -> Self {
        Self {
            redis_url: None,
            key_prefix: "tollgate:".into(),
            on_redis_error: RawOnRedisError::default(),
        }
    }
}

/// `[limits] on_redis_error` as written.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawOnRedisError {
    pub rate_limits: OnRedisError,
    pub budgets: OnRedisError,
}

impl Default for RawOnRedisError {
    fn default() -> Self {
        Self {
            rate_limits: OnRedisError::Allow,
            budgets: OnRedisError::Deny,
        }
    }
}

/// What a limit decides when Redis cannot be asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnRedisError {
    /// Let the request through (fail open).
    Allow,
    /// Refuse the request (fail closed).
    Deny,
}

/// Validated Redis backend of the limits.
#[derive(Debug, Clone)]
pub struct SharedLimitsSettings {
    /// The connection URL; a secret because it may carry a password.
    pub redis_url: Secret,
    /// Prepended to every Redis key tollgate writes.
    pub key_prefix: String,
    /// For key rate limits and offer quotas.
    pub on_rate_limit_error: OnRedisError,
    /// For key and team budgets.
    pub on_budget_error: OnRedisError,
}

/// Validate `[limits]`; `None` when no `redis_url` is set (or it is invalid, reported
/// through `push`).
pub(super) fn shared_limits(
    raw: &RawLimits,
    env: &dyn Fn(&str) -> Option<String>,
    push: &mut dyn FnMut(String, String),
) -> Option<SharedLimitsSettings> {
    let url = super::urls::connection_url(
        "limits.redis_url",
        raw.redis_url.as_deref(),
        &["redis://"],
        env,
        push,
    )?;
    if raw.key_prefix.is_empty() {
        push(
            "limits.key_prefix".into(),
            "must not be empty; replicas that share limits share a prefix".into(),
        );
    }
    Some(SharedLimitsSettings {
        redis_url: url,
        key_prefix: raw.key_prefix.clone(),
        on_rate_limit_error: raw.on_redis_error.rate_limits,
        on_budget_error: raw.on_redis_error.budgets,
    })
}
