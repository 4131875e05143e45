//! The mock's `POST /v1/embeddings`, in OpenAI's wire shape: one deterministic unit
//! vector per input (seeded by the model and the input, so the same text always
//! embeds the same), as floats or, with `encoding_format: "base64"`, as the
//! little-endian float32 bytes in base64 (what OpenAI sends, and what the official
//! SDKs ask for by default). Usage is `prompt_tokens` counted with o200k_base (a
//! token array counts its length) and an equal `total_tokens`.

use base64::Engine;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use super::{fnv1a, invalid, MockError};
use crate::tokens::estimate::{count_text, TokenizerKind};

/// `text-embedding-3-small`'s and most models' default size.
const DEFAULT_DIMENSIONS: usize = 1536;
/// `text-embedding-3-large`'s default size.
const LARGE_DIMENSIONS: usize = 3072;
/// More than any real model offers; a larger `dimensions` is refused.
const MAX_DIMENSIONS: u64 = 8192;

/// The answer to an embeddings body, or the error OpenAI would give.
pub(super) fn answer(body: &[u8]) -> Result<Value, MockError> {
    let value: Value =
        serde_json::from_slice(body).map_err(|source| MockError::BadJson { source })?;
    let model = match value.get("model") {
        Some(Value::String(m)) => m.clone(),
        None | Some(Value::Null) => return Err(MockError::MissingParam { param: "model" }),
        Some(_) => return Err(invalid("model", "a string")),
    };
    let inputs = inputs(value.get("input"))?;
    let simulated_error = |code: &str| {
        inputs
            .iter()
            .any(|i| matches!(i, One::Text(t) if t.contains(code)))
    };
    if simulated_error("[mock:error:429]") {
        return Err(MockError::SimulatedRateLimit);
    }
    if simulated_error("[mock:error:500]") {
        return Err(MockError::SimulatedServerError);
    }
    let dims = match value.get("dimensions") {
        None | Some(Value::Null) if model.contains("large") => LARGE_DIMENSIONS,
        None | Some(Value::Null) => DEFAULT_DIMENSIONS,
        Some(d) => d
            .as_u64()
            .filter(|n| (1..=MAX_DIMENSIONS).contains(n))
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| invalid("dimensions", "an integer from 1 to 8192"))?,
    };
    let base64 = match value.get("encoding_format") {
        None | Some(Value::Null) => false,
        Some(Value::String(f)) if f == "float" => false,
        Some(Value::String(f)) if f == "base64" => true,
        Some(_) => return Err(invalid("encoding_format", "\"float\" or \"base64\"")),
    };
    let mut tokens = 0u64;
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, input)| {
            let (seed_text, n) = match input {
                One::Text(t) => (t.to_string(), count_text(TokenizerKind::O200kBase, t)),
                One::Tokens(ids) => (format!("{ids:?}"), u64::try_from(ids.len()).unwrap_or(0)),
            };
            tokens = tokens.saturating_add(n);
            let vector = unit_vector(fnv1a(format!("{model}\u{0}{seed_text}").as_bytes()), dims);
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let answer = json!({
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    });
    Ok(answer)
}

enum One<'a> {
    Text(&'a str),
    Tokens(Vec<u64>),
}

fn inputs(input: Option<&Value>) -> Result<Vec<One<'_>>, MockError> {
    let wrong = || invalid("input", "a string, an array of strings or of token arrays");
    let ids = |a: &[Value]| a.iter().map(Value::as_u64).collect::<Option<Vec<u64>>>();
    match input {
        None | Some(Value::Null) => Err(MockError::MissingParam { param: "input" }),
        Some(Value::String(s)) => Ok(vec![One::Text(s)]),
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_number) => {
            Ok(vec![One::Tokens(ids(items).ok_or_else(wrong)?)])
        }
        Some(Value::Array(items)) if !items.is_empty() => items
            .iter()
            .map(|v| match v {
                Value::String(s) => Ok(One::Text(s)),
                Value::Array(a) => ids(a).map(One::Tokens).ok_or_else(wrong),
                _ => Err(wrong()),
            })
            .collect(),
        Some(_) => Err(wrong()),
    }
}

/// A deterministic vector of length 1 (embeddings are normalised, so cosine
/// similarity is a dot product, as with OpenAI's).
fn unit_vector(seed: u64, dims: usize) -> Vec<f32> {
    let mut rng = StdRng::seed_from_u64(seed);
    let raw: Vec<f32> = (0..dims).map(|_| rng.random_range(-1.0f32..1.0)).collect();
    let norm = raw
        .iter()
        .map(|x| x * x)
        .sum::<f32>()
        .sqrt()
        .max(f32::MIN_POSITIVE);
    raw.into_iter().map(|x| x / norm).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_input_same_vector_in_either_encoding_with_real_usage() {
        let a =
            answer(br#"{"model":"text-embedding-3-small","input":["hello world","x"]}"#).unwrap();
        let b = answer(
            br#"{"model":"text-embedding-3-small","input":["hello world"],"encoding_format":"base64","dimensions":1536}"#,
        )
        .unwrap();
        assert_eq!(a["usage"], json!({"prompt_tokens": 3, "total_tokens": 3}));
        let floats: Vec<f32> = a["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_f64().unwrap() as f32)
            .collect();
        assert_eq!(floats.len(), 1536);
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(b["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        assert_eq!(decoded, floats);
        let norm: f32 = floats.iter().map(|x| x * x).sum();
        assert!((norm - 1.0).abs() < 1e-4);
        let c = answer(br#"{"model":"m","input":[[1,2,3]],"dimensions":8}"#).unwrap();
        assert_eq!(c["usage"]["prompt_tokens"], 3);
        assert_eq!(c["data"][0]["embedding"].as_array().unwrap().len(), 8);
    }
}
