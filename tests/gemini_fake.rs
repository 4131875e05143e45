//! The Gemini building blocks against a fake Google that checks what Google checks:
//! the request body and URL built by `providers::gemini` are accepted by the fake
//! Gemini API (API key) and Vertex AI (bearer token, project and location in the
//! path), the answer and the SSE stream translate into the expected chat completion
//! and neutral events, Google's refusals come back in Google's error shape, and a
//! service account's token is fetched from its `token_uri` once, cached, and fetched
//! again only near expiry.

#![expect(
    clippy::unwrap_used,
    reason = "the fake upstream and helpers below are test code; a failure should fail the test"
)]

mod common;

use common::gemini::{FakeGemini, FakeGoogleOAuth, GEMINI_KEY, LOCATION, PROJECT};
use serde_json::{json, Value};
use tollgate::api::openai::ChatRequest;
use tollgate::config::secret::Secret;
use tollgate::providers::gemini::answer::to_chat_completion;
use tollgate::providers::gemini::auth::VertexAuth;
use tollgate::providers::gemini::request::generate_content_body;
use tollgate::providers::gemini::stream::GeminiStreamDecoder;
use tollgate::providers::gemini::url::{gemini_url, vertex_url};
use tollgate::providers::gemini::usage::gemini_usage;
use tollgate::providers::sse::{SseFrame, SseParser};
use tollgate::providers::stream::{FinishReason, StreamDecoder, StreamEvent};
use tollgate::tokens::Usage;

const TOKEN: &str = "ya29.vertex-test-token";

fn chat(stream: bool) -> ChatRequest {
    let body = json!({"model": "gemini-flash", "stream": stream, "max_tokens": 100,
        "messages": [{"role": "system", "content": "Be brief."},
                     {"role": "user", "content": "Explain how AI works in a few words"}]});
    ChatRequest::parse(body.to_string().as_bytes(), None).unwrap()
}

async fn post(url: &str, headers: &[(&str, &str)], body: bytes::Bytes) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(url)
        .header("content-type", "application/json");
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.body(body).send().await.unwrap()
}

/// The stream's bytes through tollgate's SSE parser and the Gemini decoder.
fn decode(bytes: &[u8]) -> Vec<StreamEvent> {
    let (mut parser, mut frames) = (SseParser::new(1 << 20), Vec::new());
    parser.push(bytes, &mut frames).unwrap();
    parser.finish(&mut frames).unwrap();
    let (mut decoder, mut events) = (GeminiStreamDecoder::default(), Vec::new());
    for frame in frames {
        if let SseFrame::Event(e) = frame {
            decoder.decode(&e, &mut events);
        }
    }
    events
}

