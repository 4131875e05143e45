//! An OpenAI chat completion request as a Bedrock Runtime Converse (or ConverseStream:
//! the same body) request, explicitly: every field of the client's body is either
//! translated or refused with the name of the field ([`Unsupported`]), never dropped.
//! The rules, after AWS's Converse API reference
//! (docs.aws.amazon.com/bedrock/latest/APIReference/API_runtime_Converse.html):
//! - `system` and `developer` messages become `system` text blocks, in order;
//! - user text becomes `text` blocks, images (`image_url` with a base64 `data:` URL of
//!   png, jpeg, gif or webp) `image` blocks with inline `bytes`; Converse fetches no
//!   http(s) URL, so one is refused;
//! - assistant `tool_calls` become `toolUse` blocks and `tool` messages `toolResult`
//!   blocks of a user turn; consecutive turns of one role are merged, since Converse
//!   takes alternating user and assistant turns (several tool results answer one turn);
//! - `max_completion_tokens` or `max_tokens` → `inferenceConfig.maxTokens` (optional in
//!   Converse: the model's default applies), `temperature` (0 to 1) and `top_p` →
//!   `temperature`/`topP`, `stop` → `stopSequences`, `user` → `requestMetadata.user`;
//! - function `tools` → `toolConfig.tools[].toolSpec` with `inputSchema.json`,
//!   `tool_choice` `auto`/`required`/a named function → `auto`/`any`/`tool`;
//! - refused: `tool_choice: "none"` and `parallel_tool_calls: false` (Converse has no
//!   switch for either), `n` other than 1, and every field with no Converse equivalent
//!   (`logprobs`, `response_format`, `seed`, penalties, …);
//! - `reasoning_effort`: Bedrock's reasoning switch lives in
//!   `additionalModelRequestFields` and differs per model family, so it is read by the
//!   model id. For Claude (`anthropic.claude` in the id, a profile's `us.` prefix
//!   included) it becomes `thinking: {type: enabled, budget_tokens}` with the budget of
//!   [`thinking_budget`] (docs.aws.amazon.com/bedrock/latest/userguide/
//!   claude-messages-extended-thinking.html); Claude takes a budget only below
//!   `maxTokens`, so a smaller `max_tokens` is refused and an absent one becomes the
//!   budget plus Anthropic's default answer allowance. Other families (Nova's
//!   `reasoningConfig`, …) are refused by name.

use bytes::Bytes;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use crate::api::openai::ChatRequest;
use crate::providers::anthropic::request::DEFAULT_MAX_TOKENS;
use crate::providers::chat_content::{base64_data_url, function_call, plain_text};
use crate::providers::reasoning::thinking_budget;

pub use crate::api::error::Unsupported;

fn unsupported(param: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported::new(param, why)
}

/// Fields read elsewhere or handled here; anything else is refused.
const TRANSLATED: [&str; 13] = [
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "user",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "n",
];

pub use crate::config::cloud::bedrock_base_url as default_base_url;

/// What a path label keeps unencoded: RFC 3986's unreserved characters, as AWS's SDKs
/// encode a `{modelId}` label (an ARN's `:` and `/`, a profile's `:0`, all encoded).
const LABEL: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `{base_url}/model/{modelId}/converse` (or `/converse-stream`), the model id
/// percent-encoded as one path segment.
pub fn converse_url(base_url: &str, model_id: &str, stream: bool) -> String {
    let op = if stream {
        "converse-stream"
    } else {
        "converse"
    };
    model_url(base_url, model_id, op)
}

/// `{base_url}/model/{modelId}/{op}`, the model id percent-encoded as one path segment.
pub fn model_url(base_url: &str, model_id: &str, op: &str) -> String {
    format!(
        "{}/model/{}/{op}",
        base_url.trim_end_matches('/'),
        utf8_percent_encode(model_id, LABEL)
    )
}

