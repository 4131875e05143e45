//! Streaming through the gateway: chunks relayed as they arrive, usage read from
//! every provider's stream shape, the usage-only chunk hidden from clients that did
//! not ask for it, and exactly one record for a stream the client abandons.

#![expect(
    clippy::unwrap_used,
    reason = "the chunk parser below is test code; a failure should fail the test"
)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::*;
use futures_util::StreamExt;
use serde_json::{json, Value};
use tokio::sync::Notify;

fn stream_body(include_usage: bool) -> Value {
    let mut b =
        json!({"model": "m", "stream": true, "messages": [{"role": "user", "content": "Say hi"}]});
    if include_usage {
        b["stream_options"] = json!({"include_usage": true});
    }
    b
}

fn chunks(data: &[String]) -> Vec<Value> {
    data.iter()
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

#[tokio::test]
async fn client_without_include_usage_never_sees_an_empty_choices_chunk() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("openai/chat_stream.sse"))).await;
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
    let resp = gw.chat(stream_body(false)).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    assert_eq!(resp.headers()["x-tollgate-provider"], "p1");
    assert!(resp.headers().get("x-tollgate-cost-usd").is_none());
    let data = sse_data(resp).await;
    assert_eq!(data.last().unwrap(), "[DONE]");
    let parsed = chunks(&data);
    assert_eq!(parsed.len(), 4);
    assert!(parsed
        .iter()
        .all(|c| !c["choices"].as_array().unwrap().is_empty()));
    // tollgate asked upstream for usage anyway, and metered it.
    assert_eq!(
        fake.received()[0].body["stream_options"]["include_usage"],
        true
    );
    let rows = gw.ledger_rows().await;
    assert_eq!(
        (
            rows[0]["input_tokens"].clone(),
            rows[0]["output_tokens"].clone()
        ),
        (json!(9), json!(2))
    );
    assert_eq!(rows[0]["usage_source"], "reported");
    // 9·2.50 + 2·10 = 42.5 → 0.0000425
    assert_eq!(rows[0]["cost_usd"], "0.0000425");
    gw.stop().await;
}

#[tokio::test]
async fn client_with_include_usage_gets_the_usage_chunk_with_the_tollgate_object() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("openai/chat_stream.sse"))).await;
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
    let resp = gw.chat(stream_body(true)).await;
    let request_id = resp.headers()["x-tollgate-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let parsed = chunks(&sse_data(resp).await);
    let last = parsed.last().unwrap();
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["prompt_tokens"], 9);
    assert_eq!(last["tollgate"]["cost_usd"], "0.0000425");
    assert_eq!(last["tollgate"]["request_id"], request_id.as_str());
    assert_eq!(last["tollgate"]["jurisdiction"], "US");
    assert_eq!(last["tollgate"]["usage_source"], "reported");
    gw.stop().await;
}

#[tokio::test]
async fn azure_prompt_filter_chunk_is_hidden_and_usage_is_metered() {
    let fake =
        FakeUpstream::start(Reply::sse_events(&fixture("azure_openai/chat_stream.sse"))).await;
    let extra = "api_version = \"2024-12-01-preview\"";
    let mut gw = start_gateway(&one_offer_config(
        "azure_openai",
        &fake.base_url,
        extra,
        "EU",
        "m",
        "o3-mini",
        Some("azure-openai/o3-mini/global-standard"),
    ))
    .await;
    let parsed = chunks(&sse_data(gw.chat(stream_body(false)).await).await);
    assert!(parsed
        .iter()
        .all(|c| c.get("prompt_filter_results").is_none()));
    assert_eq!(parsed[1]["choices"][0]["delta"]["content"], "Bonjour");
    // Nor when the client asked for usage: only OpenAI's shape reaches it.
    let with_usage = chunks(&sse_data(gw.chat(stream_body(true)).await).await);
    assert!(with_usage.iter().all(
        |c| c.get("prompt_filter_results").is_none() && c["object"] == "chat.completion.chunk"
    ));
    assert!(with_usage.last().unwrap()["usage"].is_object());
    let sent = &fake.received()[0];
    assert_eq!(
        sent.path_and_query,
        "/openai/deployments/o3-mini/chat/completions?api-version=2024-12-01-preview"
    );
    assert_eq!(sent.headers["api-key"], "secret-P1_KEY");
    // The client did not ask for usage: tollgate asked for it, so it is still reported.
    assert_eq!(sent.body["stream_options"]["include_usage"], true);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["usage_source"], "reported");
    assert_eq!(rows[0]["cached_input_tokens"], 1024);
    assert_eq!(rows[0]["reasoning_tokens"], 256);
    // (1200-1024)·1.10 + 1024·0.55 + 300·4.40 = 193.6 + 563.2 + 1320 = 2076.8 → 0.0020768
    assert_eq!(rows[0]["cost_usd"], "0.0020768");
    gw.stop().await;
}

