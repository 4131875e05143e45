//! Property-based fuzzing of usage extraction: `usage_from_wire` of every provider
//! kind on arbitrary JSON, and on usage-shaped objects whose counts are huge,
//! negative, fractional, strings or nested wrongly. Extraction never panics, and a
//! count it returns is one the upstream sent as a non-negative integer (or, for
//! DeepSeek's input, the exact sum of its cache hits and misses; for Anthropic's and
//! Bedrock's, of uncached input, cache reads and cache writes; for Gemini's, prompt
//! plus tool-use prompt and candidates plus thoughts): never a wrapped sum, never a
//! number read out of a float or a string. A sum that overflows is not believed.
//! Bounded: 256 cases each.

use proptest::prelude::*;
use serde_json::{json, Map, Value};
use tollgate::config::ProviderKind;
use tollgate::providers::adapter_for;

/// Every kind; the `match` stops compiling when a kind is added without being fuzzed.
fn all_kinds() -> Vec<ProviderKind> {
    let kinds = [
        ProviderKind::Openai,
        ProviderKind::AzureOpenai,
        ProviderKind::AzureAiInference,
        ProviderKind::GithubModels,
        ProviderKind::Deepseek,
        ProviderKind::OpenaiCompatible,
        ProviderKind::Anthropic,
        ProviderKind::Mock,
    ];
    for kind in &kinds {
        match kind {
            ProviderKind::Openai
            | ProviderKind::AzureOpenai
            | ProviderKind::AzureAiInference
            | ProviderKind::GithubModels
            | ProviderKind::Deepseek
            | ProviderKind::OpenaiCompatible
            | ProviderKind::Anthropic
            | ProviderKind::Mock => {}
            // Their own camelCase shapes, fuzzed by the properties below (Vertex with a
            // Gemini model: its Claude and open models read Anthropic's and OpenAI's).
            ProviderKind::Bedrock | ProviderKind::Vertex | ProviderKind::Gemini => {}
            // Extensions bring their own readers; none is built in.
            ProviderKind::Extension(_) => {}
        }
    }
    kinds.to_vec()
}

/// The kinds whose usage is DeepSeek's superset (cache hits and misses).
fn is_deepseek_dialect(kind: &ProviderKind) -> bool {
    matches!(kind, ProviderKind::Deepseek | ProviderKind::Mock)
}

/// The kinds whose usage is Anthropic's (input excludes cache reads and writes).
fn is_anthropic_dialect(kind: &ProviderKind) -> bool {
    matches!(kind, ProviderKind::Anthropic)
}

/// Numbers and near-numbers an upstream might send where a count belongs.
fn nasty_count() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<u64>().prop_map(Value::from),
        Just(json!(u64::MAX)),
        Just(json!(u64::MAX - 1)),
        Just(json!(1_u64 << 63)),
        Just(json!(0)),
        any::<i64>().prop_map(Value::from),
        Just(json!(-1)),
        Just(json!(i64::MIN)),
        any::<f64>()
            .prop_map(|f| serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)),
        Just(json!(1.5)),
        Just(json!(2.0)),
        Just(json!(1e300)),
        // Beyond u64: serde_json reads it as a float.
        Just(Value::from(18_446_744_073_709_551_616.0_f64)),
        "[0-9]{1,25}".prop_map(Value::from),
        Just(json!("-5")),
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        Just(json!([12])),
        Just(json!({"tokens": 12})),
    ]
}

/// Arbitrary JSON, a few levels deep.
fn any_json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![nasty_count(), ".{0,12}".prop_map(Value::from)];
    leaf.prop_recursive(4, 48, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            proptest::collection::btree_map(field_name(), inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

const FIELDS: &[&str] = &[
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
    "cached_tokens",
    "cache_write_tokens",
    "reasoning_tokens",
    "prompt_cache_hit_tokens",
    "prompt_cache_miss_tokens",
    "input_tokens",
    "output_tokens",
    "cache_creation_input_tokens",
    "cache_read_input_tokens",
    "inputTokens",
    "outputTokens",
    "totalTokens",
    "cacheReadInputTokens",
    "cacheWriteInputTokens",
    "promptTokenCount",
    "candidatesTokenCount",
    "thoughtsTokenCount",
    "cachedContentTokenCount",
    "toolUsePromptTokenCount",
    "totalTokenCount",
];

fn field_name() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => proptest::sample::select(FIELDS).prop_map(str::to_owned),
        1 => "[a-z_]{1,10}",
    ]
}

