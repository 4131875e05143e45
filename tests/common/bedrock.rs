//! A fake Bedrock Runtime that checks what the real service checks before it answers:
//! the SigV4 signature, recomputed here from the fake's own access key and secret over
//! the request it actually received (method, path, query, the headers the client says
//! it signed, the body's hash), or a Bedrock API key as a bearer token. It answers
//! Converse with the documented JSON and ConverseStream with real eventstream frames
//! (written by aws-smithy-eventstream, CRCs included), and can be told to throttle or
//! to cut a stream midway.
//!
//! The verifier is written from AWS's SigV4 specification ("Create a canonical
//! request", "Create a string to sign", "Calculate the signature"), independently of
//! the `aws-sigv4` crate tollgate signs with, so the two check each other; it is itself
//! checked against AWS's published test vector (tests/bedrock_fake.rs).

use std::sync::{Arc, Mutex};

use aws_smithy_eventstream::frame::write_message_to;
use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
use axum::body::Body;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use ring::{digest, hmac};
use serde_json::{json, Value};

pub const ACCESS_KEY: &str = "AKIDEXAMPLE";
pub const SECRET_KEY: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
pub const API_KEY: &str = "ABSKQmVkcm9ja0FQSUtleS1leGFtcGxl";
pub const REGION: &str = "eu-central-1";

/// A documented Converse answer (API_runtime_Converse, "Response Syntax"; the text
/// from the Converse API guide's example).
pub const CONVERSE_ANSWER: &str = r#"{
  "output": {"message": {"role": "assistant", "content": [
    {"text": "Here is a list of 3 pop songs by artists from the United Kingdom: ..."}
  ]}},
  "stopReason": "end_turn",
  "usage": {"inputTokens": 125, "outputTokens": 60, "totalTokens": 185},
  "metrics": {"latencyMs": 1175}
}"#;

/// A ConverseStream answer, event by event, in the documented order (messageStart,
/// content block deltas, contentBlockStop, messageStop, metadata). Real payloads carry
/// a `p` padding field of varying length; so do these.
pub fn stream_events() -> Vec<(&'static str, Value)> {
    vec![
        (
            "messageStart",
            json!({"p": "abcdefghijk", "role": "assistant"}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": "Here is"}, "p": "abcd"}),
        ),
        (
            "contentBlockDelta",
            json!({"contentBlockIndex": 0, "delta": {"text": " a list of 3 pop songs"}, "p": "abcdefghijklmnopqrstuvw"}),
        ),
        (
            "contentBlockStop",
            json!({"contentBlockIndex": 0, "p": "abcdefghij"}),
        ),
        (
            "messageStop",
            json!({"p": "abcdefghijklmn", "stopReason": "end_turn"}),
        ),
        (
            "metadata",
            json!({"metrics": {"latencyMs": 1175}, "p": "abc",
            "usage": {"inputTokens": 125, "outputTokens": 60, "totalTokens": 185}}),
        ),
    ]
}

/// One eventstream message, as Bedrock frames an event.
pub fn event_frame(event_type: &str, payload: &Value) -> Vec<u8> {
    let string = |s: &str| HeaderValue::String(s.to_owned().into());
    let message = Message::new(payload.to_string().into_bytes())
        .add_header(Header::new(":event-type", string(event_type)))
        .add_header(Header::new(":content-type", string("application/json")))
        .add_header(Header::new(":message-type", string("event")));
    let mut out = Vec::new();
    write_message_to(&message, &mut out).unwrap();
    out
}

/// What the fake does with the next requests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Mode {
    #[default]
    Answer,
    /// HTTP 429 with a `ThrottlingException`.
    Throttle,
    /// ConverseStream: the first `n` events, half of the next, then a reset connection.
    CutAfter(usize),
}

/// A request the fake received, as it arrived.
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub headers: HeaderMap,
    pub body: Bytes,
}

#[derive(Default)]
struct State {
    mode: Mode,
    received: Vec<Received>,
}

pub struct FakeBedrock {
    pub base_url: String,
    state: Arc<Mutex<State>>,
}

impl FakeBedrock {
    pub async fn start() -> Self {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let state = shared.clone();
                async move { handle(&state, method, uri, headers, body) }
            },
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, state }
    }

    pub fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().mode = mode;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }
}

