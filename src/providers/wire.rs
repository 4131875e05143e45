//! Pieces of the OpenAI Chat Completions dialect that every adapter shares:
//! rewriting the client's body for an upstream, reading `usage`, reading errors.

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use bytes::Bytes;
use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::{Target, UpstreamRequest};
use crate::api::openai::ChatRequest;
use crate::tokens::wire_count;
use crate::tokens::Usage;

/// The upstream body of one attempt: the client's fields and `messages`, borrowed
/// from the parsed request, plus the attempt's few edits. Nothing is cloned per
/// attempt: the edits are applied while the body is written, so building it costs
/// one pass over the client's fields and one copy of the `messages` text (kept as
/// the client's JSON, with earlier turns' `reasoning_content` already removed by
/// `ChatRequest`), whatever the prompt's length.
pub struct ChatBody<'a> {
    fields: &'a Map<String, Value>,
    messages: &'a RawValue,
    /// Replaces the client's `model` (in place; appended when it had none).
    model: &'a str,
    /// Streams always ask for usage (`stream_options.include_usage = true`): the
    /// meter needs it; the client's own wish is honoured when relaying.
    include_usage: bool,
    /// `max_tokens` is sent as `max_completion_tokens` (o-series models).
    rename_max_tokens: bool,
}

/// The client's body for `target`: the upstream model name, and usage always
/// requested on streams.
pub fn chat_body<'a>(req: &'a ChatRequest, target: Target<'a>) -> ChatBody<'a> {
    body_for_model(req, target.upstream_model)
}

fn body_for_model<'a>(req: &'a ChatRequest, upstream_model: &'a str) -> ChatBody<'a> {
    ChatBody {
        fields: &req.body,
        messages: req.messages_json(),
        model: upstream_model,
        include_usage: req.is_streaming,
        rename_max_tokens: false,
    }
}

impl ChatBody<'_> {
    /// o-series reasoning models refuse `max_tokens`; they take
    /// `max_completion_tokens`, which bounds visible plus reasoning tokens. A client
    /// that sent both keeps its `max_completion_tokens`.
    pub fn rename_max_tokens_for_reasoning_models(&mut self) {
        let bare = self.model.rsplit('/').next().unwrap_or(self.model);
        self.rename_max_tokens = bare.len() > 1
            && bare.starts_with('o')
            && bare[1..].starts_with(|c: char| c.is_ascii_digit());
    }

    /// The JSON body: the client's fields in their order with the edits applied
    /// (added fields after them), then `messages`.
    fn to_bytes(&self) -> Vec<u8> {
        let messages = self.messages.get();
        let mut out = Vec::with_capacity(messages.len() + 256);
        out.push(b'{');
        let mut has_model = false;
        let mut has_stream_options = false;
        for (key, value) in self.fields {
            match key.as_str() {
                "model" => {
                    has_model = true;
                    field(&mut out, key, self.model);
                }
                "stream_options" if self.include_usage => {
                    has_stream_options = true;
                    put_key(&mut out, key);
                    with_include_usage(&mut out, value);
                }
                "max_tokens" if self.rename_max_tokens => {
                    if !self.fields.contains_key("max_completion_tokens") {
                        field(&mut out, "max_completion_tokens", value);
                    }
                }
                _ => field(&mut out, key, value),
            }
        }
        if !has_model {
            field(&mut out, "model", self.model);
        }
        if self.include_usage && !has_stream_options {
            out.extend_from_slice(b"\"stream_options\":{\"include_usage\":true},");
        }
        out.extend_from_slice(b"\"messages\":");
        out.extend_from_slice(messages.as_bytes());
        out.push(b'}');
        out
    }
}

/// `"key":`, escaped as JSON.
fn put_key(out: &mut Vec<u8>, key: &str) {
    // Writing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, key);
    out.push(b':');
}

/// `"key":value,`.
fn field(out: &mut Vec<u8>, key: &str, value: &(impl serde::Serialize + ?Sized)) {
    put_key(out, key);
    // Writing a string or a `Value` into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, value);
    out.push(b',');
}

