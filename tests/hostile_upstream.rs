//! Misbehaving upstreams (issue 10): a redirect is never followed (the prompt and the
//! provider key go nowhere else), an absurd `retry-after` holds an offer off only up to
//! `upstream.max_retry_after`, an upstream's own `tollgate` object or cost headers never
//! reach the client, and implausible usage is billed from tollgate's own count.

#![expect(
    clippy::unwrap_used,
    reason = "the helpers below are test code; a failure should fail the test"
)]

mod common;

use std::time::Duration;

use common::*;
use rust_decimal::Decimal;
use serde_json::{json, Value};

/// Two EU providers (`p1` of `kind1`, `p2` openai_compatible) serving model `m` in
/// that order, and the demo key with `key_extra`.
fn two_offer_config(kind1: &str, url1: &str, url2: &str, key_extra: &str) -> String {
    let p1_extra = if kind1 == "azure_openai" {
        "api_version = \"2024-12-01-preview\""
    } else {
        ""
    };
    format!(
        r#"
[[keys]]
name = "demo"
hash = "{KEY_HASH}"
{key_extra}

[[providers]]
id = "p1"
kind = "{kind1}"
base_url = "{url1}"
api_key = "env:P1_KEY"
region = "test:eu-1"
jurisdiction = "EU"
scope = "regional"
{p1_extra}

[[providers]]
id = "p2"
kind = "openai_compatible"
base_url = "{url2}"
api_key = "env:P2_KEY"
region = "test:eu-2"
jurisdiction = "EU"
scope = "regional"

[[models]]
name = "m"
offers = [
  {{ provider = "p1", upstream_model = "gpt-4o", price = "openai/gpt-4o" }},
  {{ provider = "p2", upstream_model = "gpt-4o", price = "openai/gpt-4o" }},
]
"#
    )
}

/// A 307 to `target`, as a hostile or misconfigured upstream would answer.
fn redirect_to(target: &FakeUpstream, path: &str) -> Reply {
    Reply::error(
        307,
        "",
        vec![("location", format!("{}{path}", target.base_url))],
    )
}

fn answer(content: &str, usage: &str) -> String {
    format!(
        r#"{{"id":"chatcmpl-1","object":"chat.completion","created":1,"model":"gpt-4o","choices":[{{"index":0,"finish_reason":"stop","message":{{"role":"assistant","content":"{content}"}}}}],"usage":{usage}}}"#
    )
}

async fn metrics_text(gw: &Gateway) -> String {
    Gateway::client()
        .get(format!("{}/metrics", gw.admin_url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

fn has_series(text: &str, name: &str, labels: &[&str]) -> bool {
    text.lines()
        .any(|l| l.starts_with(name) && labels.iter().all(|x| l.contains(x)))
}

// Regression: issue 10 item 1 — an EU upstream's 307 re-posted the prompt elsewhere.
#[tokio::test]
async fn a_redirect_is_never_followed_and_fails_the_attempt() {
    let elsewhere = FakeUpstream::start(Reply::json(answer("leaked", "null"))).await;
    let p1 = FakeUpstream::start(redirect_to(&elsewhere, "/v1/chat/completions")).await;
    let mut gw = start_gateway(&one_offer_config(
        "openai_compatible",
        &p1.base_url,
        "",
        "EU",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    ))
    .await;
    let (status, body) = error_of(gw.chat(chat_body("m")).await).await;
    assert_eq!(status, 502);
    assert_eq!(body["error"]["code"], "upstream_error");
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("redirect"), "{message}");
    assert!(!message.contains(&elsewhere.base_url), "{message}");
    assert_eq!(elsewhere.count(), 0, "the redirect target received nothing");
    assert!(p1.count() >= 1);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["provider"], "p1");
    assert_eq!(rows[0]["status"], 502);
    assert_eq!(rows[0]["outcome"], "upstream_error");
    assert_eq!(rows[0]["error_code"], "upstream_error");
    assert!(has_series(
        &metrics_text(&gw).await,
        "tollgate_upstream_failures_total",
        &["provider=\"p1\"", "reason=\"redirect\""]
    ));
    gw.stop().await;
}

// Regression: issue 10 item 1 — Azure's `api-key` survived a cross-host redirect.
// The rule is "no redirect is followed", so a downgrade (https to http) is refused the
// same way; the fakes speak plain HTTP.
#[tokio::test]
async fn an_azure_redirect_fails_over_to_the_next_allowed_offer_and_leaks_no_key() {
    let elsewhere = FakeUpstream::start(Reply::json(answer("leaked", "null"))).await;
    let p1 = FakeUpstream::start(redirect_to(
        &elsewhere,
        "/openai/deployments/gpt-4o/chat/completions",
    ))
    .await;
    let usage = r#"{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}"#;
    let p2 = FakeUpstream::start(Reply::json(answer("Hi there", usage))).await;
    let mut gw = start_gateway(&two_offer_config(
        "azure_openai",
        &p1.base_url,
        &p2.base_url,
        "",
    ))
    .await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-tollgate-provider"], "p2");
    assert_eq!(elsewhere.count(), 0, "the redirect target received nothing");
    assert_eq!(p1.received()[0].headers["api-key"], "secret-P1_KEY");
    assert_eq!(p2.count(), 1);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["provider"], "p2");
    assert_eq!(rows[0]["attempts"], 2);
    assert_eq!(rows[0]["usage_source"], "reported");
    assert!(has_series(
        &metrics_text(&gw).await,
        "tollgate_upstream_failures_total",
        &["provider=\"p1\"", "reason=\"redirect\""]
    ));
    gw.stop().await;
}

