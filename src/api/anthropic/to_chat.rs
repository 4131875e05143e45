//! An Anthropic Messages request as an OpenAI chat completion request, for a Messages
//! client served by a chat-completions upstream (DeepSeek, Azure, GitHub, OpenAI, …).
//! Every field is translated or refused by name, never dropped (README "Claude"):
//! - `system` → a leading `system` message; text and image blocks → content parts;
//!   `tool_use` blocks → assistant `tool_calls`; `tool_result` blocks → `tool`
//!   messages; earlier turns' `thinking` blocks are not sent (chat upstreams refuse
//!   reasoning as input), and `cache_control` marks are not sent (chat upstreams cache
//!   prompt prefixes on their own);
//! - `max_tokens`, `temperature`, `top_p` as they are; `stop_sequences` → `stop`;
//!   `metadata.user_id` → `user`; tools → function tools; `tool_choice` →
//!   `auto`/`required`/`none`/a named function, `disable_parallel_tool_use` →
//!   `parallel_tool_calls: false`; `stream` as it is;
//! - `top_k`, `thinking` (unless disabled), server tools, documents and anything else
//!   with no chat equivalent are refused.

use serde_json::{json, Map, Value};

use super::MessagesRequest;
use crate::api::error::Unsupported;

fn refuse(param: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported::new(param, why)
}

/// Fields translated here (or read by the parse); anything else is refused.
const TRANSLATED: [&str; 12] = [
    "model",
    "max_tokens",
    "messages",
    "system",
    "temperature",
    "top_p",
    "stop_sequences",
    "metadata",
    "tools",
    "tool_choice",
    "stream",
    "thinking",
];

/// The chat completion request's JSON for `req`.
pub fn chat_body(req: &MessagesRequest) -> Result<Vec<u8>, Unsupported> {
    let b = &req.body;
    for (key, value) in b {
        if !TRANSLATED.contains(&key.as_str()) && !value.is_null() {
            return Err(refuse(key.clone(), "chat completions have no equivalent"));
        }
    }
    if let Some(t) = b.get("thinking").filter(|t| !t.is_null()) {
        if t.get("type").and_then(Value::as_str) != Some("disabled") {
            return Err(refuse(
                "thinking",
                "a thinking budget has no chat-completions equivalent (reasoning models think on their own)",
            ));
        }
    }
    let messages: Value = serde_json::from_str(req.messages_json().get())
        .map_err(|_| refuse("messages", "must be an array of messages"))?;
    let mut out = Map::new();
    out.insert("model".into(), req.model.clone().into());
    let mut chat = Vec::new();
    if let Some(system) = b.get("system").filter(|s| !s.is_null()) {
        chat.push(json!({"role": "system", "content": text_of(system, "system")?}));
    }
    for (i, m) in messages.as_array().into_iter().flatten().enumerate() {
        turn(m, i, &mut chat)?;
    }
    out.insert("messages".into(), Value::Array(chat));
    out.insert("max_tokens".into(), req.max_tokens.into());
    for key in ["temperature", "top_p"] {
        if let Some(v) = b.get(key).filter(|v| !v.is_null()) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(stop) = b.get("stop_sequences").filter(|v| !v.is_null()) {
        out.insert("stop".into(), stop.clone());
    }
    if let Some(meta) = b.get("metadata").and_then(Value::as_object) {
        for (key, value) in meta {
            match key.as_str() {
                "user_id" => {
                    out.insert("user".into(), value.clone());
                }
                _ => return Err(refuse(format!("metadata.{key}"), "has no chat equivalent")),
            }
        }
    }
    if let Some(tools) = b.get("tools").filter(|v| !v.is_null()) {
        out.insert("tools".into(), self::tools(tools)?);
    }
    if let Some(choice) = b.get("tool_choice").filter(|v| !v.is_null()) {
        let (choice, parallel) = tool_choice(choice)?;
        out.insert("tool_choice".into(), choice);
        if parallel == Some(false) {
            out.insert("parallel_tool_calls".into(), false.into());
        }
    }
    if req.is_streaming {
        out.insert("stream".into(), true.into());
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| refuse("messages", e.to_string()))
}

/// Text of `system` or a `tool_result`'s content: a string or text blocks.
fn text_of(content: &Value, at: &str) -> Result<String, Unsupported> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .enumerate()
            .map(
                |(j, block)| match block.get("type").and_then(Value::as_str) {
                    Some("text") => Ok(block
                        .get("text")
                        .and_then(Value::as_str)
                        .unwrap_or_default()),
                    _ => Err(refuse(
                        format!("{at}[{j}].type"),
                        "only text blocks translate here",
                    )),
                },
            )
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.join("\n")),
        _ => Err(refuse(at, "must be text")),
    }
}

