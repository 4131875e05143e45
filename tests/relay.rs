//! The relay edits upstream bodies, it does not rebuild them (issue 11): a plain answer
//! reaches the client as the upstream's bytes with exactly one `tollgate` object
//! inserted (fields tollgate does not know keep their text and order), an upstream's own
//! `tollgate` key is still replaced in any spelling, and a stream's last usage chunk
//! keeps the upstream's text around tollgate's object.

mod common;

use common::*;
use serde_json::{json, Value};

/// One US OpenAI offer of model `m` at `base_url`, priced.
fn config(base_url: &str) -> String {
    one_offer_config(
        "openai",
        base_url,
        "",
        "US",
        "m",
        "gpt-4o",
        Some("openai/gpt-4o"),
    )
}

/// A plain answer with a key order no serializer would choose, a number `f64` cannot
/// hold, unknown fields, and whitespace.
const ANSWER: &str = concat!(
    "{\"z_unknown\": {\"b\": 1, \"a\": [1.0000000000000000001, -0.0]},\n",
    "  \"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"Hi there\"},\"finish_reason\":\"stop\"}],",
    "\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",",
    "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":2,\"total_tokens\":11},",
    "\"system_fingerprint\":\"fp_\\u00e9\"  }\n"
);

#[tokio::test]
async fn a_plain_answer_is_the_upstreams_bytes_plus_one_tollgate_object() {
    let fake = FakeUpstream::start(Reply::json(ANSWER)).await;
    let mut gw = start_gateway(&config(&fake.base_url)).await;
    let resp = gw.chat(chat_body("m")).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let length: usize = resp.headers()["content-length"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    let text = resp.text().await.unwrap();
    assert_eq!(text.len(), length);
    // Everything up to the closing brace is the upstream's text, byte for byte; the
    // object is inserted there and the trailing newline follows it.
    let close = ANSWER.rfind('}').unwrap();
    let (head, tail) = ANSWER.split_at(close);
    assert!(text.starts_with(head), "{text}");
    assert!(text.ends_with(tail), "{text}");
    let inserted = &text[head.len()..text.len() - tail.len()];
    assert!(inserted.starts_with(",\"tollgate\":{"), "{inserted}");
    assert_eq!(text.matches("\"tollgate\"").count(), 1, "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    let ours = &body["tollgate"];
    assert_eq!(ours["provider"], "p1");
    // 9·2.50 + 2·10 = 42.5 → 0.0000425, as in the headers and the record.
    assert_eq!(ours["cost_usd"], "0.0000425");
    assert_eq!(ours["usage_source"], "reported");
    assert_eq!(ours["usage"]["input_tokens"], 9);
    let rows = gw.ledger_rows().await;
    assert_eq!(rows[0]["cost_usd"], "0.0000425");
    gw.stop().await;
}

#[tokio::test]
async fn without_usage_the_visible_text_is_counted_from_the_view() {
    let answer = r#"{"id":"c","choices":[{"index":0,"message":{"role":"assistant","content":"Hello there, how are you today?"}}]}"#;
    let fake = FakeUpstream::start(Reply::json(answer)).await;
    let mut gw = start_gateway(&config(&fake.base_url)).await;
    let body: Value = gw.chat(chat_body("m")).await.json().await.unwrap();
    assert_eq!(body["tollgate"]["usage_source"], "estimated");
    let output = body["tollgate"]["usage"]["output_tokens"].as_u64().unwrap();
    assert!(output >= 5, "the answer's text was counted: {output}");
    gw.stop().await;
}

#[tokio::test]
async fn an_empty_answer_object_gets_the_object_without_a_stray_comma() {
    let fake = FakeUpstream::start(Reply::json("{ }")).await;
    let mut gw = start_gateway(&config(&fake.base_url)).await;
    let text = gw.chat(chat_body("m")).await.text().await.unwrap();
    assert!(text.starts_with("{ \"tollgate\":{"), "{text}");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(body["tollgate"]["usage_source"], "estimated");
    gw.stop().await;
}

#[tokio::test]
async fn an_upstream_tollgate_key_is_replaced_in_any_spelling() {
    let plain = r#"{"id":"c","choices":[],"tollgate":{"provider":"spoofed"},"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;
    let escaped = plain.replace("\"tollgate\"", "\"\\u0074ollgate\"");
    let duplicated = r#"{"id":"c","tollgate":1,"tollgate":{"provider":"spoofed"},"usage":{"prompt_tokens":9,"completion_tokens":2,"total_tokens":11}}"#;
    for upstream in [plain.to_owned(), escaped, duplicated.to_owned()] {
        let fake = FakeUpstream::start(Reply::json(upstream.clone())).await;
        let mut gw = start_gateway(&config(&fake.base_url)).await;
        let text = gw.chat(chat_body("m")).await.text().await.unwrap();
        assert!(!text.contains("spoofed"), "{upstream} -> {text}");
        assert!(!text.contains("\\u0074ollgate"), "{text}");
        assert_eq!(text.matches("\"tollgate\"").count(), 1, "{text}");
        let body: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(body["tollgate"]["provider"], "p1");
        assert_eq!(body["tollgate"]["cost_usd"], "0.0000425");
        assert_eq!(body["id"], "c");
        gw.stop().await;
    }
}

#[tokio::test]
async fn an_answer_that_is_no_json_object_is_still_refused() {
    for upstream in ["[1,2]", "\"{}\"", "{\"a\":1"] {
        let fake = FakeUpstream::start(Reply::json(upstream)).await;
        let mut gw = start_gateway(&config(&fake.base_url)).await;
        let resp = gw.chat(chat_body("m")).await;
        let (status, body) = error_of(resp).await;
        assert_eq!(status, 502, "{upstream}: {body}");
        assert_eq!(body["error"]["code"], "upstream_error");
        gw.stop().await;
    }
}

#[tokio::test]
async fn the_last_usage_chunk_keeps_the_upstreams_text_around_tollgates_object() {
    let content = r#"{"id":"c","object":"chat.completion.chunk","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}"#;
    let usage = r#"{"x_unknown":1.0000000000000000001,"id":"c","choices":[],"usage":{"prompt_tokens":9,"completion_tokens":1,"total_tokens":10}}"#;
    let text = format!("data: {content}\n\ndata: {usage}\n\ndata: [DONE]\n\n");
    let fake = FakeUpstream::start(Reply::sse_events(&text)).await;
    let mut gw = start_gateway(&config(&fake.base_url)).await;
    let body = json!({"model": "m", "stream": true, "stream_options": {"include_usage": true},
        "messages": [{"role": "user", "content": "Say hi"}]});
    let data = sse_data(gw.chat(body).await).await;
    assert_eq!(data.len(), 3, "{data:?}");
    assert_eq!(data[0], content, "an unchanged chunk is relayed as it came");
    let last = &data[1];
    let head = &usage[..usage.len() - 1];
    assert!(last.starts_with(head), "{last}");
    assert!(last[head.len()..].starts_with(",\"tollgate\":{"), "{last}");
    let chunk: Value = serde_json::from_str(last).unwrap();
    assert_eq!(chunk["tollgate"]["provider"], "p1");
    assert_eq!(chunk["tollgate"]["usage"]["input_tokens"], 9);
    assert_eq!(data[2], "[DONE]");
    gw.stop().await;
}

#[tokio::test]
async fn the_upstream_body_is_the_clients_with_only_the_attempts_edits() {
    let fake = FakeUpstream::start(Reply::json(ANSWER)).await;
    let mut gw = start_gateway(&config(&fake.base_url)).await;
    let body = r#"{"temperature":0.5,"model":"m","x_custom":{"b":1,"a":2},"messages":[{"role":"user","content":"hi"}]}"#;
    let resp = Gateway::client()
        .post(format!("{}/v1/chat/completions", gw.url))
        .bearer_auth(KEY)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let sent = &fake.received()[0].body;
    let keys: Vec<&str> = sent
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["temperature", "model", "x_custom", "messages"]);
    assert_eq!(sent["model"], "gpt-4o");
    assert_eq!(sent["x_custom"], json!({"b": 1, "a": 2}));
    gw.stop().await;
}
