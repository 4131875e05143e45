//! An OpenAI chat completion request as a Gemini `generateContent` body (the same body
//! on the Gemini API and on Vertex AI; the model is named in the URL, not the body).
//! Every field of the client's body is translated or refused by name ([`Unsupported`]),
//! never dropped. The rules, against Google's `generateContent` reference
//! (ai.google.dev/api/generate-content, ai.google.dev/api/caching#Content):
//! - `system`/`developer` messages become `systemInstruction`; user and assistant
//!   messages become `contents` with roles `user` and `model`;
//! - text parts are `text` parts, `data:` image URLs `inlineData` (Gemini fetches no
//!   http(s) image URL given inline, so those are refused);
//! - assistant `tool_calls` become `functionCall` parts, and `tool` messages
//!   `functionResponse` parts (named by the call they answer: Gemini matches responses
//!   to calls by function name), consecutive ones in one `user` turn as Gemini expects
//!   for parallel calls;
//! - `tools` become `functionDeclarations` (the schema as `parametersJsonSchema`, which
//!   takes JSON Schema as OpenAI clients write it; `parameters` takes only an OpenAPI
//!   subset) and `tool_choice` the `functionCallingConfig` mode;
//! - `generationConfig` takes the output limit, sampling, stop sequences, `n`
//!   (`candidateCount`), seed, penalties, `response_format` and `reasoning_effort`
//!   (a `thinkingConfig`, see [`thinking_config`]).

use bytes::Bytes;
use serde_json::{json, Map, Value};

pub use crate::api::error::Unsupported;
use crate::api::openai::ChatRequest;

fn unsupported(param: impl Into<String>, why: impl Into<String>) -> Unsupported {
    Unsupported::new(param, why)
}

/// Fields read elsewhere or handled here; anything else is refused.
const TRANSLATED: [&str; 17] = [
    "model",
    "stream",
    "stream_options",
    "max_tokens",
    "max_completion_tokens",
    "temperature",
    "top_p",
    "stop",
    "n",
    "seed",
    "presence_penalty",
    "frequency_penalty",
    "response_format",
    "reasoning_effort",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
];

/// The `generateContent` body for `req`.
pub fn generate_content_body(req: &ChatRequest) -> Result<Bytes, Unsupported> {
    let messages: Value = serde_json::from_str(req.messages_json().get())
        .map_err(|_| unsupported("messages", "must be an array of messages"))?;
    let body = body(&req.body, &messages)?;
    serde_json::to_vec(&body)
        .map(Bytes::from)
        .map_err(|e| unsupported("messages", e.to_string()))
}

/// The body for `fields` (the client's body without `messages`) and `messages`.
fn body(fields: &Map<String, Value>, messages: &Value) -> Result<Value, Unsupported> {
    for (key, value) in fields {
        if !TRANSLATED.contains(&key.as_str()) && !value.is_null() {
            return Err(unsupported(key.clone(), "Gemini has no equivalent"));
        }
    }
    let field = |k: &str| fields.get(k).filter(|v| !v.is_null());
    let (system, contents) = super::request_messages::contents(messages)?;
    let mut body = Map::new();
    body.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        let parts: Vec<Value> = system.into_iter().map(|t| json!({"text": t})).collect();
        body.insert("systemInstruction".into(), json!({"parts": parts}));
    }
    if let Some(tools) = field("tools") {
        body.insert("tools".into(), self::tools(tools)?);
    }
    if let Some(choice) = field("tool_choice") {
        body.insert("toolConfig".into(), tool_config(choice)?);
    }
    if field("parallel_tool_calls").is_some_and(|p| p.as_bool() != Some(true)) {
        return Err(unsupported(
            "parallel_tool_calls",
            "Gemini cannot be told to call one function at a time",
        ));
    }
    let streaming = field("stream").and_then(Value::as_bool) == Some(true);
    let config = generation_config(&field, streaming)?;
    if !config.is_empty() {
        body.insert("generationConfig".into(), Value::Object(config));
    }
    Ok(Value::Object(body))
}

