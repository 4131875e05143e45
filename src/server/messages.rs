//! The Anthropic Messages surface (`POST /v1/messages`, for the Anthropic SDKs and
//! coding agents): the shared pipeline steps (`pipeline`), the Messages parse, and
//! failover attempts (`attempts`). An offer of the `anthropic` kind serves the request
//! natively (relayed with only `model` changed); any other offer serves its explicit
//! chat-completions translation (`api::anthropic::to_chat`), and the answer or stream
//! is translated back (`messages_answer`, `metering::stream::chat_anthropic`). A
//! request whose translation is refused can still be served by Anthropic offers; when
//! no allowed offer can serve it, a 400 names the field. Errors are in Anthropic's
//! shape; keys may come as `x-api-key` (the SDK's way) or Bearer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;

use super::{attempts, pipeline, AppState};
use crate::api::anthropic::{to_chat, MessagesRequest};
use crate::api::error::{GatewayError, Unsupported};
use crate::api::openai::ChatRequest;
use crate::config::ModelKind;
use crate::metering::facts::RequestFacts;
use crate::providers::{Dialect, ProviderAdapter};

/// `POST /v1/messages`.
pub async fn messages(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let mut facts = super::new_facts(&app, "messages");
    let served = pipeline::until_cut(&app, serve(&app, &headers, body, &mut facts)).await;
    served.unwrap_or_else(|err| pipeline::refuse_anthropic(&app, &facts, err))
}

async fn serve(
    app: &AppState,
    headers: &HeaderMap,
    body: Body,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let admitted = pipeline::admit(app, headers, body, facts).await?;
    let key_index = admitted.key_index;
    let req = Arc::new(MessagesRequest::parse(&admitted.body)?);
    drop(admitted.body);
    facts.is_streaming = req.is_streaming;
    facts.max_output_tokens = Some(req.max_tokens);
    let (model_index, model) = pipeline::find_model(app, key_index, &req.model, ModelKind::Chat)?;
    facts.logical_model = Some(model.name.clone());
    let recorded = pipeline::decide(app, key_index, model, headers, facts)?;
    // The chat translation is built only when an allowed offer speaks chat completions:
    // it is their request, and the prompt tollgate counts when such an upstream reports
    // no usage. A model served by Anthropic alone never pays for it.
    let speaks_chat = recorded.decision.allowed.iter().any(|offer| {
        pipeline::adapter_of(app, model, *offer)
            .is_some_and(|a| a.answers_in() != Dialect::AnthropicMessages)
    });
    let translated = speaks_chat.then(|| {
        to_chat::chat_body(&req).and_then(|bytes| {
            ChatRequest::parse(&bytes, None)
                .map(Arc::new)
                .map_err(|e| Unsupported::new("messages", e.message))
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
        max_output: Some(req.max_tokens),
    };
    let decided = pipeline::Decided {
        key_index,
        model: (model_index, model),
        allowed: &allowed,
        expected,
        work: attempts::Work::Messages(&req, chat.as_deref()),
    };
    pipeline::run(app, decided, admitted.in_flight, facts).await
}

/// What keeps a provider from serving the request: nothing for Anthropic's own
/// API; for a chat-completions upstream, a refused translation or a field it cannot
/// honour.
fn servable_by(
    adapter: Option<&dyn ProviderAdapter>,
    upstream_model: &str,
    translated: Option<&Result<Arc<ChatRequest>, Unsupported>>,
) -> Option<Unsupported> {
    let Some(adapter) = adapter else {
        return Some(Unsupported::unregistered());
    };
    if adapter.answers_in() == Dialect::AnthropicMessages {
        return None;
    }
    match translated {
        Some(Ok(chat)) => adapter.cannot_serve(chat, upstream_model),
        Some(Err(refused)) => Some(refused.clone()),
        None => Some(Unsupported::new("messages", "no chat translation was made")),
    }
}
