//! The mock's wire shapes: per-flavor JSON bodies, stream chunks and SSE frames, copied from the
//! recorded shapes in shared/providers.md (§1.2, §1.3 OpenAI; §2.3 Azure AI Foundry R1; §4.2,
//! §4.3 DeepSeek). It decides nothing about content or usage (see `reply`).

use std::time::Duration;

use rand::Rng;
use serde_json::{json, Value};

use super::reply::{Counts, Reply};
use super::MockFlavor;

/// One piece of the response body and how long to wait before sending it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Frame {
    pub delay: Duration,
    pub text: String,
}

/// Per-response identity shared by every chunk of one completion.
#[derive(Debug, Clone)]
pub(super) struct Meta {
    pub id: String,
    pub created: i64,
    pub model: String,
    pub fingerprint: String,
}

impl Meta {
    /// A fresh id in the flavor's style; the model echoes what the provider would report.
    pub fn new(flavor: MockFlavor, model: &str) -> Self {
        let mut rng = rand::rng();
        let id = match flavor {
            MockFlavor::Openai | MockFlavor::OpenaiReasoning => {
                const BASE62: &[u8] =
                    b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
                let tail: String = (0..29)
                    .filter_map(|_| BASE62.get(rng.random_range(0..BASE62.len())))
                    .map(|b| char::from(*b))
                    .collect();
                format!("chatcmpl-{tail}")
            }
            MockFlavor::Deepseek => uuid::Builder::from_random_bytes(rng.random())
                .into_uuid()
                .to_string(),
            MockFlavor::AzureThink => format!("{:032x}", rng.random::<u128>()),
            MockFlavor::Anthropic => format!("msg_{:024x}", rng.random::<u128>()),
        };
        let model = match flavor {
            MockFlavor::Openai | MockFlavor::OpenaiReasoning => openai_snapshot(model),
            MockFlavor::Deepseek | MockFlavor::AzureThink | MockFlavor::Anthropic => {
                model.to_owned()
            }
        };
        let fingerprint = format!("fp_{:010x}", super::fnv1a(model.as_bytes()) >> 24);
        Self {
            id,
            created: chrono::Utc::now().timestamp(),
            model,
            fingerprint,
        }
    }
}

/// OpenAI answers an alias with the dated snapshot it served (§1.1), which the gateway must strip
/// for price lookup.
fn openai_snapshot(model: &str) -> String {
    let dated = match model {
        "o1" => "o1-2024-12-17",
        "o1-mini" => "o1-mini-2024-09-12",
        "o1-preview" => "o1-preview-2024-09-12",
        "o3-mini" => "o3-mini-2025-01-31",
        "gpt-4o" => "gpt-4o-2024-08-06",
        "gpt-4o-mini" => "gpt-4o-mini-2024-07-18",
        other => other,
    };
    dated.to_owned()
}

/// The usage object in the flavor's own field names.
pub(super) fn usage(flavor: MockFlavor, counts: Counts, has_reasoning_field: bool) -> Value {
    let total = counts.prompt + counts.completion;
    match flavor {
        MockFlavor::Openai | MockFlavor::OpenaiReasoning => json!({
            "prompt_tokens": counts.prompt,
            "completion_tokens": counts.completion,
            "total_tokens": total,
            "prompt_tokens_details": {"cached_tokens": counts.cached, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": counts.reasoning, "audio_tokens": 0,
                "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0
            }
        }),
        MockFlavor::Deepseek => {
            let mut usage = json!({
                "prompt_tokens": counts.prompt,
                "completion_tokens": counts.completion,
                "total_tokens": total,
                "prompt_tokens_details": {"cached_tokens": counts.cached},
            });
            if has_reasoning_field {
                set(
                    &mut usage,
                    "completion_tokens_details",
                    json!({"reasoning_tokens": counts.reasoning}),
                );
            }
            set(&mut usage, "prompt_cache_hit_tokens", json!(counts.cached));
            set(
                &mut usage,
                "prompt_cache_miss_tokens",
                json!(counts.prompt.saturating_sub(counts.cached)),
            );
            usage
        }
        MockFlavor::AzureThink => json!({
            "prompt_tokens": counts.prompt,
            "total_tokens": total,
            "completion_tokens": counts.completion
        }),
        // Anthropic's input_tokens excludes cache reads (§5).
        MockFlavor::Anthropic => json!({
            "input_tokens": counts.prompt.saturating_sub(counts.cached),
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": counts.cached,
            "output_tokens": counts.completion
        }),
    }
}

