//! `GatewayError` -> HTTP response. This is the only place a status code for an
//! error is chosen; every other module says *what* went wrong with an [`ErrorCode`].
//!
//! Bodies use OpenAI's error shape so SDKs raise their usual exceptions, and every
//! message says what to do next. Messages never contain secrets, prompt text or raw
//! upstream bodies.

use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The stable error codes of the contract (DESIGN.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorCode {
    InvalidApiKey,
    InvalidRequest,
    ModelNotFound,
    RequestTooLarge,
    ResidencyViolation,
    RateLimited,
    BudgetExceeded,
    UpstreamError,
    NoUpstreamAvailable,
    UpstreamTimeout,
    Internal,
    /// The request body did not arrive within `server.body_read_timeout`.
    RequestTimeout,
    /// A Host the listener does not serve (the admin listener without a key).
    MisdirectedRequest,
    /// tollgate is shutting down and ended the request at the deadline.
    ShuttingDown,
}

impl ErrorCode {
    /// The `code` string clients match on; also the closed set used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidApiKey => "invalid_api_key",
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::ModelNotFound => "model_not_found",
            ErrorCode::RequestTooLarge => "request_too_large",
            ErrorCode::ResidencyViolation => "residency_violation",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::BudgetExceeded => "budget_exceeded",
            ErrorCode::UpstreamError => "upstream_error",
            ErrorCode::NoUpstreamAvailable => "no_upstream_available",
            ErrorCode::UpstreamTimeout => "upstream_timeout",
            ErrorCode::Internal => "internal_error",
            ErrorCode::RequestTimeout => "request_timeout",
            ErrorCode::MisdirectedRequest => "misdirected_request",
            ErrorCode::ShuttingDown => "shutting_down",
        }
    }

    /// The HTTP status of this code.
    pub fn status(self) -> StatusCode {
        match self {
            ErrorCode::InvalidApiKey => StatusCode::UNAUTHORIZED,
            ErrorCode::InvalidRequest => StatusCode::BAD_REQUEST,
            ErrorCode::ModelNotFound => StatusCode::NOT_FOUND,
            ErrorCode::RequestTooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            ErrorCode::ResidencyViolation => StatusCode::FORBIDDEN,
            ErrorCode::RateLimited | ErrorCode::BudgetExceeded => StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::UpstreamError => StatusCode::BAD_GATEWAY,
            ErrorCode::NoUpstreamAvailable => StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            ErrorCode::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::RequestTimeout => StatusCode::REQUEST_TIMEOUT,
            ErrorCode::MisdirectedRequest => StatusCode::MISDIRECTED_REQUEST,
            ErrorCode::ShuttingDown => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// OpenAI's `type` field: SDKs key some behaviour on it.
    fn error_type(self) -> &'static str {
        match self {
            ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::InvalidRequest
            | ErrorCode::ModelNotFound
            | ErrorCode::RequestTooLarge
            | ErrorCode::RequestTimeout
            | ErrorCode::MisdirectedRequest => "invalid_request_error",
            ErrorCode::ResidencyViolation => "permission_error",
            ErrorCode::RateLimited | ErrorCode::BudgetExceeded => "rate_limit_error",
            ErrorCode::UpstreamError
            | ErrorCode::NoUpstreamAvailable
            | ErrorCode::UpstreamTimeout => "upstream_error",
            ErrorCode::Internal | ErrorCode::ShuttingDown => "server_error",
        }
    }
}

/// An error answered to the app.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct GatewayError {
    pub code: ErrorCode,
    /// What was wrong and what to do; no secrets, no prompt text.
    pub message: String,
    /// The request field at fault, when there is one.
    pub param: Option<std::borrow::Cow<'static, str>>,
    /// Seconds for the `retry-after` header on 429s.
    pub retry_after_secs: Option<u64>,
}

