//! The embeddings pipeline: the chat pipeline's admission, model, residency, routing
//! and budget steps (`pipeline`), the embeddings parse, and failover attempts
//! (`attempts`) answered by `embeddings_answer`: one priced, recorded JSON answer.
//! Both the OpenAI and the Azure-style routes land here. Embeddings are never
//! streamed; a request asking for it is refused.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::Response;

use super::{attempts, pipeline, AppState};
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::{GatewayError, Unsupported};
use crate::config::ModelKind;
use crate::metering::facts::RequestFacts;

/// `POST /v1/embeddings`.
pub async fn embeddings(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(app, headers, body, "embeddings", None).await
}

/// `POST /openai/deployments/{deployment}/embeddings?api-version=...`: the deployment
/// names the logical model, as Azure OpenAI clients expect.
pub async fn azure_embeddings(
    State(app): State<Arc<AppState>>,
    Path(deployment): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    handle(app, headers, body, "azure_embeddings", Some(deployment)).await
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
    let req = EmbeddingsRequest::parse(&admitted.body, path_model)?;
    drop(admitted.body);
    let (model_index, model) =
        pipeline::find_model(app, key_index, &req.model, ModelKind::Embeddings)?;
    facts.logical_model = Some(model.name.clone());
    let recorded = pipeline::decide(app, key_index, model, headers, facts)?;
    // An input a cloud cannot embed (token ids, several texts for Titan) takes its offer
    // out; when no allowed offer is left, the client gets a 400 naming `input`.
    let allowed =
        pipeline::servable(
            app,
            model,
            &recorded.decision.allowed,
            |provider, up| match app.adapter(provider, up) {
                Some(adapter) => adapter.cannot_embed(&req, up),
                None => Some(Unsupported::unregistered()),
            },
        )?;
    let expected = pipeline::Expected {
        prompt_tokens: req.estimate(),
        max_output: Some(0),
    };
    let decided = pipeline::Decided {
        key_index,
        model: (model_index, model),
        allowed: &allowed,
        expected,
        work: attempts::Work::Embeddings(&req),
    };
    pipeline::run(app, decided, admitted.in_flight, facts).await
}
