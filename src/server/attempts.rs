//! The attempt loop: try the routed offers in order until one answers, before the
//! first byte reaches the client. Skips offers whose breaker is open or that asked
//! to wait (`retry-after`), backs off between attempts, and tells the router how
//! each attempt went. Translating a final failure into the client's error is here too.

use std::time::Duration;

use axum::response::Response;

use super::answer::call;
use super::relay::{open_stream, ClientDialect};
use super::AppState;
use super::{embeddings_answer, messages_answer, responses_answer};
use crate::api::anthropic::MessagesRequest;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::{ErrorCode, GatewayError};
use crate::api::openai::ChatRequest;
use crate::api::responses::ResponsesRequest;
use crate::config::ModelSettings;
use crate::limits::LimitRefusal;
use crate::metering::facts::{RequestFacts, ServedBy};
use crate::providers::{Dialect, Target, UpstreamRequest};
use crate::routing::Candidate;
use crate::tokens::estimate::{prompt_estimate, TokenizerKind};
use crate::upstream::AttemptError;

/// The request being served: what each attempt sends, and how its answer is read.
#[derive(Clone, Copy)]
pub enum Work<'a> {
    Chat(&'a ChatRequest),
    Embeddings(&'a EmbeddingsRequest),
    /// An Anthropic Messages request, and its chat-completions translation when it has
    /// one (offers that need it are filtered out before attempts when it has none).
    Messages(&'a MessagesRequest, Option<&'a ChatRequest>),
    /// An OpenAI Responses request, and its chat-completions translation when it has
    /// one: offers that serve the Responses API get the request natively, the others
    /// the translation (filtered out before attempts when there is none).
    Responses(&'a ResponsesRequest, Option<&'a ChatRequest>),
}

/// What to try for one request.
pub struct Plan<'a> {
    pub req: Work<'a>,
    pub model_index: usize,
    pub model: &'a ModelSettings,
    /// Allowed offers, in routing order.
    pub candidates: &'a [Candidate],
}

/// A `retry-after` longer than this is not waited for: the offer is skipped instead.
const DEFAULT_RATE_LIMIT_HOLD: Duration = Duration::from_secs(1);

/// Run attempts until one succeeds, an error is the client's own, or attempts run out.
pub async fn run(
    app: &AppState,
    plan: &Plan<'_>,
    facts: &mut RequestFacts,
) -> Result<Response, GatewayError> {
    let max_attempts = app.settings.max_attempts;
    let mut last_error: Option<(String, AttemptError)> = None;
    let mut quota_refusal: Option<LimitRefusal> = None;
    let mut delays = app.router.backoff();
    // Pass over the candidates repeatedly (a single-offer model is retried in place)
    // until attempts run out or a whole pass finds nothing it may try.
    'passes: loop {
        let mut tried_in_pass = false;
        for candidate in plan.candidates {
            if facts.attempts >= max_attempts {
                break 'passes;
            }
            if !app.router.try_acquire(plan.model_index, candidate.offer) {
                continue;
            }
            // An exhausted upstream quota (e.g. GitHub Models' free tier) is routed
            // around instead of collecting the provider's 429s.
            let tokens = expected_tokens(plan, candidate.offer);
            if let Err(r) = app
                .limits
                .offer_available_async(plan.model_index, candidate.offer, tokens)
                .await
            {
                app.router.release_probe(plan.model_index, candidate.offer);
                if quota_refusal
                    .as_ref()
                    .is_none_or(|q| r.retry_after < q.retry_after)
                {
                    quota_refusal = Some(r);
                }
                continue;
            }
            if facts.attempts > 0 {
                let delay = delays.next().unwrap_or(app.settings.routing.max_backoff);
                tokio::time::sleep(delay).await;
            }
            tried_in_pass = true;
            match attempt(app, plan, candidate.offer, facts).await {
                Ok(resp) => return Ok(resp),
                Err((provider_id, e)) => {
                    crate::telemetry::metrics::record_upstream_failure(
                        &provider_id,
                        e.metric_label(),
                    );
                    note_failure(app, plan.model_index, candidate.offer, &e);
                    if !e.is_retryable() {
                        return Err(client_error(&provider_id, e));
                    }
                    tracing::warn!(request_id = %facts.request_id, provider = %provider_id, error = %e, "upstream attempt failed; trying again");
                    last_error = Some((provider_id, e));
                }
            }
        }
        if !tried_in_pass {
            break;
        }
    }
    Err(match (last_error, quota_refusal) {
        (Some((provider_id, e)), _) => client_error(&provider_id, e),
        (None, Some(refusal)) => super::refused(refusal),
        (None, None) => nothing_available(app, plan),
    })
}

