//! The chat completions pipeline: auth -> parse -> model -> policy -> attempts with
//! failover -> relay (streamed through `MeteredBody`) or answer (with cost) -> one
//! ledger record. Both the OpenAI and the Azure-style routes land here.
//!
//! Retries happen only before the first byte reaches the client.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::Value;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::api::openai::ChatRequest;
use crate::auth;
use crate::config::ModelSettings;
use crate::ledger::{Outcome, UsageSource};
use crate::metering::body::{MeteredBody, StreamSetup};
use crate::metering::estimate::{OutputTokenCounter, TokenizerKind};
use crate::metering::finalize::{self, Ending, Meter, Priced, RequestFacts, ServedBy};
use crate::metering::Usage;
use crate::policy;
use crate::providers::{adapter_for, ProviderAdapter, Target};
use crate::upstream::AttemptError;

/// `POST /v1/chat/completions`.
pub async fn chat_completions(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(app, headers, body, "chat_completions", None).await
}

/// `POST /openai/deployments/{deployment}/chat/completions?api-version=...`: the
/// deployment names the logical model, as Azure OpenAI clients expect.
pub async fn azure_chat_completions(
    State(app): State<Arc<AppState>>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(
        app,
        headers,
        body,
        "azure_chat_completions",
        Some(deployment),
    )
    .await
}

async fn handle(
    app: Arc<AppState>,
    headers: HeaderMap,
    body: Body,
    route: &'static str,
    path_model: Option<String>,
) -> Response {
    let mut facts = super::new_facts(&app, route);
    match serve(&app, &headers, body, path_model.as_deref(), &mut facts).await {
        Ok(resp) => resp,
        Err(err) => {
            let outcome = match err.code.status().as_u16() {
                500.. => Outcome::UpstreamError,
                _ => Outcome::Rejected,
            };
            let ending = Ending {
                status: err.code.status().as_u16(),
                outcome,
                error_code: Some(err.code.as_str()),
                ttfb: None,
                upstream_time: None,
            };
            let priced = finalize::price(
                &app.meter.prices,
                &facts,
                Usage::default(),
                UsageSource::None,
            );
            app.meter.finish(&facts, &priced, &ending);
            err.into_response_with_id(&facts.request_id)
        }
    }
}

async fn serve(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    path_model: Option<&str>,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let principal = auth::authenticate(&app.settings.keys, headers)?;
    facts.key_name = principal.key_name.clone();
    let bytes = super::read_body(body, headers, app.settings.max_body_bytes).await?;
    let req = Arc::new(ChatRequest::parse(&bytes, path_model)?);
    facts.is_streaming = req.is_streaming;
    let model = find_model(app, principal.key_index, &req.model)?;
    facts.logical_model = Some(model.name.clone());
    let decision = policy::evaluate(model, &app.settings.providers, headers)?;
    facts.policy = decision.to_record();
    facts.request = Some(req.clone());

    let mut last_error = None;
    let max_attempts = usize::try_from(app.settings.max_attempts).unwrap_or(usize::MAX);
    for &offer_index in decision.allowed.iter().take(max_attempts) {
        let Some(offer) = model.offers.get(offer_index) else {
            continue;
        };
        let Some(provider) = app.settings.providers.get(offer.provider) else {
            continue;
        };
        let target = Target {
            provider,
            upstream_model: &offer.upstream_model,
        };
        facts.attempts += 1;
        facts.served = Some(ServedBy {
            provider_id: provider.id.clone(),
            upstream_model: offer.upstream_model.clone(),
            residency: provider.residency.clone(),
            price_key: offer.price.clone(),
            tokenizer: TokenizerKind::for_model(&offer.upstream_model),
        });
        let adapter = adapter_for(provider.kind);
        let upstream_req = adapter.build_request(&req, target);
        let result = if req.is_streaming {
            open_stream(app, adapter, upstream_req, &req, facts).await
        } else {
            call(app, adapter, upstream_req, facts).await
        };
        match result {
            Ok(resp) => return Ok(resp),
            Err(e) if e.is_retryable() => {
                tracing::warn!(request_id = %facts.request_id, provider = %provider.id, error = %e, "upstream attempt failed; trying the next offer");
                last_error = Some(e);
            }
            Err(e) => return Err(client_error(&provider.id, e)),
        }
    }
    let provider_id = facts
        .served
        .as_ref()
        .map(|s| s.provider_id.clone())
        .unwrap_or_default();
    Err(match last_error {
        Some(e) => client_error(&provider_id, e),
        None => GatewayError::new(
            ErrorCode::NoUpstreamAvailable,
            "no offer of this model could be tried",
        ),
    })
}

fn find_model<'a>(
    app: &'a AppState,
    key_index: usize,
    name: &str,
) -> Result<&'a ModelSettings, GatewayError> {
    let key = app.settings.keys.get(key_index);
    let may_use = |m: &&ModelSettings| {
        key.and_then(|k| k.models.as_ref())
            .is_none_or(|allowed| allowed.contains(&m.name))
    };
    app.settings
        .models
        .iter()
        .filter(may_use)
        .find(|m| m.name == name)
        .ok_or_else(|| {
            let names: Vec<&str> = app
                .settings
                .models
                .iter()
                .filter(may_use)
                .map(|m| m.name.as_str())
                .collect();
            GatewayError::new(
                ErrorCode::ModelNotFound,
                format!(
                    "model {name:?} is not available to this key; it may use: {}",
                    names.join(", ")
                ),
            )
            .with_param("model")
        })
}