/// Titan Text Embeddings V2's InvokeModel answer: `{"embedding", "inputTextTokenCount",
/// "embeddingsByType"}` for a body with `inputText` (a `ValidationException` without
/// it). The vector is `[text length, 0.125]` (padded with zeros to `dimensions`);
/// the token count is the text's words.
fn titan_embedding(body: &[u8]) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    let Some(text) = body.get("inputText").and_then(Value::as_str) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request: #: required key [inputText] not found",
        );
    };
    #[expect(clippy::cast_precision_loss, reason = "short test texts")]
    let mut embedding = vec![text.len() as f32, 0.125];
    if let Some(d) = body.get("dimensions").and_then(Value::as_u64) {
        embedding.resize(usize::try_from(d).unwrap(), 0.0);
    }
    let answer = json!({"embedding": embedding, "inputTextTokenCount": text.split_whitespace().count(),
        "embeddingsByType": {"float": embedding}});
    (StatusCode::OK, axum::Json(answer)).into_response()
}

/// Bedrock's error shape: the type in `x-amzn-ErrorType`, the text in `message`.
fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let mut resp = (status, axum::Json(json!({ "message": message }))).into_response();
    resp.headers_mut()
        .insert("x-amzn-errortype", kind.parse().unwrap());
    resp
}

fn refuse(status: StatusCode, kind: &str, message: &str) -> Box<Response> {
    Box::new(error(status, kind, message))
}

fn handle(
    state: &Mutex<State>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let mode = {
        let mut s = state.lock().unwrap();
        s.received.push(Received {
            path: uri.path().to_owned(),
            headers: headers.clone(),
            body: body.clone(),
        });
        s.mode
    };
    if let Err(refused) = authenticate(&method, &uri, &headers, &body) {
        return *refused;
    }
    let path = uri.path();
    if method == Method::POST && path.starts_with("/model/") && path.ends_with("/invoke") {
        return titan_embedding(&body);
    }
    let stream = match (method == Method::POST, path.strip_prefix("/model/")) {
        (true, Some(rest)) if rest.ends_with("/converse-stream") => true,
        (true, Some(rest)) if rest.ends_with("/converse") => false,
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "UnknownOperationException",
                "not found",
            )
        }
    };
    if serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|b| b.get("messages").cloned())
        .is_none_or(|m| !m.is_array())
    {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request: required key [messages] not found",
        );
    }
    if mode == Mode::Throttle {
        return error(
            StatusCode::TOO_MANY_REQUESTS,
            "ThrottlingException",
            "Too many requests, please wait before trying again.",
        );
    }
    if !stream {
        let mut resp = Response::new(Body::from(CONVERSE_ANSWER));
        resp.headers_mut()
            .insert("content-type", "application/json".parse().unwrap());
        return resp;
    }
    let frames: Vec<Vec<u8>> = stream_events()
        .iter()
        .map(|(name, payload)| event_frame(name, payload))
        .collect();
    let (chunks, cut): (Vec<Bytes>, bool) = match mode {
        Mode::CutAfter(n) => {
            let mut chunks: Vec<Bytes> = frames
                .iter()
                .take(n)
                .map(|f| Bytes::from(f.clone()))
                .collect();
            if let Some(next) = frames.get(n) {
                chunks.push(Bytes::copy_from_slice(&next[..next.len() / 2]));
            }
            (chunks, true)
        }
        _ => (frames.into_iter().map(Bytes::from).collect(), false),
    };
    use futures_util::StreamExt;
    let sent = futures_util::stream::iter(chunks.into_iter().map(Ok::<_, std::io::Error>));
    // The reset comes once what was sent has left: a body error before the head is
    // flushed would drop the whole response instead of cutting it.
    let reset = futures_util::stream::once(async {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        Err(std::io::Error::other("connection reset"))
    })
    .filter(move |_| std::future::ready(cut));
    let mut resp = Response::new(Body::from_stream(sent.chain(reset)));
    resp.headers_mut().insert(
        "content-type",
        "application/vnd.amazon.eventstream".parse().unwrap(),
    );
    resp
}

