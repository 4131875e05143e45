//! Limits shared through Redis: two gateways (two replicas, in one test process)
//! sharing one Redis and key prefix enforce one request rate and one budget; and when
//! Redis cannot be reached, `on_redis_error` decides (rate limits allow, budgets deny
//! by default), counted in `tollgate_limits_backend_errors_total`.
//!
//! The shared tests need a Redis at `TOLLGATE_TEST_REDIS_URL`, so a plain `cargo test`
//! lists them as ignored (with that reason), never as passed; `.ci/run` starts one,
//! sets the variable and runs them with `--ignored`. Run by hand without the
//! variable, they fail saying what is missing. Each test uses its own key prefix.

#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "test helpers: a failed step fails the test"
)]

mod common;

use std::time::Duration;

use common::*;
use serde_json::json;

fn redis_url() -> String {
    std::env::var("TOLLGATE_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("TOLLGATE_TEST_REDIS_URL is unset: there is no Redis to share limits through (.ci/run sets it)")
    })
}

fn prefix() -> String {
    format!("tollgate-test-{}:", uuid::Uuid::now_v7())
}

fn config(base: &str, key_extra: &str, limits: &str) -> String {
    format!(
        r#"
{limits}

[[keys]]
name = "demo"
hash = "{KEY_HASH}"
{key_extra}

[[providers]]
id = "openai"
kind = "openai"
base_url = "{base}"
api_key = "env:OPENAI"
region = "openai:us"
jurisdiction = "US"
scope = "global"

[[models]]
name = "o1"
offers = [{{ provider = "openai", upstream_model = "o1", price = "openai/o1" }}]
"#
    )
}

fn shared(url: &str, prefix: &str) -> String {
    format!("[limits]\nredis_url = {url:?}\nkey_prefix = {prefix:?}\n")
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_REDIS_URL (a Redis); .ci/run sets it and runs this"]
async fn two_replicas_sharing_redis_admit_one_rate_limit_in_total() {
    let url = redis_url();
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = config(
        &fake.base_url,
        "rate_limit = { requests_per_minute = 5 }",
        &shared(&url, &prefix()),
    );
    let mut gws = [start_gateway(&config).await, start_gateway(&config).await];
    let mut statuses = Vec::new();
    for i in 0..8 {
        let resp = gws[i % 2].chat(chat_body("o1")).await;
        statuses.push(resp.status().as_u16());
        if resp.status() == 429 {
            let (_, body) = error_of(resp).await;
            assert_eq!(body["error"]["code"], "rate_limited");
        }
    }
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "one limit of 5 a minute across both replicas: {statuses:?}"
    );
    assert_eq!(statuses[5..], [429, 429, 429], "{statuses:?}");
    assert_eq!(fake.count(), 5);
    for gw in &mut gws {
        gw.stop().await;
    }
}

/// The day's spend of key `demo` in pico-dollars, once it is at least `at_least`.
async fn spend_reaches(url: &str, prefix: &str, at_least: i64) -> i64 {
    let client = redis::Client::open(url).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let day = chrono::Utc::now().format("%Y-%m-%d");
    let key = format!("{prefix}budget:key:demo:day:{day}");
    for _ in 0..100 {
        let spent: Option<i64> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut conn)
            .await
            .unwrap();
        if let Some(spent) = spent.filter(|s| *s >= at_least) {
            return spent;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the spend in {key} never reached {at_least}");
}

#[tokio::test]
#[ignore = "needs TOLLGATE_TEST_REDIS_URL (a Redis); .ci/run sets it and runs this"]
async fn a_budget_spent_through_one_replica_refuses_on_the_other() {
    let url = redis_url();
    // Each answer costs 0.170595 (o1 fixture); the day's budget is 0.30. A plain
    // request is expected to cost about 0.06, one asking for 4000 output tokens 0.24.
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let prefix = prefix();
    let config = config(
        &fake.base_url,
        "budget = { usd_per_day = \"0.30\" }",
        &shared(&url, &prefix),
    );
    let mut first = start_gateway(&config).await;
    let mut second = start_gateway(&config).await;
    assert_eq!(first.chat(chat_body("o1")).await.status(), 200);
    assert_eq!(spend_reaches(&url, &prefix, 1).await, 170_595_000_000);

    let big = json!({"model": "o1", "max_completion_tokens": 4000, "messages": [{"role": "user", "content": "long answer please"}]});
    let (status, body) = error_of(second.chat(big).await).await;
    assert_eq!(status, 429);
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("$0.170595 of its $0.3"), "{message}");

    assert_eq!(second.chat(chat_body("o1")).await.status(), 200);
    // Summed exactly, in pico-dollars.
    assert_eq!(
        spend_reaches(&url, &prefix, 170_595_000_001).await,
        341_190_000_000
    );
    let (status, body) = error_of(first.chat(chat_body("o1")).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("budget_exceeded"))
    );
    assert_eq!(fake.count(), 2);
    first.stop().await;
    second.stop().await;
}

/// `tollgate_limits_backend_errors_total{decision}` as exposed by `gw`.
async fn backend_errors(gw: &Gateway, decision: &str) -> u64 {
    let text = Gateway::client()
        .get(format!("{}/metrics", gw.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let series = format!("tollgate_limits_backend_errors_total{{decision=\"{decision}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&series))
        .map_or(0, |v| v.trim().parse().unwrap())
}

#[tokio::test]
async fn unreachable_redis_lets_rate_limits_through_and_refuses_budgets_by_default() {
    // Nothing listens on port 1: every Redis call fails.
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let closed = "[limits]\nredis_url = \"redis://127.0.0.1:1/\"\n";
    let limits = "rate_limit = { requests_per_minute = 1 }\nbudget = { usd_per_day = \"1\" }";
    let mut gw = start_gateway(&config(&fake.base_url, limits, closed)).await;
    let (allowed, denied) = (
        backend_errors(&gw, "allowed").await,
        backend_errors(&gw, "denied").await,
    );
    for _ in 0..3 {
        let (status, body) = error_of(gw.chat(chat_body("o1")).await).await;
        assert_eq!(status, 429);
        // Past the rate limit (1 a minute, yet 3 got there), refused by the budget.
        assert_eq!(body["error"]["code"], "budget_exceeded", "{body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot reach the shared store (Redis)")
                && message.contains("limits.on_redis_error"),
            "{message}"
        );
    }
    assert_eq!(backend_errors(&gw, "allowed").await - allowed, 3);
    assert_eq!(backend_errors(&gw, "denied").await - denied, 3);
    assert_eq!(fake.count(), 0);
    gw.stop().await;

    // Reversed: rate limits fail closed, budgets open.
    let reversed =
        format!("{closed}on_redis_error = {{ rate_limits = \"deny\", budgets = \"allow\" }}\n");
    let mut gw = start_gateway(&config(&fake.base_url, limits, &reversed)).await;
    let (status, body) = error_of(gw.chat(chat_body("o1")).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("rate_limited"))
    );
    assert_eq!(fake.count(), 0);
    gw.stop().await;
}
