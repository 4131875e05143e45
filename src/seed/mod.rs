//! Synthetic ledgers for benchmarks and tests (`tollgate ledger seed`): realistic records
//! drawn from the configured models, providers and prices, spread evenly over a window,
//! and written through the ledger's normal batched write path (`LedgerSink::write_batch`),
//! so whatever the sink maintains beside the records is maintained too.
//!
//! Distributions (per record, from one seeded RNG, so a seed always gives the same ledger):
//! twenty keys in four teams, Zipf-weighted, each leaning on one model (EU-only keys use EU
//! offers only); the model's first allowed offer 85% of the time, a failover to another
//! otherwise; 45% streams; outcomes: 1% rejected before any provider (429), 0.7% upstream
//! errors (502), 0.3% upstream timeouts (504), 1% of streams cancelled by the client, the
//! rest completed;
//! input tokens log-normal around 900 (30% with a cached part), output log-normal around
//! 250 (a share of it reasoning on reasoning models); 3% estimated usage; time to first
//! byte log-normal around 450 ms, then 8-25 ms per output token. Costs and the
//! cheapest-alternative costs are computed from the catalog at the record's instant, so
//! they are exact decimals. Writing is the caller's (see [`seed`]); generating is pure.

mod catalog;
mod write;

use chrono::{DateTime, Utc};
use rand::distr::Distribution;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::LogNormal;
use serde_json::Value;

pub use catalog::{team_of, EmptyCatalog};
use catalog::{Catalog, Key, Model, Offer};
pub use write::{seed, seed_store, SeedError, BATCH};

use crate::catalog::{cost, PriceBook, TokenCounts};
use crate::config::Settings;
use crate::ledger::{Outcome, PolicyJson, PriceAudit, PricingStatus, UsageRecord, UsageSource};
use crate::pricing::compare;

/// What to generate.
#[derive(Debug, Clone, Copy)]
pub struct SeedOptions {
    /// How many records.
    pub records: u64,
    /// The window's end; records fall in `[end - days, end)`.
    pub end: DateTime<Utc>,
    /// The window's length in days (at least 1).
    pub days: u32,
    /// The RNG seed.
    pub seed: u64,
}

impl SeedOptions {
    /// The window's start.
    pub fn start(&self) -> DateTime<Utc> {
        self.end - chrono::Duration::days(i64::from(self.days.max(1)))
    }
}

/// An endless-until-`records` stream of synthetic records, oldest first.
pub struct Generator {
    catalog: Catalog,
    prices: std::sync::Arc<PriceBook>,
    rng: StdRng,
    start_ms: i64,
    /// Milliseconds between two consecutive records (fractional).
    step_ms: f64,
    next: u64,
    total: u64,
    input: LogNormal<f64>,
    output: LogNormal<f64>,
    ttfb: LogNormal<f64>,
}

impl Generator {
    /// A generator over `settings`' models, providers and catalog.
    pub fn new(settings: &Settings, opts: &SeedOptions) -> Result<Self, EmptyCatalog> {
        let start_ms = opts.start().timestamp_millis();
        let span = (opts.end.timestamp_millis() - start_ms) as f64;
        let lognormal = |median: f64, sigma: f64| LogNormal::new(median.ln(), sigma);
        let (Ok(input), Ok(output), Ok(ttfb)) = (
            lognormal(900.0, 1.0),
            lognormal(250.0, 0.9),
            lognormal(450.0, 0.6),
        ) else {
            return Err(EmptyCatalog);
        };
        Ok(Self {
            catalog: Catalog::new(settings)?,
            prices: settings.prices.clone(),
            rng: StdRng::seed_from_u64(opts.seed),
            start_ms,
            step_ms: span / opts.records.max(1) as f64,
            next: 0,
            total: opts.records,
            input,
            output,
            ttfb,
        })
    }

    /// The next `n` records (fewer at the end).
    pub fn batch(&mut self, n: usize) -> Vec<UsageRecord> {
        self.by_ref().take(n).collect()
    }