/// One Messages turn as one or more chat messages.
fn turn(m: &Value, i: usize, chat: &mut Vec<Value>) -> Result<(), Unsupported> {
    let role = m.get("role").and_then(Value::as_str).unwrap_or_default();
    let at = format!("messages[{i}].content");
    let blocks = match m.get("content") {
        Some(Value::String(s)) => {
            chat.push(json!({"role": role, "content": s}));
            return Ok(());
        }
        Some(Value::Array(blocks)) => blocks,
        _ => return Err(refuse(at, "must be a string or content blocks")),
    };
    let mut parts = Vec::new();
    let mut calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let here = format!("{at}[{j}]");
        match block.get("type").and_then(Value::as_str) {
            Some("text") => parts.push(json!({"type": "text",
                "text": block.get("text").cloned().unwrap_or_default()})),
            Some("image") if role == "user" => parts.push(image(block, &here)?),
            Some("tool_use") if role == "assistant" => calls.push(json!({
                "id": block.get("id"), "type": "function",
                "function": {"name": block.get("name"),
                    "arguments": block.get("input").map_or_else(|| "{}".to_owned(), Value::to_string)},
            })),
            Some("tool_result") if role == "user" => {
                let content = block.get("content").unwrap_or(&Value::Null);
                let text = match content {
                    Value::Null => String::new(),
                    other => text_of(other, &format!("{here}.content"))?,
                };
                chat.push(json!({"role": "tool",
                    "tool_call_id": block.get("tool_use_id"), "content": text}));
            }
            // Earlier turns' reasoning is not input for a chat upstream.
            Some("thinking" | "redacted_thinking") if role == "assistant" => {}
            Some(other) => {
                return Err(refuse(
                    format!("{here}.type"),
                    format!("a {other:?} block in a {role:?} turn has no chat equivalent"),
                ))
            }
            None => return Err(refuse(format!("{here}.type"), "required")),
        }
    }
    match role {
        "user" if !parts.is_empty() => chat.push(json!({"role": "user", "content": parts})),
        "user" => {}
        "assistant" => {
            let text: String = parts
                .iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect();
            let mut reply =
                json!({"role": "assistant", "content": (!text.is_empty()).then_some(text)});
            if !calls.is_empty() {
                reply["tool_calls"] = Value::Array(calls);
            }
            chat.push(reply);
        }
        other => {
            return Err(refuse(
                format!("messages[{i}].role"),
                format!("{other:?} is not a Messages role"),
            ))
        }
    }
    Ok(())
}

/// An image block as an `image_url` part.
fn image(block: &Value, at: &str) -> Result<Value, Unsupported> {
    let source = block.get("source").unwrap_or(&Value::Null);
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => format!(
            "data:{};base64,{}",
            source
                .get("media_type")
                .and_then(Value::as_str)
                .unwrap_or("image/png"),
            source
                .get("data")
                .and_then(Value::as_str)
                .unwrap_or_default()
        ),
        Some("url") => source
            .get("url")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        _ => {
            return Err(refuse(
                format!("{at}.source.type"),
                "only base64 and url images translate",
            ))
        }
    };
    Ok(json!({"type": "image_url", "image_url": {"url": url}}))
}

