//! The OpenAI Responses surface (`POST /v1/responses`): the shared pipeline steps
//! (`pipeline`), the Responses parse, and failover attempts (`attempts`). An offer
//! whose upstream serves the Responses API itself (the `openai` and `azure_openai`
//! kinds) gets the client's body natively, with only `model` changed, and its answer
//! or stream is relayed with the `tollgate` object added (`responses_answer`,
//! `metering::stream::responses`); so `store`, `previous_response_id` and built-in
//! tools work there, kept by the upstream. Any other chat-completions offer serves the
//! explicit chat translation (`api::responses::to_chat`), translated back; requests
//! only a native relay could honour are refused with a 400 naming the field when no
//! allowed offer is native. Offers in another dialect (Anthropic's) serve the same chat
//! translation, their answer read as a chat completion and their stream decoded into
//! neutral events. Errors are in OpenAI's shape.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{attempts, pipeline, AppState};
use crate::api::error::{GatewayError, Unsupported};
use crate::api::openai::ChatRequest;
use crate::api::responses::{to_chat, ResponsesRequest};
use crate::config::ModelKind;
use crate::metering::facts::RequestFacts;
use crate::providers::ProviderAdapter;

/// `POST /v1/responses`.
pub async fn responses(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut facts = super::new_facts(&app, "responses");
    let served = pipeline::until_cut(&app, serve(&app, &headers, body, &mut facts)).await;
    served.unwrap_or_else(|err| pipeline::refuse(&app, &facts, err))
}

async fn serve(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let admitted = pipeline::admit(app, headers, body, facts).await?;
    let key_index = admitted.key_index;
    let req = Arc::new(ResponsesRequest::parse(&admitted.body)?);
    drop(admitted.body);
    facts.is_streaming = req.is_streaming;
    facts.max_output_tokens = req.max_output_tokens;
    let (model_index, model) = pipeline::find_model(app, key_index, &req.model, ModelKind::Chat)?;
    facts.logical_model = Some(model.name.clone());
    let recorded = pipeline::decide(app, key_index, model, headers, facts)?;
    // The chat translation is built only when an allowed offer is not native: it is
    // their request, and the prompt tollgate counts when such an upstream reports no
    // usage.
    let needs_chat = recorded.decision.allowed.iter().any(|offer| {
        pipeline::adapter_of(app, model, *offer).is_some_and(|a| !a.serves_responses())
    });
    let translated = needs_chat.then(|| {
        to_chat::chat_body(&req).and_then(|bytes| {
            ChatRequest::parse(&bytes, None)
                .map(Arc::new)
                .map_err(|e| Unsupported::new("input", e.message))
        })
    });
    let chat = translated.as_ref().and_then(|t| t.as_ref().ok()).cloned();
    // The prompt tollgate counts when the upstream reports no usage: the chat
    // translation's when one was made, else the client's request (translated then).
    facts.request = match &chat {
        Some(chat) => Some(chat.clone()),
        None => Some(req.clone()),
    };
    let allowed = pipeline::servable(app, model, &recorded.decision.allowed, |provider, up| {
        servable_by(app.adapter(provider, up), up, translated.as_ref())
    })?;
    let expected = pipeline::Expected {
        prompt_tokens: u64::try_from(req.prompt_bytes() / 4).unwrap_or(u64::MAX),
        max_output: req.max_output_tokens,
    };
    let decided = pipeline::Decided {
        key_index,
        model: (model_index, model),
        allowed: &allowed,
        expected,
        work: attempts::Work::Responses(&req, chat.as_deref()),
    };
    pipeline::run(app, decided, admitted.in_flight, facts).await
}

/// What keeps a provider kind from serving the request: nothing for an upstream that
/// serves the Responses API itself; otherwise a refused translation, `reasoning_effort` for an upstream that does not take it, or a
/// field the upstream cannot honour.
fn servable_by(
    adapter: Option<&dyn ProviderAdapter>,
    upstream_model: &str,
    translated: Option<&Result<Arc<ChatRequest>, Unsupported>>,
) -> Option<Unsupported> {
    let Some(adapter) = adapter else {
        return Some(Unsupported::unregistered());
    };
    if adapter.serves_responses() {
        return None;
    }
    let chat = match translated {
        Some(Ok(chat)) => chat,
        Some(Err(refused)) => return Some(refused.clone()),
        None => return Some(Unsupported::new("input", "no chat translation was made")),
    };
    if chat.body.contains_key("reasoning_effort") && !adapter.takes_reasoning_effort() {
        return Some(Unsupported::new(
            "reasoning.effort",
            "this upstream takes no reasoning effort (it reasons as it will)",
        ));
    }
    adapter.cannot_serve(chat, upstream_model)
}
