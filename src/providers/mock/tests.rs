use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tower::ServiceExt;

use super::*;
use crate::tokens::estimate::{count_chat_prompt, count_text, TokenizerKind};

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).expect("JSON body")
    }

    /// `data:` payloads in order (`[DONE]` kept as a string), plus every SSE comment line.
    fn events(&self) -> (Vec<Value>, Vec<String>) {
        let mut data = Vec::new();
        let mut comments = Vec::new();
        for frame in self.body.split("\n\n").filter(|f| !f.is_empty()) {
            if let Some(payload) = frame.strip_prefix("data: ") {
                data.push(serde_json::from_str(payload).unwrap_or(json!(payload)));
            } else if frame.starts_with(':') {
                comments.push(frame.to_owned());
            } else {
                panic!("unexpected SSE frame {frame:?}");
            }
        }
        (data, comments)
    }
}

async fn call(path: &str, body: impl Into<Body>) -> Reply {
    let request = Request::post(path)
        .header("content-type", "application/json")
        .header("authorization", "Bearer any-key-is-fine")
        .body(body.into())
        .unwrap();
    send(request).await
}

async fn send(request: Request<Body>) -> Reply {
    let response = router(MockOptions::default())
        .oneshot(request)
        .await
        .unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
        .await
        .unwrap();
    Reply {
        status,
        headers,
        body: String::from_utf8(bytes.to_vec()).unwrap(),
    }
}

async fn post(path: &str, body: Value) -> Reply {
    call(path, body.to_string()).await
}

fn ask(model: &str, question: &str) -> Value {
    json!({"model": model, "messages": [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": question}
    ]})
}

fn with(mut body: Value, extra: Value) -> Value {
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    body
}

fn content_of(events: &[Value], field: &str) -> String {
    events
        .iter()
        .filter_map(|e| e["choices"][0]["delta"][field].as_str())
        .collect()
}

#[tokio::test]
async fn non_stream_usage_equals_tokenizer_count_of_returned_text() {
    let request = ask("gpt-4o", "Explain token metering.");
    let reply = post("/v1/chat/completions", request.clone()).await;
    assert_eq!(reply.status, StatusCode::OK);
    assert!(reply.headers["x-request-id"]
        .to_str()
        .unwrap()
        .starts_with("req_"));
    let body = reply.json();
    let kind = TokenizerKind::O200kBase;
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], count_text(kind, content));
    assert_eq!(
        usage["prompt_tokens"],
        count_chat_prompt(kind, &request["messages"])
    );
    assert_eq!(
        usage["total_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap() + usage["completion_tokens"].as_u64().unwrap()
    );
    assert_eq!(usage["completion_tokens_details"]["reasoning_tokens"], 0);
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], 0);
    let words = content.split_whitespace().count();
    assert!((40..=200).contains(&words), "{words} words");
    let id = body["id"].as_str().unwrap();
    assert!(id.starts_with("chatcmpl-") && id.len() == 38, "{id}");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o-2024-08-06");
    assert!(body["created"].as_i64().unwrap() > 1_700_000_000);
    assert!(body["system_fingerprint"]
        .as_str()
        .unwrap()
        .starts_with("fp_"));
    assert_eq!(body["service_tier"], "default");
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["choices"][0]["message"]["refusal"], Value::Null);
}

#[tokio::test]
async fn reasoning_flavor_adds_hidden_reasoning_tokens_to_completion() {
    let reply = post("/openai_reasoning/v1/chat/completions", ask("o1", "Why?")).await;
    let body = reply.json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let usage = &body["usage"];
    let reasoning = usage["completion_tokens_details"]["reasoning_tokens"]
        .as_u64()
        .unwrap();
    assert!((192..=768).contains(&reasoning), "{reasoning}");
    assert_eq!(
        usage["completion_tokens"].as_u64().unwrap(),
        count_text(TokenizerKind::O200kBase, content) + reasoning
    );
    assert!(!content.contains("<think>"));
    assert_eq!(body["model"], "o1-2024-12-17");
}

