//! `POST /v1/messages/count_tokens`: how many input tokens a Messages request would
//! have, asked of the first allowed Anthropic offer of the model (Anthropic counts for
//! free and has no public tokenizer), else counted by tollgate with the first allowed
//! offer's tokenizer over the request's chat translation (`x-tollgate-usage-source:
//! estimated`). Residency applies as for any request: the prompt goes upstream. The
//! request is recorded (route `count_tokens`) without a cost.

use std::sync::Arc;

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::Response;
use serde_json::json;

use super::{names, pipeline, AppState};
use crate::api::anthropic::{to_chat, MessagesRequest};
use crate::api::error::{ErrorCode, GatewayError};
use crate::api::openai::ChatRequest;
use crate::config::ModelKind;
use crate::ledger::{Outcome, UsageSource};
use crate::metering::facts::{self, RequestFacts, ServedBy};
use crate::metering::finalize::Ending;
use crate::providers::Target;
use crate::tokens::estimate::TokenizerKind;
use crate::tokens::Usage;

/// `POST /v1/messages/count_tokens`.
pub async fn count_tokens(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    body: axum::body::Body,
) -> Response {
    let mut facts = super::new_facts(&app, "count_tokens");
    let served = pipeline::until_cut(&app, serve(&app, &headers, body, &mut facts)).await;
    served.unwrap_or_else(|err| pipeline::refuse_anthropic(&app, &facts, err))
}

async fn serve(
    app: &AppState,
    headers: &HeaderMap,
    body: axum::body::Body,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let admitted = pipeline::admit(app, headers, body, facts).await?;
    let req = MessagesRequest::parse_for_count(&admitted.body)?;
    drop(admitted.body);
    let (_, model) = pipeline::find_model(app, admitted.key_index, &req.model, ModelKind::Chat)?;
    facts.logical_model = Some(model.name.clone());
    let recorded = pipeline::decide(app, admitted.key_index, model, headers, facts)?;
    let offers = recorded.decision.allowed.iter().filter_map(|i| {
        let offer = model.offers.get(*i)?;
        Some((offer, app.settings.providers.get(offer.provider)?))
    });
    let mut fallback = None;
    for (offer, provider) in offers {
        facts.served = Some(ServedBy {
            provider_id: provider.id.clone(),
            upstream_model: offer.upstream_model.clone(),
            residency: provider.residency.clone(),
            price_key: offer.price.clone(),
            tokenizer: TokenizerKind::for_model(&offer.upstream_model),
        });
        let target = Target {
            provider,
            upstream_model: &offer.upstream_model,
        };
        let Some(mut count_req) = app
            .adapter(provider, &offer.upstream_model)
            .and_then(|a| a.count_tokens_request(&req, target))
        else {
            fallback.get_or_insert_with(|| facts.served.clone());
            continue;
        };
        let authorized = app
            .credentials
            .authorize(offer.provider, provider, &mut count_req)
            .await;
        let counted = match authorized {
            Ok(()) => app.upstream.call(count_req).await,
            Err(why) => Err(crate::upstream::AttemptError::Credentials(why)),
        };
        let tokens = counted.ok().and_then(|bytes| {
            let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
            v.get("input_tokens")?.as_u64()
        });
        if let Some(n) = tokens {
            return Ok(answer(app, facts, n, "reported"));
        }
        tracing::warn!(request_id = %facts.request_id, provider = %provider.id, "count_tokens failed upstream; trying the next offer");
    }
    // No Anthropic offer answered: tollgate's own count with the first other offer's tokenizer.
    facts.served = fallback.flatten();
    let kind = facts.served.as_ref().map(|s| s.tokenizer).ok_or_else(|| {
        GatewayError::new(
            ErrorCode::NoUpstreamAvailable,
            "no allowed offer of this model could count the tokens; retry shortly",
        )
    })?;
    let chat = to_chat::chat_body(&req)
        .map_err(|u| u.for_model(&model.name))
        .and_then(|bytes| ChatRequest::parse(&bytes, None))?;
    Ok(answer(app, facts, chat.prompt_tokens(kind), "estimated"))
}

fn answer(app: &AppState, facts: &RequestFacts, tokens: u64, source: &'static str) -> Response {
    let priced = facts::price(
        &app.meter.prices,
        facts,
        Usage::default(),
        UsageSource::None,
    );
    let ending = Ending {
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        ttfb: Some(facts.started.elapsed()),
        upstream_time: None,
    };
    app.meter.finish(facts, &priced, &ending);
    let mut resp = Response::new(axum::body::Body::from(
        json!({ "input_tokens": tokens }).to_string(),
    ));
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    h.insert(names::USAGE_SOURCE, HeaderValue::from_static(source));
    h.insert(names::INPUT, HeaderValue::from(tokens));
    resp
}
