//! An OpenAI chat completion request as an Anthropic Messages request, explicitly:
//! every field of the client's body is either translated or refused with the name of
//! the field ([`Unsupported`]), never dropped. The rules (README "Claude"):
//! - `system` and `developer` messages become the top-level `system` text, in order;
//! - user text and images (`image_url`, a `data:` URL or an http(s) URL) become
//!   content blocks; assistant `tool_calls` become `tool_use` blocks and `tool`
//!   messages `tool_result` blocks;
//! - `max_completion_tokens` or `max_tokens` becomes `max_tokens`, which Anthropic
//!   requires: [`DEFAULT_MAX_TOKENS`] when the client gave none;
//! - `stop` → `stop_sequences`, `user` → `metadata.user_id`, function `tools` →
//!   `tools` with `input_schema`, `tool_choice` → `auto`/`any`/`none`/`tool`,
//!   `parallel_tool_calls: false` → `disable_parallel_tool_use`;
//! - `temperature` above 1 (Anthropic's maximum), `n` other than 1, and every field
//!   with no Messages equivalent (`logprobs`, `response_format`, `seed`, penalties, …)
//!   are refused.

use serde_json::{json, Map, Value};

pub use crate::api::error::Unsupported;
use crate::providers::chat_content::{function_call, plain_text};

/// `max_tokens` when the client set no output limit (Anthropic requires one).
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

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

/// The Messages body for `fields` (the client's body without `messages`) and
/// `messages`, served as `upstream_model`.
pub fn messages_body(
    fields: &Map<String, Value>,
    messages: &Value,
    upstream_model: &str,
) -> Result<Map<String, Value>, Unsupported> {
    for (key, value) in fields {
        if !TRANSLATED.contains(&key.as_str()) && !value.is_null() {
            return Err(unsupported(
                key.clone(),
                "Anthropic's Messages API has no equivalent",
            ));
        }
    }
    let mut body = Map::new();
    body.insert("model".into(), upstream_model.into());
    let (system, turns) = turns(messages)?;
    if !system.is_empty() {
        body.insert("system".into(), system.join("\n\n").into());
    }
    body.insert("messages".into(), Value::Array(turns));
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|k| fields.get(*k).filter(|v| !v.is_null()));
    body.insert(
        "max_tokens".into(),
        match max_tokens {
            Some(v) => v
                .as_u64()
                .filter(|n| *n > 0)
                .ok_or_else(|| unsupported("max_tokens", "must be a positive integer"))?
                .into(),
            None => DEFAULT_MAX_TOKENS.into(),
        },
    );
    if let Some(n) = fields.get("n").filter(|v| !v.is_null()) {
        if n.as_u64() != Some(1) {
            return Err(unsupported("n", "Anthropic answers with one choice only"));
        }
    }
    if let Some(t) = fields.get("temperature").filter(|v| !v.is_null()) {
        match t.as_f64() {
            Some(x) if (0.0..=1.0).contains(&x) => {
                body.insert("temperature".into(), t.clone());
            }
            _ => {
                return Err(unsupported(
                    "temperature",
                    "Anthropic takes a temperature between 0 and 1",
                ))
            }
        }
    }
    if let Some(p) = fields.get("top_p").filter(|v| !v.is_null()) {
        body.insert("top_p".into(), p.clone());
    }
    if let Some(stop) = fields.get("stop").filter(|v| !v.is_null()) {
        let sequences = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
            _ => return Err(unsupported("stop", "must be a string or strings")),
        };
        body.insert("stop_sequences".into(), Value::Array(sequences));
    }
    if let Some(user) = fields.get("user").filter(|v| !v.is_null()) {
        body.insert("metadata".into(), json!({ "user_id": user }));
    }
    if fields.get("stream").and_then(Value::as_bool) == Some(true) {
        body.insert("stream".into(), true.into());
    }
    if let Some(tools) = fields.get("tools").filter(|v| !v.is_null()) {
        body.insert("tools".into(), self::tools(tools)?);
    }
    let parallel = fields.get("parallel_tool_calls").and_then(Value::as_bool);
    if let Some(choice) = tool_choice(fields.get("tool_choice"), parallel)? {
        body.insert("tool_choice".into(), choice);
    }
    Ok(body)
}

/// The system text and the conversation turns.
fn turns(messages: &Value) -> Result<(Vec<String>, Vec<Value>), Unsupported> {
    let Some(messages) = messages.as_array() else {
        return Err(unsupported("messages", "must be an array"));
    };
    let mut system = Vec::new();
    let mut out = Vec::with_capacity(messages.len());
    for (i, m) in messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        if m.get("name").is_some_and(|n| !n.is_null()) {
            return Err(unsupported(
                at("name"),
                "Anthropic messages carry no participant names",
            ));
        }
        let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
        let content = m.get("content").unwrap_or(&Value::Null);
        match role {
            "system" | "developer" => system.push(plain_text(content, &at("content"))?),
            "user" => {
                out.push(json!({"role": "user", "content": blocks(content, &at("content"))?}))
            }
            "assistant" => {
                let mut content = match content {
                    Value::Null => Vec::new(),
                    other => blocks(other, &at("content"))?,
                };
                for (j, call) in m
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .enumerate()
                {
                    content.push(tool_use(call, &at(&format!("tool_calls[{j}]")))?);
                }
                out.push(json!({"role": "assistant", "content": content}));
            }
            "tool" => {
                let id = m
                    .get("tool_call_id")
                    .and_then(Value::as_str)
                    .ok_or_else(|| unsupported(at("tool_call_id"), "required on tool messages"))?;
                let text = plain_text(content, &at("content"))?;
                out.push(json!({"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": id, "content": text}
                ]}));
            }
            other => {
                return Err(unsupported(
                    at("role"),
                    format!("role {other:?} has no Messages equivalent"),
                ))
            }
        }
    }
    Ok((system, out))
}

