use std::collections::HashMap;
use std::time::Duration;

use chrono::{TimeZone, Utc};
use serde_json::json;

use super::*;
use crate::config::{ModelSettings, OfferSettings, RoutingSettings, RoutingStrategy};

const CATALOG: &str = r#"
[[prices]]
id = "cheap/1"
offer = "cheap"
currency = "USD"
input_per_mtok = "0.55"
output_per_mtok = "2.19"
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"

[[prices]]
id = "dear/1"
offer = "dear"
currency = "USD"
input_per_mtok = "1.35"
output_per_mtok = "5.40"
effective_from = "2025-01-01"
source = "test"
as_of = "2025-01-01"
"#;

fn model(strategy: RoutingStrategy, offers: &[(&str, Option<&str>, u32)]) -> ModelSettings {
    ModelSettings {
        name: "m".into(),
        kind: Default::default(),
        strategy,
        offers: offers
            .iter()
            .enumerate()
            .map(|(i, (upstream, price, weight))| OfferSettings {
                provider: i,
                upstream_model: (*upstream).into(),
                price: price.map(str::to_owned),
                weight: *weight,
                quota: Default::default(),
            })
            .collect(),
    }
}

fn router(models: usize, offers: usize, failures: u32, cooldown: Duration) -> Router {
    Router {
        health: (0..models)
            .map(|_| (0..offers).map(|_| OfferHealth::new()).collect())
            .collect(),
        settings: RoutingSettings {
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            breaker_failures: failures,
            breaker_cooldown: cooldown,
        },
        epoch: tokio::time::Instant::now(),
    }
}

fn inputs<'a>(
    book: &'a PriceBook,
    messages: &'a serde_json::Value,
    max_output: Option<u64>,
) -> CostInputs<'a> {
    CostInputs {
        prompt_tokens: crate::tokens::estimate::prompt_estimate(&messages.to_string()),
        max_output,
        prices: book,
        at: Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap(),
        always: false,
    }
}

#[tokio::test]
async fn cheapest_orders_by_list_price_without_history() {
    let book = PriceBook::from_toml_str(CATALOG).unwrap();
    let m = model(
        RoutingStrategy::Cheapest,
        &[
            ("a", Some("dear"), 1),
            ("b", None, 1),
            ("c", Some("cheap"), 1),
        ],
    );
    let msgs = json!([{"role": "user", "content": "hello"}]);
    let order: Vec<usize> = router(1, 3, 5, Duration::from_secs(30))
        .order(0, &m, &[0, 1, 2], &inputs(&book, &msgs, Some(100)))
        .iter()
        .map(|c| c.offer)
        .collect();
    assert_eq!(order, vec![2, 0, 1], "cheap first, unpriced last");
}

#[tokio::test]
async fn a_cheaper_list_price_loses_when_the_model_thinks_long() {
    let book = PriceBook::from_toml_str(CATALOG).unwrap();
    let m = model(
        RoutingStrategy::Cheapest,
        &[
            ("thinks-long", Some("cheap"), 1),
            ("terse", Some("dear"), 1),
        ],
    );
    let r = router(1, 2, 5, Duration::from_secs(30));
    // Observed: the cheap offer answers with ~8000 output tokens (reasoning included),
    // the dear one with ~500: 8000·2.19 > 500·5.40.
    for _ in 0..5 {
        r.record_success(0, 0, Duration::from_millis(100), Some(8000));
        r.record_success(0, 1, Duration::from_millis(100), Some(500));
    }
    let msgs = json!([{"role": "user", "content": "prove it"}]);
    let order = r.order(0, &m, &[0, 1], &inputs(&book, &msgs, None));
    assert_eq!(order[0].offer, 1);
    assert!(order[0].expected_cost < order[1].expected_cost);
}

#[tokio::test]
async fn latency_prefers_the_faster_first_byte() {
    let book = PriceBook::from_toml_str(CATALOG).unwrap();
    let m = model(
        RoutingStrategy::Latency,
        &[("slow", None, 1), ("fast", None, 1)],
    );
    let r = router(1, 2, 5, Duration::from_secs(30));
    r.record_success(0, 0, Duration::from_millis(900), None);
    r.record_success(0, 1, Duration::from_millis(90), None);
    let msgs = json!([]);
    assert_eq!(
        r.order(0, &m, &[0, 1], &inputs(&book, &msgs, None))[0].offer,
        1
    );
}

#[tokio::test]
async fn weighted_follows_the_weights() {
    let book = PriceBook::from_toml_str(CATALOG).unwrap();
    let m = model(RoutingStrategy::Weighted, &[("a", None, 1), ("b", None, 3)]);
    let r = router(1, 2, 5, Duration::from_secs(30));
    let msgs = json!([]);
    let mut first: HashMap<usize, u32> = HashMap::new();
    for _ in 0..4000 {
        let order = r.order(0, &m, &[0, 1], &inputs(&book, &msgs, None));
        assert_eq!(order.len(), 2);
        *first.entry(order[0].offer).or_default() += 1;
    }
    let share_b = f64::from(first[&1]) / 4000.0;
    assert!(
        (0.70..0.80).contains(&share_b),
        "b should lead ~75% of the time, got {share_b}"
    );
}

#[tokio::test(start_paused = true)]
async fn the_breaker_opens_after_consecutive_failures_and_recovers_through_one_probe() {
    let r = router(1, 1, 3, Duration::from_secs(30));
    for _ in 0..2 {
        r.record_failure(0, 0);
        assert!(
            r.try_acquire(0, 0),
            "below the threshold the offer stays usable"
        );
    }
    r.record_failure(0, 0);
    assert!(!r.try_acquire(0, 0), "open after 3 consecutive failures");
    tokio::time::advance(Duration::from_secs(29)).await;
    assert!(!r.try_acquire(0, 0), "still cooling down");
    tokio::time::advance(Duration::from_secs(2)).await;
    assert!(r.try_acquire(0, 0), "half-open: one probe");
    assert!(!r.try_acquire(0, 0), "only one probe at a time");
    r.record_failure(0, 0);
    assert!(!r.try_acquire(0, 0), "a failed probe re-opens");
    tokio::time::advance(Duration::from_secs(31)).await;
    assert!(r.try_acquire(0, 0));
    r.record_success(0, 0, Duration::from_millis(50), None);
    assert!(
        r.try_acquire(0, 0) && r.try_acquire(0, 0),
        "closed again after a good probe"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_holds_an_offer_off_until_it_passes() {
    let r = router(1, 1, 3, Duration::from_secs(30));
    r.hold_off(0, 0, Duration::from_secs(5));
    assert!(!r.try_acquire(0, 0));
    assert_eq!(r.held_off_for(0, 0), Some(Duration::from_secs(5)));
    tokio::time::advance(Duration::from_secs(5)).await;
    assert!(r.try_acquire(0, 0));
}

#[test]
fn backoff_doubles_and_is_capped() {
    let r = Router {
        health: vec![],
        settings: RoutingSettings {
            retry_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_millis(350),
            breaker_failures: 1,
            breaker_cooldown: Duration::from_secs(1),
        },
        epoch: tokio::time::Instant::now(),
    };
    let got: Vec<u128> = r.backoff().take(4).map(|d| d.as_millis()).collect();
    assert_eq!(got, vec![100, 200, 350, 350]);
}
