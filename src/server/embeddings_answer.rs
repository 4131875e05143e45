//! The embeddings answer: one upstream call, its `usage` read through a view that
//! skips the vectors without building them, the input priced, one ledger record, and
//! the client's body made from the upstream's bytes with the `tollgate` object
//! inserted (as `answer` does for chat). The vectors reach the client as the upstream
//! sent them: a `base64` answer stays base64, floats are not re-printed.
//!
//! A cloud whose embeddings API is not OpenAI's (Gemini API, Vertex AI, Bedrock) has
//! its answer read into vectors by its adapter (`embeddings_answer`); the client then
//! gets OpenAI's list written from them, in the client's `encoding_format`, with the
//! settled usage (the Gemini API reports none, so that is tollgate's own count).

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use bytes::Bytes;
use serde::de::IgnoredAny;
use serde::Deserialize;
use serde_json::Value;

use super::answer::{client_body, cost_headers, Edit};
use super::AppState;
use crate::api::embeddings::EmbeddingsRequest;
use crate::ledger::Outcome;
use crate::metering::facts::{self, RequestFacts};
use crate::metering::finalize::{self, Ending};
use crate::metering::summary::{insertion_point, present};
use crate::providers::{embeddings, ProviderAdapter, UpstreamRequest};
use crate::tokens::Usage;
use crate::upstream::AttemptError;

/// Call the upstream once and answer the client with its body, metered and priced.
pub(super) async fn call(
    app: &AppState,
    adapter: &dyn ProviderAdapter,
    upstream_req: UpstreamRequest,
    req: &EmbeddingsRequest,
    facts: &RequestFacts,
) -> Result<Response, AttemptError> {
    let upstream_started = tokio::time::Instant::now();
    let bytes = app.upstream.call(upstream_req).await?;
    let upstream_time = upstream_started.elapsed();
    let ttfb = facts.started.elapsed();
    let (reported, answer) = match adapter.embeddings_answer(&bytes) {
        None => {
            let (reported, edit) = read(&bytes)?;
            (reported, Answer::Relayed(bytes, edit))
        }
        Some(Ok(v)) if v.vectors.len() == req.inputs => (v.usage, Answer::Written(v.vectors)),
        Some(Ok(_)) => {
            return Err(AttemptError::Protocol(
                "the upstream answered with another number of embeddings than inputs",
            ))
        }
        Some(Err(why)) => return Err(AttemptError::Protocol(why)),
    };
    let (usage, source) = crate::metering::embeddings::settle(facts, req, reported);
    let priced = facts::price(&app.meter.prices, facts, usage, source);
    let (bytes, edit) = match answer {
        Answer::Relayed(bytes, edit) => (bytes, edit),
        Answer::Written(vectors) => {
            let model = facts.served.as_ref().map_or("", |s| &s.upstream_model);
            let billed = priced.usage.input.unwrap_or(0);
            let base64 = embeddings::wants_base64(req);
            let list = embeddings::openai_list(&vectors, model, billed, base64);
            (Bytes::new(), Edit::Reencode(list))
        }
    };
    let body = client_body(bytes, &finalize::summary(facts, &priced), edit);
    let ending = Ending {
        status: 200,
        outcome: Outcome::Completed,
        error_code: None,
        ttfb: Some(ttfb),
        upstream_time: Some(upstream_time),
    };
    app.meter.finish(facts, &priced, &ending);
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::OK;
    let h = resp.headers_mut();
    super::residency_headers(h, facts);
    h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    cost_headers(h, &priced);
    Ok(resp)
}

/// The client's body to be: the upstream's, relayed with the `tollgate` object
/// inserted, or OpenAI's list written from a cloud's vectors.
enum Answer {
    Relayed(Bytes, Edit),
    Written(Vec<Vec<f32>>),
}

/// The parts of an embeddings answer the meter reads. `data` is only checked to be
/// there (skipped, not built); serde refuses a duplicated key, and the whole body is
/// then parsed instead.
#[derive(Deserialize)]
struct AnswerView {
    #[serde(default)]
    data: Option<IgnoredAny>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default, deserialize_with = "present")]
    tollgate: bool,
}

/// Usage and how the `tollgate` object gets in. An answer that is not an object with
/// `data` is an attempt failure (another offer may answer properly).
fn read(bytes: &[u8]) -> Result<(Usage, Edit), AttemptError> {
    let not_embeddings = || {
        AttemptError::Protocol("the upstream answered with something other than an embeddings list")
    };
    let reported = |u: Option<&Value>| {
        u.filter(|u| !u.is_null())
            .map(embeddings::usage)
            .unwrap_or_default()
    };
    let view = serde_json::from_slice::<AnswerView>(bytes).ok();
    if let (Some(view), Some(at)) = (view.filter(|v| !v.tollgate), insertion_point(bytes)) {
        if view.data.is_none() {
            return Err(not_embeddings());
        }
        return Ok((reported(view.usage.as_ref()), Edit::Insert(at)));
    }
    let Ok(Value::Object(answer)) = serde_json::from_slice::<Value>(bytes) else {
        return Err(not_embeddings());
    };
    if !answer.contains_key("data") {
        return Err(not_embeddings());
    }
    Ok((reported(answer.get("usage")), Edit::Reencode(answer)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_usage_without_building_vectors_and_refuses_non_embeddings() {
        let (u, edit) =
            read(br#"{"object":"list","data":[{"embedding":"AAAA","index":0}],"usage":{"prompt_tokens":3,"total_tokens":3}}"#)
                .unwrap();
        assert_eq!(u.input, Some(3));
        assert!(matches!(edit, Edit::Insert(_)));
        // An upstream `tollgate` key means the body is parsed and re-encoded.
        let (_, edit) = read(br#"{"data":[],"tollgate":1}"#).unwrap();
        assert!(matches!(edit, Edit::Reencode(_)));
        let (u, _) = read(br#"{"data":[],"usage":null}"#).unwrap();
        assert!(u.is_empty());
        assert!(read(br#"{"choices":[]}"#).is_err());
        assert!(read(b"[1]").is_err());
    }
}