/// The prompt's estimated tokens (constant time, no counting), only for an offer whose
/// quota limits tokens.
fn expected_tokens(plan: &Plan<'_>, offer: usize) -> u32 {
    let limits_tokens = plan
        .model
        .offers
        .get(offer)
        .is_some_and(|o| o.quota.tokens_per_minute.is_some());
    if !limits_tokens {
        return 0;
    }
    let estimate = match plan.req {
        Work::Chat(req) => prompt_estimate(req.messages_json().get()),
        Work::Embeddings(req) => req.estimate(),
        Work::Messages(req, _) => u64::try_from(req.prompt_bytes() / 4).unwrap_or(u64::MAX),
        Work::Responses(req, _) => u64::try_from(req.prompt_bytes() / 4).unwrap_or(u64::MAX),
    };
    u32::try_from(estimate).unwrap_or(u32::MAX)
}

/// One attempt on one offer.
async fn attempt(
    app: &AppState,
    plan: &Plan<'_>,
    offer_index: usize,
    facts: &mut RequestFacts,
) -> Result<Response, (String, AttemptError)> {
    let Some(offer) = plan.model.offers.get(offer_index) else {
        return Err((String::new(), AttemptError::Protocol("offer missing")));
    };
    let Some(provider) = app.settings.providers.get(offer.provider) else {
        return Err((String::new(), AttemptError::Protocol("provider missing")));
    };
    facts.attempts += 1;
    facts.slot = Some((plan.model_index, offer_index));
    facts.served = Some(ServedBy {
        provider_id: provider.id.clone(),
        upstream_model: offer.upstream_model.clone(),
        residency: provider.residency.clone(),
        price_key: offer.price.clone(),
        tokenizer: TokenizerKind::for_model(&offer.upstream_model),
    });
    let Some(adapter) = app.adapter(provider, &offer.upstream_model) else {
        return Err((
            provider.id.clone(),
            AttemptError::Protocol("the provider's kind is not registered"),
        ));
    };
    let target = Target {
        provider,
        upstream_model: &offer.upstream_model,
    };
    // The finished request, authorized last: SigV4 signs its exact headers and body.
    let ready = |mut upstream_req: UpstreamRequest| async move {
        app.credentials
            .authorize(offer.provider, provider, &mut upstream_req)
            .await
            .map_err(AttemptError::Credentials)?;
        Ok::<_, AttemptError>(upstream_req)
    };
    let started = tokio::time::Instant::now();
    let result = async {
        match plan.req {
            Work::Chat(req) => {
                let upstream_req = ready(adapter.build_request(req, target)).await?;
                if req.is_streaming {
                    open_stream(app, adapter, upstream_req, chat_client(req), facts).await
                } else {
                    call(app, adapter, upstream_req, facts).await
                }
            }
            Work::Embeddings(req) => match adapter.embeddings_request(req, target) {
                // An offer that cannot embed this input (token ids for a text-only
                // cloud, several texts for Titan) is not sent it; the next is tried.
                Some(_) if adapter.cannot_embed(req, &offer.upstream_model).is_some() => Err(
                    AttemptError::Protocol("this offer cannot embed the request's input"),
                ),
                Some(upstream_req) => {
                    let upstream_req = ready(upstream_req).await?;
                    embeddings_answer::call(app, adapter, upstream_req, req, facts).await
                }
                // check-config refuses such offers; a retryable failure moves on regardless.
                None => Err(AttemptError::Protocol(
                    "this provider kind has no embeddings API",
                )),
            },
            Work::Messages(req, chat) => {
                let native = match adapter.answers_in() {
                    Dialect::AnthropicMessages => adapter.messages_request(req, target),
                    _ => None,
                };
                let upstream_req = match (native, chat) {
                    (Some(native), _) => native,
                    (None, Some(chat)) => adapter.build_request(chat, target),
                    (None, None) => {
                        return Err(AttemptError::Protocol(
                            "the Messages request has no chat translation",
                        ))
                    }
                };
                let upstream_req = ready(upstream_req).await?;
                if req.is_streaming {
                    open_stream(app, adapter, upstream_req, ClientDialect::Messages, facts).await
                } else {
                    messages_answer::call(app, adapter, upstream_req, facts).await
                }
            }
            Work::Responses(req, chat) => {
                // Native whenever the upstream serves the Responses API: nothing is lost
                // in translation, and what only it can honour reaches it.
                match (adapter.responses_request(req, target), chat) {
                    (Some(upstream_req), _) if req.is_streaming => {
                        let upstream_req = ready(upstream_req).await?;
                        let client = ClientDialect::ResponsesNative;
                        open_stream(app, adapter, upstream_req, client, facts).await
                    }
                    (Some(upstream_req), _) => {
                        let upstream_req = ready(upstream_req).await?;
                        responses_answer::native(app, upstream_req, facts).await
                    }
                    (None, Some(chat)) => {
                        let upstream_req = ready(adapter.build_request(chat, target)).await?;
                        if req.is_streaming {
                            let client = ClientDialect::Responses(req);
                            open_stream(app, adapter, upstream_req, client, facts).await
                        } else {
                            responses_answer::call(app, adapter, upstream_req, req, facts).await
                        }
                    }
                    (None, None) => Err(AttemptError::Protocol(
                        "the Responses request has no chat translation",
                    )),
                }
            }
        }
    }
    .await;
    match result {
        Ok(resp) => {
            app.router
                .record_success(plan.model_index, offer_index, started.elapsed(), None);
            Ok(resp)
        }
        Err(e) => Err((provider.id.clone(), e)),
    }
}

