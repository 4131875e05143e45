//! The price audit of every finished request: what the same usage would have cost on
//! the cheapest offer the key's policy allowed and on the cheapest offer anywhere (within
//! the model and its comparison groups), and, for a sample of requests, tollgate's own
//! token counts beside the provider's, feeding the drift metric.
//!
//! Everything that does not depend on the request (candidate offers per model, which of
//! them each key's policy allows) is computed once at start-up, so per request the
//! comparison is a few map lookups, catalog lookups and multiplications. Counting tokens
//! is not done here on the request path: a sampled request (`[metering]
//! audit_sample_rate`, and every request whose provider reported no usage) is handed with
//! its record to the audit thread (`pool`), which counts, fills the record's counted
//! fields and updates drift before the record reaches the ledger; other records carry no
//! counted tokens. Drift totals are atomics: no lock. It does not choose routes.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

mod pool;

use super::facts::RequestFacts;
use crate::catalog::{PriceBook, TokenCounts};
use crate::config::Settings;
use crate::ledger::{Ledger, PricingStatus, UsageRecord, UsageSource};
use crate::pricing::compare::{self, Candidate};
use crate::telemetry::price_metrics;
use crate::tokens::estimate::OutputTokenCounter;
use pool::{AuditJob, AuditPool};

/// The output tollgate saw and counted itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VisibleOutput {
    /// Tokens of the visible text (content, and reasoning when it was visible).
    pub tokens: u64,
    /// Whether reasoning text was among it.
    pub reasoning_visible: bool,
}

impl VisibleOutput {
    /// Read a counter's total.
    pub fn take(counter: &mut OutputTokenCounter) -> Self {
        Self {
            tokens: counter.total(),
            reasoning_visible: counter.saw_reasoning(),
        }
    }
}

/// Per-provider drift totals, fed by the audit thread from sampled records only.
#[derive(Debug)]
pub struct Drift {
    /// (provider id, provider-reported tokens, tollgate-counted tokens), verifiable part only.
    totals: Vec<(String, AtomicU64, AtomicU64)>,
}

impl Drift {
    /// Zero totals for these provider ids.
    pub fn for_providers(ids: &[&str]) -> Self {
        let totals = ids
            .iter()
            .map(|id| ((*id).to_owned(), AtomicU64::new(0), AtomicU64::new(0)))
            .collect();
        Self { totals }
    }

    /// Add an audited record's verifiable tokens and refresh its provider's gauge.
    pub fn record(&self, r: &UsageRecord) {
        let Some((reported, counted)) = r.verifiable_pair() else {
            return;
        };
        let Some(provider) = r.provider.as_deref() else {
            return;
        };
        let Some((_, rep, cnt)) = self.totals.iter().find(|(id, _, _)| id == provider) else {
            return;
        };
        let rep_total = saturating_add(rep, reported);
        let cnt_total = saturating_add(cnt, counted);
        price_metrics::set_drift_ratio(provider, rep_total, cnt_total);
    }
}

/// Precomputed comparison candidates, the drift totals and the audit thread.
#[derive(Debug)]
pub struct Auditor {
    /// Logical model -> every offer compared with it.
    candidates: HashMap<String, Vec<Candidate>>,
    /// Key name -> logical model -> indices into that model's candidates its policy allows.
    allowed: HashMap<String, HashMap<String, Vec<usize>>>,
    drift: Arc<Drift>,
    /// `[metering] audit_sample_rate`.
    sample_rate: f64,
    /// `None` if the audit thread could not start: audits are then dropped and counted.
    pool: Option<AuditPool>,
}

