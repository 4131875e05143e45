//! A Responses request as an OpenAI chat completion request, for a Responses client
//! served by a chat-completions upstream that has no Responses API of its own
//! (DeepSeek, GitHub Models, Azure AI Foundry, …; OpenAI and Azure OpenAI get the
//! request natively instead). Every
//! field is translated or refused by name, never dropped (README "Responses API"):
//! - `instructions` → a leading `system` message; `input` as a string → one `user`
//!   message; input messages → chat messages (`developer` → `system`, `input_text`
//!   and `output_text` parts → text, `input_image` → an `image_url` part);
//!   `function_call` items → assistant `tool_calls` (consecutive calls, and the
//!   assistant text before them, in one assistant message); `function_call_output`
//!   items → `tool` messages; earlier turns' `reasoning` items are not sent (chat
//!   upstreams refuse reasoning as input);
//! - `max_output_tokens` → `max_tokens` (sent as `max_completion_tokens` to o-series
//!   models by their adapters); `temperature`, `top_p`, `user`,
//!   `parallel_tool_calls` as they are; `reasoning.effort` → `reasoning_effort`
//!   (offers whose upstream does not take it are not tried); function tools →
//!   chat's `{type: "function", function: {...}}`; `tool_choice` likewise;
//!   `text.format` → `response_format`; `stream` as it is;
//! - `store: true` and `previous_response_id` are refused (tollgate keeps no
//!   responses), as are non-empty `metadata` and `include`, built-in tools and
//!   anything else with no chat equivalent; an offer that serves the Responses API
//!   natively is not bound by these refusals.

use serde_json::{json, Map, Value};

use super::ResponsesRequest;
use crate::api::error::Unsupported;

fn refuse(param: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported::new(param, why)
}

/// Fields translated here (or read by the parse); anything else is refused.
const TRANSLATED: [&str; 18] = [
    "model",
    "input",
    "instructions",
    "max_output_tokens",
    "temperature",
    "top_p",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "stream",
    "reasoning",
    "store",
    "previous_response_id",
    "user",
    "metadata",
    "include",
    "text",
    "truncation",
];

const STATELESS: &str =
    "tollgate is stateless and keeps no responses; send the whole conversation in `input`";

/// The chat completion request's JSON for `req`.
pub fn chat_body(req: &ResponsesRequest) -> Result<Vec<u8>, Unsupported> {
    let b = &req.body;
    let set = |key: &str| b.get(key).filter(|v| !v.is_null());
    for (key, value) in b {
        if !TRANSLATED.contains(&key.as_str()) && !value.is_null() {
            return Err(refuse(key.clone(), "chat completions have no equivalent"));
        }
    }
    if set("store").is_some_and(|s| s != &Value::Bool(false)) {
        return Err(refuse("store", STATELESS));
    }
    if set("previous_response_id").is_some() {
        return Err(refuse("previous_response_id", STATELESS));
    }
    if set("metadata").is_some_and(|m| m.as_object().is_none_or(|m| !m.is_empty())) {
        return Err(refuse(
            "metadata",
            "metadata labels a stored response; tollgate stores none",
        ));
    }
    if set("include").is_some_and(|i| i.as_array().is_none_or(|i| !i.is_empty())) {
        return Err(refuse("include", "chat completions have no equivalent"));
    }
    if set("truncation").is_some_and(|t| t != "disabled") {
        return Err(refuse("truncation", "only \"disabled\" translates"));
    }
    let mut out = Map::new();
    out.insert("model".into(), req.model.clone().into());
    let mut chat = Vec::new();
    if let Some(instructions) = set("instructions") {
        let text = instructions
            .as_str()
            .ok_or_else(|| refuse("instructions", "only a string translates"))?;
        chat.push(json!({"role": "system", "content": text}));
    }
    match b.get("input") {
        Some(Value::String(s)) => chat.push(json!({"role": "user", "content": s})),
        Some(Value::Array(items)) => {
            for (i, item) in items.iter().enumerate() {
                input_item(item, i, &mut chat)?;
            }
        }
        _ => return Err(refuse("input", "must be a string or an array of items")),
    }
    out.insert("messages".into(), Value::Array(chat));
    if let Some(n) = req.max_output_tokens {
        out.insert("max_tokens".into(), n.into());
    }
    for key in ["temperature", "top_p", "user", "parallel_tool_calls"] {
        if let Some(v) = set(key) {
            out.insert(key.into(), v.clone());
        }
    }
    if let Some(reasoning) = set("reasoning") {
        if let Some(effort) = self::reasoning(reasoning)? {
            out.insert("reasoning_effort".into(), effort);
        }
    }
    if let Some(tools) = set("tools") {
        out.insert("tools".into(), self::tools(tools)?);
    }
    if let Some(choice) = set("tool_choice") {
        out.insert("tool_choice".into(), tool_choice(choice)?);
    }
    if let Some(format) = set("text") {
        if let Some(format) = response_format(format)? {
            out.insert("response_format".into(), format);
        }
    }
    if req.is_streaming {
        out.insert("stream".into(), true.into());
    }
    serde_json::to_vec(&Value::Object(out)).map_err(|e| refuse("input", e.to_string()))
}