    fn record(&mut self, i: u64) -> UsageRecord {
        // Evenly spread, jittered within one step, so records come oldest first.
        let offset = (i as f64 + self.rng.random::<f64>()) * self.step_ms;
        let created_ms = self.start_ms + offset as i64;
        let created_at = DateTime::from_timestamp_millis(created_ms).unwrap_or_default();
        let key_index = self.catalog.key_pick.sample(&mut self.rng);
        let Some(key) = self.catalog.keys.get(key_index).cloned() else {
            return rejected(created_at, "unknown", &mut self.rng);
        };
        let roll: f64 = self.rng.random();
        if roll < 0.01 {
            return rejected(created_at, key.name, &mut self.rng);
        }
        let (model_index, offers) = key
            .models
            .get(key.model_pick.sample(&mut self.rng))
            .cloned()
            .unwrap_or_default();
        let Some(model) = self.catalog.models.get(model_index).cloned() else {
            return rejected(created_at, key.name, &mut self.rng);
        };
        let failover = offers.len() > 1 && self.rng.random::<f64>() >= 0.85;
        let pick = if failover {
            offers.get(self.rng.random_range(1..offers.len()))
        } else {
            offers.first()
        };
        let offer = pick.and_then(|j| model.offers.get(*j)).cloned();
        let Some(offer) = offer else {
            return rejected(created_at, key.name, &mut self.rng);
        };
        let stream = self.rng.random::<f64>() < 0.45;
        let mut r = self.served(created_at, &key, &model, &offer, stream);
        r.attempts = if failover { 2 } else { 1 };
        match roll {
            x if x < 0.017 => upstream_failure(&mut r, 502, "upstream_error", &mut self.rng),
            x if x < 0.02 => upstream_failure(&mut r, 504, "upstream_timeout", &mut self.rng),
            x if x < 0.03 && stream => {
                r.outcome = Outcome::ClientCancelled;
                r.status = 200;
            }
            _ => {}
        }
        r
    }

    /// A request the offer answered: tokens, cost, timings and the price audit.
    fn served(
        &mut self,
        created_at: DateTime<Utc>,
        key: &Key,
        model: &Model,
        offer: &Offer,
        stream: bool,
    ) -> UsageRecord {
        let input = (self.input.sample(&mut self.rng) as u64).clamp(1, 200_000);
        let cached = if self.rng.random::<f64>() < 0.3 {
            (input as f64 * self.rng.random_range(0.2..0.8)) as u64
        } else {
            0
        };
        let output = (self.output.sample(&mut self.rng) as u64).clamp(1, 32_000);
        let reasoning = if offer.reasons {
            (output as f64 * self.rng.random_range(0.3..0.8)) as u64
        } else {
            0
        };
        let tokens = TokenCounts {
            input,
            cached_input: cached,
            cache_write: 0,
            cache_write_1h: 0,
            output,
            reasoning,
        };
        let row = offer
            .price
            .as_deref()
            .and_then(|p| self.prices.lookup(p, created_at));
        let ttfb = (self.ttfb.sample(&mut self.rng) as u64).clamp(40, 30_000);
        let per_token = self.rng.random_range(8..25);
        let estimated = self.rng.random::<f64>() < 0.03;
        let allowed = model
            .candidates
            .iter()
            .filter(|c| !key.eu_only || c.residency.jurisdiction == "EU");
        let cheapest_allowed = compare::cheapest(&self.prices, allowed, &tokens, created_at);
        let cheapest_any =
            compare::cheapest(&self.prices, model.candidates.iter(), &tokens, created_at);
        UsageRecord {
            request_id: request_id(created_at, &mut self.rng),
            created_at,
            key_name: key.name.to_owned(),
            team: catalog::team_of(key.name).map(str::to_owned),
            route: "chat_completions".to_owned(),
            logical_model: Some(model.name.clone()),
            provider: Some(offer.provider.clone()),
            upstream_model: Some(offer.upstream_model.clone()),
            region: Some(offer.region.clone()),
            jurisdiction: Some(offer.jurisdiction.clone()),
            processing_scope: Some(offer.scope.to_owned()),
            stream,
            input_tokens: Some(input),
            cached_input_tokens: Some(cached),
            cache_write_tokens: Some(0),
            cache_write_1h_tokens: None,
            output_tokens: Some(output),
            reasoning_tokens: Some(reasoning),
            usage_source: if estimated {
                UsageSource::Estimated
            } else {
                UsageSource::Reported
            },
            cost_usd: row.map(|row| cost(&tokens, row)),
            price_id: row.map(|row| row.id.clone()),
            pricing: if row.is_some() {
                PricingStatus::Priced
            } else {
                PricingStatus::Unpriced
            },
            latency_ms: ttfb + output * per_token,
            ttfb_ms: Some(ttfb),
            status: 200,
            outcome: Outcome::Completed,
            error_code: None,
            attempts: 1,
            policy: PolicyJson::Json(key.policy.clone()),
            audit: PriceAudit {
                cheapest_allowed_cost_usd: cheapest_allowed.map(|(c, _)| c),
                cheapest_allowed_offer: cheapest_allowed.map(|(_, o)| o.to_owned()),
                cheapest_any_cost_usd: cheapest_any.map(|(c, _)| c),
                cheapest_any_offer: cheapest_any.map(|(_, o)| o.to_owned()),
                counted_input_tokens: estimated.then_some(input),
                counted_output_tokens: estimated.then_some(output - reasoning),
                output_verifiable: estimated.then_some(reasoning == 0),
            },
        }
    }
}

