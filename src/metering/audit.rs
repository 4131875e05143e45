//! The price audit of every finished request: what the same usage would have cost on
//! the cheapest offer the key's policy allowed and on the cheapest offer anywhere (within
//! the model and its comparison groups), and tollgate's own token counts beside the
//! provider's, feeding the drift metric.
//!
//! Everything that does not depend on the request (candidate offers per model, which of
//! them each key's policy allows) is computed once at start-up, so per request this is a
//! few map lookups, catalog lookups and multiplications, plus counting the prompt. Drift
//! totals are atomics: no lock on the request path. It does not choose routes or write
//! the ledger (`finalize` enqueues the record it annotates).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::estimate::OutputTokenCounter;
use super::finalize::RequestFacts;
use crate::config::Settings;
use crate::ledger::{PricingStatus, UsageRecord, UsageSource};
use crate::pricing::compare::{self, Candidate};
use crate::pricing::{PriceBook, TokenCounts};
use crate::telemetry::price_metrics;

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

/// Precomputed comparison candidates and per-provider drift totals.
#[derive(Debug)]
pub struct Auditor {
    /// Logical model -> every offer compared with it.
    candidates: HashMap<String, Vec<Candidate>>,
    /// Key name -> logical model -> indices into that model's candidates its policy allows.
    allowed: HashMap<String, HashMap<String, Vec<usize>>>,
    /// (provider id, provider-reported tokens, tollgate-counted tokens), verifiable part only.
    drift: Vec<(String, AtomicU64, AtomicU64)>,
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
        let drift = settings
            .providers
            .iter()
            .map(|p| (p.id.clone(), AtomicU64::new(0), AtomicU64::new(0)))
            .collect();
        Self {
            candidates,
            allowed,
            drift,
        }
    }

    /// Fill in `record.audit`: comparison costs when the request was billable, counts when
    /// an upstream answered; then update the drift metric from reported usage.
    pub fn annotate(
        &self,
        prices: &PriceBook,
        facts: &RequestFacts,
        record: &mut UsageRecord,
        visible: Option<VisibleOutput>,
    ) {
        let billable = record.pricing != PricingStatus::NotApplicable;
        if billable {
            self.compare(prices, facts, record);
        }
        let (Some(served), Some(request)) = (&facts.served, &facts.request) else {
            return;
        };
        if record.usage_source == UsageSource::None {
            return;
        }
        let counted_input = request.prompt_tokens(served.tokenizer);
        let audit = &mut record.audit;
        audit.counted_input_tokens = Some(counted_input);
        if let Some(v) = visible {
            audit.counted_output_tokens = Some(v.tokens);
            let hidden_reasoning = record.reasoning_tokens.unwrap_or(0) > 0 && !v.reasoning_visible;
            audit.output_verifiable = Some(!hidden_reasoning);
        }
        if record.usage_source == UsageSource::Reported {
            self.record_drift(record);
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

    fn record_drift(&self, r: &UsageRecord) {
        let Some((reported, counted)) = verifiable_pair(r) else {
            return;
        };
        let Some(provider) = r.provider.as_deref() else {
            return;
        };
        let Some((_, rep, cnt)) = self.drift.iter().find(|(id, _, _)| id == provider) else {
            return;
        };
        let rep_total = saturating_add(rep, reported);
        let cnt_total = saturating_add(cnt, counted);
        price_metrics::set_drift_ratio(provider, rep_total, cnt_total);
    }
}

/// (reported, counted) tokens of the part of a record tollgate can verify: the prompt, plus
/// the output when all of it was visible, or the output minus hidden reasoning otherwise.
pub fn verifiable_pair(r: &UsageRecord) -> Option<(u64, u64)> {
    let counted_in = r.audit.counted_input_tokens?;
    let reported_in = r.input_tokens?;
    let (reported_out, counted_out) = match (r.output_tokens, r.audit.counted_output_tokens) {
        (Some(out), Some(counted)) => {
            let visible_part = if r.audit.output_verifiable == Some(false) {
                out.saturating_sub(r.reasoning_tokens.unwrap_or(0))
            } else {
                out
            };
            (visible_part, counted)
        }
        _ => (0, 0),
    };
    Some((
        reported_in.saturating_add(reported_out),
        counted_in.saturating_add(counted_out),
    ))
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