#[tokio::test]
async fn the_gemini_api_accepts_the_translated_request_and_its_answer_translates_back() {
    let fake = FakeGemini::start(TOKEN).await;
    let body = generate_content_body(&chat(false)).unwrap();
    let url = gemini_url(&fake.base_url, "gemini-2.5-flash", false);
    let resp = post(&url, &[("x-goog-api-key", GEMINI_KEY)], body.clone()).await;
    assert_eq!(resp.status(), 200);
    let answer = to_chat_completion(&resp.bytes().await.unwrap(), 1_700_000_000).unwrap();
    let chat: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        chat["choices"][0]["message"]["content"],
        "AI learns patterns from data and uses them to make predictions."
    );
    assert_eq!(chat["choices"][0]["finish_reason"], "stop");
    assert_eq!(chat["model"], "gemini-2.5-flash");
    assert_eq!(
        chat["usage"],
        json!({"prompt_tokens": 8, "completion_tokens": 58, "total_tokens": 66,
            "prompt_tokens_details": {"cached_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 46}})
    );
    let received = fake.received();
    assert_eq!(
        received[0].path,
        "/v1beta/models/gemini-2.5-flash:generateContent"
    );
    assert_eq!(
        received[0].body,
        serde_json::from_slice::<Value>(&body).unwrap()
    );
    assert_eq!(
        received[0].body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
}

#[tokio::test]
async fn the_sse_stream_decodes_into_neutral_events_ending_with_the_final_usage() {
    let fake = FakeGemini::start(TOKEN).await;
    let url = gemini_url(&fake.base_url, "gemini-2.5-flash", true);
    let resp = post(
        &url,
        &[("x-goog-api-key", GEMINI_KEY)],
        generate_content_body(&chat(true)).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "text/event-stream");
    let events = decode(&resp.bytes().await.unwrap());
    let visible: Vec<&StreamEvent> = events
        .iter()
        .filter(|e| !matches!(e, StreamEvent::Usage(_)))
        .collect();
    assert_eq!(
        visible,
        [
            &StreamEvent::Start {
                id: "qdbDaJCrA4DJvdIPqPyXuAQ".into(),
                model: "gemini-2.5-flash".into(),
                created: None
            },
            &StreamEvent::Reasoning("**Planning**\n\nA short answer.".into()),
            &StreamEvent::Text("AI learns patterns".into()),
            &StreamEvent::Text(" from data.".into()),
            &StreamEvent::Finish(FinishReason::Stop),
            &StreamEvent::End,
        ]
    );
    // Every chunk's usage is the running total: merged by maximum, it is the last one.
    let mut usage = Usage::default();
    for e in &events {
        if let StreamEvent::Usage(u) = e {
            usage.merge_max(&gemini_usage(u));
        }
    }
    assert_eq!(
        (usage.input, usage.output, usage.reasoning),
        (Some(8), Some(37), Some(30))
    );
}

#[tokio::test]
async fn a_wrong_or_missing_key_and_throttling_get_googles_errors() {
    let fake = FakeGemini::start(TOKEN).await;
    let body = generate_content_body(&chat(false)).unwrap();
    let url = gemini_url(&fake.base_url, "gemini-2.5-flash", false);

    let wrong = post(&url, &[("x-goog-api-key", "nope")], body.clone()).await;
    assert_eq!(wrong.status(), 400);
    let err: Value = wrong.json().await.unwrap();
    assert_eq!(err["error"]["status"], "INVALID_ARGUMENT");
    assert_eq!(err["error"]["details"][0]["reason"], "API_KEY_INVALID");

    let missing = post(&url, &[], body.clone()).await;
    assert_eq!(missing.status(), 403);
    let err: Value = missing.json().await.unwrap();
    assert_eq!(err["error"]["status"], "PERMISSION_DENIED");

    let by_query = post(&format!("{url}?key={GEMINI_KEY}"), &[], body.clone()).await;
    assert_eq!(by_query.status(), 200, "the key may also come as ?key=");

    fake.throttle(true);
    let throttled = post(&url, &[("x-goog-api-key", GEMINI_KEY)], body).await;
    assert_eq!(throttled.status(), 429);
    let err: Value = throttled.json().await.unwrap();
    assert_eq!(
        (err["error"]["code"].clone(), err["error"]["status"].clone()),
        (json!(429), json!("RESOURCE_EXHAUSTED"))
    );
}

#[tokio::test]
async fn vertex_checks_the_bearer_token_project_and_location() {
    let fake = FakeGemini::start(TOKEN).await;
    let body = generate_content_body(&chat(true)).unwrap();
    let method = "streamGenerateContent?alt=sse";
    let url = vertex_url(
        &fake.base_url,
        PROJECT,
        LOCATION,
        "google",
        "gemini-2.5-pro",
        method,
    );
    let bearer = VertexAuth::Static(Secret::new(TOKEN.into()))
        .bearer()
        .await
        .unwrap();
    let auth = format!("Bearer {}", bearer.expose());

    let ok = post(&url, &[("authorization", &auth)], body.clone()).await;
    assert_eq!(ok.status(), 200);
    assert_eq!(
        decode(&ok.bytes().await.unwrap()).last(),
        Some(&StreamEvent::End)
    );
    assert_eq!(
        fake.received()[0].path,
        format!("/v1/projects/{PROJECT}/locations/{LOCATION}/publishers/google/models/gemini-2.5-pro:streamGenerateContent")
    );

    let wrong_token = post(
        &url,
        &[("authorization", "Bearer ya29.other")],
        body.clone(),
    )
    .await;
    assert_eq!(wrong_token.status(), 401);
    let err: Value = wrong_token.json().await.unwrap();
    assert_eq!(err["error"]["status"], "UNAUTHENTICATED");

    let elsewhere = vertex_url(
        &fake.base_url,
        PROJECT,
        "us-central1",
        "google",
        "gemini-2.5-pro",
        method,
    );
    let wrong_location = post(&elsewhere, &[("authorization", &auth)], body).await;
    assert_eq!(wrong_location.status(), 403);
    let err: Value = wrong_location.json().await.unwrap();
    assert_eq!(err["error"]["status"], "PERMISSION_DENIED");
}

#[tokio::test]
async fn a_service_account_token_is_fetched_once_cached_and_accepted_by_vertex() {
    let oauth = FakeGoogleOAuth::start(3599).await;
    let auth = VertexAuth::from_service_account_json(&oauth.service_account_json()).unwrap();
    let first = auth.bearer().await.unwrap();
    assert_eq!(first.expose(), "ya29.fake-1");
    let second = auth.bearer().await.unwrap();
    assert_eq!(second.expose(), "ya29.fake-1");
    assert_eq!(oauth.issued(), 1, "a live token is served from the cache");
    assert!(!format!("{auth:?}").contains("PRIVATE KEY"));

    let fake = FakeGemini::start("ya29.fake-1").await;
    let url = vertex_url(
        &fake.base_url,
        PROJECT,
        LOCATION,
        "google",
        "gemini-2.5-flash",
        "generateContent",
    );
    let auth_header = format!("Bearer {}", second.expose());
    let resp = post(
        &url,
        &[("authorization", &auth_header)],
        generate_content_body(&chat(false)).unwrap(),
    )
    .await;
    assert_eq!(resp.status(), 200);
}

#[tokio::test]
async fn a_token_near_its_expiry_is_fetched_again() {
    // gcp_auth treats a token as expired 20 seconds before it is: one that lives 10
    // seconds is refreshed on every call, which shows refresh happens before expiry.
    let oauth = FakeGoogleOAuth::start(10).await;
    let auth = VertexAuth::from_service_account_json(&oauth.service_account_json()).unwrap();
    assert_eq!(auth.bearer().await.unwrap().expose(), "ya29.fake-1");
    assert_eq!(auth.bearer().await.unwrap().expose(), "ya29.fake-2");
    assert_eq!(oauth.issued(), 2);
}
