//! The error answers of AWS (Bedrock) and Google (Gemini API, Vertex AI), read into the
//! HTTP status tollgate's failover and client errors go by (`UpstreamFailure`). Both
//! clouds name the error besides the status, and the name is what says whose fault it
//! is:
//! - AWS sends the error's type in `x-amzn-ErrorType` (possibly followed by `:` and a
//!   namespace) and the text in the JSON body's `message` (Bedrock Runtime's API
//!   reference, "Errors" of Converse and ConverseStream);
//! - Google sends `{"error": {"code", "message", "status", "details"}}`, `status` one of
//!   the canonical `google.rpc.Code` names, and a `RetryInfo` detail with a
//!   `retryDelay` when it asks for one (cloud.google.com/apis/design/errors).
//!
//! Statuses that already say the right thing are kept; the ones that would mislead are
//! normalised: Bedrock's `ServiceQuotaExceededException` (400) is a quota, not a bad
//! request; its `ModelErrorException` (424) and `ModelNotReadyException` (429) are
//! the model's failures; Google's invalid API key is a 400 `INVALID_ARGUMENT` with
//! the reason `API_KEY_INVALID`, which is tollgate's credentials, not the client's
//! request.

use axum::http::HeaderMap;
use serde_json::Value;

/// The status an AWS error type stands for, when it differs from or refines the HTTP
/// status it came with; `None` when the header is absent or the type is not one to
/// normalise.
pub fn aws_status(headers: &HeaderMap) -> Option<u16> {
    let raw = headers.get("x-amzn-errortype")?.to_str().ok()?;
    let kind = raw.split(':').next().unwrap_or(raw).trim();
    Some(match kind {
        "ThrottlingException" | "ServiceQuotaExceededException" | "TooManyRequestsException" => 429,
        "ServiceUnavailableException" | "ModelNotReadyException" => 503,
        "ModelErrorException" => 502,
        "InternalServerException" => 500,
        "ModelTimeoutException" => 408,
        // Credentials and signatures: the operator's, not the client's.
        "AccessDeniedException"
        | "UnrecognizedClientException"
        | "InvalidSignatureException"
        | "IncompleteSignatureException"
        | "MissingAuthenticationTokenException"
        | "ExpiredTokenException" => 403,
        "ValidationException" => 400,
        "ResourceNotFoundException" => 404,
        _ => return None,
    })
}

/// Google's canonical error names and the statuses tollgate treats them as.
const GOOGLE_CODES: [(&str, u16); 9] = [
    ("RESOURCE_EXHAUSTED", 429),
    ("UNAVAILABLE", 503),
    ("INTERNAL", 500),
    ("DEADLINE_EXCEEDED", 504),
    ("UNAUTHENTICATED", 401),
    ("PERMISSION_DENIED", 403),
    // Billing not enabled, the API not offered where the account is: the account's.
    ("FAILED_PRECONDITION", 403),
    ("NOT_FOUND", 404),
    ("INVALID_ARGUMENT", 400),
];

/// Reasons (`google.rpc.ErrorInfo`) that make an `INVALID_ARGUMENT` tollgate's own
/// credentials' fault.
const KEY_REASONS: [&str; 2] = ["API_KEY_INVALID", "API_KEY_EXPIRED"];

/// The status a Google error body stands for; `None` when `body` is not one.
pub fn google_status(body: &Value) -> Option<u16> {
    let error = body.get("error")?;
    error.get("code")?.as_u64()?;
    let name = error.get("status")?.as_str()?;
    let (_, status) = GOOGLE_CODES.iter().find(|(n, _)| *n == name)?;
    let key_refused = details(error).any(|d| {
        d.get("reason")
            .and_then(Value::as_str)
            .is_some_and(|r| KEY_REASONS.contains(&r))
    });
    Some(if key_refused { 401 } else { *status })
}

/// Seconds from a Google error's `RetryInfo.retryDelay` (a duration such as `"7s"` or
/// `"0.5s"`), rounded up.
pub fn google_retry_after(body: &Value) -> Option<u64> {
    let delay =
        details(body.get("error")?).find_map(|d| d.get("retryDelay").and_then(Value::as_str))?;
    let secs: f64 = delay.strip_suffix('s')?.parse().ok()?;
    // `as` saturates (and maps NaN to 0), which is what an absurd value needs.
    Some(secs.max(0.0).ceil() as u64)
}

fn details(error: &Value) -> impl Iterator<Item = &Value> {
    error
        .get("details")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;
    use serde_json::json;

    fn aws(kind: &'static str) -> Option<u16> {
        let mut h = HeaderMap::new();
        h.insert("x-amzn-errortype", HeaderValue::from_static(kind));
        aws_status(&h)
    }

    #[test]
    fn aws_error_types_say_whose_fault_it_is() {
        assert_eq!(aws("ThrottlingException"), Some(429));
        assert_eq!(
            aws("ThrottlingException:http://internal.amazon.com/coral/com.amazon.bedrock/"),
            Some(429)
        );
        assert_eq!(aws("ServiceQuotaExceededException"), Some(429));
        assert_eq!(aws("ModelNotReadyException"), Some(503));
        assert_eq!(aws("ModelErrorException"), Some(502));
        assert_eq!(aws("InvalidSignatureException"), Some(403));
        assert_eq!(aws("ValidationException"), Some(400));
        assert_eq!(aws("SomethingNew"), None);
        assert_eq!(aws_status(&HeaderMap::new()), None);
    }

    #[test]
    fn google_errors_and_an_invalid_key_is_a_credentials_failure() {
        let bad_key = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
            "message": "API key not valid. Please pass a valid API key.",
            "details": [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": "API_KEY_INVALID"}]}});
        assert_eq!(google_status(&bad_key), Some(401));
        let bad_request =
            json!({"error": {"code": 400, "status": "INVALID_ARGUMENT", "message": "x"}});
        assert_eq!(google_status(&bad_request), Some(400));
        let quota = json!({"error": {"code": 429, "status": "RESOURCE_EXHAUSTED", "message": "q",
            "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "6.2s"}]}});
        assert_eq!(google_status(&quota), Some(429));
        assert_eq!(google_retry_after(&quota), Some(7));
        // OpenAI's shape is not Google's.
        let openai =
            json!({"error": {"message": "m", "type": "invalid_request_error", "code": null}});
        assert_eq!(google_status(&openai), None);
    }
}
