//! Budgets: windows on the UTC wall clock, team sharing, and the rebuild from a real
//! ledger file.

use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::ledger::sqlite::SqliteSink;
use crate::ledger::{LedgerSink, Outcome, PricingStatus, UsageRecord, UsageSource};

fn spent(limits: &Limits, key: usize, now: DateTime<Utc>) -> (Decimal, Decimal) {
    limits.keys[key].budget.as_ref().unwrap().spent_at(now)
}

#[test]
fn expected_cost_over_the_remaining_day_refuses_until_utc_midnight() {
    let limits = limits();
    let noon = utc("2025-03-14T12:00:00Z");
    limits.check_budget(A, dec!(0.60), noon).unwrap();
    limits.charge(A, Some(dec!(0.60)), 0, noon);

    let refusal = limits.check_budget(A, dec!(0.41), noon).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::BudgetExceeded);
    assert_eq!(
        refusal.retry_after,
        std::time::Duration::from_secs(12 * 3600)
    );
    let m = &refusal.message;
    assert!(
        m.contains(r#"key "a" has spent $0.6 of its $1 daily budget"#),
        "{m}"
    );
    assert!(m.contains("expected to cost $0.41"), "{m}");
    assert!(m.contains("resets at 2025-03-15T00:00:00Z"), "{m}");
    assert!(m.contains("budget.usd_per_day"), "{m}");
    assert_eq!(
        refusal.into_gateway_error().code,
        crate::api::error::ErrorCode::BudgetExceeded
    );

    // Exactly the remaining $0.40 fits; once spent, even a free request is refused.
    limits.check_budget(A, dec!(0.40), noon).unwrap();
    limits.charge(A, Some(dec!(0.40)), 0, noon);
    let late = utc("2025-03-14T23:59:59Z");
    let refusal = limits.check_budget(A, Decimal::ZERO, late).unwrap_err();
    assert_eq!(refusal.retry_after, std::time::Duration::from_secs(1));

    // Unpriced requests charge nothing; other keys are unaffected.
    limits.charge(A, None, 10, late);
    assert_eq!(spent(&limits, A, late), (dec!(1.00), dec!(1.00)));
    limits.check_budget(C, dec!(1000), late).unwrap();

    let midnight = utc("2025-03-15T00:00:00Z");
    limits.check_budget(A, dec!(1.00), midnight).unwrap();
    assert_eq!(spent(&limits, A, midnight), (dec!(0), dec!(1.00)));
    // A request of yesterday finishing now counts in the month, not in the new day.
    limits.charge(A, Some(dec!(0.30)), 0, late);
    assert_eq!(spent(&limits, A, midnight), (dec!(0), dec!(1.30)));
}

#[test]
fn the_month_budget_spans_days_and_resets_on_the_first() {
    let limits = limits();
    // $0.98 on each of five December days: $4.90 of the $5.00 month.
    for day in 26..=30 {
        let at = utc(&format!("2024-12-{day}T10:00:00Z"));
        limits.check_budget(A, dec!(0.98), at).unwrap();
        limits.charge(A, Some(dec!(0.98)), 0, at);
    }
    // A new day, but the same month: $0.11 fits the day and not the month.
    let eve = utc("2024-12-31T18:00:00Z");
    let refusal = limits.check_budget(A, dec!(0.11), eve).unwrap_err();
    let m = &refusal.message;
    assert!(m.contains("has spent $4.9 of its $5 monthly budget"), "{m}");
    assert!(m.contains("resets at 2025-01-01T00:00:00Z"), "{m}");
    assert!(m.contains("budget.usd_per_month"), "{m}");
    assert_eq!(
        refusal.retry_after,
        std::time::Duration::from_secs(6 * 3600)
    );
    limits.check_budget(A, dec!(0.10), eve).unwrap();

    let new_year = utc("2025-01-01T00:00:00Z");
    limits.check_budget(A, dec!(1.00), new_year).unwrap();
    assert_eq!(spent(&limits, A, new_year), (dec!(0), dec!(0)));
}

