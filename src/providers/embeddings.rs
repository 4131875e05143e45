//! The Embeddings dialect (OpenAI's `POST /embeddings`), shared by every adapter that
//! serves it: the upstream body (the client's, with the upstream model name) and the
//! reading of its `usage`. Each adapter's `embeddings_request` only picks the URL and
//! the auth header, as its `build_request` does for chat.
//!
//! The clouds (Gemini API, Vertex AI, Bedrock) have embeddings APIs of their own
//! shapes: their adapters read the client's texts with [`texts`] and their answers
//! into [`Vectors`], which the server writes as OpenAI's list with [`openai_list`].

use base64::Engine;
use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{json, Map, Value};

use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::tokens::wire_count;
use crate::tokens::Usage;

/// A cloud's embeddings answer in OpenAI's terms: one vector per input, in the
/// request's order, and the usage the cloud reported (empty when it reports none, as
/// the Gemini API does: tollgate's own count then bills the input).
#[derive(Debug, Clone, PartialEq)]
pub struct Vectors {
    pub vectors: Vec<Vec<f32>>,
    pub usage: Usage,
}

/// The client's inputs as texts, for an upstream that embeds text only: a token-id
/// array (OpenAI's other `input` shape) cannot be sent to it.
pub fn texts(req: &EmbeddingsRequest) -> Result<Vec<&str>, Unsupported> {
    let tokens = || {
        Unsupported::new(
            "input",
            "this provider embeds text only; send strings, not token ids",
        )
    };
    match req.input() {
        Value::String(s) => Ok(vec![s.as_str()]),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().ok_or_else(tokens))
            .collect(),
        _ => Err(tokens()),
    }
}

/// The client's `dimensions`, validated positive at parse.
pub fn dimensions(req: &EmbeddingsRequest) -> Option<u64> {
    req.body.get("dimensions").and_then(Value::as_u64)
}

/// Whether the client asked for base64 vectors (`encoding_format: "base64"`).
pub fn wants_base64(req: &EmbeddingsRequest) -> bool {
    req.body.get("encoding_format").and_then(Value::as_str) == Some("base64")
}

/// OpenAI's embeddings list for `vectors` from `model`, with `input_tokens` (what is
/// billed) as its usage. With `base64`, each vector is its float32 values'
/// little-endian bytes in standard base64, as OpenAI sends them (and its SDKs decode).
pub fn openai_list(
    vectors: &[Vec<f32>],
    model: &str,
    input_tokens: u64,
    base64: bool,
) -> Map<String, Value> {
    let data: Vec<Value> = vectors
        .iter()
        .enumerate()
        .map(|(index, v)| {
            let embedding = if base64 {
                let bytes: Vec<u8> = v.iter().flat_map(|f| f.to_le_bytes()).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(v.clone())
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let mut list = Map::new();
    list.insert("object".into(), "list".into());
    list.insert("data".into(), data.into());
    list.insert("model".into(), model.into());
    list.insert(
        "usage".into(),
        json!({"prompt_tokens": input_tokens, "total_tokens": input_tokens}),
    );
    list
}

/// Usage of `n` input tokens and no output, as a cloud reported it.
pub fn input_usage(n: u64) -> Usage {
    Usage {
        input: Some(n),
        output: Some(0),
        ..Usage::default()
    }
}

/// The client's body for `upstream_model`: every field in the client's order (so
/// `encoding_format`, `dimensions`, `user` and unknown fields reach the upstream as
/// sent), `model` replaced in place or added last.
pub fn body(req: &EmbeddingsRequest, upstream_model: &str) -> Bytes {
    let body = WithModel {
        fields: &req.body,
        model: upstream_model,
    };
    // Writing strings and `Value`s into a Vec cannot fail.
    Bytes::from(serde_json::to_vec(&body).unwrap_or_default())
}

struct WithModel<'a> {
    fields: &'a Map<String, Value>,
    model: &'a str,
}

impl Serialize for WithModel<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        for (key, value) in self.fields {
            if key == "model" {
                map.serialize_entry(key, self.model)?;
            } else {
                map.serialize_entry(key, value)?;
            }
        }
        if !self.fields.contains_key("model") {
            map.serialize_entry("model", self.model)?;
        }
        map.end()
    }
}

