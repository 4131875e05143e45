//! Property-based fuzzing of `ChatRequest::parse`, the first code to read a client's
//! body: on arbitrary bytes, on byte-level mutations of a valid request and on valid
//! requests whose fields are replaced by arbitrary JSON, it never panics; every
//! rejection is a `GatewayError` with a documented code (`invalid_request`, or
//! `request_too_large`) whose message never repeats the client's prompt; and a
//! request it accepts has what the gateway relies on (a non-empty model, a non-empty
//! `messages` array, a boolean `stream`) with the client's body kept untouched.
//! Bounded: 256 cases each.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tollgate::api::error::ErrorCode;
use tollgate::api::openai::ChatRequest;

/// Text that must never come back in an error message.
const PROMPT: &str = "PROMPT-4f1c-never-echo";

fn valid() -> Value {
    json!({
        "model": "o1",
        "messages": [{"role": "user", "content": PROMPT}],
        "stream": true,
        "stream_options": {"include_usage": true},
        "max_tokens": 64,
        "x_custom": {"keep": [1, 2]}
    })
}

/// Parse, and check the outcome whatever it is.
fn check(bytes: &[u8], path_model: Option<&str>) -> Result<Option<ChatRequest>, TestCaseError> {
    match ChatRequest::parse(bytes, path_model) {
        Ok(req) => {
            prop_assert!(!req.model.is_empty());
            if let Some(m) = path_model {
                prop_assert_eq!(req.model.as_str(), m);
            }
            let messages: Value = serde_json::from_str(req.messages_json().get())
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(messages.as_array().is_some_and(|m| !m.is_empty()));
            prop_assert_eq!(
                req.is_streaming,
                req.body.get("stream") == Some(&Value::Bool(true))
            );
            Ok(Some(req))
        }
        Err(e) => {
            prop_assert!(
                matches!(
                    e.code,
                    ErrorCode::InvalidRequest | ErrorCode::RequestTooLarge
                ),
                "undocumented code {:?}",
                e.code
            );
            prop_assert!(!e.message.is_empty());
            prop_assert!(!e.message.contains(PROMPT), "{}", e.message);
            Ok(None)
        }
    }
}

fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from(PROMPT)),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::from),
            proptest::collection::btree_map("[a-z_]{1,8}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

#[derive(Debug, Clone)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, Vec<u8>),
    Delete(usize, usize),
    Truncate(usize),
}

fn mutation() -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(at, b)| Mutation::Flip(at, b)),
        (any::<usize>(), proptest::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(at, b)| Mutation::Insert(at, b)),
        (any::<usize>(), 1..16usize).prop_map(|(at, n)| Mutation::Delete(at, n)),
        any::<usize>().prop_map(Mutation::Truncate),
    ]
}

fn mutate(bytes: &mut Vec<u8>, m: &Mutation) {
    let at = |i: usize, len: usize| i % (len + 1);
    match m {
        Mutation::Flip(i, b) if !bytes.is_empty() => {
            let i = i % bytes.len();
            bytes[i] = *b;
        }
        Mutation::Flip(..) => {}
        Mutation::Insert(i, b) => {
            let i = at(*i, bytes.len());
            bytes.splice(i..i, b.iter().copied());
        }
        Mutation::Delete(i, n) => {
            let i = at(*i, bytes.len());
            let end = (i + n).min(bytes.len());
            bytes.drain(i..end);
        }
        Mutation::Truncate(i) => bytes.truncate(at(*i, bytes.len())),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn arbitrary_bytes_are_parsed_or_refused_as_invalid_request(
        bytes in proptest::collection::vec(any::<u8>(), 0..512),
        path_model in proptest::option::of("[a-z0-9-]{1,12}"),
    ) {
        check(&bytes, path_model.as_deref())?;
    }

    #[test]
    fn mutated_valid_requests_are_parsed_or_refused_as_invalid_request(
        mutations in proptest::collection::vec(mutation(), 1..6),
    ) {
        let mut bytes = serde_json::to_vec(&valid()).unwrap();
        for m in &mutations {
            mutate(&mut bytes, m);
        }
        check(&bytes, None)?;
    }

    #[test]
    fn any_value_in_any_field_is_parsed_or_refused_and_the_body_kept(
        field in proptest::sample::select(vec!["model", "messages", "stream", "stream_options", "max_tokens", "x_custom"]),
        value in proptest::option::of(any_json()),
        path_model in proptest::option::of(Just("deployment".to_owned())),
    ) {
        let mut body = valid();
        match value {
            Some(v) => body[field] = v,
            None => { body.as_object_mut().unwrap().remove(field); }
        }
        let bytes = serde_json::to_vec(&body).unwrap();
        if let Some(req) = check(&bytes, path_model.as_deref())? {
            // Fields tollgate does not read pass through as the client sent them;
            // `messages` is kept apart, as the client's own JSON text.
            let messages: Value = serde_json::from_str(req.messages_json().get()).unwrap();
            let mut kept = req.body.clone();
            kept.insert("messages".to_owned(), messages);
            prop_assert_eq!(Value::Object(kept), body);
        }
    }
}

#[test]
fn deeply_nested_json_is_refused_not_a_stack_overflow() {
    for open in ["[", "{\"a\":"] {
        let body = format!(
            "{{\"model\":\"o1\",\"messages\":[{}]}}",
            open.repeat(100_000)
        );
        let err = ChatRequest::parse(body.as_bytes(), None).unwrap_err();
        assert_eq!(err.code, ErrorCode::InvalidRequest, "{}", err.message);
    }
}