/// What the client is told when attempts failed.
fn client_error(provider_id: &str, e: AttemptError) -> GatewayError {
    match e {
        AttemptError::Timeout => GatewayError::new(
            ErrorCode::UpstreamTimeout,
            format!("provider {provider_id} did not answer in time; retry, or raise upstream.first_byte_timeout"),
        ),
        AttemptError::Connect => GatewayError::new(
            ErrorCode::NoUpstreamAvailable,
            format!("could not connect to provider {provider_id} (nor to any other allowed offer); retry later"),
        ),
        AttemptError::Protocol(what) => {
            GatewayError::new(ErrorCode::UpstreamError, format!("provider {provider_id}: {what}; retry later"))
        }
        AttemptError::Failed(f) => {
            let said = f.message.map(|m| format!(": {m}")).unwrap_or_default();
            match f.status {
                429 => {
                    let err = GatewayError::new(
                        ErrorCode::RateLimited,
                        format!("provider {provider_id} is rate limiting (and no other allowed offer could serve){said}; retry after the indicated time"),
                    );
                    err.with_retry_after(f.retry_after_secs.unwrap_or(1))
                }
                400 | 404 | 409 | 413 | 422 => GatewayError::new(
                    ErrorCode::InvalidRequest,
                    format!("provider {provider_id} rejected the request{said}; fix the request and retry"),
                ),
                401 | 403 => GatewayError::new(
                    ErrorCode::UpstreamError,
                    format!("provider {provider_id} refused tollgate's credentials; the operator must check that provider's api_key"),
                ),
                status => GatewayError::new(
                    ErrorCode::UpstreamError,
                    format!("provider {provider_id} failed with HTTP {status}{said}; retry later"),
                ),
            }
        }
    }
}

async fn open_stream(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: crate::providers::UpstreamRequest,
    req: &ChatRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let opened = app.upstream.open_stream(upstream_req).await?;
    let is_sse = opened
        .content_type
        .as_deref()
        .is_some_and(|ct| ct.starts_with("text/event-stream"));
    if !is_sse {
        return Err(AttemptError::Protocol(
            "the upstream did not answer with an event stream",
        ));
    }
    let setup = StreamSetup {
        meter: app.meter.clone(),
        facts: facts.clone(),
        adapter,
        wants_usage_chunk: req.wants_usage_chunk,
        idle_timeout: app.settings.idle_timeout,
        ttfb: facts.started.elapsed(),
        upstream_started,
    };
    let body = MeteredBody::new(opened.first_chunk, opened.rest, setup);
    let mut resp = Response::new(Body::new(body));
    let h = resp.headers_mut();
    h.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream"),
    );
    h.insert("cache-control", HeaderValue::from_static("no-cache"));
    super::residency_headers(h, facts);
    Ok(resp)
}

async fn call(
    app: &AppState,
    adapter: &'static dyn ProviderAdapter,
    upstream_req: crate::providers::UpstreamRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let ttfb = facts.started.elapsed();
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(&bytes) else {
        return Err(AttemptError::Protocol(
            "the upstream answered with something other than a JSON object",
        ));
    };
    let reported = answer
        .get("usage")
        .map(|u| adapter.usage_from_wire(u))
        .unwrap_or_default();
    let mut counter = (!reported.is_complete()).then(|| visible_output(facts, &answer));
    let (usage, source) = Meter::settle(facts, reported, counter.as_mut());
    let priced = finalize::price(&app.meter.prices, facts, usage, source);
    answer.insert("tollgate".into(), finalize::summary(facts, &priced));
    let ending = Ending {
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        ttfb: Some(ttfb),
        upstream_time: Some(upstream_time),
    };
    app.meter.finish(facts, &priced, &ending);
    let mut resp = (StatusCode::OK, axum::Json(Value::Object(answer))).into_response();
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    cost_headers(h, &priced);
    Ok(resp)
}

/// Count the answer's text when the provider did not report usage.
fn visible_output(
    facts: &RequestFacts,
    answer: &serde_json::Map<String, Value>,
) -> OutputTokenCounter {
    let kind = facts
        .served
        .as_ref()
        .map_or(TokenizerKind::O200kBase, |s| s.tokenizer);
    let mut counter = OutputTokenCounter::new(kind);
    let choices = answer.get("choices").and_then(Value::as_array);
    for choice in choices.into_iter().flatten() {
        for field in ["content", "reasoning_content"] {
            if let Some(text) = choice
                .pointer(&format!("/message/{field}"))
                .and_then(Value::as_str)
            {
                counter.push(text);
            }
        }
    }
    counter
}

fn cost_headers(h: &mut HeaderMap, priced: &Priced) {
    let mut put = |name: &'static str, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            h.insert(name, v);
        }
    };
    put(
        "x-tollgate-cost-usd",
        priced.cost_usd.map(|c| c.to_string()),
    );
    put(
        "x-tollgate-pricing",
        Some(priced.pricing.as_str().to_owned()),
    );
    put(
        "x-tollgate-usage-source",
        Some(priced.source.as_str().to_owned()),
    );
    put(
        "x-tollgate-input-tokens",
        priced.usage.input.map(|n| n.to_string()),
    );
    put(
        "x-tollgate-cached-tokens",
        Some(priced.usage.cached_input.unwrap_or(0).to_string()),
    );
    put(
        "x-tollgate-output-tokens",
        priced.usage.output.map(|n| n.to_string()),
    );
    put(
        "x-tollgate-reasoning-tokens",
        priced.usage.reasoning.map(|n| n.to_string()),
    );
}
