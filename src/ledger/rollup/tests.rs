//! What one record adds to the rollups, and how contributions merge.

use chrono::DateTime;
use rust_decimal_macros::dec;

use super::*;
use crate::ledger::tests::{bare, full};

#[test]
fn missing_dimensions_are_stored_empty_and_the_daily_key_drops_the_fine_ones() {
    let (key, sums) = contribution(&bare("b"));
    assert_eq!(
        key.start_ms, 1_740_830_400_000,
        "the start of the record's hour"
    );
    assert_eq!(
        (
            key.team.as_str(),
            key.logical_model.as_str(),
            key.provider.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(
        (key.route.as_str(), key.outcome.as_str()),
        ("azure_chat_completions", "rejected")
    );
    assert_eq!((sums.requests, sums.errors), (1, 1), "a 400 is an error");
    assert_eq!(sums.ttfb.count(), 0, "no first byte, no sample");

    let (key, _) = contribution(&full("f"));
    let day = key.daily();
    assert_eq!(day.start_ms, 1_740_787_200_000, "2025-03-01T00:00:00Z");
    assert_eq!(
        (day.key_name.as_str(), day.team.as_str()),
        ("team-a", "research")
    );
    assert_eq!(
        (
            day.upstream_model.as_str(),
            day.route.as_str(),
            day.outcome.as_str()
        ),
        ("", "", "")
    );
    assert_eq!(day.provider, "azure-eu");
}

#[test]
fn a_record_adds_what_the_usage_and_savings_reports_count() {
    let (_, s) = contribution(&full("f"));
    assert_eq!(
        (s.requests, s.errors, s.input_tokens, s.reasoning_tokens),
        (1, 0, 12_345, 64)
    );
    assert_eq!(s.cost_usd, dec!(0.170595));
    assert_eq!((s.billable_requests, s.billable_costed_requests), (1, 1));
    assert_eq!(s.compared_requests, 1);
    assert_eq!(
        (
            s.compared_cost_usd,
            s.cheapest_allowed_usd,
            s.cheapest_any_usd
        ),
        (dec!(0.170595), dec!(0.00012), dec!(0))
    );
    // Verifiable: 12,345 reported input + 678 output against 11 + 40 counted.
    assert_eq!(
        (
            s.drift_requests,
            s.drift_reported_tokens,
            s.drift_counted_tokens
        ),
        (1, 13_023, 51)
    );
    assert_eq!(s.latency.max, 1_234);
    assert_eq!(s.ttfb.count(), 1);

    // Without a logical model, or without billable usage, savings count nothing.
    let mut r = full("f");
    r.logical_model = None;
    let (_, s) = contribution(&r);
    assert_eq!(
        (s.requests, s.billable_requests, s.drift_requests),
        (1, 0, 0)
    );
    let mut r = full("f");
    r.pricing = PricingStatus::NotApplicable;
    let (_, s) = contribution(&r);
    assert_eq!((s.billable_requests, s.drift_requests), (0, 0));
    assert_eq!(
        s.cost_usd,
        dec!(0.170595),
        "usage still sums the recorded cost"
    );
    // One alternative unknown: priced but not compared.
    let mut r = full("f");
    r.audit.cheapest_any_cost_usd = None;
    let (_, s) = contribution(&r);
    assert_eq!((s.billable_costed_requests, s.compared_requests), (1, 0));
    assert_eq!(s.cheapest_allowed_usd, dec!(0));
    // Estimated usage is no drift sample; a broken stream is an error.
    let mut r = full("f");
    r.usage_source = UsageSource::Estimated;
    r.outcome = Outcome::UpstreamError;
    let (_, s) = contribution(&r);
    assert_eq!(
        (s.estimated_requests, s.drift_requests, s.errors),
        (1, 0, 1)
    );
}

#[test]
fn merges_add_exactly_and_saturate_counts() {
    let (_, mut a) = contribution(&full("a"));
    let (_, b) = contribution(&full("b"));
    a.merge(&b);
    assert_eq!((a.requests, a.cost_usd), (2, dec!(0.341190)));
    assert_eq!(a.latency.count(), 2);
    a.input_tokens = COUNT_MAX - 1;
    a.merge(&b);
    assert_eq!(a.input_tokens, COUNT_MAX);
}

#[test]
fn hours_and_days_start_on_the_utc_boundary_before_1970_too() {
    assert_eq!(floor_to(-1, HOUR_MS), -HOUR_MS);
    assert_eq!(floor_to(HOUR_MS, HOUR_MS), HOUR_MS);
    let mut r = bare("old");
    r.created_at = DateTime::from_timestamp_millis(-1).unwrap();
    assert_eq!(contribution(&r).0.daily().start_ms, -DAY_MS);
}
