use serde_json::json;

use super::*;

fn translate(req: Value) -> Result<Value, Unsupported> {
    let req = ChatRequest::parse(req.to_string().as_bytes(), None).unwrap();
    generate_content_body(&req).map(|b| serde_json::from_slice(&b).unwrap())
}

fn refused(req: Value) -> String {
    translate(req).unwrap_err().param
}

#[test]
fn a_chat_with_system_images_tools_and_their_results_becomes_generate_content() {
    let out = translate(json!({
        "model": "m", "max_completion_tokens": 50, "temperature": 0.5, "top_p": 0.9,
        "stop": ["END"], "seed": 7, "stream": true, "stream_options": {"include_usage": true},
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "Weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                           "required": ["city"], "additionalProperties": false}}}],
        "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
        "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "developer", "content": [{"type": "text", "text": "Use metric."}]},
            {"role": "user", "content": [{"type": "text", "text": "Weather here?"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}}]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Lyon\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "{\"temp\":21}"},
            {"role": "tool", "tool_call_id": "call_2", "content": "sunny"},
            {"role": "assistant", "content": "Paris 21, Lyon sunny."},
            {"role": "user", "content": "Thanks"}
        ]
    }))
    .unwrap();
    assert_eq!(
        out,
        json!({
            "contents": [
                {"role": "user", "parts": [{"text": "Weather here?"},
                    {"inlineData": {"mimeType": "image/png", "data": "iVBOR"}}]},
                {"role": "model", "parts": [
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Lyon"}}}]},
                {"role": "user", "parts": [
                    {"functionResponse": {"name": "get_weather", "response": {"temp": 21}}},
                    {"functionResponse": {"name": "get_weather", "response": {"output": "sunny"}}}]},
                {"role": "model", "parts": [{"text": "Paris 21, Lyon sunny."}]},
                {"role": "user", "parts": [{"text": "Thanks"}]}
            ],
            "systemInstruction": {"parts": [{"text": "Be brief."}, {"text": "Use metric."}]},
            "tools": [{"functionDeclarations": [{"name": "get_weather", "description": "Weather",
                "parametersJsonSchema": {"type": "object", "properties": {"city": {"type": "string"}},
                    "required": ["city"], "additionalProperties": false}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
            "generationConfig": {"maxOutputTokens": 50, "temperature": 0.5, "topP": 0.9,
                "seed": 7, "stopSequences": ["END"]}
        })
    );
}

#[test]
fn tool_choice_modes_and_json_output() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let mode = |choice: &str| {
        translate(json!({"model": "m", "messages": user, "tool_choice": choice})).unwrap()
            ["toolConfig"]["functionCallingConfig"]["mode"]
            .clone()
    };
    assert_eq!(
        (mode("auto"), mode("required"), mode("none")),
        (json!("AUTO"), json!("ANY"), json!("NONE"))
    );
    let out = translate(
        json!({"model": "m", "messages": user, "max_tokens": 9, "n": 2,
        "response_format": {"type": "json_schema", "json_schema": {"name": "x",
            "schema": {"type": "object"}}}}),
    )
    .unwrap();
    assert_eq!(
        out["generationConfig"],
        json!({"maxOutputTokens": 9, "candidateCount": 2,
            "responseMimeType": "application/json", "responseJsonSchema": {"type": "object"}})
    );
}

#[test]
fn reasoning_effort_becomes_a_thinking_budget_as_googles_openai_layer_maps_it() {
    let cfg = |effort: &str| {
        translate(
            json!({"model": "m", "messages": [{"role": "user", "content": "hi"}],
            "reasoning_effort": effort}),
        )
        .unwrap()["generationConfig"]["thinkingConfig"]
            .clone()
    };
    assert_eq!(
        cfg("low"),
        json!({"thinkingBudget": 1024, "includeThoughts": true})
    );
    assert_eq!(cfg("medium")["thinkingBudget"], 8192);
    assert_eq!(cfg("high")["thinkingBudget"], 24576);
    assert_eq!(cfg("none"), json!({"thinkingBudget": 0}));
}

#[test]
fn what_has_no_equivalent_is_refused_by_name() {
    let user = json!([{"role": "user", "content": "hi"}]);
    let with = |extra: Value| {
        let mut req = json!({"model": "m", "messages": user});
        for (k, v) in extra.as_object().unwrap() {
            req[k] = v.clone();
        }
        refused(req)
    };
    assert_eq!(with(json!({"logprobs": true})), "logprobs");
    assert_eq!(with(json!({"user": "u1"})), "user");
    assert_eq!(
        with(json!({"parallel_tool_calls": false})),
        "parallel_tool_calls"
    );
    assert_eq!(with(json!({"n": 2, "stream": true})), "n");
    assert_eq!(
        with(json!({"reasoning_effort": "extreme"})),
        "reasoning_effort"
    );
    assert_eq!(
        refused(
            json!({"model": "m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.png"}}]}]})
        ),
        "messages[0].content[0].image_url.url"
    );
    assert_eq!(
        refused(
            json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "1"}]})
        ),
        "messages[0].tool_call_id"
    );
    assert_eq!(
        refused(
            json!({"model": "m", "messages": [{"role": "user", "name": "bob", "content": "hi"}]})
        ),
        "messages[0].name"
    );
    assert!(
        translate(json!({"model": "m", "messages": user, "seed": null})).is_ok(),
        "a null field asks for nothing"
    );
}
