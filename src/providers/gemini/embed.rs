//! Google's embeddings APIs in OpenAI's terms. The Gemini API embeds a batch with
//! `models/{m}:batchEmbedContents` (`{requests: [{model, content: {parts: [{text}]},
//! outputDimensionality?}]}` answered by `{embeddings: [{values}]}`, in request order,
//! with no token usage); Vertex AI with the publisher model's `:predict`
//! (`{instances: [{content}], parameters: {outputDimensionality?}}` answered by
//! `{predictions: [{embeddings: {values, statistics: {token_count}}}]}`).

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::api::embeddings::EmbeddingsRequest;
use crate::api::error::Unsupported;
use crate::providers::embeddings::{dimensions, input_usage, texts, Vectors};
use crate::tokens::Usage;

/// The Gemini API's `batchEmbedContents` body for `model`: one request per input.
pub fn batch_embed_body(req: &EmbeddingsRequest, model: &str) -> Result<Bytes, Unsupported> {
    let name = format!("models/{model}");
    let requests: Vec<Value> = texts(req)?
        .into_iter()
        .map(|text| {
            let mut one = json!({"model": name, "content": {"parts": [{"text": text}]}});
            if let Some(d) = dimensions(req) {
                one["outputDimensionality"] = d.into();
            }
            one
        })
        .collect();
    Ok(Bytes::from(json!({ "requests": requests }).to_string()))
}

/// Vertex AI's `predict` body for a text embedding model: one instance per input.
pub fn predict_body(req: &EmbeddingsRequest) -> Result<Bytes, Unsupported> {
    let instances: Vec<Value> = texts(req)?
        .into_iter()
        .map(|text| json!({ "content": text }))
        .collect();
    let mut body = json!({ "instances": instances });
    if let Some(d) = dimensions(req) {
        body["parameters"] = json!({ "outputDimensionality": d });
    }
    Ok(Bytes::from(body.to_string()))
}

#[derive(Deserialize)]
struct BatchAnswer {
    embeddings: Vec<Values>,
}

#[derive(Deserialize)]
struct Values {
    values: Vec<f32>,
}

/// A `batchEmbedContents` answer. It reports no tokens: the usage is empty.
pub fn read_batch_embed(body: &[u8]) -> Result<Vectors, &'static str> {
    let answer: BatchAnswer = serde_json::from_slice(body)
        .map_err(|_| "the Gemini API answered with something other than embeddings")?;
    Ok(Vectors {
        vectors: answer.embeddings.into_iter().map(|e| e.values).collect(),
        usage: Usage::default(),
    })
}

#[derive(Deserialize)]
struct PredictAnswer {
    predictions: Vec<Prediction>,
}

#[derive(Deserialize)]
struct Prediction {
    embeddings: PredictedEmbedding,
}

#[derive(Deserialize)]
struct PredictedEmbedding {
    values: Vec<f32>,
    #[serde(default)]
    statistics: Option<Statistics>,
}

#[derive(Deserialize)]
struct Statistics {
    token_count: Option<f64>,
}

/// A `predict` answer: the input is the sum of the predictions' `token_count` (sent
/// as a JSON number that may be written `5.0`); unreported when any lacks it.
pub fn read_predict(body: &[u8]) -> Result<Vectors, &'static str> {
    let answer: PredictAnswer = serde_json::from_slice(body)
        .map_err(|_| "Vertex AI answered with something other than embeddings")?;
    let mut tokens = Some(0u64);
    let mut vectors = Vec::with_capacity(answer.predictions.len());
    for p in answer.predictions {
        let count = p
            .embeddings
            .statistics
            .and_then(|s| s.token_count)
            .filter(|n| n.is_finite() && *n >= 0.0 && n.fract() == 0.0);
        // A whole, non-negative count of at most 2^53 converts exactly.
        #[expect(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let count = count.map(|n| n as u64);
        tokens = tokens.zip(count).map(|(a, b)| a.saturating_add(b));
        vectors.push(p.embeddings.values);
    }
    Ok(Vectors {
        vectors,
        usage: tokens.map(input_usage).unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(body: &str) -> EmbeddingsRequest {
        EmbeddingsRequest::parse(body.as_bytes(), None).unwrap()
    }

    #[test]
    fn batch_bodies_name_the_model_per_request_and_carry_dimensions() {
        let body = batch_embed_body(
            &req(r#"{"model":"e","input":["a","b"],"dimensions":256}"#),
            "gemini-embedding-001",
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(
            v["requests"][1],
            json!({"model": "models/gemini-embedding-001",
                "content": {"parts": [{"text": "b"}]}, "outputDimensionality": 256})
        );
        assert!(batch_embed_body(&req(r#"{"model":"e","input":[1,2]}"#), "m").is_err());
    }

    #[test]
    fn predict_bodies_have_one_instance_per_input() {
        let v: Value =
            serde_json::from_slice(&predict_body(&req(r#"{"model":"e","input":"a"}"#)).unwrap())
                .unwrap();
        assert_eq!(v, json!({"instances": [{"content": "a"}]}));
        let v: Value = serde_json::from_slice(
            &predict_body(&req(r#"{"model":"e","input":["a","b"],"dimensions":8}"#)).unwrap(),
        )
        .unwrap();
        assert_eq!(v["parameters"], json!({"outputDimensionality": 8}));
        assert_eq!(v["instances"][1], json!({"content": "b"}));
    }

    #[test]
    fn answers_are_read_in_order_with_vertex_token_counts_summed() {
        let v = read_batch_embed(br#"{"embeddings":[{"values":[0.5]},{"values":[1,2]}]}"#).unwrap();
        assert_eq!(v.vectors, vec![vec![0.5], vec![1.0, 2.0]]);
        assert!(v.usage.is_empty());
        let v = read_predict(
            br#"{"predictions":[{"embeddings":{"values":[0.1],"statistics":{"token_count":3,"truncated":false}}},
                {"embeddings":{"values":[0.2],"statistics":{"token_count":4.0}}}]}"#,
        )
        .unwrap();
        assert_eq!(v.usage.input, Some(7));
        let v = read_predict(br#"{"predictions":[{"embeddings":{"values":[0.1]}}]}"#).unwrap();
        assert!(v.usage.is_empty());
        assert!(read_batch_embed(br#"{"candidates":[]}"#).is_err());
        assert!(read_predict(br#"{"embeddings":[]}"#).is_err());
    }
}