impl GatewayError {
    /// An error with a code and message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            param: None,
            retry_after_secs: None,
        }
    }

    /// Name the request field at fault.
    pub fn with_param(mut self, param: impl Into<std::borrow::Cow<'static, str>>) -> Self {
        self.param = Some(param.into());
        self
    }

    /// Tell the client when to retry.
    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after_secs = Some(secs);
        self
    }

    /// The OpenAI-shaped JSON body, with the request id appended to the message so a
    /// support ticket can quote it.
    pub fn body(&self, request_id: &str) -> serde_json::Value {
        json!({
            "error": {
                "message": format!("{} (request id {request_id})", self.message),
                "type": self.code.error_type(),
                "param": self.param,
                "code": self.code.as_str(),
            }
        })
    }

    /// Anthropic's error `type` for this code (the `/v1/messages` surface).
    pub fn anthropic_type(&self) -> &'static str {
        match self.code {
            ErrorCode::InvalidApiKey => "authentication_error",
            ErrorCode::ModelNotFound => "not_found_error",
            ErrorCode::InvalidRequest
            | ErrorCode::RequestTooLarge
            | ErrorCode::RequestTimeout
            | ErrorCode::MisdirectedRequest => "invalid_request_error",
            ErrorCode::ResidencyViolation => "permission_error",
            ErrorCode::RateLimited | ErrorCode::BudgetExceeded => "rate_limit_error",
            ErrorCode::UpstreamTimeout => "timeout_error",
            ErrorCode::ShuttingDown | ErrorCode::NoUpstreamAvailable => "overloaded_error",
            ErrorCode::UpstreamError | ErrorCode::Internal => "api_error",
        }
    }

    /// The body in Anthropic's shape, with tollgate's own `code` and `param` beside the
    /// documented fields (Anthropic's SDKs read `type` and `message`).
    pub fn anthropic_body(&self, request_id: &str) -> serde_json::Value {
        json!({
            "type": "error",
            "error": {
                "type": self.anthropic_type(),
                "message": format!("{} (request id {request_id})", self.message),
                "code": self.code.as_str(),
                "param": self.param,
            },
            "request_id": request_id,
        })
    }

    /// The full response: status, body, `retry-after` and the request id header.
    pub fn into_response_with_id(self, request_id: &str) -> Response {
        let body = self.body(request_id);
        self.respond(body, request_id)
    }

    /// [`Self::into_response_with_id`] with the body in Anthropic's shape.
    pub fn into_anthropic_response(self, request_id: &str) -> Response {
        let body = self.anthropic_body(request_id);
        self.respond(body, request_id)
    }

    fn respond(self, body: serde_json::Value, request_id: &str) -> Response {
        let mut resp = (self.code.status(), axum::Json(body)).into_response();
        let headers = resp.headers_mut();
        if let Some(secs) = self.retry_after_secs {
            headers.insert("retry-after", HeaderValue::from(secs));
        }
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert("x-tollgate-request-id", v);
        }
        resp
    }
}

/// A part of a request that one dialect cannot express in another (a translation's
/// refusal): the field, as a path into the client's body, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unsupported {
    /// E.g. `logprobs` or `messages[2].content[0].type`.
    pub param: String,
    pub why: String,
}

impl Unsupported {
    pub fn new(param: impl Into<String>, why: impl Into<String>) -> Self {
        Self {
            param: param.into(),
            why: why.into(),
        }
    }

    /// An offer whose provider kind the running gateway has no adapter for (settings
    /// validated against another `providers::Registry`; the gateway refuses to start
    /// with such settings, so this guards a wiring mistake).
    pub fn unregistered() -> Self {
        Self::new(
            "model",
            "this offer's provider kind is not registered in this gateway",
        )
    }

    /// The client's error when no allowed offer of `model` can serve the request.
    pub fn for_model(self, model: &str) -> GatewayError {
        GatewayError::new(
            ErrorCode::InvalidRequest,
            format!(
                "`{}` cannot be served by any offer this key may use for model {model:?}: {}",
                self.param, self.why
            ),
        )
        .with_param(self.param)
    }
}
