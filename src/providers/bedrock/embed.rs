//! Amazon Titan Text Embeddings V2 (`amazon.titan-embed-text-v2:0`) through
//! InvokeModel, in OpenAI's terms: `POST {base}/model/{id}/invoke` with
//! `{"inputText", "dimensions"?}`, answered by `{"embedding": [...],
//! "inputTextTokenCount"}` (Bedrock user guide, "Amazon Titan Embeddings Text").
//! Titan embeds one text per call, so a request with several inputs is refused
//! rather than fanned out into several billed calls.

use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use super::request::model_url;
use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::providers::embeddings::{dimensions, input_usage, texts, Vectors};

/// `{base_url}/model/{modelId}/invoke`.
pub fn invoke_url(base_url: &str, model_id: &str) -> String {
    model_url(base_url, model_id, "invoke")
}

/// The one text of `req`, or why Titan cannot embed it.
fn one_text(req: &EmbeddingsRequest) -> Result<&str, Unsupported> {
    match texts(req)?.as_slice() {
        [text] => Ok(text),
        _ => Err(Unsupported::new(
            "input",
            "Titan embeds one text per request; send one string",
        )),
    }
}

/// What in `req` Titan cannot embed, if anything.
pub fn cannot_embed(req: &EmbeddingsRequest) -> Option<Unsupported> {
    one_text(req).err()
}

/// The InvokeModel body for Titan Text Embeddings V2.
pub fn titan_body(req: &EmbeddingsRequest) -> Result<Bytes, Unsupported> {
    let mut body = json!({ "inputText": one_text(req)? });
    if let Some(d) = dimensions(req) {
        body["dimensions"] = d.into();
    }
    Ok(Bytes::from(body.to_string()))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct TitanAnswer {
    embedding: Vec<f32>,
    input_text_token_count: Option<u64>,
}

/// A Titan answer: one vector, and its input tokens when reported.
pub fn read_titan(body: &[u8]) -> Result<Vectors, &'static str> {
    let answer: TitanAnswer = serde_json::from_slice(body)
        .map_err(|_| "Bedrock answered with something other than a Titan embedding")?;
    Ok(Vectors {
        vectors: vec![answer.embedding],
        usage: answer
            .input_text_token_count
            .map(input_usage)
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> EmbeddingsRequest {
        EmbeddingsRequest::parse(body.as_bytes(), None).unwrap()
    }

    #[test]
    fn one_text_per_call_with_its_dimensions() {
        let body = titan_body(&req(r#"{"model":"e","input":["hi"],"dimensions":256}"#)).unwrap();
        assert_eq!(&body[..], br#"{"inputText":"hi","dimensions":256}"#);
        let many = req(r#"{"model":"e","input":["a","b"]}"#);
        assert_eq!(cannot_embed(&many).unwrap().param, "input");
        assert!(cannot_embed(&req(r#"{"model":"e","input":[1,2]}"#)).is_some());
        assert!(cannot_embed(&req(r#"{"model":"e","input":"a"}"#)).is_none());
    }

    #[test]
    fn the_answer_is_one_vector_and_its_token_count() {
        let v = read_titan(br#"{"embedding":[0.5,-0.25],"inputTextTokenCount":6,"embeddingsByType":{"float":[0.5,-0.25]}}"#)
            .unwrap();
        assert_eq!(v.vectors, vec![vec![0.5, -0.25]]);
        assert_eq!((v.usage.input, v.usage.output), (Some(6), Some(0)));
        assert!(read_titan(br#"{"output":{}}"#).is_err());
    }

    #[test]
    fn the_invoke_url_encodes_the_model_id() {
        assert_eq!(
            invoke_url("http://127.0.0.1:9/", "amazon.titan-embed-text-v2:0"),
            "http://127.0.0.1:9/model/amazon.titan-embed-text-v2%3A0/invoke"
        );
    }
}
