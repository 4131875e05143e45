//! Pieces of the OpenAI Chat Completions dialect that every adapter shares:
//! rewriting the client's body for an upstream, reading `usage`, reading errors.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{Target, UpstreamRequest};
use crate::api::openai::ChatRequest;
use crate::metering::plausible::wire_count;
use crate::metering::Usage;

/// The upstream body being built: the client's fields (edited through `Deref` as a
/// map) and its `messages`, kept as the client's JSON text and written as they are
/// (`ChatRequest` already removed earlier turns' `reasoning_content`), so a long
/// prompt is never copied into a `Value` tree.
pub struct ChatBody<'a> {
    fields: Map<String, Value>,
    messages: &'a serde_json::value::RawValue,
}

impl std::ops::Deref for ChatBody<'_> {
    type Target = Map<String, Value>;

    fn deref(&self) -> &Self::Target {
        &self.fields
    }
}

impl std::ops::DerefMut for ChatBody<'_> {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.fields
    }
}

impl ChatBody<'_> {
    /// The JSON body: the fields, then `messages`.
    fn to_bytes(&self) -> Vec<u8> {
        let messages = self.messages.get();
        let mut out = Vec::with_capacity(messages.len() + 256);
        out.push(b'{');
        for (key, value) in &self.fields {
            // Writing a string or a `Value` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut out, key);
            out.push(b':');
            let _ = serde_json::to_writer(&mut out, value);
            out.push(b',');
        }
        out.extend_from_slice(b"\"messages\":");
        out.extend_from_slice(messages.as_bytes());
        out.push(b'}');
        out
    }
}

/// The client's body for `target`: the upstream model name, and usage always
/// requested on streams (the meter needs it; the client's own wish is honoured when
/// relaying).
pub fn chat_body<'a>(req: &'a ChatRequest, target: Target<'_>) -> ChatBody<'a> {
    let mut body = req.body.clone();
    body.insert(
        "model".into(),
        Value::String(target.upstream_model.to_owned()),
    );
    if req.is_streaming {
        let opts = body
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        if let Value::Object(o) = opts {
            o.insert("include_usage".into(), Value::Bool(true));
        } else {
            *opts = serde_json::json!({ "include_usage": true });
        }
    }
    ChatBody {
        fields: body,
        messages: req.messages_json(),
    }
}

/// o-series reasoning models refuse `max_tokens`; they take `max_completion_tokens`,
/// which bounds visible plus reasoning tokens.
pub fn rename_max_tokens_for_reasoning_models(body: &mut Map<String, Value>, upstream_model: &str) {
    let bare = upstream_model.rsplit('/').next().unwrap_or(upstream_model);
    let is_o_series = bare.len() > 1
        && bare.starts_with('o')
        && bare[1..].starts_with(|c: char| c.is_ascii_digit());
    if !is_o_series {
        return;
    }
    if let Some(v) = body.remove("max_tokens") {
        body.entry("max_completion_tokens").or_insert(v);
    }
}

/// Assemble the request with JSON content type and the given auth header.
pub fn json_request(
    url: String,
    auth: Option<(&'static str, String)>,
    body: &ChatBody<'_>,
) -> UpstreamRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some((name, value)) = auth {
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    let bytes = body.to_bytes();
    UpstreamRequest {
        url,
        headers,
        body: Bytes::from(bytes),
    }
}

/// `Authorization: Bearer <secret>` for `target`, when it has a secret.
pub fn bearer(target: Target<'_>) -> Option<(&'static str, String)> {
    target
        .provider
        .api_key
        .as_ref()
        .map(|k| ("authorization", format!("Bearer {}", k.expose())))
}

/// Azure's `api-key: <secret>`.
pub fn api_key_header(target: Target<'_>) -> Option<(&'static str, String)> {
    target
        .provider
        .api_key
        .as_ref()
        .map(|k| ("api-key", k.expose().to_owned()))
}

/// The OpenAI `usage` object (also Azure, GitHub Models, DeepSeek's superset). A
/// field that is not a count, or a `total_tokens` other than prompt plus completion,
/// marks the report `malformed` (it is then not billed as reported).
pub fn openai_usage(usage: &Value) -> Usage {
    let mut malformed = false;
    let mut n = |v: Option<&Value>| {
        wire_count(v).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let mut u = Usage {
        input: n(usage.get("prompt_tokens")),
        cached_input: n(usage.pointer("/prompt_tokens_details/cached_tokens")),
        cache_write: n(usage.pointer("/prompt_tokens_details/cache_write_tokens")),
        output: n(usage.get("completion_tokens")),
        reasoning: n(usage.pointer("/completion_tokens_details/reasoning_tokens")),
        malformed: false,
    };
    let total = n(usage.get("total_tokens"));
    if let (Some(total), Some(input), Some(output)) = (total, u.input, u.output) {
        malformed |= input.checked_add(output) != Some(total);
    }
    u.malformed = malformed;
    u
}

/// A failed upstream answer, classified for failover and for the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamFailure {
    pub status: u16,
    /// Seconds, from `retry-after`, `retry-after-ms` or the provider's message.
    pub retry_after_secs: Option<u64>,
    /// The provider's own message, trimmed; never contains our secrets.
    pub message: Option<String>,
}

impl UpstreamFailure {
    /// Read an error answer from any OpenAI-dialect provider.
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let message = json
            .as_ref()
            .and_then(|j| j.pointer("/error/message").or_else(|| j.get("message")))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(400).collect::<String>());
        Self {
            status,
            retry_after_secs: retry_after(headers, chrono::Utc::now())
                .or_else(|| message.as_deref().and_then(wait_seconds_in_message)),
            message,
        }
    }

    /// Whether another offer may succeed where this one failed: rate limits,
    /// server-side failures and the provider refusing tollgate's own account (bad or
    /// unfunded credentials are the operator's problem, not the client's); never the
    /// client's own mistakes.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 401 | 402 | 403 | 408 | 429) || self.status >= 500
    }
}

