//! The Bedrock building blocks against a fake that checks what Bedrock checks: a
//! request signed by `providers::bedrock::sign` is accepted and a wrongly signed one
//! refused, an API key is accepted as a bearer token, the Converse answer translates,
//! and the ConverseStream answer decodes through the eventstream framer and the
//! stream decoder into the expected neutral events.

#![expect(
    clippy::unwrap_used,
    reason = "test code; a failure should fail the test"
)]

mod common;

use std::time::SystemTime;

use aws_credential_types::Credentials;
use axum::http::{HeaderMap, HeaderValue};
use bytes::Bytes;
use futures_util::StreamExt;
use serde_json::json;
use tollgate::api::openai::ChatRequest;
use tollgate::config::secret::Secret;
use tollgate::providers::bedrock::answer::to_chat_completion;
use tollgate::providers::bedrock::eventstream::{EventStreamFramer, FramingError};
use tollgate::providers::bedrock::request::{converse_body, converse_url};
use tollgate::providers::bedrock::sign::{sign, BedrockAuth};
use tollgate::providers::bedrock::stream::ConverseStreamDecoder;
use tollgate::providers::sse::SseFrame;
use tollgate::providers::stream::{FinishReason, StreamDecoder, StreamEvent};
use tollgate::providers::UpstreamRequest;

use common::bedrock::{FakeBedrock, Mode, ACCESS_KEY, API_KEY, REGION, SECRET_KEY};

const MODEL: &str = "eu.anthropic.claude-3-7-sonnet-20250219-v1:0";

fn request(fake: &FakeBedrock, stream: bool) -> UpstreamRequest {
    let chat = ChatRequest::parse(
        br#"{"model":"claude","max_tokens":100,"messages":[{"role":"user","content":"Create a list of 3 pop songs."}]}"#,
        None,
    )
    .unwrap();
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    UpstreamRequest {
        url: converse_url(&fake.base_url, MODEL, stream),
        headers,
        body: converse_body(&chat, Some(MODEL)).unwrap(),
    }
}

fn credentials(secret: &str) -> Credentials {
    Credentials::new(ACCESS_KEY, secret, None, None, "test")
}

async fn send(req: UpstreamRequest) -> reqwest::Response {
    reqwest::Client::new()
        .post(&req.url)
        .headers(req.headers)
        .body(req.body)
        .send()
        .await
        .unwrap()
}

async fn error_type(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let kind = resp.headers()["x-amzn-errortype"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, kind)
}

/// The verifier itself agrees with AWS's published SigV4 test vector ("get-vanilla":
/// `GET /` to example.amazonaws.com, service `service`, us-east-1, 20150830T123600Z).
#[test]
fn the_fakes_verifier_reproduces_aws_test_vector() {
    let mut headers = HeaderMap::new();
    headers.insert("host", HeaderValue::from_static("example.amazonaws.com"));
    headers.insert("x-amz-date", HeaderValue::from_static("20150830T123600Z"));
    let got = common::bedrock::signature(
        SECRET_KEY,
        "GET",
        "/",
        "",
        &headers,
        &["host".into(), "x-amz-date".into()],
        b"",
        "20150830T123600Z",
        "20150830",
        "us-east-1",
        "service",
    );
    assert_eq!(
        got.as_deref(),
        Some("5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31")
    );
}

#[tokio::test]
async fn a_signed_converse_request_is_accepted_and_its_answer_translates() {
    let fake = FakeBedrock::start().await;
    let mut req = request(&fake, false);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    let resp = send(req).await;
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let answer = to_chat_completion(&body, 1).unwrap();
    assert_eq!(
        (answer.usage.input, answer.usage.output),
        (Some(125), Some(60))
    );
    assert!(answer.text.starts_with("Here is a list of 3 pop songs"));
    // The model id reached the fake as one encoded path segment.
    assert_eq!(
        fake.received()[0].path,
        "/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
    );
}

#[tokio::test]
async fn a_wrong_secret_an_unknown_key_or_a_changed_body_is_refused_with_403() {
    let fake = FakeBedrock::start().await;
    let mut req = request(&fake, false);
    sign(
        &mut req,
        &credentials("not-the-secret"),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        error_type(send(req).await).await,
        (403, "InvalidSignatureException".into())
    );

    let mut req = request(&fake, false);
    let stranger = Credentials::new("AKIDSTRANGER", SECRET_KEY, None, None, "test");
    sign(&mut req, &stranger, REGION, SystemTime::now()).unwrap();
    assert_eq!(
        error_type(send(req).await).await,
        (403, "UnrecognizedClientException".into())
    );

    let mut req = request(&fake, false);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    req.body = Bytes::from_static(br#"{"messages":[]}"#);
    assert_eq!(
        error_type(send(req).await).await,
        (403, "InvalidSignatureException".into())
    );

    let mut req = request(&fake, false);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        "us-east-1",
        SystemTime::now(),
    )
    .unwrap();
    assert_eq!(
        error_type(send(req).await).await,
        (403, "InvalidSignatureException".into()),
        "signed for another region"
    );
}

