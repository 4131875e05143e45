//! Reading a chat message's `content` the same way in every translation to another
//! dialect (Anthropic, Bedrock Converse, Gemini), so the dialects cannot disagree on
//! what a client sent.

use serde_json::Value;

use crate::api::error::Unsupported;

/// Text content: a string, or text parts joined by newlines. Any other part is
/// refused, naming it (`{at}[j].type`).
pub fn plain_text(content: &Value, at: &str) -> Result<String, Unsupported> {
    match content {
        Value::String(s) => Ok(s.clone()),
        Value::Array(parts) => parts
            .iter()
            .enumerate()
            .map(|(j, p)| match p.get("type").and_then(Value::as_str) {
                Some("text") => Ok(p.get("text").and_then(Value::as_str).unwrap_or_default()),
                _ => Err(Unsupported::new(
                    format!("{at}[{j}].type"),
                    "only text parts are allowed here",
                )),
            })
            .collect::<Result<Vec<&str>, _>>()
            .map(|t| t.join("\n")),
        _ => Err(Unsupported::new(at, "must be text")),
    }
}

/// A base64 `data:` URL's media type and data (`data:image/png;base64,iVBOR…`);
/// `None` for any other URL.
pub fn base64_data_url(url: &str) -> Option<(&str, &str)> {
    url.strip_prefix("data:")?.split_once(";base64,")
}

/// An assistant message's function call: its id, name and arguments parsed as the JSON
/// object the tool-use blocks of other dialects carry. `kind` names that block in the
/// refusal (`tool_use`, `toolUse`).
pub fn function_call<'a>(
    call: &'a Value,
    at: &str,
    kind: &str,
) -> Result<(&'a str, &'a str, Value), Unsupported> {
    if call.get("type").and_then(Value::as_str) != Some("function") {
        return Err(Unsupported::new(
            format!("{at}.type"),
            "only function calls translate",
        ));
    }
    let text = |pointer: &str| call.pointer(pointer).and_then(Value::as_str);
    let arguments = text("/function/arguments").unwrap_or("{}");
    let input: Value = serde_json::from_str(arguments)
        .ok()
        .filter(Value::is_object)
        .ok_or_else(|| {
            Unsupported::new(
                format!("{at}.function.arguments"),
                format!("must be a JSON object to become a {kind} input"),
            )
        })?;
    Ok((
        text("/id").unwrap_or_default(),
        text("/function/name").unwrap_or_default(),
        input,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn text_parts_are_joined_and_other_parts_named() {
        let parts = json!([{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]);
        assert_eq!(plain_text(&parts, "m").unwrap(), "a\nb");
        let image = json!([{"type": "image_url", "image_url": {"url": "x"}}]);
        assert_eq!(
            plain_text(&image, "messages[0].content").unwrap_err().param,
            "messages[0].content[0].type"
        );
        assert_eq!(
            base64_data_url("data:image/png;base64,iVBOR"),
            Some(("image/png", "iVBOR"))
        );
        assert_eq!(base64_data_url("https://example.com/a.png"), None);
    }
}