#[tokio::test]
async fn openai_caches_earlier_turns_from_1024_tokens_in_128_token_steps() {
    let long_history = "The gateway records every request in its ledger. ".repeat(150);
    let request = json!({"model": "o1", "messages": [
        {"role": "developer", "content": long_history},
        {"role": "user", "content": "Summarise."}
    ]});
    let usage = post("/openai_reasoning/chat/completions", request)
        .await
        .json()["usage"]
        .clone();
    let cached = usage["prompt_tokens_details"]["cached_tokens"]
        .as_u64()
        .unwrap();
    let prompt = usage["prompt_tokens"].as_u64().unwrap();
    assert!(
        cached >= 1024 && cached % 128 == 0 && cached <= prompt,
        "{cached} of {prompt}"
    );

    let short = post("/openai_reasoning/chat/completions", ask("o1", "Hi"))
        .await
        .json();
    assert_eq!(short["usage"]["prompt_tokens_details"]["cached_tokens"], 0);
}

#[tokio::test]
async fn stream_with_include_usage_ends_with_empty_choices_usage_chunk_then_done() {
    let request = ask("gpt-4o", "Stream please.");
    let streamed = with(
        request.clone(),
        json!({"stream": true, "stream_options": {"include_usage": true}}),
    );
    let reply = post("/v1/chat/completions", streamed).await;
    assert!(reply.headers["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let (events, comments) = reply.events();
    assert!(comments.is_empty());
    assert_eq!(events.last().unwrap(), "[DONE]");
    let usage_chunk = &events[events.len() - 2];
    assert_eq!(usage_chunk["choices"], json!([]));
    let chunks = &events[..events.len() - 2];
    assert!(chunks.len() >= 3);
    for chunk in chunks {
        assert_eq!(
            chunk["usage"],
            Value::Null,
            "usage: null on every other chunk"
        );
        assert!(chunk.as_object().unwrap().contains_key("usage"));
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["id"], chunks[0]["id"]);
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    assert_eq!(
        chunks.last().unwrap()["choices"][0]["finish_reason"],
        "stop"
    );
    let text = content_of(chunks, "content");
    let kind = TokenizerKind::O200kBase;
    assert_eq!(
        usage_chunk["usage"]["completion_tokens"],
        count_text(kind, &text)
    );
    // Same conversation, same reply, streamed or not.
    let whole = post("/v1/chat/completions", request).await.json();
    assert_eq!(whole["choices"][0]["message"]["content"], text);
}

#[tokio::test]
async fn stream_without_include_usage_carries_no_usage_field() {
    let reply = post(
        "/openai/v1/chat/completions",
        with(ask("gpt-4o", "Hi"), json!({"stream": true})),
    )
    .await;
    let (events, _) = reply.events();
    assert_eq!(events.last().unwrap(), "[DONE]");
    for chunk in &events[..events.len() - 1] {
        assert!(!chunk.as_object().unwrap().contains_key("usage"));
        assert_eq!(chunk["choices"].as_array().unwrap().len(), 1);
    }
}

#[tokio::test]
async fn deepseek_stream_sends_keep_alive_then_reasoning_then_content_with_usage_on_finish() {
    let request = with(ask("deepseek-reasoner", "hello"), json!({"stream": true}));
    let reply = post("/deepseek/v1/chat/completions", request).await;
    assert!(reply.body.starts_with(": keep-alive\n\n"));
    assert!(reply.headers.contains_key("x-ds-trace-id"));
    let (events, comments) = reply.events();
    assert_eq!(comments, [": keep-alive"]);
    assert_eq!(events.last().unwrap(), "[DONE]");
    let chunks = &events[..events.len() - 1];
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": null, "reasoning_content": ""})
    );
    let first_content = chunks
        .iter()
        .position(|c| c["choices"][0]["delta"]["content"].is_string())
        .unwrap();
    let last_reasoning = chunks
        .iter()
        .rposition(|c| {
            c["choices"][0]["delta"]["reasoning_content"]
                .as_str()
                .is_some_and(|s| !s.is_empty())
        })
        .unwrap();
    assert!(
        last_reasoning < first_content,
        "reasoning deltas come first"
    );
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(
        finish["choices"][0]["delta"],
        json!({"content": "", "reasoning_content": null})
    );
    for chunk in &chunks[..chunks.len() - 1] {
        assert!(!chunk.as_object().unwrap().contains_key("usage"));
        assert!(chunk["choices"][0]["finish_reason"].is_null());
    }
    let usage = &finish["usage"];
    let kind = TokenizerKind::DeepSeekV3;
    let reasoning = count_text(kind, &content_of(chunks, "reasoning_content"));
    let content = count_text(kind, &content_of(chunks, "content"));
    assert!(
        reasoning > 100,
        "a few hundred reasoning tokens, got {reasoning}"
    );
    assert_eq!(usage["completion_tokens"], reasoning + content);
    assert_eq!(
        usage["completion_tokens_details"]["reasoning_tokens"],
        reasoning
    );
    assert_eq!(
        usage["prompt_cache_hit_tokens"].as_u64().unwrap()
            + usage["prompt_cache_miss_tokens"].as_u64().unwrap(),
        usage["prompt_tokens"].as_u64().unwrap()
    );
}

#[tokio::test]
async fn deepseek_non_stream_matches_recorded_shape() {
    let history = "Earlier turn about invoices and prices. ".repeat(20);
    let request = json!({"model": "deepseek-reasoner", "messages": [
        {"role": "user", "content": history},
        {"role": "assistant", "content": "Noted."},
        {"role": "user", "content": "And now?"}
    ]});
    let reply = post("/deepseek/chat/completions", request.clone()).await;
    assert!(
        reply.body.starts_with("\n\n{"),
        "blank keep-alive lines before the JSON"
    );
    let body = reply.json();
    let id = body["id"].as_str().unwrap();
    assert_eq!(id.len(), 36, "uuid-style id {id}");
    assert_eq!(body["model"], "deepseek-reasoner");
    let message = &body["choices"][0]["message"];
    let kind = TokenizerKind::DeepSeekV3;
    let reasoning = count_text(kind, message["reasoning_content"].as_str().unwrap());
    let content = count_text(kind, message["content"].as_str().unwrap());
    let usage = &body["usage"];
    assert_eq!(usage["completion_tokens"], reasoning + content);
    assert_eq!(
        usage["prompt_tokens"],
        count_chat_prompt(kind, &request["messages"])
    );
    let hit = usage["prompt_cache_hit_tokens"].as_u64().unwrap();
    assert!(
        hit > 0 && hit % 64 == 0,
        "earlier turns hit the cache: {hit}"
    );
    assert_eq!(usage["prompt_tokens_details"]["cached_tokens"], hit);

    let chat = post("/deepseek/chat/completions", ask("deepseek-chat", "hello"))
        .await
        .json();
    assert!(chat["choices"][0]["message"]
        .get("reasoning_content")
        .is_none());
    assert!(chat["usage"].get("completion_tokens_details").is_none());
}

#[tokio::test]
async fn azure_think_puts_reasoning_in_content_and_reports_three_usage_fields() {
    let reply = post(
        "/azure_think/models/chat/completions?api-version=2024-05-01-preview",
        ask("DeepSeek-R1", "How many languages?"),
    )
    .await;
    let body = reply.json();
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    assert!(
        content.starts_with("<think>\n") && content.contains("\n</think>\n\n"),
        "{content}"
    );
    let usage = body["usage"].as_object().unwrap();
    let keys: Vec<&str> = usage.keys().map(String::as_str).collect();
    assert_eq!(keys, ["prompt_tokens", "total_tokens", "completion_tokens"]);
    assert_eq!(
        usage["completion_tokens"],
        count_text(TokenizerKind::DeepSeekV3, content)
    );
    assert_eq!(body["choices"][0]["message"]["tool_calls"], Value::Null);

    let streamed = with(
        ask("DeepSeek-R1", "How many languages?"),
        json!({"stream": true}),
    );
    let (events, comments) = post("/azure_think/v1/chat/completions", streamed)
        .await
        .events();
    assert!(comments.is_empty());
    let chunks = &events[..events.len() - 1];
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "<think>"})
    );
    let finish = chunks.last().unwrap();
    assert_eq!(finish["choices"][0]["finish_reason"], "stop");
    assert_eq!(finish["usage"], body["usage"]);
    assert_eq!(content_of(chunks, "content"), content);
}

