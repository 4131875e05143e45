//! Where Gemini and Vertex AI requests go. Pure string building: the caller chooses
//! the base (the configured `base_url`, or the default for the location) and this
//! module adds the documented paths. `base_url` is taken without a trailing slash.

pub use crate::config::cloud::{vertex_base_url, GEMINI_BASE_URL};

/// The Gemini API's `generateContent` URL for `model`, or its SSE stream
/// (`streamGenerateContent?alt=sse`: without `alt=sse` the stream is one JSON array).
/// The key goes in the `x-goog-api-key` header, never in the URL, so it cannot reach a
/// log line that records URLs.
pub fn gemini_url(base_url: &str, model: &str, stream: bool) -> String {
    let method = if stream {
        "streamGenerateContent?alt=sse"
    } else {
        "generateContent"
    };
    format!("{base_url}/v1beta/models/{model}:{method}")
}

/// The Gemini API's `batchEmbedContents` URL for `model` (the key in a header, as
/// for `generateContent`).
pub fn gemini_batch_embed_url(base_url: &str, model: &str) -> String {
    format!("{base_url}/v1beta/models/{model}:batchEmbedContents")
}

/// A Vertex publisher model's method URL:
/// `{base}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}`.
/// `publisher` is `google` for Gemini and `anthropic` for Claude; `method` is
/// `generateContent`, `streamGenerateContent?alt=sse`, or for Claude (the Anthropic
/// Messages body) `rawPredict` / `streamRawPredict`.
pub fn vertex_url(
    base_url: &str,
    project: &str,
    location: &str,
    publisher: &str,
    model: &str,
    method: &str,
) -> String {
    format!(
        "{base_url}/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{model}:{method}"
    )
}

/// Vertex AI's OpenAI-compatible Chat Completions endpoint, which serves the managed
/// open models ("MaaS": DeepSeek-R1 as `deepseek-ai/deepseek-r1-0528-maas`, Llama,
/// Qwen, ...) with the OpenAI body, the model named in it
/// (cloud.google.com/vertex-ai/generative-ai/docs/maas/call-open-model-apis).
pub fn vertex_openai_url(base_url: &str, project: &str, location: &str) -> String {
    format!(
        "{base_url}/v1/projects/{project}/locations/{location}/endpoints/openapi/chat/completions"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gemini_api_urls_name_the_model_and_the_sse_stream() {
        assert_eq!(
            gemini_url(GEMINI_BASE_URL, "gemini-2.5-flash", false),
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
        );
        assert_eq!(
            gemini_url("http://127.0.0.1:9", "gemini-2.5-pro", true),
            "http://127.0.0.1:9/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
    }

    #[test]
    fn vertex_hosts_for_regions_multi_regions_and_global() {
        assert_eq!(
            vertex_base_url("europe-west4"),
            "https://europe-west4-aiplatform.googleapis.com"
        );
        assert_eq!(
            vertex_base_url("global"),
            "https://aiplatform.googleapis.com"
        );
        assert_eq!(
            vertex_base_url("eu"),
            "https://aiplatform.eu.rep.googleapis.com"
        );
        assert_eq!(
            vertex_base_url("us"),
            "https://aiplatform.us.rep.googleapis.com"
        );
    }

    #[test]
    fn vertex_paths_for_gemini_claude_and_open_models() {
        let base = vertex_base_url("eu");
        assert_eq!(
            vertex_url(&base, "p1", "eu", "google", "gemini-2.5-pro", "streamGenerateContent?alt=sse"),
            "https://aiplatform.eu.rep.googleapis.com/v1/projects/p1/locations/eu/publishers/google/models/gemini-2.5-pro:streamGenerateContent?alt=sse"
        );
        assert_eq!(
            vertex_url("https://us-east5-aiplatform.googleapis.com", "p1", "us-east5", "anthropic",
                "claude-sonnet-4-5@20250929", "rawPredict"),
            "https://us-east5-aiplatform.googleapis.com/v1/projects/p1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict"
        );
        assert_eq!(
            vertex_openai_url(&vertex_base_url("us-central1"), "p1", "us-central1"),
            "https://us-central1-aiplatform.googleapis.com/v1/projects/p1/locations/us-central1/endpoints/openapi/chat/completions"
        );
    }
}
