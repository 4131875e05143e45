//! The usage API on the admin listener: `GET /admin/usage` (grouped spend, tokens,
//! errors and latency) and `GET /admin/requests` (records, a page at a time), JSON or
//! `format=csv`. The numbers come from `usage` over the ledger store; this file only
//! parses the query string and picks the format.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::admin::ADMIN_REQUEST_ID;
use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::usage::{self, format, Filter, UsageError};

/// `/admin/usage` parameters; unknown ones are refused rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UsageQuery {
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    key: Option<String>,
    model: Option<String>,
    format: Option<String>,
}

/// `/admin/requests` parameters.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestsQuery {
    from: Option<String>,
    to: Option<String>,
    key: Option<String>,
    model: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
    format: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// `GET /admin/usage?from=&to=&group_by=&key=&model=&format=json|csv`.
pub async fn usage(
    State(app): State<Arc<AppState>>,
    query: Result<Query<UsageQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(bad_query)?;
        let format = parse_format(q.format.as_deref())?;
        let filter = Filter::parse(q.from.as_deref(), q.to.as_deref(), (app.clock)())
            .map_err(to_gateway)?
            .with(q.key.as_deref(), q.model.as_deref());
        let group_by = usage::parse_group_by(q.group_by.as_deref()).map_err(to_gateway)?;
        flush_first(&app).await;
        let summary = usage::summary(&app.store, &filter, &group_by)
            .await
            .map_err(to_gateway)?;
        Ok(match format {
            Format::Json => axum::Json(summary).into_response(),
            Format::Csv => csv(format::summary_csv(&summary).map_err(to_gateway)?),
        })
    };
    result
        .await
        .unwrap_or_else(|e: GatewayError| e.into_response_with_id(ADMIN_REQUEST_ID))
}

/// `GET /admin/requests?from=&to=&key=&model=&limit=&cursor=&format=json|csv`. In CSV
/// the next page's cursor is in the `x-tollgate-next-cursor` header.
pub async fn requests(
    State(app): State<Arc<AppState>>,
    query: Result<Query<RequestsQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(bad_query)?;
        let format = parse_format(q.format.as_deref())?;
        let filter = Filter::parse(q.from.as_deref(), q.to.as_deref(), (app.clock)())
            .map_err(to_gateway)?
            .with(q.key.as_deref(), q.model.as_deref());
        let limit = usage::parse_limit(q.limit.as_deref()).map_err(to_gateway)?;
        flush_first(&app).await;
        let page = usage::page(&app.store, &filter, limit, q.cursor.as_deref())
            .await
            .map_err(to_gateway)?;
        Ok(match format {
            Format::Json => axum::Json(page).into_response(),
            Format::Csv => {
                let mut resp = csv(format::records_csv(&page).map_err(to_gateway)?);
                if let Some(v) = page.next_cursor.and_then(|c| c.parse().ok()) {
                    resp.headers_mut().insert("x-tollgate-next-cursor", v);
                }
                resp
            }
        })
    };
    result
        .await
        .unwrap_or_else(|e: GatewayError| e.into_response_with_id(ADMIN_REQUEST_ID))
}

/// Flush the ledger before a read, so the answer includes every request finished
/// before it was asked.
async fn flush_first(app: &AppState) {
    if let Err(e) = app.ledger.flush().await {
        // Still answer with what is stored; the queue's backlog is reported by /metrics.
        tracing::warn!(error = %e, "ledger flush before a usage query failed");
    }
}

fn to_gateway(e: UsageError) -> GatewayError {
    match e {
        UsageError::BadParam { param, message } => {
            GatewayError::new(ErrorCode::InvalidRequest, message).with_param(param)
        }
        other => {
            tracing::error!(error = %other, "usage query failed");
            GatewayError::new(
                ErrorCode::Internal,
                "could not read the ledger; see the server log",
            )
        }
    }
}

fn bad_query(e: QueryRejection) -> GatewayError {
    GatewayError::new(
        ErrorCode::InvalidRequest,
        format!(
            "{}; see the README's usage API section for the accepted parameters",
            e.body_text()
        ),
    )
}

fn parse_format(s: Option<&str>) -> Result<Format, GatewayError> {
    match s.unwrap_or("json") {
        "json" | "" => Ok(Format::Json),
        "csv" => Ok(Format::Csv),
        other => Err(GatewayError::new(
            ErrorCode::InvalidRequest,
            format!("unknown format {other:?}; use json or csv"),
        )
        .with_param("format")),
    }
}

fn csv(body: String) -> Response {
    ([("content-type", "text/csv; charset=utf-8")], body).into_response()
}
