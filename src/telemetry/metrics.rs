//! Every metric name, its description, and the typed functions other modules call.
//! Labels come from closed sets only (configured model and provider names,
//! jurisdictions, status classes); never a key, request id or prompt.

use std::time::Duration;

use metrics::{
    counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use rust_decimal::prelude::ToPrimitive;

use crate::ledger::retention;
use crate::ledger::{PricingStatus, UsageRecord, UsageSource};

/// Requests finished, by model, provider, jurisdiction and status class.
pub const REQUESTS_TOTAL: &str = "tollgate_requests_total";
pub const TOKENS_TOTAL: &str = "tollgate_tokens_total";
pub const COST_USD_TOTAL: &str = "tollgate_cost_usd_total";
pub const REQUEST_DURATION: &str = "tollgate_request_duration_seconds";
pub const TTFB: &str = "tollgate_time_to_first_byte_seconds";
pub const UNPRICED_TOTAL: &str = "tollgate_unpriced_requests_total";
pub const ESTIMATED_TOTAL: &str = "tollgate_estimated_requests_total";
pub const POLICY_DENIALS_TOTAL: &str = "tollgate_policy_denials_total";
pub const RATELIMITED_TOTAL: &str = "tollgate_ratelimited_total";
pub const LIMITS_BACKEND_ERRORS_TOTAL: &str = "tollgate_limits_backend_errors_total";
pub const LEDGER_QUEUE_DEPTH: &str = "tollgate_ledger_queue_depth";
pub const LEDGER_DROPPED_TOTAL: &str = "tollgate_ledger_dropped_total";
pub const OVERHEAD: &str = "tollgate_overhead_seconds";
pub const GENAI_TOKEN_USAGE: &str = "gen_ai_client_token_usage";
pub const GENAI_OPERATION_DURATION: &str = "gen_ai_client_operation_duration";
/// Failed upstream attempts, by provider and reason (connect, timeout, status,
/// protocol, redirect).
pub const UPSTREAM_FAILURES_TOTAL: &str = "tollgate_upstream_failures_total";
/// Requests whose reported usage was implausible and was billed from tollgate's count.
pub const IMPLAUSIBLE_USAGE_TOTAL: &str = "tollgate_implausible_usage_total";

/// Error codes that mean tollgate's own policy refused the request before any
/// provider was reached; the closed set of `tollgate_policy_denials_total{reason}`.
const POLICY_REASONS: [&str; 2] = ["budget_exceeded", "rate_limited"];

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
        // OpenTelemetry's recommended token buckets (powers of 4).
        .set_buckets_for_metric(
            Matcher::Full(GENAI_TOKEN_USAGE.to_owned()),
            &[
                1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
                4194304.0,
            ],
        )
        .ok()?
        // tollgate's own time is milliseconds, not seconds.
        .set_buckets_for_metric(
            Matcher::Full(OVERHEAD.to_owned()),
            &[
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ],
        )
        .ok()?
        .build_recorder();
    let handle = recorder.handle();
    metrics::set_global_recorder(recorder).ok()?;
    describe_counter!(
        RATELIMITED_TOTAL,
        "Requests refused by a key's rate limit, an upstream quota or a budget, by limit"
    );
    describe_counter!(
        LIMITS_BACKEND_ERRORS_TOTAL,
        "Limit decisions and charges Redis could not serve, by what tollgate decided instead"
    );
    describe_counter!(
        REQUESTS_TOTAL,
        "Requests finished, by logical model, provider, jurisdiction and status class"
    );
    describe_counter!(
        TOKENS_TOTAL,
        Unit::Count,
        "Tokens metered, by type (input, cached_input, cache_write, output, reasoning)"
    );
    describe_gauge!(
        COST_USD_TOTAL,
        "Cost of priced requests in USD, a counter (the ledger holds the exact decimals)"
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
        ESTIMATED_TOTAL,
        "Requests whose usage tollgate counted itself because the provider reported none"
    );
    describe_counter!(
        UPSTREAM_FAILURES_TOTAL,
        "Upstream attempts that failed before the first byte, by provider and reason"
    );
    describe_counter!(
        IMPLAUSIBLE_USAGE_TOTAL,
        "Requests whose provider-reported usage was implausible and was billed from tollgate's own count, by provider"
    );
    describe_counter!(
        POLICY_DENIALS_TOTAL,
        "Requests refused by residency policy, by reason"
    );
    describe_gauge!(LEDGER_QUEUE_DEPTH, "Records waiting for the ledger writer");
    describe_counter!(
        LEDGER_DROPPED_TOTAL,
        "Records dropped because the ledger queue was full or its writer had stopped"
    );
    describe_counter!(
        retention::DELETED_TOTAL,
        "Ledger records deleted by ledger.retention, row by row"
    );
    describe_counter!(
        retention::PARTITIONS_DROPPED_TOTAL,
        "Monthly PostgreSQL ledger partitions dropped whole by ledger.retention"
    );
    describe_counter!(
        retention::FAILURES_TOTAL,
        "Ledger retention runs that failed (each is retried at the next run)"
    );
    describe_gauge!(
        retention::LAST_SUCCESS,
        Unit::Seconds,
        "When the last ledger retention run finished without error (Unix time)"
    );
    describe_histogram!(
        OVERHEAD,
        Unit::Seconds,
        "Request time minus the upstream's time: what tollgate adds"
    );
    describe_histogram!(
        GENAI_OPERATION_DURATION,
        Unit::Seconds,
        "OpenTelemetry GenAI client operation duration"
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

/// Count a finished request, looking each series up by its labels. `upstream` is the
/// provider's share of `latency`. An answered request goes through
/// `series::record_request` instead, with its offer's pre-resolved handles.
pub fn record_request(
    r: &UsageRecord,
    latency: Duration,
    ttfb: Option<Duration>,
    upstream: Option<Duration>,
) {
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
    if let Some(u) = upstream {
        let overhead = latency.saturating_sub(u);
        histogram!(OVERHEAD, &labels[..2]).record(overhead.as_secs_f64());
    }
    let code = r.error_code.as_deref().unwrap_or("");
    if r.provider.is_none() {
        if let Some(reason) = POLICY_REASONS.iter().find(|p| **p == code) {
            counter!(
                POLICY_DENIALS_TOTAL,
                &[
                    ("model", labels[0].1.clone()),
                    ("reason", (*reason).to_owned())
                ]
            )
            .increment(1);
        }
    }
    let kinds = [
        ("input", r.input_tokens),
        ("cached_input", r.cached_input_tokens),
        ("cache_write", r.cache_write_tokens),
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
    record_genai(r, &labels[0].1, &labels[1].1, latency);
    if let Some(c) = r.cost_usd.and_then(|c| c.to_f64()) {
        // The `metrics` facade's counters are u64, and a counter of micro-dollars
        // would round every cheap request (one DeepSeek token is $0.00000028). A gauge
        // that is only ever increased carries the fractional dollars, and `render`
        // types it as the counter it is, so `rate()` and `increase()` work on it. The
        // exact decimal sums are in the ledger and the usage API.
        gauge!(COST_USD_TOTAL, &labels[..3]).increment(c);
    }
    if r.pricing == PricingStatus::Unpriced {
        counter!(UNPRICED_TOTAL, &labels[..3]).increment(1);
    }
    if matches!(
        r.usage_source,
        UsageSource::Estimated | UsageSource::Implausible
    ) {
        counter!(ESTIMATED_TOTAL, &labels[..3]).increment(1);
    }
    if r.usage_source == UsageSource::Implausible {
        counter!(IMPLAUSIBLE_USAGE_TOTAL, &labels[1..2]).increment(1);
    }
}

/// Count an upstream attempt that failed; `reason` is `AttemptError::metric_label`.
pub fn record_upstream_failure(provider: &str, reason: &'static str) {
    counter!(UPSTREAM_FAILURES_TOTAL, "provider" => provider.to_owned(), "reason" => reason)
        .increment(1);
}

/// Count a refusal by a rate limit, upstream quota or budget (`limit` is a closed set).
pub fn record_limit_refusal(limit: &'static str) {
    counter!(RATELIMITED_TOTAL, "limit" => limit).increment(1);
}

/// Count a limit decision or charge that Redis could not serve; `denied` is what the
/// configured `on_redis_error` decided (a lost charge counts as `allowed`).
pub fn record_limits_backend_error(denied: bool) {
    let decision = if denied { "denied" } else { "allowed" };
    counter!(LIMITS_BACKEND_ERRORS_TOTAL, "decision" => decision).increment(1);
}

/// Count a request refused by residency policy, once per distinct reason its offers
/// were excluded for (budget and rate-limit refusals are counted from the record).
pub fn record_policy_denial(
    model: &str,
    reasons: &std::collections::BTreeSet<crate::policy::Exclusion>,
) {
    for reason in reasons {
        counter!(POLICY_DENIALS_TOTAL, "model" => model.to_owned(), "reason" => reason.as_str())
            .increment(1);
    }
}

/// OpenTelemetry GenAI semantic-convention series (dots become underscores).
fn record_genai(r: &UsageRecord, model: &str, provider: &str, latency: Duration) {
    let base = [
        ("gen_ai_operation_name", "chat".to_owned()),
        ("gen_ai_request_model", model.to_owned()),
        ("gen_ai_provider_name", provider.to_owned()),
    ];
    for (kind, n) in [("input", r.input_tokens), ("output", r.output_tokens)] {
        if let Some(n) = n {
            let mut l = base.to_vec();
            l.push(("gen_ai_token_type", kind.to_owned()));
            histogram!(GENAI_TOKEN_USAGE, &l).record(n as f64);
        }
    }
    let mut l = base.to_vec();
    if let Some(code) = &r.error_code {
        // error.type: tollgate's closed set of error codes.
        l.push(("error_type", code.clone()));
    }
    histogram!(GENAI_OPERATION_DURATION, &l).record(latency.as_secs_f64());
}

/// Ledger health, refreshed on every scrape from the ledger's own counters.
pub fn set_ledger_gauges(depth: usize, dropped: u64) {
    gauge!(LEDGER_QUEUE_DEPTH).set(depth as f64);
    counter!(LEDGER_DROPPED_TOTAL).absolute(dropped);
}

/// The Prometheus text exposition, with `tollgate_cost_usd_total` typed as the counter
/// it is (see `record_request`).
pub fn render(handle: &PrometheusHandle) -> String {
    handle.render().replace(
        &format!("# TYPE {COST_USD_TOTAL} gauge"),
        &format!("# TYPE {COST_USD_TOTAL} counter"),
    )
}
