//! Pre-resolved metric handles for the common case: a request an offer answered
//! (status 2xx). Each offer's series share their labels (model, provider,
//! jurisdiction), so their handles are looked up in the registry once, on first use,
//! and then only incremented: no label strings are built and no registry lookup is
//! made per request. Series are resolved lazily so a series appears in `/metrics`
//! only once something was recorded in it, as with the per-request path.
//!
//! Names and labels are exactly those of `metrics::record_request`; anything this
//! table does not cover (errors, refusals) goes through that path.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{counter, gauge, histogram, Counter, Gauge, Histogram};
use rust_decimal::prelude::ToPrimitive;

use super::metrics::{
    COST_USD_TOTAL, ESTIMATED_TOTAL, GENAI_OPERATION_DURATION, GENAI_TOKEN_USAGE,
    IMPLAUSIBLE_USAGE_TOTAL, OVERHEAD, REQUESTS_TOTAL, REQUEST_DURATION, TOKENS_TOTAL, TTFB,
    UNPRICED_TOTAL,
};
use crate::config::Settings;
use crate::ledger::{PricingStatus, UsageRecord, UsageSource};

/// The token types of `tollgate_tokens_total`, in the record's field order.
const TOKEN_TYPES: [&str; 5] = [
    "input",
    "cached_input",
    "cache_write",
    "output",
    "reasoning",
];

/// Every offer's series, by (model index, offer index) of one configuration.
pub struct SeriesTable {
    offers: Vec<Vec<OfferSeries>>,
}

impl SeriesTable {
    /// Unresolved series for every offer of `settings`.
    pub fn new(settings: &Settings) -> Self {
        let offers = settings
            .models
            .iter()
            .map(|m| {
                m.offers
                    .iter()
                    .map(|o| {
                        let provider = settings.providers.get(o.provider);
                        OfferSeries::new(
                            &m.name,
                            provider.map_or("none", |p| p.id.as_str()),
                            provider.map_or("none", |p| p.residency.jurisdiction.as_str()),
                        )
                    })
                    .collect()
            })
            .collect();
        Self { offers }
    }

    /// The series of offer `offer` of model `model`.
    pub fn get(&self, model: usize, offer: usize) -> Option<&OfferSeries> {
        self.offers.get(model)?.get(offer)
    }
}

/// One offer's 2xx series, each resolved on first use.
pub struct OfferSeries {
    model: String,
    provider: String,
    jurisdiction: String,
    requests: OnceLock<Counter>,
    duration: OnceLock<Histogram>,
    ttfb: OnceLock<Histogram>,
    overhead: OnceLock<Histogram>,
    tokens: [OnceLock<Counter>; 5],
    cost: OnceLock<Gauge>,
    unpriced: OnceLock<Counter>,
    estimated: OnceLock<Counter>,
    implausible: OnceLock<Counter>,
    genai_tokens: [OnceLock<Histogram>; 2],
    genai_duration: OnceLock<Histogram>,
}

impl OfferSeries {
    fn new(model: &str, provider: &str, jurisdiction: &str) -> Self {
        Self {
            model: model.to_owned(),
            provider: provider.to_owned(),
            jurisdiction: jurisdiction.to_owned(),
            requests: OnceLock::new(),
            duration: OnceLock::new(),
            ttfb: OnceLock::new(),
            overhead: OnceLock::new(),
            tokens: Default::default(),
            cost: OnceLock::new(),
            unpriced: OnceLock::new(),
            estimated: OnceLock::new(),
            implausible: OnceLock::new(),
            genai_tokens: Default::default(),
            genai_duration: OnceLock::new(),
        }
    }

    /// Whether `r` is a 2xx record of this offer, i.e. carries exactly these labels.
    pub(super) fn covers(&self, r: &UsageRecord) -> bool {
        (200..=299).contains(&r.status)
            && r.error_code.is_none()
            && r.logical_model.as_deref() == Some(self.model.as_str())
            && r.provider.as_deref() == Some(self.provider.as_str())
            && r.jurisdiction.as_deref() == Some(self.jurisdiction.as_str())
    }

