//! An upstream offer's quota (what the provider account allows, e.g. GitHub Models'
//! free tier): requests and tokens per minute as governor GCRA limiters, requests per
//! day as a rolling 24-hour window. Owns only the arithmetic of one offer; routing
//! decides what to do with a refusal.

use std::collections::VecDeque;
use std::num::NonZeroU32;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

use super::gcra::{Gcra, TokioClock, Wait};
use crate::config::Quota;

const DAY: Duration = Duration::from_secs(24 * 60 * 60);

/// Which part of a quota refused, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum QuotaLimit {
    RequestsPerMinute,
    RequestsPerDay,
    TokensPerMinute,
}

impl QuotaLimit {
    pub(super) fn describe(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests per minute",
            Self::RequestsPerDay => "requests per day",
            Self::TokensPerMinute => "tokens per minute",
        }
    }
}

/// The quota's refusal: the limit and how long until the request would fit (`None`:
/// never, the request alone is larger than the tokens-per-minute burst).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct QuotaWait {
    pub(super) limit: QuotaLimit,
    pub(super) wait: Option<Duration>,
}

/// One offer's limiters. The mutex makes "every limiter agrees, then all consume" one
/// step, so a refusal consumes nothing; it is held for a few comparisons only.
#[derive(Debug)]
pub(super) struct OfferQuota {
    requests_per_minute: Option<Gcra>,
    tokens_per_minute: Option<Gcra>,
    requests_per_day: Option<NonZeroU32>,
    /// Start times of the last `requests_per_day` admitted requests, oldest first.
    /// Tokio instants rather than limiter-clock readings, so that a reload's new
    /// quota can take them over as they are.
    day: Mutex<VecDeque<Instant>>,
}

impl OfferQuota {
    /// `None` when the offer has no quota, so unlimited offers cost nothing.
    pub(super) fn new(quota: &Quota, clock: TokioClock) -> Option<Self> {
        let gcra = |n: Option<u32>| {
            n.and_then(NonZeroU32::new)
                .map(|n| Gcra::per_minute(n, clock))
        };
        let out = Self {
            requests_per_minute: gcra(quota.requests_per_minute),
            tokens_per_minute: gcra(quota.tokens_per_minute),
            requests_per_day: quota.requests_per_day.and_then(NonZeroU32::new),
            day: Mutex::new(VecDeque::new()),
        };
        let limited = out.requests_per_minute.is_some()
            || out.tokens_per_minute.is_some()
            || out.requests_per_day.is_some();
        limited.then_some(out)
    }

    /// Take over `old`'s state (the same offer's quota in the previous configuration):
    /// each per-minute limiter that both have carries its cells in use
    /// ([`Gcra::carry_from`]); the day keeps its admissions (the newest ones when the
    /// new limit is lower). Call on a fresh quota, before use.
    pub(super) fn carry_from(&self, old: &OfferQuota) {
        let pairs = [
            (&self.requests_per_minute, &old.requests_per_minute),
            (&self.tokens_per_minute, &old.tokens_per_minute),
        ];
        for (new, old) in pairs {
            if let (Some(new), Some(old)) = (new, old) {
                new.carry_from(old);
            }
        }
        let Some(max) = self.requests_per_day else {
            return;
        };
        let old_day = old.day.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = usize::try_from(max.get()).unwrap_or(usize::MAX);
        let mut day = self.day.lock().unwrap_or_else(PoisonError::into_inner);
        *day = old_day
            .iter()
            .skip(old_day.len().saturating_sub(keep))
            .copied()
            .collect();
    }

    /// Requests per minute, tokens per minute and requests per day, as configured.
    pub(super) fn limits(&self) -> (Option<u32>, Option<u32>, Option<u32>) {
        (
            self.requests_per_minute.as_ref().map(Gcra::limit),
            self.tokens_per_minute.as_ref().map(Gcra::limit),
            self.requests_per_day.map(NonZeroU32::get),
        )
    }

    /// Admit one request of `tokens` expected tokens, consuming from every limiter,
    /// or refuse with the longest wait among the limiters that refuse.
    ///
    /// The day is a rolling 24 hours, not a GCRA: a GCRA of 8 a day would refill one
    /// request every 3 hours and so let 16 through in some 24 hours, which is exactly
    /// the upstream 429 this quota exists to avoid. Rolling is also never looser than
    /// a provider resetting at midnight.
    pub(super) fn admit(&self, tokens: u32) -> Result<(), QuotaWait> {
        let mut day = self.day.lock().unwrap_or_else(PoisonError::into_inner);
        let now = Instant::now();
        let mut refusal: Option<QuotaWait> = None;
        // `None` (never fits) outranks any finite wait.
        let mut refuse = |limit, Wait(wait): Wait| {
            let rank = |w: Option<Duration>| w.unwrap_or(Duration::MAX);
            if refusal.is_none_or(|r| rank(wait) > rank(r.wait)) {
                refusal = Some(QuotaWait { limit, wait });
            }
        };
        if let Some(max) = self.requests_per_day {
            if day.len() >= usize::try_from(max.get()).unwrap_or(usize::MAX) {
                let oldest = day.front().copied().unwrap_or(now);
                let frees_at = oldest + DAY;
                if frees_at > now {
                    refuse(QuotaLimit::RequestsPerDay, Wait(Some(frees_at - now)));
                }
            }
        }
        if let Some(rpm) = &self.requests_per_minute {
            if let Err(wait) = rpm.peek(1) {
                refuse(QuotaLimit::RequestsPerMinute, wait);
            }
        }
        if let Some(tpm) = &self.tokens_per_minute {
            if let Err(wait) = tpm.peek(tokens) {
                refuse(QuotaLimit::TokensPerMinute, wait);
            }
        }
        if let Some(refusal) = refusal {
            return Err(refusal);
        }
        // Every peek passed under the lock, nothing else takes from these limiters,
        // and time only moves forward: these takes succeed.
        if let Some(rpm) = &self.requests_per_minute {
            let _ = rpm.take(1);
        }
        if let Some(tpm) = &self.tokens_per_minute {
            let _ = tpm.take(tokens);
        }
        if let Some(max) = self.requests_per_day {
            day.push_back(now);
            while day.len() > usize::try_from(max.get()).unwrap_or(usize::MAX) {
                day.pop_front();
            }
        }
        Ok(())
    }
}
