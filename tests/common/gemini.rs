//! A fake Google: the Gemini API and Vertex AI's publisher-model paths on one loopback
//! server, checking what Google checks before it reads a body (the API key; the
//! bearer token and the project and location in the path), then the body's
//! `contents`, and answering with the documented shapes (tests/fixtures/gemini):
//! `generateContent` JSON, `streamGenerateContent?alt=sse` chunks (each a whole
//! response with its running `usageMetadata`), or without `alt=sse` the same chunks
//! as one JSON array. Errors use Google's shape, `{"error": {code, message, status,
//! details}}`, with the statuses Google answers: an invalid key is a 400
//! `INVALID_ARGUMENT` (reason `API_KEY_INVALID`), a missing one a 403
//! `PERMISSION_DENIED`, a bad token a 401 `UNAUTHENTICATED`, throttling a 429
//! `RESOURCE_EXHAUSTED`.
//!
//! [`FakeGoogleOAuth`] is a service account's token endpoint (`token_uri`): it checks
//! the JWT-bearer grant's claims and counts the tokens it issues.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use serde_json::{json, Value};

use super::fixture;

/// The API key the fake Gemini API accepts: what the gateway harness resolves
/// `api_key = "env:GEMINI_KEY"` to.
pub const GEMINI_KEY: &str = "secret-GEMINI_KEY";
/// The project and location the fake Vertex AI serves.
pub const PROJECT: &str = "tollgate-test";
pub const LOCATION: &str = "europe-west4";

/// A request the fake received (after its checks or not).
#[derive(Clone, Debug)]
pub struct Received {
    pub path: String,
    pub query: Option<String>,
    pub headers: HeaderMap,
    pub body: Value,
}

struct FakeState {
    bearer: Mutex<String>,
    throttle: AtomicBool,
    received: Mutex<Vec<Received>>,
}

/// The fake Gemini API and Vertex AI.
pub struct FakeGemini {
    pub base_url: String,
    state: Arc<FakeState>,
}

impl FakeGemini {
    /// A fake whose Vertex paths accept `Authorization: Bearer {bearer}`.
    pub async fn start(bearer: &str) -> Self {
        let state = Arc::new(FakeState {
            bearer: Mutex::new(bearer.to_owned()),
            throttle: AtomicBool::new(false),
            received: Mutex::new(Vec::new()),
        });
        let app = axum::Router::new()
            .route("/v1beta/models/{target}", axum::routing::post(gemini_api))
            .route(
                "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}",
                axum::routing::post(vertex),
            )
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base_url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { base_url, state }
    }

    /// Answer every request with 429 `RESOURCE_EXHAUSTED` while `on`.
    pub fn throttle(&self, on: bool) {
        self.state.throttle.store(on, Ordering::SeqCst);
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.received.lock().unwrap().clone()
    }
}

/// Google's error body.
pub fn google_error(status: StatusCode, code: &str, message: &str, details: Value) -> Response {
    let body = json!({"error": {"code": status.as_u16(), "message": message,
        "status": code, "details": details}});
    (status, axum::Json(body)).into_response()
}

fn record(
    state: &FakeState,
    path: String,
    query: Option<String>,
    headers: &HeaderMap,
    body: &[u8],
) {
    let body = serde_json::from_slice(body).unwrap_or(Value::Null);
    state.received.lock().unwrap().push(Received {
        path,
        query,
        headers: headers.clone(),
        body,
    });
}

async fn gemini_api(
    State(state): State<Arc<FakeState>>,
    Path(target): Path<String>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    record(
        &state,
        format!("/v1beta/models/{target}"),
        query.clone(),
        &headers,
        &body,
    );
    let header_key = headers.get("x-goog-api-key").and_then(|v| v.to_str().ok());
    let query_key = query
        .as_deref()
        .and_then(|q| q.split('&').find_map(|kv| kv.strip_prefix("key=")));
    match header_key.or(query_key) {
        None => {
            return google_error(
                StatusCode::FORBIDDEN,
                "PERMISSION_DENIED",
                "Method doesn't allow unregistered callers (callers without established identity). Please use API Key or other form of API consumer identity to call this API.",
                json!([]),
            )
        }
        Some(key) if key != GEMINI_KEY => {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "API key not valid. Please pass a valid API key.",
                json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID", "domain": "googleapis.com",
                    "metadata": {"service": "generativelanguage.googleapis.com"}}]),
            )
        }
        Some(_) => {}
    }
    if state.throttle.load(Ordering::SeqCst) {
        return google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "You exceeded your current quota, please check your plan and billing details.",
            json!([{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "7s"}]),
        );
    }
    answer(&target, query.as_deref(), &body)
}