// Regression: issue 10 item 5 — `retry-after: 2^64-1` held the offer off until restart.
#[tokio::test]
async fn an_absurd_retry_after_holds_the_offer_off_only_up_to_the_clamp() {
    let ok = answer(
        "Hi",
        r#"{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}"#,
    );
    let fake = FakeUpstream::start(Reply::json(ok)).await;
    fake.push(Reply::error(
        429,
        r#"{"error":{"message":"slow down","type":"rate_limit","code":null}}"#,
        vec![("retry-after", "18446744073709551615".into())],
    ));
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    );
    // The harness's config starts inside `[upstream]`: this line belongs to it.
    let mut gw = start_gateway(&format!("max_retry_after = \"1s\"\n{config}")).await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 429);
    assert_eq!(resp.headers()["retry-after"], "1");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = gw.chat(chat_body("m")).await.status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 429);
        assert!(
            tokio::time::Instant::now() < deadline,
            "the offer was still held off"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        fake.count(),
        2,
        "held off in between: no attempt reached the upstream"
    );
    gw.stop().await;
}

/// Headers a hostile upstream (or another gateway in front of it) adds.
fn spoofed_headers() -> Vec<(&'static str, String)> {
    vec![
        ("x-tollgate-cost-usd", "0.00".into()),
        ("x-tollgate-provider", "spoofed".into()),
        ("x-litellm-response-cost", "0.0".into()),
    ]
}

/// An SSE answer of `events` (data payloads, `[DONE]` appended) with spoofed headers.
fn sse(events: &[String]) -> Reply {
    let mut text: String = events.iter().map(|c| format!("data: {c}\n\n")).collect();
    text.push_str("data: [DONE]\n\n");
    Reply::SseWithHeaders {
        headers: spoofed_headers(),
        steps: split_events(&text).into_iter().map(Step::Send).collect(),
    }
}

fn delta(content: &str) -> Value {
    json!({"id": "c", "object": "chat.completion.chunk", "choices": [
        {"index": 0, "delta": {"content": content}, "finish_reason": null}]})
}

fn spoof() -> Value {
    json!({"cost_usd": "0.00", "provider": "spoofed"})
}

/// A stream whose upstream puts its own `tollgate` object in a content chunk (plainly and
/// with an escaped key, which JSON parsers decode to the same name) and in a usage chunk
/// that carries only `prompt_tokens`.
fn spoofing_stream() -> Reply {
    let mut first = delta("Hi");
    first["tollgate"] = spoof();
    let escaped = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":" there"},"finish_reason":null}],"\u0074ollgate":{"cost_usd":"0.00","provider":"spoofed"}}"#;
    let usage = json!({"id": "c", "object": "chat.completion.chunk", "choices": [],
        "usage": {"prompt_tokens": 9}, "tollgate": spoof()});
    sse(&[first.to_string(), escaped.to_owned(), usage.to_string()])
}

// Regression: issue 10 item 3 — an upstream's `tollgate` object reached streaming clients.
#[tokio::test]
async fn a_stream_carries_only_tollgates_own_tollgate_object() {
    for include_usage in [true, false] {
        let fake = FakeUpstream::start(spoofing_stream()).await;
        let mut gw = start_gateway(&one_offer_config(
            "openai",
            &fake.base_url,
            "",
            "US",
            "m",
            "gpt-4o",
            Some("openai/gpt-4o"),
        ))
        .await;
        let mut body = json!({"model": "m", "stream": true,
            "messages": [{"role": "user", "content": "Say hi"}]});
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let resp = gw.chat(body).await;
        assert_eq!(resp.status(), 200);
        assert!(resp.headers().get("x-tollgate-cost-usd").is_none());
        assert!(resp.headers().get("x-litellm-response-cost").is_none());
        assert_eq!(resp.headers()["x-tollgate-provider"], "p1");
        let data = sse_data(resp).await;
        assert!(!data.iter().any(|d| d.contains("spoofed")), "{data:?}");
        let chunks: Vec<Value> = data
            .iter()
            .filter(|d| *d != "[DONE]")
            .map(|d| serde_json::from_str(d).unwrap())
            .collect();
        let objects: Vec<&Value> = chunks.iter().filter_map(|c| c.get("tollgate")).collect();
        let rows = gw.ledger_rows().await;
        if include_usage {
            assert_eq!(objects.len(), 1, "{chunks:?}");
            let last = chunks.last().unwrap();
            assert_eq!(last["usage"]["prompt_tokens"], 9);
            let ours = &last["tollgate"];
            assert_eq!(ours["provider"], "p1");
            assert_eq!(ours["usage_source"], "estimated");
            assert_eq!(ours["cost_usd"], rows[0]["cost_usd"]);
            assert_eq!(ours["usage"]["input_tokens"], rows[0]["input_tokens"]);
        } else {
            assert!(objects.is_empty(), "{chunks:?}");
        }
        assert_eq!(
            chunks
                .iter()
                .filter_map(|c| c["choices"][0]["delta"]["content"].as_str())
                .collect::<String>(),
            "Hi there"
        );
        gw.stop().await;
    }
}