impl Auditor {
    /// Precompute candidates per model and what each key may use among them.
    pub fn new(settings: &Settings) -> Self {
        let candidates: HashMap<String, Vec<Candidate>> = settings
            .models
            .iter()
            .filter_map(|m| Some((m.name.clone(), compare::candidates(settings, &m.name)?)))
            .collect();
        let allowed = settings
            .keys
            .iter()
            .map(|k| {
                let per_model = candidates
                    .iter()
                    .map(|(model, cands)| {
                        let ok = cands
                            .iter()
                            .enumerate()
                            .filter(|(_, c)| {
                                compare::exclusion_of(settings, Some(&k.residency), c).is_none()
                            })
                            .map(|(i, _)| i)
                            .collect();
                        (model.clone(), ok)
                    })
                    .collect();
                (k.name.clone(), per_model)
            })
            .collect();
        let ids: Vec<&str> = settings.providers.iter().map(|p| p.id.as_str()).collect();
        Self {
            candidates,
            allowed,
            drift: Arc::new(Drift::for_providers(&ids)),
            sample_rate: settings.metering.audit_sample_rate,
            pool: AuditPool::start(settings.metering.audit_queue),
        }
    }

    /// Fill in the comparison costs of `record.audit` when the request was billable.
    /// Cheap: no token counting.
    pub fn annotate(&self, prices: &PriceBook, facts: &RequestFacts, record: &mut UsageRecord) {
        if record.pricing != PricingStatus::NotApplicable {
            self.compare(prices, facts, record);
        }
    }

    /// Send `record` to the ledger: at once, or, when its tokens are audited (sampled, or
    /// no provider usage), through the audit thread, which counts them first. With a full
    /// queue the audit is dropped and counted, and the record is written uncounted.
    pub fn dispatch(
        &self,
        ledger: &Ledger,
        facts: &RequestFacts,
        record: UsageRecord,
        visible: Option<VisibleOutput>,
    ) {
        let (Some(served), Some(request)) = (&facts.served, &facts.request) else {
            return ledger.record(record);
        };
        let audited = match record.usage_source {
            UsageSource::None => false,
            UsageSource::Reported => {
                self.sample_rate > 0.0 && rand::random::<f64>() < self.sample_rate
            }
            _ => true,
        };
        if !audited {
            return ledger.record(record);
        }
        let job = AuditJob {
            record: ledger.defer(record),
            request: Arc::clone(request),
            tokenizer: served.tokenizer,
            visible,
            drift: Arc::clone(&self.drift),
        };
        match &self.pool {
            Some(pool) => {
                pool.submit(job);
            }
            None => pool::dropped(job),
        }
    }

    fn compare(&self, prices: &PriceBook, facts: &RequestFacts, r: &mut UsageRecord) {
        let Some(model) = r.logical_model.as_deref() else {
            return;
        };
        let Some(cands) = self.candidates.get(model) else {
            return;
        };
        let allowed = self
            .allowed
            .get(&facts.key_name)
            .and_then(|m| m.get(model))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let tokens = TokenCounts {
            input: r.input_tokens.unwrap_or(0),
            cached_input: r.cached_input_tokens.unwrap_or(0),
            cache_write: r.cache_write_tokens.unwrap_or(0),
            cache_write_1h: r.cache_write_1h_tokens.unwrap_or(0),
            output: r.output_tokens.unwrap_or(0),
            reasoning: r.reasoning_tokens.unwrap_or(0),
        };
        let at = facts.created_at;
        if let Some((cost, offer)) = compare::cheapest(prices, cands.iter(), &tokens, at) {
            r.audit.cheapest_any_cost_usd = Some(cost);
            r.audit.cheapest_any_offer = Some(offer.to_owned());
        }
        let allowed = allowed.iter().filter_map(|&i| cands.get(i));
        if let Some((cost, offer)) = compare::cheapest(prices, allowed, &tokens, at) {
            r.audit.cheapest_allowed_cost_usd = Some(cost);
            r.audit.cheapest_allowed_offer = Some(offer.to_owned());
        }
    }
}

/// Add to a running total without wrapping; returns the new total.
fn saturating_add(cell: &AtomicU64, n: u64) -> u64 {
    let old = cell
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
            Some(t.saturating_add(n))
        })
        .unwrap_or_else(|t| t);
    old.saturating_add(n)
}