async fn vertex(
    State(state): State<Arc<FakeState>>,
    Path((project, location, publisher, target)): Path<(String, String, String, String)>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let path = format!(
        "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{target}"
    );
    record(&state, path, query.clone(), &headers, &body);
    let expected = format!("Bearer {}", state.bearer.lock().unwrap());
    if headers.get("authorization").and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
        return google_error(
            StatusCode::UNAUTHORIZED,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
            json!([{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "ACCESS_TOKEN_TYPE_UNSUPPORTED", "domain": "googleapis.com"}]),
        );
    }
    if project != PROJECT || location != LOCATION || publisher != "google" {
        let model = target.split(':').next().unwrap_or_default();
        return google_error(
            StatusCode::FORBIDDEN,
            "PERMISSION_DENIED",
            &format!("Permission 'aiplatform.endpoints.predict' denied on resource '//aiplatform.googleapis.com/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}' (or it may not exist)."),
            json!([]),
        );
    }
    if state.throttle.load(Ordering::SeqCst) {
        return google_error(
            StatusCode::TOO_MANY_REQUESTS,
            "RESOURCE_EXHAUSTED",
            "Resource exhausted. Please try again later.",
            json!([]),
        );
    }
    answer(&target, query.as_deref(), &body)
}

/// A deterministic embedding of `text`: `[its length, `second`]`.
#[expect(clippy::cast_precision_loss, reason = "short test texts")]
fn embedding_of(text: &str, second: f32) -> Value {
    json!([text.len() as f32, second])
}

/// `batchEmbedContents`: every request names `models/{model}` of the URL and has text
/// parts; the embeddings come in request order, with no token usage (as Google's).
fn batch_embed(model: &str, body: &Value) -> Response {
    let requests = body["requests"].as_array().cloned().unwrap_or_default();
    let mut embeddings = Vec::new();
    for r in &requests {
        let text = r["content"]["parts"][0]["text"].as_str();
        if r["model"] != format!("models/{model}") || text.is_none() {
            return google_error(
                StatusCode::BAD_REQUEST,
                "INVALID_ARGUMENT",
                "* BatchEmbedContentsRequest.model: unexpected model name format\n",
                json!([]),
            );
        }
        embeddings.push(json!({"values": embedding_of(text.unwrap_or_default(), 0.5)}));
    }
    typed(
        json!({ "embeddings": embeddings }).to_string(),
        "application/json",
    )
}

/// Vertex AI's `predict` for a text embedding model: `instances[].content`, answered
/// in order with each one's `statistics.token_count` (its words here).
fn predict(body: &Value) -> Response {
    let instances = body["instances"].as_array().cloned().unwrap_or_default();
    let predictions: Vec<Value> = instances
        .iter()
        .filter_map(|i| i["content"].as_str())
        .map(|text| {
            json!({"embeddings": {"values": embedding_of(text, 0.25),
                "statistics": {"truncated": false, "token_count": text.split_whitespace().count()}}})
        })
        .collect();
    if instances.is_empty() || predictions.len() != instances.len() {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "Invalid instances.",
            json!([]),
        );
    }
    typed(
        json!({"predictions": predictions, "metadata": {"billableCharacterCount": 0}}).to_string(),
        "application/json",
    )
}