#[tokio::test]
async fn a_plain_answer_carries_only_tollgates_own_object_and_headers() {
    let usage = r#"{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}"#;
    let mut spoofed: Value = serde_json::from_str(&answer("Hi there", usage)).unwrap();
    spoofed["tollgate"] = spoof();
    let fake = FakeUpstream::start(Reply::Json {
        status: 200,
        headers: spoofed_headers(),
        body: spoofed.to_string(),
    })
    .await;
    let mut gw = start_gateway(&one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    ))
    .await;
    let resp = gw.chat(chat_body("m")).await;
    // 9·2.50 + 2·10 = 42.5 → 0.0000425
    assert_eq!(resp.headers()["x-tollgate-cost-usd"], "0.0000425");
    assert_eq!(resp.headers()["x-tollgate-provider"], "p1");
    assert!(resp.headers().get("x-litellm-response-cost").is_none());
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["tollgate"]["provider"], "p1");
    assert_eq!(body["tollgate"]["cost_usd"], "0.0000425");
    gw.stop().await;
}

const ABSURD: &str = r#"{"prompt_tokens":18446744073709551615,"completion_tokens":18446744073709551615,"total_tokens":18446744073709551615}"#;

// Regression: issue 10 item 4 — 2^64-1 reported tokens were billed, locked the key out
// and wrapped the usage totals.
#[tokio::test]
async fn absurd_reported_usage_is_billed_from_tollgates_own_count() {
    let fake = FakeUpstream::start(Reply::json(answer("Hi there", ABSURD))).await;
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    )
    .replacen("hash = ", "budget = { usd_per_day = \"1.00\" }\nhash = ", 1);
    let mut gw = start_gateway(&config).await;
    for _ in 0..2 {
        let resp = gw.chat(chat_body("m")).await;
        assert_eq!(resp.status(), 200, "the key is not locked out");
        assert_eq!(resp.headers()["x-tollgate-usage-source"], "implausible");
        let body: Value = resp.json().await.unwrap();
        assert_eq!(body["tollgate"]["usage_source"], "implausible");
    }
    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 2);
    for row in &rows {
        assert_eq!(row["usage_source"], "implausible");
        // Billed from tollgate's own count: the prompt and "Hi there" (2 tokens).
        assert_eq!(row["input_tokens"], row["counted_input_tokens"]);
        assert_eq!(row["output_tokens"], 2);
        let input = row["input_tokens"].as_i64().unwrap();
        let expected = (Decimal::from(input) * Decimal::new(250, 2) + Decimal::from(20))
            / Decimal::from(1_000_000);
        let cost: Decimal = row["cost_usd"].as_str().unwrap().parse().unwrap();
        assert_eq!(cost, expected);
    }
    let today = chrono::Utc::now().date_naive();
    let query = format!(
        "/admin/usage?from={}&to={}",
        today,
        today.succ_opt().unwrap()
    );
    let summary: Value = Gateway::client()
        .get(format!("{}{query}", gw.admin_url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let input = rows[0]["input_tokens"].as_u64().unwrap();
    assert_eq!(summary["totals"]["input_tokens"], json!(2 * input));
    assert_eq!(summary["totals"]["output_tokens"], 4);
    assert_eq!(summary["totals"]["estimated_requests"], 2);
    assert!(has_series(
        &metrics_text(&gw).await,
        "tollgate_implausible_usage_total",
        &["provider=\"p1\""]
    ));
    gw.stop().await;
}

#[tokio::test]
async fn absurd_usage_in_a_stream_is_marked_implausible_in_the_tollgate_object() {
    let usage: Value = serde_json::from_str(ABSURD).unwrap();
    let reply = sse(&[
        delta("Hi").to_string(),
        json!({"id": "c", "object": "chat.completion.chunk", "choices": [], "usage": usage})
            .to_string(),
    ]);
    let fake = FakeUpstream::start(reply).await;
    let mut gw = start_gateway(&one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    ))
    .await;
    let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hi"}]});
    let data = sse_data(gw.chat(body).await).await;
    let last: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(last["tollgate"]["usage_source"], "implausible");
    assert_eq!(last["tollgate"]["usage"]["output_tokens"], 1);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["usage_source"], "implausible");
    assert_eq!(rows[0]["output_tokens"], 1);
    assert_eq!(last["tollgate"]["cost_usd"], rows[0]["cost_usd"]);
    gw.stop().await;
}
