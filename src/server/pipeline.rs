//! The steps every proxied surface shares, in the order a request meets them: admit
//! (auth, the key's in-flight slot, its request rate, the body read within limits),
//! pick the model (the key may use it, and it is of the surface's kind), decide
//! residency (offers outside the key's effective policy are removed before anything
//! is connected), order the allowed offers and check the budget; and, when any of
//! these refuses, the one record of the refusal. Chat completions (`chat`),
//! embeddings (`embeddings`), Messages (`messages`) and Responses (`responses`) are
//! each a parse and an answer around these.

use std::sync::Arc;

use axum::body::Body;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;

use super::{attempts, refused, AppState};
use crate::api::error::{ErrorCode, GatewayError, Unsupported};
use crate::auth::{self, InFlightGuard};
use crate::config::{KeySettings, ModelKind, ModelSettings, ProviderSettings};
use crate::ledger::{Outcome, UsageSource};
use crate::metering::facts::{self, RequestFacts};
use crate::metering::finalize::Ending;
use crate::policy;
use crate::routing::{Candidate, CostInputs};
use crate::telemetry::metrics;
use crate::tokens::Usage;

/// An admitted request: whose it is, its in-flight slot, and its body.
pub(super) struct Admitted {
    pub key_index: usize,
    /// Held for as long as the answer lasts (a stream until it ends).
    pub in_flight: InFlightGuard,
    pub body: Bytes,
}

/// Authenticate, take an in-flight slot, admit the request under the key's rate
/// limit, and read the body (`server.max_body_bytes`, `server.body_read_timeout`).
pub(super) async fn admit(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    facts: &mut RequestFacts,
) -> Result<Admitted, GatewayError> {
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
    let body = super::read_body(body, headers, &app.settings).await?;
    Ok(Admitted {
        key_index: principal.key_index,
        in_flight,
        body,
    })
}

/// The model named `name`, when the key may use it and it is served by the surface
/// asking (`kind`): a chat request to an embeddings model, or the reverse, is a 400
/// that names the right endpoint.
pub(super) fn find_model<'a>(
    app: &'a AppState,
    key_index: usize,
    name: &str,
    kind: ModelKind,
) -> Result<(usize, &'a ModelSettings), GatewayError> {
    let key = app.settings.keys.get(key_index);
    let may_use = |m: &ModelSettings| {
        key.and_then(|k| k.models.as_ref())
            .is_none_or(|allowed| allowed.contains(&m.name))
    };
    let (index, model) = app
        .settings
        .models
        .iter()
        .enumerate()
        .find(|(_, m)| m.name == name && may_use(m))
        .ok_or_else(|| {
            let names: Vec<&str> = app
                .settings
                .models
                .iter()
                .filter(|m| may_use(m) && m.kind == kind)
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
        })?;
    if model.kind != kind {
        let endpoint = match model.kind {
            ModelKind::Chat => "POST /v1/chat/completions",
            ModelKind::Embeddings => "POST /v1/embeddings",
        };
        return Err(GatewayError::new(
            ErrorCode::InvalidRequest,
            format!(
                "model {name:?} is {} model, served only by {endpoint}; use that endpoint or one of this endpoint's models (GET /v1/models lists each model's kind)",
                match model.kind {
                    ModelKind::Chat => "a chat",
                    ModelKind::Embeddings => "an embeddings",
                }
            ),
        )
        .with_param("model"));
    }
    Ok((index, model))
}

/// The residency decision for this key, model and request, kept in `facts` for the
/// record; a 403 `residency_violation` when no offer is left.
pub(super) fn decide(
    app: &AppState,
    key_index: usize,
    model: &ModelSettings,
    headers: &HeaderMap,
    facts: &mut RequestFacts,
) -> Result<Arc<policy::RecordedDecision>, GatewayError> {
    let key = key_of(app, key_index)?;
    let decision = policy::evaluate(&key.residency, model, &app.settings.providers, headers)?;
    // Shared with the record and encoded by the ledger writer, off the request path.
    let recorded = Arc::new(policy::RecordedDecision::new(
        decision,
        app.settings.clone(),
        key_index,
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
    Ok(recorded)
}

/// What the routing order and the budget check need to know of the request.
pub(super) struct Expected {
    /// The prompt's constant-time estimate (never a count).
    pub prompt_tokens: u64,
    /// The request's output limit; `Some(0)` for a request that has no output.
    pub max_output: Option<u64>,
}

/// Order the allowed offers by the model's strategy, then check the key's budget
/// against the first choice's expected cost (an unpriced offer cannot be checked in
/// advance and is charged nothing).
pub(super) async fn route(
    app: &AppState,
    key_index: usize,
    (model_index, model): (usize, &ModelSettings),
    allowed: &[usize],
    expected: Expected,
    facts: &RequestFacts,
) -> Result<Vec<Candidate>, GatewayError> {
    let key = key_of(app, key_index)?;
    let cost_inputs = CostInputs {
        prompt_tokens: expected.prompt_tokens,
        max_output: expected.max_output,
        prices: &app.meter.prices,
        at: facts.created_at,
        always: has_budget(app, key),
    };
    let candidates = app.router.order(model_index, model, allowed, &cost_inputs);
    let expected = candidates
        .first()
        .and_then(|c| c.expected_cost)
        .unwrap_or_default();
    app.limits
        .check_budget_async(key_index, expected, facts.created_at)
        .await
        .map_err(refused)?;
    Ok(candidates)
}

/// The provider of `model`'s offer `offer`.
pub(super) fn provider_of<'a>(
    app: &'a AppState,
    model: &ModelSettings,
    offer: usize,
) -> Option<&'a ProviderSettings> {
    let offer = model.offers.get(offer)?;
    app.settings.providers.get(offer.provider)
}

