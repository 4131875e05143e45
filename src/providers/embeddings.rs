//! The Embeddings dialect (OpenAI's `POST /embeddings`), shared by every adapter that
//! serves it: the upstream body (the client's, with the upstream model name) and the
//! reading of its `usage`. Each adapter's `embeddings_request` only picks the URL and
//! the auth header, as its `build_request` does for chat.

use bytes::Bytes;
use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::api::embeddings::EmbeddingsRequest;
use crate::tokens::wire_count;
use crate::tokens::Usage;

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
}