/// `generationConfig` from the client's sampling and output fields.
fn generation_config<'a>(
    field: &impl Fn(&str) -> Option<&'a Value>,
    streaming: bool,
) -> Result<Map<String, Value>, Unsupported> {
    let mut config = Map::new();
    let max = field("max_completion_tokens").or_else(|| field("max_tokens"));
    if let Some(max) = max {
        let n = max
            .as_u64()
            .filter(|n| *n > 0)
            .ok_or_else(|| unsupported("max_tokens", "must be a positive integer"))?;
        config.insert("maxOutputTokens".into(), n.into());
    }
    for (from, to) in [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
    ] {
        if let Some(v) = field(from) {
            if !v.is_number() {
                return Err(unsupported(from, "must be a number"));
            }
            config.insert(to.into(), v.clone());
        }
    }
    if let Some(seed) = field("seed") {
        if !(seed.is_i64() || seed.is_u64()) {
            return Err(unsupported("seed", "must be an integer"));
        }
        config.insert("seed".into(), seed.clone());
    }
    if let Some(stop) = field("stop") {
        let sequences = match stop {
            Value::String(s) => vec![Value::String(s.clone())],
            Value::Array(a) if a.iter().all(Value::is_string) => a.clone(),
            _ => return Err(unsupported("stop", "must be a string or strings")),
        };
        config.insert("stopSequences".into(), Value::Array(sequences));
    }
    if let Some(n) = field("n") {
        match n.as_u64() {
            Some(1) => {}
            // A translated stream carries one choice (the neutral events have no index).
            Some(n) if n > 1 && !streaming => {
                config.insert("candidateCount".into(), n.into());
            }
            _ => {
                return Err(unsupported(
                    "n",
                    "Gemini streams are translated with one choice; n > 1 only without stream",
                ))
            }
        }
    }
    if let Some(format) = field("response_format") {
        response_format(format, &mut config)?;
    }
    if let Some(effort) = field("reasoning_effort") {
        config.insert("thinkingConfig".into(), thinking_config(effort)?);
    }
    Ok(config)
}

/// `response_format`: `json_object` asks for JSON, `json_schema` for JSON that follows
/// the schema (`responseJsonSchema` takes JSON Schema as written), `text` for nothing.
fn response_format(format: &Value, config: &mut Map<String, Value>) -> Result<(), Unsupported> {
    match format.get("type").and_then(Value::as_str) {
        Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), "application/json".into());
        }
        Some("json_schema") => {
            let schema = format
                .pointer("/json_schema/schema")
                .filter(|s| s.is_object())
                .ok_or_else(|| unsupported("response_format.json_schema.schema", "required"))?;
            config.insert("responseMimeType".into(), "application/json".into());
            config.insert("responseJsonSchema".into(), schema.clone());
        }
        _ => {
            return Err(unsupported(
                "response_format.type",
                "must be text, json_object or json_schema",
            ))
        }
    }
    Ok(())
}

/// `reasoning_effort` as a thinking budget, as Google's own OpenAI compatibility layer
/// maps it (ai.google.dev/gemini-api/docs/openai#thinking): `minimal`/`low` 1,024
/// tokens, `medium` 8,192, `high` 24,576, `none` 0 (no thinking). A budget rather than
/// a Gemini 3 `thinkingLevel` because the body does not know the model, and 2.5 models
/// refuse levels while Gemini 3 still takes budgets (ai.google.dev/gemini-api/docs/
/// thinking). `includeThoughts` returns the thought summaries, which become the
/// answer's `reasoning_content` as a reasoning model's would.
pub fn thinking_config(effort: &Value) -> Result<Value, Unsupported> {
    Ok(
        match crate::providers::reasoning::thinking_budget(effort)? {
            None => json!({"thinkingBudget": 0}),
            Some(budget) => json!({"thinkingBudget": budget, "includeThoughts": true}),
        },
    )
}

/// Function tools as one `functionDeclarations` tool.
fn tools(tools: &Value) -> Result<Value, Unsupported> {
    let Some(tools) = tools.as_array() else {
        return Err(unsupported("tools", "must be an array"));
    };
    let declarations = tools
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
            let name = f
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| unsupported(format!("tools[{i}].function.name"), "required"))?;
            let mut declaration = Map::new();
            declaration.insert("name".into(), name.into());
            if let Some(d) = f.get("description").filter(|d| !d.is_null()) {
                declaration.insert("description".into(), d.clone());
            }
            if let Some(p) = f.get("parameters").filter(|p| !p.is_null()) {
                declaration.insert("parametersJsonSchema".into(), p.clone());
            }
            Ok(Value::Object(declaration))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(json!([{"functionDeclarations": declarations}]))
}

/// `tool_choice` as `toolConfig.functionCallingConfig`: `auto` AUTO, `required` ANY,
/// `none` NONE, one named function ANY limited to it.
fn tool_config(choice: &Value) -> Result<Value, Unsupported> {
    let config = match choice {
        Value::String(s) => match s.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "required" => json!({"mode": "ANY"}),
            "none" => json!({"mode": "NONE"}),
            other => {
                return Err(unsupported(
                    "tool_choice",
                    format!("{other:?} has no Gemini equivalent"),
                ))
            }
        },
        c => match c.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => return Err(unsupported("tool_choice", "names no function")),
        },
    };
    Ok(json!({"functionCallingConfig": config}))
}

#[cfg(test)]
#[path = "request_tests.rs"]
mod tests;