#[tokio::test]
async fn max_tokens_truncates_with_finish_reason_length() {
    let kind = TokenizerKind::O200kBase;
    let limited = with(
        ask("gpt-4o", "Long answer please."),
        json!({"max_tokens": 10}),
    );
    let body = post("/v1/chat/completions", limited.clone()).await.json();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    let content = body["choices"][0]["message"]["content"].as_str().unwrap();
    let completion = body["usage"]["completion_tokens"].as_u64().unwrap();
    assert_eq!(completion, count_text(kind, content));
    assert!((5..=10).contains(&completion), "{completion}");
    let full = post("/v1/chat/completions", ask("gpt-4o", "Long answer please."))
        .await
        .json();
    assert!(full["choices"][0]["message"]["content"]
        .as_str()
        .unwrap()
        .starts_with(content));

    let (events, _) = post(
        "/v1/chat/completions",
        with(limited, json!({"stream": true})),
    )
    .await
    .events();
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "length"
    );
    assert_eq!(content_of(&events, "content"), content);

    // o1 spends max_completion_tokens on hidden reasoning first.
    let tiny = with(
        ask("o1", "Think hard."),
        json!({"max_completion_tokens": 50}),
    );
    let body = post("/openai_reasoning/v1/chat/completions", tiny)
        .await
        .json();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert_eq!(body["choices"][0]["message"]["content"], "");
    assert_eq!(body["usage"]["completion_tokens"], 50);
    assert_eq!(
        body["usage"]["completion_tokens_details"]["reasoning_tokens"],
        50
    );

    let azure = with(ask("DeepSeek-R1", "Think."), json!({"max_tokens": 30}));
    let body = post("/azure_think/v1/chat/completions", azure).await.json();
    assert_eq!(body["choices"][0]["finish_reason"], "length");
    assert!(body["usage"]["completion_tokens"].as_u64().unwrap() <= 30);
}

