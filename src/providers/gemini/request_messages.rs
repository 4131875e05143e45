//! OpenAI chat `messages` as Gemini `contents` and system text (the rules are in
//! [`super::request`]'s header). Split from it to keep each file one concern: this one
//! walks the conversation, that one the request's other fields.

use serde_json::{json, Value};

use super::request::Unsupported;
use crate::providers::chat_content::{base64_data_url, plain_text};

fn unsupported(param: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported::new(param, why)
}

/// The system texts and the `contents` turns.
pub(super) fn contents(messages: &Value) -> Result<(Vec<String>, Vec<Value>), Unsupported> {
    let Some(messages) = messages.as_array() else {
        return Err(unsupported("messages", "must be an array"));
    };
    let mut system = Vec::new();
    let mut out: Vec<Value> = Vec::with_capacity(messages.len());
    // Function names by call id: a `tool` message names only the call it answers.
    let mut calls: Vec<(String, String)> = Vec::new();
    for (i, m) in messages.iter().enumerate() {
        let at = |field: &str| format!("messages[{i}].{field}");
        if m.get("name").is_some_and(|n| !n.is_null()) {
            return Err(unsupported(
                at("name"),
                "Gemini contents carry no participant names",
            ));
        }
        let content = m.get("content").unwrap_or(&Value::Null);
        match m.get("role").and_then(Value::as_str).unwrap_or_default() {
            "system" | "developer" => system.push(plain_text(content, &at("content"))?),
            "user" => out.push(json!({"role": "user", "parts": parts(content, &at("content"))?})),
            "assistant" => {
                let mut parts = match content {
                    Value::Null => Vec::new(),
                    other => self::parts(other, &at("content"))?,
                };
                let tool_calls = m.get("tool_calls").and_then(Value::as_array);
                for (j, call) in tool_calls.into_iter().flatten().enumerate() {
                    let at = at(&format!("tool_calls[{j}]"));
                    let (id, part) = function_call(call, &at)?;
                    if let Some(name) = part.pointer("/functionCall/name").and_then(Value::as_str) {
                        calls.push((id, name.to_owned()));
                    }
                    parts.push(part);
                }
                out.push(json!({"role": "model", "parts": parts}));
            }
            "tool" => {
                let part = function_response(m, content, &calls, &at)?;
                // Parallel calls are answered in one turn, all responses together.
                match out.last_mut() {
                    Some(last) if is_function_responses(last) => {
                        if let Some(parts) = last.get_mut("parts").and_then(Value::as_array_mut) {
                            parts.push(part);
                        }
                    }
                    _ => out.push(json!({"role": "user", "parts": [part]})),
                }
            }
            other => {
                return Err(unsupported(
                    at("role"),
                    format!("role {other:?} has no Gemini equivalent"),
                ))
            }
        }
    }
    Ok((system, out))
}

fn is_function_responses(turn: &Value) -> bool {
    turn.get("parts")
        .and_then(Value::as_array)
        .is_some_and(|p| p.iter().all(|p| p.get("functionResponse").is_some()))
}

/// User or assistant content as Gemini parts.
fn parts(content: &Value, at: &str) -> Result<Vec<Value>, Unsupported> {
    match content {
        Value::String(s) => Ok(vec![json!({"text": s})]),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"text": p.get("text").cloned().unwrap_or_default()})),
                Some("image_url") => image(p, &format!("{at}[{j}].image_url.url")),
                _ => Err(unsupported(
                    format!("{at}[{j}].type"),
                    "Gemini is sent text and image parts only",
                )),
            })
            .collect(),
        _ => Err(unsupported(at, "must be a string or an array of parts")),
    }
}

/// A `data:` image URL as an `inlineData` part.
fn image(part: &Value, at: &str) -> Result<Value, Unsupported> {
    let url = part
        .pointer("/image_url/url")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(at, "required"))?;
    let Some((mime_type, data)) = base64_data_url(url) else {
        return Err(unsupported(
            at,
            "Gemini takes images inline: send a base64 data: URL",
        ));
    };
    Ok(json!({"inlineData": {"mimeType": mime_type, "data": data}}))
}

/// An assistant's function call as a `functionCall` part, and the call's id.
fn function_call(call: &Value, at: &str) -> Result<(String, Value), Unsupported> {
    if call.get("type").and_then(Value::as_str) != Some("function") {
        return Err(unsupported(
            format!("{at}.type"),
            "only function calls translate",
        ));
    }
    let id = call.get("id").and_then(Value::as_str).unwrap_or_default();
    let name = call
        .pointer("/function/name")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(format!("{at}.function.name"), "required"))?;
    let arguments = call
        .pointer("/function/arguments")
        .and_then(Value::as_str)
        .unwrap_or("{}");
    let args: Value = serde_json::from_str(arguments)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            unsupported(
                format!("{at}.function.arguments"),
                "must be a JSON object to become functionCall args",
            )
        })?;
    Ok((
        id.to_owned(),
        json!({"functionCall": {"name": name, "args": args}}),
    ))
}

/// A `tool` message as a `functionResponse` part. Gemini's `response` is an object:
/// a JSON object result is sent as it is, anything else as `{"output": text}` (the
/// key Vertex's `FunctionResponse` reference names for a function's output).
fn function_response(
    m: &Value,
    content: &Value,
    calls: &[(String, String)],
    at: &impl Fn(&str) -> String,
) -> Result<Value, Unsupported> {
    let id = m
        .get("tool_call_id")
        .and_then(Value::as_str)
        .ok_or_else(|| unsupported(at("tool_call_id"), "required on tool messages"))?;
    let name = calls
        .iter()
        .rev()
        .find(|(call, _)| call == id)
        .map(|(_, name)| name.as_str())
        .ok_or_else(|| {
            unsupported(
                at("tool_call_id"),
                "names no earlier assistant tool call (Gemini needs the function's name)",
            )
        })?;
    let text = plain_text(content, &at("content"))?;
    let response = serde_json::from_str::<Value>(&text)
        .ok()
        .filter(Value::is_object)
        .unwrap_or_else(|| json!({"output": text}));
    Ok(json!({"functionResponse": {"name": name, "response": response}}))
}