/// The answer to `{model}:{method}` once the caller is let in.
fn answer(target: &str, query: Option<&str>, body: &[u8]) -> Response {
    let body: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
    match target.split_once(':') {
        Some((model, "batchEmbedContents")) => return batch_embed(model, &body),
        Some((_, "predict")) => return predict(&body),
        _ => {}
    }
    let contents_ok = body
        .get("contents")
        .and_then(Value::as_array)
        .is_some_and(|c| {
            !c.is_empty()
                && c.iter().all(|turn| {
                    matches!(turn["role"].as_str(), Some("user" | "model"))
                        && turn["parts"].as_array().is_some_and(|p| !p.is_empty())
                })
        });
    if !contents_ok {
        return google_error(
            StatusCode::BAD_REQUEST,
            "INVALID_ARGUMENT",
            "* GenerateContentRequest.contents: contents is not specified\n",
            json!([]),
        );
    }
    let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    match target.split_once(':').map(|(_, method)| method) {
        Some("generateContent") => {
            typed(fixture("gemini/generate_content.json"), "application/json")
        }
        Some("streamGenerateContent") if sse => typed(
            fixture("gemini/stream_generate_content.sse"),
            "text/event-stream",
        ),
        Some("streamGenerateContent") => {
            let chunks: Vec<Value> = fixture("gemini/stream_generate_content.sse")
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .map(|d| serde_json::from_str(d).unwrap())
                .collect();
            typed(Value::Array(chunks).to_string(), "application/json")
        }
        _ => google_error(
            StatusCode::NOT_FOUND,
            "NOT_FOUND",
            "Method not found.",
            json!([]),
        ),
    }
}

fn typed(body: String, content_type: &'static str) -> Response {
    let mut resp = Response::new(Body::from(body));
    resp.headers_mut()
        .insert("content-type", content_type.parse().unwrap());
    resp
}

/// A fake OAuth 2 token endpoint for a service account's JWT-bearer grant.
pub struct FakeGoogleOAuth {
    pub token_uri: String,
    issued: Arc<AtomicU64>,
}

impl FakeGoogleOAuth {
    /// Issues `ya29.fake-{n}` tokens that live `expires_in` seconds.
    pub async fn start(expires_in: u64) -> Self {
        let issued = Arc::new(AtomicU64::new(0));
        let counter = issued.clone();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let token_uri = format!("http://{}/token", listener.local_addr().unwrap());
        let audience = token_uri.clone();
        let app = axum::Router::new().route(
            "/token",
            axum::routing::post(move |form: axum::Form<Vec<(String, String)>>| {
                let (counter, audience) = (counter.clone(), audience.clone());
                async move { token(&counter, &audience, expires_in, &form.0) }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self { token_uri, issued }
    }

    /// How many tokens were issued.
    pub fn issued(&self) -> u64 {
        self.issued.load(Ordering::SeqCst)
    }

    /// A service-account JSON (the test-only key) whose `token_uri` is this endpoint.
    pub fn service_account_json(&self) -> String {
        let mut sa: Value =
            serde_json::from_str(&fixture("gemini/service_account_test_only.json")).unwrap();
        sa["token_uri"] = Value::from(self.token_uri.as_str());
        sa.to_string()
    }
}

/// Check the grant as Google does (the grant type; the assertion's issuer, audience
/// and scope), then issue a token.
fn token(
    counter: &AtomicU64,
    audience: &str,
    expires_in: u64,
    form: &[(String, String)],
) -> Response {
    let field = |k: &str| {
        form.iter()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.as_str())
    };
    let claims = field("assertion")
        .and_then(|jwt| jwt.split('.').nth(1))
        .and_then(|c| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(c.trim_end_matches('='))
                .ok()
        })
        .and_then(|c| serde_json::from_slice::<Value>(&c).ok())
        .unwrap_or(Value::Null);
    let grant_ok = field("grant_type") == Some("urn:ietf:params:oauth:grant-type:jwt-bearer");
    let claims_ok = claims["iss"] == "tollgate-test@tollgate-test.iam.gserviceaccount.com"
        && claims["aud"] == audience
        && claims["scope"] == "https://www.googleapis.com/auth/cloud-platform";
    if !(grant_ok && claims_ok) {
        let body = json!({"error": "invalid_grant", "error_description": "Invalid JWT"});
        return (StatusCode::BAD_REQUEST, axum::Json(body)).into_response();
    }
    let n = counter.fetch_add(1, Ordering::SeqCst) + 1;
    axum::Json(
        json!({"access_token": format!("ya29.fake-{n}"), "expires_in": expires_in,
        "token_type": "Bearer"}),
    )
    .into_response()
}
