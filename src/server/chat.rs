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

use super::{attempts, pipeline, AppState};
use crate::api::error::{GatewayError, Unsupported};
use crate::api::openai::ChatRequest;
use crate::config::ModelKind;
use crate::metering::facts::RequestFacts;
use crate::tokens::estimate::prompt_estimate;

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
    let served = pipeline::until_cut(
        &app,
        serve(&app, &headers, body, path_model.as_deref(), &mut facts),
    )
    .await;
    served.unwrap_or_else(|err| pipeline::refuse(&app, &facts, err))
}

async fn serve(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    path_model: Option<&str>,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let admitted = pipeline::admit(app, headers, body, facts).await?;
    let key_index = admitted.key_index;
    let req = Arc::new(ChatRequest::parse(&admitted.body, path_model)?);
    // The parsed request holds what it needs; the raw body would only add to the peak.
    drop(admitted.body);
    facts.is_streaming = req.is_streaming;
    let (model_index, model) = pipeline::find_model(app, key_index, &req.model, ModelKind::Chat)?;
    facts.logical_model = Some(model.name.clone());
    facts.max_output_tokens = req.max_output_tokens();
    facts.request = Some(req.clone());
    let recorded = pipeline::decide(app, key_index, model, headers, facts)?;
    let expected = pipeline::Expected {
        prompt_tokens: prompt_estimate(req.messages_json().get()),
        max_output: req.max_output_tokens(),
    };
    let allowed =
        pipeline::servable(
            app,
            model,
            &recorded.decision.allowed,
            |provider, up| match app.adapter(provider, up) {
                Some(adapter) => adapter.cannot_serve(&req, up),
                None => Some(Unsupported::unregistered()),
            },
        )?;
    let decided = pipeline::Decided {
        key_index,
        model: (model_index, model),
        allowed: &allowed,
        expected,
        work: attempts::Work::Chat(&req),
    };
    pipeline::run(app, decided, admitted.in_flight, facts).await
}