/// One input item as chat messages, appended to `chat`.
fn input_item(item: &Value, i: usize, chat: &mut Vec<Value>) -> Result<(), Unsupported> {
    let at = format!("input[{i}]");
    // An item with a role and no type is a message (OpenAI's "easy input message").
    let kind = item
        .get("type")
        .and_then(Value::as_str)
        .or_else(|| item.get("role").map(|_| "message"));
    match kind {
        Some("message") => message(item, &at, chat),
        Some("function_call") => {
            let call = json!({
                "id": item.get("call_id"), "type": "function",
                "function": {"name": item.get("name"),
                    "arguments": item.get("arguments").and_then(Value::as_str).unwrap_or("{}")},
            });
            // Joined to the assistant turn just before it, as chat has it.
            match chat.last_mut() {
                Some(last) if last["role"] == "assistant" => {
                    let calls = last
                        .as_object_mut()
                        .map(|m| m.entry("tool_calls").or_insert_with(|| json!([])));
                    if let Some(Value::Array(calls)) = calls {
                        calls.push(call);
                    }
                }
                _ => chat.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
            }
            Ok(())
        }
        Some("function_call_output") => {
            let output = match item.get("output") {
                Some(Value::String(s)) => s.clone(),
                Some(Value::Array(parts)) => texts(parts, &format!("{at}.output"))?,
                _ => return Err(refuse(format!("{at}.output"), "must be text")),
            };
            chat.push(
                json!({"role": "tool", "tool_call_id": item.get("call_id"), "content": output}),
            );
            Ok(())
        }
        // Earlier turns' reasoning is not input for a chat upstream.
        Some("reasoning") => Ok(()),
        Some(other) => Err(refuse(
            format!("{at}.type"),
            format!("a {other:?} item has no chat equivalent"),
        )),
        None => Err(refuse(format!("{at}.type"), "required")),
    }
}

/// An input message as a chat message.
fn message(item: &Value, at: &str, chat: &mut Vec<Value>) -> Result<(), Unsupported> {
    let role = match item.get("role").and_then(Value::as_str) {
        Some(r @ ("user" | "assistant" | "system")) => r,
        // Chat-completions upstreams other than OpenAI's know only `system`.
        Some("developer") => "system",
        _ => {
            return Err(refuse(
                format!("{at}.role"),
                "must be user, assistant, system or developer",
            ))
        }
    };
    let content = match item.get("content") {
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(parts)) if role == "user" => {
            let parts = parts
                .iter()
                .enumerate()
                .map(|(j, p)| user_part(p, &format!("{at}.content[{j}]")))
                .collect::<Result<Vec<_>, _>>()?;
            Value::Array(parts)
        }
        Some(Value::Array(parts)) => Value::String(texts(parts, &format!("{at}.content"))?),
        _ => {
            return Err(refuse(
                format!("{at}.content"),
                "must be a string or content parts",
            ))
        }
    };
    chat.push(json!({"role": role, "content": content}));
    Ok(())
}

