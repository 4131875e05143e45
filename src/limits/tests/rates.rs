//! Key rate limits and offer quotas, under tokio's paused clock.

use std::time::Duration;

use tokio::time::advance;

use super::*;
use crate::limits::quota::QuotaLimit;

const MINUTE: Duration = Duration::from_secs(60);
const DAY: Duration = Duration::from_secs(24 * 3600);

#[tokio::test(start_paused = true)]
async fn requests_per_minute_refuse_when_spent_and_refill_over_the_minute() {
    let limits = limits();
    limits.admit_request(A).unwrap();
    limits.admit_request(A).unwrap();
    let refusal = limits.admit_request(A).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::RateLimited);
    // Two a minute refill one every 30 s.
    assert_eq!(refusal.retry_after, Duration::from_secs(30));
    assert_eq!(refusal.retry_after_secs(), 30);
    assert!(
        refusal.message.contains("rate_limit.requests_per_minute"),
        "{}",
        refusal.message
    );
    assert!(
        refusal.message.contains("retry in 30s"),
        "{}",
        refusal.message
    );

    advance(Duration::from_secs(29)).await;
    assert!(limits.admit_request(A).is_err(), "one second early");
    advance(Duration::from_secs(1)).await;
    limits.admit_request(A).unwrap();
    assert!(limits.admit_request(A).is_err());

    // A full minute idle restores the whole burst.
    advance(MINUTE).await;
    limits.admit_request(A).unwrap();
    limits.admit_request(A).unwrap();
    assert!(limits.admit_request(A).is_err());

    // Another key's limiter is its own; a key without limits is never refused.
    for _ in 0..100 {
        limits.admit_request(C).unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn tokens_over_the_minute_make_the_next_request_wait_until_paid_back() {
    let limits = limits();
    limits.admit_request(A).unwrap();
    // 2,500 tokens against 1,000 a minute: 1,500 over, paid back at 60 ms a token
    // (90 s), then one token of room is needed (60 ms more).
    limits.charge(A, None, 2_500, utc("2025-03-14T12:00:00Z"));
    let refusal = limits.admit_request(A).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::RateLimited);
    assert_eq!(refusal.retry_after, Duration::from_millis(90_060));
    assert_eq!(refusal.retry_after_secs(), 91);
    assert!(
        refusal.message.contains("tokens_per_minute"),
        "{}",
        refusal.message
    );

    advance(Duration::from_millis(90_059)).await;
    assert!(limits.admit_request(A).is_err());
    advance(Duration::from_millis(1)).await;
    // The refusals spent no requests, and the one before the charge has refilled.
    limits.admit_request(A).unwrap();
    limits.admit_request(A).unwrap();
}

#[tokio::test(start_paused = true)]
async fn tokens_within_the_minute_do_not_delay() {
    let limits = limits();
    limits.charge(A, None, 999, utc("2025-03-14T12:00:00Z"));
    limits.admit_request(A).unwrap();
    limits.charge(A, None, 1, utc("2025-03-14T12:00:00Z"));
    let refusal = limits.admit_request(A).unwrap_err();
    assert!(
        refusal.message.contains("tokens_per_minute"),
        "{}",
        refusal.message
    );
}

#[tokio::test(start_paused = true)]
async fn github_free_tier_allows_one_a_minute_and_eight_a_day() {
    let limits = limits();
    for i in 0..8 {
        limits.offer_available(0, 0, 500).unwrap();
        let refusal = limits.offer_available(0, 0, 500).unwrap_err();
        assert_eq!(refusal.kind, RefusalKind::QuotaExhausted);
        let m = &refusal.message;
        if i < 7 {
            assert_eq!(refusal.retry_after, MINUTE, "request {i}");
            assert!(m.contains("requests per minute"), "{m}");
        } else {
            // Both limits refuse; the answer is the longer wait, the day's.
            assert_eq!(refusal.retry_after, DAY - 7 * MINUTE);
            assert!(m.contains("requests per day"), "{m}");
        }
        advance(MINUTE).await;
    }
    // Eight used over eight minutes; the refusals between them used none of the day.
    let refusal = limits.offer_available(0, 0, 500).unwrap_err();
    assert!(
        refusal.message.contains("requests per day"),
        "{}",
        refusal.message
    );
    assert_eq!(refusal.retry_after, DAY - 8 * MINUTE);
    assert_eq!(
        refusal.into_gateway_error().code,
        crate::api::error::ErrorCode::RateLimited
    );

    advance(Duration::from_secs(3 * 3600)).await;
    assert!(
        limits.offer_available(0, 0, 500).is_err(),
        "3 h later: still the same day"
    );

    // 24 h after the first request, it leaves the window and one more fits.
    advance(Duration::from_secs(21 * 3600) - 8 * MINUTE).await;
    limits.offer_available(0, 0, 500).unwrap();
    assert!(limits.offer_available(0, 0, 500).is_err());
    // The other offers are not affected.
    limits.offer_available(0, 1, 500).unwrap();
    limits.offer_available(0, 2, u32::MAX).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refused_offer_consumes_nothing() {
    let limits = limits();
    limits.offer_available(0, 1, 900).unwrap();
    // 200 tokens do not fit in the 100 left; had the refusal spent a request, the
    // second of this minute's two would be gone.
    let refusal = limits.offer_available(0, 1, 200).unwrap_err();
    assert_eq!(
        refusal.retry_after,
        Duration::from_secs(6),
        "100 tokens at 60 ms"
    );
    assert!(
        refusal.message.contains("tokens per minute"),
        "{}",
        refusal.message
    );
    limits.offer_available(0, 1, 100).unwrap();
    // Both requests spent; the minute refills tokens first, requests at 30 s.
    advance(Duration::from_secs(12)).await;
    let refusal = limits.offer_available(0, 1, 10).unwrap_err();
    assert!(
        refusal.message.contains("requests per minute"),
        "{}",
        refusal.message
    );
    // The refusal took no tokens, so exactly 500 fit again at 30 s.
    advance(Duration::from_secs(18)).await;
    limits.offer_available(0, 1, 500).unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_request_larger_than_the_token_burst_never_fits() {
    let limits = limits();
    let refusal = limits.offer_available(0, 1, 1_001).unwrap_err();
    assert_eq!(refusal.retry_after, Duration::MAX);
    assert_eq!(refusal.retry_after_secs(), 32 * 24 * 3600);
    assert!(
        refusal.message.contains("never fits"),
        "{}",
        refusal.message
    );
    // It consumed nothing either.
    limits.offer_available(0, 1, 1_000).unwrap();
    let q = limits.models[0].offers[1].quota.as_ref().unwrap();
    assert_eq!(q.admit(1).unwrap_err().limit, QuotaLimit::TokensPerMinute);
}