/// Client tools as function tools; server tools (typed, e.g. web search) are refused.
fn tools(tools: &Value) -> Result<Value, Unsupported> {
    let Some(tools) = tools.as_array() else {
        return Err(refuse("tools", "must be an array"));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type")
                .and_then(Value::as_str)
                .is_some_and(|k| k != "custom")
            {
                return Err(refuse(
                    format!("tools[{i}].type"),
                    "server tools have no chat equivalent",
                ));
            }
            let mut f = Map::new();
            f.insert("name".into(), t.get("name").cloned().unwrap_or_default());
            if let Some(d) = t.get("description").filter(|d| !d.is_null()) {
                f.insert("description".into(), d.clone());
            }
            f.insert(
                "parameters".into(),
                t.get("input_schema")
                    .cloned()
                    .unwrap_or_else(|| json!({"type": "object"})),
            );
            Ok(json!({"type": "function", "function": f}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `tool_choice` and whether parallel calls were allowed.
fn tool_choice(choice: &Value) -> Result<(Value, Option<bool>), Unsupported> {
    let parallel = choice
        .get("disable_parallel_tool_use")
        .and_then(Value::as_bool)
        .map(|disabled| !disabled);
    let out = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => json!({"type": "function", "function": {"name": choice.get("name")}}),
        _ => {
            return Err(refuse(
                "tool_choice.type",
                "must be auto, any, none or tool",
            ))
        }
    };
    Ok((out, parallel))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Value, Unsupported> {
        let req = MessagesRequest::parse(body.to_string().as_bytes()).unwrap();
        chat_body(&req).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_messages_conversation_with_tools_becomes_a_chat_request() {
        let out = chat(json!({
            "model": "r1", "max_tokens": 200, "system": [{"type": "text", "text": "Be brief.",
                "cache_control": {"type": "ephemeral"}}],
            "stop_sequences": ["END"], "metadata": {"user_id": "u1"}, "stream": true,
            "tools": [{"name": "f", "input_schema": {"type": "object"}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
            "messages": [
                {"role": "user", "content": "What is 6*7?"},
                {"role": "assistant", "content": [{"type": "thinking", "thinking": "hmm", "signature": "s"},
                    {"type": "tool_use", "id": "toolu_1", "name": "f", "input": {"a": 6}}]},
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": "42"},
                    {"type": "text", "text": "So?"}]}
            ]}))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "r1", "max_tokens": 200, "stop": ["END"], "user": "u1", "stream": true,
                "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
                "tool_choice": "required", "parallel_tool_calls": false,
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": "What is 6*7?"},
                    {"role": "assistant", "content": null, "tool_calls": [{"id": "toolu_1", "type": "function",
                        "function": {"name": "f", "arguments": "{\"a\":6}"}}]},
                    {"role": "tool", "tool_call_id": "toolu_1", "content": "42"},
                    {"role": "user", "content": [{"type": "text", "text": "So?"}]}
                ]
            })
        );
    }

    #[test]
    fn what_has_no_chat_equivalent_is_refused_by_name() {
        let base = |extra: Value| {
            let mut b = json!({"model": "m", "max_tokens": 10,
                "messages": [{"role": "user", "content": "hi"}]});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            chat(b).unwrap_err().param
        };
        assert_eq!(base(json!({"top_k": 5})), "top_k");
        assert_eq!(
            base(json!({"thinking": {"type": "enabled", "budget_tokens": 1024}})),
            "thinking"
        );
        assert_eq!(
            base(json!({"tools": [{"type": "web_search_20250305", "name": "web_search"}]})),
            "tools[0].type"
        );
        assert_eq!(
            base(
                json!({"messages": [{"role": "user", "content": [{"type": "document", "source": {}}]}]})
            ),
            "messages[0].content[0].type"
        );
        assert!(chat(
            json!({"model": "m", "max_tokens": 10, "thinking": {"type": "disabled"},
            "messages": [{"role": "user", "content": "hi"}]})
        )
        .is_ok());
    }
}
