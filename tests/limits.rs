//! Limits end to end: an exhausted upstream quota is routed around (and answered with
//! 429 when nothing else is allowed), a key's request rate and its budget refuse with
//! 429 and `retry-after`, and a budget survives a restart because it is rebuilt from
//! the ledger.

mod common;

use common::*;
use serde_json::json;

fn quota_config(github: &str, other: &str, with_fallback: bool) -> String {
    let fallback = if with_fallback {
        r#", { provider = "together", upstream_model = "deepseek-ai/DeepSeek-R1", price = "together/deepseek-ai/DeepSeek-R1" }"#
    } else {
        ""
    };
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"

[[providers]]
id = "github"
kind = "github_models"
base_url = "{github}"
api_key = "env:GH"
region = "github:unspecified"
jurisdiction = "US"
scope = "global"

[[providers]]
id = "together"
kind = "openai_compatible"
base_url = "{other}"
api_key = "env:TOGETHER"
region = "together:us"
jurisdiction = "US"
scope = "regional"

[[models]]
name = "deepseek-r1"
routing = "cheapest"
offers = [
  {{ provider = "github", upstream_model = "deepseek/DeepSeek-R1", price = "github-models/deepseek/DeepSeek-R1/free", quota = {{ requests_per_minute = 10, requests_per_day = 2 }} }}{fallback}
]
"#
    )
}

#[tokio::test]
async fn after_the_free_tier_quota_requests_go_elsewhere_then_429_when_nothing_else_is_allowed() {
    let github = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let together = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = start_gateway(&quota_config(&github.base_url, &together.base_url, true)).await;
    let mut served_by = Vec::new();
    for _ in 0..4 {
        let resp = gw.chat(chat_body("deepseek-r1")).await;
        assert_eq!(resp.status(), 200);
        served_by.push(
            resp.headers()["x-tollgate-provider"]
                .to_str()
                .unwrap()
                .to_owned(),
        );
    }
    assert_eq!(
        served_by,
        ["github", "github", "together", "together"],
        "free tier first, then around it"
    );
    assert_eq!(
        (github.count(), together.count()),
        (2, 2),
        "no request was spent on an exhausted quota"
    );
    gw.stop().await;

    let github = FakeUpstream::start(Reply::json(fixture("github_models/chat_r1.json"))).await;
    let mut gw = start_gateway(&quota_config(&github.base_url, &github.base_url, false)).await;
    for _ in 0..2 {
        assert_eq!(gw.chat(chat_body("deepseek-r1")).await.status(), 200);
    }
    let resp = gw.chat(chat_body("deepseek-r1")).await;
    assert_eq!(resp.status(), 429);
    let retry_after: u64 = resp.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        retry_after > 23 * 3600,
        "the daily quota resets in about a day, not {retry_after}s"
    );
    let (_, body) = error_of(resp).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(github.count(), 2);
    gw.stop().await;
}

fn o1_config(base: &str, key_extra: &str) -> String {
    format!(
        r#"
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

#[tokio::test]
async fn a_keys_request_rate_is_limited_with_retry_after() {
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let mut gw = start_gateway(&o1_config(
        &fake.base_url,
        "rate_limit = { requests_per_minute = 2 }",
    ))
    .await;
    for _ in 0..2 {
        assert_eq!(gw.chat(chat_body("o1")).await.status(), 200);
    }
    let resp = gw.chat(chat_body("o1")).await;
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (_, body) = error_of(resp).await;
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(
        fake.count(),
        2,
        "the refused request never reached the provider"
    );
    gw.stop().await;
}

#[tokio::test]
async fn a_spent_budget_refuses_and_survives_a_restart() {
    // Each answer costs 0.170595 (o1 fixture); the day's budget is 0.30. The first
    // request is expected to cost about 0.06 (prompt + 1024 output tokens) and passes;
    // after it only 0.129405 is left.
    let fake = FakeUpstream::start(Reply::json(fixture("openai/chat_o1.json"))).await;
    let config = o1_config(&fake.base_url, "budget = { usd_per_day = \"0.30\" }");
    let gw = start_gateway(&config).await;
    assert_eq!(gw.chat(chat_body("o1")).await.status(), 200);
    let big = json!({"model": "o1", "max_completion_tokens": 4000, "messages": [{"role": "user", "content": "long answer please"}]});
    // 4000 output tokens at $60/M = 0.24 > what is left.
    let resp = gw.chat(big.clone()).await;
    assert_eq!(resp.status(), 429);
    let (_, body) = error_of(resp).await;
    assert_eq!(body["error"]["code"], "budget_exceeded");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(
        message.contains("T00:00:00Z"),
        "says when the budget resets: {message}"
    );
    assert_eq!(fake.count(), 1);

    // A restart rebuilds today's spend from the ledger: still refused.
    let mut gw = gw.restart(&config).await;
    let resp = gw.chat(big).await;
    assert_eq!(
        resp.status(),
        429,
        "the budget was forgotten across the restart"
    );
    assert_eq!(fake.count(), 1);
    gw.stop().await;
}