/// User or assistant content as Messages content blocks.
fn blocks(content: &Value, at: &str) -> Result<Vec<Value>, Unsupported> {
    match content {
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => {
                    Ok(json!({"type": "text", "text": p.get("text").cloned().unwrap_or_default()}))
                }
                Some("image_url") => image(p, &format!("{at}[{j}].image_url")),
                _ => Err(unsupported(
                    format!("{at}[{j}].type"),
                    "Anthropic takes text and image parts only",
                )),
            })
            .collect(),
        _ => Err(unsupported(at, "must be a string or an array of parts")),
    }
}

/// An `image_url` part as an image block: a `data:` URL inline, an http(s) URL by URL.
fn image(part: &Value, at: &str) -> Result<Value, Unsupported> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(format!("{at}.url"), "required"))?;
    if let Some(data_url) = url.strip_prefix("data:") {
        let (media_type, data) = data_url
            .split_once(";base64,")
            .ok_or_else(|| unsupported(format!("{at}.url"), "a data URL must be base64"))?;
        return Ok(json!({"type": "image", "source": {
            "type": "base64", "media_type": media_type, "data": data}}));
    }
    if url.starts_with("https://") || url.starts_with("http://") {
        return Ok(json!({"type": "image", "source": {"type": "url", "url": url}}));
    }
    Err(unsupported(
        format!("{at}.url"),
        "must be a data: or http(s) URL",
    ))
}

/// An assistant's function call as a `tool_use` block.
fn tool_use(call: &Value, at: &str) -> Result<Value, Unsupported> {
    let (id, name, input) = function_call(call, at, "tool_use")?;
    Ok(json!({"type": "tool_use", "id": id, "name": name, "input": input}))
}

/// Function tools as Messages tools.
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
            let mut tool = Map::new();
            tool.insert("name".into(), f.get("name").cloned().unwrap_or_default());
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                tool.insert("description".into(), d.clone());
            }
            tool.insert(
                "input_schema".into(),
                f.get("parameters")
                    .filter(|p| !p.is_null())
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            );
            Ok(Value::Object(tool))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

fn tool_choice(
    choice: Option<&Value>,
    parallel: Option<bool>,
) -> Result<Option<Value>, Unsupported> {
    let mut out = match choice.filter(|c| !c.is_null()) {
        None => None,
        Some(Value::String(s)) => Some(match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => json!({"type": "none"}),
            other => {
                return Err(unsupported(
                    "tool_choice",
                    format!("{other:?} has no Messages equivalent"),
                ))
            }
        }),
        Some(c) => match c.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => Some(json!({"type": "tool", "name": name})),
            None => return Err(unsupported("tool_choice", "names no function")),
        },
    };
    if parallel == Some(false) {
        let choice = out.get_or_insert_with(|| json!({"type": "auto"}));
        if let Some(o) = choice.as_object_mut() {
            o.insert("disable_parallel_tool_use".into(), true.into());
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(fields: Value, messages: Value) -> Result<Value, Unsupported> {
        let Value::Object(fields) = fields else {
            panic!()
        };
        messages_body(&fields, &messages, "claude-x").map(Value::Object)
    }

    #[test]
    fn a_chat_with_system_tools_and_images_becomes_a_messages_request() {
        let out = body(
            json!({"model": "m", "max_tokens": 50, "temperature": 0.5, "stop": "END",
                   "user": "u1", "stream": true, "stream_options": {"include_usage": true},
                   "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object", "properties": {}}}}],
                   "tool_choice": "required", "parallel_tool_calls": false}),
            json!([
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "call_1", "content": "42"}
            ]),
        )
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "claude-x", "system": "Be brief.", "max_tokens": 50,
                "temperature": 0.5, "stop_sequences": ["END"], "metadata": {"user_id": "u1"},
                "stream": true,
                "tools": [{"name": "f", "input_schema": {"type": "object", "properties": {}}}],
                "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "What is this?"},
                        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}}]},
                    {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "f", "input": {"a": 1}}]},
                    {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "42"}]}
                ]
            })
        );
    }

    #[test]
    fn max_tokens_defaults_because_anthropic_requires_it() {
        let out = body(
            json!({"model": "m"}),
            json!([{"role": "user", "content": "hi"}]),
        )
        .unwrap();
        assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
        let out = body(
            json!({"max_completion_tokens": 7, "max_tokens": 9}),
            json!([{"role": "user", "content": "hi"}]),
        )
        .unwrap();
        assert_eq!(out["max_tokens"], 7, "max_completion_tokens wins");
    }

    #[test]
    fn what_has_no_equivalent_is_refused_by_name() {
        let user = json!([{"role": "user", "content": "hi"}]);
        let refused = |fields: Value, messages: Value| body(fields, messages).unwrap_err().param;
        assert_eq!(refused(json!({"logprobs": true}), user.clone()), "logprobs");
        assert_eq!(
            refused(
                json!({"response_format": {"type": "json_object"}}),
                user.clone()
            ),
            "response_format"
        );
        assert_eq!(refused(json!({"n": 2}), user.clone()), "n");
        assert_eq!(
            refused(json!({"temperature": 1.5}), user.clone()),
            "temperature"
        );
        assert_eq!(
            refused(
                json!({}),
                json!([{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}])
            ),
            "messages[0].content[0].type"
        );
        assert_eq!(
            refused(
                json!({}),
                json!([{"role": "user", "name": "bob", "content": "hi"}])
            ),
            "messages[0].name"
        );
        assert!(
            body(json!({"seed": null}), user).is_ok(),
            "a null field asks for nothing"
        );
    }
}
