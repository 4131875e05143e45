//! The chat completions pipeline: auth -> parse -> model -> policy -> attempts with
//! failover -> relay (streamed through `MeteredBody`) or answer (with cost) -> one
//! ledger record. Both the OpenAI and the Azure-style routes land here.
//!
//! Retries happen only before the first byte reaches the client.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;

use super::{attempts, refused, AppState};
use crate::api::error::{ErrorCode, GatewayError};
use crate::api::openai::ChatRequest;
use crate::auth;
use crate::config::ModelSettings;
use crate::ledger::{Outcome, UsageSource};
use crate::metering::estimate::prompt_estimate;
use crate::metering::facts::{self, RequestFacts};
use crate::metering::finalize::Ending;
use crate::metering::Usage;
use crate::policy;
use crate::providers::adapter_for;
use crate::routing::CostInputs;
use crate::telemetry::metrics;

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
    // At the shutdown deadline a request still waiting (on its body or the upstream)
    // is answered 503 and recorded, rather than dropped with its connection.
    let served = tokio::select! {
        r = serve(&app, &headers, body, path_model.as_deref(), &mut facts) => r,
        () = app.shutdown.cut_requested() => Err(GatewayError::new(
            ErrorCode::ShuttingDown,
            "tollgate is shutting down and ended this request at its shutdown deadline; retry it",
        )),
    };
    match served {
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
            let priced = facts::price(
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
    facts.key_index = Some(principal.key_index);
    facts.team = app
        .settings
        .keys
        .get(principal.key_index)
        .and_then(|k| k.team)
        .and_then(|t| app.settings.teams.get(t))
        .map(|t| t.name.clone());
    let in_flight = app
        .in_flight
        .acquire(principal.key_index)
        .inspect_err(|_| metrics::record_limit_refusal("in_flight"))?;
    app.limits
        .admit_request_async(principal.key_index)
        .await
        .map_err(refused)?;
    let bytes = super::read_body(body, headers, &app.settings).await?;
    let req = Arc::new(ChatRequest::parse(&bytes, path_model)?);
    // The parsed request holds what it needs; the raw body would only add to the peak.
    drop(bytes);
    facts.is_streaming = req.is_streaming;
    let (model_index, model) = find_model(app, principal.key_index, &req.model)?;
    facts.logical_model = Some(model.name.clone());
    facts.request = Some(req.clone());
    let Some(key) = app.settings.keys.get(principal.key_index) else {
        return Err(GatewayError::new(
            ErrorCode::Internal,
            "the key vanished from the configuration",
        ));
    };
    let decision = policy::evaluate(&key.residency, model, &app.settings.providers, headers)?;
    // Shared with the record and encoded by the ledger writer, off the request path.
    let recorded = Arc::new(policy::RecordedDecision::new(
        decision,
        app.settings.clone(),
        principal.key_index,
    ));
    facts.policy = crate::ledger::PolicyJson::Deferred(recorded.clone());
    let decision = &recorded.decision;
    if decision.allowed.is_empty() {
        metrics::record_policy_denial(&model.name, &decision.reasons());
        return Err(policy::refusal(
            &key.residency,
            decision,
            model,
            &app.settings.providers,
        ));
    }
    let cost_inputs = CostInputs {
        prompt_tokens: prompt_estimate(req.messages_json().get()),
        max_output: max_output_tokens(&req),
        prices: &app.meter.prices,
        at: facts.created_at,
        always: has_budget(app, key),
    };
    let candidates = app
        .router
        .order(model_index, model, &decision.allowed, &cost_inputs);
    let candidates = servable(app, model, candidates, &req)?;
    // The budget check uses the first choice's expected cost; an unpriced offer
    // cannot be checked in advance and is charged nothing.
    let expected = candidates
        .first()
        .and_then(|c| c.expected_cost)
        .unwrap_or_default();
    app.limits
        .check_budget_async(principal.key_index, expected, facts.created_at)
        .await
        .map_err(refused)?;
    let plan = attempts::Plan {
        req: &req,
        model_index,
        model,
        candidates: &candidates,
    };
    let resp = attempts::run(app, &plan, facts).await?;
    // The key's in-flight count lasts as long as the answer: a stream until it ends.
    Ok(resp.map(|b| Body::new(super::edge::Guarded::new(b, in_flight))))
}

/// The candidates whose upstream can honour the request in its own dialect. When none
/// can, the request asks for something no allowed offer has: a 400 naming the field.
fn servable(
    app: &AppState,
    model: &ModelSettings,
    candidates: Vec<crate::routing::Candidate>,
    req: &ChatRequest,
) -> Result<Vec<crate::routing::Candidate>, GatewayError> {
    let mut refusal = None;
    let servable: Vec<_> = candidates
        .into_iter()
        .filter(|c| {
            let kind = model
                .offers
                .get(c.offer)
                .and_then(|o| app.settings.providers.get(o.provider))
                .map(|p| p.kind);
            let Some(unsupported) = kind.and_then(|k| adapter_for(k).cannot_serve(req)) else {
                return true;
            };
            refusal.get_or_insert(unsupported);
            false
        })
        .collect();
    match refusal {
        Some(u) if servable.is_empty() => Err(GatewayError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{}` cannot be served by any offer this key may use for model {:?}: {}",
                u.param, model.name, u.why
            ),
        )
        .with_param(u.param.clone())),
        _ => Ok(servable),
    }
}

/// Whether the key or its team has a budget (then expected costs are computed).
fn has_budget(app: &AppState, key: &crate::config::KeySettings) -> bool {
    let set = |b: &crate::config::Budget| b.usd_per_day.is_some() || b.usd_per_month.is_some();
    set(&key.budget)
        || key
            .team
            .and_then(|t| app.settings.teams.get(t))
            .is_some_and(|t| set(&t.budget))
}

/// The request's output limit, whichever name it used.
fn max_output_tokens(req: &ChatRequest) -> Option<u64> {
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| req.body.get(*k).and_then(Value::as_u64))
}

fn find_model<'a>(
    app: &'a AppState,
    key_index: usize,
    name: &str,
) -> Result<(usize, &'a ModelSettings), GatewayError> {
    let key = app.settings.keys.get(key_index);
    let may_use = |m: &ModelSettings| {
        key.and_then(|k| k.models.as_ref())
            .is_none_or(|allowed| allowed.contains(&m.name))
    };
    app.settings
        .models
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == name && may_use(m))
        .ok_or_else(|| {
            let names: Vec<&str> = app
                .settings
                .models
                .iter()
                .filter(|m| may_use(m))
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
