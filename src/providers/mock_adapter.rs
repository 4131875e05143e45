//! The `mock` kind's adapter: the simulated upstream (`providers::mock`) speaks
//! OpenAI's dialect, so this is a plain OpenAI request to the in-process mock
//! server, whose base URL (`http://127.0.0.1:PORT/<flavor>`) is filled in at start-up.
//! Usage is read with the DeepSeek reader so the DeepSeek flavour's cache fields count.

use serde_json::Value;

use super::wire::{chat_body, json_request};
use super::{ProviderAdapter, Target, UpstreamRequest};
use crate::api::openai::ChatRequest;
use crate::metering::Usage;

/// The `mock` kind.
pub struct MockAdapter;

impl ProviderAdapter for MockAdapter {
    fn build_request(&self, req: &ChatRequest, target: Target<'_>) -> UpstreamRequest {
        let body = chat_body(req, target);
        let url = format!("{}/v1/chat/completions", target.provider.base_url);
        json_request(url, None, &body)
    }

    fn usage_from_wire(&self, usage: &Value) -> Usage {
        super::deepseek::DeepSeek.usage_from_wire(usage)
    }
}