/// The Converse body for a chat request to `model_id` (the upstream model, an
/// inference profile or an ARN: its family decides what `reasoning_effort` becomes), or
/// what in it cannot be translated. `None` when the model is not known yet (the check
/// before routing, `ProviderAdapter::cannot_serve`, is not told it): everything but
/// the family is checked.
pub fn converse_body(req: &ChatRequest, model_id: Option<&str>) -> Result<Bytes, Unsupported> {
    let messages: Value = serde_json::from_str(req.messages_json().get())
        .map_err(|_| unsupported("messages", "must be an array of messages"))?;
    let mut fields = req.body.clone();
    let effort = fields.remove("reasoning_effort").filter(|v| !v.is_null());
    let mut body = body(&fields, &messages)?;
    if let Some(effort) = effort {
        reasoning(&effort, model_id, &mut body)?;
    }
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| unsupported("messages", e.to_string()))
}

/// `reasoning_effort` for `model_id`'s family, into the finished `body`; see the
/// module docs.
fn reasoning(effort: &Value, model_id: Option<&str>, body: &mut Value) -> Result<(), Unsupported> {
    if model_id.is_some_and(|id| !id.contains("anthropic.claude")) {
        return Err(unsupported(
            "reasoning_effort",
            "Bedrock sets reasoning per model family (additionalModelRequestFields); tollgate maps it for Claude models only",
        ));
    }
    let Some(budget) = thinking_budget(effort)? else {
        return Ok(()); // `none`: Claude thinks only when asked to.
    };
    let inference = body
        .as_object_mut()
        .and_then(|b| {
            b.entry("inferenceConfig")
                .or_insert_with(|| json!({}))
                .as_object_mut()
        })
        .ok_or_else(|| unsupported("reasoning_effort", "no inference config"))?;
    match inference.get("maxTokens").and_then(Value::as_u64) {
        Some(max) if max <= budget => {
            return Err(unsupported(
                "max_tokens",
                format!("must exceed the reasoning_effort's thinking budget of {budget} tokens (Claude's thinking counts against it)"),
            ))
        }
        Some(_) => {}
        None => {
            inference.insert("maxTokens".into(), (budget + DEFAULT_MAX_TOKENS).into());
        }
    }
    body["additionalModelRequestFields"] =
        json!({"thinking": {"type": "enabled", "budget_tokens": budget}});
    Ok(())
}

fn body(fields: &Map<String, Value>, messages: &Value) -> Result<Value, Unsupported> {
    for (key, value) in fields {
        if !TRANSLATED.contains(&key.as_str()) && !value.is_null() {
            return Err(unsupported(
                key.clone(),
                "Bedrock's Converse API has no equivalent",
            ));
        }
    }
    let field = |k: &str| fields.get(k).filter(|v| !v.is_null());
    let mut body = Map::new();
    let (system, turns) = turns(messages)?;
    body.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        body.insert("system".into(), Value::Array(system));
    }
    if let Some(n) = field("n") {
        if n.as_u64() != Some(1) {
            return Err(unsupported("n", "Bedrock answers with one choice only"));
        }
    }
    let mut inference = Map::new();
    if let Some(v) = field("max_completion_tokens").or_else(|| field("max_tokens")) {
        let n = v
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| unsupported("max_tokens", "must be a positive integer"))?;
        inference.insert("maxTokens".into(), n.into());
    }
    if let Some(t) = field("temperature") {
        if !t.as_f64().is_some_and(|x| (0.0..=1.0).contains(&x)) {
            return Err(unsupported(
                "temperature",
                "Bedrock takes a temperature between 0 and 1",
            ));
        }
        inference.insert("temperature".into(), t.clone());
    }
    if let Some(p) = field("top_p") {
        inference.insert("topP".into(), p.clone());
    }
    if let Some(stop) = field("stop") {
        let sequences = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
            _ => return Err(unsupported("stop", "must be a string or strings")),
        };
        inference.insert("stopSequences".into(), Value::Array(sequences));
    }
    if !inference.is_empty() {
        body.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(user) = field("user") {
        let user = user
            .as_str()
            .ok_or_else(|| unsupported("user", "must be a string"))?;
        body.insert("requestMetadata".into(), json!({ "user": user }));
    }
    if field("parallel_tool_calls").and_then(Value::as_bool) == Some(false) {
        return Err(unsupported(
            "parallel_tool_calls",
            "Converse cannot forbid parallel tool calls",
        ));
    }
    match (field("tools"), field("tool_choice")) {
        (Some(tools), choice) => {
            let mut config = Map::new();
            config.insert("tools".into(), self::tools(tools)?);
            if let Some(choice) = choice {
                config.insert("toolChoice".into(), tool_choice(choice)?);
            }
            body.insert("toolConfig".into(), Value::Object(config));
        }
        (None, Some(_)) => return Err(unsupported("tool_choice", "requires `tools`")),
        (None, None) => {}
    }
    Ok(Value::Object(body))
}