/// A user's content part as a chat content part.
fn user_part(part: &Value, at: &str) -> Result<Value, Unsupported> {
    match part.get("type").and_then(Value::as_str) {
        Some("input_text") => Ok(json!({"type": "text", "text": part.get("text")})),
        Some("input_image") => {
            let Some(url) = part.get("image_url").and_then(Value::as_str) else {
                return Err(refuse(
                    format!("{at}.image_url"),
                    "only images given by URL or data URL translate (not file_id)",
                ));
            };
            let mut image = Map::new();
            image.insert("url".into(), url.into());
            if let Some(detail) = part.get("detail").filter(|d| !d.is_null()) {
                image.insert("detail".into(), detail.clone());
            }
            Ok(json!({"type": "image_url", "image_url": image}))
        }
        _ => Err(refuse(
            format!("{at}.type"),
            "only input_text and input_image parts translate",
        )),
    }
}

/// Text parts (`input_text`, `output_text`) joined: a system, assistant or tool text.
fn texts(parts: &[Value], at: &str) -> Result<String, Unsupported> {
    parts
        .iter()
        .enumerate()
        .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
            Some("input_text" | "output_text") => {
                Ok(p.get("text").and_then(Value::as_str).unwrap_or_default())
            }
            _ => Err(refuse(
                format!("{at}[{j}].type"),
                "only text parts translate here",
            )),
        })
        .collect::<Result<Vec<_>, _>>()
        .map(|parts| parts.concat())
}

/// `reasoning.effort` as chat's `reasoning_effort`; a summary cannot be asked of a
/// chat upstream.
fn reasoning(reasoning: &Value) -> Result<Option<Value>, Unsupported> {
    let Some(r) = reasoning.as_object() else {
        return Err(refuse("reasoning", "must be an object"));
    };
    for (key, value) in r {
        match key.as_str() {
            "effort" => {}
            _ if value.is_null() => {}
            _ => {
                return Err(refuse(
                    format!("reasoning.{key}"),
                    "chat completions have no equivalent",
                ))
            }
        }
    }
    Ok(r.get("effort").filter(|e| !e.is_null()).cloned())
}

/// Function tools flattened to chat's shape; built-in tools (web search, file search,
/// …) are refused.
fn tools(tools: &Value) -> Result<Value, Unsupported> {
    let Some(tools) = tools.as_array() else {
        return Err(refuse("tools", "must be an array"));
    };
    tools
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if t.get("type").and_then(Value::as_str) != Some("function") {
                return Err(refuse(
                    format!("tools[{i}].type"),
                    "only function tools have a chat equivalent",
                ));
            }
            let mut f = Map::new();
            for key in ["name", "description", "parameters", "strict"] {
                if let Some(v) = t.get(key).filter(|v| !v.is_null()) {
                    f.insert(key.into(), v.clone());
                }
            }
            Ok(json!({"type": "function", "function": f}))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Value::Array)
}

/// `tool_choice`: the modes as they are, a named function in chat's shape.
fn tool_choice(choice: &Value) -> Result<Value, Unsupported> {
    match choice {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => {
            Ok(choice.clone())
        }
        Value::Object(c) if c.get("type").and_then(Value::as_str) == Some("function") => {
            Ok(json!({"type": "function", "function": {"name": c.get("name")}}))
        }
        _ => Err(refuse(
            "tool_choice",
            "must be auto, none, required or a function",
        )),
    }
}

