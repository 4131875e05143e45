//! The operators' listener: health, readiness and Prometheus metrics. It is bound to
//! its own address (default 127.0.0.1:9090), never the apps' port, and `/metrics`
//! requires the admin key when one is configured.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};

/// Liveness: the process answers.
pub async fn healthz() -> &'static str {
    "ok"
}

/// Readiness: the ledger queue is accepting records.
pub async fn readyz(State(app): State<Arc<AppState>>) -> Response {
    match app.ledger.flush().await {
        Ok(()) => "ready".into_response(),
        Err(_) => (StatusCode::SERVICE_UNAVAILABLE, "ledger unavailable").into_response(),
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(app): State<Arc<AppState>>, headers: HeaderMap) -> Response {
    if let Some(expected) = &app.settings.admin_key {
        let presented = headers
            .get("authorization")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or("");
        if !bool::from(presented.as_bytes().ct_eq(expected.expose().as_bytes())) {
            return GatewayError::new(
                ErrorCode::InvalidApiKey,
                "the admin endpoints need `Authorization: Bearer <admin key>`",
            )
            .into_response_with_id("-");
        }
    }
    crate::telemetry::metrics::set_ledger_gauges(
        app.ledger.queue_depth(),
        app.ledger.dropped_total(),
    );
    match &app.metrics {
        Some(handle) => handle.render().into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response(),
    }
}
