//! Read-only app endpoints: the models a key may use, and one request's record.

use std::sync::Arc;

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::auth;

/// `GET /v1/models`: the logical models this key may use, in OpenAI's list shape.
pub async fn models(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    let request_id = crate::request_id::new();
    let principal = match auth::authenticate(&app.settings.keys, &headers) {
        Ok(p) => p,
        Err(e) => return e.into_response_with_id(&request_id),
    };
    let allowed = app
        .settings
        .keys
        .get(principal.key_index)
        .and_then(|k| k.models.as_ref());
    let data: Vec<_> = app
        .settings
        .models
        .iter()
        .filter(|m| allowed.is_none_or(|a| a.contains(&m.name)))
        .map(|m| {
            let offers: Vec<_> = m
                .offers
                .iter()
                .filter_map(|o| app.settings.providers.get(o.provider).map(|p| (o, p)))
                .map(|(o, p)| {
                    json!({"provider": p.id, "upstream_model": o.upstream_model,
                           "region": p.residency.region, "jurisdiction": p.residency.jurisdiction,
                           "processing_scope": p.residency.scope.as_str(), "priced": o.price.is_some()})
                })
                .collect();
            json!({"id": m.name, "object": "model", "created": 0, "owned_by": "tollgate", "tollgate": {"kind": m.kind.as_str(), "offers": offers}})
        })
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

/// `GET /v1/tollgate/requests/{id}`: one request's record, only to the key that made it.
pub async fn request_record(
    State(app): State<Arc<AppState>>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    let principal = match auth::authenticate(&app.settings.keys, &headers) {
        Ok(p) => p,
        Err(e) => return e.into_response_with_id(&id),
    };
    let not_found = || {
        GatewayError::new(
            ErrorCode::InvalidRequest,
            format!("no request {id:?} was made with this key; use the x-tollgate-request-id of your own response"),
        )
        .into_response_with_id(&id)
    };
    match app.ledger.find(&id).await {
        Ok(Some(record)) if record.key_name == principal.key_name => Json(record).into_response(),
        Ok(_) => {
            let mut resp = not_found();
            *resp.status_mut() = axum::http::StatusCode::NOT_FOUND;
            resp
        }
        Err(e) => {
            tracing::error!(error = %e, "ledger lookup failed");
            GatewayError::new(
                ErrorCode::Internal,
                "the ledger could not be read; retry shortly",
            )
            .into_response_with_id(&id)
        }
    }
}

/// Unknown paths answer in OpenAI's error shape too.
pub async fn not_found() -> Response {
    let mut resp = GatewayError::new(
        ErrorCode::InvalidRequest,
        "unknown endpoint; tollgate serves /v1/chat/completions, /v1/models and /v1/tollgate/requests/{id}",
    )
    .into_response_with_id("-");
    *resp.status_mut() = axum::http::StatusCode::NOT_FOUND;
    resp
}