#[tokio::test]
async fn deepseek_keep_alives_pass_and_usage_on_the_finish_chunk_is_read() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("deepseek/chat_stream.sse"))).await;
    let mut gw = start_gateway(&one_offer_config(
        "deepseek",
        &fake.base_url,
        "",
        "CN",
        "m",
        "deepseek-reasoner",
        Some("deepseek/deepseek-reasoner"),
    ))
    .await;
    let resp = gw.chat(stream_body(true)).await;
    let text = resp.text().await.unwrap();
    assert!(text.starts_with(": keep-alive\n\n"), "{text}");
    let finish: Value = text
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(|d| serde_json::from_str::<Value>(d).unwrap())
        .find(|c| c["choices"][0]["finish_reason"] == "stop")
        .unwrap();
    assert_eq!(finish["tollgate"]["usage_source"], "reported");
    let rows = gw.ledger_rows().await;
    assert_eq!(
        (
            rows[0]["input_tokens"].clone(),
            rows[0]["output_tokens"].clone(),
            rows[0]["reasoning_tokens"].clone()
        ),
        (json!(6), json!(1552), json!(199))
    );
    gw.stop().await;
}

#[tokio::test]
async fn deepseek_stream_without_include_usage_is_billed_from_its_reported_usage() {
    let fake = FakeUpstream::start(Reply::sse_events(&fixture("deepseek/chat_stream.sse"))).await;
    let config = one_offer_config(
        "deepseek",
        &fake.base_url,
        "",
        "CN",
        "m",
        "deepseek-reasoner",
        Some("deepseek/deepseek-reasoner"),
    );
    // Inside the 2025-01-20 row's period: one all-day price.
    let at = chrono::DateTime::parse_from_rfc3339("2025-02-01T12:00:00Z")
        .unwrap()
        .to_utc();
    let mut gw = start_gateway_at(&config, Some(at)).await;
    let parsed = chunks(&sse_data(gw.chat(stream_body(false)).await).await);
    assert!(parsed.iter().all(|c| c.get("usage").is_none()));
    assert!(parsed.iter().all(|c| c.get("tollgate").is_none()));
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["usage_source"], "reported");
    assert_eq!(
        (
            rows[0]["input_tokens"].clone(),
            rows[0]["output_tokens"].clone()
        ),
        (json!(6), json!(1552))
    );
    // 6·0.55 + 1552·2.19 = 3.3 + 3398.88 = 3402.18 per 1M → 0.00340218
    assert_eq!(rows[0]["cost_usd"], "0.00340218");
    gw.stop().await;
}

#[tokio::test]
async fn the_first_chunk_reaches_the_client_before_the_upstream_finishes() {
    let gate = Arc::new(Notify::new());
    let events = split_events(&fixture("openai/chat_stream.sse"));
    let mut steps = vec![
        Step::Send(events[0].clone()),
        Step::Send(events[1].clone()),
        Step::Wait(gate.clone()),
    ];
    steps.extend(events[2..].iter().cloned().map(Step::Send));
    let fake = FakeUpstream::start(Reply::Sse(steps)).await;
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
    let resp = gw.chat(stream_body(false)).await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains("\"Hi\"") {
        let chunk = tokio::time::timeout(Duration::from_secs(3), body.next())
            .await
            .expect("first chunks must arrive while the upstream is still open");
        seen.push_str(std::str::from_utf8(&chunk.unwrap().unwrap()).unwrap());
    }
    assert!(!seen.contains("[DONE]"));
    gate.notify_one();
    while let Some(chunk) = body.next().await {
        seen.push_str(std::str::from_utf8(&chunk.unwrap()).unwrap());
    }
    assert!(seen.ends_with("data: [DONE]\n\n"));
    gw.stop().await;
}