/// A usage object shaped like the real ones, every count drawn from `nasty_count`.
fn usage_shaped() -> impl Strategy<Value = Value> {
    let count = || proptest::option::of(nasty_count());
    (
        (count(), count(), count()),
        (count(), count(), count()),
        (count(), count()),
    )
        .prop_map(
            |((prompt, completion, total), (cached, write, reasoning), (hit, miss))| {
                let mut usage = Map::new();
                let put = |obj: &mut Map<String, Value>, k: &str, v: Option<Value>| {
                    if let Some(v) = v {
                        obj.insert(k.to_owned(), v);
                    }
                };
                put(&mut usage, "prompt_tokens", prompt);
                put(&mut usage, "completion_tokens", completion);
                put(&mut usage, "total_tokens", total);
                put(&mut usage, "prompt_cache_hit_tokens", hit);
                put(&mut usage, "prompt_cache_miss_tokens", miss);
                let mut details = Map::new();
                put(&mut details, "cached_tokens", cached);
                put(&mut details, "cache_write_tokens", write);
                usage.insert("prompt_tokens_details".into(), Value::Object(details));
                let mut details = Map::new();
                put(&mut details, "reasoning_tokens", reasoning);
                usage.insert("completion_tokens_details".into(), Value::Object(details));
                Value::Object(usage)
            },
        )
}

