//! The end of every request: settle usage (reported, or counted with a tokenizer),
//! price it, and emit exactly one ledger record, one metrics update and one log
//! event. Streams call [`Meter::finish`] from their body's end or `Drop`, plain
//! responses call it directly, refusals call it with no upstream.
//!
//! It does no I/O beyond a non-blocking enqueue on the ledger queue (or on the audit
//! queue, for a record whose tokens are audited). The prompt is counted here only when
//! the provider reported no input tokens: that count is the bill.

use std::sync::Arc;
use std::time::Duration;

use super::plausible;
use crate::catalog::PriceBook;
use crate::ledger::{Ledger, Outcome, UsageRecord, UsageSource};
use crate::limits::Limits;
use crate::routing::Router;
use crate::tokens::estimate::OutputTokenCounter;
use crate::tokens::Usage;

use super::facts::{Priced, RequestFacts};

/// The `tollgate` object carried by a response body or the final stream chunk.
pub use super::summary::summary;

/// How a request ended, as the caller saw it.
#[derive(Debug, Clone)]
pub struct Ending {
    pub status: u16,
    pub outcome: Outcome,
    pub error_code: Option<&'static str>,
    pub ttfb: Option<Duration>,
    /// Time spent waiting on the provider for the attempt that answered, from sending
    /// the request to its last byte; `None` when no attempt answered or the client left
    /// first. Request time minus this is tollgate's overhead.
    pub upstream_time: Option<Duration>,
}

/// Where finished requests go: the ledger queue and the catalog to price them.
#[derive(Clone)]
pub struct Meter {
    pub ledger: Ledger,
    pub prices: Arc<PriceBook>,
    /// Learns each offer's typical output size, for `cheapest` routing.
    pub router: Arc<Router>,
    /// Charged with each request's real cost and tokens.
    pub limits: Arc<Limits>,
    /// Cheapest alternatives for every record; token verification for a sample.
    pub audit: Arc<super::audit::Auditor>,
    /// Each offer's metric handles, resolved once instead of per request.
    pub series: Arc<crate::telemetry::series::SeriesTable>,
}

impl Meter {
    /// Settle usage: the provider's report when complete and plausible; otherwise count
    /// the prompt and the output seen so far with the offer's tokenizer (`estimated`,
    /// or `implausible` when the report failed `plausible::check`, in which case none
    /// of it is used); with no upstream reached, nothing.
    pub fn settle(
        facts: &RequestFacts,
        reported: Usage,
        output: Option<&mut OutputTokenCounter>,
    ) -> (Usage, UsageSource) {
        let max_output = facts.max_output_tokens;
        let verdict = if reported.is_empty() {
            Ok(())
        } else {
            plausible::check(&reported, max_output)
        };
        if verdict.is_ok() && reported.is_complete() {
            return (reported, UsageSource::Reported);
        }
        let Some(served) = &facts.served else {
            return (Usage::default(), UsageSource::None);
        };
        let (reported, source) = match verdict {
            Ok(()) => (reported, UsageSource::Estimated),
            Err(why) => {
                tracing::warn!(
                    request_id = %facts.request_id,
                    provider = %served.provider_id,
                    reason = why.as_str(),
                    "implausible usage reported; billed from tollgate's own count"
                );
                // The counts are not believed; the tier that served the request is.
                let served = Usage {
                    service_tier: reported.service_tier,
                    ..Usage::default()
                };
                (served, UsageSource::Implausible)
            }
        };
        let kind = served.tokenizer;
        let input = reported
            .input
            .or_else(|| facts.request.as_deref().map(|r| r.prompt_tokens(kind)));
        let output_count = reported.output.or_else(|| output.map(|c| c.total()));
        let usage = Usage {
            input,
            output: output_count.or(Some(0)),
            ..reported
        };
        (usage, source)
    }

    /// Record a finished request: exactly one ledger record, metrics and log line.
    pub fn finish(&self, facts: &RequestFacts, priced: &Priced, ending: &Ending) {
        self.finish_with(facts, priced, ending, None);
    }

    /// [`Meter::finish`] with the visible output tollgate counted itself, when it saw any.
    /// Counted tokens are filled in off the request path, by a sampled audit (`audit`).
    pub fn finish_with(
        &self,
        facts: &RequestFacts,
        priced: &Priced,
        ending: &Ending,
        visible: Option<super::audit::VisibleOutput>,
    ) {
        let latency = facts.started.elapsed();
        let served = facts.served.as_ref();
        let mut record = UsageRecord {
            request_id: facts.request_id.clone(),
            created_at: facts.created_at,
            key_name: facts.key_name.clone(),
            team: facts.team.clone(),
            route: facts.route.to_owned(),
            logical_model: facts.logical_model.clone(),
            provider: served.map(|s| s.provider_id.clone()),
            upstream_model: served.map(|s| s.upstream_model.clone()),
            region: served.map(|s| s.residency.region.clone()),
            jurisdiction: served.map(|s| s.residency.jurisdiction.clone()),
            processing_scope: served.map(|s| s.residency.scope.as_str().to_owned()),
            stream: facts.is_streaming,
            input_tokens: priced.usage.input,
            cached_input_tokens: priced.usage.cached_input,
            cache_write_tokens: priced.usage.cache_write,
            cache_write_1h_tokens: priced.usage.cache_write_1h,
            output_tokens: priced.usage.output,
            reasoning_tokens: priced.usage.reasoning,
            usage_source: priced.source,
            cost_usd: priced.cost_usd,
            price_id: priced.price_id.clone(),
            pricing: priced.pricing,
            latency_ms: millis(latency),
            ttfb_ms: ending.ttfb.map(millis),
            status: ending.status,
            outcome: ending.outcome,
            error_code: ending.error_code.map(str::to_owned),
            attempts: facts.attempts,
            policy: facts.policy.clone(),
            audit: Default::default(),
        };
        self.audit.annotate(&self.prices, facts, &mut record);
        let series = facts.slot.and_then(|(m, o)| self.series.get(m, o));
        crate::telemetry::series::record_request(
            &record,
            latency,
            ending.ttfb,
            ending.upstream_time,
            series,
        );
        if let (Outcome::Completed, Some((model, offer)), Some(output)) =
            (ending.outcome, facts.slot, record.output_tokens)
        {
            self.router.record_output(model, offer, output);
        }
        if let Some(key) = facts.key_index {
            let tokens = record
                .input_tokens
                .unwrap_or(0)
                .saturating_add(record.output_tokens.unwrap_or(0));
            self.limits
                .charge(key, record.cost_usd, tokens, record.created_at);
        }
        tracing::info!(
            request_id = %record.request_id,
            key = %record.key_name,
            model = record.logical_model.as_deref().unwrap_or("-"),
            provider = record.provider.as_deref().unwrap_or("-"),
            region = record.region.as_deref().unwrap_or("-"),
            jurisdiction = record.jurisdiction.as_deref().unwrap_or("-"),
            input_tokens = record.input_tokens,
            output_tokens = record.output_tokens,
            reasoning_tokens = record.reasoning_tokens,
            usage_source = record.usage_source.as_str(),
            cost_usd = record.cost_usd.map(|c| c.to_string()).as_deref().unwrap_or("-"),
            status = record.status,
            outcome = record.outcome.as_str(),
            latency_ms = record.latency_ms,
            "request finished"
        );
        self.audit.dispatch(&self.ledger, facts, record, visible);
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}
