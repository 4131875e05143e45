//! Every metric name, its description, and the typed functions other modules call.
//! Labels come from closed sets only (configured model and provider names,
//! jurisdictions, status classes); never a key, request id or prompt.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use rust_decimal::prelude::ToPrimitive;

use crate::ledger::{PricingStatus, UsageRecord};

pub const REQUESTS_TOTAL: &str = "tollgate_requests_total";
pub const TOKENS_TOTAL: &str = "tollgate_tokens_total";
pub const COST_USD_TOTAL: &str = "tollgate_cost_usd_total";
pub const REQUEST_DURATION: &str = "tollgate_request_duration_seconds";
pub const TTFB: &str = "tollgate_time_to_first_byte_seconds";
pub const UNPRICED_TOTAL: &str = "tollgate_unpriced_requests_total";
pub const POLICY_DENIALS_TOTAL: &str = "tollgate_policy_denials_total";
pub const LEDGER_QUEUE_DEPTH: &str = "tollgate_ledger_queue_depth";
pub const LEDGER_DROPPED_TOTAL: &str = "tollgate_ledger_dropped_total";
pub const GENAI_TOKEN_USAGE: &str = "gen_ai_client_token_usage";

/// Install the process-wide recorder once and describe every series; later calls
/// (several gateways in one test process) get the same handle. `None` when another
/// recorder was installed by someone else.
pub fn install() -> Option<PrometheusHandle> {
    // The `metrics` facade's recorder is process-global by design; the handle to
    // render it must be as well.
    static HANDLE: std::sync::OnceLock<Option<PrometheusHandle>> = std::sync::OnceLock::new();
    HANDLE.get_or_init(install_recorder).clone()
}

fn install_recorder() -> Option<PrometheusHandle> {
    let recorder = PrometheusBuilder::new()
        .set_buckets(&[
            0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0,
        ])
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    describe_counter!(
        REQUESTS_TOTAL,
        "Requests finished, by logical model, provider, jurisdiction and status class"
    );
    describe_counter!(
        TOKENS_TOTAL,
        Unit::Count,
        "Tokens metered, by type (input, cached_input, output, reasoning)"
    );
    describe_gauge!(
        COST_USD_TOTAL,
        "Cost of priced requests in USD (the ledger holds the exact decimals)"
    );
    describe_histogram!(
        REQUEST_DURATION,
        Unit::Seconds,
        "Time from request arrival to its end"
    );
    describe_histogram!(
        TTFB,
        Unit::Seconds,
        "Time from request arrival to the upstream's first byte"
    );
    describe_counter!(
        UNPRICED_TOTAL,
        "Requests served by an offer with no catalog price"
    );
    describe_counter!(
        POLICY_DENIALS_TOTAL,
        "Requests refused by residency policy, by reason"
    );
    describe_gauge!(LEDGER_QUEUE_DEPTH, "Records waiting for the ledger writer");
    describe_gauge!(
        LEDGER_DROPPED_TOTAL,
        "Records dropped because the ledger queue was full"
    );
    describe_histogram!(
        GENAI_TOKEN_USAGE,
        Unit::Count,
        "OpenTelemetry GenAI token usage per request"
    );
    Some(handle)
}

fn status_class(status: u16) -> &'static str {
    match status {
        200..=299 => "2xx",
        400..=499 => "4xx",
        _ => "5xx",
    }
}

/// Count a finished request.
pub fn record_request(r: &UsageRecord, latency: Duration, ttfb: Option<Duration>) {
    let model = r.logical_model.clone().unwrap_or_else(|| "other".into());
    let provider = r.provider.clone().unwrap_or_else(|| "none".into());
    let jurisdiction = r.jurisdiction.clone().unwrap_or_else(|| "none".into());
    let labels = [
        ("model", model),
        ("provider", provider),
        ("jurisdiction", jurisdiction),
        ("status", status_class(r.status).to_owned()),
    ];
    counter!(REQUESTS_TOTAL, &labels).increment(1);
    histogram!(REQUEST_DURATION, &labels).record(latency.as_secs_f64());
    if let Some(t) = ttfb {
        histogram!(TTFB, &labels[..3]).record(t.as_secs_f64());
    }
    let kinds = [
        ("input", r.input_tokens),
        ("cached_input", r.cached_input_tokens),
        ("output", r.output_tokens),
        ("reasoning", r.reasoning_tokens),
    ];
    for (kind, n) in kinds {
        if let Some(n) = n {
            let mut l = labels[..3].to_vec();
            l.push(("type", kind.to_owned()));
            counter!(TOKENS_TOTAL, &l).increment(n);
        }
    }
    for (kind, n) in [("input", r.input_tokens), ("output", r.output_tokens)] {
        if let Some(n) = n {
            let l = [
                ("gen_ai_request_model", labels[0].1.clone()),
                ("gen_ai_provider_name", labels[1].1.clone()),
                ("gen_ai_token_type", kind.to_owned()),
            ];
            histogram!(GENAI_TOKEN_USAGE, &l).record(n as f64);
        }
    }
    if let Some(c) = r.cost_usd.and_then(|c| c.to_f64()) {
        // The `metrics` facade's counters are integers; a monotonically increased
        // gauge carries the fractional dollars. Exact sums live in the ledger.
        gauge!(COST_USD_TOTAL, &labels[..3]).increment(c);
    }
    if r.pricing == PricingStatus::Unpriced {
        counter!(UNPRICED_TOTAL, &labels[..3]).increment(1);
    }
}

/// Count a request refused by residency policy, once per distinct reason its offers
/// were excluded for.
pub fn record_policy_denial(reasons: &std::collections::BTreeSet<crate::policy::Exclusion>) {
    for reason in reasons {
        counter!(POLICY_DENIALS_TOTAL, "reason" => reason.as_str()).increment(1);
    }
}

/// Ledger health gauges, refreshed on every scrape.
pub fn set_ledger_gauges(depth: usize, dropped: u64) {
    gauge!(LEDGER_QUEUE_DEPTH).set(depth as f64);
    gauge!(LEDGER_DROPPED_TOTAL).set(dropped as f64);
}