#[tokio::test]
async fn an_api_key_is_accepted_as_a_bearer_token_and_a_wrong_one_refused() {
    let fake = FakeBedrock::start().await;
    let mut req = request(&fake, false);
    BedrockAuth::ApiKey(Secret::new(API_KEY.into()))
        .authorize(&mut req, REGION)
        .await
        .unwrap();
    assert_eq!(send(req).await.status(), 200);

    let mut req = request(&fake, false);
    BedrockAuth::ApiKey(Secret::new("ABSKwrong".into()))
        .authorize(&mut req, REGION)
        .await
        .unwrap();
    assert_eq!(
        error_type(send(req).await).await,
        (403, "UnrecognizedClientException".into())
    );
}

/// Every chunk of the response through the framer and the decoder.
async fn decode(resp: reqwest::Response) -> (Vec<StreamEvent>, Result<(), FramingError>) {
    let mut framer = EventStreamFramer::new(1 << 20);
    let mut decoder = ConverseStreamDecoder::default();
    let (mut frames, mut events) = (Vec::new(), Vec::new());
    let mut body = resp.bytes_stream();
    let mut result = Ok(());
    while let Some(chunk) = body.next().await {
        let Ok(chunk) = chunk else { break };
        if let Err(e) = framer.push(&chunk, &mut frames) {
            result = Err(e);
            break;
        }
    }
    if result.is_ok() {
        result = framer.finish(&mut frames);
    }
    for frame in &frames {
        if let SseFrame::Event(event) = frame {
            decoder.decode(event, &mut events);
        }
    }
    (events, result)
}

#[tokio::test]
async fn a_signed_converse_stream_decodes_into_neutral_events() {
    let fake = FakeBedrock::start().await;
    let mut req = request(&fake, true);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    let resp = send(req).await;
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let (events, result) = decode(resp).await;
    result.unwrap();
    assert_eq!(
        events,
        vec![
            StreamEvent::Start {
                id: String::new(),
                model: String::new(),
                created: None
            },
            StreamEvent::Text("Here is".into()),
            StreamEvent::Text(" a list of 3 pop songs".into()),
            StreamEvent::Finish(FinishReason::Stop),
            StreamEvent::Usage(json!({"inputTokens": 125, "outputTokens": 60, "totalTokens": 185})),
            StreamEvent::End,
        ]
    );
    assert!(fake.received()[0].path.ends_with("%3A0/converse-stream"));
}

#[tokio::test]
async fn throttling_is_a_429_and_a_cut_stream_never_ends() {
    let fake = FakeBedrock::start().await;
    fake.set_mode(Mode::Throttle);
    let mut req = request(&fake, true);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    let resp = send(req).await;
    let (status, kind) = error_type(resp).await;
    assert_eq!((status, kind.as_str()), (429, "ThrottlingException"));

    fake.set_mode(Mode::CutAfter(2));
    let mut req = request(&fake, true);
    sign(
        &mut req,
        &credentials(SECRET_KEY),
        REGION,
        SystemTime::now(),
    )
    .unwrap();
    let (events, result) = decode(send(req).await).await;
    assert!(
        matches!(result, Err(FramingError::Truncated(n)) if n > 0),
        "{result:?}"
    );
    assert_eq!(events.last(), Some(&StreamEvent::Text("Here is".into())));
    assert!(!events
        .iter()
        .any(|e| matches!(e, StreamEvent::End | StreamEvent::Usage(_))));
}

/// The default chain reads the environment first: credentials exported there sign a
/// request the fake accepts, without any network lookup (instance metadata disabled,
/// no profile files).
#[tokio::test]
async fn the_default_chain_signs_with_credentials_from_the_environment() {
    // Only this test reads these variables; no other test in this binary sets them.
    std::env::set_var("AWS_ACCESS_KEY_ID", ACCESS_KEY);
    std::env::set_var("AWS_SECRET_ACCESS_KEY", SECRET_KEY);
    std::env::remove_var("AWS_SESSION_TOKEN");
    std::env::remove_var("AWS_PROFILE");
    std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
    std::env::set_var("AWS_CONFIG_FILE", "/nonexistent/aws/config");
    std::env::set_var(
        "AWS_SHARED_CREDENTIALS_FILE",
        "/nonexistent/aws/credentials",
    );
    let auth = BedrockAuth::default_chain(REGION).await;
    assert!(!format!("{auth:?}").contains(SECRET_KEY));
    let fake = FakeBedrock::start().await;
    let mut req = request(&fake, false);
    auth.authorize(&mut req, REGION).await.unwrap();
    assert_eq!(send(req).await.status(), 200);
}