#[tokio::test]
async fn a_client_that_disconnects_mid_stream_yields_one_estimated_record() {
    let never = Arc::new(Notify::new());
    let events = split_events(&fixture("openai/chat_stream.sse"));
    let steps = vec![
        Step::Send(events[0].clone()),
        Step::Send(events[1].clone()),
        Step::Send(events[2].clone()),
        Step::Wait(never),
    ];
    let fake = FakeUpstream::start(Reply::Sse(steps)).await;
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
    let resp = gw.chat(stream_body(true)).await;
    let mut body = resp.bytes_stream();
    let mut seen = String::new();
    while !seen.contains(" there") {
        seen.push_str(std::str::from_utf8(&body.next().await.unwrap().unwrap()).unwrap());
    }
    drop(body);
    let mut recorded = false;
    for _ in 0..50 {
        if gw.ledger_rows().await.len() == 1 {
            recorded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(recorded, "the abandoned stream was not recorded");
    let rows = gw.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["usage_source"], "estimated");
    assert_eq!(rows[0]["outcome"], "client_cancelled");
    // "Hi there" is 2 tokens in o200k_base; the prompt was counted with the tokenizer too.
    assert_eq!(rows[0]["output_tokens"], 2);
    assert!(rows[0]["input_tokens"].as_i64().unwrap() > 0);
    assert!(
        rows[0]["cost_usd"].is_string(),
        "estimated usage is still priced"
    );
    gw.stop().await;
}

/// A chat-completions stream translated for an Anthropic client is priced by the tier
/// its chunks say served it (`service_tier` is top-level in each chunk, outside
/// `usage`), as a relayed one is.
#[tokio::test]
async fn a_translated_stream_is_priced_by_the_tier_its_chunks_name() {
    let chunk = |choices: Value, usage: Option<Value>| {
        let mut c = json!({"id": "c1", "object": "chat.completion.chunk", "created": 1,
            "model": "gpt-5-2025-08-07", "service_tier": "flex", "choices": choices});
        if let Some(u) = usage {
            c["usage"] = u;
        }
        format!("data: {c}\n\n")
    };
    let sse = [
        chunk(
            json!([{"index": 0, "delta": {"role": "assistant", "content": "Hi"}}]),
            None,
        ),
        chunk(
            json!([{"index": 0, "delta": {}, "finish_reason": "stop"}]),
            None,
        ),
        chunk(
            json!([]),
            Some(json!({"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30})),
        ),
        "data: [DONE]\n\n".to_owned(),
    ]
    .concat();
    let fake = FakeUpstream::start(Reply::sse_events(&sse)).await;
    let at = chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2025, 10, 1, 12, 0, 0).unwrap();
    let config = one_offer_config(
        "openai",
        &fake.base_url,
        "",
        "US",
        "m",
        "gpt-5",
        Some("openai/gpt-5"),
    );
    let mut gw = start_gateway_at(&config, Some(at)).await;
    let resp = Gateway::client()
        .post(format!("{}/v1/messages", gw.url))
        .header("x-api-key", KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&json!({"model": "m", "max_tokens": 100, "stream": true,
            "messages": [{"role": "user", "content": "Say hi"}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = named_events(resp).await;
    // Flex (2025-08-07): 10·0.625 + 20·5 = 106.25 per 1M tokens; the default row
    // would charge twice that.
    let delta = &got[got.len() - 2].1;
    assert_eq!(delta["tollgate"]["cost_usd"], "0.00010625");
    let rows = gw.ledger_rows().await;
    gw.stop().await;
    let row = rows.last().unwrap();
    assert_eq!(row["cost_usd"], "0.00010625");
    assert_eq!(row["price_id"], "openai/gpt-5/flex/2025-08-07");
}
