//! `GET /v1/tollgate/prices`: every offer of a logical model and of its comparison
//! groups, priced for the usage in the query, cheapest first, each with its residency
//! and whether the caller's key may use it. Any valid app key may ask; nothing is sent
//! upstream and nothing is recorded.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::auth;
use crate::pricing::compare;
use crate::pricing::query;

/// Reason given for an offer of a model the key may not use at all.
const MODEL_NOT_ALLOWED: &str = "model_not_allowed";

/// `GET /v1/tollgate/prices?model=&input_tokens=&cached_tokens=&output_tokens=&reasoning_tokens=&at=`.
pub async fn prices(
    State(app): State<Arc<AppState>>,
    headers: HeaderMap,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let request_id = crate::request_id::new();
    match answer(&app, &headers, &params) {
        Ok(body) => Json(body).into_response(),
        Err(e) => e.into_response_with_id(&request_id),
    }
}

fn answer(
    app: &AppState,
    headers: &HeaderMap,
    params: &BTreeMap<String, String>,
) -> Result<serde_json::Value, GatewayError> {
    let principal = auth::authenticate(&app.settings.keys, headers)?;
    let q = query::parse(params)
        .map_err(|p| GatewayError::new(ErrorCode::InvalidRequest, p.message).with_param(p.param))?;
    let settings = &app.settings;
    let key = settings.keys.get(principal.key_index);
    let Some(candidates) = compare::candidates(settings, &q.model) else {
        let names: Vec<&str> = settings.models.iter().map(|m| m.name.as_str()).collect();
        return Err(GatewayError::new(
            ErrorCode::ModelNotFound,
            format!(
                "unknown model {:?}; configured models: {}",
                q.model,
                names.join(", ")
            ),
        )
        .with_param("model"));
    };
    let at = q.at.unwrap_or_else(|| (app.clock)());
    let policy = key.map(|k| &k.residency);
    let mut quotes = compare::quote(
        settings,
        &settings.prices,
        &candidates,
        &q.tokens,
        at,
        policy,
    );
    let may_use = key.and_then(|k| k.models.as_ref());
    for quote in &mut quotes {
        if may_use.is_some_and(|m| !m.contains(&quote.model)) {
            quote.allowed = false;
            quote.excluded_reason = Some(MODEL_NOT_ALLOWED);
        }
    }
    let groups: Vec<&str> = settings
        .comparison_groups
        .iter()
        .filter(|g| g.models.contains(&q.model))
        .map(|g| g.name.as_str())
        .collect();
    Ok(query::answer(&q, at, &groups, &quotes))
}