    /// model, provider, jurisdiction, status: the labels of `tollgate_requests_total`.
    fn labels(&self) -> [(&'static str, String); 4] {
        [
            ("model", self.model.clone()),
            ("provider", self.provider.clone()),
            ("jurisdiction", self.jurisdiction.clone()),
            ("status", "2xx".to_owned()),
        ]
    }

    fn genai_labels(&self) -> Vec<(&'static str, String)> {
        vec![
            ("gen_ai_operation_name", "chat".to_owned()),
            ("gen_ai_request_model", self.model.clone()),
            ("gen_ai_provider_name", self.provider.clone()),
        ]
    }

    /// Record `r` (which [`OfferSeries::covers`]) as `metrics::record_request` would.
    pub(super) fn record(
        &self,
        r: &UsageRecord,
        latency: Duration,
        ttfb: Option<Duration>,
        upstream: Option<Duration>,
    ) {
        let secs = latency.as_secs_f64();
        self.requests
            .get_or_init(|| counter!(REQUESTS_TOTAL, &self.labels()))
            .increment(1);
        self.duration
            .get_or_init(|| histogram!(REQUEST_DURATION, &self.labels()))
            .record(secs);
        if let Some(t) = ttfb {
            self.ttfb
                .get_or_init(|| histogram!(TTFB, &self.labels()[..3]))
                .record(t.as_secs_f64());
        }
        if let Some(u) = upstream {
            self.overhead
                .get_or_init(|| histogram!(OVERHEAD, &self.labels()[..2]))
                .record(latency.saturating_sub(u).as_secs_f64());
        }
        let counts = [
            r.input_tokens,
            r.cached_input_tokens,
            r.cache_write_tokens,
            r.output_tokens,
            r.reasoning_tokens,
        ];
        for ((slot, kind), n) in self.tokens.iter().zip(TOKEN_TYPES).zip(counts) {
            if let Some(n) = n {
                slot.get_or_init(|| {
                    let mut l = self.labels()[..3].to_vec();
                    l.push(("type", kind.to_owned()));
                    counter!(TOKENS_TOTAL, &l)
                })
                .increment(n);
            }
        }
        self.record_genai(r, secs);
        if let Some(c) = r.cost_usd.and_then(|c| c.to_f64()) {
            self.cost
                .get_or_init(|| gauge!(COST_USD_TOTAL, &self.labels()[..3]))
                .increment(c);
        }
        if r.pricing == PricingStatus::Unpriced {
            self.unpriced
                .get_or_init(|| counter!(UNPRICED_TOTAL, &self.labels()[..3]))
                .increment(1);
        }
        if matches!(
            r.usage_source,
            UsageSource::Estimated | UsageSource::Implausible
        ) {
            self.estimated
                .get_or_init(|| counter!(ESTIMATED_TOTAL, &self.labels()[..3]))
                .increment(1);
        }
        if r.usage_source == UsageSource::Implausible {
            self.implausible
                .get_or_init(|| counter!(IMPLAUSIBLE_USAGE_TOTAL, &self.labels()[1..2]))
                .increment(1);
        }
    }

    /// The OpenTelemetry GenAI series (no `error_type`: a 2xx record has no error).
    fn record_genai(&self, r: &UsageRecord, secs: f64) {
        let kinds = [("input", r.input_tokens), ("output", r.output_tokens)];
        for (slot, (kind, n)) in self.genai_tokens.iter().zip(kinds) {
            if let Some(n) = n {
                slot.get_or_init(|| {
                    let mut l = self.genai_labels();
                    l.push(("gen_ai_token_type", kind.to_owned()));
                    histogram!(GENAI_TOKEN_USAGE, &l)
                })
                .record(n as f64);
            }
        }
        self.genai_duration
            .get_or_init(|| histogram!(GENAI_OPERATION_DURATION, &self.genai_labels()))
            .record(secs);
    }
}
/// Count a finished request: through `series`, the pre-resolved handles of the offer
/// that served it, when they carry the record's labels (an answered request);
/// otherwise each series is looked up by its labels (`metrics::record_request`).
pub fn record_request(
    r: &UsageRecord,
    latency: Duration,
    ttfb: Option<Duration>,
    upstream: Option<Duration>,
    series: Option<&OfferSeries>,
) {
    match series.filter(|s| s.covers(r)) {
        Some(s) => s.record(r, latency, ttfb, upstream),
        None => super::metrics::record_request(r, latency, ttfb, upstream),
    }
}