/// Tell the router: a rate limit holds the offer off; other server-side failures
/// count towards its breaker; the client's own mistakes say nothing about the offer.
fn note_failure(app: &AppState, model: usize, offer: usize, e: &AttemptError) {
    match e {
        AttemptError::Failed(f) if f.status == 429 => {
            let wait = f
                .retry_after_secs
                .map_or(DEFAULT_RATE_LIMIT_HOLD, Duration::from_secs);
            app.router.hold_off(model, offer, wait);
        }
        e if e.is_retryable() => app.router.record_failure(model, offer),
        _ => {}
    }
}

/// No allowed offer could even be tried: all are held off or their breakers are open.
fn nothing_available(app: &AppState, plan: &Plan<'_>) -> GatewayError {
    let wait = plan
        .candidates
        .iter()
        .filter_map(|c| app.router.held_off_for(plan.model_index, c.offer))
        .min();
    match wait {
        Some(wait) => GatewayError::new(
            ErrorCode::RateLimited,
            "every allowed offer of this model is rate limited by its provider; retry after the indicated time",
        )
        .with_retry_after(wait.as_secs().max(1)),
        None => GatewayError::new(
            ErrorCode::NoUpstreamAvailable,
            "every allowed offer of this model is failing (circuit breakers open); retry shortly",
        ),
    }
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
        AttemptError::Redirect(status) => GatewayError::new(
            ErrorCode::UpstreamError,
            format!("provider {provider_id} answered with a redirect (HTTP {status}), which tollgate never follows; the operator must check that provider's base_url"),
        ),
        AttemptError::Credentials(why) => GatewayError::new(
            ErrorCode::UpstreamError,
            format!("tollgate could not authorize its request to provider {provider_id} ({why}); the operator must check that provider's credentials"),
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

/// How a chat client streams.
fn chat_client(req: &ChatRequest) -> ClientDialect<'static> {
    ClientDialect::Chat {
        wants_usage_chunk: req.wants_usage_chunk,
    }
}
