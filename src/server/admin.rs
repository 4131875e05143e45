//! The operators' listener: health, readiness, Prometheus metrics, and the guard in
//! front of everything that shows data. It is bound to its own address (default
//! 127.0.0.1:9090), never the apps' port.
//!
//! Auth rule: with `admin.api_key` set, `/metrics` and `/admin/*` need
//! `Authorization: Bearer <admin key>`. Without it they are open (so the demo works
//! with no environment), and a warning is logged at start-up. App keys are refused
//! either way: an app key must never read other apps' spend. `/healthz`, `/readyz`
//! and the dashboard's static files (which hold no data) are always open.
//!
//! Without a key the listener must be on loopback (config validation refuses
//! anything else) and answers only requests whose `Host` is `localhost`,
//! `127.0.0.1` or `[::1]` (any port): a web page whose name an attacker re-points at
//! 127.0.0.1 (DNS rebinding) gets `421 misdirected_request`, not the data.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};

/// The request id put in admin error messages (admin calls are not ledger requests).
pub(super) const ADMIN_REQUEST_ID: &str = "admin";

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

/// Middleware on the data-bearing admin routes; see the module docs for the rule.
pub async fn require_admin_key(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if let Err(e) = check_admin_key(&app, request.headers()) {
        return e.into_response_with_id(ADMIN_REQUEST_ID);
    }
    next.run(request).await
}

/// Middleware on the whole admin router: the Host rule of the module docs.
pub async fn require_local_host(
    State(app): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    if app.settings.admin_key.is_none() && !is_local_host(request.headers()) {
        return GatewayError::new(
            ErrorCode::MisdirectedRequest,
            "without admin.api_key the admin listener answers only Host: localhost, 127.0.0.1 or [::1]; set admin.api_key to reach it by another name",
        )
        .into_response_with_id(ADMIN_REQUEST_ID);
    }
    next.run(request).await
}

/// Whether the `Host` header names this machine's loopback, with any port.
fn is_local_host(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get("host").and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or(""),
        None => host.split(':').next().unwrap_or(""),
    };
    name.eq_ignore_ascii_case("localhost") || name == "127.0.0.1" || name == "::1"
}

fn check_admin_key(app: &AppState, headers: &HeaderMap) -> Result<(), GatewayError> {
    if crate::auth::authenticate(&app.settings.keys, headers).is_ok() {
        return Err(GatewayError::new(
            ErrorCode::InvalidApiKey,
            "app keys are not accepted on the admin listener; use the admin key (admin.api_key)",
        ));
    }
    let Some(expected) = &app.settings.admin_key else {
        return Ok(());
    };
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    // Digests have one length, so the comparison's time says nothing about the key's.
    let presented: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    let expected: [u8; 32] = Sha256::digest(expected.expose().as_bytes()).into();
    if bool::from(presented.ct_eq(&expected)) {
        Ok(())
    } else {
        Err(GatewayError::new(
            ErrorCode::InvalidApiKey,
            "the admin endpoints need `Authorization: Bearer <admin key>` (the secret admin.api_key names)",
        ))
    }
}

/// Log, once per admin router, that the admin listener has no key.
pub(super) fn warn_if_open(app: &AppState) {
    if app.settings.admin_key.is_none() {
        tracing::warn!(
            admin_listen = %app.settings.admin_listen,
            "admin.api_key is not set: /metrics, /admin/* and the dashboard data are served without authentication; keep admin.listen on loopback or set admin.api_key = \"env:NAME\""
        );
    }
}

/// Prometheus text exposition.
pub async fn metrics(State(app): State<Arc<AppState>>) -> Response {
    crate::telemetry::metrics::set_ledger_gauges(
        app.ledger.queue_depth(),
        app.ledger.dropped_total(),
    );
    match &app.metrics {
        Some(handle) => (
            [("content-type", "text/plain; version=0.0.4; charset=utf-8")],
            crate::telemetry::metrics::render(handle),
        )
            .into_response(),
        None => (
            StatusCode::SERVICE_UNAVAILABLE,
            "metrics recorder not installed",
        )
            .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", value.parse().unwrap());
        h
    }

    #[test]
    fn only_loopback_names_pass_the_host_rule() {
        for ok in [
            "localhost",
            "LOCALHOST:9090",
            "127.0.0.1",
            "127.0.0.1:9090",
            "[::1]",
            "[::1]:9090",
        ] {
            assert!(is_local_host(&host(ok)), "{ok}");
        }
        for bad in [
            "attacker.example",
            "attacker.example:9090",
            "localhost.attacker.example",
            "127.0.0.1.nip.io",
            "[::2]:9090",
            "10.0.0.1:9090",
        ] {
            assert!(!is_local_host(&host(bad)), "{bad}");
        }
        assert!(!is_local_host(&HeaderMap::new()));
    }
}