/// `retry-after` as delay-seconds or an HTTP-date (RFC 9110 §10.2.3), else
/// `retry-after-ms`. Absurd values saturate at `u64::MAX`; the caller clamps them.
fn retry_after(headers: &HeaderMap, now: chrono::DateTime<chrono::Utc>) -> Option<u64> {
    let get = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(value) = get("retry-after") {
        if let Ok(secs) = value.parse::<f64>() {
            // `as` saturates (and maps NaN to 0), which is what an absurd value needs.
            return Some(secs.max(0.0).ceil() as u64);
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(value) {
            let secs = (at.with_timezone(&chrono::Utc) - now).num_seconds();
            return Some(u64::try_from(secs).unwrap_or(0));
        }
    }
    get("retry-after-ms")
        .and_then(|v| v.parse::<u64>().ok())
        .map(|ms| ms.div_ceil(1000))
}

/// GitHub Models and Azure say "Please wait 5631 seconds" / "retry after 37 seconds".
fn wait_seconds_in_message(message: &str) -> Option<u64> {
    let lower = message.to_ascii_lowercase();
    let idx = lower
        .find("wait ")
        .map(|i| i + 5)
        .or_else(|| lower.find("retry after ").map(|i| i + 12))?;
    let digits: String = lower
        .get(idx..)?
        .chars()
        .take_while(char::is_ascii_digit)
        .collect();
    digits.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn o_series_max_tokens_becomes_max_completion_tokens() {
        let mut b: Map<String, Value> = serde_json::from_str(r#"{"max_tokens":100}"#).unwrap();
        rename_max_tokens_for_reasoning_models(&mut b, "o1");
        assert_eq!(b.get("max_completion_tokens"), Some(&Value::from(100)));
        assert!(!b.contains_key("max_tokens"));
        let mut b: Map<String, Value> = serde_json::from_str(r#"{"max_tokens":100}"#).unwrap();
        rename_max_tokens_for_reasoning_models(&mut b, "gpt-4o");
        assert!(b.contains_key("max_tokens"));
        let mut b: Map<String, Value> = serde_json::from_str(r#"{"max_tokens":7}"#).unwrap();
        rename_max_tokens_for_reasoning_models(&mut b, "openai/o3-mini");
        assert_eq!(b.get("max_completion_tokens"), Some(&Value::from(7)));
    }

    #[test]
    fn retry_after_is_read_from_header_or_message() {
        let mut h = HeaderMap::new();
        h.insert("retry-after", HeaderValue::from_static("7"));
        assert_eq!(
            UpstreamFailure::from_response(429, &h, b"{}").retry_after_secs,
            Some(7)
        );
        let body = br#"{"error":{"code":"RateLimitReached","message":"Rate limit of 50 per 86400s exceeded for UserByModelByDay. Please wait 5631 seconds before retrying."}}"#;
        let f = UpstreamFailure::from_response(429, &HeaderMap::new(), body);
        assert_eq!(f.retry_after_secs, Some(5631));
        assert!(f.is_retryable());
        assert!(!UpstreamFailure::from_response(400, &HeaderMap::new(), b"{}").is_retryable());
    }

    #[test]
    fn retry_after_reads_http_dates_and_saturates_absurd_values() {
        let now = chrono::DateTime::parse_from_rfc3339("2015-10-21T07:27:00Z")
            .unwrap()
            .with_timezone(&chrono::Utc);
        let mut h = HeaderMap::new();
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:28:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(60));
        h.insert(
            "retry-after",
            HeaderValue::from_static("Wed, 21 Oct 2015 07:00:00 GMT"),
        );
        assert_eq!(retry_after(&h, now), Some(0), "a date in the past: no wait");
        h.insert(
            "retry-after",
            HeaderValue::from_static("18446744073709551615"),
        );
        assert_eq!(retry_after(&h, now), Some(u64::MAX));
        h.insert("retry-after", HeaderValue::from_static("-5"));
        assert_eq!(retry_after(&h, now), Some(0));
    }
}