/// The adapter serving `model`'s offer `offer`.
pub(super) fn adapter_of(
    app: &AppState,
    model: &ModelSettings,
    offer: usize,
) -> Option<&'static dyn crate::providers::ProviderAdapter> {
    let upstream_model = &model.offers.get(offer)?.upstream_model;
    app.adapter(provider_of(app, model, offer)?, upstream_model)
}

/// The allowed offers whose upstream can honour the request (`cannot` says what a
/// provider cannot, serving the offer's upstream model). When none can, the request
/// asks for something no allowed offer has: a 400 naming the field.
pub(super) fn servable(
    app: &AppState,
    model: &ModelSettings,
    allowed: &[usize],
    cannot: impl Fn(&ProviderSettings, &str) -> Option<Unsupported>,
) -> Result<Vec<usize>, GatewayError> {
    let mut refusal = None;
    let cannot_serve = |offer: usize| {
        let upstream_model = &model.offers.get(offer)?.upstream_model;
        cannot(provider_of(app, model, offer)?, upstream_model)
    };
    let servable: Vec<usize> = allowed
        .iter()
        .copied()
        .filter(|offer| match cannot_serve(*offer) {
            Some(unsupported) => {
                refusal.get_or_insert(unsupported);
                false
            }
            None => true,
        })
        .collect();
    match refusal {
        Some(u) if servable.is_empty() => Err(u.for_model(&model.name)),
        _ => Ok(servable),
    }
}

/// What a surface has decided before its attempts: the key, the model, the offers that
/// may serve (allowed by residency and able to honour the request), the expected size,
/// and the work itself.
pub(super) struct Decided<'a> {
    pub key_index: usize,
    pub model: (usize, &'a ModelSettings),
    pub allowed: &'a [usize],
    pub expected: Expected,
    pub work: attempts::Work<'a>,
}

/// Order the offers and check the budget ([`route`]), run the attempts with failover,
/// and keep the key's in-flight slot for as long as the answer lasts (a stream until
/// it ends).
pub(super) async fn run(
    app: &AppState,
    decided: Decided<'_>,
    in_flight: InFlightGuard,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let (model_index, model) = decided.model;
    let candidates = route(
        app,
        decided.key_index,
        decided.model,
        decided.allowed,
        decided.expected,
        facts,
    )
    .await?;
    let plan = attempts::Plan {
        req: decided.work,
        model_index,
        model,
        candidates: &candidates,
    };
    let resp = attempts::run(app, &plan, facts).await?;
    Ok(resp.map(|b| Body::new(super::edge::Guarded::new(b, in_flight))))
}

/// `serve`'s answer, or, at the shutdown deadline, the error a request still waiting
/// (on its body or the upstream) is answered with, so that it is answered 503 and
/// recorded rather than dropped with its connection.
pub(super) async fn until_cut(
    app: &AppState,
    serve: impl std::future::Future<Output = Result<Response, GatewayError>>,
) -> Result<Response, GatewayError> {
    tokio::select! {
        r = serve => r,
        () = app.shutdown.cut_requested() => Err(shutting_down()),
    }
}

/// The error a request still waiting at the shutdown deadline is answered with.
pub(super) fn shutting_down() -> GatewayError {
    GatewayError::new(
        ErrorCode::ShuttingDown,
        "tollgate is shutting down and ended this request at its shutdown deadline; retry it",
    )
}

/// A request refused or failed before any answer: its one record, then the error.
pub(super) fn refuse(app: &AppState, facts: &RequestFacts, err: GatewayError) -> Response {
    record_refusal(app, facts, &err);
    err.into_response_with_id(&facts.request_id)
}

/// [`refuse`] for the Messages surface: the error in Anthropic's shape.
pub(super) fn refuse_anthropic(
    app: &AppState,
    facts: &RequestFacts,
    err: GatewayError,
) -> Response {
    record_refusal(app, facts, &err);
    err.into_anthropic_response(&facts.request_id)
}

fn record_refusal(app: &AppState, facts: &RequestFacts, err: &GatewayError) {
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
        facts,
        Usage::default(),
        UsageSource::None,
    );
    app.meter.finish(facts, &priced, &ending);
}

fn key_of(app: &AppState, key_index: usize) -> Result<&KeySettings, GatewayError> {
    app.settings.keys.get(key_index).ok_or_else(|| {
        GatewayError::new(
            ErrorCode::Internal,
            "the key vanished from the configuration",
        )
    })
}

/// Whether the key or its team has a budget (then expected costs are computed).
fn has_budget(app: &AppState, key: &KeySettings) -> bool {
    let set = |b: &crate::config::Budget| b.usd_per_day.is_some() || b.usd_per_month.is_some();
    set(&key.budget)
        || key
            .team
            .and_then(|t| app.settings.teams.get(t))
            .is_some_and(|t| set(&t.budget))
}