/// An embeddings `usage` object: `prompt_tokens` (or, without it, `total_tokens`) is
/// the input; the output is zero. Any completion tokens, a `total_tokens` other than
/// the prompt's, or a field that is not a count marks the report `malformed`: an
/// embedding has no output, so such a report does not add up.
pub fn usage(usage: &Value) -> Usage {
    let mut malformed = false;
    let mut n = |v: Option<&Value>| {
        wire_count(v).unwrap_or_else(|_| {
            malformed = true;
            None
        })
    };
    let prompt = n(usage.get("prompt_tokens"));
    let completion = n(usage.get("completion_tokens"));
    let total = n(usage.get("total_tokens"));
    malformed |= completion.is_some_and(|c| c > 0);
    if let (Some(p), Some(t)) = (prompt, total) {
        malformed |= p != t;
    }
    let input = prompt.or(total);
    Usage {
        input,
        output: input.map(|_| 0),
        malformed,
        ..Usage::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_keeps_the_clients_fields_and_replaces_the_model() {
        let req = EmbeddingsRequest::parse(
            br#"{"input":["a"],"model":"small","encoding_format":"base64","dimensions":256,"x":{"y":1}}"#,
            None,
        )
        .unwrap();
        assert_eq!(
            body(&req, "text-embedding-3-small"),
            &br#"{"input":["a"],"model":"text-embedding-3-small","encoding_format":"base64","dimensions":256,"x":{"y":1}}"#[..]
        );
        let req = EmbeddingsRequest::parse(br#"{"input":"a"}"#, Some("dep")).unwrap();
        assert_eq!(body(&req, "up"), &br#"{"input":"a","model":"up"}"#[..]);
    }

    #[test]
    fn usage_is_input_only_and_must_add_up() {
        let u = usage(&serde_json::json!({"prompt_tokens": 8, "total_tokens": 8}));
        assert_eq!((u.input, u.output, u.malformed), (Some(8), Some(0), false));
        for bad in [
            serde_json::json!({"prompt_tokens": 8, "total_tokens": 9}),
            serde_json::json!({"prompt_tokens": -8, "total_tokens": -8}),
            serde_json::json!({"prompt_tokens": 8, "completion_tokens": 3, "total_tokens": 11}),
            serde_json::json!({"prompt_tokens": "8"}),
        ] {
            assert!(usage(&bad).malformed, "{bad}");
        }
        let u = usage(&serde_json::json!({"total_tokens": 5}));
        assert_eq!((u.input, u.malformed), (Some(5), false));
        assert!(usage(&serde_json::json!({})).input.is_none());
    }

    #[test]
    fn texts_are_strings_only() {
        let req = |b: &str| EmbeddingsRequest::parse(b.as_bytes(), None).unwrap();
        assert_eq!(texts(&req(r#"{"model":"m","input":"a"}"#)).unwrap(), ["a"]);
        assert_eq!(
            texts(&req(r#"{"model":"m","input":["a","b"]}"#)).unwrap(),
            ["a", "b"]
        );
        for tokens in [
            r#"{"model":"m","input":[1,2]}"#,
            r#"{"model":"m","input":[[1],[2]]}"#,
        ] {
            assert_eq!(texts(&req(tokens)).unwrap_err().param, "input");
        }
    }

    #[test]
    fn the_openai_list_indexes_in_order_and_encodes_base64_as_float32_le() {
        let vectors = vec![vec![0.5f32, -1.0], vec![0.25]];
        let list = openai_list(&vectors, "m", 7, false);
        assert_eq!(list["data"][1]["index"], 1);
        assert_eq!(list["data"][0]["embedding"], json!([0.5, -1.0]));
        assert_eq!(
            list["usage"],
            json!({"prompt_tokens": 7, "total_tokens": 7})
        );
        let list = openai_list(&vectors, "m", 7, true);
        // 0.5f32 = 00 00 00 3f, -1.0f32 = 00 00 80 bf (little-endian).
        assert_eq!(list["data"][0]["embedding"], "AAAAPwAAgL8=");
    }
}