/// The checks Bedrock makes before reading the request: a known API key, or a SigV4
/// signature by a known access key that matches the request as received.
fn authenticate(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), Box<Response>> {
    let invalid_token = || {
        refuse(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )
    };
    let auth = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| {
            refuse(
                StatusCode::FORBIDDEN,
                "MissingAuthenticationTokenException",
                "Missing Authentication Token",
            )
        })?;
    if let Some(key) = auth.strip_prefix("Bearer ") {
        return if key == API_KEY {
            Ok(())
        } else {
            Err(invalid_token())
        };
    }
    let auth = SigV4Header::parse(auth).ok_or_else(invalid_token)?;
    if auth.access_key != ACCESS_KEY {
        return Err(invalid_token());
    }
    let amz_date = headers
        .get("x-amz-date")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    let scope_ok = auth.region == REGION
        && auth.service == "bedrock"
        && amz_date.starts_with(&auth.date)
        && auth.signed_headers.iter().any(|h| h == "host");
    let expected = signature(
        SECRET_KEY,
        method.as_str(),
        uri.path(),
        uri.query().unwrap_or_default(),
        headers,
        &auth.signed_headers,
        body,
        amz_date,
        &auth.date,
        &auth.region,
        &auth.service,
    );
    if scope_ok && expected.as_deref() == Some(auth.signature.as_str()) {
        Ok(())
    } else {
        Err(refuse(
            StatusCode::FORBIDDEN,
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method.",
        ))
    }
}

/// The parts of `Authorization: AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…`.
struct SigV4Header {
    access_key: String,
    date: String,
    region: String,
    service: String,
    signed_headers: Vec<String>,
    signature: String,
}

impl SigV4Header {
    fn parse(value: &str) -> Option<Self> {
        let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
        let (mut credential, mut signed, mut signature) = (None, None, None);
        for part in rest.split(',') {
            let (k, v) = part.trim().split_once('=')?;
            match k {
                "Credential" => credential = Some(v),
                "SignedHeaders" => signed = Some(v),
                "Signature" => signature = Some(v),
                _ => return None,
            }
        }
        let scope: Vec<&str> = credential?.split('/').collect();
        let [access_key, date, region, service, "aws4_request"] = scope[..] else {
            return None;
        };
        Some(Self {
            access_key: access_key.into(),
            date: date.into(),
            region: region.into(),
            service: service.into(),
            signed_headers: signed?.split(';').map(str::to_owned).collect(),
            signature: signature?.into(),
        })
    }
}

/// What stays unencoded in SigV4's URI encoding: the unreserved characters.
const UNRESERVED: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

fn hex_sha256(data: &[u8]) -> String {
    hex::encode(digest::digest(&digest::SHA256, data))
}

fn hmac_sha256(key: &[u8], data: &str) -> Vec<u8> {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
        .as_ref()
        .to_vec()
}

/// The SigV4 signature of a request as received; `None` when a signed header is
/// missing. `path` is the raw (already encoded) path: services other than S3 encode
/// each segment once more in the canonical request.
#[allow(clippy::too_many_arguments)]
pub fn signature(
    secret: &str,
    method: &str,
    path: &str,
    query: &str,
    headers: &HeaderMap,
    signed_headers: &[String],
    body: &[u8],
    amz_date: &str,
    date: &str,
    region: &str,
    service: &str,
) -> Option<String> {
    let canonical_uri = path
        .split('/')
        .map(|segment| utf8_percent_encode(segment, UNRESERVED).to_string())
        .collect::<Vec<_>>()
        .join("/");
    let mut query: Vec<(&str, &str)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| p.split_once('=').unwrap_or((p, "")))
        .collect();
    query.sort_unstable();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let values: Vec<&str> = headers
            .get_all(name.as_str())
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        if values.is_empty() {
            return None;
        }
        let values: Vec<String> = values
            .iter()
            .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let canonical_request = format!(
        "{method}\n{canonical_uri}\n{canonical_query}\n{canonical_headers}\n{}\n{}",
        signed_headers.join(";"),
        hex_sha256(body)
    );
    let scope = format!("{date}/{region}/{service}/aws4_request");
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{}",
        hex_sha256(canonical_request.as_bytes())
    );
    let key = [date, region, service, "aws4_request"]
        .iter()
        .fold(format!("AWS4{secret}").into_bytes(), |key, part| {
            hmac_sha256(&key, part)
        });
    Some(hex::encode(hmac_sha256(&key, &string_to_sign)))
}
