//! The Redis side of shared limits: one multiplexed, self-reconnecting connection, the
//! Lua scripts that decide and update rate limiters atomically, budget spend as
//! integer pico-dollars, and the one background task that applies charges. Knows
//! nothing of keys' or offers' configuration; `shared` says which state to touch.
//!
//! Redis is the one clock (`TIME` inside the scripts), so replicas whose clocks differ
//! still enforce one limit; budget windows are named by the UTC day and month of the
//! request, as the in-process budgets are.

use std::time::Duration;

use chrono::{DateTime, Utc};
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{RedisError, Script};
use rust_decimal::{Decimal, RoundingStrategy};
use tokio::sync::mpsc;

use crate::config::limits::SharedLimitsSettings;

/// How long a request may wait for Redis before `on_redis_error` decides instead.
const TIMEOUT: Duration = Duration::from_secs(1);
/// Charges waiting for the background task; past it they are dropped and counted.
const CHARGE_QUEUE: usize = 4096;
/// Budget windows outlive their period by this much, then Redis forgets them.
const DAY_TTL_SECS: i64 = 2 * 24 * 60 * 60;
const MONTH_TTL_SECS: i64 = 33 * 24 * 60 * 60;
/// Pico-dollars per dollar: the unit budgets are summed in.
const PICO_SCALE: u32 = 12;

const CHARGE_TOKENS: &str = "
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local next_tat = tat + tonumber(ARGV[1]) * tonumber(ARGV[2])
redis.call('SET', KEYS[1], string.format('%.0f', next_tat), 'PX', math.ceil((next_tat - now) / 1000) + 1000)
return 0
";

/// One limiter of an atomic decision.
#[derive(Debug, Clone)]
pub(super) enum Limiter {
    /// GCRA of `per_minute` cells a minute: consume `n` if everything agrees.
    Take {
        key: String,
        per_minute: u32,
        n: u64,
    },
    /// GCRA that is only asked, never consumed from.
    Peek {
        key: String,
        per_minute: u32,
        n: u64,
    },
    /// At most `max` admissions in any rolling 24 hours.
    Day { key: String, max: u32 },
}

/// Which limiter (index into the slice given) refused and for how long (`None`: never).
pub(super) type Refused = Option<(usize, Option<Duration>)>;

/// A finished request's charge: real tokens against a GCRA, cost against budgets.
#[derive(Debug)]
pub(super) struct Charge {
    /// `(state key, per_minute)` of the key's tokens per minute, and the tokens.
    pub(super) tokens: Option<(String, u32, u64)>,
    /// Budget account keys (without window suffix) and the cost in pico-dollars.
    pub(super) accounts: Vec<String>,
    pub(super) pico: i64,
    pub(super) at: DateTime<Utc>,
}

/// The connection and what it needs; cheap to clone.
#[derive(Clone)]
pub(super) struct Store {
    conn: ConnectionManager,
    pub(super) prefix: String,
    limit: Script,
    charges: mpsc::Sender<Charge>,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

impl Store {
    /// Connect lazily (an unreachable Redis does not stop start-up; requests then get
    /// `on_redis_error`) and start the charge task, which ends when every `Store`
    /// clone is dropped. Needs a tokio runtime.
    pub(super) fn connect(settings: &SharedLimitsSettings) -> Result<Self, RedisError> {
        let client = client(settings)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1)
            .set_max_delay(TIMEOUT);
        let conn = client.get_connection_manager_lazy(config)?;
        let (charges, rx) = mpsc::channel(CHARGE_QUEUE);
        let store = Self {
            conn,
            prefix: settings.key_prefix.clone(),
            limit: Script::new(include_str!("limit.lua")),
            charges,
        };
        tokio::spawn(apply_charges(store.conn.clone(), rx));
        Ok(store)
    }

    /// Decide `limiters` as one atomic step: all admit and consume, or nothing
    /// changes and the longest wait is reported.
    pub(super) async fn decide(&self, limiters: &[Limiter]) -> Result<Refused, RedisError> {
        let mut call = self.limit.prepare_invoke();
        for l in limiters {
            let (key, kind, a, b, n) = match l {
                Limiter::Take { key, per_minute, n } => (
                    key,
                    "take",
                    cell_us(*per_minute),
                    *per_minute,
                    n.to_string(),
                ),
                Limiter::Peek { key, per_minute, n } => (
                    key,
                    "peek",
                    cell_us(*per_minute),
                    *per_minute,
                    n.to_string(),
                ),
                Limiter::Day { key, max } => (
                    key,
                    "window",
                    86_400_000_000,
                    *max,
                    uuid::Uuid::now_v7().to_string(),
                ),
            };
            call.key(key).arg(kind).arg(a).arg(b).arg(n);
        }
        let mut conn = self.conn.clone();
        let (which, wait): (i64, i64) = timed(call.invoke_async(&mut conn)).await?;
        let Some(index) = usize::try_from(which).ok().and_then(|w| w.checked_sub(1)) else {
            return Ok(None);
        };
        let wait = u64::try_from(wait).ok().map(Duration::from_micros);
        Ok(Some((index, wait)))
    }