/// `text.format` as chat's `response_format` (`None` for plain text).
fn response_format(text: &Value) -> Result<Option<Value>, Unsupported> {
    if let Some((key, _)) = text
        .as_object()
        .into_iter()
        .flatten()
        .find(|(k, v)| *k != "format" && !v.is_null())
    {
        return Err(refuse(
            format!("text.{key}"),
            "chat completions have no equivalent",
        ));
    }
    let Some(format) = text.get("format").filter(|f| !f.is_null()) else {
        return Ok(None);
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            for key in ["name", "description", "schema", "strict"] {
                if let Some(v) = format.get(key).filter(|v| !v.is_null()) {
                    schema.insert(key.into(), v.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(refuse(
            "text.format.type",
            "must be text, json_object or json_schema",
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chat(body: Value) -> Result<Value, Unsupported> {
        let req = ResponsesRequest::parse(body.to_string().as_bytes()).unwrap();
        chat_body(&req).map(|b| serde_json::from_slice(&b).unwrap())
    }

    #[test]
    fn a_responses_conversation_with_tools_becomes_a_chat_request() {
        let out = chat(json!({
        "model": "r1", "instructions": "Be brief.", "max_output_tokens": 200,
        "stream": true, "store": false, "user": "u1", "reasoning": {"effort": "low"},
        "tools": [{"type": "function", "name": "f", "description": "adds",
            "parameters": {"type": "object"}, "strict": true}],
        "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "n", "schema": {"type": "object"}}},
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "What is 6*7?"},
                {"type": "input_image", "image_url": "https://x/y.png", "detail": "low"}]},
            {"type": "reasoning", "id": "rs_1", "summary": []},
            {"type": "message", "role": "assistant",
                "content": [{"type": "output_text", "text": "Let me check."}]},
            {"type": "function_call", "call_id": "call_1", "name": "f", "arguments": "{\"a\":6}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "42"},
            {"role": "developer", "content": "Answer in words."}
        ]}))
        .unwrap();
        assert_eq!(
            out,
            json!({
                "model": "r1", "max_tokens": 200, "user": "u1", "stream": true,
                "reasoning_effort": "low",
                "tools": [{"type": "function", "function": {"name": "f", "description": "adds",
                    "parameters": {"type": "object"}, "strict": true}}],
                "tool_choice": {"type": "function", "function": {"name": "f"}},
                "response_format": {"type": "json_schema",
                    "json_schema": {"name": "n", "schema": {"type": "object"}}},
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    {"role": "user", "content": [{"type": "text", "text": "What is 6*7?"},
                        {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "low"}}]},
                    {"role": "assistant", "content": "Let me check.", "tool_calls": [{"id": "call_1",
                        "type": "function", "function": {"name": "f", "arguments": "{\"a\":6}"}}]},
                    {"role": "tool", "tool_call_id": "call_1", "content": "42"},
                    {"role": "system", "content": "Answer in words."}
                ]
            })
        );
    }

    #[test]
    fn what_has_no_chat_equivalent_is_refused_by_name() {
        let base = |extra: Value| {
            let mut b = json!({"model": "m", "input": "hi"});
            b.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            chat(b).unwrap_err().param
        };
        assert_eq!(base(json!({"store": true})), "store");
        assert_eq!(
            base(json!({"previous_response_id": "resp_1"})),
            "previous_response_id"
        );
        assert_eq!(base(json!({"background": true})), "background");
        assert_eq!(base(json!({"metadata": {"k": "v"}})), "metadata");
        assert_eq!(
            base(json!({"reasoning": {"effort": "low", "summary": "auto"}})),
            "reasoning.summary"
        );
        assert_eq!(
            base(json!({"tools": [{"type": "web_search"}]})),
            "tools[0].type"
        );
        assert_eq!(
            base(json!({"input": [{"type": "file_search_call", "id": "x"}]})),
            "input[0].type"
        );
        assert_eq!(
            base(
                json!({"input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]})
            ),
            "input[0].content[0].type"
        );
        assert!(chat(json!({"model": "m", "input": "hi", "store": false, "metadata": {}})).is_ok());
    }
}
