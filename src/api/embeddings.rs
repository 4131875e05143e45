//! The inbound Embeddings request (`POST /v1/embeddings`, OpenAI's shape), as much of
//! it as tollgate must understand.
//!
//! The body is kept whole as the client's JSON so that fields tollgate does not know
//! (`user`, a provider's `input_type`, ...) pass through untouched, and
//! `encoding_format` and `dimensions` reach the upstream as sent. Only `model`,
//! `input`, `stream`, `encoding_format` and `dimensions` are read and checked.
//! Building the upstream request is the provider adapters' job.

use serde_json::{Map, Value};

use super::error::{ErrorCode, GatewayError};
use crate::tokens::estimate::{count_text, TokenizerKind};

/// Tokens a provider may add to each input beyond its text (BERT-style embedding
/// models served by OpenAI-compatible hosts add `[CLS]`/`[SEP]`; OpenAI adds none).
const SPECIAL_TOKENS_PER_INPUT: u64 = 4;

/// A parsed `POST /v1/embeddings` body.
#[derive(Debug, Clone)]
pub struct EmbeddingsRequest {
    /// The client's body, every field (unknown ones and `input` included).
    pub body: Map<String, Value>,
    /// The logical model asked for.
    pub model: String,
    /// How many inputs are embedded (a string is one).
    pub inputs: usize,
    /// The most tokens the input can hold, whatever the tokenizer: a byte-level BPE
    /// token covers at least one byte of text, a token array is its own length, plus
    /// [`SPECIAL_TOKENS_PER_INPUT`] per input. A reported count above it is implausible.
    pub max_input_tokens: u64,
}

impl EmbeddingsRequest {
    /// Parse a body. `path_model` is the deployment of the Azure-style route, which
    /// takes precedence over (and may replace) a `model` field.
    pub fn parse(bytes: &[u8], path_model: Option<&str>) -> Result<Self, GatewayError> {
        let body: Map<String, Value> = serde_json::from_slice(bytes).map_err(|e| {
            let message = if e.classify() == serde_json::error::Category::Data {
                "the request body must be a JSON object with `model` and `input`".to_owned()
            } else {
                format!("the request body is not valid JSON ({e}); send an Embeddings JSON object")
            };
            GatewayError::new(ErrorCode::InvalidRequest, message)
        })?;
        let model = model(&body, path_model)?;
        match body.get("stream") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {}
            Some(_) => {
                return Err(invalid(
                    "embeddings are not streamed: remove `stream` (the answer is one JSON object)",
                    "stream",
                ))
            }
        }
        match body.get("encoding_format") {
            None | Some(Value::Null) => {}
            Some(Value::String(f)) if f == "float" || f == "base64" => {}
            Some(_) => {
                return Err(invalid(
                    "`encoding_format` must be \"float\" or \"base64\"",
                    "encoding_format",
                ))
            }
        }
        match body.get("dimensions") {
            None | Some(Value::Null) => {}
            Some(d) if d.as_u64().is_some_and(|n| n > 0) => {}
            Some(_) => {
                return Err(invalid(
                    "`dimensions` must be a positive integer",
                    "dimensions",
                ))
            }
        }
        let (inputs, max_input_tokens) = measure(body.get("input"))?;
        Ok(Self {
            body,
            model,
            inputs,
            max_input_tokens,
        })
    }

    /// The `input` value (validated at parse).
    pub fn input(&self) -> &Value {
        self.body.get("input").unwrap_or(&Value::Null)
    }

    /// The constant-time estimate decisions use before the answer (budgets, quotas,
    /// `cheapest` routing), by the same rule as chat's: a quarter of the text's bytes;
    /// a token array is its own length.
    pub fn estimate(&self) -> u64 {
        each_input(self.input())
            .map(|i| match i {
                Input::Text(t) => u64::try_from(t.len()).unwrap_or(u64::MAX).div_ceil(4),
                Input::Tokens(n) => n,
            })
            .fold(0u64, u64::saturating_add)
    }

    /// The input's tokens by `kind`'s tokenizer (a token array counts its length): the
    /// bill when the provider reports no usage, or an implausible one.
    pub fn count_input(&self, kind: TokenizerKind) -> u64 {
        each_input(self.input())
            .map(|i| match i {
                Input::Text(t) => count_text(kind, t),
                Input::Tokens(n) => n,
            })
            .fold(0u64, u64::saturating_add)
    }
}

fn invalid(message: &str, param: &'static str) -> GatewayError {
    GatewayError::new(ErrorCode::InvalidRequest, message).with_param(param)
}

fn model(body: &Map<String, Value>, path_model: Option<&str>) -> Result<String, GatewayError> {
    match (path_model, body.get("model")) {
        (Some(m), _) => Ok(m.to_owned()),
        (None, Some(Value::String(m))) if !m.is_empty() => Ok(m.clone()),
        (None, Some(_)) => Err(invalid("`model` must be a non-empty string", "model")),
        (None, None) => Err(invalid(
            "missing `model`; GET /v1/models lists the models your key may use",
            "model",
        )),
    }
}

/// One input to embed.
enum Input<'a> {
    Text(&'a str),
    /// A token array, by its length.
    Tokens(u64),
}