    /// Spend of `account` in the UTC day and calendar month of `now`.
    pub(super) async fn spent(
        &self,
        account: &str,
        now: DateTime<Utc>,
    ) -> Result<(Decimal, Decimal), RedisError> {
        let (day, month) = windows(account, now);
        let mut conn = self.conn.clone();
        let (d, m): (Option<i64>, Option<i64>) = timed(
            redis::cmd("MGET")
                .arg(day)
                .arg(month)
                .query_async(&mut conn),
        )
        .await?;
        Ok((from_pico(d.unwrap_or(0)), from_pico(m.unwrap_or(0))))
    }

    /// Queue a charge without waiting; a full queue drops it, counted and logged.
    pub(super) fn charge(&self, charge: Charge) {
        if self.charges.try_send(charge).is_err() {
            crate::telemetry::metrics::record_limits_backend_error(false);
            tracing::error!(
                "limits charge queue full; a request's tokens and cost were not charged to Redis"
            );
        }
    }
}

/// GCRA's emission interval in microseconds for `per_minute` cells a minute.
fn cell_us(per_minute: u32) -> u64 {
    60_000_000 / u64::from(per_minute.max(1))
}

/// Redis calls give up after [`TIMEOUT`] even when the connection hangs.
async fn timed<T>(
    f: impl std::future::Future<Output = Result<T, RedisError>>,
) -> Result<T, RedisError> {
    tokio::time::timeout(TIMEOUT, f).await.unwrap_or_else(|_| {
        Err(RedisError::from(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            "redis did not answer in time",
        )))
    })
}

/// The day's and the month's spend keys of `account`.
fn windows(account: &str, at: DateTime<Utc>) -> (String, String) {
    (
        format!("{account}:day:{}", at.format("%Y-%m-%d")),
        format!("{account}:month:{}", at.format("%Y-%m")),
    )
}

/// Dollars as integer pico-dollars (1e-12 USD), which Redis adds exactly with INCRBY.
/// Exact for today's costs: catalog prices are per 1M tokens with at most 6 decimals,
/// so a price per token has at most 12 and tokens are whole, so a request's cost has
/// at most 12 decimals. A finer cost is rounded *up* (a budget may refuse a hair
/// early, never overspend) and logged. `i64` holds 9.2 million dollars per window.
pub(super) fn to_pico(usd: Decimal) -> i64 {
    let rounded = usd.round_dp_with_strategy(PICO_SCALE, RoundingStrategy::AwayFromZero);
    if rounded != usd {
        tracing::warn!(cost = %usd, "cost finer than 1e-12 USD rounded up for the shared budget");
    }
    let mut pico = rounded;
    pico.rescale(PICO_SCALE);
    i64::try_from(pico.mantissa()).unwrap_or(i64::MAX)
}

fn from_pico(pico: i64) -> Decimal {
    Decimal::new(pico, PICO_SCALE).normalize()
}

/// The charge task: one at a time, in arrival order, each in one round trip.
async fn apply_charges(mut conn: ConnectionManager, mut rx: mpsc::Receiver<Charge>) {
    let tokens = Script::new(CHARGE_TOKENS);
    while let Some(c) = rx.recv().await {
        if let Some((key, per_minute, n)) = &c.tokens {
            let mut call = tokens.key(key);
            call.arg(cell_us(*per_minute)).arg(*n);
            let r: Result<i64, _> = timed(call.invoke_async(&mut conn)).await;
            if let Err(e) = r {
                lost(&e);
            }
        }
        if c.accounts.is_empty() || c.pico == 0 {
            continue;
        }
        let mut pipe = redis::pipe();
        pipe.atomic();
        for account in &c.accounts {
            let (day, month) = windows(account, c.at);
            pipe.incr(&day, c.pico)
                .ignore()
                .expire(&day, DAY_TTL_SECS)
                .ignore();
            pipe.incr(&month, c.pico)
                .ignore()
                .expire(&month, MONTH_TTL_SECS)
                .ignore();
        }
        let r: Result<(), _> = timed(pipe.query_async(&mut conn)).await;
        if let Err(e) = r {
            lost(&e);
        }
    }
}

fn lost(e: &RedisError) {
    crate::telemetry::metrics::record_limits_backend_error(false);
    tracing::error!(error = %e, "could not charge a request to the shared limits in Redis; its use went uncounted");
}

/// The Redis client for `settings`: TLS for a `rediss://` URL, trusting the
/// configured CA file instead of the built-in roots when there is one.
fn client(settings: &SharedLimitsSettings) -> Result<redis::Client, redis::RedisError> {
    let url = settings.redis_url.expose();
    match &settings.redis_ca_pem {
        Some(pem) => redis::Client::build_with_tls(
            url,
            redis::TlsCertificates {
                client_tls: None,
                root_cert: Some(pem.clone()),
            },
        ),
        None => redis::Client::open(url),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn pico_dollars_are_exact_to_twelve_decimals_and_round_finer_costs_up() {
        assert_eq!(to_pico(dec!(0.170595)), 170_595_000_000);
        assert_eq!(to_pico(dec!(0.000000000001)), 1);
        assert_eq!(
            from_pico(to_pico(dec!(12.345678901234))),
            dec!(12.345678901234)
        );
        assert_eq!(to_pico(dec!(0.0000000000001)), 1, "never undercounts spend");
        assert_eq!(to_pico(Decimal::ZERO), 0);
    }
}
