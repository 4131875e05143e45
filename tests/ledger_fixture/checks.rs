//! The checks both ledgers (SQLite and PostgreSQL) must pass: the admin API's usage and
//! savings answers, and the budget rebuild's spend, equal the reference folds.

use std::collections::BTreeMap;

use rust_decimal::Decimal;
use serde_json::Value;
use tollgate::ledger::{Ledger, LedgerStore, UsageRecord};

use crate::common::{Gateway, KEY_HASH};
use crate::ledger_fixture as fixture;

const CONFIG: &str = r#"
[[keys]]
name = "k0"
hash = "KEY_HASH"

[[providers]]
id = "p-eu"
kind = "openai"
base_url = "http://127.0.0.1:9"
api_key = "env:P_KEY"
region = "test:eu-1"
jurisdiction = "EU"
scope = "regional"

[[models]]
name = "m-a"
offers = [{ provider = "p-eu", upstream_model = "a-1" }]

[[models]]
name = "m-b"
offers = [{ provider = "p-eu", upstream_model = "b-1" }]

[[models]]
name = "m-c"
offers = [{ provider = "p-eu", upstream_model = "c-1" }]

[comparison]
groups = { ab = ["m-a", "m-b"], all = ["m-a", "m-b", "m-c"] }
"#;

pub const COMPARISON: [(&str, &[&str]); 2] =
    [("ab", &["m-a", "m-b"]), ("all", &["m-a", "m-b", "m-c"])];

pub fn config() -> String {
    CONFIG.replace("KEY_HASH", KEY_HASH)
}

/// Write `records` through the gateway's ledger queue, a queue's worth at a time.
pub async fn write(ledger: &Ledger, records: &[UsageRecord]) {
    for chunk in records.chunks(4_000) {
        for r in chunk {
            ledger.record(r.clone());
        }
        ledger.flush().await.unwrap();
    }
    assert_eq!(ledger.dropped_total(), 0);
}

pub async fn admin_json(gw: &Gateway, path: &str) -> Value {
    let resp = Gateway::client()
        .get(format!("{}{path}", gw.admin_url))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

/// Every answer of the admin API equals the reference fold over `stored`.
pub async fn assert_answers_equal_the_fold(gw: &Gateway, stored: &[UsageRecord]) {
    for (query, from, to) in fixture::windows() {
        for grouping in fixture::GROUPINGS {
            let group_by: Vec<&str> = grouping.split(',').filter(|g| !g.is_empty()).collect();
            let body = admin_json(gw, &format!("/admin/usage?{query}&group_by={grouping}")).await;
            let want = fixture::usage(stored, from, to, &group_by, None, None);
            assert_eq!(
                fixture::usage_from_api(&body, &group_by),
                want,
                "{query} group_by={grouping}"
            );
        }
        let filtered = format!("/admin/usage?{query}&group_by=provider,hour&key=k2&model=m-b");
        let body = admin_json(gw, &filtered).await;
        let want = fixture::usage(
            stored,
            from,
            to,
            &["provider", "hour"],
            Some("k2"),
            Some("m-b"),
        );
        assert_eq!(
            fixture::usage_from_api(&body, &["provider", "hour"]),
            want,
            "{filtered}"
        );

        let mut body = admin_json(
            gw,
            &format!(
                "/admin/savings?{}",
                query.replace("&to=2026-03-12", "&to=2026-03-13")
            ),
        )
        .await;
        let obj = body.as_object_mut().unwrap();
        obj.remove("from");
        obj.remove("to");
        assert_eq!(
            body,
            fixture::savings(stored, from, to, &COMPARISON),
            "savings {query}"
        );
    }
    let mut everything = admin_json(gw, "/admin/savings").await;
    everything
        .as_object_mut()
        .unwrap()
        .retain(|k, _| k == "models" || k == "drift");
    let (all_from, all_to) = (
        fixture::start() - chrono::Duration::days(1),
        fixture::start() + chrono::Duration::days(30),
    );
    assert_eq!(
        everything,
        fixture::savings(stored, all_from, all_to, &COMPARISON)
    );
}

/// The budget rebuild's spend per key and day equals the fold, for the month.
pub async fn assert_daily_spend_equals_the_fold(store: &LedgerStore, stored: &[UsageRecord]) {
    let (from, to) = (
        fixture::start(),
        fixture::start() + chrono::Duration::days(31),
    );
    let got: BTreeMap<(String, i64), Decimal> = store
        .daily_spend(from.timestamp_millis(), to.timestamp_millis())
        .await
        .unwrap()
        .into_iter()
        .map(|(k, day, usd)| ((k, day), usd.normalize()))
        .collect();
    let want: BTreeMap<_, _> = fixture::daily_spend(stored, from, to)
        .into_iter()
        .map(|(k, v)| (k, v.normalize()))
        .collect();
    assert_eq!(got, want);
}
