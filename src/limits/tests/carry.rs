//! Reloads keep the limits' state: a new configuration's limits take over the previous
//! one's cells, windows and spend by name and offer identity, even when every index
//! shifts, and a changed limit applies to the state carried.

use rust_decimal_macros::dec;
use tokio::time::advance;

use super::*;

/// [`CONFIG`] with a key inserted before `a` and an offer inserted before GitHub's, so
/// that every index of a key and an offer with limits shifts by one.
fn shifted() -> String {
    CONFIG
        .replace(
            "[[keys]]\nname = \"a\"",
            "[[keys]]\nname = \"new\"\nhash = \"sha256:1111111111111111111111111111111111111111111111111111111111111111\"\n\n[[keys]]\nname = \"a\"",
        )
        .replace(
            "offers = [\n",
            "offers = [\n  { provider = \"ds\", upstream_model = \"deepseek-v3\", price = \"deepseek/deepseek-reasoner\" },\n",
        )
}

fn reloaded(before: &Limits, dir: &Path, config: &str) -> Limits {
    let mut after = Limits::new(&settings_from(dir, config));
    after.carry_over(before);
    after
}

// Regression: #10 (any reload built new limits: an rpm=2 key went from
// `200 200 429 429` back to `200 200 429`).
#[tokio::test(start_paused = true)]
async fn a_reload_keeps_rate_cells_quota_windows_and_spend_by_name_not_index() {
    let dir = tempfile::tempdir().unwrap();
    let now = utc("2025-03-10T12:00:00Z");
    let before = Limits::new(&settings(dir.path()));
    before.admit_request(A).unwrap();
    before.admit_request(A).unwrap();
    before.offer_available(0, 0, 10).unwrap();
    before.charge(A, Some(dec!(0.90)), 10, now);

    let after = reloaded(&before, dir.path(), &shifted());
    let (new_a, github) = (A + 1, 1);
    assert_eq!(
        after.admit_request(new_a).unwrap_err().kind,
        RefusalKind::RateLimited,
        "key a's two requests this minute still count"
    );
    after.admit_request(A).unwrap();
    let refusal = after.offer_available(0, github, 10).unwrap_err();
    assert_eq!(refusal.kind, RefusalKind::QuotaExhausted);
    after.offer_available(0, 0, 10).unwrap();
    assert_eq!(
        after.check_budget(new_a, dec!(0.20), now).unwrap_err().kind,
        RefusalKind::BudgetExceeded,
        "$0.90 of $1.00 spent today"
    );

    // A request finishing on the previous configuration charges the current spend.
    before.charge(A, Some(dec!(0.05)), 0, now);
    let spent = |l: &Limits, key: usize| l.keys[key].budget.as_ref().unwrap().spent_at(now);
    assert_eq!(spent(&after, new_a), (dec!(0.95), dec!(0.95)));
    let team = after.teams[0].budget.as_ref().unwrap().spent_at(now);
    assert_eq!(
        team,
        (dec!(0.95), dec!(0.95)),
        "the team's spend carries too"
    );
}

#[tokio::test(start_paused = true)]
async fn a_changed_rate_limit_counts_the_cells_already_in_use() {
    let dir = tempfile::tempdir().unwrap();
    let before = Limits::new(&settings(dir.path()));
    before.admit_request(A).unwrap();
    before.admit_request(A).unwrap();

    let raised = CONFIG.replace(
        "requests_per_minute = 2, tokens",
        "requests_per_minute = 4, tokens",
    );
    let after = reloaded(&before, dir.path(), &raised);
    after.admit_request(A).unwrap();
    after.admit_request(A).unwrap();
    let refusal = after.admit_request(A).unwrap_err();
    assert_eq!(
        refusal.retry_after,
        Duration::from_secs(15),
        "4 a minute refill every 15 s"
    );

    // Lowered below what is in use: the bucket is empty, not in debt; the next request
    // is one refill of the new limit away.
    let lowered = CONFIG.replace(
        "requests_per_minute = 2, tokens",
        "requests_per_minute = 1, tokens",
    );
    let last = reloaded(&after, dir.path(), &lowered);
    assert_eq!(
        last.admit_request(A).unwrap_err().retry_after,
        Duration::from_secs(60)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lowered_day_quota_keeps_the_newest_admissions() {
    let dir = tempfile::tempdir().unwrap();
    let before = Limits::new(&settings(dir.path()));
    for _ in 0..3 {
        before.offer_available(0, 0, 10).unwrap();
        advance(Duration::from_secs(60)).await;
    }
    let lowered = CONFIG.replace("requests_per_day = 8", "requests_per_day = 2");
    let after = reloaded(&before, dir.path(), &lowered);
    let refusal = after.offer_available(0, 0, 10).unwrap_err();
    assert!(
        refusal.message.contains("requests per day"),
        "{}",
        refusal.message
    );
    // The second admission (the older of the two kept) frees up 24 h after it was made.
    let day = Duration::from_secs(24 * 3600);
    assert_eq!(refusal.retry_after, day - Duration::from_secs(120));
}