/// The system blocks and the conversation turns (one role per turn, alternating).
fn turns(messages: &Value) -> Result<(Vec<Value>, Vec<Value>), Unsupported> {
    let Some(messages) = messages.as_array() else {
        return Err(unsupported("messages", "must be an array"));
    };
    let mut system = Vec::new();
    let mut out: Vec<(&'static str, Vec<Value>)> = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        if m.get("name").is_some_and(|n| !n.is_null()) {
            return Err(unsupported(
                at("name"),
                "Converse messages carry no participant names",
            ));
        }
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        let (role, blocks) = match role {
            "system" | "developer" => {
                system.push(json!({"text": plain_text(content, &at("content"))?}));
                continue;
            }
            "user" => ("user", blocks(content, &at("content"))?),
            "assistant" => {
                let mut blocks = match content {
                    Value::Null => Vec::new(),
                    other => self::blocks(other, &at("content"))?,
                };
                for (j, call) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    blocks.push(tool_use(call, &at(&format!("tool_calls[{j}]")))?);
                }
                ("assistant", blocks)
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unsupported(at("tool_call_id"), "required on tool messages"))?;
                let text = plain_text(content, &at("content"))?;
                let result = json!({"toolResult": {"toolUseId": id, "content": [{"text": text}]}});
                ("user", vec![result])
            }
            other => {
                return Err(unsupported(
                    at("role"),
                    format!("role {other:?} has no Converse equivalent"),
                ))
            }
        };
        match out.last_mut() {
            Some((last, content)) if *last == role => content.extend(blocks),
            _ => out.push((role, blocks)),
        }
    }
    let turns = out
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": content}))
        .collect();
    Ok((system, turns))
}

/// User or assistant content as Converse content blocks.
fn blocks(content: &Value, at: &str) -> Result<Vec<Value>, Unsupported> {
    match content {
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"text": p.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => image(p, &format!("{at}[{j}].image_url")),
                _ => Err(unsupported(
                    format!("{at}[{j}].type"),
                    "Converse takes text and image parts only",
                )),
            })
            .collect(),
        _ => Err(unsupported(at, "must be a string or an array of parts")),
    }
}

/// An `image_url` part with a base64 `data:` URL as an image block. The JSON wire
/// form of Converse's `bytes` blob is base64, so the data is passed as it came.
fn image(part: &Value, at: &str) -> Result<Value, Unsupported> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(format!("{at}.url"), "required"))?;
    let Some((media_type, data)) = base64_data_url(url) else {
        return Err(unsupported(
            format!("{at}.url"),
            "Bedrock takes images inline only: send a base64 data: URL",
        ));
    };
    let format = match media_type {
        "image/png" => "png",
        "image/jpeg" | "image/jpg" => "jpeg",
        "image/gif" => "gif",
        "image/webp" => "webp",
        other => {
            return Err(unsupported(
                format!("{at}.url"),
                format!("{other:?} is not an image format Converse takes (png, jpeg, gif, webp)"),
            ))
        }
    };
    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
}

/// An assistant's function call as a `toolUse` block.
fn tool_use(call: &Value, at: &str) -> Result<Value, Unsupported> {
    let (id, name, input) = function_call(call, at, "toolUse")?;
    Ok(json!({"toolUse": {"toolUseId": id, "name": name, "input": input}}))
}