/// The non-streamed `chat.completion` object.
pub(super) fn completion(flavor: MockFlavor, meta: &Meta, reply: &Reply) -> Value {
    let content = reply.content_chunks.concat();
    let usage = usage(flavor, reply.counts, reply.has_reasoning_field);
    match flavor {
        // The chat routes refuse the Anthropic flavor; its shapes are in `messages`.
        MockFlavor::Openai | MockFlavor::OpenaiReasoning | MockFlavor::Anthropic => json!({
            "id": meta.id, "object": "chat.completion", "created": meta.created,
            "model": meta.model, "system_fingerprint": meta.fingerprint,
            "service_tier": "default",
            "choices": [{"index": 0, "finish_reason": reply.finish_reason, "logprobs": null,
                         "message": {"role": "assistant", "content": content, "refusal": null}}],
            "usage": usage
        }),
        MockFlavor::Deepseek => {
            let mut message = json!({"role": "assistant", "content": content});
            if reply.has_reasoning_field {
                set(
                    &mut message,
                    "reasoning_content",
                    json!(reply.reasoning_chunks.concat()),
                );
            }
            json!({
                "id": meta.id, "object": "chat.completion", "created": meta.created,
                "model": meta.model,
                "choices": [{"index": 0, "logprobs": null, "finish_reason": reply.finish_reason,
                             "message": message}],
                "usage": usage,
                "system_fingerprint": meta.fingerprint
            })
        }
        MockFlavor::AzureThink => json!({
            "id": meta.id, "object": "chat.completion", "created": meta.created,
            "model": meta.model,
            "choices": [{"index": 0, "finish_reason": reply.finish_reason,
                         "message": {"role": "assistant", "tool_calls": null, "content": content}}],
            "usage": usage
        }),
    }
}

/// Pacing of a stream: wait `latency` for the first token, `interval` between later chunks.
#[derive(Debug, Clone, Copy)]
pub(super) struct Pace {
    pub latency: Duration,
    pub interval: Duration,
}

/// Every SSE frame of a streamed completion, ending with `data: [DONE]`.
pub(super) fn stream_frames(
    flavor: MockFlavor,
    meta: &Meta,
    reply: &Reply,
    include_usage: bool,
    pace: Pace,
) -> Vec<Frame> {
    let events = stream_events(flavor, meta, reply, include_usage);
    let mut frames = Vec::with_capacity(events.len() + 2);
    if flavor == MockFlavor::Deepseek {
        // DeepSeek sends keep-alive comments while the request waits in its queue (§4.3).
        frames.push(Frame {
            delay: Duration::ZERO,
            text: ": keep-alive\n\n".to_owned(),
        });
    }
    frames.extend(events.iter().enumerate().map(|(i, event)| Frame {
        delay: if i == 0 { pace.latency } else { pace.interval },
        text: format!("data: {event}\n\n"),
    }));
    frames.push(Frame {
        delay: Duration::ZERO,
        text: "data: [DONE]\n\n".to_owned(),
    });
    frames
}

/// Renders `chat.completion.chunk` objects in one flavor's style.
struct Chunker<'a> {
    flavor: MockFlavor,
    meta: &'a Meta,
    /// OpenAI with `include_usage`: every chunk carries `"usage": null` (§1.3).
    usage_nulls: bool,
}

