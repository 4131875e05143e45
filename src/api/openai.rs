//! The inbound Chat Completions request, as much of it as tollgate must understand.
//!
//! The body is kept as the client's JSON object so that fields tollgate does not know
//! pass through untouched; only `model`, `messages`, `stream` and `stream_options` are
//! read. Translating it for a given upstream is the provider adapters' job.

use serde_json::{Map, Value};

use super::error::{ErrorCode, GatewayError};

/// A parsed `POST /v1/chat/completions` body.
#[derive(Debug, Clone)]
pub struct ChatRequest {
    /// The client's body, unknown fields included.
    pub body: Map<String, Value>,
    /// The logical model asked for.
    pub model: String,
    /// Whether the client asked for an SSE stream.
    pub is_streaming: bool,
    /// Whether the client itself asked for `stream_options.include_usage`, i.e. wants
    /// the usage-only chunk that tollgate always requests upstream.
    pub wants_usage_chunk: bool,
}

impl ChatRequest {
    /// Parse a body. `path_model` is the deployment of the Azure-style route, which
    /// takes precedence over (and may replace) a `model` field.
    pub fn parse(bytes: &[u8], path_model: Option<&str>) -> Result<Self, GatewayError> {
        let value: Value = serde_json::from_slice(bytes).map_err(|e| {
            GatewayError::new(
                ErrorCode::InvalidRequest,
                format!(
                    "the request body is not valid JSON ({e}); send a Chat Completions JSON object"
                ),
            )
        })?;
        let Value::Object(body) = value else {
            return Err(GatewayError::new(
                ErrorCode::InvalidRequest,
                "the request body must be a JSON object with `model` and `messages`",
            ));
        };
        let model = match (path_model, body.get("model")) {
            (Some(m), _) => m.to_owned(),
            (None, Some(Value::String(m))) if !m.is_empty() => m.clone(),
            (None, Some(_)) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`model` must be a non-empty string",
                )
                .with_param("model"))
            }
            (None, None) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "missing `model`; GET /v1/models lists the models your key may use",
                )
                .with_param("model"))
            }
        };
        match body.get("messages") {
            Some(Value::Array(m)) if !m.is_empty() => {}
            _ => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`messages` must be a non-empty array of chat messages",
                )
                .with_param("messages"))
            }
        }
        let is_streaming = match body.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(_) => {
                return Err(GatewayError::new(
                    ErrorCode::InvalidRequest,
                    "`stream` must be a boolean",
                )
                .with_param("stream"))
            }
        };
        let wants_usage_chunk = body
            .get("stream_options")
            .and_then(|o| o.get("include_usage"))
            .and_then(Value::as_bool)
            .unwrap_or(false);
        Ok(Self {
            body,
            model,
            is_streaming,
            wants_usage_chunk,
        })
    }

    /// The `messages` array (validated non-empty at parse).
    pub fn messages(&self) -> &Value {
        self.body.get("messages").unwrap_or(&Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_unknown_fields_and_reads_stream_options() {
        let r = ChatRequest::parse(
            br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true},"x_custom":{"a":1}}"#,
            None,
        )
        .unwrap();
        assert!(r.is_streaming && r.wants_usage_chunk);
        assert_eq!(r.body["x_custom"]["a"], 1);
    }

    #[test]
    fn path_model_wins_over_body_model() {
        let r = ChatRequest::parse(
            br#"{"messages":[{"role":"user","content":"hi"}]}"#,
            Some("dep"),
        )
        .unwrap();
        assert_eq!(r.model, "dep");
    }

    #[test]
    fn rejects_missing_model_and_bad_json_with_invalid_request() {
        let e = ChatRequest::parse(br#"{"messages":[{"role":"user","content":"hi"}]}"#, None)
            .unwrap_err();
        assert_eq!(
            (e.code, e.param),
            (ErrorCode::InvalidRequest, Some("model"))
        );
        let e = ChatRequest::parse(b"{not json", None).unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidRequest);
    }
}