/// Function tools as Converse tool specs.
fn tools(tools: &Value) -> Result<Value, Unsupported> {
    let Some(tools) = tools.as_array() else {
        return Err(unsupported("tools", "must be an array"));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(unsupported(
                    format!("tools[{i}].type"),
                    "only function tools translate",
                ));
            }
            let f = t.get("function").unwrap_or(&Value::Null);
            let mut spec = Map::new();
            spec.insert("name".into(), f.get("name").cloned().unwrap_or_default());
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                spec.insert("description".into(), d.clone());
            }
            let schema = f
                .get("parameters")
                .filter(|p| !p.is_null())
                .cloned()
                .unwrap_or_else(|| json!({"type": "object"}));
            spec.insert("inputSchema".into(), json!({ "json": schema }));
            Ok(json!({ "toolSpec": spec }))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(choice: &Value) -> Result<Value, Unsupported> {
    match choice {
        Value::String(s) => match s.as_str() {
            "auto" => Ok(json!({"auto": {}})),
            "required" => Ok(json!({"any": {}})),
            other => Err(unsupported(
                "tool_choice",
                format!("{other:?} has no Converse equivalent"),
            )),
        },
        c => match c.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Ok(json!({"tool": {"name": name}})),
            None => Err(unsupported("tool_choice", "names no function")),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn converse(request: Value) -> Result<Value, Unsupported> {
        let req = ChatRequest::parse(request.to_string().as_bytes(), None).unwrap();
        converse_body(&req, Some("amazon.nova-pro-v1:0"))
            .map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_chat_with_system_tools_and_images_becomes_a_converse_request() {
        let out = converse(json!({
            "model": "m", "max_tokens": 512, "temperature": 0.5, "top_p": 0.9, "stop": "END",
            "user": "u1", "stream": true, "stream_options": {"include_usage": true},
            "tools": [{"type": "function", "function": {"name": "top_song", "description": "Most popular song",
                "parameters": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}],
            "tool_choice": "required", "parallel_tool_calls": true,
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "developer", "content": [{"type": "text", "text": "Use tools."}]},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4AAQ"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "tooluse_1", "type": "function", "function": {"name": "top_song", "arguments": "{\"sign\":\"WZPZ\"}"}},
                    {"id": "tooluse_2", "type": "function", "function": {"name": "top_song", "arguments": "{\"sign\":\"WKRP\"}"}}]},
                {"role": "tool", "tool_call_id": "tooluse_1", "content": "Elemental Hotel"},
                {"role": "tool", "tool_call_id": "tooluse_2", "content": "Espresso"}
            ]
        }))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "system": [{"text": "Be brief."}, {"text": "Use tools."}],
                "inferenceConfig": {"maxTokens": 512, "temperature": 0.5, "topP": 0.9, "stopSequences": ["END"]},
                "requestMetadata": {"user": "u1"},
                "toolConfig": {
                    "tools": [{"toolSpec": {"name": "top_song", "description": "Most popular song",
                        "inputSchema": {"json": {"type": "object", "properties": {"sign": {"type": "string"}}, "required": ["sign"]}}}}],
                    "toolChoice": {"any": {}}
                },
                "messages": [
                    {"role": "user", "content": [{"text": "What is this?"},
                        {"image": {"format": "jpeg", "source": {"bytes": "/9j/4AAQ"}}}]},
                    {"role": "assistant", "content": [
                        {"toolUse": {"toolUseId": "tooluse_1", "name": "top_song", "input": {"sign": "WZPZ"}}},
                        {"toolUse": {"toolUseId": "tooluse_2", "name": "top_song", "input": {"sign": "WKRP"}}}]},
                    {"role": "user", "content": [
                        {"toolResult": {"toolUseId": "tooluse_1", "content": [{"text": "Elemental Hotel"}]}},
                        {"toolResult": {"toolUseId": "tooluse_2", "content": [{"text": "Espresso"}]}}]}
                ]
            })
        );
    }

    #[test]
    fn a_bare_chat_sends_no_inference_config_and_a_named_tool_is_forced() {
        let out = converse(json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]}))
            .unwrap();
        assert_eq!(
            out,
            json!({"messages": [{"role": "user", "content": [{"text": "hi"}]}]})
        );
        let out = converse(
            json!({"model": "m", "max_completion_tokens": 7, "max_tokens": 9,
            "tools": [{"type": "function", "function": {"name": "f"}}],
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "messages": [{"role": "user", "content": "hi"}]}),
        )
        .unwrap();
        assert_eq!(
            out["inferenceConfig"],
            json!({"maxTokens": 7}),
            "max_completion_tokens wins"
        );
        assert_eq!(
            out["toolConfig"],
            json!({"tools": [{"toolSpec": {"name": "f", "inputSchema": {"json": {"type": "object"}}}}],
                   "toolChoice": {"tool": {"name": "f"}}})
        );
    }

    #[test]
    fn what_has_no_equivalent_is_refused_by_name() {
        let refused = |extra: Value| {
            let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                req[k] = v.clone();
            }
            converse(req).unwrap_err().param
        };
        assert_eq!(refused(json!({"logprobs": true})), "logprobs");
        assert_eq!(
            refused(json!({"response_format": {"type": "json_object"}})),
            "response_format"
        );
        assert_eq!(
            refused(json!({"reasoning_effort": "high"})),
            "reasoning_effort"
        );
        assert_eq!(refused(json!({"n": 2})), "n");
        assert_eq!(refused(json!({"temperature": 1.5})), "temperature");
        assert_eq!(
            refused(json!({"parallel_tool_calls": false})),
            "parallel_tool_calls"
        );
        assert_eq!(
            refused(
                json!({"tools": [{"type": "function", "function": {"name": "f"}}], "tool_choice": "none"})
            ),
            "tool_choice"
        );
        assert_eq!(refused(json!({"tool_choice": "auto"})), "tool_choice");
        assert_eq!(
            refused(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}}]}]})),
            "messages[0].content[0].image_url.url"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "user", "content": [
                {"type": "image_url", "image_url": {"url": "data:image/bmp;base64,Qk0="}}]}]})),
            "messages[0].content[0].image_url.url"
        );
        assert_eq!(
            refused(
                json!({"messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]})
            ),
            "messages[0].content[0].type"
        );
        assert_eq!(
            refused(json!({"messages": [{"role": "user", "name": "bob", "content": "hi"}]})),
            "messages[0].name"
        );
        assert!(
            converse(
                json!({"model": "m", "seed": null, "messages": [{"role": "user", "content": "hi"}]})
            )
            .is_ok(),
            "a null field asks for nothing"
        );
    }

    #[test]
    fn reasoning_effort_is_claudes_thinking_budget_and_refused_for_other_families() {
        let with = |extra: Value, model: &str| {
            let mut req = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
            for (k, v) in extra.as_object().unwrap() {
                req[k] = v.clone();
            }
            let req = ChatRequest::parse(req.to_string().as_bytes(), None).unwrap();
            converse_body(&req, Some(model)).map(|b| serde_json::from_slice::<Value>(&b).unwrap())
        };
        let claude = "us.anthropic.claude-sonnet-4-20250514-v1:0";
        let out = with(
            json!({"reasoning_effort": "medium", "max_tokens": 10000}),
            claude,
        )
        .unwrap();
        assert_eq!(
            out["additionalModelRequestFields"],
            json!({"thinking": {"type": "enabled", "budget_tokens": 8192}})
        );
        assert_eq!(out["inferenceConfig"]["maxTokens"], 10000);
        // No limit given: room for the budget and an answer.
        let out = with(json!({"reasoning_effort": "low"}), claude).unwrap();
        assert_eq!(
            out["inferenceConfig"]["maxTokens"],
            1024 + DEFAULT_MAX_TOKENS
        );
        // `none` asks for no thinking, which is Claude's default.
        let out = with(json!({"reasoning_effort": "none"}), claude).unwrap();
        assert_eq!(out.get("additionalModelRequestFields"), None);
        assert_eq!(
            with(
                json!({"reasoning_effort": "high", "max_tokens": 1000}),
                claude
            )
            .unwrap_err()
            .param,
            "max_tokens"
        );
        assert_eq!(
            with(json!({"reasoning_effort": "extreme"}), claude)
                .unwrap_err()
                .param,
            "reasoning_effort"
        );
        let nova = with(json!({"reasoning_effort": "high"}), "amazon.nova-pro-v1:0").unwrap_err();
        assert_eq!(nova.param, "reasoning_effort");
    }

    #[test]
    fn urls_encode_the_model_id_as_one_segment_as_aws_does() {
        let base = default_base_url("eu-central-1");
        assert_eq!(
            converse_url(&base, "eu.anthropic.claude-3-7-sonnet-20250219-v1:0", false),
            "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-3-7-sonnet-20250219-v1%3A0/converse"
        );
        assert_eq!(
            converse_url(
                "http://127.0.0.1:9/",
                "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.deepseek.r1-v1:0",
                true
            ),
            "http://127.0.0.1:9/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.deepseek.r1-v1%3A0/converse-stream"
        );
    }
}
