//! `GET /admin/export?from=&to=&key=&model=` on the admin listener: every matching record
//! as a CSV download, streamed a page at a time (`usage::export`), newest first, with
//! the columns of `/admin/requests?format=csv`. The parameters and their errors are those
//! of `/admin/requests` (without paging). The first page is read before the answer
//! starts, so a ledger that cannot be read gets the usual JSON error; a failure after the
//! header has gone ends the body early, which the client sees as a truncated transfer.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde::Deserialize;

use super::admin::ADMIN_REQUEST_ID;
use super::AppState;
use crate::api::error::{ErrorCode, GatewayError};
use crate::usage::{export, Filter, UsageError};

/// `/admin/export` parameters; unknown ones are refused rather than silently ignored.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    from: Option<String>,
    to: Option<String>,
    key: Option<String>,
    model: Option<String>,
}

/// `GET /admin/export`: see the module docs.
pub async fn export(
    State(app): State<Arc<AppState>>,
    query: Result<Query<ExportQuery>, QueryRejection>,
) -> Response {
    let result = async {
        let Query(q) = query.map_err(|e| {
            GatewayError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "{}; accepted parameters: from, to, key, model",
                    e.body_text()
                ),
            )
        })?;
        let filter = Filter::parse(q.from.as_deref(), q.to.as_deref(), (app.clock)())
            .map_err(to_gateway)?
            .with(q.key.as_deref(), q.model.as_deref());
        // Everything finished before the export was asked for is in it.
        if let Err(e) = app.ledger.flush().await {
            tracing::warn!(error = %e, "ledger flush before an export failed");
        }
        let mut pages = Box::pin(export::csv_pages(app.store.clone(), filter.to_scan()));
        let first = match pages.next().await {
            Some(chunk) => chunk.map_err(to_gateway)?,
            None => bytes::Bytes::new(),
        };
        let rest = pages.map(|chunk| {
            chunk.inspect_err(
                |e| tracing::error!(error = %e, "export ended early: the ledger could not be read"),
            )
        });
        let body = Body::from_stream(futures_util::stream::once(async { Ok(first) }).chain(rest));
        let name = format!(
            "attachment; filename=\"tollgate-requests-{}-{}.csv\"",
            filter.from.format("%Y%m%dT%H%M%SZ"),
            filter.to.format("%Y%m%dT%H%M%SZ")
        );
        Ok((
            [
                ("content-type", "text/csv; charset=utf-8".to_owned()),
                ("content-disposition", name),
            ],
            body,
        )
            .into_response())
    };
    result
        .await
        .unwrap_or_else(|e: GatewayError| e.into_response_with_id(ADMIN_REQUEST_ID))
}

fn to_gateway(e: UsageError) -> GatewayError {
    match e {
        UsageError::BadParam { param, message } => {
            GatewayError::new(ErrorCode::InvalidRequest, message).with_param(param)
        }
        other => {
            tracing::error!(error = %other, "export failed");
            GatewayError::new(
                ErrorCode::Internal,
                "could not read the ledger; see the server log",
            )
        }
    }
}