#[tokio::test]
async fn replies_are_deterministic_per_conversation() {
    let a1 = post("/v1/chat/completions", ask("gpt-4o", "one"))
        .await
        .json();
    let a2 = post("/v1/chat/completions", ask("gpt-4o", "one"))
        .await
        .json();
    let b = post("/v1/chat/completions", ask("gpt-4o", "two"))
        .await
        .json();
    let text = |v: &Value| {
        v["choices"][0]["message"]["content"]
            .as_str()
            .unwrap()
            .to_owned()
    };
    assert_eq!(text(&a1), text(&a2));
    assert_ne!(text(&a1), text(&b));
    assert_ne!(a1["id"], a2["id"], "ids stay unique per response");
}

#[tokio::test]
async fn error_hooks_answer_429_with_retry_after_and_500() {
    let reply = post(
        "/deepseek/v1/chat/completions",
        ask("deepseek-reasoner", "go [mock:error:429]"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(reply.headers["retry-after"], "1");
    let error = &reply.json()["error"];
    assert_eq!(error["code"], "rate_limit_exceeded");
    assert_eq!(error["param"], Value::Null);
    assert!(error["message"].is_string() && error["type"].is_string());

    let reply = post(
        "/v1/chat/completions",
        ask("gpt-4o", "[mock:error:500] boom"),
    )
    .await;
    assert_eq!(reply.status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(reply.json()["error"]["type"], "server_error");

    // Only the last user message triggers hooks.
    let earlier = json!({"model": "gpt-4o", "messages": [
        {"role": "user", "content": "[mock:error:500]"},
        {"role": "user", "content": [{"type": "text", "text": "fine"}]}
    ]});
    assert_eq!(
        post("/v1/chat/completions", earlier).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_requests_get_openai_error_bodies() {
    let reply = call("/v1/chat/completions", "{not json").await;
    assert_eq!(reply.status, StatusCode::BAD_REQUEST);
    let error = reply.json()["error"].clone();
    let keys: Vec<&str> = error
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(keys, ["message", "type", "param", "code"]);
    assert_eq!(error["type"], "invalid_request_error");

    let missing = post(
        "/v1/chat/completions",
        json!({"messages": [{"role": "user", "content": "x"}]}),
    )
    .await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert_eq!(missing.json()["error"]["param"], "model");

    let empty = post(
        "/v1/chat/completions",
        json!({"model": "gpt-4o", "messages": []}),
    )
    .await;
    assert_eq!(empty.json()["error"]["code"], "empty_array");

    let bad_limit = post(
        "/v1/chat/completions",
        with(ask("gpt-4o", "x"), json!({"max_tokens": "10"})),
    )
    .await;
    assert_eq!(bad_limit.json()["error"]["param"], "max_tokens");

    let unknown = post("/anthropic/v1/chat/completions", ask("claude", "x")).await;
    assert_eq!(unknown.status, StatusCode::NOT_FOUND);
    assert_eq!(unknown.json()["error"]["code"], "unknown_url");
}

// Real (short) sleeps: the crate's tokio has no `test-util`, so time cannot be paused here.
#[tokio::test]
async fn stream_is_paced_by_latency_and_chunk_interval() {
    let latency = Duration::from_millis(150);
    let interval = Duration::from_millis(10);
    let opts = MockOptions {
        latency,
        chunk_interval: interval,
    };
    let request = Request::post("/v1/chat/completions")
        .body(Body::from(
            with(ask("gpt-4o", "pace"), json!({"stream": true})).to_string(),
        ))
        .unwrap();
    let start = tokio::time::Instant::now();
    let response = router(opts).oneshot(request).await.unwrap();
    let mut body = response.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    assert!(first.starts_with(b"data: "));
    let first_at = start.elapsed();
    assert!(first_at >= latency, "time to first token {first_at:?}");
    let mut rest = 0;
    while let Some(frame) = body.next().await {
        frame.unwrap();
        rest += 1;
    }
    // Every chunk after the first waits one interval; [DONE] follows the finish chunk at once.
    assert!(rest > 3);
    assert!(start.elapsed() >= latency + interval * (rest - 1));
}

#[tokio::test]
async fn spawn_serves_http_on_a_loopback_port() {
    let (base, handle) = spawn(MockOptions::default()).await.unwrap();
    assert!(base.starts_with("http://127.0.0.1:"));
    let body = ask("gpt-4o", "over tcp").to_string();
    let mut stream = tokio::net::TcpStream::connect(base.trim_start_matches("http://"))
        .await
        .unwrap();
    let head = format!(
        "POST /openai/v1/chat/completions HTTP/1.1\r\nhost: mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    stream.write_all(body.as_bytes()).await.unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).await.unwrap();
    assert!(response.starts_with("HTTP/1.1 200"), "{response}");
    assert!(response.contains("\"object\":\"chat.completion\""));
    handle.abort();
}

#[test]
fn flavor_path_segments_round_trip() {
    for flavor in [
        MockFlavor::Openai,
        MockFlavor::OpenaiReasoning,
        MockFlavor::Deepseek,
        MockFlavor::AzureThink,
    ] {
        assert_eq!(
            MockFlavor::from_segment(flavor.path_segment()),
            Some(flavor)
        );
    }
    assert_eq!(MockFlavor::from_segment("OpenAI"), None);
}

/// A Messages request to the Anthropic flavor, with or without `anthropic-version`.
async fn messages(body: Value, version: bool) -> Reply {
    let mut request = Request::post("/anthropic/v1/messages").header("x-api-key", "any");
    if version {
        request = request.header("anthropic-version", "2023-06-01");
    }
    send(request.body(Body::from(body.to_string())).unwrap()).await
}

#[tokio::test]
async fn anthropic_flavor_answers_messages_with_usage_that_adds_up_the_anthropic_way() {
    let ask = json!({"model": "claude-sonnet-4-5", "max_tokens": 400,
        "system": [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}],
        "messages": [{"role": "user", "content": "What is a gateway?"},
                     {"role": "assistant", "content": "It forwards requests."},
                     {"role": "user", "content": [{"type": "text", "text": "And the cost?"}]}]});
    let reply = messages(ask.clone(), true).await;
    assert_eq!(reply.status, StatusCode::OK);
    let body = reply.json();
    assert_eq!(body["type"], "message");
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    let text = body["content"][0]["text"].as_str().unwrap();
    let usage = &body["usage"];
    let kind = TokenizerKind::for_model("claude-sonnet-4-5");
    assert_eq!(usage["output_tokens"], count_text(kind, text));
    let prompt = json!([{"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is a gateway?"},
        {"role": "assistant", "content": "It forwards requests."},
        {"role": "user", "content": "And the cost?"}]);
    let input = usage["input_tokens"].as_u64().unwrap()
        + usage["cache_read_input_tokens"].as_u64().unwrap();
    assert_eq!(
        input,
        count_chat_prompt(kind, &prompt),
        "input excludes the cache reads"
    );
    assert!(
        usage["cache_read_input_tokens"].as_u64().unwrap() > 0,
        "cache_control: a cache hit"
    );

    let mut stream = ask;
    stream["stream"] = json!(true);
    let reply = messages(stream, true).await;
    let names: Vec<&str> = reply
        .body
        .split("\n\n")
        .filter_map(|f| f.strip_prefix("event: "))
        .map(|f| f.lines().next().unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"message_start"));
    assert_eq!(
        &names[names.len() - 3..],
        ["content_block_stop", "message_delta", "message_stop"]
    );

    let refused = messages(
        json!({"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}),
        false,
    )
    .await;
    assert_eq!(refused.status, StatusCode::BAD_REQUEST);
    assert_eq!(refused.json()["error"]["type"], "invalid_request_error");
    let chat = post("/anthropic/v1/chat/completions", ask_body()).await;
    assert_eq!(
        chat.status,
        StatusCode::NOT_FOUND,
        "the Anthropic flavor speaks Messages only"
    );
}

fn ask_body() -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})
}
