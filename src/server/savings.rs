//! `GET /admin/savings?from=&to=` on the operators' listener: per comparison group and
//! model, spend, potential saving within policy and residency premium, and per provider
//! the drift between reported and counted tokens, over `[from, to)` (RFC 3339 instants
//! or dates, read by `crate::instant`: `to=D` includes day D; default: everything),
//! from the ledger's rollups. The admin-key guard wraps
//! the admin router.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::instant::{self, Bound};
use crate::ledger::filter::Filter;
use crate::pricing::savings;
use crate::usage::params::rfc3339;

/// `GET /admin/savings`.
pub async fn savings(
    State(app): State<Arc<AppState>>,
    Query(params): Query<BTreeMap<String, String>>,
) -> Response {
    let filter = match filter(&params) {
        Ok(f) => f,
        Err(e) => return e.into_response_with_id("-"),
    };
    // Records written so far must be visible to the report.
    let _ = app.ledger.flush().await;
    match app.store.usage(&savings::query(&filter)).await {
        Ok(rows) => {
            let mut body = savings::report(&rows, &app.settings.comparison_groups);
            // Echoed like `/admin/usage` echoes its window.
            body["from"] = filter.from.map(rfc3339).into();
            body["to"] = filter.to.map(rfc3339).into();
            Json(body).into_response()
        }
        Err(e) => internal(&e.to_string()),
    }
}

fn internal(error: &str) -> Response {
    tracing::error!(error, "savings report failed");
    GatewayError::new(
        ErrorCode::Internal,
        "the ledger could not be read; retry shortly",
    )
    .into_response_with_id("-")
}

fn filter(params: &BTreeMap<String, String>) -> Result<Filter, GatewayError> {
    if let Some(k) = params
        .keys()
        .find(|k| !["from", "to"].contains(&k.as_str()))
    {
        return Err(GatewayError::new(
            ErrorCode::InvalidRequest,
            format!("unknown parameter {k:?}; expected from, to"),
        ));
    }
    let time = |name: &'static str, bound: Bound| {
        params
            .get(name)
            .map(|v| {
                instant::parse(v, bound).ok_or_else(|| {
                    GatewayError::new(
                        ErrorCode::InvalidRequest,
                        format!("{name}={v:?} is not a time; use {}", instant::EXPECTED),
                    )
                    .with_param(name)
                })
            })
            .transpose()
    };
    Ok(Filter {
        from: time("from", Bound::Start)?,
        to: time("to", Bound::End)?,
        key_name: None,
        logical_model: None,
    })
}