impl Iterator for Generator {
    type Item = UsageRecord;

    fn next(&mut self) -> Option<UsageRecord> {
        if self.next >= self.total {
            return None;
        }
        let i = self.next;
        self.next += 1;
        Some(self.record(i))
    }
}

/// A tollgate-shaped request id (`tg-` and a UUIDv7 of the record's instant).
fn request_id(at: DateTime<Utc>, rng: &mut StdRng) -> String {
    let random: [u8; 10] = rng.random();
    crate::request_id::at(at, &random)
}

/// A request refused before any provider (a rate limit).
fn rejected(created_at: DateTime<Utc>, key: &str, rng: &mut StdRng) -> UsageRecord {
    UsageRecord {
        request_id: request_id(created_at, rng),
        created_at,
        key_name: key.to_owned(),
        team: catalog::team_of(key).map(str::to_owned),
        route: "chat_completions".to_owned(),
        logical_model: None,
        provider: None,
        upstream_model: None,
        region: None,
        jurisdiction: None,
        processing_scope: None,
        stream: false,
        input_tokens: None,
        cached_input_tokens: None,
        cache_write_tokens: None,
        cache_write_1h_tokens: None,
        output_tokens: None,
        reasoning_tokens: None,
        usage_source: UsageSource::None,
        cost_usd: None,
        price_id: None,
        pricing: PricingStatus::NotApplicable,
        latency_ms: rng.random_range(1..5),
        ttfb_ms: None,
        status: 429,
        outcome: Outcome::Rejected,
        error_code: Some("rate_limited".to_owned()),
        attempts: 0,
        policy: PolicyJson::Json(Value::Null),
        audit: PriceAudit::default(),
    }
}

/// The provider failed before answering: no usage, nothing billed.
fn upstream_failure(r: &mut UsageRecord, status: u16, code: &str, rng: &mut StdRng) {
    r.status = status;
    r.outcome = Outcome::UpstreamError;
    r.error_code = Some(code.to_owned());
    r.input_tokens = None;
    r.cached_input_tokens = None;
    r.cache_write_tokens = None;
    r.output_tokens = None;
    r.reasoning_tokens = None;
    r.usage_source = UsageSource::None;
    r.cost_usd = None;
    r.price_id = None;
    r.pricing = PricingStatus::NotApplicable;
    r.ttfb_ms = None;
    r.latency_ms = if status == 504 {
        rng.random_range(30_000..120_000)
    } else {
        rng.random_range(100..3_000)
    };
    r.attempts = r.attempts.max(rng.random_range(1..=3));
    r.audit = PriceAudit::default();
}

#[cfg(test)]
mod tests;