/// The client's `stream_options` with `include_usage` set to true (in place, or
/// added last); anything other than an object is replaced by `{"include_usage":true}`.
fn with_include_usage(out: &mut Vec<u8>, value: &Value) {
    let Value::Object(options) = value else {
        out.extend_from_slice(b"{\"include_usage\":true},");
        return;
    };
    out.push(b'{');
    let mut seen = false;
    for (i, (key, value)) in options.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        put_key(out, key);
        if key == "include_usage" {
            seen = true;
            out.extend_from_slice(b"true");
        } else {
            // Writing a `Value` into a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *out, value);
        }
    }
    if !seen {
        if !options.is_empty() {
            out.push(b',');
        }
        out.extend_from_slice(b"\"include_usage\":true");
    }
    out.extend_from_slice(b"},");
}

/// Assemble the request with JSON content type and the given auth header.
pub fn json_request(
    url: String,
    auth: Option<(&'static str, String)>,
    body: &ChatBody<'_>,
) -> UpstreamRequest {
    json_request_bytes(url, auth, Bytes::from(body.to_bytes()))
}

/// [`json_request`] with a body already encoded (the embeddings body).
pub fn json_request_bytes(
    url: String,
    auth: Option<(&'static str, String)>,
    body: Bytes,
) -> UpstreamRequest {
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some((name, value)) = auth {
        if let Ok(mut v) = HeaderValue::from_str(&value) {
            v.set_sensitive(true);
            headers.insert(HeaderName::from_static(name), v);
        }
    }
    UpstreamRequest { url, headers, body }
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
    read_usage(
        usage,
        &UsagePaths {
            input: "/prompt_tokens",
            cached: "/prompt_tokens_details/cached_tokens",
            cache_write: "/prompt_tokens_details/cache_write_tokens",
            output: "/completion_tokens",
            reasoning: "/completion_tokens_details/reasoning_tokens",
        },
    )
}

/// The usage object of OpenAI's Responses API (OpenAI's own and Azure OpenAI's):
/// `input_tokens` includes `input_tokens_details.cached_tokens`, `output_tokens`
/// includes `output_tokens_details.reasoning_tokens`, as chat's counts do; only the
/// names differ. Malformed on the same terms as [`openai_usage`].
pub fn responses_api_usage(usage: &Value) -> Usage {
    read_usage(
        usage,
        &UsagePaths {
            input: "/input_tokens",
            cached: "/input_tokens_details/cached_tokens",
            cache_write: "/input_tokens_details/cache_write_tokens",
            output: "/output_tokens",
            reasoning: "/output_tokens_details/reasoning_tokens",
        },
    )
}

/// Where one OpenAI dialect keeps each count (JSON pointers into its usage object).
struct UsagePaths {
    input: &'static str,
    cached: &'static str,
    cache_write: &'static str,
    output: &'static str,
    reasoning: &'static str,
}

/// Read an OpenAI-style usage object: parts inside totals, `total_tokens` checked.
fn read_usage(usage: &Value, paths: &UsagePaths) -> Usage {
    let mut malformed = false;
    let mut n = |path: &str| {
        wire_count(usage.pointer(path)).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let mut u = Usage {
        input: n(paths.input),
        cached_input: n(paths.cached),
        cache_write: n(paths.cache_write),
        cache_write_1h: None,
        output: n(paths.output),
        reasoning: n(paths.reasoning),
        malformed: false,
        // Top-level in the answer, not in `usage`: the caller adds it (`Usage::served_by`).
        service_tier: None,
    };
    let total = n("/total_tokens");
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
    /// Read an error answer from any provider: the OpenAI dialect's, and AWS's and
    /// Google's, whose error names refine the status (`cloud_errors`).
    pub fn from_response(status: u16, headers: &HeaderMap, body: &[u8]) -> Self {
        let json: Option<Value> = serde_json::from_slice(body).ok();
        let google = json.as_ref().and_then(super::cloud_errors::google_status);
        let status = super::cloud_errors::aws_status(headers)
            .or(google)
            .unwrap_or(status);
        let message = json
            .as_ref()
            .and_then(|j| j.pointer("/error/message").or_else(|| j.get("message")))
            .and_then(Value::as_str)
            .map(|m| m.chars().take(400).collect::<String>());
        Self {
            status,
            retry_after_secs: retry_after(headers, chrono::Utc::now())
                .or_else(|| {
                    json.as_ref()
                        .and_then(super::cloud_errors::google_retry_after)
                })
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

    /// The upstream body `req` becomes for `model`, parsed back.
    fn sent(req: &str, model: &str, reasoning: bool) -> (String, Map<String, Value>) {
        let req = ChatRequest::parse(req.as_bytes(), None).unwrap();
        let mut body = body_for_model(&req, model);
        if reasoning {
            body.rename_max_tokens_for_reasoning_models();
        }
        let text = String::from_utf8(body.to_bytes()).unwrap();
        let parsed = serde_json::from_str(&text).unwrap();
        (text, parsed)
    }

    #[test]
    fn o_series_max_tokens_becomes_max_completion_tokens() {
        let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
        let (_, b) = sent(
            &format!(r#"{{"model":"m","max_tokens":100,{msgs}}}"#),
            "o1",
            true,
        );
        assert_eq!(b.get("max_completion_tokens"), Some(&Value::from(100)));
        assert!(!b.contains_key("max_tokens"));
        let (_, b) = sent(
            &format!(r#"{{"model":"m","max_tokens":100,{msgs}}}"#),
            "gpt-4o",
            true,
        );
        assert!(b.contains_key("max_tokens"));
        let (_, b) = sent(
            &format!(r#"{{"model":"m","max_tokens":7,{msgs}}}"#),
            "openai/o3-mini",
            true,
        );
        assert_eq!(b.get("max_completion_tokens"), Some(&Value::from(7)));
        // A client that sent both keeps its own `max_completion_tokens`.
        let both = format!(r#"{{"model":"m","max_tokens":7,"max_completion_tokens":9,{msgs}}}"#);
        let (_, b) = sent(&both, "o1", true);
        assert_eq!(b.get("max_completion_tokens"), Some(&Value::from(9)));
        assert!(!b.contains_key("max_tokens"));
    }

    #[test]
    fn the_body_keeps_the_clients_fields_and_order_and_edits_only_what_it_must() {
        let msgs = r#""messages":[{"role":"user","content":"hi"}]"#;
        let req = format!(
            r#"{{"temperature":1.0000000000000000001,"model":"m","stream":true,"stream_options":{{"x":1,"include_usage":false,"y":[2]}},"z":{{}},{msgs}}}"#
        );
        let (text, _) = sent(&req, "up-model", false);
        assert_eq!(
            text,
            format!(
                r#"{{"temperature":1.0,"model":"up-model","stream":true,"stream_options":{{"x":1,"include_usage":true,"y":[2]}},"z":{{}},{msgs}}}"#
            )
        );
        // Absent `model` and `stream_options` are added after the client's fields;
        // a `stream_options` that is no object is replaced.
        let req = format!(r#"{{"stream":true,"model":"m","stream_options":null,{msgs}}}"#);
        let (_, b) = sent(&req, "up", false);
        assert_eq!(
            b["stream_options"],
            serde_json::json!({"include_usage": true})
        );
        let req = format!(r#"{{"stream":true,"model":"m","stream_options":{{}},{msgs}}}"#);
        let (text, _) = sent(&req, "up", false);
        assert!(
            text.contains(r#""stream_options":{"include_usage":true},"#),
            "{text}"
        );
        let req = format!(r#"{{"stream":true,"model":"m",{msgs}}}"#);
        let (text, _) = sent(&req, "up", false);
        assert_eq!(
            text,
            format!(
                r#"{{"stream":true,"model":"up","stream_options":{{"include_usage":true}},{msgs}}}"#
            )
        );
        // Non-streaming requests get no `stream_options` added.
        let (text, _) = sent(&format!(r#"{{"model":"m",{msgs}}}"#), "up", false);
        assert_eq!(text, format!(r#"{{"model":"up",{msgs}}}"#));
    }

    #[test]
    fn responses_usage_reads_the_responses_names_into_the_neutral_counts() {
        let u = responses_api_usage(&serde_json::json!({
            "input_tokens": 1200, "input_tokens_details": {"cached_tokens": 1024},
            "output_tokens": 300, "output_tokens_details": {"reasoning_tokens": 192},
            "total_tokens": 1500}));
        assert_eq!(
            (u.input, u.cached_input, u.output, u.reasoning, u.malformed),
            (Some(1200), Some(1024), Some(300), Some(192), false)
        );
        let wrong_total = responses_api_usage(&serde_json::json!({
            "input_tokens": 1, "output_tokens": 1, "total_tokens": 3}));
        assert!(wrong_total.malformed);
        // A chat usage object has none of these names: nothing is read from it.
        let chat = responses_api_usage(&serde_json::json!({"prompt_tokens": 5}));
        assert_eq!(chat.input, None);
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