#[test]
fn a_team_budget_is_shared_by_its_keys() {
    let limits = limits();
    let now = utc("2025-03-14T12:00:00Z");
    limits.charge(A, Some(dec!(0.80)), 0, now);
    limits.charge(B, Some(dec!(0.60)), 0, now);
    // b has no budget of its own, but the team has spent $1.40 of $1.50.
    let refusal = limits.check_budget(B, dec!(0.20), now).unwrap_err();
    let m = &refusal.message;
    assert!(
        m.contains(r#"team "research" of key "b" has spent $1.4 of its $1.5"#),
        "{m}"
    );
    limits.check_budget(B, dec!(0.10), now).unwrap();
    limits.check_budget(A, dec!(0.10), now).unwrap();
    let refusal = limits.check_budget(A, dec!(0.11), now).unwrap_err();
    assert!(refusal.message.contains("team"), "{}", refusal.message);
    // c is in no team.
    limits.check_budget(C, dec!(5), now).unwrap();
}

fn record(id: &str, key: &str, at: &str, cost: Option<Decimal>) -> UsageRecord {
    UsageRecord {
        request_id: id.to_owned(),
        created_at: utc(at),
        key_name: key.to_owned(),
        team: None,
        route: "/v1/chat/completions".to_owned(),
        logical_model: Some("r1".to_owned()),
        provider: Some("ds".to_owned()),
        upstream_model: Some("deepseek-reasoner".to_owned()),
        region: Some("deepseek:cn".to_owned()),
        jurisdiction: Some("CN".to_owned()),
        processing_scope: Some("regional".to_owned()),
        stream: false,
        input_tokens: Some(10),
        cached_input_tokens: Some(0),
        cache_write_tokens: None,
        cache_write_1h_tokens: None,
        output_tokens: Some(20),
        reasoning_tokens: None,
        usage_source: UsageSource::Reported,
        cost_usd: cost,
        price_id: cost.map(|_| "deepseek/deepseek-reasoner/x".to_owned()),
        pricing: if cost.is_some() {
            PricingStatus::Priced
        } else {
            PricingStatus::Unpriced
        },
        latency_ms: 5,
        ttfb_ms: Some(2),
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        attempts: 1,
        policy: serde_json::json!({}).into(),
        audit: Default::default(),
    }
}

#[tokio::test]
async fn rebuild_from_the_ledger_gives_exactly_today_and_this_month() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ledger.db");
    let sink = SqliteSink::open(&path).unwrap();
    let rows = [
        record(
            "1",
            "a",
            "2025-03-15T00:00:00.000Z",
            Some(dec!(0.123456789)),
        ),
        record("2", "a", "2025-03-15T11:59:59.999Z", Some(dec!(0.3))),
        record("3", "a", "2025-03-14T23:59:59.999Z", Some(dec!(0.5))),
        record("4", "a", "2025-02-28T23:59:59.999Z", Some(dec!(7))),
        record("5", "a", "2025-03-15T08:00:00Z", None),
        record("6", "b", "2025-03-15T09:00:00Z", Some(dec!(0.25))),
        record("7", "b", "2025-03-01T00:00:00Z", Some(dec!(0.000000001))),
        record("8", "gone", "2025-03-15T09:00:00Z", Some(dec!(9))),
        record("9", "c", "2025-03-15T09:00:00Z", Some(dec!(1))),
        record("10", "a", "2025-04-01T00:00:00Z", Some(dec!(3))),
    ];
    sink.write_batch(&rows).await.unwrap();
    drop(sink);

    let limits = limits();
    let now = utc("2025-03-15T12:00:00Z");
    // Spend tracked before the rebuild is replaced, not added to.
    limits.charge(A, Some(dec!(0.9)), 0, now);
    let store = crate::ledger::LedgerStore::Sqlite(path.clone());
    limits.rebuild_from_ledger(&store, now).await.unwrap();

    assert_eq!(
        spent(&limits, A, now),
        (dec!(0.423456789), dec!(0.923456789))
    );
    let team = limits.teams[0].budget.as_ref().unwrap().spent_at(now);
    assert_eq!(team, (dec!(0.673456789), dec!(1.173456790)));
    // The key's day budget has exactly $0.576543211 left.
    limits.check_budget(A, dec!(0.576543211), now).unwrap();
    limits.check_budget(A, dec!(0.576543212), now).unwrap_err();
}