/// The inputs of a validated `input`: a string, an array of strings, an array of
/// token ids (one input), or an array of token arrays.
fn each_input(input: &Value) -> impl Iterator<Item = Input<'_>> {
    let len = |a: &Vec<Value>| u64::try_from(a.len()).unwrap_or(u64::MAX);
    let (one, many): (Option<Input<'_>>, &[Value]) = match input {
        Value::String(s) => (Some(Input::Text(s)), &[]),
        Value::Array(items) if items.first().is_some_and(Value::is_number) => {
            (Some(Input::Tokens(len(items))), &[])
        }
        Value::Array(items) => (None, items.as_slice()),
        _ => (None, &[]),
    };
    one.into_iter()
        .chain(many.iter().filter_map(move |v| match v {
            Value::String(s) => Some(Input::Text(s)),
            Value::Array(tokens) => Some(Input::Tokens(len(tokens))),
            _ => None,
        }))
}

/// Check `input` and return (inputs, the most tokens they can hold).
fn measure(input: Option<&Value>) -> Result<(usize, u64), GatewayError> {
    let wrong = || {
        invalid(
            "`input` must be a non-empty string, a non-empty array of non-empty strings, an array of token ids, or an array of non-empty token-id arrays",
            "input",
        )
    };
    let token_ids = |a: &Vec<Value>| !a.is_empty() && a.iter().all(|t| t.as_u64().is_some());
    let input = input.ok_or_else(wrong)?;
    let ok = match input {
        Value::String(s) => !s.is_empty(),
        Value::Array(items) if items.first().is_some_and(Value::is_number) => token_ids(items),
        Value::Array(items) => {
            !items.is_empty()
                && items.iter().all(|v| match v {
                    Value::String(s) => !s.is_empty(),
                    Value::Array(tokens) => token_ids(tokens),
                    _ => false,
                })
        }
        _ => false,
    };
    if !ok {
        return Err(wrong());
    }
    let mut inputs = 0usize;
    let mut most = 0u64;
    for i in each_input(input) {
        inputs += 1;
        let tokens = match i {
            Input::Text(t) => u64::try_from(t.len()).unwrap_or(u64::MAX),
            Input::Tokens(n) => n,
        };
        most = most
            .saturating_add(tokens)
            .saturating_add(SPECIAL_TOKENS_PER_INPUT);
    }
    Ok((inputs, most))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> Result<EmbeddingsRequest, GatewayError> {
        EmbeddingsRequest::parse(body.as_bytes(), None)
    }

    #[test]
    fn reads_every_input_shape_and_bounds_its_tokens() {
        let r = parse(r#"{"model":"e","input":"héllo","user":"u1"}"#).unwrap();
        // "héllo" is 6 bytes: at most 6 tokens, plus the per-input allowance.
        assert_eq!((r.inputs, r.max_input_tokens), (1, 6 + 4));
        assert_eq!(r.body["user"], "u1");
        let r = parse(r#"{"model":"e","input":["ab","cde"]}"#).unwrap();
        assert_eq!((r.inputs, r.max_input_tokens), (2, 5 + 8));
        let r = parse(r#"{"model":"e","input":[1,2,3]}"#).unwrap();
        assert_eq!((r.inputs, r.max_input_tokens, r.estimate()), (1, 7, 3));
        let r = parse(r#"{"model":"e","input":[[1,2],[3]]}"#).unwrap();
        assert_eq!((r.inputs, r.max_input_tokens), (2, 3 + 8));
        assert_eq!(r.count_input(TokenizerKind::O200kBase), 3);
        let r = parse(r#"{"model":"e","input":"hello world"}"#).unwrap();
        assert_eq!(r.count_input(TokenizerKind::O200kBase), 2);
    }

    #[test]
    fn refuses_bad_inputs_streams_and_formats_naming_the_field() {
        for (body, param) in [
            (r#"{"model":"e"}"#, "input"),
            (r#"{"model":"e","input":""}"#, "input"),
            (r#"{"model":"e","input":[]}"#, "input"),
            (r#"{"model":"e","input":["a",""]}"#, "input"),
            (r#"{"model":"e","input":[[]]}"#, "input"),
            (r#"{"model":"e","input":[1,-2]}"#, "input"),
            (r#"{"model":"e","input":{"a":1}}"#, "input"),
            (r#"{"model":"e","input":"a","stream":true}"#, "stream"),
            (
                r#"{"model":"e","input":"a","encoding_format":"int8"}"#,
                "encoding_format",
            ),
            (r#"{"model":"e","input":"a","dimensions":0}"#, "dimensions"),
            (r#"{"input":"a"}"#, "model"),
        ] {
            let e = parse(body).unwrap_err();
            assert_eq!(
                (e.code, e.param),
                (ErrorCode::InvalidRequest, Some(param.into())),
                "{body}"
            );
        }
        assert!(parse(r#"{"model":"e","input":"a","stream":false}"#).is_ok());
    }

    #[test]
    fn path_model_wins() {
        let r = EmbeddingsRequest::parse(br#"{"input":"a"}"#, Some("dep")).unwrap();
        assert_eq!(r.model, "dep");
    }
}