impl Chunker<'_> {
    fn chunk(&self, choices: Value, usage: Option<Value>) -> Value {
        let meta = self.meta;
        let mut c = json!({"id": meta.id, "object": "chat.completion.chunk",
                           "created": meta.created, "model": meta.model});
        if self.flavor != MockFlavor::AzureThink {
            set(&mut c, "system_fingerprint", json!(meta.fingerprint));
        }
        set(&mut c, "choices", choices);
        match usage {
            Some(u) => set(&mut c, "usage", u),
            None if self.usage_nulls => set(&mut c, "usage", Value::Null),
            None => {}
        }
        c
    }

    fn delta(&self, delta: Value, finish: Option<&str>, usage: Option<Value>) -> Value {
        let choices = if self.flavor == MockFlavor::AzureThink {
            json!([{"index": 0, "delta": delta, "finish_reason": finish}])
        } else {
            json!([{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}])
        };
        self.chunk(choices, usage)
    }
}

fn stream_events(
    flavor: MockFlavor,
    meta: &Meta,
    reply: &Reply,
    include_usage: bool,
) -> Vec<Value> {
    let openai_like = matches!(flavor, MockFlavor::Openai | MockFlavor::OpenaiReasoning);
    let chunker = Chunker {
        flavor,
        meta,
        usage_nulls: openai_like && include_usage,
    };
    let reasoning_field = reply.has_reasoning_field;
    let mut content = reply.content_chunks.iter();
    let first_delta = match flavor {
        MockFlavor::Openai | MockFlavor::OpenaiReasoning | MockFlavor::Anthropic => {
            json!({"role": "assistant", "content": "", "refusal": null})
        }
        MockFlavor::Deepseek if reasoning_field => {
            json!({"role": "assistant", "content": null, "reasoning_content": ""})
        }
        MockFlavor::Deepseek => json!({"role": "assistant", "content": ""}),
        // Azure's first delta already carries text: `<think>` (§2.3).
        MockFlavor::AzureThink => {
            json!({"role": "assistant", "content": content.next().cloned().unwrap_or_default()})
        }
    };
    let mut events = vec![chunker.delta(first_delta, None, None)];
    for text in &reply.reasoning_chunks {
        let delta = json!({"content": null, "reasoning_content": text});
        events.push(chunker.delta(delta, None, None));
    }
    for text in content {
        let delta = if reasoning_field {
            json!({"content": text, "reasoning_content": null})
        } else {
            json!({"content": text})
        };
        events.push(chunker.delta(delta, None, None));
    }
    let usage = usage(flavor, reply.counts, reasoning_field);
    let finish = Some(reply.finish_reason);
    match flavor {
        MockFlavor::Openai | MockFlavor::OpenaiReasoning | MockFlavor::Anthropic => {
            events.push(chunker.delta(json!({}), finish, None));
            if include_usage {
                events.push(chunker.chunk(json!([]), Some(usage)));
            }
        }
        MockFlavor::Deepseek if reasoning_field => {
            let delta = json!({"content": "", "reasoning_content": null});
            events.push(chunker.delta(delta, finish, Some(usage)));
        }
        MockFlavor::Deepseek => {
            events.push(chunker.delta(json!({"content": ""}), finish, Some(usage)));
        }
        MockFlavor::AzureThink => events.push(chunker.delta(json!({}), finish, Some(usage))),
    }
    events
}

/// OpenAI-shaped error body (§1.5): all four keys present.
pub(super) fn error_body(
    message: &str,
    kind: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Value {
    json!({"error": {"message": message, "type": kind, "param": param, "code": code}})
}

/// Inserts `key` into a JSON object built by `json!` (always an object here); indexing with
/// `value[key] = …` would panic on a non-object instead.
fn set(target: &mut Value, key: &str, value: Value) {
    if let Some(map) = target.as_object_mut() {
        map.insert(key.to_owned(), value);
    }
}