/// An object with each of `names` present or not, every count drawn from `nasty_count`.
fn shaped<const N: usize>(names: [&'static str; N]) -> impl Strategy<Value = Value> {
    proptest::collection::vec(proptest::option::of(nasty_count()), N).prop_map(move |counts| {
        let usage: Map<String, Value> = names
            .iter()
            .zip(counts)
            .filter_map(|(k, v)| Some(((*k).to_owned(), v?)))
            .collect();
        Value::Object(usage)
    })
}

/// An Anthropic usage object.
fn anthropic_shaped() -> impl Strategy<Value = Value> {
    shaped([
        "input_tokens",
        "cache_creation_input_tokens",
        "cache_read_input_tokens",
        "output_tokens",
    ])
}

/// A Bedrock `TokenUsage` object.
fn bedrock_shaped() -> impl Strategy<Value = Value> {
    shaped([
        "inputTokens",
        "outputTokens",
        "totalTokens",
        "cacheReadInputTokens",
        "cacheWriteInputTokens",
    ])
}

/// A Gemini `usageMetadata` object.
fn gemini_shaped() -> impl Strategy<Value = Value> {
    shaped([
        "promptTokenCount",
        "candidatesTokenCount",
        "thoughtsTokenCount",
        "cachedContentTokenCount",
        "toolUsePromptTokenCount",
        "totalTokenCount",
    ])
}

/// The checked sum of `required` and `parts`, absent parts as 0: `None` when
/// `required` is absent or every count is, `Some(None)` when the sum overflows.
fn sum_of(usage: &Value, required: Option<&str>, parts: &[&str]) -> Option<Option<u64>> {
    let n = |f: &str| usage.get(f).and_then(Value::as_u64);
    if let Some(r) = required {
        n(r)?;
    }
    if parts.iter().chain(required.iter()).all(|f| n(f).is_none()) {
        return None;
    }
    Some(
        parts
            .iter()
            .chain(required.iter())
            .try_fold(0_u64, |acc, f| acc.checked_add(n(f).unwrap_or(0))),
    )
}

/// The sums a kind's reader documents, per field: (field, Some(sum) or overflow).
fn documented_sums(kind: &ProviderKind, usage: &Value) -> Vec<(&'static str, Option<u64>)> {
    let sums = match kind {
        ProviderKind::Bedrock => vec![(
            "input",
            sum_of(
                usage,
                Some("inputTokens"),
                &["cacheReadInputTokens", "cacheWriteInputTokens"],
            ),
        )],
        ProviderKind::Gemini | ProviderKind::Vertex => vec![
            (
                "input",
                sum_of(
                    usage,
                    None,
                    &["promptTokenCount", "toolUsePromptTokenCount"],
                ),
            ),
            (
                "output",
                sum_of(usage, None, &["candidatesTokenCount", "thoughtsTokenCount"]),
            ),
        ],
        _ => vec![],
    };
    sums.into_iter()
        .filter_map(|(f, s)| Some((f, s?)))
        .collect()
}

/// Every non-negative integer anywhere in `v`.
fn integers(v: &Value, out: &mut Vec<u64>) {
    match v {
        Value::Number(n) => out.extend(n.as_u64()),
        Value::Array(items) => items.iter().for_each(|i| integers(i, out)),
        Value::Object(map) => map.values().for_each(|i| integers(i, out)),
        _ => {}
    }
}

/// Extract with `kind` and check every count against what `usage` holds.
fn check(kind: ProviderKind, usage: &Value) -> Result<(), TestCaseError> {
    check_model(kind, "m", usage)
}

/// [`check`] with the upstream model that chooses the reader (Vertex's).
fn check_model(kind: ProviderKind, model: &str, usage: &Value) -> Result<(), TestCaseError> {
    let Some(adapter) = adapter_for(&kind, model) else {
        return Err(TestCaseError::fail(format!(
            "{kind:?} has no built-in adapter"
        )));
    };
    let u = adapter.usage_from_wire(usage);
    let mut sent = Vec::new();
    integers(usage, &mut sent);
    let fields = [
        ("input", u.input),
        ("cached_input", u.cached_input),
        ("cache_write", u.cache_write),
        ("output", u.output),
        ("reasoning", u.reasoning),
    ];
    for (name, count) in fields {
        let Some(count) = count else { continue };
        // DeepSeek's input is its cached part (the hit count, or the mirrored
        // `cached_tokens` when hits are absent) plus its cache misses.
        let cached_plus_miss = || {
            let miss = usage
                .get("prompt_cache_miss_tokens")
                .and_then(Value::as_u64)?;
            u.cached_input?.checked_add(miss)
        };
        // Anthropic's input is its uncached input plus cache writes plus cache reads.
        let uncached_plus_cache = || {
            let n = |f: &str| usage.get(f).and_then(Value::as_u64);
            n("input_tokens")?
                .checked_add(n("cache_creation_input_tokens").unwrap_or(0))?
                .checked_add(n("cache_read_input_tokens").unwrap_or(0))
        };
        let derived = (name == "input"
            && ((is_deepseek_dialect(&kind) && cached_plus_miss() == Some(count))
                || (is_anthropic_dialect(&kind) && uncached_plus_cache() == Some(count))))
            || documented_sums(&kind, usage)
                .iter()
                .any(|(field, sum)| *field == name && *sum == Some(count));
        prop_assert!(
            sent.contains(&count) || derived,
            "{kind:?} read {name} = {count}, which the upstream never sent: {usage}"
        );
    }
    // A documented sum that overflows is not believed: the report is malformed or the
    // count saturated, never a wrapped (small) number.
    for (field, sum) in documented_sums(&kind, usage) {
        if sum.is_none() {
            let count = if field == "input" { u.input } else { u.output };
            prop_assert!(
                u.malformed || count.is_none_or(|c| c == u64::MAX),
                "{kind:?} {field} overflows yet reads {count:?}, not malformed: {usage}"
            );
        }
    }
    Ok(())
}

/// The clouds' kinds with their shapes' reader (Vertex by a Gemini model).
fn cloud(kind: ProviderKind) -> (ProviderKind, &'static str) {
    let model = if kind == ProviderKind::Vertex {
        "gemini-2.5-pro"
    } else {
        "m"
    };
    (kind, model)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn openai_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), usage_shaped()],
    ) {
        for kind in all_kinds()
            .into_iter()
            .filter(|k| !is_deepseek_dialect(k) && !is_anthropic_dialect(k))
        {
            check(kind, &usage)?;
        }
    }

    #[test]
    fn deepseek_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), usage_shaped()],
    ) {
        for kind in all_kinds().into_iter().filter(is_deepseek_dialect) {
            check(kind, &usage)?;
        }
    }

    #[test]
    fn anthropic_dialect_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), anthropic_shaped()],
    ) {
        for kind in all_kinds().into_iter().filter(is_anthropic_dialect) {
            check(kind, &usage)?;
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn bedrock_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), bedrock_shaped()],
    ) {
        let (kind, model) = cloud(ProviderKind::Bedrock);
        check_model(kind, model, &usage)?;
    }

    #[test]
    fn gemini_and_vertex_usage_never_panics_nor_invents_a_count(
        usage in prop_oneof![any_json(), gemini_shaped()],
    ) {
        for kind in [ProviderKind::Gemini, ProviderKind::Vertex] {
            let (kind, model) = cloud(kind);
            check_model(kind, model, &usage)?;
        }
    }
}

/// Regression: the minimal input the property above found (an unchecked hit + miss sum).
#[test]
fn deepseek_cache_counts_that_overflow_are_not_summed() {
    let usage = json!({"completion_tokens": 1, "prompt_cache_hit_tokens": u64::MAX, "prompt_cache_miss_tokens": 1});
    for kind in [ProviderKind::Deepseek, ProviderKind::Mock] {
        let adapter = adapter_for(&kind, "m").expect("a built-in kind");
        let u = adapter.usage_from_wire(&usage);
        // Not believed (None) or saturated; a wrapped sum would read 0.
        assert!(
            u.input.is_none_or(|i| i == u64::MAX),
            "{kind:?}: {:?}",
            u.input
        );
    }
}
